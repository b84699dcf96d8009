"""ObexServer: the recorded SyncEvolution client, refusals, malformed input, the table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmld.obex import server as server_module
from syncmld.obex.errors import ObexProtocolError, ObexUsageError
from syncmld.obex.events import (
    Aborted,
    Connected,
    ConnectionLost,
    ConnectRefused,
    Disconnected,
    Event,
    GetRequested,
    ProtocolFailure,
    PutComplete,
    RequestRefused,
)
from syncmld.obex.packets import (
    MIN_PACKET_SIZE,
    Header,
    HeaderId,
    Opcode,
    PacketReader,
    Request,
    Response,
    ResponseCode,
    decode_response,
)
from syncmld.obex.server import ObexServer, ServerConfig, ServerState

from .helpers import (
    SYNCML_SYNC,
    WBXML,
    XML,
    connect,
    get,
    load_trace,
    put,
    simple,
    split_at,
    syncml_messages,
)

SYNCML_TYPES = frozenset({WBXML, XML})


def _server(**kw: object) -> ObexServer:
    kw.setdefault("put_types", SYNCML_TYPES)
    return ObexServer(ServerConfig(**kw))  # type: ignore[arg-type]


def _connected(**kw: object) -> ObexServer:
    server = _server(**kw)
    server.receive_data(connect())
    server.data_to_send()
    assert server.state is ServerState.CONNECTED
    return server


def _responses(data: bytes, *, to_connect: bool = False) -> list[Response]:
    reader = PacketReader()
    reader.feed(data)
    out = []
    while (r := reader.next_response(to_connect=to_connect)) is not None:
        out.append(r)
    assert reader.buffered == 0
    return out


def _answer(server: ObexServer, data: bytes, *, to_connect: bool = False) -> ResponseCode:
    server.receive_data(data)
    (response,) = _responses(server.data_to_send(), to_connect=to_connect)
    return response.code


# -- the recorded session ------------------------------------------------------------------


def test_replay_syncevolution_client() -> None:
    """Feed the recorded client's packets; check events and that our answers are well-formed."""
    server = _server()
    replies = syncml_messages("s2c")
    puts: list[bytes] = []
    trace = load_trace()
    for line in (t for t in trace if t.client):
        events = server.receive_data(line.data)
        out_events: list[type[Event]] = []
        for event in events:
            out_events.append(type(event))
            if isinstance(event, PutComplete):
                assert event.type == WBXML
                puts.append(event.body)
                server.accept_put()
            elif isinstance(event, GetRequested):
                assert event.type == WBXML
                server.send_get_response(replies[len(puts) - 1])
        out = server.data_to_send()
        opcode = line.data[0]
        if opcode == 0x80:
            assert out_events == [Connected]
            (answer,) = _responses(out, to_connect=True)
            assert answer.code is ResponseCode.OK
            assert answer.connect is not None
            assert answer.headers[0].id is HeaderId.CONNECTION_ID
            assert answer.connection_id != 0  # SyncEvolution fails on Connection-Id 0
            assert answer.header(HeaderId.WHO) is not None
            assert answer.header(HeaderId.WHO).data == SYNCML_SYNC  # type: ignore[union-attr]
            assert events[0] == Connected(
                target=SYNCML_SYNC, who=None, max_packet=0x7FFF, connection_id=1
            )
        elif opcode == 0x82:
            assert out_events == [PutComplete]
            assert [r.code for r in _responses(out)] == [ResponseCode.OK]
        elif opcode == 0x83:
            assert out_events == [GetRequested]
            (answer,) = _responses(out)  # each reply fits the client's 32767 bytes
            assert answer.code is ResponseCode.OK
            assert answer.body == replies[len(puts) - 1]
            assert answer.header(HeaderId.TYPE) is None
            assert len(out) <= 0x7FFF
        else:
            assert opcode == 0x81
            assert out_events == [Disconnected]
            assert [r.code for r in _responses(out)] == [ResponseCode.OK]
    assert puts == syncml_messages("c2s")
    assert server.state is ServerState.CLOSED
    assert server.receive_data(b"") == []


