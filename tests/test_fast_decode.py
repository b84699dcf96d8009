"""The WBXML decoder's direct path from tokens to commands gives what the tree path gives.

``decode_message`` reads the common commands of a WBXML message (``Status``
in ``SyncBody``; ``Add``/``Replace``/``Delete`` in ``Sync``) straight into
the model; ``decode_message(..., fast=False)`` builds the whole element tree
and maps it.  Every test here decodes the same bytes both ways and requires
the same message, or the same error (class, status, offset and text):

* Hypothesis messages of every kind (:mod:`tests.strategies`) and messages
  made of the common commands only, written by the byte writer
  (``command_fragment``) and by the tree encoder, then mutated byte by byte;
* every vector under ``tests/data/vectors`` (XML ones re-encoded as WBXML),
  whole and cut short;
* hand-built documents for the shapes the direct path has to get right or
  leave alone (duplicate elements, limits, OPAQUE data, page switches).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmld.protocol.codec import (
    Encoding,
    decode_document,
    decode_message,
    encode_document,
    encode_message,
)
from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.limits import Limits
from syncmld.protocol.mapping import message_to_node
from syncmld.protocol.model import (
    Add,
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
from syncmld.protocol.tree import Decoded
from syncmld.protocol.wbxml import decode_wbxml
from tests.strategies import messages
from tests.wbxml_support import VECTORS, document, opaque, vector_id

Outcome = Message | tuple[str, str, int, int | None]


def outcome(data: bytes, *, fast: bool, limits: Limits | None = None) -> Outcome:
    """The decoded message, or the error's class, text, status and offset."""
    try:
        if limits is None:
            return decode_message(data, fast=fast)
        return decode_message(data, fast=fast, limits=limits)
    except RemoteProtocolError as e:
        return (type(e).__name__, str(e), e.status, e.offset)


def assert_same_both_ways(data: bytes, limits: Limits | None = None) -> Outcome:
    """Decode ``data`` on both paths; they must agree.  Returns the outcome."""
    got = outcome(data, fast=True, limits=limits)
    want = outcome(data, fast=False, limits=limits)
    assert got == want
    return got


def decoded_count(data: bytes) -> int:
    """How many commands of ``data`` the direct path read."""
    root = decode_wbxml(data, commands=True).root
    return sum(type(n) is Decoded for n in root.iter())


# --- generated messages ----------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12).map(str.strip)
_ints = st.integers(min_value=0, max_value=2**31 - 1)
_versions = st.sampled_from(("1.0", "1.1", "1.2"))


