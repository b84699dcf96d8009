"""Hypothesis strategies for valid random SyncML messages and DevInf documents.

The models built here are the ones the codecs must carry unchanged through
either encoding.  They respect the normalisation the readers legitimately do
(:mod:`syncmld.protocol.mapping`, :mod:`syncmld.protocol.devinf`):

* value fields (LocURI, SessionID, Meta/Type, DevInf values, ...) are
  whitespace-stripped on read, so they are generated without leading or
  trailing whitespace (``str.strip`` whitespace, which is Unicode-wide);
* an empty value element reads back as ``""`` (not ``None``) and an empty
  ``Data`` as ``""``, so ``""`` is a fine value but never stands for "absent";
* item ``Data`` is kept byte for byte: it gets arbitrary text with CR/LF,
  emoji, CJK, but no character XML 1.0 cannot carry and no NUL (WBXML STR_I
  is NUL-terminated);
* elements a SyncML version does not define are only generated for the
  versions that have them (Move, Filter, SourceParent/TargetParent,
  Correlator and FieldLevel are 1.2; NumberOfChanges, MoreData and
  MaxObjSize are 1.1+), and DevInf models are generated in the shape their
  VerDTD carries (what :func:`~syncmld.protocol.devinf.convert_devinf`
  leaves unchanged).

Entry points: :func:`messages`, :func:`devinfs`, :func:`commands`,
:func:`items`, :func:`binary_data`; and two helpers for comparing models:
:func:`model_diff` (where two models differ) and :func:`as_sent` (the one
change the encoder documents).
"""

from __future__ import annotations

import dataclasses
import functools

from hypothesis import strategies as st

from syncmld.protocol.codec import Encoding
from syncmld.protocol.devinf import (
    ContentTypeRef,
    CTCap,
    DataStore,
    DevInf,
    DSMem,
    Ext,
    FilterCap,
    Property,
    PropParam,
)
from syncmld.protocol.model import (
    Add,
    Alert,
    Anchor,
    Atomic,
    Chal,
    Command,
    Copy,
    Cred,
    Delete,
    Exec,
    Filter,
    Get,
    Item,
    Location,
    Map,
    MapItem,
    Mem,
    Message,
    Meta,
    Move,
    Put,
    Replace,
    Results,
    Search,
    Sequence,
    Status,
    Sync,
    SyncHdr,
)

VERSIONS = ("1.0", "1.1", "1.2")

# --- text -------------------------------------------------------------------

#: Characters XML 1.0 cannot carry (C0 controls but TAB, LF, CR; U+FFFE,
#: U+FFFF), NUL among them.  Surrogates are excluded by the UTF-8 codec.
XML_FORBIDDEN = "".join(chr(c) for c in range(32) if c not in (9, 10, 13)) + "\ufffe\uffff"

_chars = st.characters(codec="utf-8", exclude_characters=XML_FORBIDDEN)

#: Characters and fragments that stress a codec: line ends, markup, a CDATA
#: end, non-BMP emoji (a ZWJ sequence), CJK, a combining mark, C1 controls,
#: Unicode blanks, the BOM, the last plane.
SPECIALS = (
    "\r\n", "\n", "\r", "\t", " ", "<", ">", "&", "'", '"', "]]>", "&amp;", "&#13;",
    "=0D=0A", "\r\n\r\n", "</Data>", "é", "e\u0301", "ß", "漢字", "テスト", "한국어",
    "😀", "👩\u200d👩\u200d👧", "\u00a0", "\u2028", "\x85", "\x9f", "\ufeff", "\U0010fffd",
)  # fmt: skip


