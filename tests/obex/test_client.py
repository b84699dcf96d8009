"""ObexClient against recorded and hand-made server responses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmld.obex.client import ClientConfig, ClientState, ObexClient, plan_put_chunks
from syncmld.obex.errors import ObexUsageError
from syncmld.obex.events import (
    Aborted,
    ConnectionLost,
    ConnectResult,
    Disconnected,
    Event,
    GetResult,
    ProtocolFailure,
    PutResult,
)
from syncmld.obex.packets import (
    MIN_PACKET_SIZE,
    ConnectParams,
    HeaderId,
    Opcode,
    PacketReader,
    Request,
    Response,
    ResponseCode,
    body_header,
    connection_id_header,
    decode_request,
    who_header,
)

from .helpers import SYNCML_SYNC, WBXML, load_trace, split_at, syncml_messages


def _ok_connect(max_packet: int = 0xFFFF, cid: int | None = 1) -> bytes:
    headers = [] if cid is None else [connection_id_header(cid), who_header(SYNCML_SYNC)]
    return Response(
        code=ResponseCode.OK, connect=ConnectParams(max_packet=max_packet), headers=tuple(headers)
    ).encode()


def _requests(data: bytes) -> list[Request]:
    reader = PacketReader()
    reader.feed(data)
    out = []
    while (r := reader.next_request()) is not None:
        out.append(r)
    assert reader.buffered == 0
    return out


def _connected(max_packet: int = 0xFFFF) -> ObexClient:
    client = ObexClient()
    client.connect()
    client.data_to_send()
    (result,) = client.receive_data(_ok_connect(max_packet))
    assert isinstance(result, ConnectResult) and result.ok
    return client


def test_replay_recorded_server_responses() -> None:
    """Drive the client like SyncEvolution did and feed it the recorded server side."""
    trace = load_trace()
    server_side = [t.data for t in trace if not t.client]
    client = ObexClient(ClientConfig(max_packet=0x7FFF))
    client.connect()
    sent = _requests(client.data_to_send())
    assert sent[0].encode() == trace[0].data  # our CONNECT is byte-identical to OpenOBEX's
    (result,) = client.receive_data(server_side[0])
    assert result == ConnectResult(
        code=ResponseCode.OK, max_packet=0xFFFF, connection_id=1, who=SYNCML_SYNC
    )
    bodies = []
    replies = iter(server_side[1:])
    for message in syncml_messages("c2s"):
        client.put(WBXML, message)
        (put,) = _requests(client.data_to_send())
        assert put.final and put.body == message and put.connection_id == 1
        assert put.mime_type == WBXML
        assert client.receive_data(next(replies)) == [PutResult(code=ResponseCode.OK)]
        client.get(WBXML)
        (request,) = _requests(client.data_to_send())
        assert request.encode() == bytes.fromhex(
            "830028cb000000014200206170706c69636174696f6e2f766e642e73796e636d6c2b7762786d6c00"
        )
        (got,) = client.receive_data(next(replies))
        assert isinstance(got, GetResult) and got.ok
        # The recorded server (SyncEvolution's bridge) added Type and Length.
        assert {h.id for h in got.headers} == {HeaderId.TYPE, HeaderId.LENGTH}
        bodies.append(got.body)
    assert bodies == syncml_messages("s2c")[:3]
    client.disconnect()
    assert _requests(client.data_to_send())[0].encode() == trace[14].data
    assert client.receive_data(next(replies)) == [Disconnected()]
    assert client.state is ClientState.CLOSED


def test_connect_refused_then_retry() -> None:
    client = ObexClient()
    client.connect()
    client.data_to_send()
    (result,) = client.receive_data(b"\xc4\x00\x07\x10\x00\x00\xff")
    assert isinstance(result, ConnectResult) and not result.ok
    assert result.code is ResponseCode.NOT_FOUND
    assert client.state is ClientState.IDLE
    client.connect()
    client.data_to_send()
    client.receive_data(_ok_connect(cid=None))
    assert client.state in {ClientState.CONNECTED}
    assert client.connection_id is None
    client.put(WBXML, b"x")
    (put,) = _requests(client.data_to_send())
    assert put.connection_id is None  # none issued, none sent


def test_bare_refusal_like_pyobex() -> None:
    client = ObexClient()
    client.connect()
    client.data_to_send()
    (result,) = client.receive_data(b"\xc3\x00\x03")
    assert result == ConnectResult(code=ResponseCode.FORBIDDEN)


def test_put_chunking_and_continue() -> None:
    client = _connected(MIN_PACKET_SIZE)
    body = bytes(range(256)) * 3
    client.put(WBXML, body)
    collected = []
    for _ in range(10):
        (packet,) = _requests(client.data_to_send())
        collected.append(packet)
        assert len(packet.encode()) <= MIN_PACKET_SIZE
        if packet.final:
            break
        assert client.receive_data(b"\x90\x00\x03") == []
    assert b"".join(p.body for p in collected) == body
    assert collected[0].header(HeaderId.LENGTH) is not None
    assert collected[-1].has_end_of_body and len(collected[-1].encode()) == MIN_PACKET_SIZE
    assert all(p.connection_id == 1 for p in collected)
    assert client.receive_data(b"\xa0\x00\x03") == [PutResult(code=ResponseCode.OK)]


def test_put_refused_midway() -> None:
    client = _connected(MIN_PACKET_SIZE)
    client.put(WBXML, b"x" * 1000)
    client.data_to_send()
    assert client.receive_data(b"\xc3\x00\x03") == [PutResult(code=ResponseCode.FORBIDDEN)]
    assert client.state is ClientState.CONNECTED
    # Nokia S40 answers 0xC3 while a dialog is open on the phone's screen (TR): retry works.
    client.put(WBXML, b"y")
    assert _requests(client.data_to_send())[0].body == b"y"


def test_get_reassembles_body_and_end_of_body() -> None:
    client = _connected()
    client.get(WBXML)
    client.data_to_send()
    cont = Response(code=ResponseCode.CONTINUE, headers=(body_header(b"abc"),)).encode()
    assert client.receive_data(cont) == []
    (again,) = _requests(client.data_to_send())
    assert again.opcode is Opcode.GET and again.final and again.connection_id == 1
    assert again.header(HeaderId.TYPE) is None
    last = Response(code=ResponseCode.OK, headers=(body_header(b"def", end=True),)).encode()
    (result,) = client.receive_data(last)
    assert isinstance(result, GetResult) and result.body == b"abcdef"


def test_get_refused() -> None:
    client = _connected()
    client.get(WBXML)
    client.data_to_send()
    (result,) = client.receive_data(b"\xd3\x00\x03")
    assert result == GetResult(code=ResponseCode.SERVICE_UNAVAILABLE)
    assert not result.ok


def test_get_body_limit() -> None:
    client = ObexClient(ClientConfig(max_body=5))
    client.connect()
    client.data_to_send()
    client.receive_data(_ok_connect())
    client.get(WBXML)
    client.data_to_send()
    (failure,) = client.receive_data(
        Response(code=ResponseCode.OK, headers=(body_header(b"123456", end=True),)).encode()
    )
    assert isinstance(failure, ProtocolFailure)
    assert failure.code is ResponseCode.REQUEST_ENTITY_TOO_LARGE
    assert client.state is ClientState.CLOSED


def test_continue_after_final_put_is_a_failure() -> None:
    client = _connected()
    client.put(WBXML, b"x")
    client.data_to_send()
    (failure,) = client.receive_data(b"\x90\x00\x03")
    assert isinstance(failure, ProtocolFailure)
    assert client.state is ClientState.CLOSED


def test_unsolicited_response_is_a_failure() -> None:
    client = _connected()
    (failure,) = client.receive_data(b"\xa0\x00\x03")
    assert isinstance(failure, ProtocolFailure)
    with pytest.raises(ObexUsageError):
        client.put(WBXML, b"x")


def test_server_max_below_minimum_is_a_failure() -> None:
    client = ObexClient()
    client.connect()
    client.data_to_send()
    (failure,) = client.receive_data(_ok_connect(max_packet=100))
    assert isinstance(failure, ProtocolFailure)


def test_abort_is_sent_instead_of_next_packet() -> None:
    client = _connected(MIN_PACKET_SIZE)
    client.put(WBXML, b"x" * 1000)
    client.data_to_send()
    client.abort()
    assert client.data_to_send() == b""  # not our turn yet
    client.receive_data(b"\x90\x00\x03")
    (abort,) = _requests(client.data_to_send())
    assert abort.opcode is Opcode.ABORT and abort.connection_id == 1
    assert client.state is ClientState.ABORTING
    assert client.receive_data(b"\xa0\x00\x03") == [Aborted()]
    assert client.state in {ClientState.CONNECTED}


def test_disconnect_answers_and_misuse() -> None:
    client = ObexClient()
    with pytest.raises(ObexUsageError):
        client.get(WBXML)
    assert client.state is ClientState.CLOSED
    never = ObexClient()
    never.disconnect()  # never connected: nothing to send
    assert never.data_to_send() == b""
    busy = _connected()
    busy.put(WBXML, b"x")
    with pytest.raises(ObexUsageError):
        busy.disconnect()


def test_headers_that_do_not_fit() -> None:
    client = _connected(MIN_PACKET_SIZE)
    with pytest.raises(ObexUsageError):
        client.put(WBXML, b"x", headers=[body_header(b"h" * 300)])
    assert client.state is ClientState.CONNECTED
    with pytest.raises(ObexUsageError):
        client.get(WBXML, headers=[body_header(b"h" * 300)])
    assert client.state is ClientState.CONNECTED


def test_end_of_stream_while_waiting() -> None:
    client = _connected()
    client.get(WBXML)
    assert client.receive_data(b"") == [ConnectionLost()]
    assert client.state is ClientState.CLOSED


# -- PUT chunk plan -----------------------------------------------------------------------------


def test_plan_put_chunks_examples() -> None:
    assert plan_put_chunks(0, 10, 20) == [0]
    assert plan_put_chunks(10, 10, 20) == [10]
    assert plan_put_chunks(11, 10, 20) == [0, 11]
    assert plan_put_chunks(31, 10, 20) == [0, 11, 20]
    assert plan_put_chunks(45, 10, 20) == [5, 20, 20]
    with pytest.raises(ObexUsageError):
        plan_put_chunks(1, 0, 0)


@given(st.integers(0, 100_000), st.integers(0, 2000), st.integers(1, 2000))
def test_plan_put_chunks_properties(size: int, first_room: int, room: int) -> None:
    room = max(room, first_room)  # later packets never have less room than the first
    sizes = plan_put_chunks(size, first_room, room)
    assert sum(sizes) == size
    assert 0 <= sizes[0] <= first_room
    assert all(1 <= s <= room for s in sizes[1:])
    if len(sizes) > 1:
        assert sizes[-1] == min(room, size)  # the End-of-Body packet is full
        assert all(s == room for s in sizes[2:])


# -- fuzzing --------------------------------------------------------------------------------


@given(
    state=st.sampled_from(["connecting", "connected", "putting", "getting"]),
    garbage=st.binary(max_size=400),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_garbage_from_server_never_raises(state: str, garbage: bytes, cuts: list[int]) -> None:
    client = ObexClient(ClientConfig(max_packet=MIN_PACKET_SIZE))
    client.connect()
    if state != "connecting":
        client.receive_data(_ok_connect())
        if state == "putting":
            client.put(WBXML, b"x" * 600)
        elif state == "getting":
            client.get(WBXML)
    client.data_to_send()
    for piece in split_at(garbage, cuts):
        if not piece:
            continue
        events: list[Event] = client.receive_data(piece)
        for event in events:
            assert isinstance(
                event,
                ConnectResult | PutResult | GetResult | Aborted | Disconnected | ProtocolFailure,
            )
        assert client.buffered < MIN_PACKET_SIZE
        for request in _requests(client.data_to_send()):
            assert len(request.encode()) <= 0xFFFF
    assert client.state in ClientState


def test_decode_our_connect() -> None:
    client = ObexClient(ClientConfig(max_packet=0x7FFF))
    client.connect()
    assert decode_request(client.data_to_send()).encode() == load_trace()[0].data