def test_replay_whole_client_stream_byte_by_byte() -> None:
    server = _server()
    replies = iter(syncml_messages("s2c"))
    kinds = []
    for line in (t for t in load_trace() if t.client):
        for byte in line.data:
            for event in server.receive_data(bytes((byte,))):
                kinds.append(type(event).__name__)
                if isinstance(event, PutComplete):
                    server.accept_put()
                elif isinstance(event, GetRequested):
                    server.send_get_response(next(replies))
            assert server.buffered < len(line.data)
    assert kinds == ["Connected"] + ["PutComplete", "GetRequested"] * 3 + ["Disconnected"]


# -- CONNECT -------------------------------------------------------------------------------


def test_wrong_target_is_refused_and_connection_stays_usable() -> None:
    server = _server()
    server.receive_data(connect(target=b"SYNCML-DM"))
    (answer,) = _responses(server.data_to_send(), to_connect=True)
    assert answer.code is ResponseCode.NOT_FOUND
    assert answer.connect is not None  # a CONNECT response always has its fields
    assert server.state is ServerState.IDLE
    # The phone may try again with the right target ...
    assert _answer(server, connect(), to_connect=True) is ResponseCode.OK
    assert server.state in {ServerState.CONNECTED}


def test_refused_connect_event_then_clean_disconnect() -> None:
    server = _server()
    events = server.receive_data(connect(target=b"OBEX-FTP"))
    assert events == [
        ConnectRefused(
            target=b"OBEX-FTP",
            code=ResponseCode.NOT_FOUND,
            reason="Target b'OBEX-FTP' is not served here",
        )
    ]
    server.data_to_send()
    assert server.receive_data(simple(Opcode.DISCONNECT, cid=None)) == [Disconnected()]
    assert _responses(server.data_to_send()) == [Response(code=ResponseCode.OK)]
    assert server.state is ServerState.CLOSED


def test_missing_target_refused_by_default_and_policy() -> None:
    server = _server(refuse_code=ResponseCode.FORBIDDEN)
    assert _answer(server, connect(target=None), to_connect=True) is ResponseCode.FORBIDDEN
    lenient = _server(accept_missing_target=True)
    events = lenient.receive_data(connect(target=None))
    assert events == [Connected(target=None, who=None, max_packet=0x7FFF, connection_id=0)]
    (answer,) = _responses(lenient.data_to_send(), to_connect=True)
    assert answer.connection_id is None  # undirected: no Connection-Id, no Who
    # ... and then no Connection-Id is expected.
    lenient.receive_data(put(b"x", cid=None))
    assert lenient.state is ServerState.PUT_PENDING


def test_connect_with_too_small_maximum_is_refused() -> None:
    server = _server()
    assert _answer(server, connect(max_packet=254), to_connect=True) is ResponseCode.BAD_REQUEST
    assert server.state is ServerState.IDLE


def test_second_connect_is_a_protocol_failure() -> None:
    server = _connected()
    events = server.receive_data(connect())
    assert isinstance(events[0], ProtocolFailure)
    (answer,) = _responses(server.data_to_send(), to_connect=True)
    assert answer.code is ResponseCode.BAD_REQUEST
    assert server.state is ServerState.CLOSED


# -- Connection-Id and Type ---------------------------------------------------------------------


def test_wrong_connection_id_is_forbidden() -> None:
    server = _connected()
    events = server.receive_data(put(b"<SyncML/>", cid=2, mime=XML))
    assert events == [
        RequestRefused(
            opcode=Opcode.PUT, code=ResponseCode.FORBIDDEN, reason="Connection-Id 2 is not ours (1)"
        )
    ]
    assert _responses(server.data_to_send())[0].code is ResponseCode.FORBIDDEN
    assert server.state is ServerState.CONNECTED
    assert _answer(server, get(cid=7)) is ResponseCode.FORBIDDEN
    assert _answer(server, simple(Opcode.DISCONNECT, cid=9)) is ResponseCode.FORBIDDEN
    assert server.state is ServerState.CONNECTED


def test_missing_connection_id() -> None:
    server = _connected()
    assert _answer(server, put(b"x", cid=None)) is ResponseCode.BAD_REQUEST
    lenient = _connected(require_connection_id=False)
    lenient.receive_data(put(b"x", cid=None))
    assert lenient.state is ServerState.PUT_PENDING


