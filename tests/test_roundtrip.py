"""Model-level round trips: model -> bytes -> model, in XML, in WBXML, across both.

The messages come from :mod:`tests.strategies` (every command type, nested
Sync/Atomic/Sequence, free Unicode text, anchors, Meta with every field,
Cred/Chal, 1.2 filters, SyncML 1.0/1.1/1.2).  The only difference a round
trip may introduce is the one :func:`syncmld.protocol.codec.encode_message`
documents: the DevInf ``Meta/Type`` of a Put/Get/Results names the DevInf
encoding of the message it is written in (see :func:`as_sent`).

Example counts come from the Hypothesis profile (``dev`` 50, ``ci`` 300).
"""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from syncmld.protocol.codec import (
    Encoding,
    decode_devinf,
    decode_document,
    decode_message,
    encode_devinf,
    encode_document,
    encode_message,
)
from syncmld.protocol.devinf import DevInf, convert_devinf
from syncmld.protocol.model import (
    Item,
    Location,
    Message,
    Meta,
    Put,
    SyncHdr,
)
from tests.strategies import (
    DEVINF_TYPES,
    VERSIONS,
    as_sent,
    binary_data,
    devinfs,
    messages,
    model_diff,
)


def assert_same(got: object, want: object) -> None:
    assert got == want, model_diff(want, got)


@given(msg=messages())
def test_xml_round_trip(msg: Message) -> None:
    want = as_sent(msg, Encoding.XML)
    for pretty in (False, True):
        data = encode_message(msg, Encoding.XML, pretty=pretty)
        assert data.startswith(b"<?xml")
        assert_same(decode_message(data), want)


@given(msg=messages())
def test_wbxml_round_trip_with_both_public_id_forms(msg: Message) -> None:
    want = as_sent(msg, Encoding.WBXML)
    textual = encode_message(msg, Encoding.WBXML, textual_public_id=True)
    numeric = encode_message(msg, Encoding.WBXML, textual_public_id=False)
    # String form: public id 0, index 0 into a string table holding the FPI.
    assert textual[1:3] == b"\x00\x00"
    assert f"-//SYNCML//DTD SyncML {msg.version}//EN".encode() in textual[:40]
    # Registered number (mb_u_int32 0x0FD1 / 0x0FD3 / 0x1201).
    assert numeric[1:3] == {"1.0": b"\x9f\x51", "1.1": b"\x9f\x53", "1.2": b"\xa4\x01"}[msg.version]
    assert_same(decode_message(textual), want)
    assert_same(decode_message(numeric), want)


@given(msg=messages())
def test_xml_transcoded_to_wbxml_at_tree_level(msg: Message) -> None:
    """model -> XML -> tree -> WBXML -> model: the XML tree carries everything."""
    doc = decode_document(encode_message(msg, Encoding.XML))
    assert doc.encoding is Encoding.XML
    assert doc.version == msg.version
    wbxml = encode_document(doc.root, Encoding.WBXML, version=msg.version)
    # The tree is the XML message's, DevInf types included.
    assert_same(decode_message(wbxml), as_sent(msg, Encoding.XML))


@given(msg=messages("1.2", max_commands=0), blob=binary_data())
def test_wbxml_carries_binary_item_data(msg: Message, blob: bytes) -> None:
    """Bytes (OPAQUE that is not UTF-8 text) come back as the same bytes."""
    item = Item(meta=Meta(type="application/octet-stream", format="bin"), data=blob)
    msg = dataclasses.replace(msg, commands=(*msg.commands, Put(cmd_id=99, items=(item,))))
    back = decode_message(encode_message(msg, Encoding.WBXML))
    assert_same(back, as_sent(msg, Encoding.WBXML))
    put = back.commands[-1]
    assert isinstance(put, Put)
    assert put.items[0].data == blob


@given(devinf=devinfs(), version=st.sampled_from(VERSIONS))
def test_devinf_document_round_trip(devinf: DevInf, version: str) -> None:
    """A standalone DevInf document survives either encoding.  Written as
    another VerDTD (1.2 nested CTCaps as 1.0, say), what comes back is
    exactly what ``convert_devinf`` documents."""
    # The strategy builds DevInf in the shape its own version carries.
    assert convert_devinf(devinf) == devinf
    relabelled = dataclasses.replace(devinf, ver_dtd=version)
    want = devinf if version == devinf.ver_dtd else convert_devinf(relabelled)
    for encoding in Encoding:
        data = encode_devinf(relabelled, encoding)
        assert (data[:1] == b"\x02") is (encoding is Encoding.WBXML)
        assert_same(decode_devinf(data), want)


def test_as_sent_only_touches_devinf_types() -> None:
    """The normalisation above is narrow: a vCard type is never rewritten."""
    item = Item(meta=Meta(type="text/x-vcard"), data="BEGIN:VCARD\r\nEND:VCARD\r\n")
    devinf_item = Item(meta=Meta(type="application/vnd.syncml-devinf+xml"))
    put = Put(cmd_id=1, items=(item, devinf_item), meta=Meta(type=DEVINF_TYPES[Encoding.XML]))
    hdr = SyncHdr(
        ver_dtd="1.2",
        ver_proto="SyncML/1.2",
        session_id="1",
        msg_id=1,
        target=Location(uri="srv"),
        source=Location(uri="dev"),
    )
    msg = Message(header=hdr, commands=(put,))
    sent = as_sent(msg, Encoding.WBXML).commands[0]
    assert isinstance(sent, Put)
    assert sent.meta == Meta(type=DEVINF_TYPES[Encoding.WBXML])
    assert sent.items[0] == item
    assert sent.items[1].meta == Meta(type=DEVINF_TYPES[Encoding.WBXML])
    # And the codec agrees: the WBXML message says +wbxml.
    back = decode_message(encode_message(msg, Encoding.WBXML)).commands[0]
    assert isinstance(back, Put)
    assert back.meta == sent.meta
    assert back.items[1].meta == sent.items[1].meta
    assert back.items[0] == item
