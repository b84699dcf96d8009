"""DevInf 1.0/1.1/1.2: every DevInf in the vectors, version conversion,
tolerance, malformed input and random round trips."""

from __future__ import annotations

import dataclasses
import functools
import random
import re
import string
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmld.protocol.codec import decode_document
from syncmld.protocol.codes import SyncMode
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
    convert_devinf,
    decode_devinf,
    devinf_from_node,
    devinf_to_node,
    encode_devinf,
)
from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.tables import DEVINF_TAGS
from syncmld.protocol.tree import DEVINF, Node
from syncmld.protocol.xml import decode_xml, encode_xml

from .conftest import DATA

VECTORS = DATA / "vectors"


# --- the vectors -------------------------------------------------------------


@functools.cache
def _devinf_nodes(path: Path) -> list[tuple[Node, str | None]]:
    """Every DevInf element of a vector file, with the document's version."""
    doc = decode_document(path.read_bytes())
    return [(n, doc.version) for n in doc.root.iter() if n.tag == "DevInf" and n.ns == DEVINF]


def _vector_files() -> list[Path]:
    files = sorted(p for p in VECTORS.rglob("*") if p.suffix in (".xml", ".wbxml"))
    return [p for p in files if _devinf_nodes(p)]


VECTOR_FILES = _vector_files()


def load(rel: str, index: int = 0) -> DevInf:
    node, version = _devinf_nodes(VECTORS / rel)[index]
    return devinf_from_node(node, ver_dtd=version)


def test_vectors_found() -> None:
    total = sum(len(_devinf_nodes(p)) for p in VECTOR_FILES)
    assert total == 61 + 12  # in XML documents, in WBXML ones (one standalone)


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: str(p.relative_to(VECTORS)))
def test_vector_round_trip(path: Path) -> None:
    nodes = _devinf_nodes(path)
    assert nodes
    for node, version in nodes:
        d = devinf_from_node(node, ver_dtd=version)
        assert devinf_from_node(devinf_to_node(d)) == d
        for wbxml in (False, True):
            assert decode_devinf(encode_devinf(d, wbxml=wbxml)) == d
        assert d.datastores
        assert d.dev_id
        assert d.ver_dtd in ("1.0", "1.1", "1.2")


def test_z600() -> None:
    """Sony Ericsson Z600, WBXML SyncML 1.0, every value OPAQUE."""
    d = load("horde/wbxml/z600_client_0.wbxml")
    assert (d.ver_dtd, d.man, d.sw_v, d.hw_v, d.dev_typ) == (
        "1.0",
        "SonyEricsson",
        "R2B",
        "R2A",
        "phone",
    )
    assert d.dev_id == "351932004600689"
    assert [ds.source_ref for ds in d.datastores] == ["EriPBDB", "EriCalDB", "EriTodoDB"]
    assert {ds.max_guid_size for ds in d.datastores} == {40}
    assert [ds.ds_mem for ds in d.datastores] == [
        DSMem(max_id=510),
        DSMem(max_id=300),
        DSMem(max_id=80),
    ]
    pb = d.datastore("EriPBDB")
    assert pb is not None
    assert pb.rx_pref == ContentTypeRef(ct_type="text/x-vcard", ver_ct="2.1")
    assert pb.rx == (ContentTypeRef(ct_type="text/vcard", ver_ct="3.0"),)
    assert pb.tx_types == (ContentTypeRef(ct_type="text/x-vcard", ver_ct="2.1"),)
    assert pb.sync_caps == (1, 2)
    assert pb.supports(SyncMode.SLOW) and not pb.supports(SyncMode.REFRESH_FROM_SERVER)
    assert not pb.supports(206)  # no SyncType 7
    assert [c.ct_type for c in d.ctcaps] == ["text/x-vcard", "text/vcard", "text/x-vcalendar"]
    vcard = d.ctcap("text/x-vcard", "2.1", source_ref="EriPBDB")
    assert vcard is d.ctcaps[0]
    tel = vcard.property("TEL")
    assert tel is not None
    assert [p.name for p in tel.params] == ["WORK", "FAX", "CELL", "HOME"]
    assert vcard.property("BEGIN") == Property(name="BEGIN", val_enums=("VCARD",))
    cal = d.ctcap("text/x-vcalendar")
    assert cal is not None
    assert cal.property("CLASS") == Property(name="CLASS", val_enums=("PUBLIC", "PRIVATE"))
    assert cal.property("END") == Property(name="END", val_enums=("VCALENDAR", "VEVENT", "VTODO"))


def _php_keys(text: str, cls: str) -> list[str]:
    return re.findall(r"'([^']+)' =>\s*" + cls + r"::__set_state", text)


