"""Sans-IO OBEX server: the side that answers CONNECT, PUT, GET and DISCONNECT.

Theory of operation
-------------------

The transport (RFCOMM socket from BlueZ, TCP, a test) hands every received
chunk to :meth:`ObexServer.receive_data` (``b""`` means end of stream) and
writes whatever :meth:`ObexServer.data_to_send` returns.  Nothing in here
reads a clock or touches a socket: timeouts belong to the caller.

OBEX is strictly request/response: the client sends one request packet and
waits for its response before sending the next.  Multi-packet operations
work like this:

* PUT: the client sends PUT packets (Body headers) that the server answers
  with 0x90 Continue, then a PUT-final packet (usually End-of-Body); the
  server emits :class:`PutComplete` and the *application* answers with
  :meth:`ObexServer.accept_put` (0xA0) or :meth:`ObexServer.reject_put`.
* GET: the client sends GET packets until GET-final (answered 0x90 until
  then); the server emits :class:`GetRequested` and the application calls
  :meth:`ObexServer.send_get_response`.  The body goes out as 0x90 Continue
  packets with Body headers, each answering one further GET-final from the
  client, and ends with a 0xA0 packet carrying End-of-Body.  Every packet is
  within the maximum packet length the client announced in CONNECT.

Rules the machine enforces:

1. Every transition is in :data:`_TRANSITIONS`.  A peer request whose
   ``(state, input)`` pair is missing is a protocol violation: the server
   answers 0xC0 Bad Request, emits :class:`ProtocolFailure` and closes.  An
   application call whose pair is missing raises :class:`ObexUsageError`
   and closes too - except after the connection closed, where answers are
   ignored (the application may still be working through the events of the
   batch in which the peer failed).
2. A request can be *refused* without closing: the action raises
   :class:`Refusal`, the server answers the refusal code, emits
   :class:`RequestRefused` (or :class:`ConnectRefused`) and goes to the
   transition's ``refused`` state, abandoning any operation in progress.
   This covers a wrong Target (0xC4 by default), a wrong or missing
   Connection-Id (0xC3 / 0xC0), a wrong PUT Type (0xCF), a body above the
   configured limit (0xCD), SETPATH and other unused requests (0xD1), and a
   correctly framed packet whose headers are malformed (0xC0).
3. A framing error (packet length below 3 or above our maximum) cannot be
   recovered from: 0xC0/0xCD, :class:`ProtocolFailure`, closed.  After
   closing, received bytes are dropped unparsed, so nothing is ever buffered
   beyond one packet of at most ``ServerConfig.max_packet`` bytes, and every
   input is consumed in time linear in its size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Final

from syncmld.obex._machine import Outcome, Refusal, Transition
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
    decode_request,
    length_header,
    parse_type,
    who_header,
)

__all__ = ["ObexServer", "ServerConfig", "ServerState"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """Policy knobs of an :class:`ObexServer`.

    Attributes:
        max_packet: largest packet we accept; announced in the CONNECT response.
        targets: CONNECT Target values accepted (the Who of the response echoes it).
        accept_missing_target: accept a CONNECT without Target (an undirected
            connection: no Connection-Id is issued).
        refuse_code: response to a CONNECT whose Target is not accepted (BlueZ
            and Nokia's plugin use 0xC4 Not Found).
        put_types: accepted PUT Types, compared lower-case with trailing
            NUL/space trimmed; ``None`` accepts any Type (and none).
        wrong_type_code: response to a PUT with another Type (0xCF; Nokia's
            S60 plugin answers 0xC6 Not Acceptable - NK).
        require_connection_id: refuse the first packet of an operation that
            lacks the Connection-Id we issued (0xC0).  A *wrong* Connection-Id
            is always refused (0xC3 Forbidden).
        connection_id: the Connection-Id to issue (non-zero: SyncEvolution's
            OBEX client treats 0 as "no connection").
        max_body: largest PUT body reassembled (0xCD above it).
        max_headers: most bytes of non-body headers kept for one PUT or GET
            spread over several packets (0xCD above it): without a bound, a
            client sending Continue packets forever would grow them forever.
        get_length_header: put a Length header in the first GET response packet.
    """

    max_packet: int = MAX_PACKET_SIZE
    targets: frozenset[bytes] = frozenset({SYNCML_TARGET})
    accept_missing_target: bool = False
    refuse_code: ResponseCode = ResponseCode.NOT_FOUND
    put_types: frozenset[str] | None = None
    wrong_type_code: ResponseCode = ResponseCode.UNSUPPORTED_MEDIA_TYPE
    require_connection_id: bool = True
    connection_id: int = 1
    max_body: int = 8 * 1024 * 1024
    max_headers: int = 64 * 1024
    get_length_header: bool = True

    def __post_init__(self) -> None:
        if not MIN_PACKET_SIZE <= self.max_packet <= MAX_PACKET_SIZE:
            raise ObexUsageError(f"max_packet must be {MIN_PACKET_SIZE}..{MAX_PACKET_SIZE}")
        if not 1 <= self.connection_id <= 0xFFFFFFFF:
            raise ObexUsageError("connection_id must be a non-zero 32-bit value")
        if self.put_types is not None:
            object.__setattr__(
                self, "put_types", frozenset(_normalise_type(t) for t in self.put_types)
            )


def _normalise_type(mime: str) -> str:
    return mime.strip("\0 ").lower()


class ServerState(Enum):
    """States of :class:`ObexServer`."""

    #: Transport open, no OBEX connection (yet, or after a refused CONNECT).
    IDLE = auto()
    #: Connected; no operation in progress.
    CONNECTED = auto()
    #: Non-final PUT packets received and answered with Continue.
    PUT_RECEIVING = auto()
    #: PUT-final received: waiting for accept_put()/reject_put().
    PUT_PENDING = auto()
    #: Non-final GET packets received and answered with Continue.
    GET_REQUESTING = auto()
    #: GET-final received: waiting for send_get_response()/reject_get().
    GET_PENDING = auto()
    #: Response body partly sent: waiting for the client's next GET-final.
    GET_SENDING = auto()
    #: After DISCONNECT, end of stream or a fatal error.  Terminal.
    CLOSED = auto()


class _In(Enum):
    """Inputs: one per kind of request packet, one per application call, and EOF."""

    CONNECT = auto()
    DISCONNECT = auto()
    PUT = auto()
    PUT_FINAL = auto()
    GET = auto()
    GET_FINAL = auto()
    ABORT = auto()
    UNSUPPORTED = auto()  # SETPATH, ACTION, SESSION: not used by SyncML
    MALFORMED = auto()  # a correctly framed packet that does not decode
    EOF = auto()
    ACCEPT_PUT = auto()
    REJECT_PUT = auto()
    ANSWER_GET = auto()
    REJECT_GET = auto()


_APP_INPUTS: Final = frozenset({_In.ACCEPT_PUT, _In.REJECT_PUT, _In.ANSWER_GET, _In.REJECT_GET})


class _A(Enum):
    """Actions (methods of :class:`ObexServer`)."""

    CONNECT = auto()
    DISCONNECT = auto()
    ABORT = auto()
    PUT_PACKET = auto()
    GET_PACKET = auto()
    ACCEPT_PUT = auto()
    REJECT = auto()
    FIRST_CHUNK = auto()
    NEXT_CHUNK = auto()
    NOT_CONNECTED = auto()
    NOT_IMPLEMENTED = auto()
    MALFORMED = auto()
    LOST = auto()
    IGNORE = auto()


_S = ServerState
_T = Transition[_A, ServerState]

#: The whole server machine.  ``refused`` is where a refused request leaves us:
#: back at IDLE before CONNECT, at CONNECTED (operation abandoned) after it.
_TRANSITIONS: Final[dict[tuple[ServerState, _In], _T]] = {
    # -- before CONNECT --
    (_S.IDLE, _In.CONNECT): _T(_A.CONNECT, _S.CONNECTED, refused=_S.IDLE),
    (_S.IDLE, _In.DISCONNECT): _T(_A.DISCONNECT, _S.CLOSED),
    (_S.IDLE, _In.ABORT): _T(_A.ABORT, _S.IDLE),
    (_S.IDLE, _In.PUT): _T(_A.NOT_CONNECTED, _S.IDLE, refused=_S.IDLE),
    (_S.IDLE, _In.PUT_FINAL): _T(_A.NOT_CONNECTED, _S.IDLE, refused=_S.IDLE),
    (_S.IDLE, _In.GET): _T(_A.NOT_CONNECTED, _S.IDLE, refused=_S.IDLE),
    (_S.IDLE, _In.GET_FINAL): _T(_A.NOT_CONNECTED, _S.IDLE, refused=_S.IDLE),
    (_S.IDLE, _In.UNSUPPORTED): _T(_A.NOT_IMPLEMENTED, _S.IDLE, refused=_S.IDLE),
    (_S.IDLE, _In.MALFORMED): _T(_A.MALFORMED, _S.IDLE, refused=_S.IDLE),
    # -- connected, idle --
    (_S.CONNECTED, _In.PUT): _T(_A.PUT_PACKET, _S.PUT_RECEIVING, refused=_S.CONNECTED),
    (_S.CONNECTED, _In.PUT_FINAL): _T(_A.PUT_PACKET, _S.PUT_PENDING, refused=_S.CONNECTED),
    (_S.CONNECTED, _In.GET): _T(_A.GET_PACKET, _S.GET_REQUESTING, refused=_S.CONNECTED),
    (_S.CONNECTED, _In.GET_FINAL): _T(_A.GET_PACKET, _S.GET_PENDING, refused=_S.CONNECTED),
    (_S.CONNECTED, _In.DISCONNECT): _T(_A.DISCONNECT, _S.CLOSED, refused=_S.CONNECTED),
    (_S.CONNECTED, _In.ABORT): _T(_A.ABORT, _S.CONNECTED),
    (_S.CONNECTED, _In.UNSUPPORTED): _T(_A.NOT_IMPLEMENTED, _S.CONNECTED, refused=_S.CONNECTED),
    (_S.CONNECTED, _In.MALFORMED): _T(_A.MALFORMED, _S.CONNECTED, refused=_S.CONNECTED),
    # -- receiving a multi-packet PUT --
    (_S.PUT_RECEIVING, _In.PUT): _T(_A.PUT_PACKET, _S.PUT_RECEIVING, refused=_S.CONNECTED),
    (_S.PUT_RECEIVING, _In.PUT_FINAL): _T(_A.PUT_PACKET, _S.PUT_PENDING, refused=_S.CONNECTED),
    (_S.PUT_RECEIVING, _In.ABORT): _T(_A.ABORT, _S.CONNECTED),
    (_S.PUT_RECEIVING, _In.DISCONNECT): _T(_A.DISCONNECT, _S.CLOSED, refused=_S.CONNECTED),
    (_S.PUT_RECEIVING, _In.MALFORMED): _T(_A.MALFORMED, _S.CONNECTED, refused=_S.CONNECTED),
    # -- the application decides about a complete PUT --
    (_S.PUT_PENDING, _In.ACCEPT_PUT): _T(_A.ACCEPT_PUT, _S.CONNECTED),
    (_S.PUT_PENDING, _In.REJECT_PUT): _T(_A.REJECT, _S.CONNECTED),
    # -- receiving a multi-packet GET request --
    (_S.GET_REQUESTING, _In.GET): _T(_A.GET_PACKET, _S.GET_REQUESTING, refused=_S.CONNECTED),
    (_S.GET_REQUESTING, _In.GET_FINAL): _T(_A.GET_PACKET, _S.GET_PENDING, refused=_S.CONNECTED),
    (_S.GET_REQUESTING, _In.ABORT): _T(_A.ABORT, _S.CONNECTED),
    (_S.GET_REQUESTING, _In.DISCONNECT): _T(_A.DISCONNECT, _S.CLOSED, refused=_S.CONNECTED),
    (_S.GET_REQUESTING, _In.MALFORMED): _T(_A.MALFORMED, _S.CONNECTED, refused=_S.CONNECTED),
    # -- the application answers a GET --
    (_S.GET_PENDING, _In.ANSWER_GET): _T(_A.FIRST_CHUNK, _S.CONNECTED, more=_S.GET_SENDING),
    (_S.GET_PENDING, _In.REJECT_GET): _T(_A.REJECT, _S.CONNECTED),
    # -- sending the GET response body --
    (_S.GET_SENDING, _In.GET_FINAL): _T(
        _A.NEXT_CHUNK, _S.CONNECTED, more=_S.GET_SENDING, refused=_S.CONNECTED
    ),
    # OBEX wants GET-final here; a non-final GET is taken as "next chunk" too.
    (_S.GET_SENDING, _In.GET): _T(
        _A.NEXT_CHUNK, _S.CONNECTED, more=_S.GET_SENDING, refused=_S.CONNECTED
    ),
    (_S.GET_SENDING, _In.ABORT): _T(_A.ABORT, _S.CONNECTED),
    (_S.GET_SENDING, _In.DISCONNECT): _T(_A.DISCONNECT, _S.CLOSED, refused=_S.CONNECTED),
    (_S.GET_SENDING, _In.MALFORMED): _T(_A.MALFORMED, _S.CONNECTED, refused=_S.CONNECTED),
    # -- end of stream anywhere; late application answers after closing --
    **{(s, _In.EOF): _T(_A.LOST, _S.CLOSED) for s in _S if s is not _S.CLOSED},
    (_S.CLOSED, _In.EOF): _T(_A.IGNORE, _S.CLOSED),
    **{(_S.CLOSED, i): _T(_A.IGNORE, _S.CLOSED) for i in _APP_INPUTS},
}

_OPCODE_INPUT: Final = {
    (Opcode.CONNECT, True): _In.CONNECT,
    (Opcode.DISCONNECT, True): _In.DISCONNECT,
    (Opcode.PUT, False): _In.PUT,
    (Opcode.PUT, True): _In.PUT_FINAL,
    (Opcode.GET, False): _In.GET,
    (Opcode.GET, True): _In.GET_FINAL,
    (Opcode.ABORT, True): _In.ABORT,
}

_PACKET_OVERHEAD: Final = 3  # response code + length
_BODY_HEADER_OVERHEAD: Final = 3


@dataclass(slots=True, kw_only=True)
class _Call:
    """What an action works on: the request, or the application's arguments."""

    request: Request | None = None
    error: ObexProtocolError | None = None
    code: ResponseCode | None = None
    body: bytes = b""
    headers: tuple[Header, ...] = field(default=())


class ObexServer:
    """One OBEX server connection, sans-IO (see the module docstring)."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        """Create a server in state IDLE with ``config`` (defaults: SyncML Target, 64 KiB)."""
        self.config = config or ServerConfig()
        self._state = ServerState.IDLE
        self._reader = PacketReader(self.config.max_packet)
        self._out = bytearray()
        self._events: list[Event] = []
        self._peer_max = MIN_PACKET_SIZE
        self._cid: int | None = None
        # bytes of non-body headers kept for the current operation
        self._header_bytes = 0
        # PUT reassembly
        self._put_type: str | None = None
        self._put_headers: list[Header] = []
        self._put_body = bytearray()
        # GET request headers and response body
        self._get_headers: list[Header] = []
        self._get_body = b""
        self._get_offset = 0
        self._actions: dict[_A, Callable[[_Call], Outcome]] = {
            _A.CONNECT: self._do_connect,
            _A.DISCONNECT: self._do_disconnect,
            _A.ABORT: self._do_abort,
            _A.PUT_PACKET: self._do_put_packet,
            _A.GET_PACKET: self._do_get_packet,
            _A.ACCEPT_PUT: self._do_accept_put,
            _A.REJECT: self._do_reject,
            _A.FIRST_CHUNK: self._do_first_chunk,
            _A.NEXT_CHUNK: self._do_next_chunk,
            _A.NOT_CONNECTED: self._do_not_connected,
            _A.NOT_IMPLEMENTED: self._do_not_implemented,
            _A.MALFORMED: self._do_malformed,
            _A.LOST: self._do_lost,
            _A.IGNORE: self._do_ignore,
        }

    # -- public API ------------------------------------------------------------------

    @property
    def state(self) -> ServerState:
        """The current state."""
        return self._state

    @property
    def peer_max_packet(self) -> int:
        """Largest packet the client accepts (255 until CONNECT)."""
        return self._peer_max

    @property
    def connection_id(self) -> int | None:
        """The Connection-Id issued to the client, if any."""
        return self._cid

    @property
    def buffered(self) -> int:
        """Received bytes not yet forming a complete packet."""
        return self._reader.buffered

    def receive_data(self, data: bytes) -> list[Event]:
        """Process received bytes (``b""`` = end of stream) and return the resulting events.

        Never raises for anything the peer sends: malformed input becomes a
        refusal or a :class:`ProtocolFailure` event plus an error response
        in :meth:`data_to_send`.
        """
        if not data:
            self._dispatch(_In.EOF, _Call())
        elif self._state is not ServerState.CLOSED:
            self._reader.feed(data)
            self._drain()
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        """Bytes to write to the transport (and forget)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def accept_put(self, headers: Iterable[Header] = ()) -> None:
        """Answer the completed PUT with 0xA0 OK (plus optional ``headers``).

        Raises:
            ObexUsageError: no PUT is waiting for an answer.
        """
        self._dispatch(_In.ACCEPT_PUT, _Call(headers=tuple(headers)))

    def reject_put(self, code: ResponseCode) -> None:
        """Answer the completed PUT with an error ``code`` (not Continue/success).

        Raises:
            ObexUsageError: no PUT is waiting, or ``code`` is not an error.
        """
        self._dispatch(_In.REJECT_PUT, _Call(code=_error_code(code)))

    def send_get_response(self, body: bytes, headers: Iterable[Header] = ()) -> None:
        """Answer the pending GET with ``body`` (chunked to the client's maximum packet).

        ``headers`` go into the first response packet.  The SyncML binding
        sends none: the OBEX GET response carries no Type.

        Raises:
            ObexUsageError: no GET is waiting, or ``headers`` do not fit a packet.
        """
        self._dispatch(_In.ANSWER_GET, _Call(body=bytes(body), headers=tuple(headers)))

    def reject_get(self, code: ResponseCode) -> None:
        """Answer the pending GET with an error ``code``.

        Raises:
            ObexUsageError: no GET is waiting, or ``code`` is not an error.
        """
        self._dispatch(_In.REJECT_GET, _Call(code=_error_code(code)))

    # -- the machine -----------------------------------------------------------------

    def _drain(self) -> None:
        while self._state is not ServerState.CLOSED:
            try:
                frame = self._reader.next_frame()
            except ObexProtocolError as err:
                self._fail(err.code, err.reason, None)
                return
            if frame is None:
                return
            try:
                request = decode_request(frame)
            except ObexProtocolError as err:
                self._dispatch(_In.MALFORMED, _Call(error=err))
                continue
            self._dispatch(_classify(request), _Call(request=request))

    def _dispatch(self, inp: _In, call: _Call) -> None:
        state = self._state
        transition = _TRANSITIONS.get((state, inp))
        if transition is None:
            if inp in _APP_INPUTS:
                self._close()
                raise ObexUsageError(f"{inp.name.lower()} is not allowed in state {state.name}")
            self._fail(
                ResponseCode.BAD_REQUEST, f"{inp.name} not allowed in state {state.name}", call
            )
            return
        try:
            try:
                outcome = self._actions[transition.action](call)
            except ObexProtocolError as err:  # e.g. a non-ASCII Type: refuse the request
                raise Refusal(err.code, err.reason) from None
        except Refusal as refusal:
            assert transition.refused is not None, f"{transition.action} cannot refuse"
            self._refuse(refusal, call)
            self._state = transition.refused
            return
        self._state = transition.next_state(outcome)
        if self._state is ServerState.CONNECTED and state is not ServerState.CONNECTED:
            self._reset_operation()

    def _refuse(self, refusal: Refusal, call: _Call) -> None:
        request = call.request
        self._respond(refusal.code, connect=request is not None and request.connect is not None)
        self._reset_operation()
        if request is not None and request.opcode is Opcode.CONNECT:
            target = request.header(HeaderId.TARGET)
            self._events.append(
                ConnectRefused(
                    target=None if target is None else target.data,
                    code=refusal.code,
                    reason=refusal.reason,
                )
            )
        else:
            opcode = None if request is None else request.opcode
            self._events.append(
                RequestRefused(opcode=opcode, code=refusal.code, reason=refusal.reason)
            )

    def _fail(self, code: ResponseCode, reason: str, call: _Call | None) -> None:
        """A protocol violation we cannot continue after: answer ``code`` and close."""
        request = None if call is None else call.request
        self._respond(code, connect=request is not None and request.connect is not None)
        self._events.append(ProtocolFailure(code=code, reason=reason))
        self._close()

    def _close(self) -> None:
        self._state = ServerState.CLOSED
        self._reset_operation()
        # Drop anything buffered; receive_data() ignores anything still to come.
        self._reader = PacketReader(MIN_PACKET_SIZE)

    def _reset_operation(self) -> None:
        self._header_bytes = 0
        self._put_type = None
        self._put_headers = []
        self._put_body = bytearray()
        self._get_headers = []
        self._get_body = b""
        self._get_offset = 0

    def _respond(
        self, code: ResponseCode, headers: Iterable[Header] = (), *, connect: bool = False
    ) -> None:
        params = ConnectParams(max_packet=self.config.max_packet) if connect else None
        self._out += Response(code=code, headers=tuple(headers), connect=params).encode()

    def _check_connection_id(self, request: Request, *, first: bool) -> None:
        if self._cid is None:
            return
        cid = request.connection_id
        if cid is None:
            if first and self.config.require_connection_id:
                raise Refusal(ResponseCode.BAD_REQUEST, "Connection-Id missing")
        elif cid != self._cid:
            raise Refusal(ResponseCode.FORBIDDEN, f"Connection-Id {cid} is not ours ({self._cid})")

    # -- actions ---------------------------------------------------------------------

    def _do_connect(self, call: _Call) -> Outcome:
        request = _request(call)
        assert request.connect is not None
        peer_max = request.connect.max_packet
        target_header = request.header(HeaderId.TARGET)
        target = None if target_header is None else target_header.data
        if peer_max < MIN_PACKET_SIZE:
            raise Refusal(
                ResponseCode.BAD_REQUEST, f"maximum packet length {peer_max} is below 255"
            )
        if target is None:
            if not self.config.accept_missing_target:
                raise Refusal(self.config.refuse_code, "CONNECT without Target")
        elif target not in self.config.targets:
            raise Refusal(self.config.refuse_code, f"Target {target!r} is not served here")
        # The OBEX version byte is informational: SyncEvolution/OpenOBEX send
        # 1.0 and nothing is gained by refusing others (PyOBEX's server tried,
        # and then sent a Forbidden *and* a success response).
        self._peer_max = peer_max
        headers: list[Header] = []
        if target is not None:
            self._cid = self.config.connection_id
            headers += [connection_id_header(self._cid), who_header(target)]
        self._respond(ResponseCode.OK, headers, connect=True)
        who = request.header(HeaderId.WHO)
        self._events.append(
            Connected(
                target=target,
                who=None if who is None else who.data,
                max_packet=peer_max,
                connection_id=self._cid or 0,
            )
        )
        return Outcome.DONE

    def _do_disconnect(self, call: _Call) -> Outcome:
        self._check_connection_id(_request(call), first=True)
        self._respond(ResponseCode.OK)
        self._events.append(Disconnected())
        self._close()
        return Outcome.DONE

    def _do_abort(self, call: _Call) -> Outcome:
        # ABORT is answered OK whatever its Connection-Id: it only ever ends things.
        self._respond(ResponseCode.OK)
        if self._state in (_S.PUT_RECEIVING, _S.GET_REQUESTING, _S.GET_SENDING):
            self._events.append(Aborted())
        self._reset_operation()
        return Outcome.DONE

    def _do_put_packet(self, call: _Call) -> Outcome:
        request = _request(call)
        first = self._state is ServerState.CONNECTED
        self._check_connection_id(request, first=first)
        if first:
            self._reset_operation()
        for h in request.headers:
            if h.id in (HeaderId.BODY, HeaderId.END_OF_BODY):
                if len(self._put_body) + len(h.data) > self.config.max_body:
                    raise Refusal(
                        ResponseCode.REQUEST_ENTITY_TOO_LARGE,
                        f"PUT body exceeds {self.config.max_body} bytes",
                    )
                self._put_body += h.data
                continue
            self._keep_header_bytes(h)
            if h.id is HeaderId.TYPE:
                self._put_type = parse_type(h.data)
                self._check_put_type()
            elif h.id is HeaderId.LENGTH and h.number > self.config.max_body:
                raise Refusal(
                    ResponseCode.REQUEST_ENTITY_TOO_LARGE,
                    f"PUT announces {h.number} bytes, limit {self.config.max_body}",
                )
            self._put_headers.append(h)
        if not request.final:
            self._respond(ResponseCode.CONTINUE)
            return Outcome.DONE
        # The final packet may carry Body rather than End-of-Body: SyncEvolution
        # (OpenOBEX) sends a whole message as one PUT-final with a Body header.
        if self._put_type is None:
            self._check_put_type()
        self._events.append(
            PutComplete(
                type=self._put_type, body=bytes(self._put_body), headers=tuple(self._put_headers)
            )
        )
        self._put_body = bytearray()
        return Outcome.DONE

    def _keep_header_bytes(self, header: Header) -> None:
        self._header_bytes += header.encoded_length
        if self._header_bytes > self.config.max_headers:
            raise Refusal(
                ResponseCode.REQUEST_ENTITY_TOO_LARGE,
                f"more than {self.config.max_headers} bytes of headers in one request",
            )

    def _check_put_type(self) -> None:
        allowed = self.config.put_types
        if allowed is None:
            return
        if self._put_type is None:
            raise Refusal(self.config.wrong_type_code, "PUT without Type")
        if _normalise_type(self._put_type) not in allowed:
            raise Refusal(self.config.wrong_type_code, f"PUT Type {self._put_type!r} refused")

    def _do_get_packet(self, call: _Call) -> Outcome:
        request = _request(call)
        first = self._state is ServerState.CONNECTED
        self._check_connection_id(request, first=first)
        if first:
            self._reset_operation()
        for h in request.headers:
            self._keep_header_bytes(h)
        self._get_headers += request.headers
        if not request.final:
            self._respond(ResponseCode.CONTINUE)
            return Outcome.DONE
        get_type = None
        for h in self._get_headers:
            if h.id is HeaderId.TYPE:
                get_type = parse_type(h.data)
                break
        self._events.append(GetRequested(type=get_type, headers=tuple(self._get_headers)))
        return Outcome.DONE

    def _do_accept_put(self, call: _Call) -> Outcome:
        self._respond(ResponseCode.OK, call.headers)
        return Outcome.DONE

    def _do_reject(self, call: _Call) -> Outcome:
        assert call.code is not None
        self._respond(call.code)
        return Outcome.DONE

    def _do_first_chunk(self, call: _Call) -> Outcome:
        body = call.body
        headers = list(call.headers)
        if self.config.get_length_header and len(body) <= 0xFFFFFFFF:
            headers.insert(0, length_header(len(body)))
        room = self._peer_max - _PACKET_OVERHEAD - _BODY_HEADER_OVERHEAD
        room -= sum(h.encoded_length for h in headers)
        if room < 0:
            raise ObexUsageError("GET response headers do not fit the client's packet size")
        self._get_body = body
        self._get_offset = 0
        return self._send_chunk(headers, room)

    def _do_next_chunk(self, call: _Call) -> Outcome:
        self._check_connection_id(_request(call), first=False)
        return self._send_chunk([], self._peer_max - _PACKET_OVERHEAD - _BODY_HEADER_OVERHEAD)

    def _send_chunk(self, headers: list[Header], room: int) -> Outcome:
        start = self._get_offset
        remaining = len(self._get_body) - start
        if remaining <= room:
            chunk = self._get_body[start:]
            self._respond(ResponseCode.OK, [*headers, body_header(chunk, end=True)])
            self._get_body = b""
            self._get_offset = 0
            return Outcome.DONE
        # room can only be 0 on a first packet full of application headers: then
        # that packet goes out without a body and the data follows.
        chunk = self._get_body[start : start + room]
        self._respond(ResponseCode.CONTINUE, [*headers, body_header(chunk)] if room else headers)
        self._get_offset += room
        return Outcome.MORE

    def _do_not_connected(self, call: _Call) -> Outcome:
        raise Refusal(ResponseCode.FORBIDDEN, "no OBEX connection: CONNECT first")

    def _do_not_implemented(self, call: _Call) -> Outcome:
        opcode = _request(call).opcode
        raise Refusal(ResponseCode.NOT_IMPLEMENTED, f"{opcode.name} is not supported")

    def _do_malformed(self, call: _Call) -> Outcome:
        assert call.error is not None
        raise Refusal(call.error.code, call.error.reason)

    def _do_lost(self, call: _Call) -> Outcome:
        self._events.append(ConnectionLost())
        self._close()
        return Outcome.DONE

    def _do_ignore(self, call: _Call) -> Outcome:
        return Outcome.DONE


def _classify(request: Request) -> _In:
    return _OPCODE_INPUT.get((request.opcode, request.final), _In.UNSUPPORTED)


def _request(call: _Call) -> Request:
    assert call.request is not None
    return call.request


def _error_code(code: ResponseCode) -> ResponseCode:
    if not isinstance(code, ResponseCode) or code is ResponseCode.CONTINUE or code.is_success:
        raise ObexUsageError(f"{code!r} is not an error response code")
    return code
