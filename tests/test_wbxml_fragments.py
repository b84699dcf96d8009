"""The WBXML encoder's shortcut for common commands writes the same bytes as the tree.

``command_fragment`` writes Status, Add, Replace and Delete straight to WBXML;
every message must encode byte for byte as it does through the element tree,
errors included, and decode back to the same model.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.strategies as S
from syncmld.protocol.codec import Encoding, decode_message, encode_message
from syncmld.protocol.errors import LocalProtocolError
from syncmld.protocol.mapping import message_to_node
from syncmld.protocol.model import (
    Add,
    Command,
    Delete,
    Item,
    Location,
    Message,
    Meta,
    Replace,
    Status,
    Sync,
    SyncHdr,
)
from syncmld.protocol.wbxml import command_fragment, encode_wbxml

_text = st.text(max_size=8)
_ints = st.integers(0, 300)
_metas = st.builds(
    Meta,
    type=st.none() | _text,
    format=st.none() | _text,
    size=st.none() | st.integers(0, 10**6),
    mark=st.none() | _text,
    version=st.none() | _text,
    max_obj_size=st.none() | _ints,
    field_level=st.booleans(),
    emi=st.lists(_text, max_size=2).map(tuple),
)
_locations = st.builds(Location, uri=_text)
_items = st.lists(
    st.builds(
        Item,
        target=st.none() | _locations,
        source=st.none() | _locations,
        meta=st.none() | _metas,
        data=st.none() | _text | st.binary(max_size=5),
        more_data=st.booleans(),
    ),
    max_size=2,
).map(tuple)
_statuses = st.builds(
    Status,
    cmd_id=_ints,
    msg_ref=st.none() | _ints,
    cmd_ref=_ints,
    cmd=st.sampled_from(["Add", "Sync", "Alert"]),
    target_refs=st.lists(_text, max_size=2).map(tuple),
    source_refs=st.lists(_text, max_size=2).map(tuple),
    data=st.integers(100, 599),
    items=_items,
)
_changes = st.one_of(
    st.builds(Add, cmd_id=_ints, meta=st.none() | _metas, items=_items, no_resp=st.booleans()),
    st.builds(Replace, cmd_id=_ints, meta=st.none() | _metas, items=_items),
    st.builds(
        Delete,
        cmd_id=_ints,
        meta=st.none() | _metas,
        items=_items,
        archive=st.booleans(),
        sft_del=st.booleans(),
    ),
)
_syncs = st.builds(
    Sync,
    cmd_id=_ints,
    target=st.none() | _locations,
    source=st.none() | _locations,
    commands=st.lists(_changes, max_size=3).map(tuple),
)


def _both(msg: Message, version: str) -> tuple[object, object]:
    out: list[object] = []
    for fast in (None, command_fragment):
        try:
            out.append(encode_wbxml(message_to_node(msg, fast), version=version))
        except LocalProtocolError as exc:
            out.append(("error", str(exc)))
    return out[0], out[1]


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    S.headers("1.2"),
    st.lists(st.one_of(_statuses, _changes, _syncs, S.commands("1.2")), max_size=4),
    st.booleans(),
    st.sampled_from(["1.1", "1.2"]),
)
def test_fragments_encode_as_the_tree_does(
    header: SyncHdr, commands: list[Command], final: bool, version: str
) -> None:
    msg = Message(header=header, commands=tuple(commands), final=final)
    plain, fast = _both(msg, version)
    assert fast == plain


def test_a_sync_message_takes_the_shortcut_and_round_trips() -> None:
    vcard = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jürgen\r\nEND:VCARD\r\n"
    add = Add(
        cmd_id=3,
        meta=Meta(type="text/vcard"),
        items=(Item(source=Location(uri="17"), data=vcard),),
    )
    status = Status(cmd_id=2, msg_ref=1, cmd_ref=4, cmd="Add", source_refs=("9",), data=201)
    assert command_fragment(add) is not None and command_fragment(status) is not None
    header = SyncHdr(
        ver_dtd="1.2",
        ver_proto="SyncML/1.2",
        session_id="1",
        msg_id=2,
        target=Location(uri="http://example.org/sync"),
        source=Location(uri="phone"),
    )
    sync = Sync(
        cmd_id=1, target=Location(uri="contacts"), source=Location(uri="card"), commands=(add,)
    )
    msg = Message(header=header, commands=(status, sync), final=True)
    data = encode_message(msg, Encoding.WBXML)
    assert decode_message(data) == msg
    assert _both(msg, "1.2")[0] == data
