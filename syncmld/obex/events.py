"""Events of the OBEX machines (:mod:`syncmld.obex.server`, :mod:`syncmld.obex.client`).

Events are frozen, slotted, keyword-only dataclasses (the h11/h2 style):
the machines return them from ``receive_data``; the application reacts to
them and calls back into the machine (``accept_put()``, ``send_get_response()``,
``put()``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from syncmld.obex.errors import ObexUsageError
from syncmld.obex.packets import (
    MAX_PACKET_SIZE,
    MIN_PACKET_SIZE,
    Header,
    Opcode,
    ResponseCode,
)

__all__ = [
    "Aborted",
    "ConnectRefused",
    "ConnectResult",
    "Connected",
    "ConnectionLost",
    "Disconnected",
    "Event",
    "GetRequested",
    "GetResult",
    "ProtocolFailure",
    "PutComplete",
    "PutResult",
    "RequestRefused",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base class of every OBEX event."""


# -- server side -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected(Event):
    """A CONNECT was accepted (server side).

    Attributes:
        target: the Target header the client sent (``None`` if it sent none
            and the server accepts that).
        who: the client's Who header, if any.
        max_packet: the largest packet the client can receive; every packet
            the server sends is at most this long.
        connection_id: the Connection-Id the server assigned (0 when the
            connection is undirected, i.e. without Target: none is issued).
    """

    target: bytes | None
    who: bytes | None
    max_packet: int
    connection_id: int

    def __post_init__(self) -> None:
        if not MIN_PACKET_SIZE <= self.max_packet <= MAX_PACKET_SIZE:
            raise ObexUsageError(f"max_packet {self.max_packet} outside 255..65535")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectRefused(Event):
    """A CONNECT was refused with ``code`` (wrong Target, bad maximum packet length)."""

    target: bytes | None
    code: ResponseCode
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PutComplete(Event):
    """The client finished a PUT; answer with ``accept_put()`` or ``reject_put(code)``.

    Attributes:
        type: the Type header (NUL and trailing spaces trimmed), or ``None``.
        body: the reassembled Body/End-of-Body payload.
        headers: every non-body header of the PUT, in arrival order
            (Connection-Id, Type, Length, Name, ...).
    """

    type: str | None
    body: bytes
    headers: tuple[Header, ...] = field(default=())


@dataclass(frozen=True, slots=True, kw_only=True)
class GetRequested(Event):
    """The client sent GET-final; answer with ``send_get_response(body)`` or ``reject_get(code)``.

    Attributes:
        type: the Type header of the GET, or ``None``.
        headers: every header of the GET request packets.
    """

    type: str | None
    headers: tuple[Header, ...] = field(default=())


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRefused(Event):
    """The server refused one request with ``code`` and stays connected.

    ``opcode`` is ``None`` when the request could not be decoded at all.
    An operation in progress (a multi-packet PUT or GET) is abandoned.
    """

    opcode: Opcode | None
    code: ResponseCode
    reason: str


# -- client side -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectResult(Event):
    """The server answered our CONNECT.

    Attributes:
        code: the response code (``OK`` when connected).
        max_packet: the largest packet the server can receive, if it said.
        connection_id: the Connection-Id the server assigned, if any.
        who: the server's Who header, if any.
    """

    code: ResponseCode
    max_packet: int | None = None
    connection_id: int | None = None
    who: bytes | None = None

    @property
    def ok(self) -> bool:
        """``True`` when the connection is established."""
        return self.code.is_success


@dataclass(frozen=True, slots=True, kw_only=True)
class PutResult(Event):
    """The server answered the last packet of our PUT (or refused an earlier one)."""

    code: ResponseCode

    @property
    def ok(self) -> bool:
        """``True`` when the server accepted the object."""
        return self.code.is_success


@dataclass(frozen=True, slots=True, kw_only=True)
class GetResult(Event):
    """Our GET finished; ``body`` is the reassembled object (empty on failure)."""

    code: ResponseCode
    body: bytes = b""
    headers: tuple[Header, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """``True`` when the server delivered the object."""
        return self.code.is_success


# -- both sides --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Aborted(Event):
    """A multi-packet operation was aborted (by the peer on the server, by us on the client)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected(Event):
    """The OBEX connection ended with DISCONNECT; the transport can be closed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLost(Event):
    """The transport reached end-of-file before DISCONNECT."""

    reason: str = "end of stream"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolFailure(Event):
    """The peer broke the protocol beyond repair; the machine is closed.

    On the server ``code`` is the response code sent to the client; on the
    client it is ``BAD_REQUEST`` for anything the server sent that could not
    be understood.  After this event, flush :meth:`data_to_send` and close
    the transport.
    """

    code: ResponseCode
    reason: str
