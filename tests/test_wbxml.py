"""The WBXML codec: real captures, the quirks of real senders, hostile input, round trips."""

from __future__ import annotations

import contextlib
import random
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.limits import Limits
from syncmld.protocol.tables import PUBLIC_ID_NUMBERS, fpi
from syncmld.protocol.tree import DEVINF, METINF, SYNCML, Node
from syncmld.protocol.wbxml import WbxmlDocument, decode_wbxml, encode_wbxml, is_wbxml
from syncmld.protocol.xml import decode_xml

from .wbxml_support import (
    VECTORS,
    WBXML_VECTORS,
    body,
    document,
    documents,
    el,
    expected_after_roundtrip,
    fpi_document,
    leaf,
    mb,
    opaque,
    vector_id,
)

HORDE = VECTORS / "horde/wbxml"

# SyncHdr of the §8.8 worked example, as a tree and as tokens.
HDR_TREE = el(
    "SyncHdr",
    leaf("VerDTD", "1.2"),
    leaf("VerProto", "SyncML/1.2"),
    leaf("SessionID", "1"),
    leaf("MsgID", "1"),
    el("Target", leaf("LocURI", "PC Suite")),
    el("Source", leaf("LocURI", "IMEI:123")),
)
HDR_TOKENS = body(
    0x6C,
    0x71, "1.2", 0x01,
    0x72, "SyncML/1.2", 0x01,
    0x65, "1", 0x01,
    0x5B, "1", 0x01,
    0x6E, 0x57, "PC Suite", 0x01, 0x01,
    0x67, 0x57, "IMEI:123", 0x01, 0x01,
    0x01,
)  # fmt: skip


def message(*body_children: Node) -> Node:
    """A SyncML message with the worked example's header."""
    return el("SyncML", HDR_TREE, el("SyncBody", *body_children))


def roundtrip(root: Node, version: str = "1.2", **kw: bool) -> WbxmlDocument:
    return decode_wbxml(encode_wbxml(root, version=version, **kw))


def refused(data: bytes, limits: Limits | None = None) -> RemoteProtocolError:
    """Decode ``data``, expecting a refusal with an offset inside it (or at its end)."""
    with pytest.raises(RemoteProtocolError) as info:
        if limits is None:
            decode_wbxml(data)
        else:
            decode_wbxml(data, limits=limits)
    err = info.value
    assert err.offset is not None
    assert 0 <= err.offset <= len(data)
    return err


# --- Real captures ------------------------------------------------------------


@pytest.mark.parametrize("path", WBXML_VECTORS, ids=vector_id)
def test_vector_decodes_and_roundtrips_in_both_public_id_forms(path: Path) -> None:
    doc = decode_wbxml(path.read_bytes())
    assert doc.kind in (SYNCML, DEVINF)
    assert doc.root.tag == ("SyncML" if doc.kind == SYNCML else "DevInf")
    assert doc.wbxml_version == 0x02
    assert doc.charset == 106
    for textual in (True, False):
        again = roundtrip(doc.root, doc.version, textual_public_id=textual)
        assert again.root == doc.root
        assert (again.kind, again.version) == (doc.kind, doc.version)
        if textual:
            assert again.public_id == fpi(doc.kind, doc.version)
        else:
            assert again.public_id == PUBLIC_ID_NUMBERS[doc.kind, doc.version]


def test_every_capture_is_covered() -> None:
    names = {p.name for p in WBXML_VECTORS}
    assert {
        "k500i_client_0.wbxml",
        "k700i_syncml_client_0.wbxml",
        "z600_client_0.wbxml",
        "MotorolaA780.wbxml",
        "syncml_client_packet_3.wbxml",
        "syncml_client_packet_4.wbxml",
        "syncml_client_packet_5.wbxml",
        "syncml_server_packet_1.wbxml",
        "devinf.wbxml",
    } <= names
    assert sum(1 for p in WBXML_VECTORS if "syncevolution" in p.parts) == 18


def test_sony_ericsson_sends_every_text_as_opaque_and_a_string_table_fpi() -> None:
    data = (HORDE / "k700i_syncml_client_0.wbxml").read_bytes()
    assert data[:5] == b"\x02\x00\x00\x6a\x1d"
    assert data[0x24:0x27] == b"\x71\xc3\x03"  # VerDTD, OPAQUE, 3 bytes
    doc = decode_wbxml(data)
    assert doc.public_id == "-//SYNCML//DTD SyncML 1.1//EN"
    assert (doc.kind, doc.version) == (SYNCML, "1.1")
    hdr = doc.root.child("SyncHdr")
    assert hdr is not None
    assert [(c.tag, c.text) for c in hdr.children[:4]] == [
        ("VerDTD", "1.1"),
        ("VerProto", "SyncML/1.1"),
        ("SessionID", "36"),
        ("MsgID", "1"),
    ]
    # Node.pos is the offset of the tag token.
    assert doc.root.pos == 0x22
    assert hdr.pos == 0x23
    assert hdr.children[0].pos == 0x24
    meta = hdr.child("Meta")
    assert meta is not None
    assert meta.children == (leaf("MaxMsgSize", "2700", METINF),)