def test_p900_against_hordes_notes() -> None:
    """Sony Ericsson P900, SyncML 1.0 XML: compared with Horde's dump of it."""
    d = load("horde/sessions/P900_tasksandcalendar/syncml_client_10.xml")
    notes = (VECTORS / "horde/sessions/P900_tasksandcalendar/devinf.txt").read_text()
    assert (d.ver_dtd, d.man, d.mod, d.oem) == ("1.0", "Sony Ericsson", "P900", "Symbian")
    assert (d.fw_v, d.sw_v, d.hw_v) == ("R5B02", "1.0", "R1A")
    assert (d.dev_id, d.dev_typ) == ("351965-00-340413-3", "smartphone")  # DevTyp before DevID
    (ds,) = d.datastores
    assert ds.source_ref == "c:\\Documents\\agenda\\agenda"
    assert ds.max_guid_size == 4
    assert ds.ds_mem == DSMem()  # an empty <DSMem> element
    assert ds.sync_caps == (1, 2)
    assert ds.rx_pref == ds.tx_pref == ContentTypeRef(ct_type="text/x-vcalendar", ver_ct="1.0")
    (cap,) = d.ctcaps
    assert cap.ct_type == "text/x-vcalendar" and cap.ver_ct is None
    assert [p.name for p in cap.properties] == _php_keys(notes, "SyncML_Property")
    attendee = cap.property("attendee")
    assert attendee is not None
    assert [p.name for p in attendee.params] == _php_keys(notes, "SyncML_PropertyParameter")
    begin = cap.property("BEGIN")
    assert begin is not None and begin.val_enums == ("VCALENDAR", "VEVENT", "VTODO")
    assert not (d.utc or d.support_large_objs or d.support_number_of_changes)


def test_motorola_a780() -> None:
    """Motorola A780: a minimal 1.0 DevInf without Man/Mod, in WBXML."""
    d = load("horde/wbxml/MotorolaA780.wbxml")
    assert d.man is None and d.mod is None and d.dev_typ == "phone"
    assert [ds.source_ref for ds in d.datastores] == ["contacts", "calendar", "tasks"]
    assert all(ds.sync_caps == (1, 2) for ds in d.datastores)
    contacts = d.datastore("./contacts")  # loose match
    assert contacts is not None and contacts.source_ref == "contacts"
    assert contacts.choose_rx(["text/vcard", "TEXT/X-VCARD"]) == ContentTypeRef(
        ct_type="text/x-vcard", ver_ct="2.1"
    )
    assert contacts.choose_rx(["text/calendar"]) is None


def test_synthesis_palm_standalone_devinf() -> None:
    """Synthesis PalmOS client's DevInf document (string FPI, DevInf 1.0)."""
    data = (VECTORS / "horde/wbxml/devinf.wbxml").read_bytes()
    d = decode_devinf(data)
    assert d.ver_dtd == "1.0" and d.dev_typ == "workstation"
    assert [ds.source_ref for ds in d.datastores] == ["./events", "./tasks", "./notes"]
    assert all(ds.sync_caps == (1, 2, 3, 4, 5, 6) for ds in d.datastores)
    (cap,) = d.ctcaps
    names = [p.name for p in cap.properties]
    # The client lists the event and then the task properties: some twice.
    assert names.count("SUMMARY") == 2 and names.count("DUE") == 1
    assert decode_devinf(encode_devinf(d, wbxml=True)) == d


def test_syncevolution_12() -> None:
    d = load("syncevolution/http-xml-1.2/01-first-sync-client-uploads-3-contacts/01-c2s.xml")
    assert (d.ver_dtd, d.man, d.mod, d.oem) == (
        "1.2",
        "Patrick Ohly",
        "SyncEvolution",
        "Synthesis AG",
    )
    assert (d.dev_id, d.dev_typ) == ("cA", "workstation")
    assert d.utc and d.support_large_objs and d.support_number_of_changes
    assert not d.ctcaps
    (ds,) = d.datastores
    assert (ds.source_ref, ds.display_name, ds.max_guid_size) == (
        "./addressbook",
        "addressbook",
        64,
    )
    assert ds.rx_pref == ContentTypeRef(ct_type="text/vcard", ver_ct="3.0")
    assert ds.rx == (ContentTypeRef(ct_type="text/x-vcard", ver_ct="2.1"),)
    assert ds.sync_caps == (1, 2, 3, 4, 5, 6, 7, 390001)  # 390001: libsynthesis' own
    assert all(ds.supports(code) for code in range(200, 211))
    assert [(c.ct_type, c.ver_ct) for c in ds.ctcaps] == [
        ("text/vcard", "3.0"),
        ("text/x-vcard", "2.1"),
    ]
    vcard = ds.ctcap("text/vcard", "3.0")
    assert vcard is not None and d.ctcap("text/vcard", source_ref="./addressbook") is vcard
    version = vcard.property("VERSION")
    assert version == Property(name="VERSION", max_occur=1, val_enums=("3.0",))
    tel = vcard.property("TEL")
    assert tel is not None and tel.max_occur is None
    assert tel.params == (
        PropParam(
            name="TYPE",
            val_enums=("HOME", "WORK", "VOICE", "CELL", "FAX", "PAGER", "PREF", "CAR",
                       "X-EVOLUTION-CALLBACK", "X-EVOLUTION-RADIO", "X-EVOLUTION-TELEX",
                       "X-EVOLUTION-TTYTDD"),
        ),
    )  # fmt: skip
    photo = vcard.property("PHOTO")
    assert photo is not None and [p.name for p in photo.params] == ["TYPE", "VALUE"]
    assert vcard.properties[-1].name == "X-*"


