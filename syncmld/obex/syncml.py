"""The SyncML OBEX binding, sans-IO, on top of :mod:`syncmld.obex.server` / :mod:`.client`.

Two directions (``docs/syncml-protocol.md`` §9.3, §9.4):

* **Phone is OBEX client** (phone-initiated sync):
  :class:`SyncmlObexServerBinding`.  The phone CONNECTs with Target
  ``SYNCML-SYNC``, PUTs each SyncML message and GETs our reply.  The binding
  turns a complete PUT into :class:`MessageReceived` and answers the next
  GET with the bytes given to :meth:`SyncmlObexServerBinding.send_reply`.
* **PC is OBEX client** (server-alerted sync): :class:`SyncmlObexClientBinding`.
  We CONNECT to the phone's "SyncML Client" service, PUT the notification
  (SAN, pkg0), GET the phone's pkg1, then alternate PUT (our reply) and GET
  (the phone's next message), and DISCONNECT.  Here the SyncML *server* PUTs
  replies and GETs requests - the roles are inverted.

The GET response carries no Type header (SyncEvolution's OBEX transport
notes it; OBEX does not require one), so the encoding of a received GET
body is sniffed with :func:`sniff_content_type`: ``<`` starts XML, a first
byte 0x01-0x03 is a WBXML version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Final

from syncmld.obex._machine import Outcome, Transition
from syncmld.obex.client import ClientConfig, ObexClient
from syncmld.obex.errors import ObexUsageError
from syncmld.obex.events import (
    Aborted,
    Connected,
    ConnectionLost,
    ConnectRefused,
    ConnectResult,
    Disconnected,
    Event,
    GetRequested,
    GetResult,
    ProtocolFailure,
    PutComplete,
    PutResult,
    RequestRefused,
)
from syncmld.obex.packets import SYNCML_TARGET, ResponseCode
from syncmld.obex.server import ObexServer, ServerConfig

__all__ = [
    "SAN_TYPE",
    "SYNCML_TYPES",
    "SYNCML_WBXML",
    "SYNCML_XML",
    "BindingEvent",
    "ClientPhase",
    "MessageReceived",
    "NotificationSent",
    "ReplyWanted",
    "RequestRejected",
    "SessionEnded",
    "SessionStarted",
    "SyncmlObexClientBinding",
    "SyncmlObexServerBinding",
    "sniff_content_type",
]

SYNCML_WBXML: Final = "application/vnd.syncml+wbxml"
SYNCML_XML: Final = "application/vnd.syncml+xml"
#: PUT Type of a SyncML DS 1.2 notification (SAN).  The 1.1 "pkg0" form is
#: sent as :data:`SYNCML_WBXML`.
SAN_TYPE: Final = "application/vnd.syncml.ds.notification"
SYNCML_TYPES: Final = frozenset({SYNCML_WBXML, SYNCML_XML})

_UTF8_BOM: Final = b"\xef\xbb\xbf"


def sniff_content_type(body: bytes) -> str | None:
    """Guess the SyncML MIME type of ``body``: WBXML, XML, or ``None`` if neither.

    WBXML documents start with their version byte (0x01 = 1.1, 0x02 = 1.2,
    0x03 = 1.3); XML starts with ``<`` after an optional UTF-8 BOM and
    whitespace.
    """
    if body[:1] in (b"\x01", b"\x02", b"\x03"):
        return SYNCML_WBXML
    if body.removeprefix(_UTF8_BOM).lstrip(b" \t\r\n").startswith(b"<"):
        return SYNCML_XML
    return None


# -- binding events ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingEvent:
    """Base class of the SyncML-over-OBEX events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStarted(BindingEvent):
    """The OBEX connection is up; ``max_packet`` is the peer's maximum packet length."""

    max_packet: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationSent(BindingEvent):
    """The phone accepted our SAN; its pkg1 is being fetched."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(BindingEvent):
    """A SyncML message from the peer.

    ``content_type`` is the PUT Type (phone as OBEX client) or the sniffed
    encoding of the GET response (PC as OBEX client).
    """

    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyWanted(BindingEvent):
    """The phone asked for our reply (GET) before it was given: call ``send_reply()`` soon.

    Phones give up after a device-specific time, so the reply should follow
    promptly.
    """

    content_type: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRejected(BindingEvent):
    """The OBEX layer refused one request (wrong Target, Connection-Id, Type, ...)."""

    code: ResponseCode
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionEnded(BindingEvent):
    """The session is over; close the transport after flushing ``data_to_send()``.

    ``clean`` is true only for a DISCONNECT after a successful exchange.
    ``code`` is the OBEX response code that ended it, when there was one.
    """

    clean: bool
    reason: str
    code: ResponseCode | None = None


# -- phone as OBEX client: we are the OBEX server -------------------------------------------


class SyncmlObexServerBinding:
    """SyncML over our OBEX server (phone-initiated sync).

    Every PUT of a SyncML type is accepted at once and reported as
    :class:`MessageReceived`; the application computes the reply and
    passes it to :meth:`send_reply`, which answers the phone's GET -
    immediately if the GET has arrived, otherwise when it does.
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        """Create the binding; ``config`` defaults to Target SYNCML-SYNC and SyncML PUT Types."""
        self.obex = ObexServer(config or ServerConfig(put_types=SYNCML_TYPES))
        self._reply: bytes | None = None
        self._reply_error: ResponseCode | None = None
        self._get_pending = False
        self._peer_type: str | None = None
        self._ended = False

    @property
    def peer_content_type(self) -> str | None:
        """The Type of the phone's last message (answer in the same encoding)."""
        return self._peer_type

    def receive_data(self, data: bytes) -> list[BindingEvent]:
        """Feed bytes from the phone (``b""`` = end of stream); return binding events."""
        out: list[BindingEvent] = []
        for event in self.obex.receive_data(data):
            out += self._on_event(event)
        return out

    def data_to_send(self) -> bytes:
        """Bytes to write to the phone."""
        return self.obex.data_to_send()

    def send_reply(self, body: bytes) -> None:
        """Answer the phone's next (or pending) GET with the SyncML message ``body``.

        Raises:
            ObexUsageError: a reply is already waiting, the session ended,
                or ``body`` is not in the encoding the phone used.
        """
        if self._ended:
            raise ObexUsageError("the session has ended")
        if self._reply is not None:
            raise ObexUsageError("a reply is already waiting for the phone's GET")
        sniffed = sniff_content_type(body)
        if sniffed is not None and self._peer_type in SYNCML_TYPES and sniffed != self._peer_type:
            raise ObexUsageError(f"reply is {sniffed} but the phone speaks {self._peer_type}")
        if self._get_pending:
            self._get_pending = False
            self.obex.send_get_response(body)
        else:
            self._reply = bytes(body)

    def fail_reply(self, code: ResponseCode = ResponseCode.INTERNAL_SERVER_ERROR) -> None:
        """Answer the phone's next (or pending) GET with the error ``code``: there is no reply.

        For a message the application could not handle (undecodable SyncML,
        an internal error); the phone then disconnects.

        Raises:
            ObexUsageError: a reply is already waiting, the session ended, or
                ``code`` is not an error code.
        """
        if self._ended:
            raise ObexUsageError("the session has ended")
        if self._reply is not None or self._reply_error is not None:
            raise ObexUsageError("a reply is already waiting for the phone's GET")
        if code.is_success or code == ResponseCode.CONTINUE:
            raise ObexUsageError(f"0x{code:02X} is not an error code")
        if self._get_pending:
            self._get_pending = False
            self.obex.reject_get(code)
        else:
            self._reply_error = code

    def _on_event(self, event: Event) -> list[BindingEvent]:
        if isinstance(event, Connected):
            return [SessionStarted(max_packet=event.max_packet)]
        if isinstance(event, PutComplete):
            if not event.body:
                self.obex.reject_put(ResponseCode.BAD_REQUEST)
                return [RequestRejected(code=ResponseCode.BAD_REQUEST, reason="empty PUT")]
            self.obex.accept_put()
            # A new message makes any unsent reply stale.
            self._reply = None
            self._reply_error = None
            content_type = (event.type or "").strip().lower() or (
                sniff_content_type(event.body) or SYNCML_WBXML
            )
            self._peer_type = content_type
            return [MessageReceived(body=event.body, content_type=content_type)]
        if isinstance(event, GetRequested):
            if self._reply_error is not None:
                code, self._reply_error = self._reply_error, None
                self.obex.reject_get(code)
                return []
            if self._reply is not None:
                reply, self._reply = self._reply, None
                self.obex.send_get_response(reply)
                return []
            self._get_pending = True
            return [ReplyWanted(content_type=event.type)]
        if isinstance(event, ConnectRefused | RequestRefused):
            return [RequestRejected(code=event.code, reason=event.reason)]
        if isinstance(event, Aborted):
            self._get_pending = False
            return []
        if isinstance(event, Disconnected):
            return self._end(clean=True, reason="phone disconnected")
        if isinstance(event, ConnectionLost):
            return self._end(clean=False, reason=event.reason)
        if isinstance(event, ProtocolFailure):
            return self._end(clean=False, reason=event.reason, code=event.code)
        raise AssertionError(f"unexpected server event {event!r}")

    def _end(
        self, *, clean: bool, reason: str, code: ResponseCode | None = None
    ) -> list[BindingEvent]:
        self._ended = True
        self._reply = None
        self._reply_error = None
        self._get_pending = False
        return [SessionEnded(clean=clean, reason=reason, code=code)]