def test_z600_devinf_is_a_nested_wbxml_document_inside_data() -> None:
    doc = decode_wbxml((HORDE / "z600_client_0.wbxml").read_bytes())
    body_ = doc.root.child("SyncBody")
    assert body_ is not None
    put = body_.child("Put")
    assert put is not None
    item = put.child("Item")
    assert item is not None
    data = item.child("Data")
    assert data is not None
    assert data.text is None
    (devinf,) = data.children
    assert (devinf.tag, devinf.ns) == ("DevInf", DEVINF)
    assert devinf.pos > data.pos  # offsets of the nested document are offsets in the message
    assert devinf.child("Man") == leaf("Man", "SonyEricsson", DEVINF)
    stores = [s.child("SourceRef") for s in devinf.all("DataStore")]
    assert [s.text for s in stores if s is not None] == ["EriPBDB", "EriCalDB", "EriTodoDB"]


def test_motorola_a780_numeric_public_id() -> None:
    data = (HORDE / "MotorolaA780.wbxml").read_bytes()
    assert data[:5] == b"\x02\x9f\x51\x6a\x00"
    doc = decode_wbxml(data)
    assert (doc.public_id, doc.kind, doc.version) == (0x0FD1, SYNCML, "1.0")
    # The A780 sends an empty anchor as STR_I "": the same as no content.
    last = [n for n in doc.root.iter() if n.tag == "Last"]
    assert last
    assert last[0].text is None


def test_server_challenge_nonce() -> None:
    doc = decode_wbxml((HORDE / "syncml_server_packet_1.wbxml").read_bytes())
    nonces = [n for n in doc.root.iter() if n.tag == "NextNonce"]
    assert nonces == [leaf("NextNonce", "O0JUQVAkISE=", METINF)]


def test_standalone_devinf_document() -> None:
    doc = decode_wbxml((HORDE / "devinf.wbxml").read_bytes())
    assert (doc.kind, doc.version, doc.public_id) == (
        DEVINF,
        "1.0",
        "-//SYNCML//DTD DevInf 1.0//EN",
    )
    assert doc.root.child("Man") == leaf("Man", "Synthesis AG", DEVINF)


@pytest.mark.parametrize(
    "path", [p for p in WBXML_VECTORS if "syncevolution" in p.parts], ids=vector_id
)
def test_syncevolution_wbxml_matches_its_own_xml_translation(path: Path) -> None:
    """libsynthesis dumped its own XML translation of each WBXML message."""
    ours = decode_wbxml(path.read_bytes()).root
    translated = path.with_name(path.name.replace(".wbxml", ".translated.xml"))
    theirs = decode_xml(translated.read_bytes()).root
    assert _without_cr(ours) == _without_cr(theirs)


def _without_cr(node: Node) -> Node:
    # The translation holds item data with raw CR LF, which any XML parser
    # reads as LF: only the WBXML side still has the CR.
    text = node.text
    if isinstance(text, str):
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return Node(node.tag, node.ns, tuple(_without_cr(c) for c in node.children), text)


# --- Documented encodings -------------------------------------------------------

WORKED_EXAMPLE = bytes.fromhex("02 a4 01 6a 00 6d") + HDR_TOKENS + bytes.fromhex("6b 12 01 01")


def test_worked_example_of_section_8_8_byte_for_byte() -> None:
    tree = message(leaf("Final"))
    assert encode_wbxml(tree, version="1.2", textual_public_id=False) == WORKED_EXAMPLE
    doc = decode_wbxml(WORKED_EXAMPLE)
    assert doc.root == tree
    assert (doc.kind, doc.version, doc.public_id, doc.charset) == (SYNCML, "1.2", 0x1201, 106)
    assert doc.root.pos == 5


def test_textual_public_id_header() -> None:
    out = encode_wbxml(message(leaf("Final")), version="1.1")
    assert out.startswith(b"\x02\x00\x00\x6a\x1d-//SYNCML//DTD SyncML 1.1//EN\x6d\x6c")
    out = encode_wbxml(message(leaf("Final")), version="1.1", wbxml_version=0x03)
    assert out[0] == 0x03


def test_metinf_1_1_has_no_number_and_always_gets_its_fpi() -> None:
    root = el("MetInf", leaf("Type", "text/plain", METINF), ns=METINF)
    out = encode_wbxml(root, version="1.1", textual_public_id=False)
    assert b"-//SYNCML//DTD MetInf 1.1//EN" in out
    doc = decode_wbxml(out)
    assert (doc.kind, doc.version, doc.root) == (METINF, "1.1", root)
    doc = roundtrip(root, "1.2", textual_public_id=False)
    assert (doc.public_id, doc.kind) == (0x1202, METINF)


