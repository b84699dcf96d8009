"""Device information (DevInf 1.0, 1.1 and 1.2): model, reader and writer.

The model is a tree of frozen dataclasses with tuples for repeated elements.
One structure serves all three versions:

* Content-type capabilities (:class:`CTCap`) come in two shapes on the wire.
  DevInf 1.0/1.1 has one flat list at DevInf level in which an element's
  meaning depends on its position (``CTType`` starts a type, ``PropName`` a
  property, ``ParamName`` a parameter; ``ValEnum``, ``DataType``, ``Size``
  and ``DisplayName`` belong to the latest of them).  DevInf 1.2 nests
  ``Property`` and ``PropParam`` elements in a ``CTCap`` inside each
  ``DataStore``.  Both are read into the same classes: flat ones into
  :attr:`DevInf.ctcaps`, nested ones into :attr:`DataStore.ctcaps`.
* ``Size`` (1.0/1.1) and ``MaxSize`` (1.2) are both :attr:`Property.max_size`.

:func:`devinf_from_node` is tolerant: element order is free, unknown and
misplaced elements are ignored, values are stripped of blanks, numbers may
have leading zeros.  A missing required element raises
:class:`~syncmld.protocol.errors.RemoteProtocolError` with status 412 and the
element's name; a number that is not a number raises status 400.

:func:`devinf_to_node` writes the element order of the DevInf DTDs in the
shape the document's ``VerDTD`` requires (see :func:`convert_devinf`, which
returns exactly the model a reader gets back).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final

from syncmld.protocol.codes import SERVER_ALERTED_SYNC_TYPE, SyncMode, alert_to_sync_type
from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.tree import DEVINF, Node

BAD_REQUEST: Final = 400
INCOMPLETE: Final = 412

# --- model ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentTypeRef:
    """A content type and its version (``Rx``, ``Tx``, ``Filter-Rx`` ...), e.g.
    ``text/x-vcard`` 2.1.  ``ver_ct`` is ``None`` when the sender left it out."""

    ct_type: str
    ver_ct: str | None = None

    def matches(self, other: str | ContentTypeRef) -> bool:
        """Same type (case-insensitive); a ``ContentTypeRef`` with a version
        must also have the same version."""
        if isinstance(other, str):
            return self.ct_type.lower() == other.strip().lower()
        if self.ct_type.lower() != other.ct_type.lower():
            return False
        return other.ver_ct is None or self.ver_ct == other.ver_ct


@dataclass(frozen=True, slots=True, kw_only=True)
class PropParam:
    """A parameter of a property, e.g. ``TYPE`` of a vCard ``TEL``."""

    name: str
    data_type: str | None = None
    val_enums: tuple[str, ...] = ()
    display_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Property:
    """A property the device supports in a content type, e.g. vCard ``TEL``.

    ``max_size`` is ``Size`` in DevInf 1.0/1.1 and ``MaxSize`` in 1.2;
    ``max_occur`` and ``no_truncate`` exist in 1.2 only.
    """

    name: str
    data_type: str | None = None
    max_occur: int | None = None
    max_size: int | None = None
    no_truncate: bool = False
    val_enums: tuple[str, ...] = ()
    display_name: str | None = None
    params: tuple[PropParam, ...] = ()

    def param(self, name: str) -> PropParam | None:
        """The first parameter called ``name`` (case-insensitive), or ``None``."""
        key = name.lower()
        return next((p for p in self.params if p.name.lower() == key), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class CTCap:
    """The capabilities of one content type: the properties the device stores.

    ``ver_ct`` and ``field_level`` exist in DevInf 1.2 only (a 1.0/1.1 flat
    CTCap names just the type).
    """

    ct_type: str
    ver_ct: str | None = None
    field_level: bool = False
    properties: tuple[Property, ...] = ()

    def property(self, name: str) -> Property | None:
        """The first property called ``name`` (case-insensitive), or ``None``."""
        key = name.lower()
        return next((p for p in self.properties if p.name.lower() == key), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class DSMem:
    """Datastore memory: shared with other stores, bytes and items it can hold."""

    shared_mem: bool = False
    max_mem: int | None = None
    max_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FilterCap:
    """DevInf 1.2 filter capabilities for one content type."""

    ct_type: str
    ver_ct: str | None = None
    filter_keywords: tuple[str, ...] = ()
    prop_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Ext:
    """A vendor extension: a name and its values (``XNam``, ``XVal*``)."""

    x_nam: str
    x_vals: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DataStore:
    """One database of the device.

    Attributes:
        source_ref: the database's URI: what the peer uses as Target LocURI.
        max_guid_size: the longest item id the device can store (clients;
            the server must map longer GUIDs to temporary ones).
        rx_pref, rx, tx_pref, tx: the formats it receives and sends,
            preferred one first.
        ctcaps: DevInf 1.2 per-datastore capabilities (1.0/1.1 documents keep
            them in :attr:`DevInf.ctcaps`).
        sync_caps: DevInf ``SyncType`` numbers: 1-6 are the sync modes
            (:attr:`SyncMode.sync_type`), 7 server-alerted sync; other numbers
            are kept as sent.
        filter_rx, filter_caps, support_hierarchical_sync: DevInf 1.2 only.
    """

    source_ref: str
    display_name: str | None = None
    max_guid_size: int | None = None
    rx_pref: ContentTypeRef
    rx: tuple[ContentTypeRef, ...] = ()
    tx_pref: ContentTypeRef
    tx: tuple[ContentTypeRef, ...] = ()
    ctcaps: tuple[CTCap, ...] = ()
    ds_mem: DSMem | None = None
    sync_caps: tuple[int, ...] = ()
    filter_rx: tuple[ContentTypeRef, ...] = ()
    filter_caps: tuple[FilterCap, ...] = ()
    support_hierarchical_sync: bool = False

    @property
    def rx_types(self) -> tuple[ContentTypeRef, ...]:
        """Every format the datastore receives, the preferred one first."""
        return (self.rx_pref, *self.rx)

    @property
    def tx_types(self) -> tuple[ContentTypeRef, ...]:
        """Every format the datastore sends, the preferred one first."""
        return (self.tx_pref, *self.tx)

    def can_receive(self, ct: str | ContentTypeRef) -> bool:
        """True when ``ct`` (a MIME type, or a type and version) is among :attr:`rx_types`."""
        return any(r.matches(ct) for r in self.rx_types)

    def can_send(self, ct: str | ContentTypeRef) -> bool:
        """True when ``ct`` (a MIME type, or a type and version) is among :attr:`tx_types`."""
        return any(t.matches(ct) for t in self.tx_types)

    def choose_rx(self, supported: Iterable[str | ContentTypeRef]) -> ContentTypeRef | None:
        """The format to send this datastore: the first of its :attr:`rx_types`
        (so its ``Rx-Pref`` when possible) that we can produce, or ``None``."""
        ours = list(supported)
        return next((r for r in self.rx_types if any(r.matches(s) for s in ours)), None)

    def choose_tx(self, supported: Iterable[str | ContentTypeRef]) -> ContentTypeRef | None:
        """Like :meth:`choose_rx` for the formats the datastore sends."""
        ours = list(supported)
        return next((t for t in self.tx_types if any(t.matches(s) for s in ours)), None)

    def supports(self, mode: SyncMode | int) -> bool:
        """True when :attr:`sync_caps` allows a sync mode or sync alert code.

        A server-alerted code (206-210) needs both its base mode and type 7.
        Unknown alert codes are not supported.
        """
        if isinstance(mode, SyncMode):
            return mode.sync_type in self.sync_caps
        try:
            base = SyncMode.from_alert(mode)
            needed = alert_to_sync_type(mode)
        except ValueError:
            return False
        if needed == SERVER_ALERTED_SYNC_TYPE and needed not in self.sync_caps:
            return False
        return base.sync_type in self.sync_caps

    def ctcap(self, ct_type: str, ver_ct: str | None = None) -> CTCap | None:
        """This datastore's capabilities for a content type (1.2), or ``None``."""
        return _find_ctcap(self.ctcaps, ct_type, ver_ct)


