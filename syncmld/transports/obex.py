"""SyncML over OBEX on asyncio streams (``docs/syncml-protocol.md`` section 9).

The OBEX machines and the SyncML binding (:mod:`syncmld.obex`) are sans-IO;
this module moves their bytes over any connected byte stream - an
:class:`asyncio.StreamReader`/:class:`asyncio.StreamWriter` pair from TCP, or
from an RFCOMM socket BlueZ handed over (``asyncio.open_connection(sock=...)``
works for any connected stream socket) - and drives the engine through a
:class:`~syncmld.transports.runner.SessionRunner`.

Theory of operation
-------------------
Phone-initiated sync, :func:`serve_obex_connection` (we are OBEX server and
SyncML server).  The loop reads whatever arrives (partial reads are fine: the
OBEX machine reassembles packets and never buffers more than one packet of
at most the maximum length it announced), feeds it to a
:class:`~syncmld.obex.syncml.SyncmlObexServerBinding` and writes what the
binding wants sent.  Each SyncML message the phone PUTs goes to the engine
(in a worker thread); the engine's reply answers the phone's GET.  The first
message opens the engine session; one OBEX connection carries one session
(a new one starts if the phone sends another first message after the end).
The connection ends when:

* the phone DISCONNECTs (clean), or closes the stream;
* the phone breaks OBEX beyond repair (a packet length above the maximum, a
  request out of order): the binding has answered with the error code, the
  bytes are flushed, the stream is closed;
* nothing arrives for ``idle_timeout`` seconds, or a write does not drain
  within it (a phone that stopped reading);
* the session is cancelled (:meth:`SessionRunner.abort`) or the server stops.

Requests the OBEX machine can refuse without losing the framing (a CONNECT
with a wrong or missing Target, a PUT before CONNECT, a wrong Connection-Id,
a malformed header) get their error code and the connection stays open.
A SyncML message the engine cannot decode answers the GET with 0xC0 Bad
Request, an internal error or an outcome that could not be saved with 0xD0;
that session is over.  Whatever way the connection ends, a session that
has not finished is aborted: nothing is committed, the failed run goes to
the history.

PC-initiated (server-alerted) sync, :func:`run_server_alerted_sync` (we are
OBEX *client* and SyncML server): CONNECT to the phone's SyncML Client
service, PUT the notification, GET the phone's first message, then PUT our
reply and GET its next message until the engine's reply ends the session,
then DISCONNECT.  :func:`connect_obex_tcp` runs it over TCP.

:class:`ObexTcpServer` is the OBEX/TCP listener: one task per connection
running :func:`serve_obex_connection`, default address 127.0.0.1 port
:data:`DEFAULT_OBEX_PORT` (6500: IANA's OBEX port 650, made unprivileged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from syncmld.engine.server import ServerConfig
from syncmld.engine.session import SessionFinished
from syncmld.errors import UserError
from syncmld.obex.errors import ObexUsageError
from syncmld.obex.packets import MAX_PACKET_SIZE, ResponseCode
from syncmld.obex.server import ServerConfig as ObexServerConfig
from syncmld.obex.syncml import (
    SAN_TYPE,
    SYNCML_TYPES,
    SYNCML_WBXML,
    MessageReceived,
    RequestRejected,
    SessionEnded,
    SessionStarted,
    SyncmlObexClientBinding,
    SyncmlObexServerBinding,
)
from syncmld.transports.runner import ExchangeFailed, Observer, RunningSession, SessionRunner

if TYPE_CHECKING:
    from syncmld.state.repository import StateRepository

log = logging.getLogger(__name__)

#: Default TCP port of the OBEX listener (IANA's OBEX port 650, made unprivileged).
DEFAULT_OBEX_PORT = 6500
#: Seconds without a byte from the peer (or a write not drained) before the connection is dropped.
DEFAULT_IDLE_TIMEOUT = 120.0
#: Seconds :class:`ObexTcpServer` waits for connections to end when it stops.
_STOP_GRACE = 5.0
_READ_CHUNK = 64 * 1024

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_OBEX_PORT",
    "ObexTcpServer",
    "ObexTransportError",
    "connect_obex_tcp",
    "run_server_alerted_sync",
    "serve_obex_connection",
]


class ObexTransportError(UserError):
    """The OBEX/TCP connection to a phone could not be made (one-line message)."""


def _obex_server_config(max_packet: int) -> ObexServerConfig:
    """The OBEX server policy for SyncML: Target SYNCML-SYNC, SyncML PUT Types only."""
    return ObexServerConfig(put_types=SYNCML_TYPES, max_packet=max_packet)


async def _read(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    """Read what has arrived (``b""`` at end of stream), ``None`` after ``timeout`` seconds."""
    try:
        return await asyncio.wait_for(reader.read(_READ_CHUNK), timeout)
    except TimeoutError:
        return None
    except (ConnectionError, OSError):
        return b""


async def _write(writer: asyncio.StreamWriter, data: bytes, timeout: float) -> bool:
    """Write and drain; False when the peer is gone or does not read within ``timeout``."""
    if not data:
        return True
    if writer.is_closing():
        return False
    try:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), timeout)
    except (TimeoutError, ConnectionError, OSError):
        return False
    return True


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 2.0)


async def serve_obex_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    runner: SessionRunner,
    *,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    transport: str = "obex",
    peer: str | None = None,
    max_packet: int = MAX_PACKET_SIZE,
    on_open: Callable[[str], None] | None = None,
) -> SessionFinished | None:
    """Serve one phone-initiated OBEX connection to its end, then close the stream.

    Args:
        reader, writer: the connected stream.
        runner: creates and persists the engine sessions.
        idle_timeout: seconds of silence after which the connection is dropped.
        transport: the session keys' prefix (``"obex"``, ``"bluetooth"``).
        peer: who is connected, for the log (default: the socket's peer address).
        max_packet: the largest OBEX packet we accept (announced in CONNECT);
            a longer one ends the connection with 0xCD.
        on_open: called with the key of each session when it starts, so the
            caller can cancel it (:meth:`SessionRunner.abort` hangs up).

    Returns:
        the outcome of the last session run on the connection (already
        persisted), or ``None`` when no SyncML message arrived.
    """
    if peer is None:
        peer = str(writer.get_extra_info("peername") or "?")
    binding = SyncmlObexServerBinding(_obex_server_config(max_packet))
    sess: RunningSession | None = None
    last_body: bytes | None = None
    reason = "the connection was closed"

    def drop() -> None:  # the session was cancelled: hang up
        writer.close()

    try:
        ended = False
        while not ended:
            data = await _read(reader, idle_timeout)
            if data is None:
                reason = f"no data from the phone for {idle_timeout:g} seconds"
                break
            for event in binding.receive_data(data):
                if isinstance(event, MessageReceived):
                    if sess is None or (sess.recorded and event.body != last_body):
                        sess = runner.open(transport=transport)
                        sess.on_abort = drop
                        log.debug("%s: session %s started", peer, sess.key)
                        if on_open is not None:
                            on_open(sess.key)
                    last_body = event.body
                    async with sess.lock:
                        try:
                            reply = await runner.exchange(sess, event.body)
                        except ExchangeFailed as exc:
                            log.warning("%s: session %s: %s", peer, sess.key, exc.message)
                            code = (
                                ResponseCode.BAD_REQUEST
                                if exc.status == 400
                                else ResponseCode.INTERNAL_SERVER_ERROR
                            )
                            answer: Callable[[], None] = partial(binding.fail_reply, code)
                        else:
                            answer = partial(binding.send_reply, reply.data)
                    # The phone may have hung up in the same read as its PUT (the
                    # binding ended): the answer then has nowhere to go.
                    with contextlib.suppress(ObexUsageError):
                        answer()
                elif isinstance(event, SessionStarted):
                    log.debug("%s: OBEX connected, max packet %d", peer, event.max_packet)
                elif isinstance(event, RequestRejected):
                    log.info("%s: refused 0x%02X: %s", peer, event.code, event.reason)
                elif isinstance(event, SessionEnded):
                    ended = True
                    reason = (
                        "the phone disconnected before the session ended"
                        if event.clean
                        else f"OBEX connection ended: {event.reason}"
                    )
            if not await _write(writer, binding.data_to_send(), idle_timeout):
                reason = "the phone stopped reading"
                break
    except asyncio.CancelledError:
        reason = "cancelled"
        raise
    finally:
        if sess is not None and not sess.recorded:
            # The phone went away mid-session (or we are cancelled / stopping):
            # abort, so nothing is committed, and record the failed run.
            async with sess.lock:
                if not sess.recorded:
                    await runner.finish(sess, reason)
        await _close(writer)
    return sess.engine.result if sess is not None else None


async def run_server_alerted_sync(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    runner: SessionRunner,
    san: bytes,
    *,
    san_type: str = SAN_TYPE,
    content_type: str = SYNCML_WBXML,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    transport: str = "obex",
    peer: str | None = None,
    on_open: Callable[[str], None] | None = None,
) -> SessionFinished:
    """Run a PC-initiated sync with a phone over a connected stream, then close it.

    Args:
        reader, writer: a stream connected to the phone's SyncML Client service.
        runner: creates and persists the engine session.
        san: the notification, from :func:`syncmld.engine.server.notification`.
        san_type: its MIME type (the second value ``notification`` returns).
        content_type: the Type of our GETs until the phone has spoken (WBXML:
            what every phone's SyncML client accepts); our replies go in the
            encoding of the phone's messages.
        idle_timeout: seconds to wait for each answer of the phone.
        transport: the session key's prefix.
        peer: who the phone is, for the log.
        on_open: called with the session key as soon as the session exists
            (before CONNECT), so the caller can cancel it by key.

    Returns:
        the outcome, already persisted.  A phone that refuses the connection
        or the notification, goes silent or hangs up yields a failed run
        whose message says so (the session's key was reported through
        ``on_open`` and the observer).
    """
    if peer is None:
        peer = str(writer.get_extra_info("peername") or "phone")
    binding = SyncmlObexClientBinding(content_type=content_type, san_type=san_type)
    sess = runner.open(transport=transport)
    cancelled = False

    def drop() -> None:
        nonlocal cancelled
        cancelled = True
        writer.close()

    sess.on_abort = drop
    if on_open is not None:
        on_open(sess.key)
    reason = "the connection was closed"
    try:
        binding.start(san)
        ended = False
        while not ended:
            if not await _write(writer, binding.data_to_send(), idle_timeout):
                reason = f"cannot send to {peer}: the connection is gone"
                break
            data = await _read(reader, idle_timeout)
            if data is None:
                reason = f"no answer from {peer} for {idle_timeout:g} seconds"
                break
            for event in binding.receive_data(data):
                if isinstance(event, MessageReceived):
                    binding.content_type = event.content_type
                    async with sess.lock:
                        try:
                            reply = await runner.exchange(sess, event.body)
                        except ExchangeFailed as exc:
                            log.warning("%s: session %s: %s", peer, sess.key, exc.message)
                            answer = binding.close
                        else:
                            answer = partial(binding.send_message, reply.data, last=reply.done)
                    # The phone may have hung up right after its answer (same read).
                    with contextlib.suppress(ObexUsageError):
                        answer()
                elif isinstance(event, SessionEnded):
                    ended = True
                    reason = (
                        "the phone ended the OBEX session early"
                        if event.clean
                        else f"OBEX connection to {peer} ended: {event.reason}"
                    )
                    if not event.clean:
                        log.info("%s: session %s: %s", peer, sess.key, event.reason)
        await _write(writer, binding.data_to_send(), idle_timeout)
    finally:
        if not sess.recorded:
            async with sess.lock:
                if not sess.recorded:
                    await runner.finish(sess, "cancelled" if cancelled else reason)
        await _close(writer)
    assert sess.engine.result is not None
    return sess.engine.result


async def connect_obex_tcp(
    host: str,
    port: int,
    runner: SessionRunner,
    san: bytes,
    *,
    san_type: str = SAN_TYPE,
    connect_timeout: float = 30.0,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    on_open: Callable[[str], None] | None = None,
) -> SessionFinished:
    """Connect to a phone's SyncML Client service over OBEX/TCP and run a PC-initiated sync.

    See :func:`run_server_alerted_sync` for the arguments and the result.

    Raises:
        ObexTransportError: the TCP connection cannot be made (nothing is recorded).
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), connect_timeout
        )
    except TimeoutError:
        raise ObexTransportError(
            f"cannot connect to {where}: no answer within {connect_timeout:g} seconds"
        ) from None
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ObexTransportError(f"cannot connect to {where}: {reason}") from None
    return await run_server_alerted_sync(
        reader,
        writer,
        runner,
        san,
        san_type=san_type,
        idle_timeout=idle_timeout,
        transport="obex",
        peer=where,
        on_open=on_open,
    )