def test_syncevolution_11_flat() -> None:
    d = load("syncevolution/http-xml-1.1/01-first-sync-vcard21-vcal10-text/01-c2s.xml")
    assert d.ver_dtd == "1.1"
    assert [ds.source_ref for ds in d.datastores] == [
        "./addressbook",
        "./calendar",
        "./memo",
        "./todo",
    ]
    assert all(not ds.ctcaps for ds in d.datastores)
    assert [c.ct_type for c in d.ctcaps] == ["text/x-vcard", "text/x-vcalendar"]
    vcal = d.ctcaps[1]
    attendee = vcal.property("ATTENDEE")
    assert attendee is not None
    assert attendee.params == (
        PropParam(name="ROLE", val_enums=("ORGANIZER",)),
        PropParam(name="STATUS", val_enums=("NEEDS ACTION", "ACCEPTED", "DECLINED", "TENTATIVE",
                                            "DELEGATED")),
    )  # fmt: skip
    exdate = vcal.property("X-SYNCEVOLUTION-EXDATE-DETACHED")
    assert exdate is not None and [p.name for p in exdate.params] == ["TZID"]
    memo = d.datastore("./memo")
    assert memo is not None
    assert memo.rx_types == (
        ContentTypeRef(ct_type="text/plain", ver_ct="1.0"),
        ContentTypeRef(ct_type="text/plain", ver_ct="1.1"),
    )
    # a 1.1 CTCap has no version: it answers for every version of its type
    assert d.ctcap("text/x-vcard", "2.1") is d.ctcaps[0]


@pytest.mark.parametrize(
    "folder", ["http-wbxml-1.2/01-first-sync-4-stores-upload", "obex-tcp-wbxml/syncml"]
)
@pytest.mark.parametrize("name", ["01-c2s", "02-s2c"])
def test_syncevolution_wbxml_equals_its_xml_translation(folder: str, name: str) -> None:
    base = f"syncevolution/{folder}/{name}"
    assert load(base + ".wbxml") == load(base + ".translated.xml")


def test_pretty_printed_values_are_stripped() -> None:
    """Horde's XML rendering of a Synthesis PocketPC client's message."""
    d = load("horde/wbxml/syncml_client_packet_1.xml")
    assert d.ver_dtd == "1.1" and d.dev_id == "SySync Client PocketPC Std"
    assert d.utc and d.support_number_of_changes and d.support_large_objs
    assert d.datastores[0].max_guid_size == 64
    assert d.datastores[0].sync_caps == (1, 2, 3, 4, 5, 6)
    assert d.ctcaps[0].property("VERSION") == Property(name="VERSION", val_enums=("2.1",))


def test_libwbxml_examples_without_verdtd() -> None:
    """libwbxml's syncml-003/004: no VerDTD, SyncCap at DevInf level, 'text/x-vcard '."""
    for rel in ("libwbxml/syncml-003.xml", "libwbxml/syncml-004.xml"):
        ((node, _),) = _devinf_nodes(VECTORS / rel)
        with pytest.raises(RemoteProtocolError) as exc:
            devinf_from_node(node)
        assert exc.value.status == 412 and "VerDTD" in str(exc.value)
        d = devinf_from_node(node, ver_dtd="1.1")
        assert d.ver_dtd == "1.1"
        assert d.datastores[0].rx_pref == ContentTypeRef(ct_type="text/x-vcard", ver_ct="2.1")
    d3, d4 = load("libwbxml/syncml-003.xml"), load("libwbxml/syncml-004.xml")
    assert d3.datastores[0].sync_caps == (1, 2)  # "01", "02"
    assert d4.datastores[0].sync_caps == (1, 2, 7)
    assert d4.dev_typ == "Server"
    assert [c.ct_type for c in d4.ctcaps] == ["text/x-vcard", "text/vcard"]


def test_libwbxml_011() -> None:
    d = load("libwbxml/syncml-011.xml")
    assert d.datastores[0].ds_mem == DSMem(max_mem=32650, max_id=250)
    assert d.exts == (
        Ext(x_nam="srtmsg", x_vals=("Hello World",)),
        Ext(x_nam="endmsg", x_vals=("Goodbye",)),
    )
    assert d.ext("ENDMSG") == d.exts[1]
    assert d.datastores[0].tx == (ContentTypeRef(ct_type="text/x-vcard", ver_ct="2.1"),)


# --- version conversion --------------------------------------------------------


def _prop_summary(caps: tuple[CTCap, ...]) -> dict[str, list[tuple[object, ...]]]:
    """Per content type: the properties as the 1.1 shape can carry them."""
    return {
        c.ct_type: [
            (p.name, p.data_type, p.max_size, p.val_enums, p.display_name, p.params)
            for p in c.properties
        ]
        for c in caps
    }


def test_flat_11_to_nested_12_keeps_properties() -> None:
    d11 = load("syncevolution/http-xml-1.1/01-first-sync-vcard21-vcal10-text/01-c2s.xml")
    d12 = convert_devinf(d11, "1.2")
    assert d12.ver_dtd == "1.2" and not d12.ctcaps
    by_ref = {ds.source_ref: ds for ds in d12.datastores}
    assert [(c.ct_type, c.ver_ct) for c in by_ref["./addressbook"].ctcaps] == [
        ("text/x-vcard", "2.1")
    ]
    assert [(c.ct_type, c.ver_ct) for c in by_ref["./calendar"].ctcaps] == [
        ("text/x-vcalendar", "1.0")
    ]
    assert [(c.ct_type, c.ver_ct) for c in by_ref["./todo"].ctcaps] == [("text/x-vcalendar", "1.0")]
    assert by_ref["./memo"].ctcaps == ()  # no CTCap for text/plain
    for ds in d12.datastores:
        for cap in ds.ctcaps:
            (orig,) = [c for c in d11.ctcaps if c.ct_type == cap.ct_type]
            assert cap.properties == orig.properties
    # the 1.2 document carries it unchanged, and back in 1.1 it is the original
    assert devinf_from_node(devinf_to_node(d12)) == d12
    assert convert_devinf(d12, "1.1") == d11
    node = devinf_to_node(dataclasses.replace(d11, ver_dtd="1.2"))
    assert devinf_from_node(node) == d12