def test_wrong_connection_id_on_continuation() -> None:
    server = _connected()
    assert _answer(server, put(b"part1", final=False)) is ResponseCode.CONTINUE
    assert _answer(server, put(b"part2", cid=3, mime=None)) is ResponseCode.FORBIDDEN
    assert server.state is ServerState.CONNECTED
    # A continuation without Connection-Id is fine (OBEX only needs it first).
    assert _answer(server, put(b"part1", final=False)) is ResponseCode.CONTINUE
    events = server.receive_data(put(b"part2", cid=None, mime=None))
    assert isinstance(events[0], PutComplete) and events[0].body == b"part1part2"


def test_wrong_type_is_unsupported_media_type() -> None:
    server = _connected()
    events = server.receive_data(put(b"BEGIN:VCARD", mime="text/x-vcard"))
    assert isinstance(events[0], RequestRefused)
    assert events[0].code is ResponseCode.UNSUPPORTED_MEDIA_TYPE
    assert _responses(server.data_to_send())[0].code is ResponseCode.UNSUPPORTED_MEDIA_TYPE
    assert _answer(server, put(b"x", mime=None)) is ResponseCode.UNSUPPORTED_MEDIA_TYPE
    # Nokia's S60 plugin answers 0xC6 instead; the code is configurable.
    nokia_like = _connected(wrong_type_code=ResponseCode.NOT_ACCEPTABLE)
    assert _answer(nokia_like, put(b"x", mime="text/plain")) is ResponseCode.NOT_ACCEPTABLE


def test_type_compared_case_insensitively_with_trailing_junk() -> None:
    server = _connected()
    events = server.receive_data(put(b"x", mime="Application/VND.SyncML+WBXML "))
    assert isinstance(events[0], PutComplete)


def test_any_type_when_not_configured() -> None:
    server = _connected(put_types=None)
    events = server.receive_data(put(b"x", mime=None))
    (event,) = events
    assert isinstance(event, PutComplete)
    assert event == PutComplete(type=None, body=b"x", headers=event.headers)


# -- PUT / GET flows -----------------------------------------------------------------------------


def test_multi_packet_put_continues_then_waits_for_application() -> None:
    server = _connected()
    assert _answer(server, put(b"a", final=False)) is ResponseCode.CONTINUE
    assert server.state is ServerState.PUT_RECEIVING
    events = server.receive_data(put(b"b", mime=None))
    assert server.data_to_send() == b""  # nothing until the application decides
    assert isinstance(events[0], PutComplete) and events[0].body == b"ab"
    server.reject_put(ResponseCode.DATABASE_FULL)
    assert _responses(server.data_to_send())[0].code is ResponseCode.DATABASE_FULL
    assert server.state in {ServerState.CONNECTED}


def test_put_final_with_body_not_end_of_body() -> None:
    # SyncEvolution/OpenOBEX put the whole message in a Body header of PUT-final.
    server = _connected()
    events = server.receive_data(put(b"whole", end=False))
    assert isinstance(events[0], PutComplete) and events[0].body == b"whole"


def test_put_body_limit() -> None:
    server = _connected(max_body=10)
    assert _answer(server, put(b"x" * 11)) is ResponseCode.REQUEST_ENTITY_TOO_LARGE
    assert server.state is ServerState.CONNECTED
    assert _answer(server, put(b"x" * 6, final=False)) is ResponseCode.CONTINUE
    assert _answer(server, put(b"x" * 6, mime=None)) is ResponseCode.REQUEST_ENTITY_TOO_LARGE


def test_multi_packet_get_request() -> None:
    server = _connected()
    assert _answer(server, get(final=False)) is ResponseCode.CONTINUE
    assert server.state is ServerState.GET_REQUESTING
    events = server.receive_data(get(mime=None))
    assert isinstance(events[0], GetRequested) and events[0].type == WBXML
    server.reject_get(ResponseCode.SERVICE_UNAVAILABLE)
    assert _responses(server.data_to_send())[0].code is ResponseCode.SERVICE_UNAVAILABLE


