"""ObexClient and ObexServer back to back in memory."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from syncmld.obex.client import ClientConfig, ClientState
from syncmld.obex.events import (
    Aborted,
    Connected,
    Disconnected,
    GetResult,
    PutComplete,
    PutResult,
)
from syncmld.obex.packets import (
    MAX_PACKET_SIZE,
    MIN_PACKET_SIZE,
    HeaderId,
    ResponseCode,
    decode_request,
    decode_response,
)
from syncmld.obex.server import ServerConfig, ServerState

from .helpers import SYNCML_SYNC, WBXML, XML, ConnectionPair, max_packets

SIZES = [0, 1, 100, 243, 244, 245, 1000, 4096, 65_535, 200_000]
PACKETS = [MIN_PACKET_SIZE, 256, 1024, 4096, 0x7FFF, MAX_PACKET_SIZE]


def _body(size: int, seed: int = 0) -> bytes:
    return random.Random(seed * 7919 + size).randbytes(size)


def _pair(server_max: int, client_max: int, chunk: int | None = None) -> ConnectionPair:
    return ConnectionPair(
        ServerConfig(max_packet=server_max, put_types=frozenset({WBXML, XML})),
        ClientConfig(max_packet=client_max),
        chunk=chunk,
    )


def test_connect_put_get_disconnect() -> None:
    pair = _pair(MAX_PACKET_SIZE, 0x7FFF)
    result = pair.connect()
    assert result.ok and result.connection_id == 1 and result.who == SYNCML_SYNC
    assert result.max_packet == MAX_PACKET_SIZE
    (connected,) = pair.server_events
    assert connected == Connected(target=SYNCML_SYNC, who=None, max_packet=0x7FFF, connection_id=1)
    assert pair.put(b"<SyncML/>", XML).ok
    put = pair.server_events[-1]
    assert isinstance(put, PutComplete)
    assert put.type == XML and put.body == b"<SyncML/>"
    assert [h.id for h in put.headers] == [HeaderId.CONNECTION_ID, HeaderId.TYPE, HeaderId.LENGTH]
    got = pair.get(b"\x02\xa4\x01\x6a\x00reply")
    assert got.ok and got.body == b"\x02\xa4\x01\x6a\x00reply"
    pair.disconnect()
    assert isinstance(pair.server_events[-1], Disconnected)
    assert pair.server.state is ServerState.CLOSED
    assert pair.client.state is ClientState.CLOSED


@pytest.mark.parametrize("max_packet", PACKETS)
@pytest.mark.parametrize("size", SIZES)
def test_put_and_get_every_size(size: int, max_packet: int) -> None:
    # The two sides announce different maxima: each must respect the other's.
    pair = _pair(max_packet, PACKETS[(PACKETS.index(max_packet) + 2) % len(PACKETS)])
    assert pair.connect().ok
    body = _body(size)
    assert pair.put(body).ok
    assert pair.put_bodies == [body]
    reply = _body(size, seed=1)
    result = pair.get(reply)
    assert result.ok and result.body == reply
    pair.disconnect()


@pytest.mark.parametrize("max_packet", [MIN_PACKET_SIZE, 1024])
def test_put_last_packet_carries_the_tail(max_packet: int) -> None:
    # Early Nokia S40: SyncML Final must arrive in the End-of-Body packet.
    pair = _pair(max_packet, MAX_PACKET_SIZE)
    pair.connect()
    body = b"<SyncML>" + b"x" * 3000 + b"<Final/></SyncBody></SyncML>"
    pair.put(body)
    puts = [decode_request(p) for p in pair.packets_to_server if p[0] in (0x02, 0x82)]
    assert len(puts) > 1
    last = puts[-1]
    assert last.final and last.has_end_of_body
    assert last.body.endswith(b"<Final/></SyncBody></SyncML>")
    assert len(pair.packets_to_server[-1]) == max_packet  # full, not a leftover
    assert all(not p.final and not p.has_end_of_body for p in puts[:-1])
    assert b"".join(p.body for p in puts) == body


def test_get_response_is_chunked_to_client_maximum() -> None:
    pair = _pair(MAX_PACKET_SIZE, MIN_PACKET_SIZE)
    pair.connect()
    reply = _body(2000)
    assert pair.get(reply).body == reply
    responses = [decode_response(p) for p in pair.packets_to_client[1:]]
    assert [r.code for r in responses[:-1]] == [ResponseCode.CONTINUE] * (len(responses) - 1)
    assert responses[-1].code is ResponseCode.OK and responses[-1].has_end_of_body
    assert all(r.header(HeaderId.TYPE) is None for r in responses)  # GET responses carry no Type
    assert responses[0].header(HeaderId.LENGTH) is not None
    assert all(len(p) <= MIN_PACKET_SIZE for p in pair.packets_to_client)
    gets = [decode_request(p) for p in pair.packets_to_server[1:]]
    assert all(g.final and g.connection_id == 1 for g in gets)


def test_byte_by_byte() -> None:
    pair = _pair(MIN_PACKET_SIZE, 300, chunk=1)
    assert pair.connect().ok
    body = _body(3000)
    assert pair.put(body).ok
    assert pair.get(body[::-1]).body == body[::-1]
    pair.disconnect()


def test_abort_during_put() -> None:
    pair = _pair(MIN_PACKET_SIZE, MIN_PACKET_SIZE)
    pair.connect()
    pair.client.put(WBXML, _body(5000))
    pair.client.abort()
    events = pair.pump()
    assert events == [Aborted()]
    assert isinstance(pair.server_events[-1], Aborted)
    assert pair.put_bodies == []
    assert pair.server.state is ServerState.CONNECTED
    assert pair.client.state is ClientState.CONNECTED
    assert pair.put(b"after").ok and pair.put_bodies == [b"after"]


def test_abort_during_get() -> None:
    pair = _pair(MAX_PACKET_SIZE, MIN_PACKET_SIZE)
    pair.connect()
    pair.replies.append(_body(5000))
    pair.client.get(WBXML)
    pair.client.abort()
    assert pair.pump() == [Aborted()]
    assert isinstance(pair.server_events[-1], Aborted)
    assert pair.get(b"next").body == b"next"


def test_abort_when_idle_is_a_no_op() -> None:
    pair = _pair(MAX_PACKET_SIZE, MAX_PACKET_SIZE)
    pair.connect()
    pair.client.abort()
    assert pair.client.data_to_send() == b""


@given(
    body=st.binary(max_size=6000),
    reply=st.binary(max_size=6000),
    server_max=max_packets,
    client_max=max_packets,
    chunk=st.one_of(st.none(), st.integers(1, 700)),
)
def test_any_sizes_and_chunkings(
    body: bytes, reply: bytes, server_max: int, client_max: int, chunk: int | None
) -> None:
    pair = _pair(server_max, client_max, chunk)
    assert pair.connect().ok
    assert pair.put(body).ok
    assert pair.put_bodies == [body]
    assert pair.get(reply).body == reply
    pair.disconnect()


class PairMachine(RuleBasedStateMachine):
    """Random sequences of PUT, GET and aborted operations over one connection."""

    pair: ConnectionPair

    @initialize(server_max=max_packets, client_max=max_packets)
    def connect(self, server_max: int, client_max: int) -> None:
        self.pair = _pair(server_max, client_max)
        assert self.pair.connect().ok
        self.expected_puts: list[bytes] = []

    @rule(chunk=st.one_of(st.none(), st.integers(1, 500)))
    def rechunk(self, chunk: int | None) -> None:
        self.pair.chunk = chunk

    @rule(body=st.binary(max_size=3000))
    def put(self, body: bytes) -> None:
        assert self.pair.put(body).ok
        self.expected_puts.append(body)

    @rule(body=st.binary(max_size=3000))
    def get(self, body: bytes) -> None:
        assert self.pair.get(body).body == body

    @rule(size=st.integers(0, 3000), get=st.booleans())
    def aborted(self, size: int, get: bool) -> None:
        if get:
            self.pair.replies.append(b"r" * size)
            self.pair.client.get(WBXML)
        else:
            self.pair.client.put(WBXML, b"p" * size)
        self.pair.client.abort()
        (result,) = self.pair.pump()
        # A transfer that fits one packet completes before the abort can be sent.
        assert isinstance(result, Aborted | PutResult | GetResult)
        if isinstance(result, PutResult):
            self.expected_puts.append(b"p" * size)
        if get and not isinstance(result, GetResult):
            self.pair.replies.clear()

    @invariant()
    def in_step(self) -> None:
        assert self.pair.client.state is ClientState.CONNECTED
        assert self.pair.server.state is ServerState.CONNECTED
        assert self.pair.client.buffered == 0 and self.pair.server.buffered == 0
        assert self.pair.put_bodies == self.expected_puts

    def teardown(self) -> None:
        if hasattr(self, "pair"):
            self.pair.disconnect()


PairMachine.TestCase.settings = settings(stateful_step_count=12)
test_pair_machine = PairMachine.TestCase