@dataclass(frozen=True, slots=True, kw_only=True)
class DevInf:
    """A device information document.

    Attributes:
        ver_dtd: "1.0", "1.1" or "1.2" (kept as sent when it is something else).
        dev_typ: ``pager``, ``handheld``, ``pda``, ``phone``, ``smartphone``,
            ``server`` or ``workstation``.
        utc, support_large_objs, support_number_of_changes: DevInf 1.1+ flags.
        support_hierarchical_sync: the flag where pysyncml puts it, at DevInf
            level.  Only read: :func:`devinf_to_node` never writes it there
            (Funambol 10 aborts on it); set the DataStore's flag instead.
        ctcaps: the DevInf 1.0/1.1 global capability list.
    """

    ver_dtd: str
    man: str | None = None
    mod: str | None = None
    oem: str | None = None
    fw_v: str | None = None
    sw_v: str | None = None
    hw_v: str | None = None
    dev_id: str
    dev_typ: str
    utc: bool = False
    support_large_objs: bool = False
    support_number_of_changes: bool = False
    support_hierarchical_sync: bool = False
    datastores: tuple[DataStore, ...] = ()
    ctcaps: tuple[CTCap, ...] = ()
    exts: tuple[Ext, ...] = ()

    def datastore(self, source_ref: str) -> DataStore | None:
        """The datastore whose SourceRef is ``source_ref``, or ``None``.

        An exact match wins; otherwise a leading ``./`` and letter case are
        ignored (devices announce ``./contacts`` and alert ``contacts``).
        """
        for ds in self.datastores:
            if ds.source_ref == source_ref:
                return ds
        key = _loose_uri(source_ref)
        return next((ds for ds in self.datastores if _loose_uri(ds.source_ref) == key), None)

    def ctcap(
        self, ct_type: str, ver_ct: str | None = None, *, source_ref: str | None = None
    ) -> CTCap | None:
        """The capabilities for a content type: those of datastore ``source_ref``
        (DevInf 1.2) first, then the global list (1.0/1.1)."""
        if source_ref is not None:
            ds = self.datastore(source_ref)
            if ds is not None:
                found = ds.ctcap(ct_type, ver_ct)
                if found is not None:
                    return found
        return _find_ctcap(self.ctcaps, ct_type, ver_ct)

    def ext(self, x_nam: str) -> Ext | None:
        """The first extension called ``x_nam`` (case-insensitive), or ``None``."""
        key = x_nam.lower()
        return next((e for e in self.exts if e.x_nam.lower() == key), None)


