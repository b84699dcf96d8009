"""Driving server sessions and persisting their outcome, for every transport.

A transport (HTTP, OBEX over TCP or Bluetooth) moves bytes; what it does with
a :class:`~syncmld.engine.server.ServerSession` is the same everywhere and
lives here, in :class:`SessionRunner`:

* :meth:`SessionRunner.open` creates a session and gives it a key, a short
  id unique among live sessions (``obex-3f9a0c1b2d4e``) by which the daemon
  names it on D-Bus and cancels it.
* :meth:`SessionRunner.exchange` hands one received message to the engine in
  a worker thread (engine calls read and write the stores and the state
  database, so they block) and returns the engine's reply.  A message the
  engine cannot decode, an internal error and a failure to save the outcome
  end the session and raise :class:`ExchangeFailed` with the status and the
  one-line message the transport should answer with.
* Once the engine has an outcome, it is persisted exactly once: with
  ``save_session(peer, run)`` when it carries a state to commit, otherwise
  ``record_run(run)`` (failed and cancelled sessions only reach the history).
* :meth:`SessionRunner.finish` ends a session the transport lost (the peer
  went away, timed out, the server stops): the engine is aborted - the
  anchors do not move, only the partial state the engine hands back is
  saved - and the failed run is recorded.  :meth:`SessionRunner.abort` does
  the same for a key, from outside the transport (the daemon's Cancel), and
  tells the transport to drop the connection through the callback it
  registered with the session.
* A device runs one session at a time, so the first message of a new
  session ends the device's earlier live sessions (HTTP keeps a session
  whose client vanished until it expires; a Bluetooth link can die without
  the socket noticing): they are aborted and their partial state saved
  *before* the new session loads the state, so that the new session knows
  what the broken one wrote to the stores.  A session being worked on is
  left alone.
* A failed session's partial state (what it wrote before breaking off) is
  saved - unless a later session of the same device has completed since
  (one the rule above could not end).  The newer state is kept; the stale
  session only reaches the history.

The observer hook, ``observer(key, event)``, sees every engine event of every
reply in order, then the final :class:`~syncmld.engine.session.SessionFinished`
exactly once, after it has been persisted (if saving failed, a
``SessionFinished`` without state whose run says so).  The observer runs on
the event loop, must not block, and what it raises is logged and ignored.

Concurrency: a session is only touched under its :attr:`RunningSession.lock`.
:meth:`exchange` and :meth:`finish` expect the caller to hold it (the HTTP
transport keeps it across routing decisions); :meth:`abort` takes it itself,
so a Cancel waits for the message being handled and aborts after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from syncmld.engine.server import ServerConfig, ServerSession
from syncmld.engine.session import Event, Reply, SessionFinished
from syncmld.engine.state import RunRecord
from syncmld.protocol.codec import decode_message
from syncmld.protocol.errors import RemoteProtocolError

if TYPE_CHECKING:
    from syncmld.state.repository import StateRepository

log = logging.getLogger(__name__)

#: ``observer(key, event)``: told about every engine event of every session.
Observer = Callable[[str, Event], None]

P = ParamSpec("P")
T = TypeVar("T")

__all__ = [
    "ExchangeFailed",
    "MessageExchanged",
    "Observer",
    "RunningSession",
    "SessionRunner",
    "in_thread",
    "one_line",
]


async def in_thread(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking call in a worker thread.

    A cancelled caller still waits for the call to end before the
    cancellation goes on: the engine must never run in two threads at once,
    and the caller may want to abort the session afterwards.
    """
    task = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what matters now
        raise


