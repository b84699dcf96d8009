"""The XML codec: tolerant reading of real senders, exact writing, a hardened parser."""

from __future__ import annotations

import pytest

from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.limits import Limits
from syncmld.protocol.tree import DEVINF, METINF, SYNCML, Node
from syncmld.protocol.xml import decode_xml, encode_xml, is_xml

BODY = (
    "<SyncHdr><VerDTD>1.1</VerDTD><VerProto>SyncML/1.1</VerProto><SessionID>1</SessionID>"
    "<MsgID>1</MsgID><Target><LocURI>srv</LocURI></Target><Source><LocURI>dev</LocURI></Source>"
    "<Meta>{meta}</Meta></SyncHdr><SyncBody><Final/></SyncBody>"
)


@pytest.mark.parametrize(
    ("root_attrs", "meta"),
    [
        # What Horde and pysyncml write: lower-case SyncML namespace.
        (' xmlns="syncml:syncml1.1"', '<MaxMsgSize xmlns="syncml:metinf">2700</MaxMsgSize>'),
        # The canonical form.
        (' xmlns="SYNCML:SYNCML1.1"', '<MaxMsgSize xmlns="syncml:metinf">2700</MaxMsgSize>'),
        # Funambol's Outlook client: no namespace at all.
        ("", "<MaxMsgSize>2700</MaxMsgSize>"),
        # MetInf namespace declared with a prefix.
        (' xmlns="SYNCML:SYNCML1.1" xmlns:m="syncml:metinf"', "<m:MaxMsgSize>2700</m:MaxMsgSize>"),
    ],
)
def test_namespace_variants_give_the_same_tree(root_attrs: str, meta: str) -> None:
    doc = decode_xml(f"<SyncML{root_attrs}>{BODY.format(meta=meta)}</SyncML>".encode())
    plain = BODY.format(meta="<MaxMsgSize>2700</MaxMsgSize>")
    reference = decode_xml(f"<SyncML>{plain}</SyncML>".encode())
    assert doc.root == reference.root
    max_msg = doc.root.child("SyncHdr").child("Meta").child("MaxMsgSize")  # type: ignore[union-attr]
    assert max_msg is not None
    assert max_msg.ns == METINF
    assert max_msg.text == "2700"
    assert doc.version == "1.1"


def test_carriage_returns_survive_a_round_trip() -> None:
    vcard = "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Doe;John\r\nEND:VCARD\r\n"
    root = Node("SyncML", SYNCML, (Node("Data", SYNCML, (), vcard),))
    out = encode_xml(root, version="1.2")
    assert b"&#13;" in out
    assert decode_xml(out).root.child("Data").text == vcard  # type: ignore[union-attr]


def test_cdata_and_comments_are_read() -> None:
    doc = decode_xml(
        b"<SyncML><!-- a comment --><Data><![CDATA[BEGIN:VCARD\nN:<x>&y\nEND:VCARD]]>"
        b"</Data></SyncML>"
    )
    assert doc.root.child("Data").text == "BEGIN:VCARD\nN:<x>&y\nEND:VCARD"  # type: ignore[union-attr]


def test_doctype_with_public_id_is_accepted_and_never_loaded() -> None:
    # Real clients send the DOCTYPE with the DTD's URL; we must not fetch it.
    data = (
        b'<?xml version="1.0"?>\n<!DOCTYPE SyncML PUBLIC "-//SYNCML//DTD SyncML 1.1//EN" '
        b'"http://127.0.0.1:9/never.dtd">\n<SyncML><Final/></SyncML>'
    )
    assert decode_xml(data).root.child("Final") == Node("Final", SYNCML)


def test_blank_lines_before_the_declaration_are_tolerated() -> None:
    assert is_xml(b"\r\n  <?xml version='1.0'?><SyncML/>")
    assert decode_xml(b"\r\n  <?xml version='1.0'?><SyncML/>").root.tag == "SyncML"


