"""Real traffic through the model: every SyncML message and DevInf document in
``tests/data/vectors`` decodes, and re-encodes to the same model.

For each vector (one test id per file):

* decode -> model -> encode in the same encoding -> decode gives the same model;
* the same through the other encoding, where that encoding can represent the
  model (a foreign OMA DM DDF tree has no WBXML tokens; binary data has no XML
  form) -- where it cannot, the encoder must say so with ``LocalProtocolError``;
* each SyncEvolution ``.wbxml`` decodes to the same model as libsynthesis's own
  ``.translated.xml`` of it, up to the documented differences (the
  normalisation functions below, one per difference);
* the Sony Ericsson K500i/K700i/Z600 and Motorola A780 captures carry what
  the protocol reference (§1.2, §8.2) says they carry.

The only change a re-encoding may make is the one ``encode_message``
documents (:func:`tests.strategies.as_sent`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from syncmld.protocol.codec import (
    Encoding,
    decode_devinf,
    decode_document,
    decode_message,
    encode_devinf,
    encode_message,
    sniff,
    validate_document,
)
from syncmld.protocol.devinf import DevInf
from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.model import Add, Alert, Get, Item, Message, Put, Status
from syncmld.protocol.tree import DEVINF, METINF, SYNCML, Node
from syncmld.protocol.wbxml import decode_wbxml
from tests.conftest import DATA
from tests.strategies import DEVINF_TYPES, as_sent, model_diff

VECTORS = DATA / "vectors"

#: Vector files that are documents.  ``.ddf`` (a bare OMA DM DDF tree), and
#: ``.txt``/``.ini``/``.md``/``.trace`` notes are not SyncML.
FILES = sorted(p for p in VECTORS.rglob("*") if p.suffix in (".xml", ".wbxml"))

#: libwbxml's CDATA tests: a ``SyncBody`` fragment without ``SyncHdr``, which
#: is not a message.  They must be refused as incomplete, not crash.
FRAGMENTS = {"libwbxml/syncml-013.xml", "libwbxml/syncml-014.xml"}


def _rel(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


DOCUMENTS = [p for p in FILES if _rel(p) not in FRAGMENTS]
TRANSLATED = sorted(p for p in FILES if p.suffix == ".wbxml" and "syncevolution" in p.parts)


def _params(paths: list[Path]) -> list[object]:
    return [pytest.param(p, id=_rel(p)) for p in paths]


def decode_model(data: bytes) -> Message | DevInf:
    """The model of a message or DevInf document (checked to be one of them)."""
    model = validate_document(decode_document(data))
    assert isinstance(model, Message | DevInf), f"not a message or DevInf: {model!r:.200}"
    return model


def encode_model(model: Message | DevInf, encoding: Encoding) -> bytes:
    if isinstance(model, Message):
        return encode_message(model, encoding)
    return encode_devinf(model, encoding)


def expected_after(model: Message | DevInf, encoding: Encoding) -> Message | DevInf:
    return as_sent(model, encoding) if isinstance(model, Message) else model


def _walk(obj: object) -> list[object]:
    """Every dataclass, tuple element and value inside a model."""
    out: list[object] = []
    stack = [obj]
    while stack:
        o = stack.pop()
        out.append(o)
        if isinstance(o, Node):
            continue
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            stack.extend(getattr(o, f.name) for f in dataclasses.fields(o))
        elif isinstance(o, tuple):
            stack.extend(o)
    return out


def unrepresentable_in(model: Message | DevInf, encoding: Encoding) -> str | None:
    """Why ``encoding`` cannot carry ``model``, or ``None`` when it can."""
    for o in _walk(model):
        if encoding is Encoding.XML and isinstance(o, bytes):
            return "binary item data has no XML form"
        if encoding is Encoding.WBXML and isinstance(o, Node):
            foreign = [n for n in o.iter() if n.ns not in (SYNCML, DEVINF, METINF)]
            if foreign:
                return f"<{foreign[0].tag}> of {foreign[0].ns!r} has no WBXML tokens"
    return None


def assert_same(got: object, want: object) -> None:
    assert got == want, model_diff(want, got)


# --- round trips -------------------------------------------------------------------


def test_the_vector_set_is_the_one_we_know() -> None:
    """Guards the parametrisation: a vector set that moved would test nothing."""
    assert len(FILES) >= 370
    assert len(TRANSLATED) == 18
    suffixes = {p.suffix for p in VECTORS.rglob("*") if p.is_file()}
    assert suffixes == {".xml", ".wbxml", ".ddf", ".txt", ".ini", ".md", ".trace"}


@pytest.mark.parametrize("path", _params(DOCUMENTS))
def test_round_trip_in_the_same_encoding(path: Path) -> None:
    data = path.read_bytes()
    encoding = sniff(data)
    assert encoding is (Encoding.WBXML if path.suffix == ".wbxml" else Encoding.XML)
    model = decode_model(data)
    if isinstance(model, Message):
        assert decode_message(data) == model
    else:
        assert decode_devinf(data) == model
    out = encode_model(model, encoding)
    assert sniff(out) is encoding
    assert_same(decode_model(out), expected_after(model, encoding))


@pytest.mark.parametrize("path", _params(DOCUMENTS))
def test_round_trip_through_the_other_encoding(path: Path) -> None:
    data = path.read_bytes()
    encoding = Encoding.XML if sniff(data) is Encoding.WBXML else Encoding.WBXML
    model = decode_model(data)
    reason = unrepresentable_in(model, encoding)
    if reason is not None:
        with pytest.raises(LocalProtocolError) as exc:
            encode_model(model, encoding)
        assert exc.value.status == 415, reason
        return
    out = encode_model(model, encoding)
    assert sniff(out) is encoding
    assert_same(decode_model(out), expected_after(model, encoding))


@pytest.mark.parametrize("path", _params(sorted(VECTORS / f for f in FRAGMENTS)))
def test_headerless_fragment_is_refused_as_incomplete(path: Path) -> None:
    doc = decode_document(path.read_bytes())
    assert doc.root.tag == "SyncML"
    assert doc.root.child("SyncBody") is not None
    with pytest.raises(RemoteProtocolError) as exc:
        validate_document(doc)
    assert exc.value.status == 412
    assert "SyncHdr" in str(exc.value)
    assert exc.value.offset is not None
    assert path.read_bytes()[exc.value.offset :].startswith(b"<SyncML")


# --- SyncEvolution: WBXML vs libsynthesis's XML translation -------------------------
# Each function below forgives one documented difference between a WBXML
# message and its XML form, and nothing else.  Both sides are normalised.


def lf_in_data(model: object) -> object:
    """XML loses CR in Data: an XML parser turns the CRLF of a raw (CDATA)
    vCard into LF (XML 1.0 §2.11), and libsynthesis writes CR raw rather than
    as ``&#13;``.  Compare item Data with CRLF -> LF."""
    if isinstance(model, Item) and isinstance(model.data, str):
        return dataclasses.replace(model, data=model.data.replace("\r\n", "\n"))
    if dataclasses.is_dataclass(model) and not isinstance(model, type | DevInf | Node):
        changes = {f.name: lf_in_data(getattr(model, f.name)) for f in dataclasses.fields(model)}
        return dataclasses.replace(model, **changes)  # type: ignore[arg-type]
    if isinstance(model, tuple):
        return tuple(lf_in_data(m) for m in model)
    return model