def test_nested_12_to_flat_11_keeps_properties() -> None:
    d12 = load("syncevolution/http-xml-1.2/01-first-sync-client-uploads-3-contacts/02-s2c.xml")
    d11 = convert_devinf(d12, "1.1")
    assert all(not ds.ctcaps for ds in d11.datastores)
    nested = tuple(c for ds in d12.datastores for c in ds.ctcaps)
    # the server lists text/x-vcalendar 1.0 and text/calendar 2.0 for two stores: once each
    assert len(d11.ctcaps) == len({(c.ct_type, c.ver_ct) for c in nested}) < len(nested)
    assert _prop_summary(d11.ctcaps) == _prop_summary(nested)
    assert all(p.max_occur is None for c in d11.ctcaps for p in c.properties)
    assert devinf_from_node(devinf_to_node(d11)) == d11


def test_size_and_maxsize_by_version() -> None:
    prop = Property(name="PHOTO", max_size=256, max_occur=1, no_truncate=True)
    ds = DataStore(
        source_ref="Contacts",
        rx_pref=ContentTypeRef(ct_type="text/x-vcard", ver_ct="2.1"),
        tx_pref=ContentTypeRef(ct_type="text/x-vcard", ver_ct="2.1"),
        ctcaps=(CTCap(ct_type="text/x-vcard", ver_ct="2.1", properties=(prop,)),),
        sync_caps=(1, 2),
    )
    d = DevInf(ver_dtd="1.2", dev_id="x", dev_typ="phone", datastores=(ds,))
    xml12 = encode_xml(devinf_to_node(d)).decode()
    assert "<MaxSize>256</MaxSize>" in xml12 and "<Size>" not in xml12
    assert "<MaxOccur>1</MaxOccur>" in xml12 and "<NoTruncate/>" in xml12
    xml11 = encode_xml(devinf_to_node(dataclasses.replace(d, ver_dtd="1.1"))).decode()
    assert "<Size>256</Size>" in xml11 and "MaxSize" not in xml11
    assert "MaxOccur" not in xml11 and "NoTruncate" not in xml11
    d11 = devinf_from_node(decode_xml(xml11.encode()).root)
    assert d11.ctcaps[0].properties == (Property(name="PHOTO", max_size=256),)


def test_element_order_of_the_dtd() -> None:
    d = load("syncevolution/http-xml-1.2/01-first-sync-client-uploads-3-contacts/01-c2s.xml")
    node = devinf_to_node(d)
    tags = [c.tag for c in node.children]
    assert tags == [
        "VerDTD", "Man", "Mod", "OEM", "FwV", "SwV", "HwV", "DevID", "DevTyp",
        "UTC", "SupportLargeObjs", "SupportNumberOfChanges", "DataStore",
    ]  # fmt: skip
    ds = node.child("DataStore")
    assert ds is not None
    assert [c.tag for c in ds.children] == [
        "SourceRef", "DisplayName", "MaxGUIDSize", "Rx-Pref", "Rx", "Tx-Pref", "Tx",
        "CTCap", "CTCap", "SyncCap",
    ]  # fmt: skip
    cap = ds.child("CTCap")
    assert cap is not None and [c.tag for c in cap.children[:3]] == ["CTType", "VerCT", "Property"]
    version = next(
        p for p in cap.all("Property") if p.child("PropName") == _leaf("PropName", "VERSION")
    )
    assert [c.tag for c in version.children] == ["PropName", "MaxOccur", "ValEnum"]


def _leaf(tag: str, text: str) -> Node:
    return Node(tag, DEVINF, (), text)


def _node(tag: str, *children: Node | str) -> Node:
    if len(children) == 1 and isinstance(children[0], str):
        return _leaf(tag, children[0])
    return Node(tag, DEVINF, tuple(c for c in children if isinstance(c, Node)))


def _minimal(*extra: Node, ds_extra: tuple[Node, ...] = (), ver: str = "1.2") -> Node:
    ds = _node(
        "DataStore",
        _node("SourceRef", "./contacts"),
        _node("Rx-Pref", _node("CTType", "text/x-vcard"), _node("VerCT", "2.1")),
        _node("Tx-Pref", _node("CTType", "text/x-vcard"), _node("VerCT", "2.1")),
        _node("SyncCap", _node("SyncType", "1")),
        *ds_extra,
    )
    return _node(
        "DevInf", _node("VerDTD", ver), _node("DevID", "id"), _node("DevTyp", "phone"), ds, *extra
    )


def test_pysyncml_misplaced_elements() -> None:
    """pysyncml writes MaxObjSize in DataStore and SupportHierarchicalSync at
    DevInf level; accept both, never write either there."""
    node = _minimal(_flag("SupportHierarchicalSync"), ds_extra=(_node("MaxObjSize", "4000000"),))
    d = devinf_from_node(node)
    assert d.support_hierarchical_sync
    assert not d.datastores[0].support_hierarchical_sync
    out = devinf_to_node(d)
    assert out.child("SupportHierarchicalSync") is None
    assert all(n.tag != "MaxObjSize" for n in out.iter())
    assert devinf_from_node(out) == dataclasses.replace(d, support_hierarchical_sync=False)
    # in a 1.2 DataStore the flag is written, in its DTD place
    d2 = dataclasses.replace(
        d, datastores=(dataclasses.replace(d.datastores[0], support_hierarchical_sync=True),)
    )
    ds_node = devinf_to_node(d2).child("DataStore")
    assert ds_node is not None
    tags = [c.tag for c in ds_node.children]
    assert tags.index("SupportHierarchicalSync") == tags.index("SyncCap") - 1