# -- PC as OBEX client: we connect to the phone ---------------------------------------------


class ClientPhase(Enum):
    """Phases of :class:`SyncmlObexClientBinding`."""

    IDLE = auto()
    CONNECTING = auto()
    SENDING_SAN = auto()
    RECEIVING = auto()  # GET of the phone's next message
    WAITING = auto()  # the application owes us the next message
    SENDING = auto()  # PUT of our message, a GET follows
    SENDING_LAST = auto()  # PUT of our last message, DISCONNECT follows
    DISCONNECTING = auto()
    CLOSED = auto()


class _CIn(Enum):
    START = auto()
    SEND = auto()
    SEND_LAST = auto()
    CLOSE = auto()
    CONNECT_OK = auto()
    CONNECT_FAILED = auto()
    PUT_OK = auto()
    PUT_FAILED = auto()
    GET_OK = auto()
    GET_FAILED = auto()
    DISCONNECTED = auto()
    LOST = auto()


class _CA(Enum):
    CONNECT = auto()
    PUT_SAN = auto()
    GET = auto()
    DELIVER = auto()
    PUT = auto()
    DISCONNECT = auto()
    FAIL = auto()
    REFUSED = auto()
    END = auto()
    IGNORE = auto()


_P = ClientPhase
_CT = Transition[_CA, ClientPhase]
_LIVE: Final = frozenset(p for p in ClientPhase if p not in (_P.IDLE, _P.CLOSED))