@pytest.mark.parametrize(
    "final",
    [
        bytes([0x12]),  # no content
        bytes([0x52, 0x01]),  # content flag + immediate END, also legal (§1.4)
        bytes([0x52, 0x03, 0x00, 0x01]),  # content = an empty inline string
    ],
)
def test_both_final_forms_give_the_same_node(final: bytes) -> None:
    data = document(0x6D, HDR_TOKENS, 0x6B, final, 0x01, 0x01)
    assert decode_wbxml(data).root == message(leaf("Final"))


def test_nokia_xmlns_attribute_on_the_root_is_skipped() -> None:
    # Nokia: SyncML with attributes + content, LITERAL attribute name at index
    # 0 of a string table that is not there, STR_I value, END of attributes.
    data = document(0xED, 0x04, 0x00, "SYNCML:SYNCML1.2", 0x01, HDR_TOKENS, 0x6B, 0x12, 0x01, 0x01)
    assert decode_wbxml(data).root == message(leaf("Final"))


def test_attributes_of_every_kind_are_skipped() -> None:
    strtbl = b"name\x00value\x00"
    attrs = body(
        0x04, 0x00,  # LITERAL attribute name "name"
        0x83, 0x05,  # STR_T value
        0x00, 0x01,  # SWITCH_PAGE (attribute page)
        0x85,  # an attribute value token
        0x02, 0x41,  # ENTITY
        0xC3, 0x02, b"xy",  # OPAQUE (WBXML 1.3)
        0x05, "v",  # attribute start token, STR_I
        0x01,
    )  # fmt: skip
    data = document(0xED, attrs, HDR_TOKENS, 0x6B, 0x12, 0x01, 0x01, strtbl=strtbl)
    assert decode_wbxml(data).root == message(leaf("Final"))


def test_code_page_persists_across_elements() -> None:
    # <Meta><Type/><Format/></Meta><MsgRef>: the switch back to page 0 comes
    # late, right before the next page-0 tag (how the captures do it, §8.5).
    data = document(
        0x6D, HDR_TOKENS, 0x6B,
        0x5A, 0x00, 0x01, 0x53, "text/plain", 0x01, 0x47, "chr", 0x01, 0x01,
        0x00, 0x00, 0x12, 0x01, 0x01,
    )  # fmt: skip
    meta = el("Meta", leaf("Type", "text/plain", METINF), leaf("Format", "chr", METINF))
    assert decode_wbxml(data).root == message(meta, leaf("Final"))


def test_text_pieces_of_one_element_concatenate() -> None:
    strtbl = b"Hello\x00"
    data = document(
        0x6D, HDR_TOKENS, 0x6B,
        0x4F, 0x83, 0x00, 0x02, 0x2C, 0x03, b" w\x00", opaque(b"orld"), 0x02, 0x81, 0x2C, 0x01,
        0x12, 0x01, 0x01,
        strtbl=strtbl,
    )  # fmt: skip
    assert decode_wbxml(data).root == message(leaf("Data", "Hello, world\u00ac"), leaf("Final"))


def test_extensions_and_processing_instructions_are_ignored() -> None:
    strtbl = b"x\x00"
    data = document(
        0x43, 0x05, "pi", 0x01,  # PI before the root
        0x6D, HDR_TOKENS, 0x6B,
        0x4F, 0x40, b"ext\x00", "a", 0x80, 0x00, 0xC0, "b", 0x01,  # EXT_I_0, EXT_T_0, EXT_0
        0x12, 0x01, 0x01,
        0x43, 0x04, 0x00, 0x01,  # PI after the root
        strtbl=strtbl,
    )  # fmt: skip
    assert decode_wbxml(data).root == message(leaf("Data", "ab"), leaf("Final"))


def test_literal_tag_takes_its_name_from_the_string_table() -> None:
    strtbl = b"Final\x00X-Vendor\x00"
    # LITERAL_C "X-Vendor" with text, then LITERAL "Final" without content.
    tokens = body(0x44, 0x06, "1", 0x01, 0x04, 0x00)
    data = document(0x6D, HDR_TOKENS, 0x6B, tokens, 0x01, 0x01, strtbl=strtbl)
    assert decode_wbxml(data).root == message(leaf("X-Vendor", "1"), leaf("Final"))
    with pytest.raises(LocalProtocolError) as info:
        encode_wbxml(message(leaf("X-Vendor", "1")), version="1.2")
    assert info.value.status == 415


def test_whitespace_between_child_elements_is_dropped() -> None:
    data = document(0x6D, HDR_TOKENS, 0x6B, "\n  ", 0x12, "\r\n\t ", 0x01, 0x01)
    assert decode_wbxml(data).root == message(leaf("Final"))
    # ... but kept in a leaf.
    data = document(0x6D, HDR_TOKENS, 0x6B, 0x4F, "  ", 0x01, 0x01, 0x01)
    assert decode_wbxml(data).root == message(leaf("Data", "  "))