def _flag(tag: str) -> Node:
    return Node(tag, DEVINF)


def test_size_and_maxsize_both_read() -> None:
    for tag in ("Size", "MaxSize"):
        for ver in ("1.1", "1.2"):
            cap = _node(
                "CTCap", _node("CTType", "text/x-vcard"), _node("PropName", "N"), _node(tag, " 64 ")
            )
            d = devinf_from_node(_minimal(cap, ver=ver))
            assert d.ctcaps[0].properties == (Property(name="N", max_size=64),)
            nested = _node(
                "CTCap",
                _node("CTType", "text/x-vcard"),
                _node("Property", _node(tag, "32"), _node("PropName", "N")),
            )
            d = devinf_from_node(_minimal(ds_extra=(nested,), ver=ver))
            assert d.datastores[0].ctcaps[0].properties == (Property(name="N", max_size=32),)


def test_unknown_elements_and_opaque_values() -> None:
    node = _minimal(
        _node("Foo", "bar"),
        Node("Man", DEVINF, (), "Sony Ericsson \xe4".encode("latin-1")),  # OPAQUE, not UTF-8
        Node("Mod", DEVINF, (), "K700i ä".encode()),
        ds_extra=(_node("Bar", _node("Baz", "1")), _node("DisplayName", "  Kontakte  ")),
    )
    d = devinf_from_node(node)
    assert d.man == "Sony Ericsson ä" and d.mod == "K700i ä"
    assert d.datastores[0].display_name == "Kontakte"


def test_flat_ctcap_sequence_details() -> None:
    cap = _node(
        "CTCap",
        _node("ValEnum", "ignored: no property yet"),
        _node("CTType", "text/x-vcard"),
        _node("DisplayName", "ignored too"),
        _node("PropName", "TEL"),
        _node("DataType", "phonenumber"),
        _node("Size", "20"),
        _node("DisplayName", "Phone"),
        _node("ParamName", "TYPE"),
        _node("ValEnum", "HOME"),
        _node("ValEnum", "WORK"),
        _node("DisplayName", "Kind"),
        _node("Size", "7"),  # after a ParamName: the property's
        _node("ParamName", "PREF"),
        _node("PropName", "N"),
        _node("CTType", "text/x-vcalendar"),
        _node("VerCT", "1.0"),
        _node("PropName", "DTSTART"),
    )
    d = devinf_from_node(_minimal(cap, ver="1.1"))
    tel = Property(
        name="TEL",
        data_type="phonenumber",
        max_size=20,
        display_name="Phone",
        params=(
            PropParam(name="TYPE", val_enums=("HOME", "WORK"), display_name="Kind"),
            PropParam(name="PREF"),
        ),
    )
    assert d.ctcaps == (
        CTCap(ct_type="text/x-vcard", properties=(tel, Property(name="N"))),
        CTCap(ct_type="text/x-vcalendar", ver_ct="1.0", properties=(Property(name="DTSTART"),)),
    )


def test_nested_ctcap_any_order() -> None:
    cap = _node(
        "CTCap",
        _node("Property", _node("ValEnum", "3.0"), _node("MaxOccur", "1"),
              _node("PropName", "VERSION")),
        _flag("FieldLevel"),
        _node("VerCT", "3.0"),
        _node("CTType", "text/vcard"),
        _node("Property",
              _node("PropParam", _node("ValEnum", "CELL"), _node("ParamName", "TYPE"),
                    _node("DataType", "chr"), _node("DisplayName", "Type")),
              _node("PropName", "TEL"), _flag("NoTruncate"), _node("DisplayName", "Phone")),
    )  # fmt: skip
    d = devinf_from_node(_minimal(ds_extra=(cap,)))
    assert d.datastores[0].ctcaps == (
        CTCap(
            ct_type="text/vcard",
            ver_ct="3.0",
            field_level=True,
            properties=(
                Property(name="VERSION", max_occur=1, val_enums=("3.0",)),
                Property(
                    name="TEL",
                    no_truncate=True,
                    display_name="Phone",
                    params=(PropParam(name="TYPE", data_type="chr", val_enums=("CELL",),
                                      display_name="Type"),),
                ),
            ),
        ),
    )  # fmt: skip


