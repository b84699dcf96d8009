"""Outbox details driven by the peer: base64 items and the quirk table's message size.

Our client against our server; the client's messages are rewritten on the
way to look like the device in question.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable

from syncmld.formats.codec import FormatCodec
from syncmld.protocol.codec import Encoding, decode_message, encode_message
from syncmld.protocol.devinf import DevInf
from syncmld.protocol.model import Add, Item, Message, Meta, Put, Replace, Sync
from tests.engine.pair import Pair, vcard


def rewrite(change: Callable[[Message], Message]) -> Callable[[int, bytes], bytes]:
    def tamper(_count: int, data: bytes) -> bytes:
        return encode_message(change(decode_message(data)), Encoding.XML)

    return tamper


def b64_items(msg: Message) -> Message:
    """The client's items base64-encoded with Meta/Format b64, as Funambol clients send SIF."""

    def encode(item: Item) -> Item:
        assert isinstance(item.data, str)
        meta = dataclasses.replace(item.meta or Meta(), format="b64")
        return dataclasses.replace(
            item, data=base64.b64encode(item.data.encode()).decode(), meta=meta
        )

    commands = []
    for cmd in msg.commands:
        if isinstance(cmd, Sync):
            subs = [
                dataclasses.replace(s, items=tuple(encode(i) for i in s.items))
                if isinstance(s, Add | Replace)
                else s
                for s in cmd.commands
            ]
            commands.append(dataclasses.replace(cmd, commands=tuple(subs)))
        else:
            commands.append(cmd)
    return dataclasses.replace(msg, commands=tuple(commands))


def test_items_go_base64_to_a_peer_that_sends_base64() -> None:
    """Funambol clients send SIF base64-encoded: ours go to them the same way."""
    pair = Pair()
    pair.client_store.add(vcard(1))
    for n in range(2, 5):
        pair.server_store.add(vcard(n, "Müller"))
    outcome = pair.sync(tamper=rewrite(b64_items))
    assert outcome.ok, outcome.client.run
    sent = [decode_message(d) for d in pair.server_replies]
    adds = [s for m in sent for c in m.commands if isinstance(c, Sync) for s in c.commands]
    assert len(adds) == 3
    for add in adds:
        (item,) = add.items
        assert item.meta is not None and item.meta.format == "b64"
        assert isinstance(item.data, str)
        assert "Müller" in base64.b64decode(item.data).decode("utf-8")
    server, client = pair.normalized()
    assert server == client and len(server) == 4

    # A peer that sends plain text gets plain text.
    pair.server_store.add(vcard(9))
    assert pair.sync().ok
    sent = [decode_message(d) for d in pair.server_replies]
    (add,) = [s for m in sent for c in m.commands if isinstance(c, Sync) for s in c.commands]
    assert add.items[0].meta is None or add.items[0].meta.format is None


def sony_ericsson(msg: Message) -> Message:
    """No MaxMsgSize in the header; a DevInf saying Sony Ericsson."""
    hdr = dataclasses.replace(msg.header, meta=None)
    commands = []
    for cmd in msg.commands:
        if isinstance(cmd, Put):
            items = tuple(
                dataclasses.replace(i, data=dataclasses.replace(i.data, man="Sony Ericsson"))
                if isinstance(i.data, DevInf)
                else i
                for i in cmd.items
            )
            commands.append(dataclasses.replace(cmd, items=items))
        else:
            commands.append(cmd)
    return dataclasses.replace(msg, header=hdr, commands=tuple(commands))


def test_quirk_table_caps_messages_to_a_device_announcing_no_size() -> None:
    """Sony Ericsson phones get messages of at most 2,700 bytes (quirk table)."""
    pair = Pair(server_codec=FormatCodec("contacts"))
    for n in range(30):
        pair.server_store.add(vcard(n))
    outcome = pair.sync(tamper=rewrite(sony_ericsson))
    assert outcome.ok, outcome.client.run
    sizes = [len(d) for d in pair.server_replies]
    assert len(sizes) > 3
    assert max(sizes) <= 2700
    assert len(pair.client_store) == 30

    # Without the quirk (our own DevInf), the same items fit one message.
    other = Pair(server_codec=FormatCodec("contacts"))
    for n in range(30):
        other.server_store.add(vcard(n))
    assert other.sync(
        tamper=rewrite(
            lambda m: dataclasses.replace(m, header=dataclasses.replace(m.header, meta=None))
        )
    ).ok
    assert max(len(d) for d in other.server_replies) > 2700