def _loose_uri(uri: str) -> str:
    u = uri.strip()
    while u.startswith("./"):
        u = u[2:]
    return u.lower()


def _find_ctcap(ctcaps: Iterable[CTCap], ct_type: str, ver_ct: str | None) -> CTCap | None:
    key = ct_type.strip().lower()
    candidates = [c for c in ctcaps if c.ct_type.lower() == key]
    if ver_ct is not None:
        exact = [c for c in candidates if c.ver_ct == ver_ct]
        # A 1.0/1.1 CTCap has no version: it covers every version of its type.
        candidates = exact or [c for c in candidates if c.ver_ct is None]
    return candidates[0] if candidates else None


# --- reading ----------------------------------------------------------------


def _fail(message: str, node: Node, status: int = INCOMPLETE) -> RemoteProtocolError:
    return RemoteProtocolError(message, status=status, offset=node.pos if node.pos >= 0 else None)


def _text(node: Node) -> str:
    """The stripped text of a value element ('' when empty).

    Stripping matters: Horde's XML rendering of a Synthesis client's message
    puts every value on its own indented line; libwbxml's examples have
    ``text/x-vcard `` with a trailing blank.
    """
    t = node.text
    if t is None:
        return ""
    if isinstance(t, str):
        return t.strip()
    # WBXML OPAQUE: Sony Ericsson phones send every value as OPAQUE, in
    # ISO-8859-1 rather than UTF-8 when it is not ASCII.  Latin-1 never fails.
    try:
        return t.decode("utf-8").strip()
    except UnicodeDecodeError:
        return t.decode("latin-1").strip()


_NUMBER: Final = re.compile(r"[0-9]{1,18}")


def _int(node: Node) -> int | None:
    """A non-negative number; ``None`` for an empty element.

    Leading zeros (``<SyncType>01</SyncType>`` in libwbxml's DevInf examples)
    and surrounding blanks are accepted.
    """
    t = _text(node)
    if not t:
        return None
    if not _NUMBER.fullmatch(t):
        raise _fail(f"DevInf {node.tag} {t[:40]!r} is not a number", node, BAD_REQUEST)
    return int(t)


def _required(parent: Node, tag: str, where: str) -> Node:
    c = parent.child(tag)
    if c is None:
        raise _fail(f"DevInf: {where} without {tag}", parent)
    return c


def _ct_ref(node: Node) -> ContentTypeRef:
    ct_type = _text(_required(node, "CTType", node.tag))
    ver = node.child("VerCT")
    return ContentTypeRef(ct_type=ct_type, ver_ct=None if ver is None else _text(ver))


def _ds_mem(node: Node) -> DSMem:
    shared = False
    max_mem = max_id = None
    for c in node.children:
        if c.tag == "SharedMem":
            shared = True
        elif c.tag == "MaxMem" and max_mem is None:
            max_mem = _int(c)
        elif c.tag == "MaxID" and max_id is None:
            max_id = _int(c)
    return DSMem(shared_mem=shared, max_mem=max_mem, max_id=max_id)


def _sync_caps(node: Node) -> tuple[int, ...]:
    out = []
    for c in node.all("SyncType"):
        n = _int(c)
        if n is not None:
            out.append(n)
    return tuple(out)


def _filter_cap(node: Node) -> FilterCap:
    ref = _ct_ref(node)
    return FilterCap(
        ct_type=ref.ct_type,
        ver_ct=ref.ver_ct,
        filter_keywords=tuple(_text(c) for c in node.all("FilterKeyword")),
        prop_names=tuple(_text(c) for c in node.all("PropName")),
    )