@dataclass(frozen=True, slots=True)
class MessageExchanged(Event):
    """One message was received and answered: its size and the reply's, in bytes.

    Told to the observer after the reply's engine events (also for a resent
    message answered again from the cache: those bytes crossed the link too).
    """

    received: int
    sent: int


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line of at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class ExchangeFailed(Exception):
    """A message ended its session without a reply to send.

    Attributes:
        status: 400 (the message could not be decoded) or 500 (an internal
            error, or the outcome could not be saved).
        message: one line for the peer (HTTP body, log).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(eq=False)
class RunningSession:
    """One server session driven by a :class:`SessionRunner`.

    Attributes:
        key: the session's id among the runner's sessions.
        transport: ``"http"``, ``"obex"``, ... (for logs and the observer's user).
        engine: the engine session.
        lock: held while the session is being worked on.
        on_abort: called (on the event loop) after :meth:`SessionRunner.abort`
            ended the session, so the transport can drop the connection.
        recorded: the outcome has been persisted.
    """

    key: str
    transport: str
    engine: ServerSession
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    on_abort: Callable[[], None] | None = None
    recorded: bool = False
    _last_reply: Reply | None = None
    _received: int = 0


class SessionRunner:
    """Creates, drives and settles server sessions (see the module docstring).

    Args:
        config: the engine configuration every session gets.
        repository: an open state repository (peer state and history).
        observer: told about every engine event (``observer(key, event)``).
        clock: the wall clock (session start times, history).
    """

    def __init__(
        self,
        config: ServerConfig,
        repository: StateRepository,
        *,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.repository = repository
        self.observer = observer
        self.clock = clock
        self._live: dict[str, RunningSession] = {}

    @property
    def sessions(self) -> Mapping[str, RunningSession]:
        """The live sessions by key (a session leaves once its outcome is persisted)."""
        return dict(self._live)

    def open(self, *, transport: str, resp_uri: str | None = None) -> RunningSession:
        """Start a new session (nothing is sent or stored yet)."""
        key = f"{transport}-{secrets.token_hex(6)}"
        while key in self._live:
            key = f"{transport}-{secrets.token_hex(6)}"
        engine = ServerSession(
            self.config,
            load_peer=self.repository.load_peer,
            now=self.clock(),
            resp_uri=resp_uri,
        )
        sess = RunningSession(key=key, transport=transport, engine=engine)
        self._live[key] = sess
        return sess

    async def exchange(self, sess: RunningSession, body: bytes) -> Reply:
        """Hand one received message to the engine and return its reply.

        The caller holds ``sess.lock``.  When the reply ends the session,
        its outcome has been persisted before this returns.

        Raises:
            ExchangeFailed: the session is over without a reply: the message
                could not be decoded (400), the engine failed (500, the
                session aborted) or the outcome could not be saved (500).
        """
        engine = sess.engine
        sess._received += 1
        if sess._received == 1:
            await self._end_earlier_sessions(sess, body)
        try:
            reply = await in_thread(engine.receive, body)
        except RemoteProtocolError as exc:
            # The engine ended the session; its failed run goes to the history.
            await self.settle(sess)
            raise ExchangeFailed(400, f"cannot decode the SyncML message: {exc}") from None
        except Exception as exc:
            log.error(
                "session %s: internal error: %s",
                sess.key,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            engine.abort(f"internal error: {one_line(str(exc)) or type(exc).__name__}", status=500)
            await self.settle(sess)
            raise ExchangeFailed(500, "internal error; the session is over") from None
        if reply is not sess._last_reply:  # a resent request gets the cached reply again
            sess._last_reply = reply
            for event in reply.events:
                if not isinstance(event, SessionFinished):
                    self._notify(sess.key, event)
        self._notify(sess.key, MessageExchanged(len(body), len(reply.data)))
        if not await self.settle(sess):
            raise ExchangeFailed(500, "the sync state could not be saved")
        return reply

    async def settle(self, sess: RunningSession) -> bool:
        """Persist the session's outcome once it has one; False if saving failed.

        The caller holds ``sess.lock``.  Does nothing while the session goes
        on or when the outcome is already persisted.
        """
        result = sess.engine.result
        if result is None or sess.recorded:
            return True
        sess.recorded = True
        self._live.pop(sess.key, None)
        run = dataclasses.replace(result.run, finished=self.clock())
        peer = result.peer
        try:
            # Checked for every failed run, with or without partial state:
            # the history says why nothing of it was kept.
            if run.status != 200 and run.dev_id and await in_thread(self._superseded, run):
                log.info("session %s: a later session of %s has synced since", sess.key, run.dev_id)
                peer = None
                run = dataclasses.replace(
                    run, message=f"{run.message}; a later session has synced since"
                )
            if peer is not None:
                await in_thread(self.repository.save_session, peer, run)
            else:
                await in_thread(self.repository.record_run, run)
        except Exception as exc:
            log.error("session %s: cannot save the sync state: %s", sess.key, exc)
            failed = dataclasses.replace(
                run, status=500, message=f"the sync state could not be saved: {one_line(str(exc))}"
            )
            if peer is not None:
                with contextlib.suppress(Exception):
                    await in_thread(self.repository.record_run, failed)
            self._notify(sess.key, SessionFinished(None, failed))
            return False
        log.info(
            "session %s with %s finished: %s",
            sess.key,
            run.dev_id or "?",
            "ok" if run.status == 200 else f"{run.status} {run.message}",
        )
        self._notify(sess.key, SessionFinished(peer, run))
        return True

    async def _end_earlier_sessions(self, sess: RunningSession, first: bytes) -> None:
        """Abort the live sessions of the device that sent ``first`` (see the module docstring)."""
        try:
            msg = await in_thread(decode_message, first, limits=self.config.limits)
        except RemoteProtocolError:
            return  # the engine reports it
        dev_id = msg.header.source.uri
        for other in list(self._live.values()):
            if (
                other is not sess
                and other.engine.dev_id == dev_id
                and not other.engine.done
                and not other.lock.locked()
            ):
                log.info("session %s: %s started another session", other.key, dev_id)
                await self.abort(other.key, "the device started another session")

    def _superseded(self, run: RunRecord) -> bool:
        """True when a session of ``run``'s device started later and completed."""
        for other in self.repository.history(run.dev_id, limit=20):
            if other.started <= run.started:
                return False
            if other.status == 200:
                return True
        return False

    async def finish(self, sess: RunningSession, reason: str) -> bool:
        """End the session: abort it if it is still going (nothing committed), persist.

        The caller holds ``sess.lock``.  Returns False if saving failed.
        """
        if not sess.engine.done:
            sess.engine.abort(reason)
        return await self.settle(sess)

    async def abort(self, key: str, reason: str = "cancelled") -> bool:
        """Abort the live session ``key`` (the daemon's Cancel).

        Waits for the message being handled, if any; the session's
        ``on_abort`` callback then lets the transport drop the connection.
        Returns False when no live session has that key.
        """
        sess = self._live.get(key)
        if sess is None:
            return False
        async with sess.lock:
            if sess.engine.done and sess.recorded:
                return False  # it ended while we waited
            await self.finish(sess, reason)
        if sess.on_abort is not None:
            try:
                sess.on_abort()
            except Exception as exc:
                log.error("session %s: dropping the connection failed: %s", key, exc)
        return True

    async def abort_all(self, reason: str) -> None:
        """Abort every live session (the server stops)."""
        for key in list(self._live):
            await self.abort(key, reason)

    def _notify(self, key: str, event: Event) -> None:
        if self.observer is None:
            return
        try:
            self.observer(key, event)
        except Exception as exc:
            log.error("session %s: the observer failed on %s: %s", key, type(event).__name__, exc)