def test_get_response_chunks_at_minimum_packet() -> None:
    server = _server()
    server.receive_data(connect(max_packet=MIN_PACKET_SIZE))
    server.data_to_send()
    server.receive_data(get())
    body = bytes(range(256)) * 4
    server.send_get_response(body)
    got = b""
    for _ in range(10):
        (response,) = _responses(server.data_to_send())
        assert len(response.encode()) <= MIN_PACKET_SIZE
        got += response.body
        if response.code is ResponseCode.OK:
            assert response.has_end_of_body
            break
        assert response.code is ResponseCode.CONTINUE
        server.receive_data(get(mime=None))
    assert got == body
    assert server.state is ServerState.CONNECTED


def test_empty_get_response() -> None:
    server = _connected()
    server.receive_data(get())
    server.send_get_response(b"")
    (response,) = _responses(server.data_to_send())
    assert response.code is ResponseCode.OK and response.has_end_of_body and response.body == b""


def test_abort_mid_put_and_when_idle() -> None:
    server = _connected()
    server.receive_data(put(b"a", final=False))
    server.data_to_send()
    assert server.receive_data(simple(Opcode.ABORT)) == [Aborted()]
    assert _responses(server.data_to_send())[0].code is ResponseCode.OK
    assert server.state is ServerState.CONNECTED
    assert server.receive_data(simple(Opcode.ABORT)) == []
    assert _responses(server.data_to_send())[0].code is ResponseCode.OK


def test_setpath_not_implemented() -> None:
    server = _connected()
    assert _answer(server, simple(Opcode.SETPATH)) is ResponseCode.NOT_IMPLEMENTED
    assert server.state is ServerState.CONNECTED


def test_put_before_connect_forbidden() -> None:
    server = _server()
    assert _answer(server, put(b"x")) is ResponseCode.FORBIDDEN
    assert server.state is ServerState.IDLE


# -- malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize("connected", [False, True])
def test_six_byte_packet_pyobex_hung_on(connected: bool) -> None:
    server = _connected() if connected else _server()
    events = server.receive_data(bytes.fromhex("820006480000"))
    assert len(events) == 1 and isinstance(events[0], RequestRefused)
    assert events[0].code is ResponseCode.BAD_REQUEST and events[0].opcode is None
    assert _responses(server.data_to_send()) == [Response(code=ResponseCode.BAD_REQUEST)]
    assert server.state is (ServerState.CONNECTED if connected else ServerState.IDLE)
    assert server.buffered == 0


def test_malformed_packet_mid_put_abandons_it() -> None:
    server = _connected()
    server.receive_data(put(b"a", final=False))
    server.data_to_send()
    assert _answer(server, bytes.fromhex("02000497")) is ResponseCode.BAD_REQUEST
    assert server.state is ServerState.CONNECTED
    events = server.receive_data(put(b"fresh"))
    assert isinstance(events[0], PutComplete) and events[0].body == b"fresh"


def test_unknown_opcode_not_implemented() -> None:
    server = _connected()
    assert _answer(server, bytes.fromhex("040003")) is ResponseCode.NOT_IMPLEMENTED
    assert server.state is ServerState.CONNECTED


@pytest.mark.parametrize("length", [0, 1, 2])
def test_bad_packet_length_closes_cleanly(length: int) -> None:
    server = _connected()
    events = server.receive_data(bytes((0x82,)) + length.to_bytes(2, "big") + b"junk" * 100)
    assert len(events) == 1 and isinstance(events[0], ProtocolFailure)
    assert _responses(server.data_to_send()) == [Response(code=ResponseCode.BAD_REQUEST)]
    assert server.state is ServerState.CLOSED
    assert server.receive_data(put(b"x")) == []
    assert server.data_to_send() == b""
    assert server.buffered == 0


def test_packet_above_our_maximum_closes() -> None:
    server = _connected(max_packet=MIN_PACKET_SIZE)
    events = server.receive_data(b"\x82\x01\x00")  # refused from the 3-byte prefix alone
    assert isinstance(events[0], ProtocolFailure)
    assert events[0].code is ResponseCode.REQUEST_ENTITY_TOO_LARGE
    assert server.state is ServerState.CLOSED