def test_declared_latin1_is_decoded() -> None:
    data = '<?xml version="1.0" encoding="ISO-8859-1"?><SyncML><Data>Müller</Data></SyncML>'
    doc = decode_xml(data.encode("latin-1"))
    assert doc.root.child("Data").text == "Müller"  # type: ignore[union-attr]


def test_devinf_subtree_is_devinf_even_where_names_overlap() -> None:
    doc = decode_xml(
        b"<SyncML><Data><DevInf xmlns='syncml:devinf'><VerDTD>1.2</VerDTD>"
        b"<DataStore><SourceRef>c</SourceRef></DataStore></DevInf></Data></SyncML>"
    )
    devinf = doc.root.child("Data").child("DevInf")  # type: ignore[union-attr]
    assert devinf is not None
    assert {n.ns for n in devinf.iter()} == {DEVINF}


def test_foreign_vocabulary_keeps_its_namespace() -> None:
    doc = decode_xml(
        b"<SyncML><Data><MgmtTree xmlns='syncml:dmddf1.2'><Node><Type>x</Type></Node>"
        b"</MgmtTree></Data></SyncML>"
    )
    tree = doc.root.child("Data").child("MgmtTree")  # type: ignore[union-attr]
    assert tree is not None
    assert {n.ns for n in tree.iter()} == {"syncml:dmddf1.2"}
    again = decode_xml(encode_xml(doc.root, version="1.2")).root
    assert again == doc.root


def test_writing_declares_namespaces_once_per_vocabulary() -> None:
    root = Node(
        "SyncML",
        SYNCML,
        (Node("Meta", SYNCML, (Node("Type", METINF, (), "text/x-vcard"),)),),
    )
    out = encode_xml(root, version="1.2")
    assert b'<SyncML xmlns="SYNCML:SYNCML1.2">' in out
    assert b'<Type xmlns="syncml:metinf">text/x-vcard</Type>' in out
    # SyncML 1.0 clients of Sony Ericsson and Funambol reject a SyncML namespace.
    out10 = encode_xml(root, version="1.0")
    assert b"<SyncML><Meta>" in out10


def test_mixed_content_is_refused() -> None:
    with pytest.raises(RemoteProtocolError) as err:
        decode_xml(b"<SyncML>text<Final/></SyncML>")
    assert err.value.status == 400


def test_syntax_error_names_the_byte_offset() -> None:
    data = b"<SyncML>\n<SyncHdr>\n</SyncML>"
    with pytest.raises(RemoteProtocolError) as err:
        decode_xml(data)
    assert err.value.offset is not None
    assert 9 <= err.value.offset <= len(data)


def test_entity_declarations_are_refused_before_parsing() -> None:
    with pytest.raises(RemoteProtocolError, match="entity"):
        decode_xml(b'<!DOCTYPE x [<!ENTITY a "b">]><SyncML>&a;</SyncML>')


def test_limits_are_enforced() -> None:
    with pytest.raises(RemoteProtocolError) as err:
        decode_xml(b"<SyncML/>" + b" " * 100, limits=Limits(max_size=50))
    assert err.value.status == 413
    with pytest.raises(RemoteProtocolError):
        decode_xml(b"<a>" * 70 + b"</a>" * 70)
    with pytest.raises(RemoteProtocolError) as err:
        decode_xml(b"<SyncML>" + b"<Final/>" * 20 + b"</SyncML>", limits=Limits(max_elements=10))
    assert err.value.status == 413


def test_binary_or_control_characters_cannot_be_written() -> None:
    with pytest.raises(LocalProtocolError):
        encode_xml(Node("SyncML", SYNCML, (Node("Data", SYNCML, (), b"\x00\xff"),)))
    with pytest.raises(LocalProtocolError):
        encode_xml(Node("SyncML", SYNCML, (Node("Data", SYNCML, (), "a\x01b"),)))