def test_iso_8859_1_charset() -> None:
    data = (
        b"\x02\xa4\x01\x04\x00"
        + body(0x6D, HDR_TOKENS, 0x6B, 0x4F, 0x03, b"M\xfcller \xa4\x00", 0x01)
        + body(0x4F, opaque(b"\xe9t\xe9"), 0x01, 0x01, 0x01)
    )
    doc = decode_wbxml(data)
    assert doc.charset == 4
    assert doc.root == message(leaf("Data", "Müller ¤"), leaf("Data", "été"))
    # Re-encoded in UTF-8, the text is the same.
    assert roundtrip(doc.root).root == doc.root


def test_utf16_charset_with_two_byte_terminators() -> None:
    text = "Ab\u0100"
    be = text.encode("utf-16-be")
    data = b"\x02\xa4\x01" + mb(1015) + b"\x00" + body(0x4F, 0x03, be, b"\x00\x00", 0x01)
    assert decode_wbxml(data).root == leaf("Data", text)
    le = b"\xff\xfe" + text.encode("utf-16-le")
    data = b"\x02\xa4\x01" + mb(1015) + b"\x00" + body(0x4F, 0x03, le, b"\x00\x00", 0x01)
    assert decode_wbxml(data).root == leaf("Data", text)


def test_unknown_charset_is_refused() -> None:
    err = refused(b"\x02\xa4\x01" + mb(9999) + b"\x00\x6d\x01")
    assert (err.status, err.offset) == (415, 3)


def test_opaque_everywhere_and_binary_opaque() -> None:
    data = document(
        0x6D, 0x6C, 0x71, opaque(b"1.2"), 0x01, 0x01, 0x6B,
        0x4F, opaque(b"\xff\xfe\x00binary"), 0x01,
        0x4F, opaque("vCard ü".encode()), 0x01,
        0x01, 0x01,
    )  # fmt: skip
    root = decode_wbxml(data).root
    assert root == el(
        "SyncML",
        el("SyncHdr", leaf("VerDTD", "1.2")),
        el("SyncBody", leaf("Data", b"\xff\xfe\x00binary"), leaf("Data", "vCard ü")),
    )
    out = encode_wbxml(root, version="1.2")
    assert opaque(b"\xff\xfe\x00binary") in out  # bytes go out as OPAQUE
    assert body(0x4F, "vCard ü", 0x01) in out  # text as STR_I
    assert decode_wbxml(out).root == root


def test_text_with_nul_is_written_as_opaque() -> None:
    tree = message(leaf("Data", "a\x00b"))
    out = encode_wbxml(tree, version="1.2")
    assert opaque(b"a\x00b") in out
    assert decode_wbxml(out).root == tree
    with pytest.raises(LocalProtocolError):
        encode_wbxml(message(el("Meta", leaf("NextNonce", "a\x00", METINF))), version="1.2")


def test_never_writes_str_t_and_switches_page_only_on_change() -> None:
    meta = el("Meta", leaf("Type", "x", METINF), leaf("Format", "y", METINF))
    out = encode_wbxml(message(meta, meta, leaf("Final")), version="1.2", textual_public_id=False)
    # Into page 1 inside each Meta, back to page 0 right before the next page-0 tag.
    page1 = body(0x5A, 0x00, 0x01, 0x53, "x", 0x01, 0x47, "y", 0x01, 0x01, 0x00, 0x00)
    assert out == WORKED_EXAMPLE[:-4] + body(0x6B, page1, page1, 0x12, 0x01, 0x01)


def test_nextnonce_as_opaque_is_base64_text() -> None:
    nonce = b"\x00\x01\xfe\xff;BTAP$!!"
    chal = el("Chal", el("Meta", leaf("NextNonce", nonce, METINF)))
    data = encode_wbxml(message(chal), version="1.1")
    assert opaque(nonce) in data
    got = [n for n in decode_wbxml(data).root.iter() if n.tag == "NextNonce"]
    assert got == [leaf("NextNonce", "AAH+/ztCVEFQJCEh", METINF)]
    # Written as text, it stays STR_I text.
    chal = el("Chal", el("Meta", leaf("NextNonce", "AAH+/ztCVEFQJCEh", METINF)))
    data = encode_wbxml(message(chal), version="1.1")
    assert body(0x50, "AAH+/ztCVEFQJCEh", 0x01) in data
    assert decode_wbxml(data).root == message(chal)


DEVINF_11 = el(
    "DevInf",
    leaf("VerDTD", "1.1", DEVINF),
    leaf("DevID", "IMEI:1", DEVINF),
    el(
        "CTCap",
        leaf("CTType", "text/x-vcard", DEVINF),
        leaf("PropName", "N", DEVINF),
        leaf("Size", "40", DEVINF),
        ns=DEVINF,
    ),
    ns=DEVINF,
)