def one_devinf_type(msg: Message) -> Message:
    """DevInf ``Meta/Type`` names the DevInf encoding (``+xml`` vs ``+wbxml``):
    a translation may keep the binary message's ``+wbxml`` or say ``+xml``.
    Compare both as ``+xml``."""
    return as_sent(msg, Encoding.XML)


@pytest.mark.parametrize("path", _params(TRANSLATED))
def test_wbxml_decodes_like_its_translation(path: Path) -> None:
    translated = path.with_name(path.name.replace(".wbxml", ".translated.xml"))
    binary = decode_message(path.read_bytes())
    text = decode_message(translated.read_bytes())
    assert_same(lf_in_data(one_devinf_type(binary)), lf_in_data(one_devinf_type(text)))
    # The CR forgiveness is needed exactly when the WBXML side has CRLF in Data.
    crlf = any(
        isinstance(o, Item) and isinstance(o.data, str) and "\r\n" in o.data for o in _walk(binary)
    )
    assert (one_devinf_type(binary) == one_devinf_type(text)) is not crlf


def test_the_normalisations_forgive_only_their_difference() -> None:
    item = Item(data="BEGIN:VCARD\r\nEND:VCARD\r\n")
    assert lf_in_data(item) == Item(data="BEGIN:VCARD\nEND:VCARD\n")
    assert lf_in_data(Item(data="a\rb")) == Item(data="a\rb")  # a lone CR is not forgiven
    assert lf_in_data(Item(data=b"\r\n")) == Item(data=b"\r\n")
    path = VECTORS / "syncevolution/http-wbxml-1.2/01-first-sync-4-stores-upload/01-c2s.wbxml"
    msg = decode_message(path.read_bytes())
    put = msg.commands[0]
    assert isinstance(put, Put)
    assert put.meta is not None
    assert put.meta.type == DEVINF_TYPES[Encoding.WBXML]
    retyped = one_devinf_type(msg).commands[0]
    assert isinstance(retyped, Put)
    assert retyped.meta is not None
    assert retyped.meta.type == DEVINF_TYPES[Encoding.XML]
    assert retyped.items == put.items  # the DevInf itself untouched