@dataclass(slots=True)
class _ParamB:
    name: str
    data_type: str | None = None
    val_enums: list[str] = field(default_factory=list)
    display_name: str | None = None

    def add(self, node: Node) -> bool:
        """Take a value element; False when a parameter cannot hold it."""
        tag = node.tag
        if tag == "ValEnum":
            self.val_enums.append(_text(node))
        elif tag == "DataType":
            if self.data_type is None:
                self.data_type = _text(node)
        elif tag == "DisplayName":
            if self.display_name is None:
                self.display_name = _text(node)
        else:
            return False
        return True

    def build(self) -> PropParam:
        return PropParam(
            name=self.name,
            data_type=self.data_type,
            val_enums=tuple(self.val_enums),
            display_name=self.display_name,
        )


@dataclass(slots=True)
class _PropB:
    name: str
    data_type: str | None = None
    max_occur: int | None = None
    max_size: int | None = None
    no_truncate: bool = False
    val_enums: list[str] = field(default_factory=list)
    display_name: str | None = None
    params: list[_ParamB] = field(default_factory=list)

    def add(self, node: Node) -> None:
        """Take a value element that belongs to the property (others are ignored)."""
        tag = node.tag
        if tag == "ValEnum":
            self.val_enums.append(_text(node))
        elif tag == "DataType":
            if self.data_type is None:
                self.data_type = _text(node)
        elif tag in ("Size", "MaxSize"):
            if self.max_size is None:
                self.max_size = _int(node)
        elif tag == "MaxOccur":
            if self.max_occur is None:
                self.max_occur = _int(node)
        elif tag == "NoTruncate":
            self.no_truncate = True
        elif tag == "DisplayName" and self.display_name is None:
            self.display_name = _text(node)

    def build(self) -> Property:
        return Property(
            name=self.name,
            data_type=self.data_type,
            max_occur=self.max_occur,
            max_size=self.max_size,
            no_truncate=self.no_truncate,
            val_enums=tuple(self.val_enums),
            display_name=self.display_name,
            params=tuple(p.build() for p in self.params),
        )


@dataclass(slots=True)
class _CTCapB:
    ct_type: str
    ver_ct: str | None = None
    field_level: bool = False
    properties: list[_PropB] = field(default_factory=list)

    def build(self) -> CTCap:
        return CTCap(
            ct_type=self.ct_type,
            ver_ct=self.ver_ct,
            field_level=self.field_level,
            properties=tuple(p.build() for p in self.properties),
        )


def _nested_property(node: Node) -> _PropB:
    # Children in any order: SyncEvolution (libsynthesis) writes ValEnum before MaxOccur.
    prop = _PropB(_text(_required(node, "PropName", "Property")))
    for c in node.children:
        if c.tag == "PropParam":
            param = _ParamB(_text(_required(c, "ParamName", "PropParam")))
            for v in c.children:
                param.add(v)
            prop.params.append(param)
        elif c.tag != "PropName":
            prop.add(c)
    return prop


def _nested_ctcap(node: Node) -> _CTCapB:
    """A 1.2 CTCap: one type, its children in any order."""
    cap = _CTCapB(_text(_required(node, "CTType", "CTCap")))
    for c in node.children:
        if c.tag == "VerCT" and cap.ver_ct is None:
            cap.ver_ct = _text(c)
        elif c.tag == "FieldLevel":
            cap.field_level = True
        elif c.tag == "Property":
            cap.properties.append(_nested_property(c))
    return cap


def _ctcaps(nodes: Iterable[Node]) -> list[CTCap]:
    """Read CTCap elements of either shape.

    A CTCap with one CTType and no PropName/ParamName children is the 1.2
    shape and read in any order.  Anything else is read by element sequence,
    which also copes with a mixture: ``CTType`` starts a capability,
    ``Property`` adds a whole property, ``PropName`` starts one and
    ``ParamName`` starts a parameter of the latest property; the value
    elements (ValEnum, DataType, Size, DisplayName ...) belong to the latest
    thing started.
    """
    out: list[_CTCapB] = []
    for node in nodes:
        tags = [c.tag for c in node.children]
        if tags.count("CTType") <= 1 and "PropName" not in tags and "ParamName" not in tags:
            out.append(_nested_ctcap(node))
            continue
        cur: _CTCapB | None = None
        prop: _PropB | None = None
        param: _ParamB | None = None
        for c in node.children:
            tag = c.tag
            if tag == "CTType":
                cur = _CTCapB(_text(c))
                out.append(cur)
                prop = param = None
            elif tag in ("VerCT", "FieldLevel", "Property", "PropName", "ParamName"):
                if cur is None:
                    raise _fail(f"DevInf: CTCap with {tag} before any CTType", node)
                if tag == "VerCT":
                    if cur.ver_ct is None:
                        cur.ver_ct = _text(c)
                elif tag == "FieldLevel":
                    cur.field_level = True
                elif tag == "Property":
                    prop = _nested_property(c)
                    cur.properties.append(prop)
                    param = None
                elif tag == "PropName":
                    prop = _PropB(_text(c))
                    cur.properties.append(prop)
                    param = None
                elif prop is None:
                    raise _fail("DevInf: CTCap with ParamName before any PropName", node)
                else:
                    param = _ParamB(_text(c))
                    prop.params.append(param)
            elif prop is not None and (param is None or not param.add(c)):
                # A value element; one a parameter cannot hold (Size after a
                # ParamName) goes to the property.  Before any property: ignored.
                prop.add(c)
    return [c.build() for c in out]