def test_datastore_details() -> None:
    node = _minimal(
        ds_extra=(
            _node("Rx-Pref", _node("CTType", "text/vcard"), _node("VerCT", "3.0")),  # a second one
            _node("Rx", _node("CTType", "text/plain")),  # no VerCT
            _node("DSMem", _flag("SharedMem"), _node("MaxMem", "0032650"), _node("MaxID", "")),
            _node("SyncCap", _node("SyncType", " 7 "), _node("SyncType", "")),
            _node("Filter-Rx", _node("CTType", "text/x-vcard"), _node("VerCT", "2.1")),
            _node(
                "FilterCap",
                _node("CTType", "text/x-vcard"),
                _node("VerCT", "2.1"),
                _node("FilterKeyword", "TEL"),
                _node("PropName", "N"),
            ),
            _flag("SupportHierarchicalSync"),
            _node("MaxGUIDSize", ""),
        )
    )
    (ds,) = devinf_from_node(node).datastores
    assert ds.rx == (
        ContentTypeRef(ct_type="text/vcard", ver_ct="3.0"),
        ContentTypeRef(ct_type="text/plain"),
    )
    assert ds.ds_mem == DSMem(shared_mem=True, max_mem=32650)
    assert ds.sync_caps == (1, 7)
    assert ds.supports(206) and ds.supports(200) and not ds.supports(201) and not ds.supports(222)
    assert ds.filter_rx == (ContentTypeRef(ct_type="text/x-vcard", ver_ct="2.1"),)
    assert ds.filter_caps == (
        FilterCap(
            ct_type="text/x-vcard", ver_ct="2.1", filter_keywords=("TEL",), prop_names=("N",)
        ),
    )
    assert ds.support_hierarchical_sync
    assert ds.max_guid_size is None
    assert ds.can_receive(ContentTypeRef(ct_type="TEXT/VCARD", ver_ct="3.0"))
    assert not ds.can_receive(ContentTypeRef(ct_type="text/vcard", ver_ct="2.1"))
    assert ds.can_send("text/x-vcard") and not ds.can_send("text/vcard")
    assert ds.choose_tx(["text/x-vcard"]) == ds.tx_pref


def test_devinf_level_synccap_only_fills_datastores_without_one() -> None:
    other = _node(
        "DataStore",
        _node("SourceRef", "notes"),
        _node("Rx-Pref", _node("CTType", "text/plain")),
        _node("Tx-Pref", _node("CTType", "text/plain")),
    )
    node = _minimal(other, _node("SyncCap", _node("SyncType", "2")))
    d = devinf_from_node(node)
    assert [ds.sync_caps for ds in d.datastores] == [(1,), (2,)]


# --- malformed input -------------------------------------------------------------


def _without(node: Node, path: tuple[str, ...]) -> Node:
    """``node`` without the element at ``path`` (tags from ``node`` down)."""
    head, *rest = path
    if not rest:
        return Node(node.tag, node.ns, tuple(c for c in node.children if c.tag != head))
    kids = tuple(_without(c, tuple(rest)) if c.tag == head else c for c in node.children)
    return Node(node.tag, node.ns, kids)


@pytest.mark.parametrize(
    "path",
    [
        ("VerDTD",),
        ("DevID",),
        ("DevTyp",),
        ("DataStore", "SourceRef"),
        ("DataStore", "Rx-Pref"),
        ("DataStore", "Tx-Pref"),
        ("DataStore", "Rx-Pref", "CTType"),
        ("DataStore", "Tx", "CTType"),
        ("DataStore", "CTCap", "CTType"),
        ("DataStore", "CTCap", "Property", "PropName"),
        ("DataStore", "CTCap", "Property", "PropParam", "ParamName"),
        ("DataStore", "Filter-Rx", "CTType"),
        ("DataStore", "FilterCap", "CTType"),
        ("Ext", "XNam"),
    ],
)
def test_missing_required_element(path: tuple[str, ...]) -> None:
    full = _minimal(
        _node("Ext", _node("XNam", "x"), _node("XVal", "y")),
        ds_extra=(
            _node("Tx", _node("CTType", "text/plain")),
            _node("CTCap", _node("CTType", "text/vcard"),
                  _node("Property", _node("PropName", "TEL"),
                        _node("PropParam", _node("ParamName", "TYPE")))),
            _node("Filter-Rx", _node("CTType", "text/plain")),
            _node("FilterCap", _node("CTType", "text/plain")),
        ),
    )  # fmt: skip
    devinf_from_node(full)
    with pytest.raises(RemoteProtocolError) as exc:
        devinf_from_node(_without(full, path))
    assert exc.value.status == 412
    assert path[-1] in str(exc.value)


@pytest.mark.parametrize(
    "cap",
    [
        (_node("PropName", "N"),),  # no CTType before it
        (_node("CTType", "text/x-vcard"), _node("ParamName", "TYPE")),  # no PropName before it
        (_node("VerCT", "1.0"), _node("CTType", "text/x-vcard"), _node("PropName", "N")),
    ],
)
def test_flat_ctcap_out_of_sequence(cap: tuple[Node, ...]) -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        devinf_from_node(_minimal(_node("CTCap", *cap), ver="1.1"))
    assert exc.value.status == 412


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "1e3", "12345678901234567890", "٣", "+4"])
def test_bad_numbers(bad: str) -> None:
    node = _minimal(ds_extra=(_node("MaxGUIDSize", bad),))
    with pytest.raises(RemoteProtocolError) as exc:
        devinf_from_node(node)
    assert exc.value.status == 400 and "MaxGUIDSize" in str(exc.value)


def test_not_devinf() -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        devinf_from_node(_node("SyncML", _node("VerDTD", "1.2")))
    assert exc.value.status == 400
    with pytest.raises(RemoteProtocolError) as exc:
        decode_devinf(b"<SyncML><SyncHdr/></SyncML>")
    assert exc.value.status == 415
    with pytest.raises(RemoteProtocolError):
        decode_devinf(b"<DevInf xmlns='syncml:devinf'><VerDTD>1.2</VerDTD></DevInf")