# The server-alerted session as a table, in the style of the OBEX machines:
# inputs are the application's calls (START, SEND, SEND_LAST, CLOSE) and the
# ObexClient's result events (CONNECT_OK, PUT_FAILED, ...; LOST covers end of
# stream and protocol failures).  Every OBEX failure after CONNECT goes to
# DISCONNECTING through FAIL, which remembers the reason for SessionEnded; a
# refused CONNECT ends at once (there is nothing to disconnect).  An
# application call missing from the table raises ObexUsageError; an ObexClient
# event missing from it cannot happen (the client only reports results of
# requests this table made) and raises AssertionError.
_CLIENT_TRANSITIONS: Final[dict[tuple[ClientPhase, _CIn], _CT]] = {
    (_P.IDLE, _CIn.START): _CT(_CA.CONNECT, _P.CONNECTING),
    (_P.CONNECTING, _CIn.CONNECT_OK): _CT(_CA.PUT_SAN, _P.SENDING_SAN),
    (_P.CONNECTING, _CIn.CONNECT_FAILED): _CT(_CA.REFUSED, _P.CLOSED),
    (_P.SENDING_SAN, _CIn.PUT_OK): _CT(_CA.GET, _P.RECEIVING),
    (_P.SENDING_SAN, _CIn.PUT_FAILED): _CT(_CA.FAIL, _P.DISCONNECTING),
    (_P.RECEIVING, _CIn.GET_OK): _CT(_CA.DELIVER, _P.WAITING),
    (_P.RECEIVING, _CIn.GET_FAILED): _CT(_CA.FAIL, _P.DISCONNECTING),
    (_P.WAITING, _CIn.SEND): _CT(_CA.PUT, _P.SENDING),
    (_P.WAITING, _CIn.SEND_LAST): _CT(_CA.PUT, _P.SENDING_LAST),
    (_P.WAITING, _CIn.CLOSE): _CT(_CA.DISCONNECT, _P.DISCONNECTING),
    (_P.SENDING, _CIn.PUT_OK): _CT(_CA.GET, _P.RECEIVING),
    (_P.SENDING, _CIn.PUT_FAILED): _CT(_CA.FAIL, _P.DISCONNECTING),
    (_P.SENDING_LAST, _CIn.PUT_OK): _CT(_CA.DISCONNECT, _P.DISCONNECTING),
    (_P.SENDING_LAST, _CIn.PUT_FAILED): _CT(_CA.FAIL, _P.DISCONNECTING),
    (_P.DISCONNECTING, _CIn.DISCONNECTED): _CT(_CA.END, _P.CLOSED),
    (_P.DISCONNECTING, _CIn.CLOSE): _CT(_CA.IGNORE, _P.DISCONNECTING),
    (_P.IDLE, _CIn.CLOSE): _CT(_CA.IGNORE, _P.CLOSED),
    (_P.CLOSED, _CIn.CLOSE): _CT(_CA.IGNORE, _P.CLOSED),
    **{(p, _CIn.LOST): _CT(_CA.END, _P.CLOSED) for p in _LIVE},
}