# --- the phone captures ---------------------------------------------------------------

HORDE_WBXML = VECTORS / "horde" / "wbxml"


def _capture(name: str) -> Message:
    data = (HORDE_WBXML / name).read_bytes()
    assert sniff(data) is Encoding.WBXML
    msg = decode_message(data)
    assert msg.final
    return msg


def _basic_cred_of(alert: Alert) -> str:
    assert alert.cred is not None
    assert alert.cred.meta is not None
    assert alert.cred.meta.type == "syncml:auth-basic"
    assert alert.cred.meta.format == "b64"
    return alert.cred.data


@dataclasses.dataclass(frozen=True)
class Capture:
    """What a Sony Ericsson init message carries."""

    name: str
    version: str
    session: str
    source: str
    alert_code: int
    target_db: str
    source_db: str
    cred: str


SONY_ERICSSON = [
    Capture("k500i_client_0.wbxml", "1.1", "10", "354416005739727", 201, "contacts", "EriPBDB",
            "cGVkZTpoZW1tZWxpZw=="),
    Capture("k700i_syncml_client_0.wbxml", "1.1", "36", "354006002350535", 200, "notes",
            "EriNotesDB", "YW5keXdyaWdodDpvbWVnYTI1"),
    Capture("z600_client_0.wbxml", "1.0", "5", "351932004600689", 201, "horde", "EriCalDB",
            ""),
]  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name.split("_")[0]) for c in SONY_ERICSSON])
def test_sony_ericsson_capture(case: Capture) -> None:
    raw = (HORDE_WBXML / case.name).read_bytes()
    # String-form public id with the FPI in the string table, no NUL (§8.2).
    fpi = f"-//SYNCML//DTD SyncML {case.version}//EN".encode()
    assert raw[:5] == b"\x02\x00\x00\x6a" + bytes((len(fpi),))
    assert raw[5 : 5 + len(fpi)] == fpi
    doc = decode_wbxml(raw)
    assert doc.public_id == fpi.decode()
    assert doc.version == case.version
    msg = _capture(case.name)
    hdr = msg.header
    assert (hdr.ver_dtd, hdr.ver_proto) == (case.version, f"SyncML/{case.version}")
    assert hdr.session_id == case.session
    assert hdr.msg_id == 1
    assert hdr.source.uri == case.source
    assert hdr.meta is not None
    assert hdr.meta.max_msg_size == 2700
    alerts = [c for c in msg.commands if isinstance(c, Alert)]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.data == case.alert_code
    (item,) = alert.items
    assert item.target is not None
    assert item.source is not None
    assert (item.target.uri, item.source.uri) == (case.target_db, case.source_db)
    assert item.meta is not None
    assert item.meta.anchor is not None
    assert item.meta.anchor.last == "0"
    assert item.meta.anchor.next
    # Cred inside the Alert (§1.2): what these phones do.
    user_pass = _basic_cred_of(alert)
    assert user_pass
    if case.cred:
        assert user_pass == case.cred


def test_k500i_sends_cred_in_header_and_alert_k700i_only_in_alert() -> None:
    k500i = _capture("k500i_client_0.wbxml")
    k700i = _capture("k700i_syncml_client_0.wbxml")
    alert = k500i.commands[0]
    assert isinstance(alert, Alert)
    assert k500i.header.cred == alert.cred
    assert k700i.header.cred is None
    assert isinstance(k700i.commands[0], Alert)
    assert k700i.commands[0].cred is not None


def test_z600_devinf_datastores() -> None:
    msg = _capture("z600_client_0.wbxml")
    put = msg.commands[0]
    assert isinstance(put, Put)
    (item,) = put.items
    assert item.source is not None
    assert item.source.uri == "./devinf10"
    devinf = item.data
    assert isinstance(devinf, DevInf)
    assert devinf.ver_dtd == "1.0"
    assert devinf.man == "SonyEricsson"
    assert (devinf.dev_typ, devinf.dev_id) == ("phone", "351932004600689")
    assert (devinf.sw_v, devinf.hw_v) == ("R2B", "R2A")
    stores = {ds.source_ref: ds for ds in devinf.datastores}
    assert list(stores) == ["EriPBDB", "EriCalDB", "EriTodoDB"]
    pb = stores["EriPBDB"]
    assert pb.max_guid_size == 40
    assert (pb.rx_pref.ct_type, pb.rx_pref.ver_ct) == ("text/x-vcard", "2.1")
    assert pb.can_receive("text/vcard")
    assert pb.ds_mem is not None
    assert pb.ds_mem.max_id == 510
    assert stores["EriCalDB"].rx_pref.ct_type == "text/x-vcalendar"
    assert stores["EriTodoDB"].ds_mem is not None
    assert stores["EriTodoDB"].ds_mem.max_id == 80
    assert all(ds.sync_caps == (1, 2) for ds in devinf.datastores)
    assert {c.ct_type for c in devinf.ctcaps} >= {"text/x-vcard", "text/x-vcalendar"}
    alert = msg.commands[1]
    assert isinstance(alert, Alert)
    assert _basic_cred_of(alert)