def test_writer_refuses_what_it_cannot_write() -> None:
    d = devinf_from_node(_minimal())
    with pytest.raises(LocalProtocolError):
        devinf_to_node(dataclasses.replace(d, ver_dtd=" "))
    with pytest.raises(LocalProtocolError):
        devinf_to_node(
            dataclasses.replace(
                d, datastores=(dataclasses.replace(d.datastores[0], max_guid_size=-1),)
            )
        )
    with pytest.raises(LocalProtocolError):
        encode_devinf(dataclasses.replace(d, ver_dtd="2.0"), wbxml=False)


# Random trees made of DevInf element names: the reader answers with a model or
# a RemoteProtocolError, nothing else, and a model it returns survives writing.
_tags = st.sampled_from(sorted(DEVINF_TAGS | {"Foo", "MaxObjSize"}))
_texts = st.one_of(
    st.none(),
    st.sampled_from(["1", " 01 ", "1.2", "text/x-vcard", "", "x", "-3", "99999999999999999999"]),
    st.text(max_size=8),
    st.binary(max_size=8),
)
_trees: st.SearchStrategy[Node] = st.recursive(
    st.builds(lambda tag, text: Node(tag, DEVINF, (), text), _tags, _texts),
    lambda kids: st.builds(
        lambda tag, cs: Node(tag, DEVINF, tuple(cs)), _tags, st.lists(kids, max_size=6)
    ),
    max_leaves=40,
)


def _check_reader(node: Node) -> None:
    try:
        d = devinf_from_node(node)
    except RemoteProtocolError:
        return
    assert devinf_from_node(devinf_to_node(d)) == convert_devinf(d)


@given(st.lists(_trees, max_size=8), st.booleans())
def test_random_trees(children: list[Node], with_header: bool) -> None:
    head = (
        [_node("VerDTD", "1.1"), _node("DevID", "a"), _node("DevTyp", "b")] if with_header else []
    )
    _check_reader(Node("DevInf", DEVINF, (*head, *children)))


_REAL = [n for p in VECTOR_FILES[:6] for n, _ in _devinf_nodes(p)]


def _mutations(node: Node, data: st.DataObject) -> Node:
    """Drop, duplicate or rename a random element somewhere in ``node``."""
    if not node.children:
        return node
    i = data.draw(st.integers(0, len(node.children) - 1))
    kids = list(node.children)
    action = data.draw(st.sampled_from(["drop", "dup", "rename", "text", "down"]))
    if action == "drop":
        del kids[i]
    elif action == "dup":
        kids.insert(i, kids[i])
    elif action == "rename":
        kids[i] = dataclasses.replace(kids[i], tag=data.draw(_tags))
    elif action == "text":
        kids[i] = Node(kids[i].tag, DEVINF, (), data.draw(_texts))
    else:
        kids[i] = _mutations(kids[i], data)
    return Node(node.tag, node.ns, tuple(kids))


@given(st.sampled_from(_REAL), st.data())
def test_mutated_real_documents(node: Node, data: st.DataObject) -> None:
    for _ in range(data.draw(st.integers(1, 4))):
        node = _mutations(node, data)
    _check_reader(node)


def _stable_shuffle(children: tuple[Node, ...], rnd: random.Random) -> tuple[Node, ...]:
    """Reorder elements but keep the relative order of same-named ones."""
    order = list(range(len(children)))
    rnd.shuffle(order)
    slots: dict[str, list[int]] = {}
    for pos, i in enumerate(order):
        slots.setdefault(children[i].tag, []).append(pos)
    out: list[Node | None] = [None] * len(children)
    queues: dict[str, list[Node]] = {}
    for c in children:
        queues.setdefault(c.tag, []).append(c)
    for tag, positions in slots.items():
        for pos, c in zip(sorted(positions), queues[tag], strict=True):
            out[pos] = c
    return tuple(c for c in out if c is not None)


_SHUFFLE_TARGETS = [
    "syncevolution/http-xml-1.2/01-first-sync-client-uploads-3-contacts/01-c2s.xml",
    "syncevolution/http-xml-1.1/01-first-sync-vcard21-vcal10-text/01-c2s.xml",
    "horde/wbxml/z600_client_0.wbxml",
    "libwbxml/syncml-011.xml",
]


@given(st.sampled_from(_SHUFFLE_TARGETS), st.randoms(use_true_random=False))
def test_element_order_is_free(rel: str, rnd: random.Random) -> None:
    """DevInf, DataStore, DSMem, Property and PropParam children in any order
    (the flat CTCap is a sequence and stays as it is)."""
    node, version = _devinf_nodes(VECTORS / rel)[0]
    expected = devinf_from_node(node, ver_dtd=version)

    def shuffle(n: Node) -> Node:
        if n.tag in ("DevInf", "DataStore", "DSMem", "Property", "PropParam", "Rx", "Tx"):
            kids = tuple(shuffle(c) for c in n.children)
            return Node(n.tag, n.ns, _stable_shuffle(kids, rnd))
        if n.tag == "CTCap" and any(c.tag == "Property" for c in n.children):
            return Node(n.tag, n.ns, _stable_shuffle(tuple(shuffle(c) for c in n.children), rnd))
        return n

    assert devinf_from_node(shuffle(node), ver_dtd=version) == expected


# --- random models -----------------------------------------------------------------

_value = st.text(alphabet=string.ascii_letters + string.digits + "./:-_ äé€<&", max_size=8).map(
    str.strip
)
_ints = st.integers(min_value=0, max_value=10**18 - 1)


