"""OBEX for SyncML, sans-IO: bytes in, events and bytes out; no sockets, no clock.

* :mod:`syncmld.obex.packets` - the packet codec and :class:`PacketReader`.
* :mod:`syncmld.obex.server` - :class:`ObexServer`, the state machine answering a phone.
* :mod:`syncmld.obex.client` - :class:`ObexClient`, the state machine talking to a phone.
* :mod:`syncmld.obex.events` - what the two machines report.
* :mod:`syncmld.obex.syncml` - the SyncML OBEX binding on top, both directions.
* :mod:`syncmld.obex.errors` - :class:`ObexProtocolError` (the peer) and
  :class:`ObexUsageError` (the caller).

The transports (RFCOMM file descriptors from BlueZ, TCP) live in
:mod:`syncmld.transports` and only move bytes between a socket and these objects.
"""

from __future__ import annotations

from syncmld.obex.client import ClientConfig, ClientState, ObexClient
from syncmld.obex.errors import ObexError, ObexProtocolError, ObexUsageError
from syncmld.obex.packets import (
    Header,
    HeaderId,
    Opcode,
    PacketReader,
    Request,
    Response,
    ResponseCode,
)
from syncmld.obex.server import ObexServer, ServerConfig, ServerState
from syncmld.obex.syncml import SyncmlObexClientBinding, SyncmlObexServerBinding

__all__ = [
    "ClientConfig",
    "ClientState",
    "Header",
    "HeaderId",
    "ObexClient",
    "ObexError",
    "ObexProtocolError",
    "ObexServer",
    "ObexUsageError",
    "Opcode",
    "PacketReader",
    "Request",
    "Response",
    "ResponseCode",
    "ServerConfig",
    "ServerState",
    "SyncmlObexClientBinding",
    "SyncmlObexServerBinding",
]