def test_nested_devinf_in_data_roundtrips() -> None:
    put = el("Put", leaf("CmdID", "1"), el("Item", el("Data", DEVINF_11)))
    tree = message(put)
    for textual in (True, False):
        out = encode_wbxml(tree, version="1.2", textual_public_id=textual)
        # The nested document's public id follows its VerDTD (1.1).
        nested = (
            b"\x02\x00\x00\x6a\x1d-//SYNCML//DTD DevInf 1.1//EN"
            if textual
            else b"\x02\x9f\x54\x6a\x00"
        )
        assert nested in out
        assert decode_wbxml(out).root == tree


def test_devinf_token_0x1c_is_maxsize_in_1_2_and_size_before() -> None:
    for version, name in (("1.0", "Size"), ("1.1", "Size"), ("1.2", "MaxSize")):
        data = document(0x4A, 0x5C, "10", 0x01, 0x01, public_id=PUBLIC_ID_NUMBERS[DEVINF, version])
        assert decode_wbxml(data).root == el("DevInf", leaf(name, "10", DEVINF), ns=DEVINF)
    # Both names encode to the same token.
    for name in ("Size", "MaxSize"):
        out = encode_wbxml(el("DevInf", leaf(name, "1", DEVINF), ns=DEVINF), version="1.2")
        assert out.endswith(body(0x4A, 0x5C, "1", 0x01, 0x01))


def test_unknown_public_id_infers_kind_from_root_and_version_from_verdtd() -> None:
    doc = decode_wbxml(document(0x6D, 0x6C, 0x71, "1.1", 0x01, 0x01, 0x01, public_id=1))
    assert (doc.kind, doc.version, doc.public_id) == (SYNCML, "1.1", 1)
    # A DevInf document: DevInf 0x0A would be Cmd on the SyncML page, and the
    # 1.1 VerDTD makes 0x1C Size.
    data = document(0x4A, 0x65, "1.1", 0x01, 0x5C, "5", 0x01, 0x01, public_id=1)
    doc = decode_wbxml(data)
    assert (doc.kind, doc.version) == (DEVINF, "1.1")
    assert doc.root == el(
        "DevInf", leaf("VerDTD", "1.1", DEVINF), leaf("Size", "5", DEVINF), ns=DEVINF
    )
    # Unknown FPI (an OMA DM DDF): kind from the root; no VerDTD: 1.2.
    doc = decode_wbxml(fpi_document("-//OMA//DTD-DM-DDF 1.2//EN", 0x6D, 0x12, 0x01))
    assert (doc.kind, doc.version, doc.public_id) == (SYNCML, "1.2", "-//OMA//DTD-DM-DDF 1.2//EN")


def test_fpi_read_up_to_nul_or_end_of_table() -> None:
    raw = b"-//SYNCML//DTD SyncML 1.0//EN\x00other\x00"
    data = b"\x02\x00\x00\x6a" + mb(len(raw)) + raw + body(0x6D, 0x12, 0x01)
    doc = decode_wbxml(data)
    assert (doc.public_id, doc.version) == ("-//SYNCML//DTD SyncML 1.0//EN", "1.0")
    # FPI at a non-zero index.
    raw = b"junk\x00-//SYNCML//DTD DevInf 1.2//EN"
    data = b"\x02\x00\x05\x6a" + mb(len(raw)) + raw + body(0x0A)
    assert decode_wbxml(data).kind == DEVINF


def test_document_kind_follows_the_public_id() -> None:
    for (kind, version), number in PUBLIC_ID_NUMBERS.items():
        root = {SYNCML: leaf("SyncML"), DEVINF: leaf("DevInf", ns=DEVINF)}.get(kind)
        if root is None:
            root = leaf("MetInf", ns=METINF)
        for textual in (True, False):
            doc = roundtrip(root, version, textual_public_id=textual)
            assert (doc.kind, doc.version) == (kind, version)
            assert doc.public_id == (fpi(kind, version) if textual else number)


def test_nokia_devinf_code_page_2_in_a_syncml_document() -> None:
    # Nokia's DS 1.2 filter generator writes DevInf Property on page 2 (§8.6).
    data = document(
        0x6D, HDR_TOKENS, 0x6B,
        0x76, 0x4F, 0x00, 0x02, 0x6B, 0x58, "TEL", 0x01, 0x1C, 0x01, 0x01, 0x01,
        0x00, 0x00, 0x01, 0x01,
    )  # fmt: skip
    prop = el("Property", leaf("PropName", "TEL", DEVINF), leaf("MaxSize", ns=DEVINF), ns=DEVINF)
    tree = message(el("Filter", el("Data", prop)))
    assert decode_wbxml(data).root == tree
    assert roundtrip(tree).root == tree


# --- Sniffing -------------------------------------------------------------------