def test_request_out_of_turn_is_fatal() -> None:
    server = _connected()
    server.receive_data(put(b"x"))
    assert server.state is ServerState.PUT_PENDING
    events = server.receive_data(get())
    assert isinstance(events[0], ProtocolFailure)
    assert server.state in {ServerState.CLOSED}
    server.data_to_send()
    server.accept_put()  # a late answer after the failure is ignored
    assert server.data_to_send() == b""


def test_packets_after_the_bad_one_in_the_same_chunk() -> None:
    server = _connected()
    events = server.receive_data(put(b"x") + get())  # GET before the PUT was answered
    assert isinstance(events[0], PutComplete) and isinstance(events[1], ProtocolFailure)


def test_end_of_stream() -> None:
    server = _connected()
    server.receive_data(b"\x82\x00")  # half a packet
    assert server.receive_data(b"") == [ConnectionLost()]
    assert server.state is ServerState.CLOSED
    assert server.receive_data(b"") == []


# -- application misuse --------------------------------------------------------------------------


def test_answer_without_question_raises_and_closes() -> None:
    server = _connected()
    with pytest.raises(ObexUsageError):
        server.accept_put()
    assert server.state is ServerState.CLOSED


@pytest.mark.parametrize("code", [ResponseCode.OK, ResponseCode.CONTINUE, ResponseCode.CREATED])
def test_reject_needs_an_error_code(code: ResponseCode) -> None:
    server = _connected()
    server.receive_data(put(b"x"))
    with pytest.raises(ObexUsageError):
        server.reject_put(code)
    assert server.state is ServerState.PUT_PENDING


def test_bad_configuration() -> None:
    with pytest.raises(ObexUsageError):
        ServerConfig(max_packet=100)
    with pytest.raises(ObexUsageError):
        ServerConfig(connection_id=0)


# -- the table: every state x every peer input --------------------------------------------------

_STATE_SETUP: dict[ServerState, list[bytes]] = {
    ServerState.IDLE: [],
    ServerState.CONNECTED: [connect()],
    ServerState.PUT_RECEIVING: [connect(), put(b"a", final=False)],
    ServerState.PUT_PENDING: [connect(), put(b"a")],
    ServerState.GET_REQUESTING: [connect(), get(final=False)],
    ServerState.GET_PENDING: [connect(), get()],
    ServerState.GET_SENDING: [connect(max_packet=MIN_PACKET_SIZE), get()],
    ServerState.CLOSED: [connect(), simple(Opcode.DISCONNECT)],
}

_INPUTS: dict[str, bytes] = {
    "connect": connect(),
    "disconnect": simple(Opcode.DISCONNECT),
    "put": put(b"p", final=False),
    "put_final": put(b"p"),
    "get": get(final=False),
    "get_final": get(),
    "abort": simple(Opcode.ABORT),
    "setpath": simple(Opcode.SETPATH),
    "malformed": bytes.fromhex("820006480000"),
    "framing": bytes.fromhex("820001"),
    "unknown_opcode": bytes.fromhex("040003"),
}


def _in_state(state: ServerState) -> ObexServer:
    server = _server()
    for data in _STATE_SETUP[state]:
        server.receive_data(data)
    if state is ServerState.GET_SENDING:
        server.send_get_response(b"z" * 1000)
    server.data_to_send()
    assert server.state is state
    return server


@pytest.mark.parametrize("state", list(ServerState))
@pytest.mark.parametrize("name", list(_INPUTS))
def test_every_state_and_input(state: ServerState, name: str) -> None:
    server = _in_state(state)
    events = server.receive_data(_INPUTS[name])
    assert server.state in ServerState
    out = server.data_to_send()
    if state is ServerState.CLOSED:
        assert events == [] and out == b""
        return
    # One well-formed response per request - none only while the application decides.
    responses = _responses(out, to_connect=name == "connect")
    if server.state in (ServerState.PUT_PENDING, ServerState.GET_PENDING):
        assert responses == []
        return
    (response,) = responses
    if state in (ServerState.PUT_PENDING, ServerState.GET_PENDING) or name == "framing":
        assert isinstance(events[-1], ProtocolFailure)  # out of turn, or framing lost
    if events and isinstance(events[-1], ProtocolFailure):
        assert server.state is ServerState.CLOSED
        assert not response.code.is_success