def test_motorola_a780_numeric_public_id() -> None:
    raw = (HORDE_WBXML / "MotorolaA780.wbxml").read_bytes()
    assert raw[:5] == b"\x02\x9f\x51\x6a\x00"  # 0x0FD1 = SyncML 1.0, UTF-8, no string table
    doc = decode_wbxml(raw)
    assert doc.public_id == 0x0FD1
    assert doc.version == "1.0"
    msg = _capture("MotorolaA780.wbxml")
    hdr = msg.header
    assert hdr.ver_dtd == "1.0"
    assert hdr.session_id == "0307174547"
    assert hdr.source.uri == "IMEI:355884000217404"
    assert hdr.source.name == "vjove"
    assert hdr.meta is not None
    assert hdr.meta.max_msg_size == 10000
    assert hdr.cred is not None
    assert hdr.cred.data == "dmpvdmU6dmpvdmU="
    alerts = [c for c in msg.commands if isinstance(c, Alert)]
    assert [a.data for a in alerts] == [201, 201, 201]
    assert [a.items[0].target.uri for a in alerts if a.items[0].target] == [
        "contacts",
        "calendar",
        "tasks",
    ]
    # An empty Last anchor (first sync) reads as "", not as missing.
    anchors = [a.items[0].meta.anchor if a.items[0].meta else None for a in alerts]
    assert [(x.last, x.next) if x else None for x in anchors] == [("", "1")] * 3
    put = next(c for c in msg.commands if isinstance(c, Put))
    devinf = put.items[0].data
    assert isinstance(devinf, DevInf)
    assert devinf.dev_typ == "phone"
    # Motorola's embedded DevInf uses the numeric DevInf public id (§8.6).
    assert b"\x02\x9f\x52\x6a\x00" in raw
    get = next(c for c in msg.commands if isinstance(c, Get))
    assert get.items[0].target is not None
    assert get.items[0].target.uri == "./EstimatedUpdateCount/contacts"


# --- other vectors with something specific to check -----------------------------------


def test_ddf_tree_is_kept_as_a_foreign_node() -> None:
    msg = decode_message((VECTORS / "libwbxml/syncml_with_ddf-001.xml").read_bytes())
    nodes = [o for o in _walk(msg) if isinstance(o, Node)]
    assert nodes, "the DDF tree should be kept"
    tree = nodes[0]
    assert tree.tag == "MgmtTree"
    assert tree.ns.lower() == "syncml:dmddf1.2"
    assert all(n.ns == tree.ns for n in tree.iter())
    assert sum(1 for n in tree.iter() if n.tag == "Node") > 1


def test_embedded_devinf_without_verdtd_takes_the_message_version() -> None:
    """libwbxml's SyncML 1.1 examples embed DevInf without VerDTD."""
    for name in ("syncml-003.xml", "syncml-004.xml"):
        msg = decode_message((VECTORS / "libwbxml" / name).read_bytes())
        devinfs = [o for o in _walk(msg) if isinstance(o, DevInf)]
        assert devinfs
        assert {d.ver_dtd for d in devinfs} == {"1.1"}


def test_multi_message_package_and_large_object() -> None:
    """SyncEvolution INDEX: 03/05 have no Final; 07 carries Size + MoreData;
    08 answers the chunk with 213."""
    case = VECTORS / "syncevolution/http-xml-1.2"
    case /= "06-multi-message-package-and-large-object-moredata-upload"
    assert not decode_message((case / "03-c2s.xml").read_bytes()).final
    assert not decode_message((case / "05-c2s.xml").read_bytes()).final
    msg = decode_message((case / "07-c2s.xml").read_bytes())
    chunked = [c for c in _walk(msg) if isinstance(c, Add) and any(i.more_data for i in c.items)]
    assert len(chunked) == 1
    sizes = {m.size for m in (chunked[0].meta, *(i.meta for i in chunked[0].items)) if m}
    assert 20183 in sizes
    reply = decode_message((case / "08-s2c.xml").read_bytes())
    assert 213 in {c.data for c in _walk(reply) if isinstance(c, Status)}