def _datastore(node: Node) -> DataStore:
    source_ref = _text(_required(node, "SourceRef", "DataStore"))
    rx_pref = _required(node, "Rx-Pref", "DataStore")
    tx_pref = _required(node, "Tx-Pref", "DataStore")
    display_name = None
    max_guid_size = None
    rx: list[ContentTypeRef] = []
    tx: list[ContentTypeRef] = []
    ctcap_nodes: list[Node] = []
    ds_mem = None
    sync_caps: list[int] = []
    filter_rx: list[ContentTypeRef] = []
    filter_caps: list[FilterCap] = []
    hierarchical = False
    for c in node.children:
        tag = c.tag
        if tag == "DisplayName" and display_name is None:
            display_name = _text(c)
        elif tag == "MaxGUIDSize" and max_guid_size is None:
            max_guid_size = _int(c)
        elif tag == "Rx" or (tag == "Rx-Pref" and c is not rx_pref):
            rx.append(_ct_ref(c))  # a second Rx-Pref is kept as an Rx
        elif tag == "Tx" or (tag == "Tx-Pref" and c is not tx_pref):
            tx.append(_ct_ref(c))
        elif tag == "CTCap":
            ctcap_nodes.append(c)
        elif tag == "DSMem" and ds_mem is None:
            ds_mem = _ds_mem(c)
        elif tag == "SyncCap":
            sync_caps.extend(_sync_caps(c))
        elif tag == "Filter-Rx":
            filter_rx.append(_ct_ref(c))
        elif tag == "FilterCap":
            filter_caps.append(_filter_cap(c))
        elif tag == "SupportHierarchicalSync":
            hierarchical = True
        # MaxObjSize (pysyncml puts it here) and anything unknown: ignored.
    return DataStore(
        source_ref=source_ref,
        display_name=display_name,
        max_guid_size=max_guid_size,
        rx_pref=_ct_ref(rx_pref),
        rx=tuple(rx),
        tx_pref=_ct_ref(tx_pref),
        tx=tuple(tx),
        ctcaps=tuple(_ctcaps(ctcap_nodes)),
        ds_mem=ds_mem,
        sync_caps=tuple(sync_caps),
        filter_rx=tuple(filter_rx),
        filter_caps=tuple(filter_caps),
        support_hierarchical_sync=hierarchical,
    )


def devinf_from_node(node: Node, *, ver_dtd: str | None = None) -> DevInf:
    """Build the model of a ``DevInf`` element.

    Args:
        node: the ``DevInf`` element.
        ver_dtd: the version to assume when the document has no ``VerDTD``
            (pass the enclosing message's VerDTD; libwbxml's DevInf examples,
            taken from SyncML 1.0 material, leave it out).

    Raises:
        RemoteProtocolError: status 412 naming a missing required element
            (VerDTD, DevID, DevTyp; SourceRef, Rx-Pref, Tx-Pref of a
            DataStore; CTType, PropName, ParamName, XNam), status 400 for a
            number that is not a number or an element that is not DevInf.
    """
    if node.tag != "DevInf":
        raise _fail(f"expected DevInf, found <{node.tag}>", node, BAD_REQUEST)
    ver = node.child("VerDTD")
    version = (_text(ver) if ver is not None else "") or ver_dtd
    if not version:
        raise _fail("DevInf without VerDTD", node)
    values: dict[str, str] = {}
    flags: set[str] = set()
    datastores: list[DataStore] = []
    ctcap_nodes: list[Node] = []
    exts: list[Ext] = []
    global_sync_caps: list[int] = []
    # Any order: the Sony Ericsson P900 sends DevTyp before DevID, the Z600
    # MaxGUIDSize before SourceRef, libsynthesis NumberOfChanges before LargeObjs.
    for c in node.children:
        tag = c.tag
        if tag in _TEXT_FIELDS:
            values.setdefault(tag, _text(c))
        elif tag in _FLAG_FIELDS:
            flags.add(tag)
        elif tag == "DataStore":
            datastores.append(_datastore(c))
        elif tag == "CTCap":
            ctcap_nodes.append(c)
        elif tag == "Ext":
            x_nam = _text(_required(c, "XNam", "Ext"))
            exts.append(Ext(x_nam=x_nam, x_vals=tuple(_text(v) for v in c.all("XVal"))))
        elif tag == "SyncCap":
            # libwbxml's DevInf examples (syncml-003/004) put SyncCap at DevInf
            # level: it applies to the datastores that have none of their own.
            global_sync_caps.extend(_sync_caps(c))
    for tag in ("DevID", "DevTyp"):
        if tag not in values:
            raise _fail(f"DevInf without {tag}", node)
    if global_sync_caps:
        caps = tuple(global_sync_caps)
        datastores = [ds if ds.sync_caps else replace(ds, sync_caps=caps) for ds in datastores]
    return DevInf(
        ver_dtd=version,
        man=values.get("Man"),
        mod=values.get("Mod"),
        oem=values.get("OEM"),
        fw_v=values.get("FwV"),
        sw_v=values.get("SwV"),
        hw_v=values.get("HwV"),
        dev_id=values["DevID"],
        dev_typ=values["DevTyp"],
        utc="UTC" in flags,
        support_large_objs="SupportLargeObjs" in flags,
        support_number_of_changes="SupportNumberOfChanges" in flags,
        support_hierarchical_sync="SupportHierarchicalSync" in flags,
        datastores=tuple(datastores),
        ctcaps=tuple(_ctcaps(ctcap_nodes)),
        exts=tuple(exts),
    )