_CLIENT_APP_INPUTS: Final = frozenset({_CIn.START, _CIn.SEND, _CIn.SEND_LAST, _CIn.CLOSE})


class SyncmlObexClientBinding:
    """SyncML over our OBEX client (server-alerted sync: we are the SyncML server).

    Call :meth:`start` with the SAN; each :class:`MessageReceived` is a
    message from the phone, answered with :meth:`send_message` (``last=True``
    for the final one, after which the binding disconnects) or ended with
    :meth:`close`.  Any OBEX failure ends the session with a DISCONNECT and
    :class:`SessionEnded` (``clean=False``).

    Attributes:
        content_type: the Type of our PUTs and GETs.  WBXML by default: the
            Nokia S60 OBEX server accepts only WBXML and the SAN type (NK
            ``NSmlObexDSplugin.cpp``), the Nokia 7210c speaks only WBXML (SE).
        san_type: the Type of the notification PUT (:data:`SAN_TYPE` for a
            1.2 SAN, :data:`SYNCML_WBXML` for a 1.1 pkg0).
    """

    def __init__(
        self,
        *,
        content_type: str = SYNCML_WBXML,
        san_type: str = SAN_TYPE,
        target: bytes = SYNCML_TARGET,
        config: ClientConfig | None = None,
    ) -> None:
        """Create the binding (nothing is sent before :meth:`start`)."""
        self.obex = ObexClient(config)
        self.content_type = content_type
        self.san_type = san_type
        self.target = target
        self._phase = ClientPhase.IDLE
        self._events: list[BindingEvent] = []
        self._payload = b""
        self._failure: tuple[str, ResponseCode | None] | None = None
        self._actions: dict[_CA, Callable[[Event | None], Outcome]] = {
            _CA.CONNECT: self._do_connect,
            _CA.PUT_SAN: self._do_put_san,
            _CA.GET: self._do_get,
            _CA.DELIVER: self._do_deliver,
            _CA.PUT: self._do_put,
            _CA.DISCONNECT: self._do_disconnect,
            _CA.FAIL: self._do_fail,
            _CA.REFUSED: self._do_refused,
            _CA.END: self._do_end,
            _CA.IGNORE: self._do_ignore,
        }

    @property
    def phase(self) -> ClientPhase:
        """Where the session stands."""
        return self._phase

    def start(self, san: bytes) -> None:
        """CONNECT to the phone and deliver the notification ``san``.

        Raises:
            ObexUsageError: already started.
        """
        self._payload = bytes(san)
        self._dispatch(_CIn.START, None)

    def send_message(self, body: bytes, *, last: bool = False) -> None:
        """PUT our SyncML message, then GET the phone's answer (or DISCONNECT if ``last``).

        Raises:
            ObexUsageError: no phone message is waiting for an answer.
        """
        self._payload = bytes(body)
        self._dispatch(_CIn.SEND_LAST if last else _CIn.SEND, None)

    def close(self) -> None:
        """DISCONNECT now (between messages), or do nothing if already closing or closed.

        Raises:
            ObexUsageError: a PUT or GET is in flight.
        """
        self._dispatch(_CIn.CLOSE, None)

    def receive_data(self, data: bytes) -> list[BindingEvent]:
        """Feed bytes from the phone (``b""`` = end of stream); return binding events."""
        for event in self.obex.receive_data(data):
            self._dispatch(_classify_client_event(event), event)
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> bytes:
        """Bytes to write to the phone."""
        return self.obex.data_to_send()

    # -- the machine -----------------------------------------------------------------

    def _dispatch(self, inp: _CIn, event: Event | None) -> None:
        transition = _CLIENT_TRANSITIONS.get((self._phase, inp))
        if transition is None:
            if inp in _CLIENT_APP_INPUTS:
                raise ObexUsageError(f"{inp.name.lower()} not allowed in phase {self._phase.name}")
            # ObexClient only reports results of requests we made; anything else
            # is a bug in this table.
            raise AssertionError(f"{event!r} unexpected in phase {self._phase.name}")
        outcome = self._actions[transition.action](event)
        self._phase = transition.next_state(outcome)

    def _do_connect(self, event: Event | None) -> Outcome:
        self.obex.connect(self.target)
        return Outcome.DONE

    def _do_put_san(self, event: Event | None) -> Outcome:
        assert isinstance(event, ConnectResult)
        self._events.append(SessionStarted(max_packet=event.max_packet or 0))
        self.obex.put(self.san_type, self._payload)
        return Outcome.DONE

    def _do_get(self, event: Event | None) -> Outcome:
        if self._phase is ClientPhase.SENDING_SAN:
            self._events.append(NotificationSent())
        self.obex.get(self.content_type)
        return Outcome.DONE

    def _do_deliver(self, event: Event | None) -> Outcome:
        assert isinstance(event, GetResult)
        content_type = sniff_content_type(event.body) or self.content_type
        self._events.append(MessageReceived(body=event.body, content_type=content_type))
        return Outcome.DONE

    def _do_put(self, event: Event | None) -> Outcome:
        self.obex.put(self.content_type, self._payload)
        return Outcome.DONE

    def _do_disconnect(self, event: Event | None) -> Outcome:
        self.obex.disconnect()
        return Outcome.DONE

    def _do_fail(self, event: Event | None) -> Outcome:
        assert isinstance(event, PutResult | GetResult)
        what = {
            ClientPhase.SENDING_SAN: "notification PUT",
            ClientPhase.RECEIVING: "GET",
        }.get(self._phase, "PUT")
        if event.code.is_success:  # a GET answered with an empty body
            self._failure = (f"phone answered the {what} without a message", event.code)
        else:
            # Nokia S40 answers 0xC3 while a dialog is open on its screen (TR): the
            # code is passed on so the caller can retry the session later.
            self._failure = (f"phone refused the {what} with 0x{event.code:02X}", event.code)
        self.obex.disconnect()
        return Outcome.DONE

    def _do_refused(self, event: Event | None) -> Outcome:
        assert isinstance(event, ConnectResult)
        # Nothing to disconnect: the OBEX client is back at IDLE; the caller
        # closes the transport on SessionEnded.
        self._events.append(
            SessionEnded(
                clean=False,
                reason=f"phone refused CONNECT with 0x{event.code:02X}",
                code=event.code,
            )
        )
        return Outcome.DONE

    def _do_end(self, event: Event | None) -> Outcome:
        if isinstance(event, Disconnected):
            if self._failure is None:
                self._events.append(SessionEnded(clean=True, reason="disconnected"))
            else:
                reason, code = self._failure
                self._events.append(SessionEnded(clean=False, reason=reason, code=code))
        elif isinstance(event, ProtocolFailure):
            self._events.append(SessionEnded(clean=False, reason=event.reason, code=event.code))
        else:
            assert isinstance(event, ConnectionLost)
            self._events.append(SessionEnded(clean=False, reason=event.reason))
        return Outcome.DONE

    def _do_ignore(self, event: Event | None) -> Outcome:
        return Outcome.DONE


def _classify_client_event(event: Event) -> _CIn:
    if isinstance(event, ConnectResult):
        return _CIn.CONNECT_OK if event.ok else _CIn.CONNECT_FAILED
    if isinstance(event, PutResult):
        return _CIn.PUT_OK if event.ok else _CIn.PUT_FAILED
    if isinstance(event, GetResult):
        # An empty answer is no SyncML message: treat it as a failed GET.
        return _CIn.GET_OK if event.ok and event.body else _CIn.GET_FAILED
    if isinstance(event, Disconnected):
        return _CIn.DISCONNECTED
    if isinstance(event, ConnectionLost | ProtocolFailure):
        return _CIn.LOST
    raise AssertionError(f"unexpected client event {event!r}")