T = TypeVar("T")


def _opt(s: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | s


def _tuple(
    s: st.SearchStrategy[T], max_size: int = 2, *, unique: bool = False
) -> st.SearchStrategy[tuple[T, ...]]:
    return st.lists(s, max_size=max_size, unique=unique).map(tuple)


def _ct_ref() -> st.SearchStrategy[ContentTypeRef]:
    return st.builds(
        ContentTypeRef,
        ct_type=st.sampled_from(["text/x-vcard", "text/vcard", "text/plain"]) | _value,
        ver_ct=_opt(_value),
    )


def _properties(flat: bool) -> st.SearchStrategy[Property]:
    params = st.builds(
        PropParam,
        name=_value,
        data_type=_opt(_value),
        val_enums=_tuple(_value),
        display_name=_opt(_value),
    )
    return st.builds(
        Property,
        name=_value,
        data_type=_opt(_value),
        max_occur=st.none() if flat else _opt(_ints),
        max_size=_opt(_ints),
        no_truncate=st.just(False) if flat else st.booleans(),
        val_enums=_tuple(_value),
        display_name=_opt(_value),
        params=_tuple(params),
    )


def _ctcaps(flat: bool) -> st.SearchStrategy[tuple[CTCap, ...]]:
    cap = st.builds(
        CTCap,
        ct_type=_value,
        ver_ct=st.none() if flat else _opt(_value),
        field_level=st.just(False) if flat else st.booleans(),
        properties=_tuple(_properties(flat)),
    )
    return _tuple(cap, unique=True)


def _datastores(flat: bool) -> st.SearchStrategy[DataStore]:
    empty: st.SearchStrategy[tuple[object, ...]] = st.just(())
    return st.builds(
        DataStore,
        source_ref=_value,
        display_name=_opt(_value),
        max_guid_size=_opt(_ints),
        rx_pref=_ct_ref(),
        rx=_tuple(_ct_ref()),
        tx_pref=_ct_ref(),
        tx=_tuple(_ct_ref()),
        ctcaps=empty if flat else _ctcaps(flat),
        ds_mem=_opt(
            st.builds(DSMem, shared_mem=st.booleans(), max_mem=_opt(_ints), max_id=_opt(_ints))
        ),
        sync_caps=_tuple(st.integers(1, 7) | _ints, max_size=4),
        filter_rx=empty if flat else _tuple(_ct_ref()),
        filter_caps=empty
        if flat
        else _tuple(
            st.builds(
                FilterCap,
                ct_type=_value,
                ver_ct=_opt(_value),
                filter_keywords=_tuple(_value),
                prop_names=_tuple(_value),
            )
        ),
        support_hierarchical_sync=st.just(False) if flat else st.booleans(),
    )


def devinfs(version: str) -> st.SearchStrategy[DevInf]:
    """DevInf models in the shape DevInf ``version`` carries (convert_devinf leaves them alone)."""
    flat = version in ("1.0", "1.1")
    flags = st.just(False) if version == "1.0" else st.booleans()
    return st.builds(
        DevInf,
        ver_dtd=st.just(version),
        man=_opt(_value),
        mod=_opt(_value),
        oem=_opt(_value),
        fw_v=_opt(_value),
        sw_v=_opt(_value),
        hw_v=_opt(_value),
        dev_id=_value,
        dev_typ=st.sampled_from(["phone", "server", "workstation"]) | _value,
        utc=flags,
        support_large_objs=flags,
        support_number_of_changes=flags,
        datastores=_tuple(_datastores(flat), max_size=3),
        ctcaps=_ctcaps(flat) if flat else st.just(()),
        exts=_tuple(st.builds(Ext, x_nam=_value, x_vals=_tuple(_value))),
    )


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
@given(data=st.data())
def test_random_models_round_trip(version: str, data: st.DataObject) -> None:
    d = data.draw(devinfs(version))
    assert convert_devinf(d) == d
    assert devinf_from_node(devinf_to_node(d)) == d


def _any_version() -> st.SearchStrategy[DevInf]:
    return st.sampled_from(["1.0", "1.1", "1.2"]).flatmap(devinfs)


@pytest.mark.parametrize("wbxml", [False, True])
@given(d=_any_version())
def test_random_models_through_bytes(wbxml: bool, d: DevInf) -> None:
    assert decode_devinf(encode_devinf(d, wbxml=wbxml)) == d


@given(_any_version(), st.sampled_from(["1.0", "1.1", "1.2"]))
def test_conversion_between_versions(d: DevInf, target: str) -> None:
    """Any model written as another version reads back as convert_devinf says,
    and converting keeps every property a 1.1 CTCap can carry."""
    c = convert_devinf(d, target)
    assert convert_devinf(c) == c
    assert devinf_from_node(devinf_to_node(dataclasses.replace(d, ver_dtd=target))) == c
    before = {
        (cap.ct_type, p.name, p.params, p.val_enums) for cap in _all_caps(d) for p in cap.properties
    }
    after = {
        (cap.ct_type, p.name, p.params, p.val_enums) for cap in _all_caps(c) for p in cap.properties
    }
    if target in ("1.0", "1.1") or d.datastores or not d.ctcaps:
        assert before == after


def _all_caps(d: DevInf) -> list[CTCap]:
    return [*d.ctcaps, *(c for ds in d.datastores for c in ds.ctcaps)]