_TEXT_FIELDS: Final = frozenset({"Man", "Mod", "OEM", "FwV", "SwV", "HwV", "DevID", "DevTyp"})
_FLAG_FIELDS: Final = frozenset(
    {"UTC", "SupportLargeObjs", "SupportNumberOfChanges", "SupportHierarchicalSync"}
)


# --- version conversion -----------------------------------------------------


def _is_flat(ver_dtd: str) -> bool:
    """True for the versions with the flat, global CTCap list."""
    return ver_dtd.strip() in ("1.0", "1.1")


def _flat_ctcap(c: CTCap) -> CTCap:
    """A CTCap as the 1.0/1.1 flat list can carry it: no version, no field
    level, no MaxOccur or NoTruncate."""
    props = tuple(replace(p, max_occur=None, no_truncate=False) for p in c.properties)
    return CTCap(ct_type=c.ct_type, properties=props)


def _unique(items: Iterable[CTCap]) -> tuple[CTCap, ...]:
    out: list[CTCap] = []
    for c in items:
        if c not in out:
            out.append(c)
    return tuple(out)


def _versioned_for(c: CTCap, ds: DataStore) -> CTCap:
    """A versionless (1.0/1.1) CTCap given the version the datastore uses for its type."""
    if c.ver_ct is not None:
        return c
    for ref in (*ds.rx_types, *ds.tx_types):
        if ref.matches(c.ct_type) and ref.ver_ct is not None:
            return replace(c, ver_ct=ref.ver_ct)
    return c


def convert_devinf(devinf: DevInf, ver_dtd: str | None = None) -> DevInf:
    """The DevInf as DevInf ``ver_dtd`` (default: its own VerDTD) can carry it.

    This is exactly what :func:`devinf_from_node` returns for the output of
    :func:`devinf_to_node`, so it also documents what the writer drops:

    * 1.2: the global CTCaps move into the datastores that receive or send
      their type (into every datastore when none does), getting the version
      the datastore lists for the type; without datastores they are lost.
    * 1.0/1.1: the datastores' CTCaps join the global list, without version,
      field level, MaxOccur and NoTruncate; the datastores lose Filter-Rx,
      FilterCap and SupportHierarchicalSync.
    * 1.0: no UTC, SupportLargeObjs, SupportNumberOfChanges.
    * always: no DevInf-level SupportHierarchicalSync; duplicate CTCaps once.
    """
    version = devinf.ver_dtd if ver_dtd is None else ver_dtd
    if _is_flat(version):
        merged = [*devinf.ctcaps, *(c for ds in devinf.datastores for c in ds.ctcaps)]
        datastores = tuple(
            replace(ds, ctcaps=(), filter_rx=(), filter_caps=(), support_hierarchical_sync=False)
            for ds in devinf.datastores
        )
        flags_ok = version.strip() != "1.0"
        return replace(
            devinf,
            ver_dtd=version,
            utc=devinf.utc and flags_ok,
            support_large_objs=devinf.support_large_objs and flags_ok,
            support_number_of_changes=devinf.support_number_of_changes and flags_ok,
            support_hierarchical_sync=False,
            datastores=datastores,
            ctcaps=_unique(_flat_ctcap(c) for c in merged),
        )
    stores = []
    for ds in devinf.datastores:
        own = list(ds.ctcaps)
        for g in devinf.ctcaps:
            handles = ds.can_receive(g.ct_type) or ds.can_send(g.ct_type)
            handled_elsewhere = any(
                o.can_receive(g.ct_type) or o.can_send(g.ct_type) for o in devinf.datastores
            )
            if handles or not handled_elsewhere:
                own.append(_versioned_for(g, ds))
        stores.append(replace(ds, ctcaps=_unique(own)))
    return replace(
        devinf,
        ver_dtd=version,
        support_hierarchical_sync=False,
        datastores=tuple(stores),
        ctcaps=(),
    )