def test_table_only_names_known_states_and_actions() -> None:
    table = server_module._TRANSITIONS
    for (state, _inp), transition in table.items():
        assert state in ServerState
        for target in (transition.done, transition.more, transition.refused):
            assert target is None or target in ServerState
    # Every live state handles end of stream.
    assert all((s, server_module._In.EOF) in table for s in ServerState)


# -- fuzzing -------------------------------------------------------------------------------------

_ALLOWED = (
    Connected,
    ConnectRefused,
    PutComplete,
    GetRequested,
    RequestRefused,
    Aborted,
    Disconnected,
    ProtocolFailure,
    ConnectionLost,
)


@given(
    prefix=st.sampled_from([[], [connect()], [connect(), put(b"a", final=False)]]),
    garbage=st.binary(max_size=600),
    cuts=st.lists(st.integers(0, 600), max_size=8),
    max_packet=st.integers(MIN_PACKET_SIZE, 400),
)
def test_garbage_never_raises(
    prefix: list[bytes], garbage: bytes, cuts: list[int], max_packet: int
) -> None:
    server = _server(max_packet=max_packet)
    for data in prefix:
        server.receive_data(data)
    server.data_to_send()
    for piece in split_at(garbage, cuts):
        if not piece:
            continue
        for event in server.receive_data(piece):
            assert isinstance(event, _ALLOWED)
            if isinstance(event, PutComplete):
                server.accept_put()
            elif isinstance(event, GetRequested):
                server.send_get_response(b"reply")
        assert server.buffered < max_packet
        # Whatever we answer is a sequence of well-formed responses.
        out = server.data_to_send()
        reader = PacketReader()
        reader.feed(out)
        while (frame := reader.next_frame()) is not None:
            try:
                decode_response(frame)
            except ObexProtocolError:
                decode_response(frame, to_connect=True)
        assert reader.buffered == 0


@given(st.lists(st.sampled_from(list(_INPUTS.values())), max_size=12), st.integers(1, 50))
def test_random_request_sequences(sequence: list[bytes], chunk: int) -> None:
    server = _server()
    stream = b"".join(sequence)
    for i in range(0, len(stream), chunk):
        for event in server.receive_data(stream[i : i + chunk]):
            assert isinstance(event, _ALLOWED)
        assert server.buffered < server.config.max_packet
    assert server.state in ServerState


def test_get_response_headers_must_fit() -> None:
    server = _server()
    server.receive_data(connect(max_packet=MIN_PACKET_SIZE))
    server.receive_data(get())
    server.data_to_send()
    with pytest.raises(ObexUsageError):
        server.send_get_response(b"x", headers=[Header(HeaderId.DESCRIPTION, "d" * 200)])
    assert server.state is ServerState.GET_PENDING  # the application may try again
    server.send_get_response(b"x")
    assert _responses(server.data_to_send())[0].body == b"x"


def test_endless_continue_packets_are_bounded() -> None:
    server = _connected(max_headers=1000)
    filler = Request(
        opcode=Opcode.PUT,
        final=False,
        headers=(Header(HeaderId.CONNECTION_ID, 1), Header(HeaderId.DESCRIPTION, "x" * 100)),
    ).encode()
    codes = []
    for _ in range(10):
        server.receive_data(filler)
        codes += [r.code for r in _responses(server.data_to_send())]
    assert ResponseCode.REQUEST_ENTITY_TOO_LARGE in codes
    assert codes[0] is ResponseCode.CONTINUE
    get_filler = Request(
        opcode=Opcode.GET,
        final=False,
        headers=(Header(HeaderId.CONNECTION_ID, 1), Header(HeaderId.DESCRIPTION, "y" * 100)),
    ).encode()
    codes = []
    for _ in range(10):
        server.receive_data(get_filler)
        codes += [r.code for r in _responses(server.data_to_send())]
    per_packet = len(get_filler) - 3  # 210 bytes of headers per packet
    fits = 1000 // per_packet
    assert codes[:fits] == [ResponseCode.CONTINUE] * fits
    assert codes[fits] is ResponseCode.REQUEST_ENTITY_TOO_LARGE
