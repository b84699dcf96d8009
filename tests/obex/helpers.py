"""Test helpers for syncmld.obex: the recorded trace, packet builders, Hypothesis strategies."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

from syncmld.obex.client import ClientConfig, ObexClient
from syncmld.obex.events import (
    ConnectResult,
    Disconnected,
    Event,
    GetRequested,
    GetResult,
    PutComplete,
    PutResult,
)
from syncmld.obex.packets import (
    MAX_PACKET_SIZE,
    MIN_PACKET_SIZE,
    ConnectParams,
    Header,
    HeaderEncoding,
    Opcode,
    PacketReader,
    Request,
    Response,
    ResponseCode,
    SetpathParams,
    body_header,
    connection_id_header,
    header_encoding,
    length_header,
    target_header,
    type_header,
)
from syncmld.obex.server import ObexServer, ServerConfig

DATA = Path(__file__).parent.parent / "data"
OBEX_TCP = DATA / "vectors" / "syncevolution" / "obex-tcp-wbxml"
TRACE = OBEX_TCP / "obex-packets.trace"
WBXML = "application/vnd.syncml+wbxml"
XML = "application/vnd.syncml+xml"
SYNCML_SYNC = b"SYNCML-SYNC"


@dataclass(frozen=True)
class TraceLine:
    """One recorded packet: ``client`` is True for C>S."""

    client: bool
    data: bytes


def load_trace() -> list[TraceLine]:
    """The packets of ``obex-packets.trace`` in wire order."""
    lines = []
    for raw in TRACE.read_text().splitlines():
        if not raw.strip():
            continue
        direction, hexdata = raw.split()
        assert direction in ("C>S", "S>C")
        lines.append(TraceLine(direction == "C>S", bytes.fromhex(hexdata)))
    return lines


def syncml_messages(suffix: str) -> list[bytes]:
    """The recorded SyncML bodies of one direction (``c2s`` or ``s2c``) in order."""
    return [p.read_bytes() for p in sorted((OBEX_TCP / "syncml").glob(f"*-{suffix}.wbxml"))]


# -- packet builders (speak in packets, not hex) -------------------------------------------


def connect(max_packet: int = 0x7FFF, target: bytes | None = SYNCML_SYNC) -> bytes:
    """A CONNECT request."""
    headers = () if target is None else (target_header(target),)
    return Request(
        opcode=Opcode.CONNECT, connect=ConnectParams(max_packet=max_packet), headers=headers
    ).encode()


def put(
    body: bytes,
    *,
    cid: int | None = 1,
    mime: str | None = WBXML,
    final: bool = True,
    end: bool = True,
) -> bytes:
    """A PUT packet with optional Connection-Id and Type and one Body/End-of-Body."""
    headers: list[Header] = []
    if cid is not None:
        headers.append(connection_id_header(cid))
    if mime is not None:
        headers.append(type_header(mime))
        headers.append(length_header(len(body)))
    headers.append(body_header(body, end=final and end))
    return Request(opcode=Opcode.PUT, final=final, headers=tuple(headers)).encode()


def get(*, cid: int | None = 1, mime: str | None = WBXML, final: bool = True) -> bytes:
    """A GET packet."""
    headers: list[Header] = []
    if cid is not None:
        headers.append(connection_id_header(cid))
    if mime is not None:
        headers.append(type_header(mime))
    return Request(opcode=Opcode.GET, final=final, headers=tuple(headers)).encode()


def simple(opcode: Opcode, *, cid: int | None = 1) -> bytes:
    """DISCONNECT/ABORT/... with an optional Connection-Id."""
    headers = () if cid is None else (connection_id_header(cid),)
    setpath = SetpathParams() if opcode is Opcode.SETPATH else None
    return Request(opcode=opcode, headers=headers, setpath=setpath).encode()


# -- Hypothesis strategies -------------------------------------------------------------------

_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=24
)


def _value_for(header_id: int) -> st.SearchStrategy[str | bytes | int]:
    encoding = header_encoding(header_id)
    if encoding is HeaderEncoding.UNICODE:
        return _text
    if encoding is HeaderEncoding.BYTES:
        return st.binary(max_size=64)
    if encoding is HeaderEncoding.BYTE:
        return st.integers(0, 0xFF)
    return st.integers(0, 0xFFFFFFFF)


headers_st: st.SearchStrategy[Header] = st.integers(0, 0xFF).flatmap(
    lambda hid: _value_for(hid).map(lambda v: Header(hid, v))
)
header_lists = st.lists(headers_st, max_size=6).map(tuple)
connect_params = st.builds(
    ConnectParams,
    max_packet=st.integers(0, MAX_PACKET_SIZE),
    version=st.integers(0, 0xFF),
    flags=st.integers(0, 0xFF),
)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    """Any valid request packet."""
    opcode = draw(st.sampled_from(list(Opcode)))
    always_final = opcode not in (Opcode.PUT, Opcode.GET, Opcode.ACTION)
    return Request(
        opcode=opcode,
        final=True if always_final else draw(st.booleans()),
        headers=draw(header_lists),
        connect=draw(connect_params) if opcode is Opcode.CONNECT else None,
        setpath=(
            SetpathParams(flags=draw(st.integers(0, 255)), constants=draw(st.integers(0, 255)))
            if opcode is Opcode.SETPATH
            else None
        ),
    )


@st.composite
def responses(draw: st.DrawFn, to_connect: bool = False) -> Response:
    """Any valid response packet (with CONNECT fields when ``to_connect``)."""
    return Response(
        code=draw(st.sampled_from(list(ResponseCode))),
        headers=draw(header_lists),
        connect=draw(connect_params) if to_connect else None,
    )


max_packets = st.one_of(
    st.sampled_from([MIN_PACKET_SIZE, 256, 1024, 4096, 0x7FFF, MAX_PACKET_SIZE]),
    st.integers(MIN_PACKET_SIZE, MAX_PACKET_SIZE),
)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """Split ``data`` at the (unsorted, possibly repeated) offsets ``cuts``."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