def free_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Arbitrary XML-carriable text (not stripped), often with a special in it."""
    plain = st.text(_chars, max_size=max_size)
    return plain | st.builds(lambda a, f, b: a + f + b, plain, st.sampled_from(SPECIALS), plain)


def value() -> st.SearchStrategy[str]:
    """A value-field string: no leading or trailing whitespace, maybe ``""``.

    Every value field reads ``""`` back as ``""`` (a present, empty element;
    ``Location.uri`` and ``Cred.data`` default to it), so no field needs a
    non-empty value to round-trip.
    """
    return st.text(_chars, max_size=16).map(str.strip)


def opt(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """``None`` or a value of ``strategy``."""
    return st.none() | strategy


#: CmdIDs, MsgIDs and the like: non-negative, mostly small.
small_ints = st.integers(min_value=0, max_value=2**31 - 1)
sizes = st.integers(min_value=0, max_value=2**40)

MIME_TYPES = (
    "text/x-vcard", "text/vcard", "text/x-vcalendar", "text/calendar", "text/plain",
    "application/vnd.syncml-devinf+xml", "application/vnd.syncml-devinf+wbxml",
    "syncml:auth-basic", "syncml:auth-md5", "application/vnd.omads-file+xml",
)  # fmt: skip
mime_type = st.sampled_from(MIME_TYPES) | value()
COMMAND_NAMES = (
    "SyncHdr", "Alert", "Sync", "Add", "Replace", "Delete", "Copy", "Move", "Map",
    "Put", "Get", "Results", "Exec", "Search", "Atomic", "Sequence",
)  # fmt: skip
uri = (
    st.sampled_from(
        ("./contacts", "./devinf12", "IMEI:355884000217404", "http://127.0.0.1:9300/sync", "1")
    )
    | value()
)

# --- MetInf ---------------------------------------------------------------------


def anchors() -> st.SearchStrategy[Anchor]:
    """Anchors with either, both or neither of Last and Next."""
    stamp = st.sampled_from(("20240315T090000Z", "1168032875", "0")) | value()
    return st.builds(Anchor, last=opt(stamp), next=opt(stamp))


FORMATS = ("b64", "bin", "chr", "wbxml")


@functools.cache
def metas(version: str) -> st.SearchStrategy[Meta]:
    """A Meta: half the time the usual Type/Format/Size, else any subset of
    every field."""
    v11 = version != "1.0"
    v12 = version == "1.2"
    usual = st.builds(
        Meta,
        type=opt(mime_type),
        format=opt(st.sampled_from(FORMATS)),
        size=opt(sizes),
    )
    full = st.builds(
        Meta,
        type=opt(mime_type),
        format=opt(st.sampled_from(FORMATS) | value()),
        size=opt(sizes),
        version=opt(value()),
        mark=opt(value()),
        anchor=opt(anchors()),
        max_msg_size=opt(sizes),
        max_obj_size=opt(sizes) if v11 else st.none(),
        next_nonce=opt(st.sampled_from(("", "MTIzNDU2Nzg5MA==")) | value()),
        emi=st.lists(value(), max_size=2).map(tuple),
        mem=opt(st.builds(Mem, shared_mem=st.booleans(), free_mem=opt(sizes), free_id=opt(sizes))),
        field_level=st.booleans() if v12 else st.just(False),
    )
    return usual | full


# --- addressing, credentials, items ---------------------------------------------


@functools.cache
def creds(version: str) -> st.SearchStrategy[Cred]:
    """Basic, MD5 or free-form credentials."""
    auth = st.builds(
        Meta,
        type=st.sampled_from(("syncml:auth-basic", "syncml:auth-md5")) | value(),
        format=opt(st.just("b64")),
    )
    return st.builds(
        Cred,
        meta=opt(auth | metas(version)),
        data=st.sampled_from(("dGVzdDpzZWNyZXQ=", "MraccrRHny5AADBfmPIGpQ==")) | value(),
    )


@functools.cache
def chals(version: str) -> st.SearchStrategy[Chal]:
    """A challenge (Status/Chal): usually MD5 with a nonce."""
    md5 = st.builds(
        Meta,
        type=st.sampled_from(("syncml:auth-basic", "syncml:auth-md5")),
        format=opt(st.just("b64")),
        next_nonce=opt(st.sampled_from(("", "MTIzNDU2Nzg5MA==")) | value()),
    )
    return st.builds(Chal, meta=md5 | metas(version))


@functools.cache
def filters() -> st.SearchStrategy[Filter]:
    """A DS 1.2 Filter (on an Alert item's Target)."""
    part = st.builds(
        Item,
        meta=opt(st.builds(Meta, type=mime_type)),
        data=opt(st.sampled_from(("&LUID;&EQ;42", "BEGIN:VCARD")) | free_text(12)),
    )
    return st.builds(
        Filter,
        meta=opt(st.builds(Meta, type=mime_type)),
        field=opt(part),
        record=opt(part),
        filter_type=opt(st.sampled_from(("INCLUSIVE", "EXCLUSIVE")) | value()),
    )


@functools.cache
def locations(version: str, *, filtered: bool = False) -> st.SearchStrategy[Location]:
    """Target/Source; with ``filtered`` (1.2 Alert item targets) maybe a Filter."""
    flt = opt(filters()) if filtered and version == "1.2" else st.none()
    return st.builds(Location, uri=uri, name=opt(value()), filter=flt)


def vcards() -> st.SearchStrategy[str]:
    """A vCard 2.1/3.0 with CRLF line ends and arbitrary (escaped) field text."""

    def build(v: str, n: str, tel: str, note: str) -> str:
        lines = ["BEGIN:VCARD", f"VERSION:{v}", f"N:{n};;;", f"FN:{n}", f"TEL;CELL:{tel}"]
        lines.append("NOTE:" + note.replace("\r", "").replace("\n", "\\n"))
        return "\r\n".join([*lines, "END:VCARD", ""])

    return st.builds(
        build,
        st.sampled_from(("2.1", "3.0")),
        value(),
        st.integers(100, 10**15).map(lambda n: f"+{n}"),
        free_text(30),
    )


def item_data(version: str) -> st.SearchStrategy[object]:
    """Item Data: free text, a vCard, ``""`` or an anchor (as in a Status)."""
    return st.one_of(free_text(), vcards(), st.just(""), anchors())


@functools.cache
def items(version: str, *, filtered: bool = False) -> st.SearchStrategy[Item]:
    """One Item with any subset of its elements (``filtered``: see :func:`locations`)."""
    v12 = version == "1.2"
    return st.builds(
        Item,
        target=opt(locations(version, filtered=filtered)),
        source=opt(locations(version)),
        source_parent=opt(uri) if v12 else st.none(),
        target_parent=opt(uri) if v12 else st.none(),
        meta=opt(metas(version)),
        data=opt(item_data(version)),
        more_data=st.booleans() if version != "1.0" else st.just(False),
    )


def devinf_items(version: str) -> st.SearchStrategy[Item]:
    """The Item of a Put/Results carrying a DevInf document."""
    return st.builds(
        Item,
        source=st.builds(Location, uri=st.just(f"./devinf{version.replace('.', '')}")),
        meta=opt(st.builds(Meta, type=st.sampled_from(MIME_TYPES[5:7]))),
        data=devinfs(version),
    )


def _items(
    version: str, *, min_size: int = 0, filtered: bool = False
) -> st.SearchStrategy[tuple[Item, ...]]:
    return st.lists(items(version, filtered=filtered), min_size=min_size, max_size=2).map(tuple)


# --- commands -------------------------------------------------------------------


def _common(version: str) -> dict[str, st.SearchStrategy[object]]:
    return {"cmd_id": small_ints, "no_resp": st.booleans(), "cred": opt(creds(version))}


def _item_cmd(cls: type, version: str, **extra: st.SearchStrategy[object]) -> st.SearchStrategy:
    return st.builds(
        cls,
        items=_items(version, min_size=1),
        meta=opt(metas(version)),
        **_common(version),
        **extra,
    )


def alerts(version: str) -> st.SearchStrategy[Alert]:
    """Sync, 222, 224/225 ... alerts, with items and (1.2) a correlator."""
    code = st.sampled_from((100, 200, 201, 202, 203, 204, 205, 206, 210, 222, 223, 224, 225))
    return st.builds(
        Alert,
        data=opt(code | small_ints),
        items=_items(version, filtered=True),
        correlator=opt(value()) if version == "1.2" else st.none(),
        **_common(version),
    )


def statuses(version: str) -> st.SearchStrategy[Status]:
    """Status with refs, Cred/Chal and items (anchors among their data)."""
    code = st.sampled_from((200, 201, 212, 213, 401, 407, 418, 508)) | st.integers(100, 599)
    return st.builds(
        Status,
        cmd_id=small_ints,
        cmd_ref=small_ints,
        cmd=st.sampled_from(COMMAND_NAMES),
        data=code,
        msg_ref=opt(small_ints),
        target_refs=st.lists(uri, max_size=2).map(tuple),
        source_refs=st.lists(uri, max_size=2).map(tuple),
        cred=opt(creds(version)),
        chal=opt(chals(version)),
        items=_items(version),
    )


def results(version: str) -> st.SearchStrategy[Results]:
    """Results, usually of a DevInf Get."""
    return st.builds(
        Results,
        cmd_id=small_ints,
        cmd_ref=small_ints,
        msg_ref=opt(small_ints),
        meta=opt(metas(version)),
        target_refs=st.lists(uri, max_size=2).map(tuple),
        source_refs=st.lists(uri, max_size=2).map(tuple),
        items=st.lists(devinf_items(version) | items(version), min_size=1, max_size=2).map(tuple),
    )


def puts(version: str) -> st.SearchStrategy[Put]:
    """Put, usually of the sender's DevInf."""
    return st.builds(
        Put,
        items=st.lists(devinf_items(version) | items(version), min_size=1, max_size=2).map(tuple),
        meta=opt(metas(version)),
        lang=opt(value()),
        **_common(version),
    )


def maps(version: str) -> st.SearchStrategy[Map]:
    """Map with LUID/GUID pairs."""
    return st.builds(
        Map,
        cmd_id=small_ints,
        target=locations(version),
        source=locations(version),
        items=st.lists(st.builds(MapItem, target=uri, source=uri), max_size=3).map(tuple),
        cred=opt(creds(version)),
        meta=opt(metas(version)),
    )


def execs(version: str) -> st.SearchStrategy[Exec]:
    """Exec (device management)."""
    return st.builds(
        Exec,
        item=items(version),
        meta=opt(metas(version)),
        correlator=opt(value()) if version == "1.2" else st.none(),
        **_common(version),
    )


def searches(version: str) -> st.SearchStrategy[Search]:
    """Search with one or more sources."""
    return st.builds(
        Search,
        cmd_id=small_ints,
        sources=st.lists(locations(version), min_size=1, max_size=2).map(tuple),
        meta=metas(version),
        data=value(),
        no_resp=st.booleans(),
        no_results=st.booleans(),
        cred=opt(creds(version)),
        target=opt(locations(version)),
        lang=opt(value()),
    )


def _changes(version: str) -> list[st.SearchStrategy[Command]]:
    out = [
        _item_cmd(Add, version),
        _item_cmd(Replace, version),
        _item_cmd(Copy, version),
        _item_cmd(Delete, version, archive=st.booleans(), sft_del=st.booleans()),
    ]
    if version == "1.2":
        out.append(_item_cmd(Move, version))
    return out


def _container(
    cls: type, version: str, inner: st.SearchStrategy[Command]
) -> st.SearchStrategy[Command]:
    return st.builds(
        cls,
        cmd_id=small_ints,
        commands=st.lists(inner, max_size=2).map(tuple),
        no_resp=st.booleans(),
        meta=opt(metas(version)),
    )


@functools.cache
def syncs(version: str, depth: int = 1) -> st.SearchStrategy[Sync]:
    """A Sync holding changes and (while ``depth`` lasts) Atomic/Sequence."""
    inner = st.one_of(_changes(version))
    if depth > 0:
        nested = containers(version, depth - 1)
        inner = inner | nested
    return st.builds(
        Sync,
        target=opt(locations(version)),
        source=opt(locations(version)),
        commands=st.lists(inner, max_size=2).map(tuple),
        meta=opt(metas(version)),
        number_of_changes=opt(small_ints) if version != "1.0" else st.none(),
        **_common(version),
    )


@functools.cache
def containers(version: str, depth: int = 1) -> st.SearchStrategy[Command]:
    """Atomic or Sequence holding what the DTD allows (nested up to ``depth``)."""
    inner = st.one_of(
        *_changes(version),
        alerts(version),
        maps(version),
        execs(version),
        _item_cmd(Get, version, lang=opt(value())),
    )
    if depth > 0:
        inner = inner | syncs(version, depth - 1) | containers(version, depth - 1)
    return _container(Atomic, version, inner) | _container(Sequence, version, inner)


@functools.cache
def commands(version: str) -> st.SearchStrategy[Command]:
    """Any command that may appear in a SyncBody, every command type included."""
    return st.one_of(
        alerts(version),
        statuses(version),
        results(version),
        puts(version),
        _item_cmd(Get, version, lang=opt(value())),
        maps(version),
        execs(version),
        searches(version),
        syncs(version),
        containers(version),
        *_changes(version),
    )


def headers(version: str) -> st.SearchStrategy[SyncHdr]:
    """A SyncHdr of ``version``."""
    return st.builds(
        SyncHdr,
        ver_dtd=st.just(version),
        ver_proto=st.sampled_from((f"SyncML/{version}", f"DM/{version}")),
        session_id=st.sampled_from(("1", "0307174547")) | value(),
        msg_id=small_ints,
        target=locations(version),
        source=locations(version),
        resp_uri=opt(uri),
        no_resp=st.booleans(),
        cred=opt(creds(version)),
        meta=opt(metas(version)),
    )


@functools.cache
def messages(version: str | None = None, *, max_commands: int = 3) -> st.SearchStrategy[Message]:
    """A SyncML message of ``version`` (any of 1.0/1.1/1.2 when ``None``)."""
    if version is None:
        return st.one_of(*(messages(v, max_commands=max_commands) for v in VERSIONS))
    return st.builds(
        Message,
        header=headers(version),
        commands=st.lists(commands(version), max_size=max_commands).map(tuple),
        final=st.booleans(),
    )


def binary_data() -> st.SearchStrategy[bytes]:
    """Bytes that are not UTF-8 text (so a WBXML reader keeps them as bytes)."""
    return st.builds(lambda a, b: a + b"\xff" + b, st.binary(max_size=20), st.binary(max_size=20))


# --- DevInf ------------------------------------------------------------------------

CT_TYPES = ("text/x-vcard", "text/vcard", "text/x-vcalendar", "text/calendar", "text/plain")
DEV_TYPES = ("pager", "handheld", "pda", "phone", "smartphone", "server", "workstation")
devinf_ints = st.integers(min_value=0, max_value=10**18 - 1)


def _ct_refs(flat: bool) -> st.SearchStrategy[ContentTypeRef]:
    ver = st.sampled_from(("2.1", "3.0", "1.0", "2.0")) | value()
    return st.builds(ContentTypeRef, ct_type=st.sampled_from(CT_TYPES) | value(), ver_ct=opt(ver))


def _params() -> st.SearchStrategy[PropParam]:
    return st.builds(
        PropParam,
        name=st.sampled_from(("TYPE", "VALUE", "ENCODING")) | value(),
        data_type=opt(st.sampled_from(("chr", "int", "bool")) | value()),
        val_enums=st.lists(value(), max_size=2).map(tuple),
        display_name=opt(value()),
    )


def _properties(flat: bool) -> st.SearchStrategy[Property]:
    return st.builds(
        Property,
        name=st.sampled_from(("BEGIN", "N", "TEL", "EMAIL", "PHOTO")) | value(),
        data_type=opt(st.sampled_from(("chr", "int", "bin")) | value()),
        max_occur=st.none() if flat else opt(devinf_ints),
        max_size=opt(devinf_ints),
        no_truncate=st.just(False) if flat else st.booleans(),
        val_enums=st.lists(value(), max_size=2).map(tuple),
        display_name=opt(value()),
        params=st.lists(_params(), max_size=1).map(tuple),
    )


def _ctcaps(flat: bool, max_size: int = 2) -> st.SearchStrategy[tuple[CTCap, ...]]:
    cap = st.builds(
        CTCap,
        ct_type=st.sampled_from(CT_TYPES) | value(),
        ver_ct=st.none() if flat else opt(value()),
        field_level=st.just(False) if flat else st.booleans(),
        properties=st.lists(_properties(flat), max_size=2).map(tuple),
    )
    # convert_devinf keeps each CTCap once.
    return st.lists(cap, max_size=max_size, unique=True).map(tuple)


def _datastores(version: str) -> st.SearchStrategy[DataStore]:
    flat = version != "1.2"
    return st.builds(
        DataStore,
        source_ref=st.sampled_from(("./contacts", "./calendar", "Contacts")) | value(),
        display_name=opt(value()),
        max_guid_size=opt(devinf_ints),
        rx_pref=_ct_refs(flat),
        rx=st.lists(_ct_refs(flat), max_size=1).map(tuple),
        tx_pref=_ct_refs(flat),
        tx=st.lists(_ct_refs(flat), max_size=1).map(tuple),
        ctcaps=st.just(()) if flat else _ctcaps(flat, 1),
        ds_mem=opt(
            st.builds(
                DSMem, shared_mem=st.booleans(), max_mem=opt(devinf_ints), max_id=opt(devinf_ints)
            )
        ),
        sync_caps=st.lists(st.integers(1, 7) | devinf_ints, max_size=4).map(tuple),
        filter_rx=st.just(()) if flat else st.lists(_ct_refs(flat), max_size=1).map(tuple),
        filter_caps=st.just(())
        if flat
        else st.lists(
            st.builds(
                FilterCap,
                ct_type=st.sampled_from(CT_TYPES) | value(),
                ver_ct=opt(value()),
                filter_keywords=st.lists(value(), max_size=2).map(tuple),
                prop_names=st.lists(value(), max_size=2).map(tuple),
            ),
            max_size=1,
        ).map(tuple),
        support_hierarchical_sync=st.just(False) if flat else st.booleans(),
    )


@functools.cache
def devinfs(version: str | None = None) -> st.SearchStrategy[DevInf]:
    """A DevInf of ``version`` in the shape that version carries.

    1.0/1.1: one global (flat) CTCap list, no per-datastore CTCaps, filters
    or hierarchical flag; 1.0 also without UTC/SupportLargeObjs/
    SupportNumberOfChanges.  1.2: CTCaps only inside datastores.  Never the
    DevInf-level SupportHierarchicalSync (read-only by design).
    """
    if version is None:
        return st.one_of(*(devinfs(v) for v in VERSIONS))
    flat = version != "1.2"
    flags = st.booleans() if version != "1.0" else st.just(False)
    return st.builds(
        DevInf,
        ver_dtd=st.just(version),
        man=opt(value()),
        mod=opt(value()),
        oem=opt(value()),
        fw_v=opt(value()),
        sw_v=opt(value()),
        hw_v=opt(value()),
        dev_id=st.sampled_from(("IMEI:355884000217404", "cwb1")) | value(),
        dev_typ=st.sampled_from(DEV_TYPES) | value(),
        utc=flags,
        support_large_objs=flags,
        support_number_of_changes=flags,
        datastores=st.lists(_datastores(version), max_size=2).map(tuple),
        ctcaps=_ctcaps(flat) if flat else st.just(()),
        exts=st.lists(
            st.builds(Ext, x_nam=value(), x_vals=st.lists(value(), max_size=2).map(tuple)),
            max_size=1,
        ).map(tuple),
    )


# --- comparing models ----------------------------------------------------------------


def model_diff(a: object, b: object, path: str = "") -> str | None:
    """Where two models first differ (``"commands[2].items[0].data: 'x' != 'y'"``),
    or ``None`` when they are equal.  Makes a failing round trip readable."""
    if a == b:
        return None
    if type(a) is not type(b):
        return f"{path or '<root>'}: {type(a).__name__} {a!r:.200} != {type(b).__name__} {b!r:.200}"
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            d = model_diff(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}".lstrip("."))
            if d is not None:
                return d
    if isinstance(a, tuple) and isinstance(b, tuple):
        if len(a) != len(b):
            return f"{path}: {len(a)} elements != {len(b)} elements"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = model_diff(x, y, f"{path}[{i}]")
            if d is not None:
                return d
    return f"{path or '<root>'}: {a!r:.300} != {b!r:.300}"


# --- what a peer receives --------------------------------------------------------------

DEVINF_TYPES = {
    Encoding.XML: "application/vnd.syncml-devinf+xml",
    Encoding.WBXML: "application/vnd.syncml-devinf+wbxml",
}


def _retyped(meta: Meta | None, encoding: Encoding) -> Meta | None:
    if meta is None or meta.type is None:
        return meta
    if meta.type.strip().lower() in DEVINF_TYPES.values():
        return dataclasses.replace(meta, type=DEVINF_TYPES[encoding])
    return meta


def as_sent(msg: Message, encoding: Encoding) -> Message:
    """The message a peer receives when ``msg`` is sent in ``encoding``.

    Normalisation documented by ``encode_message``: a DevInf ``Meta/Type`` of
    a body-level Put, Get or Results (on the command or an item) names the
    DevInf encoding that matches the message's, as the DevInf embedding rules
    require.  Everything else must arrive unchanged.
    """
    commands = []
    for cmd in msg.commands:
        if isinstance(cmd, Put | Get | Results):
            items = tuple(
                dataclasses.replace(i, meta=_retyped(i.meta, encoding)) for i in cmd.items
            )
            commands.append(
                dataclasses.replace(cmd, meta=_retyped(cmd.meta, encoding), items=items)
            )
        else:
            commands.append(cmd)
    return dataclasses.replace(msg, commands=tuple(commands))