# --- writing ----------------------------------------------------------------


def _leaf(tag: str, text: str) -> Node:
    return Node(tag, DEVINF, (), text)


def _flag(tag: str) -> Node:
    return Node(tag, DEVINF)


def _num(tag: str, value: int) -> Node:
    if value < 0:
        raise LocalProtocolError(f"DevInf {tag} cannot be negative ({value})")
    return _leaf(tag, str(value))


def _ct_ref_node(tag: str, ref: ContentTypeRef) -> Node:
    kids = [_leaf("CTType", ref.ct_type)]
    if ref.ver_ct is not None:
        kids.append(_leaf("VerCT", ref.ver_ct))
    return Node(tag, DEVINF, tuple(kids))


def _param_nodes(p: PropParam) -> list[Node]:
    """ParamName, ValEnum*, DataType?, DisplayName? (the same in both shapes but
    for the order of ValEnum and DataType)."""
    out = [_leaf("ParamName", p.name)]
    out.extend(_leaf("ValEnum", v) for v in p.val_enums)
    if p.data_type is not None:
        out.append(_leaf("DataType", p.data_type))
    if p.display_name is not None:
        out.append(_leaf("DisplayName", p.display_name))
    return out


def _flat_ctcap_nodes(c: CTCap) -> list[Node]:
    """CTType, then per property PropName, ValEnum*, DataType?, Size?,
    DisplayName? and its ParamName groups (DevInf 1.0/1.1)."""
    out = [_leaf("CTType", c.ct_type)]
    for p in c.properties:
        out.append(_leaf("PropName", p.name))
        out.extend(_leaf("ValEnum", v) for v in p.val_enums)
        if p.data_type is not None:
            out.append(_leaf("DataType", p.data_type))
        if p.max_size is not None:
            out.append(_num("Size", p.max_size))
        if p.display_name is not None:
            out.append(_leaf("DisplayName", p.display_name))
        for param in p.params:
            out.extend(_param_nodes(param))
    return out


def _nested_ctcap_node(c: CTCap) -> Node:
    kids = [_leaf("CTType", c.ct_type)]
    if c.ver_ct is not None:
        kids.append(_leaf("VerCT", c.ver_ct))
    if c.field_level:
        kids.append(_flag("FieldLevel"))
    for p in c.properties:
        pk = [_leaf("PropName", p.name)]
        if p.data_type is not None:
            pk.append(_leaf("DataType", p.data_type))
        if p.max_occur is not None:
            pk.append(_num("MaxOccur", p.max_occur))
        if p.max_size is not None:
            pk.append(_num("MaxSize", p.max_size))
        if p.no_truncate:
            pk.append(_flag("NoTruncate"))
        pk.extend(_leaf("ValEnum", v) for v in p.val_enums)
        if p.display_name is not None:
            pk.append(_leaf("DisplayName", p.display_name))
        for param in p.params:
            qk = [_leaf("ParamName", param.name)]
            if param.data_type is not None:
                qk.append(_leaf("DataType", param.data_type))
            qk.extend(_leaf("ValEnum", v) for v in param.val_enums)
            if param.display_name is not None:
                qk.append(_leaf("DisplayName", param.display_name))
            pk.append(Node("PropParam", DEVINF, tuple(qk)))
        kids.append(Node("Property", DEVINF, tuple(pk)))
    return Node("CTCap", DEVINF, tuple(kids))