def test_is_wbxml() -> None:
    for path in WBXML_VECTORS:
        assert is_wbxml(path.read_bytes())
    assert is_wbxml(WORKED_EXAMPLE)
    assert not is_wbxml(b"<?xml version='1.0'?><SyncML/>")
    assert not is_wbxml(b"")
    assert not is_wbxml(b"\x02")
    assert not is_wbxml(b"\x04\xa4\x01\x6a\x00\x6d")
    assert not is_wbxml(b"\x02\xa4\x01\x6a\x7f\x6d")  # string table past the end
    assert not is_wbxml(b"\x02\xa4\x01\x6a\x00")  # no body


# --- Encoding errors ------------------------------------------------------------


def test_encoding_refuses_what_wbxml_cannot_carry() -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode_wbxml(message(leaf("NoSuchElement")), version="1.2")
    assert info.value.status == 415
    with pytest.raises(LocalProtocolError) as info:
        encode_wbxml(Node("MgmtTree", "urn:oma:dm"), version="1.2")
    assert info.value.status == 415
    with pytest.raises(LocalProtocolError):  # SyncML element in a DevInf document
        encode_wbxml(el("DevInf", leaf("LocURI", "x"), ns=DEVINF), version="1.2")
    with pytest.raises(LocalProtocolError):
        encode_wbxml(message(leaf("Data", "\ud800")), version="1.2")
    with pytest.raises(LocalProtocolError):
        encode_wbxml(message(), version="2.0")
    with pytest.raises(LocalProtocolError):
        encode_wbxml(message(), version="1.2", wbxml_version=4)


# --- Malformed input ------------------------------------------------------------


def test_truncated_mb_u_int32() -> None:
    err = refused(b"\x02\xa4")  # public id cut short
    assert err.offset == 1
    err = refused(document(0x6D, 0x6B, 0x4F, 0xC3, 0x81))  # OPAQUE length cut short
    assert err.offset == 9


def test_over_long_mb_u_int32() -> None:
    err = refused(b"\x02\x80\x80\x80\x80\x80\x01\x6a\x00\x6d\x01")  # six bytes
    assert err.offset == 1
    err = refused(b"\x02\x90\x80\x80\x80\x00\x6a\x00\x6d\x01")  # 2**32
    assert err.offset == 1
    assert "32 bits" in err.message
    # Five bytes within 32 bits are fine (leading zero groups included).
    doc = decode_wbxml(b"\x02\x80\x80\x80\xa4\x01\x6a\x00\x6d\x01")
    assert doc.public_id == 0x1201


def test_string_table_references_outside_the_table() -> None:
    strtbl = b"abc\x00"
    err = refused(document(0x6D, 0x4F, 0x83, 0x04, 0x01, 0x01, strtbl=strtbl))  # STR_T
    assert err.offset == 11
    err = refused(document(0x6D, 0x44, 0x09, 0x01, 0x01, strtbl=strtbl))  # LITERAL
    assert err.offset == 10
    err = refused(document(0xED, 0x04, 0x05, 0x01, 0x01, strtbl=strtbl))  # attribute name
    assert err.offset == 10
    err = refused(b"\x02\x00\x04\x6a\x04abc\x00\x6d\x01")  # public id index
    assert err.offset == 2
    err = refused(b"\x02\x00\x00\x6a\x00\x6d\x01")  # FPI index but no table at all
    assert err.offset == 2
    err = refused(b"\x02\xa4\x01\x6a\x10abc")  # table longer than the document
    assert err.offset == 4


def test_opaque_length_past_the_end() -> None:
    err = refused(document(0x6D, 0x4F, 0xC3, 0x20, b"short", 0x01, 0x01))
    assert err.offset == 7


@pytest.mark.parametrize(
    ("data", "offset", "words"),
    [
        (document(0x6D, 0x00, 0x07, 0x12, 0x01), 6, "code page"),
        (document(0x6D, 0x30, 0x01), 6, "unknown tag"),  # 0x30 is unused on page 0
        (document(0x4A, 0x2F, 0x01, public_id=0x1203), 6, "unknown tag"),  # unused in DevInf
        (document(0x01), 5, "before the root"),  # END without an open element
        (document(0x03, "x", 0x00), 5, "before the root"),  # text outside the root
        (document(0x6D, 0x6B, 0x12, 0x01), 9, "missing END"),  # missing END at EOF
        (document(0x6D, 0x12, 0x01, 0x01), 8, "trailing"),  # one END too many
        (document(0x12, 0x12), 6, "trailing"),  # second root
        (document(0x6D, 0x4F, 0x03, b"no terminator"), 7, "unterminated"),
        (document(0x6D, 0x4F, 0x02, 0x8F, 0xFF, 0xFF, 0x7F, 0x01, 0x01), 7, "ENTITY"),
        (document(0x6D, 0x4B, 0x03, b"\xff\xfe\x00", 0x01, 0x01), 7, "charset"),  # bad UTF-8
        (document(0xED, 0x44, 0x00, 0x01, 0x01, strtbl=b"a\x00"), 8, "attribute"),
        (document(0x6D, 0x00), 6, "SWITCH_PAGE"),
        (document(), 5, "no root"),
        (b"\x00\xa4\x01\x6a\x00\x6d\x01", 0, "version"),  # WBXML 1.0 has no charset field
        (b"", 0, "empty"),
    ],
)
def test_malformed_documents_are_refused_with_an_offset(
    data: bytes, offset: int, words: str
) -> None:
    err = refused(data)
    assert err.offset == offset, err
    assert words.lower() in err.message.lower()