class ObexTcpServer:
    """The OBEX/TCP listener serving phone-initiated SyncML sessions (mirrors ``HttpServer``).

    Args:
        config: the engine configuration every session gets.
        repository: an open state repository.
        host, port: where to listen (port 0: any free port; :attr:`port`
            tells which after :meth:`start`).
        observer: told about every engine event (see :mod:`.runner`).
        idle_timeout: seconds of silence after which a connection is dropped.
        max_packet: the largest OBEX packet accepted (255..65535).
        clock: the wall clock (session start times, history).
        runner: share this session runner (and its observer) with other
            transports instead of making one.

    Use ``async with ObexTcpServer(...) as server:`` or :meth:`start`/:meth:`stop`.
    """

    def __init__(
        self,
        config: ServerConfig,
        repository: StateRepository,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_OBEX_PORT,
        observer: Observer | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_packet: int = MAX_PACKET_SIZE,
        clock: Callable[[], float] = time.time,
        runner: SessionRunner | None = None,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout}")
        _obex_server_config(max_packet)  # checks the range now, not per connection
        self.max_packet = max_packet
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        self.runner = runner or SessionRunner(config, repository, observer=observer, clock=clock)
        if runner is not None and observer is not None:
            runner.observer = observer
        self._server: asyncio.Server | None = None
        self._tasks: dict[asyncio.Task[Any], list[str]] = {}
        #: Every accepted stream not closed yet, so that stop() closes them all.
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Start listening.

        Raises:
            UserError: the address cannot be bound.
        """
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise UserError(f"cannot listen on {self.host}:{self.port}: {reason}") from None
        sockets = self._server.sockets
        if sockets:
            address = sockets[0].getsockname()
            self.host, self.port = str(address[0]), int(address[1])
        log.info("OBEX/TCP listening on %s:%d", self.host, self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:
            # Accepted just before stop(): the handler starts after it.
            await _close(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        keys = self._tasks[task] = []
        self._writers.add(writer)
        try:
            await serve_obex_connection(
                reader,
                writer,
                self.runner,
                idle_timeout=self.idle_timeout,
                transport="obex",
                max_packet=self.max_packet,
                on_open=keys.append,
            )
        except asyncio.CancelledError:
            # stop(): serve_obex_connection has aborted the session and closed the
            # stream.  The task ends normally: asyncio's stream callback logs a
            # cancelled connection task as an error.
            pass
        except Exception as exc:  # one connection's failure never stops the listener
            log.error("OBEX connection failed: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
            await _close(writer)
        finally:
            self._tasks.pop(task, None)
            if writer.is_closing():
                self._writers.discard(writer)

    @property
    def connections(self) -> int:
        """Connections being served."""
        return len(self._tasks)

    @property
    def open_transports(self) -> int:
        """Accepted streams not closed yet (0 once :meth:`stop` returned)."""
        return sum(not w.is_closing() for w in self._writers)

    async def stop(self) -> None:
        """Stop listening and end every connection (live sessions are aborted and recorded)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for keys in list(self._tasks.values()):
            for key in keys:  # recorded as such; the connection is hung up
                await self.runner.abort(key, "the server stopped")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_GRACE)
        await server.wait_closed()
        # Connections accepted right before close() get their handler only
        # now (it closes them at once), and a handler cancelled while a
        # phone hung up may have left its stream open: close every one.
        for _ in range(3):
            await asyncio.sleep(0)
        writers, self._writers = list(self._writers), set()
        for writer in writers:
            await _close(writer)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