# -- a client and a server wired back to back (h11's ConnectionPair idea) ---------------------


class ConnectionPair:
    """An :class:`ObexClient` and an :class:`ObexServer` exchanging bytes in memory.

    :meth:`pump` moves bytes both ways until neither side has anything to
    send, optionally in pieces of ``chunk`` bytes.  The server side answers
    by itself: it accepts every PUT (recording the body) and answers each
    GET with the next body of :attr:`replies`.  Every packet on the wire is
    checked against the maximum packet length its receiver announced.
    """

    def __init__(
        self,
        server_config: ServerConfig | None = None,
        client_config: ClientConfig | None = None,
        *,
        chunk: int | None = None,
    ) -> None:
        self.server = ObexServer(server_config)
        self.client = ObexClient(client_config)
        self.chunk = chunk
        self.replies: list[bytes] = []
        self.put_bodies: list[bytes] = []
        self.server_events: list[Event] = []
        self.client_events: list[Event] = []
        self._to_server = PacketReader(MAX_PACKET_SIZE)
        self._to_client = PacketReader(MAX_PACKET_SIZE)
        self.packets_to_server: list[bytes] = []
        self.packets_to_client: list[bytes] = []

    def _pieces(self, data: bytes) -> list[bytes]:
        if self.chunk is None:
            return [data] if data else []
        return [data[i : i + self.chunk] for i in range(0, len(data), self.chunk)]

    def pump(self) -> list[Event]:
        """Exchange bytes until quiet; return the client events of this round."""
        new_client_events: list[Event] = []
        for _ in range(1_000_000):
            up = self.client.data_to_send()
            for piece in self._pieces(up):
                self._monitor(piece, to_server=True)
                for event in self.server.receive_data(piece):
                    self.server_events.append(event)
                    self._serve(event)
                assert self.server.buffered < self.server.config.max_packet
            down = self.server.data_to_send()
            for piece in self._pieces(down):
                self._monitor(piece, to_server=False)
                events = self.client.receive_data(piece)
                new_client_events += events
                self.client_events += events
                assert self.client.buffered < self.client.config.max_packet
            if not up and not down:
                return new_client_events
        raise AssertionError("the pair never went quiet")

    def _serve(self, event: Event) -> None:
        if isinstance(event, PutComplete):
            self.put_bodies.append(event.body)
            self.server.accept_put()
        elif isinstance(event, GetRequested):
            self.server.send_get_response(self.replies.pop(0))

    def _monitor(self, data: bytes, *, to_server: bool) -> None:
        reader = self._to_server if to_server else self._to_client
        reader.feed(data)
        while (frame := reader.next_frame()) is not None:
            if to_server:
                limit = (
                    MIN_PACKET_SIZE
                    if frame[0] == 0x80
                    else min(self.server.config.max_packet, self.client.peer_max_packet)
                )
                self.packets_to_server.append(frame)
            else:
                limit = self.client.config.max_packet
                self.packets_to_client.append(frame)
            assert len(frame) <= limit, (len(frame), limit)

    def connect(self) -> ConnectResult:
        """CONNECT and return the result."""
        self.client.connect()
        (result,) = self.pump()
        assert isinstance(result, ConnectResult)
        return result

    def put(self, body: bytes, mime: str = WBXML) -> PutResult:
        """PUT ``body`` and return the result."""
        self.client.put(mime, body)
        (result,) = self.pump()
        assert isinstance(result, PutResult)
        return result

    def get(self, reply: bytes, mime: str = WBXML) -> GetResult:
        """GET with the server answering ``reply``; return the result."""
        self.replies.append(reply)
        self.client.get(mime)
        (result,) = self.pump()
        assert isinstance(result, GetResult)
        return result

    def disconnect(self) -> None:
        """DISCONNECT; both sides end CLOSED."""
        self.client.disconnect()
        (result,) = self.pump()
        assert isinstance(result, Disconnected)