def test_deep_nesting_is_refused_without_recursion() -> None:
    deep = document(*([0x54] * 100_000), *([0x01] * 100_000))  # 100k nested Items
    start = time.perf_counter()
    err = refused(deep)
    assert err.offset == 5 + Limits().max_depth
    # Even when the limit allows it, the decoder does not recurse.
    doc = decode_wbxml(deep, limits=Limits(max_depth=200_000))
    depth = 0
    node: Node | None = doc.root
    while node is not None:
        depth += 1
        node = node.children[0] if node.children else None
    assert depth == 100_000
    # ... and a document that never closes them ends in "missing END".
    err = refused(document(*([0x54] * 100_000)), limits=Limits(max_depth=200_000))
    assert err.offset == 5 + 100_000
    assert time.perf_counter() - start < 20


def test_too_many_elements() -> None:
    data = document(0x6D, 0x6B, *([0x12] * 100), 0x01, 0x01)
    err = refused(data, Limits(max_elements=50))
    assert (err.status, err.offset) == (413, 7 + 48)
    assert decode_wbxml(data, limits=Limits(max_elements=102)).root.tag == "SyncML"


def test_nested_devinf_counts_against_the_same_limits() -> None:
    tree = message(el("Put", el("Item", el("Data", DEVINF_11))))
    data = encode_wbxml(tree, version="1.2")
    n = sum(1 for _ in tree.iter())
    assert decode_wbxml(data, limits=Limits(max_elements=n)).root == tree
    err = refused(data, Limits(max_elements=n - 1))
    assert err.status == 413
    nested_at = data.index(b"\x02\x00\x00\x6a\x1d-//SYNCML//DTD DevInf")
    assert err.offset is not None
    assert err.offset > nested_at  # reported in the outer document's offsets
    # SyncML/SyncBody/Put/Item/Data/DevInf/CTCap/CTType: depth 8.
    assert decode_wbxml(data, limits=Limits(max_depth=8)).root == tree
    err = refused(data, Limits(max_depth=7))
    assert err.offset is not None
    assert err.offset > nested_at


def test_broken_nested_devinf_is_reported_at_its_offset() -> None:
    inner = b"\x02\x9f\x54\x6a\x00" + body(0x4A, 0x2F, 0x01)  # unused DevInf token 0x2F
    data = document(0x6D, 0x6B, 0x4F, opaque(inner), 0x01, 0x01, 0x01)
    err = refused(data)
    assert err.offset == data.index(inner) + 6
    # Opaque data that merely starts like WBXML but is not DevInf stays data.
    other = b"\x02\x9f\x53\x6a\x00\x6d\x01"  # a SyncML 1.1 document
    data = document(0x6D, 0x6B, 0x4F, opaque(other), 0x01, 0x01, 0x01)
    assert decode_wbxml(data).root == el("SyncML", el("SyncBody", leaf("Data", other)))


def test_input_larger_than_max_size_is_refused_before_parsing() -> None:
    big = b"\x02" + bytes(100 * 1024 * 1024)
    start = time.perf_counter()
    err = refused(big)
    assert time.perf_counter() - start < 1
    assert err.status == 413
    assert err.offset == Limits().max_size
    small = Limits(max_size=len(WORKED_EXAMPLE) - 1)
    assert refused(WORKED_EXAMPLE, small).status == 413
    assert decode_wbxml(WORKED_EXAMPLE, limits=Limits(max_size=len(WORKED_EXAMPLE))).root


def test_string_table_amplification_is_refused() -> None:
    strtbl = b"x" * 60_000 + b"\x00"
    refs = b"\x83\x00" * 10_000  # 20 kB of references to 600 MB of text
    data = document(0x6D, 0x4F, refs, 0x01, 0x01, strtbl=strtbl)
    err = refused(data)
    assert err.status == 413


