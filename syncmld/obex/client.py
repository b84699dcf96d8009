"""Sans-IO OBEX client: CONNECT, PUT, GET, ABORT and DISCONNECT towards an OBEX server.

Used by the PC when it connects to a phone's "SyncML Client" service
(server-alerted sync, the PC being the SyncML server), and by the tests
as the peer of :class:`~syncmld.obex.server.ObexServer`.

Theory of operation
-------------------

The application calls :meth:`ObexClient.connect`, :meth:`~ObexClient.put`,
:meth:`~ObexClient.get` and :meth:`~ObexClient.disconnect`; each queues the
first request packet in :meth:`~ObexClient.data_to_send`.  The transport feeds
the server's bytes to :meth:`~ObexClient.receive_data`, which returns events.
One operation runs at a time; the next may start once its result event
(:class:`ConnectResult`, :class:`PutResult`, :class:`GetResult`,
:class:`Aborted`, :class:`Disconnected`) has been returned.

* PUT: the body is cut to fit the server's maximum packet length.  Every
  packet but the first is full, so the last packet - PUT-final with
  End-of-Body - carries the *tail* of the object: early Nokia S40 firmware
  only processes a SyncML message whose ``Final`` element arrives in the
  End-of-Body packet (TR), so that packet must hold the end of the message
  and never be empty while there is data.  The first packet carries
  Connection-Id, Type and Length and whatever part of the body is left.
  Each 0x90 Continue releases the next packet.
* GET: GET-final with Connection-Id and Type; after each 0x90 Continue the
  client repeats GET-final (Connection-Id only) and collects Body headers
  until the final response.
* ABORT: OBEX lets the client send ABORT only when it is its turn, so
  :meth:`~ObexClient.abort` is remembered and sent instead of the next
  PUT/GET packet.

Rules (as in the server): every transition is in :data:`_TRANSITIONS`; an
application call whose ``(state, input)`` pair is missing raises
:class:`ObexUsageError`, and a server response that is missing (a response
nobody asked for) or does not decode ends the connection with
:class:`ProtocolFailure`.  Received bytes are never buffered beyond one
packet of at most ``ClientConfig.max_packet`` bytes, and a GET body never
beyond ``ClientConfig.max_body``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final

from syncmld.obex._machine import Fatal, Outcome, Transition
from syncmld.obex.errors import ObexProtocolError, ObexUsageError
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
    MAX_PACKET_SIZE,
    MIN_PACKET_SIZE,
    SYNCML_TARGET,
    ConnectParams,
    Header,
    HeaderId,
    Opcode,
    PacketReader,
    Request,
    Response,
    ResponseCode,
    body_header,
    connection_id_header,
    length_header,
    target_header,
    type_header,
)

__all__ = ["ClientConfig", "ClientState", "ObexClient", "plan_put_chunks"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """Policy knobs of an :class:`ObexClient`.

    Attributes:
        max_packet: largest packet we accept; announced in CONNECT.
        max_body: largest GET body reassembled; a larger one ends the
            connection with :class:`ProtocolFailure` (0xCD).
    """

    max_packet: int = MAX_PACKET_SIZE
    max_body: int = 8 * 1024 * 1024

    def __post_init__(self) -> None:
        if not MIN_PACKET_SIZE <= self.max_packet <= MAX_PACKET_SIZE:
            raise ObexUsageError(f"max_packet must be {MIN_PACKET_SIZE}..{MAX_PACKET_SIZE}")


class ClientState(Enum):
    """States of :class:`ObexClient`."""

    #: Transport open, not connected (also after a refused CONNECT).
    IDLE = auto()
    #: CONNECT sent.
    CONNECTING = auto()
    #: Connected, no operation running.
    CONNECTED = auto()
    #: A PUT packet is waiting for its response.
    PUTTING = auto()
    #: A GET packet is waiting for its response.
    GETTING = auto()
    #: ABORT sent.
    ABORTING = auto()
    #: DISCONNECT sent.
    DISCONNECTING = auto()
    #: Disconnected, end of stream or fatal error.  Terminal.
    CLOSED = auto()


class _In(Enum):
    CONNECT = auto()
    PUT = auto()
    GET = auto()
    ABORT = auto()
    DISCONNECT = auto()
    CONTINUE = auto()  # response 0x90
    SUCCESS = auto()  # response 0xA0-0xA6
    FAILURE = auto()  # any other response
    EOF = auto()


_APP_INPUTS: Final = frozenset({_In.CONNECT, _In.PUT, _In.GET, _In.ABORT, _In.DISCONNECT})


class _A(Enum):
    SEND_CONNECT = auto()
    CONNECT_RESULT = auto()
    START_PUT = auto()
    NEXT_PUT = auto()
    PUT_RESULT = auto()
    START_GET = auto()
    NEXT_GET = auto()
    GET_RESULT = auto()
    REQUEST_ABORT = auto()
    ABORT_RESULT = auto()
    SEND_DISCONNECT = auto()
    DISCONNECT_RESULT = auto()
    CLOSE_UNCONNECTED = auto()
    LOST = auto()
    IGNORE = auto()


_S = ClientState
_T = Transition[_A, ClientState]

_TRANSITIONS: Final[dict[tuple[ClientState, _In], _T]] = {
    (_S.IDLE, _In.CONNECT): _T(_A.SEND_CONNECT, _S.CONNECTING),
    (_S.IDLE, _In.DISCONNECT): _T(_A.CLOSE_UNCONNECTED, _S.CLOSED),
    (_S.CONNECTING, _In.SUCCESS): _T(_A.CONNECT_RESULT, _S.CONNECTED),
    (_S.CONNECTING, _In.FAILURE): _T(_A.CONNECT_RESULT, _S.IDLE),
    (_S.CONNECTED, _In.PUT): _T(_A.START_PUT, _S.PUTTING),
    (_S.CONNECTED, _In.GET): _T(_A.START_GET, _S.GETTING),
    (_S.CONNECTED, _In.ABORT): _T(_A.IGNORE, _S.CONNECTED),
    (_S.CONNECTED, _In.DISCONNECT): _T(_A.SEND_DISCONNECT, _S.DISCONNECTING),
    (_S.PUTTING, _In.CONTINUE): _T(_A.NEXT_PUT, _S.PUTTING, aborted=_S.ABORTING),
    (_S.PUTTING, _In.SUCCESS): _T(_A.PUT_RESULT, _S.CONNECTED),
    (_S.PUTTING, _In.FAILURE): _T(_A.PUT_RESULT, _S.CONNECTED),
    (_S.PUTTING, _In.ABORT): _T(_A.REQUEST_ABORT, _S.PUTTING),
    (_S.GETTING, _In.CONTINUE): _T(_A.NEXT_GET, _S.GETTING, aborted=_S.ABORTING),
    (_S.GETTING, _In.SUCCESS): _T(_A.GET_RESULT, _S.CONNECTED),
    (_S.GETTING, _In.FAILURE): _T(_A.GET_RESULT, _S.CONNECTED),
    (_S.GETTING, _In.ABORT): _T(_A.REQUEST_ABORT, _S.GETTING),
    # Whatever the server answers to ABORT, the operation is over.
    (_S.ABORTING, _In.SUCCESS): _T(_A.ABORT_RESULT, _S.CONNECTED),
    (_S.ABORTING, _In.FAILURE): _T(_A.ABORT_RESULT, _S.CONNECTED),
    (_S.ABORTING, _In.ABORT): _T(_A.IGNORE, _S.ABORTING),
    # Whatever the server answers to DISCONNECT, we are done.
    (_S.DISCONNECTING, _In.SUCCESS): _T(_A.DISCONNECT_RESULT, _S.CLOSED),
    (_S.DISCONNECTING, _In.FAILURE): _T(_A.DISCONNECT_RESULT, _S.CLOSED),
    (_S.DISCONNECTING, _In.DISCONNECT): _T(_A.IGNORE, _S.DISCONNECTING),
    **{(s, _In.EOF): _T(_A.LOST, _S.CLOSED) for s in _S if s is not _S.CLOSED},
    (_S.CLOSED, _In.EOF): _T(_A.IGNORE, _S.CLOSED),
    (_S.CLOSED, _In.DISCONNECT): _T(_A.IGNORE, _S.CLOSED),
}

_PACKET_OVERHEAD: Final = 3
_BODY_HEADER_OVERHEAD: Final = 3
_CONNECTION_ID_SIZE: Final = 5


def plan_put_chunks(size: int, first_room: int, room: int) -> list[int]:
    """Split ``size`` body bytes into per-packet chunk sizes for a PUT.

    ``first_room`` is the body room in the first packet (which also carries
    Type and Length), ``room`` the room in every later packet.  All packets
    after the first are full and the first takes what is left (possibly
    nothing), so the last packet - the End-of-Body one - holds the end of the
    object and is never empty unless the object is (Nokia S40, TR).
    """
    if room < 1 or first_room < 0:
        raise ObexUsageError("no room for body data in a packet")
    tail: list[int] = []
    remaining = size
    while remaining > first_room:
        take = min(room, remaining)
        tail.append(take)
        remaining -= take
    return [remaining, *reversed(tail)]


@dataclass(slots=True, kw_only=True)
class _Call:
    response: Response | None = None
    mime_type: str | None = None
    body: bytes = b""
    headers: tuple[Header, ...] = field(default=())
    target: bytes | None = None


class ObexClient:
    """One OBEX client connection, sans-IO (see the module docstring)."""

    def __init__(self, config: ClientConfig | None = None) -> None:
        """Create a client in state IDLE."""
        self.config = config or ClientConfig()
        self._state = ClientState.IDLE
        self._reader = PacketReader(self.config.max_packet)
        self._out = bytearray()
        self._events: list[Event] = []
        self._peer_max = MIN_PACKET_SIZE
        self._cid: int | None = None
        self._abort_requested = False
        # PUT in progress: the packets still to send
        self._put_packets: list[Request] = []
        # GET in progress
        self._get_body = bytearray()
        self._get_headers: list[Header] = []
        self._actions: dict[_A, Callable[[_Call], Outcome]] = {
            _A.SEND_CONNECT: self._do_send_connect,
            _A.CONNECT_RESULT: self._do_connect_result,
            _A.START_PUT: self._do_start_put,
            _A.NEXT_PUT: self._do_next_put,
            _A.PUT_RESULT: self._do_put_result,
            _A.START_GET: self._do_start_get,
            _A.NEXT_GET: self._do_next_get,
            _A.GET_RESULT: self._do_get_result,
            _A.REQUEST_ABORT: self._do_request_abort,
            _A.ABORT_RESULT: self._do_abort_result,
            _A.SEND_DISCONNECT: self._do_send_disconnect,
            _A.DISCONNECT_RESULT: self._do_disconnect_result,
            _A.CLOSE_UNCONNECTED: self._do_close_unconnected,
            _A.LOST: self._do_lost,
            _A.IGNORE: self._do_ignore,
        }

    # -- public API ------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The current state."""
        return self._state

    @property
    def peer_max_packet(self) -> int:
        """Largest packet the server accepts (255 until it answered CONNECT)."""
        return self._peer_max

    @property
    def connection_id(self) -> int | None:
        """The Connection-Id the server issued, if any."""
        return self._cid

    @property
    def buffered(self) -> int:
        """Received bytes not yet forming a complete packet."""
        return self._reader.buffered

    def connect(self, target: bytes | None = SYNCML_TARGET, headers: Iterable[Header] = ()) -> None:
        """Send CONNECT with ``target`` (``None`` for an undirected connection).

        Raises:
            ObexUsageError: not in state IDLE.
        """
        self._dispatch(_In.CONNECT, _Call(target=target, headers=tuple(headers)))

    def put(self, mime_type: str | None, body: bytes, headers: Iterable[Header] = ()) -> None:
        """PUT ``body`` with Type ``mime_type``; extra ``headers`` go into the first packet.

        Raises:
            ObexUsageError: not connected, another operation is running, or
                the headers do not fit the server's packet size.
        """
        self._dispatch(
            _In.PUT, _Call(mime_type=mime_type, body=bytes(body), headers=tuple(headers))
        )

    def get(self, mime_type: str | None, headers: Iterable[Header] = ()) -> None:
        """GET an object of Type ``mime_type``; the result is a :class:`GetResult`.

        Raises:
            ObexUsageError: not connected or another operation is running.
        """
        self._dispatch(_In.GET, _Call(mime_type=mime_type, headers=tuple(headers)))

    def abort(self) -> None:
        """Abort the running PUT/GET at the next opportunity (no-op when idle).

        Raises:
            ObexUsageError: while connecting or disconnecting.
        """
        self._dispatch(_In.ABORT, _Call())

    def disconnect(self) -> None:
        """Send DISCONNECT (or just close when never connected).

        Raises:
            ObexUsageError: an operation is still running.
        """
        self._dispatch(_In.DISCONNECT, _Call())

    def receive_data(self, data: bytes) -> list[Event]:
        """Process bytes from the server (``b""`` = end of stream); return the events.

        Never raises for anything the server sends.
        """
        if not data:
            self._dispatch(_In.EOF, _Call())
        elif self._state is not ClientState.CLOSED:
            self._reader.feed(data)
            self._drain()
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        """Bytes to write to the transport (and forget)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    # -- the machine -----------------------------------------------------------------

    def _drain(self) -> None:
        while self._state is not ClientState.CLOSED:
            try:
                response = self._reader.next_response(
                    to_connect=self._state is ClientState.CONNECTING
                )
            except ObexProtocolError as err:
                self._fail(ResponseCode.BAD_REQUEST, f"bad response from server: {err.reason}")
                return
            if response is None:
                return
            code = response.code
            if code is ResponseCode.CONTINUE:
                inp = _In.CONTINUE
            elif code.is_success:
                inp = _In.SUCCESS
            else:
                inp = _In.FAILURE
            self._dispatch(inp, _Call(response=response))

    def _dispatch(self, inp: _In, call: _Call) -> None:
        state = self._state
        transition = _TRANSITIONS.get((state, inp))
        if transition is None:
            if inp in _APP_INPUTS:
                if state is not ClientState.CLOSED:
                    self._close()
                raise ObexUsageError(f"{inp.name.lower()}() is not allowed in state {state.name}")
            self._fail(
                ResponseCode.BAD_REQUEST, f"unexpected {inp.name} response in state {state.name}"
            )
            return
        try:
            outcome = self._actions[transition.action](call)
        except Fatal as fatal:
            self._fail(fatal.code, fatal.reason)
            return
        self._state = transition.next_state(outcome)

    def _fail(self, code: ResponseCode, reason: str) -> None:
        self._events.append(ProtocolFailure(code=code, reason=reason))
        self._close()

    def _close(self) -> None:
        self._state = ClientState.CLOSED
        self._reset_operation()
        self._reader = PacketReader(MIN_PACKET_SIZE)  # drop anything buffered

    def _reset_operation(self) -> None:
        self._abort_requested = False
        self._put_packets = []
        self._get_body = bytearray()
        self._get_headers = []

    def _send(self, request: Request) -> None:
        wire = request.encode()
        assert len(wire) <= self._peer_max or request.opcode is Opcode.CONNECT
        self._out += wire

    def _cid_headers(self) -> list[Header]:
        return [] if self._cid is None else [connection_id_header(self._cid)]

    # -- actions ---------------------------------------------------------------------

    def _do_send_connect(self, call: _Call) -> Outcome:
        headers = list(call.headers)
        if call.target is not None:
            headers.insert(0, target_header(call.target))
        request = Request(
            opcode=Opcode.CONNECT,
            connect=ConnectParams(max_packet=self.config.max_packet),
            headers=tuple(headers),
        )
        if len(request.encode()) > MIN_PACKET_SIZE:
            # Before CONNECT completes, only the OBEX minimum is safe.
            raise ObexUsageError("CONNECT request larger than 255 bytes")
        self._send(request)
        return Outcome.DONE

    def _do_connect_result(self, call: _Call) -> Outcome:
        response = _response(call)
        who = response.header(HeaderId.WHO)
        params = response.connect
        if response.code.is_success:
            assert params is not None  # decode_response requires the fields on success
            if params.max_packet < MIN_PACKET_SIZE:
                raise Fatal(
                    ResponseCode.BAD_REQUEST,
                    f"server maximum packet length {params.max_packet} is below 255",
                )
            self._peer_max = params.max_packet
            self._cid = response.connection_id
        self._events.append(
            ConnectResult(
                code=response.code,
                max_packet=None if params is None else params.max_packet,
                connection_id=response.connection_id,
                who=None if who is None else who.data,
            )
        )
        return Outcome.DONE

    def _do_start_put(self, call: _Call) -> Outcome:
        self._reset_operation()
        body = call.body
        first_headers = self._cid_headers()
        if call.mime_type is not None:
            first_headers.append(type_header(call.mime_type))
        if len(body) <= 0xFFFFFFFF:
            first_headers.append(length_header(len(body)))
        first_headers += call.headers
        room = self._peer_max - _PACKET_OVERHEAD - _BODY_HEADER_OVERHEAD
        if self._cid is not None:
            room -= _CONNECTION_ID_SIZE
        first_room = (
            self._peer_max
            - _PACKET_OVERHEAD
            - _BODY_HEADER_OVERHEAD
            - sum(h.encoded_length for h in first_headers)
        )
        if first_room < 0:
            raise ObexUsageError("PUT headers do not fit the server's maximum packet length")
        sizes = plan_put_chunks(len(body), first_room, room)
        packets: list[Request] = []
        offset = 0
        for index, size in enumerate(sizes):
            last = index == len(sizes) - 1
            headers = first_headers if index == 0 else self._cid_headers()
            chunk = body[offset : offset + size]
            offset += size
            if size or last:
                headers = [*headers, body_header(chunk, end=last)]
            packets.append(Request(opcode=Opcode.PUT, final=last, headers=tuple(headers)))
        packets.reverse()  # pop() from the end
        self._put_packets = packets
        self._send(self._put_packets.pop())
        return Outcome.DONE

    def _do_next_put(self, call: _Call) -> Outcome:
        if self._abort_requested:
            return self._send_abort()
        if not self._put_packets:
            raise Fatal(ResponseCode.BAD_REQUEST, "server answered PUT-final with Continue")
        self._send(self._put_packets.pop())
        return Outcome.DONE

    def _do_put_result(self, call: _Call) -> Outcome:
        # A success before our final packet means the server took what it got
        # (OBEX allows it); an error ends the PUT early.  Either way it is over.
        self._events.append(PutResult(code=_response(call).code))
        self._reset_operation()
        return Outcome.DONE

    def _do_start_get(self, call: _Call) -> Outcome:
        self._reset_operation()
        headers = self._cid_headers()
        if call.mime_type is not None:
            headers.append(type_header(call.mime_type))
        headers += call.headers
        request = Request(opcode=Opcode.GET, final=True, headers=tuple(headers))
        if len(request.encode()) > self._peer_max:
            raise ObexUsageError("GET headers do not fit the server's maximum packet length")
        self._send(request)
        return Outcome.DONE

    def _collect(self, response: Response) -> None:
        for h in response.headers:
            if h.id in (HeaderId.BODY, HeaderId.END_OF_BODY):
                self._get_body += h.data
            else:
                self._get_headers.append(h)
        if len(self._get_body) > self.config.max_body:
            raise Fatal(
                ResponseCode.REQUEST_ENTITY_TOO_LARGE,
                f"GET body exceeds {self.config.max_body} bytes",
            )

    def _do_next_get(self, call: _Call) -> Outcome:
        self._collect(_response(call))
        if self._abort_requested:
            return self._send_abort()
        self._send(Request(opcode=Opcode.GET, final=True, headers=tuple(self._cid_headers())))
        return Outcome.DONE

    def _do_get_result(self, call: _Call) -> Outcome:
        response = _response(call)
        if response.code.is_success:
            self._collect(response)
            body = bytes(self._get_body)
        else:
            body = b""
        self._events.append(
            GetResult(code=response.code, body=body, headers=tuple(self._get_headers))
        )
        self._reset_operation()
        return Outcome.DONE

    def _do_request_abort(self, call: _Call) -> Outcome:
        self._abort_requested = True
        return Outcome.DONE

    def _send_abort(self) -> Outcome:
        self._send(Request(opcode=Opcode.ABORT, headers=tuple(self._cid_headers())))
        self._reset_operation()
        return Outcome.ABORTED

    def _do_abort_result(self, call: _Call) -> Outcome:
        self._events.append(Aborted())
        return Outcome.DONE

    def _do_send_disconnect(self, call: _Call) -> Outcome:
        self._send(Request(opcode=Opcode.DISCONNECT, headers=tuple(self._cid_headers())))
        return Outcome.DONE

    def _do_disconnect_result(self, call: _Call) -> Outcome:
        self._events.append(Disconnected())
        self._close()
        return Outcome.DONE

    def _do_close_unconnected(self, call: _Call) -> Outcome:
        self._events.append(Disconnected())
        self._close()
        return Outcome.DONE

    def _do_lost(self, call: _Call) -> Outcome:
        self._events.append(ConnectionLost())
        self._close()
        return Outcome.DONE

    def _do_ignore(self, call: _Call) -> Outcome:
        return Outcome.DONE


def _response(call: _Call) -> Response:
    assert call.response is not None
    return call.response