def _datastore_node(ds: DataStore, nested: bool) -> Node:
    k = [_leaf("SourceRef", ds.source_ref)]
    if ds.display_name is not None:
        k.append(_leaf("DisplayName", ds.display_name))
    if ds.max_guid_size is not None:
        k.append(_num("MaxGUIDSize", ds.max_guid_size))
    k.append(_ct_ref_node("Rx-Pref", ds.rx_pref))
    k.extend(_ct_ref_node("Rx", r) for r in ds.rx)
    k.append(_ct_ref_node("Tx-Pref", ds.tx_pref))
    k.extend(_ct_ref_node("Tx", t) for t in ds.tx)
    if nested:
        k.extend(_nested_ctcap_node(c) for c in ds.ctcaps)
    if ds.ds_mem is not None:
        m = ds.ds_mem
        mk = []
        if m.shared_mem:
            mk.append(_flag("SharedMem"))
        if m.max_mem is not None:
            mk.append(_num("MaxMem", m.max_mem))
        if m.max_id is not None:
            mk.append(_num("MaxID", m.max_id))
        k.append(Node("DSMem", DEVINF, tuple(mk)))
    if nested and ds.support_hierarchical_sync:
        k.append(_flag("SupportHierarchicalSync"))
    if ds.sync_caps:
        types = tuple(_num("SyncType", n) for n in ds.sync_caps)
        k.append(Node("SyncCap", DEVINF, types))
    if nested:
        k.extend(_ct_ref_node("Filter-Rx", r) for r in ds.filter_rx)
        for f in ds.filter_caps:
            fk = [_leaf("CTType", f.ct_type)]
            if f.ver_ct is not None:
                fk.append(_leaf("VerCT", f.ver_ct))
            fk.extend(_leaf("FilterKeyword", w) for w in f.filter_keywords)
            fk.extend(_leaf("PropName", p) for p in f.prop_names)
            k.append(Node("FilterCap", DEVINF, tuple(fk)))
    # Never MaxObjSize here: it is not a DevInf element (pysyncml writes it).
    return Node("DataStore", DEVINF, tuple(k))


def devinf_to_node(devinf: DevInf) -> Node:
    """The ``DevInf`` element for a model, in the shape of its ``VerDTD``.

    Elements follow the DTD order; DevInf 1.0/1.1 get the flat global CTCap
    list with ``Size``, 1.2 the nested per-datastore CTCaps with ``MaxSize``.
    What a version cannot carry is left out (:func:`convert_devinf`).  Values
    are written as they are; the reader strips blanks.

    Raises:
        LocalProtocolError: no VerDTD, or a negative number.
    """
    if not devinf.ver_dtd.strip():
        raise LocalProtocolError("a DevInf needs a VerDTD")
    d = convert_devinf(devinf)
    nested = not _is_flat(d.ver_dtd)
    k = [_leaf("VerDTD", d.ver_dtd)]
    for tag, value in (
        ("Man", d.man),
        ("Mod", d.mod),
        ("OEM", d.oem),
        ("FwV", d.fw_v),
        ("SwV", d.sw_v),
        ("HwV", d.hw_v),
    ):
        if value is not None:
            k.append(_leaf(tag, value))
    k.append(_leaf("DevID", d.dev_id))
    k.append(_leaf("DevTyp", d.dev_typ))
    if d.utc:
        k.append(_flag("UTC"))
    if d.support_large_objs:
        k.append(_flag("SupportLargeObjs"))
    if d.support_number_of_changes:
        k.append(_flag("SupportNumberOfChanges"))
    k.extend(_datastore_node(ds, nested) for ds in d.datastores)
    if d.ctcaps:
        flat: list[Node] = []
        for c in d.ctcaps:
            flat.extend(_flat_ctcap_nodes(c))
        k.append(Node("CTCap", DEVINF, tuple(flat)))
    for e in d.exts:
        ek = [_leaf("XNam", e.x_nam), *(_leaf("XVal", v) for v in e.x_vals)]
        k.append(Node("Ext", DEVINF, tuple(ek)))
    # Never SupportHierarchicalSync at this level: Funambol 10 aborts on it.
    return Node("DevInf", DEVINF, tuple(k))


# --- standalone documents ---------------------------------------------------


def decode_devinf(data: bytes) -> DevInf:
    """Decode a standalone DevInf document, XML or WBXML (sniffed).

    A WBXML document that names its version only in the public identifier
    gets that version when it has no ``VerDTD``.

    Raises:
        RemoteProtocolError: malformed input or not a DevInf document (415).
    """
    from syncmld.protocol.codec import decode_document  # noqa: PLC0415 - avoids an import cycle

    doc = decode_document(data)
    if doc.root.tag != "DevInf" or doc.root.ns != DEVINF:
        raise RemoteProtocolError(
            f"expected a DevInf document, found <{doc.root.tag}>",
            status=415,
            offset=doc.root.pos if doc.root.pos >= 0 else 0,
        )
    return devinf_from_node(doc.root, ver_dtd=doc.version)


def encode_devinf(devinf: DevInf, *, wbxml: bool) -> bytes:
    """Encode a standalone DevInf document in WBXML or XML.

    Raises:
        LocalProtocolError: the model cannot be represented.
    """
    from syncmld.protocol.codec import Encoding, encode_document  # noqa: PLC0415

    version = devinf.ver_dtd.strip()
    if version not in ("1.0", "1.1", "1.2"):
        raise LocalProtocolError(f"unsupported DevInf version {devinf.ver_dtd!r}", status=505)
    return encode_document(
        devinf_to_node(devinf), Encoding.WBXML if wbxml else Encoding.XML, version=version
    )