@pytest.mark.parametrize(
    ("pieces", "text"),
    [
        (b"\x03ab\x00" * 5_000, "ab" * 5_000),  # tiny STR_I
        (opaque(b"\xc3") + opaque(b"\xa9"), "é"),  # one character split over two OPAQUEs
        ((opaque(b"\xc3") + opaque(b"\xa9")) * 3_000, "é" * 3_000),
        ((b"\x02\x41" + opaque(b"\xc3") + opaque(b"\xa9")) * 2_000, "Aé" * 2_000),
        (b"\x02\x82\x2c\x03xy\x00" * 3_000, "\u012cxy" * 3_000),  # ENTITY and STR_I
    ],
    ids=["str_i", "split", "split-many", "entity-split", "entity-str_i"],
)
def test_text_in_many_small_pieces(pieces: bytes, text: str) -> None:
    assert decode_wbxml(document(0x4F, pieces, 0x01)).root == leaf("Data", text)


def test_text_in_tiny_pieces_costs_memory_near_its_input_size() -> None:
    """Thousands of 3-byte tokens must not become thousands of 50-byte objects."""
    data = document(0x4F, b"\x02\x82\x2c\x03xy\x00" * 6_000, 0x01)
    tracemalloc.start()
    try:
        decode_wbxml(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * len(data)


def test_garbage_mutations_raise_only_remote_protocol_errors() -> None:
    """A few thousand random mutations of the captures: decode accepts or refuses."""
    rng = random.Random(20240611)
    seeds = [p.read_bytes() for p in WBXML_VECTORS if p.stat().st_size < 12_000]
    seeds.append(encode_wbxml(message(el("Put", el("Item", el("Data", DEVINF_11)))), version="1.2"))
    limits = Limits(max_elements=5_000)
    start = time.perf_counter()
    accepted = 0
    for k in range(3_000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            if not data:
                break
            op = rng.randrange(6)
            at = rng.randrange(len(data))
            if op == 0:
                data[at] = rng.randrange(256)
            elif op == 1:
                data[at] ^= 1 << rng.randrange(8)
            elif op == 2:
                del data[at : at + rng.randint(1, 8)]
            elif op == 3:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
            elif op == 4:
                del data[at:]
            else:
                data[at : at + 1] = rng.choice([b"\x00", b"\x01", b"\x03", b"\x83", b"\xc3"])
        try:
            doc = decode_wbxml(bytes(data), limits=limits)
        except RemoteProtocolError as err:
            assert err.offset is not None, (k, err)
            assert 0 <= err.offset <= len(data), (k, err)
            continue
        accepted += 1
        # What was accepted can be written again, or is refused cleanly.
        with contextlib.suppress(LocalProtocolError):
            encode_wbxml(doc.root, version=doc.version)
    assert accepted > 0
    assert time.perf_counter() - start < 60


def test_decoding_is_fast_and_linear() -> None:
    """A 1 MB Sync of 2,000 vCards (a regression guard far below the ~20 MB/s measured)."""
    vcard = "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Doe;John\r\nNOTE:" + "x" * 420 + "\r\nEND:VCARD\r\n"
    adds = [
        el(
            "Add",
            leaf("CmdID", str(k)),
            el("Meta", leaf("Type", "text/x-vcard", METINF)),
            el("Item", el("Source", leaf("LocURI", f"{k}.vcf")), leaf("Data", vcard)),
        )
        for k in range(2_000)
    ]
    tree = message(el("Sync", leaf("CmdID", "1"), *adds), leaf("Final"))
    data = encode_wbxml(tree, version="1.2")
    assert len(data) > 1_000_000
    limits = Limits(max_size=2_000_000)
    best = min(_timed(lambda: decode_wbxml(data, limits=limits)) for _ in range(3))
    assert decode_wbxml(data, limits=limits).root == tree
    assert best < 1.0, f"decoding 1 MB took {best:.2f} s"
    best = min(_timed(lambda: encode_wbxml(tree, version="1.2")) for _ in range(3))
    assert best < 1.0, f"encoding 1 MB took {best:.2f} s"


def _timed(fn: object) -> float:
    assert callable(fn)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --- Round-trip property ----------------------------------------------------------


@given(documents(), st.booleans(), st.sampled_from([0x01, 0x02, 0x03]))
def test_random_trees_roundtrip(doc: tuple[Node, str], textual: bool, wbxml_version: int) -> None:
    root, version = doc
    data = encode_wbxml(
        root, version=version, textual_public_id=textual, wbxml_version=wbxml_version
    )
    assert is_wbxml(data)
    back = decode_wbxml(data, limits=Limits(max_depth=1_000))
    assert back.root == expected_after_roundtrip(root)
    assert (back.kind, back.version, back.wbxml_version) == (root.ns, version, wbxml_version)


def test_item_data_in_another_charset_is_kept_as_bytes() -> None:
    # Sony Ericsson phones put ISO-8859-1 vCards into UTF-8 documents; the
    # engine decodes such item data itself, so Data keeps the raw bytes.
    raw = "N:Müller\r\n".encode("latin-1")
    doc = decode_wbxml(document(0x6D, 0x4F, 0x03, raw + b"\x00", 0x01, 0x01))
    assert doc.root.child("Data") is not None
    assert doc.root.child("Data").text == raw  # type: ignore[union-attr]