def _opt(s: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | s


_metas = st.builds(
    Meta,
    type=_opt(st.sampled_from(("text/x-vcard", "text/vcard")) | _text),
    format=_opt(st.sampled_from(("chr", "b64"))),
    size=_opt(_ints),
    version=_opt(_text),
    mark=_opt(_text),
    max_obj_size=_opt(_ints),
    emi=st.lists(_text, max_size=2).map(tuple),
    field_level=st.booleans(),
)
_locations = st.builds(Location, uri=_text)
_items = st.builds(
    Item,
    target=_opt(_locations),
    source=_opt(_locations),
    meta=_opt(_metas),
    data=_opt(
        st.text(max_size=30).filter(lambda t: "\x00" not in t)
        | st.binary(max_size=20).map(lambda b: b + b"\xff")
    ),
    more_data=st.booleans(),
)
_item_lists = st.lists(_items, min_size=1, max_size=3).map(tuple)
_changes = st.one_of(
    st.builds(Add, cmd_id=_ints, items=_item_lists, no_resp=st.booleans(), meta=_opt(_metas)),
    st.builds(Replace, cmd_id=_ints, items=_item_lists, meta=_opt(_metas)),
    st.builds(
        Delete,
        cmd_id=_ints,
        items=_item_lists,
        archive=st.booleans(),
        sft_del=st.booleans(),
        no_resp=st.booleans(),
    ),
)
_statuses = st.builds(
    Status,
    cmd_id=_ints,
    cmd_ref=_ints,
    cmd=st.sampled_from(("Add", "Replace", "Delete", "Sync", "SyncHdr")),
    data=st.integers(100, 599),
    msg_ref=_opt(_ints),
    target_refs=st.lists(_text, max_size=2).map(tuple),
    source_refs=st.lists(_text, max_size=2).map(tuple),
    items=st.lists(_items, max_size=2).map(tuple),
)


@st.composite
def plain_messages(draw: st.DrawFn) -> Message:
    """Statuses and a Sync of changes: the shape of almost every message of a large sync."""
    version = draw(_versions)
    header = SyncHdr(
        ver_dtd=version,
        ver_proto=f"SyncML/{version}",
        session_id=draw(st.sampled_from(("1", "42"))),
        msg_id=draw(_ints),
        target=Location(uri="http://example.org/sync"),
        source=Location(uri="IMEI:3550"),
    )
    sync = Sync(
        cmd_id=draw(_ints),
        target=Location(uri="contacts"),
        source=Location(uri="card"),
        commands=tuple(draw(st.lists(_changes, max_size=4))),
    )
    statuses = tuple(draw(st.lists(_statuses, max_size=4)))
    return Message(header=header, commands=(*statuses, sync), final=draw(st.booleans()))


def encodings(msg: Message) -> list[bytes]:
    """``msg`` in WBXML from the byte writer and from the tree encoder."""
    return [
        encode_message(msg, Encoding.WBXML),
        encode_document(message_to_node(msg), Encoding.WBXML, version=msg.header.ver_dtd),
    ]


#: A change to the bytes: (kind, position as a fraction of the length, byte).
_mutations = st.lists(
    st.tuples(
        st.sampled_from(("set", "insert", "delete", "cut")),
        st.floats(min_value=0, max_value=1, exclude_max=True),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=3,
)


def mutate(data: bytes, changes: list[tuple[str, float, int]]) -> bytes:
    """Apply ``changes`` to ``data`` (positions scale to the current length)."""
    out = bytearray(data)
    for kind, where, byte in changes:
        k = int(where * len(out))
        if kind == "set":
            out[k] = byte
        elif kind == "insert":
            out.insert(k, byte)
        elif kind == "delete":
            del out[k]
        else:
            del out[k:]
        if not out:
            break
    return bytes(out)


@given(msg=plain_messages())
def test_plain_messages_decode_the_same_and_take_the_direct_path(msg: Message) -> None:
    for data in encodings(msg):
        assert assert_same_both_ways(data) == msg
        # Every Status and change has the common shape: none falls back.
        sync = msg.commands[-1]
        assert isinstance(sync, Sync)
        assert decoded_count(data) == len(msg.commands) - 1 + len(sync.commands)


@given(msg=messages())
def test_any_message_decodes_the_same(msg: Message) -> None:
    assert_same_both_ways(encode_message(msg, Encoding.WBXML))


@given(msg=plain_messages(), changes=_mutations)
def test_mutated_plain_messages_give_the_same_message_or_error(
    msg: Message, changes: list[tuple[str, float, int]]
) -> None:
    for data in encodings(msg):
        assert_same_both_ways(mutate(data, changes))


@given(msg=messages(max_commands=2), changes=_mutations)
def test_mutated_messages_give_the_same_message_or_error(
    msg: Message, changes: list[tuple[str, float, int]]
) -> None:
    assert_same_both_ways(mutate(encode_message(msg, Encoding.WBXML), changes))


@given(msg=plain_messages(), room=st.integers(0, 60))
def test_element_limit_is_enforced_at_the_same_element(msg: Message, room: int) -> None:
    data = encode_message(msg, Encoding.WBXML)
    total = sum(1 for _ in decode_document(data).root.iter())
    limits = Limits(max_elements=max(1, total - room))
    assert_same_both_ways(data, limits)


@pytest.mark.parametrize("depth", [3, 5, 6, 7, 8, 9, 10])
def test_depth_limit_is_enforced_the_same(depth: int) -> None:
    change = Add(
        cmd_id=3,
        items=(Item(source=Location(uri="1"), meta=Meta(type="text/x-vcard"), data="x"),),
    )
    msg = Message(
        header=SyncHdr(
            ver_dtd="1.2",
            ver_proto="SyncML/1.2",
            session_id="1",
            msg_id=1,
            target=Location(uri="t"),
            source=Location(uri="s"),
        ),
        commands=(
            Status(cmd_id=1, cmd_ref=0, cmd="SyncHdr", data=200),
            Sync(cmd_id=2, commands=(change,)),
        ),
    )
    assert_same_both_ways(encode_message(msg, Encoding.WBXML), Limits(max_depth=depth))


# --- vectors --------------------------------------------------------------------


def _vector_files() -> list[Path]:
    return sorted(p for p in VECTORS.rglob("*") if p.is_file() and p.suffix != ".md")


def _as_wbxml(path: Path) -> bytes | None:
    """The vector as WBXML: as it is, or (XML) its tree re-encoded; None if not a message."""
    data = path.read_bytes()
    try:
        doc = decode_document(data)
    except RemoteProtocolError:
        return data if data[:1] in (b"\x01", b"\x02", b"\x03") else None
    if doc.encoding is Encoding.WBXML:
        return data
    if doc.root.tag != "SyncML":
        return None
    try:
        return encode_document(doc.root, Encoding.WBXML, version=doc.version or "1.2")
    except LocalProtocolError:  # a tree WBXML cannot carry is no input here
        return None


VECTOR_INPUTS = [(p, d) for p in _vector_files() if (d := _as_wbxml(p)) is not None]


def test_the_vectors_include_messages_the_direct_path_reads() -> None:
    assert len(VECTOR_INPUTS) >= 40
    read = 0
    for _, data in VECTOR_INPUTS:
        with contextlib.suppress(RemoteProtocolError):
            read += decoded_count(data)
    assert read >= 200


@pytest.mark.parametrize(
    ("path", "data"), VECTOR_INPUTS, ids=[vector_id(p) for p, _ in VECTOR_INPUTS]
)
def test_vector_decodes_the_same_whole_and_cut_short(path: Path, data: bytes) -> None:
    assert_same_both_ways(data)
    step = max(1, len(data) // 24)
    for cut in range(1, len(data), step):
        assert_same_both_ways(data[:cut])


# --- hand-built shapes ----------------------------------------------------------

# SyncML page-0 and MetInf page-1 tokens (with the content bit where needed).
SYNCML, SYNCHDR, SYNCBODY, VERDTD, VERPROTO, SESSIONID, MSGID = (
    0x6D,
    0x6C,
    0x6B,
    0x71,
    0x72,
    0x65,
    0x5B,
)
TARGET, SOURCE, LOCURI, STATUS, CMDID, CMDREF, CMD, DATA = (
    0x6E,
    0x67,
    0x57,
    0x69,
    0x4B,
    0x4C,
    0x4A,
    0x4F,
)
SYNC, ADD, ITEM, META, MSGREF, END = 0x6A, 0x45, 0x54, 0x5A, 0x5C, 0x01
TYPE, SIZE = 0x53, 0x52


def message(*body: int | bytes | str, charset: int = 106) -> bytes:
    """A SyncML 1.2 document with a minimal header and ``body`` inside SyncBody."""
    header = (
        SYNCHDR, VERDTD, "1.2", END, VERPROTO, "SyncML/1.2", END, SESSIONID, "1", END,
        MSGID, "1", END, TARGET, LOCURI, "t", END, END, SOURCE, LOCURI, "s", END, END, END,
    )  # fmt: skip
    return document(SYNCML, *header, SYNCBODY, *body, END, END, charset=charset)


def status(*extra: int | bytes | str) -> tuple[int | bytes | str, ...]:
    return (
        STATUS,
        CMDID,
        "1",
        END,
        CMDREF,
        "0",
        END,
        CMD,
        "SyncHdr",
        END,
        DATA,
        "200",
        END,
        *extra,
        END,
    )


def add(*content: int | bytes | str) -> tuple[int | bytes | str, ...]:
    return (SYNC, CMDID, "2", END, ADD, *content, END, END)


CASES = {
    "status": message(*status()),
    "status duplicate CmdID, first counts": message(*status(CMDID, "9", END)),
    "status duplicate CmdID, second not a number": message(*status(CMDID, "x", END)),
    "status code not a number": message(
        STATUS, CMDID, "1", END, CMDREF, "0", END, CMD, "A", END, DATA, "2x", END, END
    ),
    "status without Cmd": message(STATUS, CMDID, "1", END, CMDREF, "0", END, DATA, "200", END, END),
    "status with an unknown child": message(*status(0x1E)),  # NoResults
    "status with MsgRef and refs": message(
        *status(MSGREF, " 3 ", END, 0x6F, "a", END, 0x68, "b", END)
    ),
    "add with two Data, the last counts": message(
        *add(CMDID, "3", END, ITEM, DATA, "a", END, DATA, "b", END, END)
    ),
    "add with OPAQUE data": message(
        *add(CMDID, "3", END, ITEM, DATA, opaque(b"BEGIN:VCARD"), END, END)
    ),
    "add with non-UTF-8 OPAQUE data": message(
        *add(CMDID, "3", END, ITEM, DATA, opaque(b"M\xfcller"), END, END)
    ),
    "add with non-UTF-8 inline data": message(
        *add(CMDID, "3", END, ITEM, DATA, b"\x03M\xfcller\x00", END, END)
    ),
    "add with Data in two pieces": message(*add(CMDID, "3", END, ITEM, DATA, "a", "b", END, END)),
    "add with a Meta left on page 1": message(
        *add(
            CMDID,
            "3",
            END,
            META,
            0,
            1,
            TYPE,
            "text/x-vcard",
            END,
            END,
            0,
            0,
            ITEM,
            DATA,
            "x",
            END,
            END,
        )
    ),
    "add with an Item token read on page 1": message(
        *add(CMDID, "3", END, META, 0, 1, TYPE, "text/x-vcard", END, END, ITEM, DATA, "x", END, END)
    ),
    "add with MetInf Size not a number": message(
        *add(CMDID, "3", END, META, 0, 1, SIZE, "-1", END, 0, 0, END, ITEM, END)
    ),
    "add without CmdID": message(*add(ITEM, DATA, "x", END, END)),
    "add with an empty CmdID": message(*add(CMDID, END, ITEM, END)),
    "add with attributes": message(
        SYNC, CMDID, "2", END, ADD | 0x80, 0x05, END, CMDID, "3", END, END, END
    ),
    "add cut inside its Item": message(*add(CMDID, "3", END, ITEM, DATA, "x"))[:-6],
    "add with a Target of two LocURIs": message(
        *add(CMDID, "3", END, ITEM, TARGET, LOCURI, "a", END, LOCURI, "b", END, END, END)
    ),
    "add with a switch to page 2": message(*add(CMDID, "3", END, 0, 2, 0, 0, ITEM, END)),
    "add with an unknown page": message(*add(CMDID, "3", END, 0, 7, ITEM, END)),
    "latin-1 document": message(*status(), charset=4),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hand_built_shape_decodes_the_same(name: str) -> None:
    assert_same_both_ways(CASES[name])


def test_the_common_shapes_take_the_direct_path() -> None:
    assert decoded_count(CASES["status"]) == 1
    assert decoded_count(CASES["add with OPAQUE data"]) == 1
    assert decoded_count(CASES["add with a Meta left on page 1"]) == 1
    got = decode_message(CASES["add with non-UTF-8 OPAQUE data"])
    sync = got.commands[0]
    assert isinstance(sync, Sync) and isinstance(sync.commands[0], Add)
    assert sync.commands[0].items[0].data == b"M\xfcller"
    # Shapes left to the tree path.
    assert decoded_count(CASES["add with Data in two pieces"]) == 0
    assert decoded_count(CASES["add without CmdID"]) == 0


def test_errors_keep_status_and_offset() -> None:
    got = assert_same_both_ways(CASES["add without CmdID"])
    assert isinstance(got, tuple) and got[2] == 412 and got[3] is not None
    got = assert_same_both_ways(CASES["status code not a number"])
    assert isinstance(got, tuple) and got[2] == 400
    got = assert_same_both_ways(CASES["add cut inside its Item"])
    assert isinstance(got, tuple) and got[3] is not None


def test_the_document_tree_never_holds_decoded_commands() -> None:
    root = decode_document(CASES["status"]).root
    assert not any(type(n) is Decoded for n in root.iter())
