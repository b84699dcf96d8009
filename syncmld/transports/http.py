"""SyncML over HTTP (``docs/syncml-protocol.md`` section 10), server and client role.

The engine sessions are sans-IO; this module moves their messages over HTTP
with aiohttp and persists what they hand back.  Engine calls block (they
read and write the local stores and the state database), so each one runs in
a worker thread, and a session is never used by two threads at once.

Server role
-----------
:func:`make_app` builds the aiohttp application, :class:`HttpServer` runs it
on a host and port or on a socket bound by someone else (``SockSite``:
systemd socket activation).  Every request is a POST of one SyncML message:

* method other than POST -> 405; content type other than
  ``application/vnd.syncml+xml`` (any parameters) or
  ``application/vnd.syncml+wbxml`` -> 415; body larger than the limit
  (counted after ``Content-Encoding: gzip/deflate`` is undone) -> 413.
* Routing.  A request carrying ``?sessionid=<token>`` goes to that session;
  an unknown or expired token -> 404; a token of a finished session -> 410,
  unless it is the last request again.  A request without token starts a new
  :class:`~syncmld.engine.server.ServerSession` whose ``RespURI`` is the
  request URL plus ``?sessionid=<new token>``, so the client's next POST finds
  it - except that a token-less request naming the SyncML session (SyncHdr
  ``Source/LocURI`` + ``SessionID``, Horde's key) of a live session that is
  still waiting for valid credentials goes to that session: the engine sends
  no ``RespURI`` with a 401/407 challenge, and an MD5 challenge's nonce only
  means something to the session that issued it.
* A resent identical request (the client lost our answer) is answered by
  the engine from its cache; an HTTP-level resend of the first message is
  recognized by the same key.
* A message the engine cannot decode -> 400 with a one-line text body (the
  session, if any, is over and recorded as failed); other requests go on.
* Every answer carries ``Cache-Control: private``.
* A session idle for longer than ``session_timeout`` is aborted: nothing is
  committed, the history records the failed run.  Finished sessions are kept
  as long, to answer resends, then dropped.
* Sessions are driven by a :class:`~syncmld.transports.runner.SessionRunner`:
  when a session finishes, its :class:`~syncmld.engine.session.SessionFinished`
  is persisted in a worker thread: ``save_session(peer, run)`` when it
  carries a state, else ``record_run(run)``.  If saving fails, the client
  gets a 500 instead of our last message, so it does not commit either.
  The runner's observer sees every engine event; its ``abort(key)`` cancels
  a session (the client's next request gets 410).

Client role
-----------
:func:`run_client_session` posts each message of a
:class:`~syncmld.engine.client.ClientSession` to ``session.url`` (the server
URL, then its ``RespURI``) and feeds the answers back, until the session is
over.  TLS certificates are verified unless an :class:`ssl.SSLContext` says
otherwise; redirects are not followed (a SyncML message must not turn into a
GET); ``Expect: 100-continue`` is never sent.  A network error, time-out or
HTTP error status aborts the session with a one-line reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

import aiohttp
from aiohttp import web
from yarl import URL

from syncmld.engine.client import ClientSession
from syncmld.engine.server import ServerConfig, ServerSession
from syncmld.engine.session import SessionFinished
from syncmld.errors import UserError
from syncmld.protocol.codec import Encoding, decode_message, sniff
from syncmld.protocol.errors import RemoteProtocolError
from syncmld.transports.runner import (
    ExchangeFailed,
    Observer,
    RunningSession,
    SessionRunner,
    in_thread,
    one_line,
)

if TYPE_CHECKING:
    from syncmld.state.repository import StateRepository

log = logging.getLogger(__name__)

#: The query parameter carrying our session token in ``RespURI``.
SESSION_PARAM = "sessionid"
#: Default HTTP port of the server role.
DEFAULT_HTTP_PORT = 8080
#: Seconds an HTTP session may stay idle before it is aborted.
DEFAULT_SESSION_TIMEOUT = 300.0
#: The largest request body the server accepts (after decompression).
DEFAULT_MAX_REQUEST_SIZE = 4 * 1024 * 1024
#: Sessions the server keeps at once; more new ones are refused with 503.
DEFAULT_MAX_SESSIONS = 64
#: Seconds the client waits for each HTTP answer.
DEFAULT_CLIENT_TIMEOUT = 120.0
#: The largest answer the client reads.
DEFAULT_MAX_RESPONSE_SIZE = 8 * 1024 * 1024

SYNCML_TYPES = frozenset(e.content_type for e in Encoding)
#: Answer types a client tolerates besides the SyncML ones (old servers).
_LENIENT_TYPES = frozenset({"text/xml", "application/xml", "application/octet-stream"})
_READ_CHUNK = 64 * 1024

_in_thread = in_thread
_one_line = one_line


def _text(status: int, message: str, **headers: str) -> web.Response:
    return web.Response(
        status=status,
        text=_one_line(message) + "\n",
        headers={"Cache-Control": "private", **headers},
    )


# =========================================================================== server


@dataclass(eq=False)
class _Session:
    """One HTTP-bound server session."""

    token: str
    run: RunningSession
    last_seen: float
    key: tuple[str, str] | None = None
    last_request: bytes | None = None
    closed: bool = False

    @property
    def engine(self) -> ServerSession:
        return self.run.engine

    @property
    def lock(self) -> asyncio.Lock:
        return self.run.lock


class SyncmlHttpHandler:
    """The request handler and session table behind :func:`make_app`.

    Args:
        config: the engine configuration every session gets.
        repository: an open state repository (peer state and history).
        session_timeout: seconds of client silence after which a session is
            aborted (and a finished one forgotten).
        max_request_size: the largest request body accepted, in bytes.
        max_sessions: how many sessions may exist at once.
        public_url: the URL clients reach the server by (behind a proxy);
            default: the URL of each first request.
        clock: the wall clock (session start times, history).
        observer: told about every engine event (see :mod:`.runner`).
        runner: drive the sessions with this runner (shared with other
            transports) instead of a new one; ``config``, ``repository``,
            ``clock`` and ``observer`` are then the runner's.
    """

    def __init__(
        self,
        config: ServerConfig,
        repository: StateRepository,
        *,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
        max_sessions: int = DEFAULT_MAX_SESSIONS,
        public_url: str | None = None,
        clock: Callable[[], float] = time.time,
        observer: Observer | None = None,
        runner: SessionRunner | None = None,
    ) -> None:
        if session_timeout <= 0:
            raise ValueError(f"session_timeout must be positive, not {session_timeout}")
        self.config = config
        self.repository = repository
        self.session_timeout = session_timeout
        self.max_request_size = max_request_size
        self.max_sessions = max_sessions
        self.public_url = URL(public_url) if public_url else None
        self.clock = clock
        self.runner = runner or SessionRunner(config, repository, observer=observer, clock=clock)
        self._sessions: dict[str, _Session] = {}
        self._by_key: dict[tuple[str, str], str] = {}

    @property
    def session_count(self) -> int:
        """Sessions currently held (live or finished but not yet forgotten)."""
        return len(self._sessions)

    # ------------------------------------------------------------- requests
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one HTTP request (see the module docstring)."""
        if request.method != "POST":
            return _text(405, f"{request.method} is not allowed: SyncML is POSTed", Allow="POST")
        if request.content_type not in SYNCML_TYPES:
            return _text(
                415,
                f"unsupported content type {request.content_type!r}: "
                "send application/vnd.syncml+xml or application/vnd.syncml+wbxml",
            )
        body = await self._read_body(request)
        if isinstance(body, web.Response):
            return body
        token = request.query.get(SESSION_PARAM)
        if token is not None:
            sess = self._sessions.get(token)
            if sess is None or sess.closed:
                return _text(404, "unknown or expired SyncML session")
        else:
            routed = await self._route(request, body)
            if isinstance(routed, web.Response):
                return routed
            sess = routed
        return await self._exchange(sess, body)

    async def _read_body(self, request: web.Request) -> bytes | web.Response:
        limit = self.max_request_size
        too_large = _text(413, f"the message is larger than {limit} bytes")
        if request.content_length is not None and request.content_length > limit:
            return too_large
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in request.content.iter_chunked(_READ_CHUNK):
                size += len(chunk)
                if size > limit:
                    return too_large
                parts.append(chunk)
        except (web.RequestPayloadError, aiohttp.ClientPayloadError, ValueError) as exc:
            # A broken Content-Encoding (gzip/deflate that does not inflate) or
            # a truncated chunked body; aiohttp drops the connection afterwards.
            return _text(400, f"cannot read the request body: {exc}", Connection="close")
        return b"".join(parts)

    async def _route(self, request: web.Request, body: bytes) -> _Session | web.Response:
        """The session for a request without token: a waiting one, or a new one."""
        try:
            msg = await _in_thread(decode_message, body, limits=self.config.limits)
        except RemoteProtocolError as exc:
            return _text(400, f"not a SyncML message: {exc}")
        key = (msg.header.source.uri, msg.header.session_id)
        old_token = self._by_key.get(key)
        old = self._sessions.get(old_token) if old_token is not None else None
        if old is not None and not old.closed:
            if old.last_request == body:
                return old  # the client resent its first message
            if not old.engine.done and not old.engine.authenticated:
                return old  # new credentials after a challenge
            if not old.engine.done and not old.lock.locked():
                await self._close(old, "the device started another session")
        if len(self._sessions) >= self.max_sessions:
            # Finished sessions are only kept to answer resends: they go first.
            for done in [s for s in self._sessions.values() if s.engine.done]:
                if not done.lock.locked():
                    await self._close(done, "finished")
            if len(self._sessions) >= self.max_sessions:
                await self.expire()
            if len(self._sessions) >= self.max_sessions:
                return _text(503, "too many SyncML sessions at once; try again later")
        token = secrets.token_urlsafe(18)
        base = self.public_url or request.url
        resp_uri = str(base.update_query({SESSION_PARAM: token}))
        run = self.runner.open(transport="http", resp_uri=resp_uri)
        sess = _Session(token=token, run=run, last_seen=asyncio.get_running_loop().time(), key=key)
        run.on_abort = lambda: self._forget(sess)  # cancelled: later requests get 404
        self._sessions[token] = sess
        self._by_key[key] = token
        log.debug("new session %s for %s (SessionID %s)", token, key[0], key[1])
        return sess

    async def _exchange(self, sess: _Session, body: bytes) -> web.StreamResponse:
        async with sess.lock:
            if sess.closed:
                return _text(404, "unknown or expired SyncML session")
            sess.last_seen = asyncio.get_running_loop().time()
            engine = sess.engine
            if engine.done and body != sess.last_request:
                return _text(410, "this SyncML session is over")
            try:
                reply = await self.runner.exchange(sess.run, body)
            except ExchangeFailed as exc:
                self._forget(sess)
                return _text(exc.status, exc.message)
            sess.last_request = body
            sess.last_seen = asyncio.get_running_loop().time()
            return web.Response(
                body=reply.data,
                content_type=reply.content_type,
                headers={"Cache-Control": "private"},
            )

    # ------------------------------------------------------------ the end
    def _forget(self, sess: _Session) -> None:
        sess.closed = True
        self._sessions.pop(sess.token, None)
        if sess.key is not None and self._by_key.get(sess.key) == sess.token:
            del self._by_key[sess.key]

    async def _close(self, sess: _Session, reason: str) -> None:
        """Forget a session, aborting it first if it is still going."""
        async with sess.lock:
            if sess.closed:
                return
            sess.closed = True  # requests waiting for the lock get a 404
            try:
                await self.runner.finish(sess.run, reason)
            finally:
                self._forget(sess)

    async def expire(self) -> int:
        """Abort (or forget, once finished) the sessions idle for too long.

        Returns how many sessions were dropped.
        """
        now = asyncio.get_running_loop().time()
        stale = [
            s
            for s in list(self._sessions.values())
            if not s.lock.locked() and now - s.last_seen >= self.session_timeout
        ]
        for sess in stale:
            await self._close(
                sess, f"no message from the client for {self.session_timeout:g} seconds"
            )
        return len(stale)

    async def close(self) -> None:
        """Abort every live session (the server stops)."""
        for sess in list(self._sessions.values()):
            await self._close(sess, "the server stopped")

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp cleanup context: the expiry task, and aborting sessions at shutdown."""
        interval = max(0.05, min(self.session_timeout / 4, 30.0))

        async def sweep() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.expire()
                except Exception as exc:  # keep sweeping whatever one session did
                    log.error("expiring sessions failed: %s", exc)

        task = asyncio.create_task(sweep())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.close()


#: Where :func:`make_app` keeps its :class:`SyncmlHttpHandler`.
HANDLER_KEY = web.AppKey("syncmld_http_handler", SyncmlHttpHandler)


def make_app(
    config: ServerConfig,
    repository: StateRepository,
    *,
    session_timeout: float = DEFAULT_SESSION_TIMEOUT,
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    public_url: str | None = None,
    clock: Callable[[], float] = time.time,
    observer: Observer | None = None,
    runner: SessionRunner | None = None,
) -> web.Application:
    """An aiohttp application serving SyncML clients on every path.

    The arguments are those of :class:`SyncmlHttpHandler`; the handler is
    available as ``app[HANDLER_KEY]``.  ``repository`` must be open while the
    application runs; the application does not close it.
    """
    handler = SyncmlHttpHandler(
        config,
        repository,
        session_timeout=session_timeout,
        max_request_size=max_request_size,
        max_sessions=max_sessions,
        public_url=public_url,
        clock=clock,
        observer=observer,
        runner=runner,
    )
    # aiohttp's own body limit stays out of the way: the handler counts itself.
    app = web.Application(client_max_size=max_request_size + 1)
    app[HANDLER_KEY] = handler
    app.router.add_route("*", "/{path:.*}", handler.handle)
    app.cleanup_ctx.append(handler.lifecycle)
    return app


class HttpServer:
    """Runs an application from :func:`make_app` (``AppRunner`` + a site).

    Args:
        app: the application.
        host, port: where to listen (port 0: any free port); ignored with ``sock``.
        sock: an already-bound listening socket (systemd socket activation).
        ssl_context: serve HTTPS with this context (default: plain HTTP).
        shutdown_timeout: seconds :meth:`stop` waits for requests in progress.
        observer: if given, becomes the observer of the application's
            session runner (see :mod:`.runner`).

    Use ``async with HttpServer(app) as server:`` or :meth:`start`/:meth:`stop`.
    """

    def __init__(
        self,
        app: web.Application,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_HTTP_PORT,
        sock: socket.socket | None = None,
        ssl_context: ssl.SSLContext | None = None,
        shutdown_timeout: float = 10.0,
        observer: Observer | None = None,
    ) -> None:
        self.app = app
        if observer is not None and HANDLER_KEY in app:
            app[HANDLER_KEY].runner.observer = observer
        self.host = host
        self.port = port
        self.sock = sock
        self.ssl_context = ssl_context
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
        self._started = False

    async def start(self) -> None:
        """Start listening.

        Raises:
            UserError: the address cannot be bound.
        """
        await self._runner.setup()
        site: web.BaseSite
        if self.sock is not None:
            site = web.SockSite(self._runner, self.sock, ssl_context=self.ssl_context)
        else:
            site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise UserError(f"cannot listen on {self.host}:{self.port}: {reason}") from None
        self._started = True
        addresses = self._runner.addresses
        if addresses and isinstance(addresses[0], tuple):
            self.host, self.port = str(addresses[0][0]), int(addresses[0][1])

    @property
    def url(self) -> str:
        """``http://host:port/`` (``https``: with a TLS context) of the running server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}/"

    async def stop(self) -> None:
        """Stop listening, let requests in progress end, abort the live sessions."""
        if self._started:
            self._started = False
            await self._runner.cleanup()

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


# =========================================================================== client


class TransportError(UserError):
    """The HTTP exchange with the server failed (the message says how, on one line)."""


async def run_client_session(
    session: ClientSession,
    *,
    http: aiohttp.ClientSession,
    timeout: float = DEFAULT_CLIENT_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
) -> SessionFinished:
    """Run a client session to its end over HTTP.

    Args:
        session: a fresh session (``start`` not called yet).
        http: the aiohttp session to post with.
        timeout: seconds to wait for each answer.
        ssl_context: TLS settings (default: verify against the system CAs).
        max_response_size: the largest answer read, in bytes.

    Returns:
        the session's outcome; a network failure, time-out or HTTP error
        status shows up as a failed run whose message says what happened.
        The caller persists it (``save_session`` when ``peer`` is set, else
        ``record_run``).

    Raises:
        asyncio.CancelledError: the caller was cancelled; the session has
            been aborted (``session.result`` holds the outcome).
    """
    try:
        data: bytes | None = await _in_thread(session.start)
        while data is not None:
            answer = await _post(
                http,
                session.url,
                data,
                timeout=timeout,
                ssl_context=ssl_context,
                max_size=max_response_size,
            )
            try:
                result = await _in_thread(session.receive, answer)
            except RemoteProtocolError:
                break  # the engine ended the session and says why
            data = result.data
    except TransportError as exc:
        return session.abort(str(exc))
    except asyncio.CancelledError:
        session.abort("cancelled")
        raise
    except Exception as exc:
        log.error("internal error: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
        return session.abort(
            f"internal error: {_one_line(str(exc)) or type(exc).__name__}", status=500
        )
    if session.result is None:
        return session.abort("the session ended without an outcome")
    return session.result


async def _post(
    http: aiohttp.ClientSession,
    url: str,
    data: bytes,
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
    max_size: int,
) -> bytes:
    """POST one message and return the answer's body.

    Raises:
        TransportError: anything but a 200 with a SyncML body.
    """
    try:
        target = URL(url)
        where = f"{target.host}:{target.port}" if target.host else url
    except (ValueError, TypeError):
        raise TransportError(f"invalid server URL {url!r}") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise TransportError(f"invalid server URL {url!r}: expected http:// or https://")
    headers = {
        "Content-Type": sniff(data).content_type,
        "Accept": ", ".join(sorted(SYNCML_TYPES)),
        "Cache-Control": "no-cache",
    }
    try:
        async with http.post(
            target,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
            ssl=ssl_context if ssl_context is not None else True,
            allow_redirects=False,
            expect100=False,
        ) as resp:
            if resp.status != 200:
                raise TransportError(await _http_failure(resp, where))
            if resp.content_length is not None and resp.content_length > max_size:
                raise TransportError(f"the answer from {where} is larger than {max_size} bytes")
            parts: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(_READ_CHUNK):
                size += len(chunk)
                if size > max_size:
                    raise TransportError(f"the answer from {where} is larger than {max_size} bytes")
                parts.append(chunk)
            body = b"".join(parts)
            ctype = resp.content_type
            if ctype not in SYNCML_TYPES and ctype not in _LENIENT_TYPES:
                raise TransportError(
                    f"{where} answered with {ctype}, not a SyncML message (is the URL right?)"
                )
            return body
    except TimeoutError:
        raise TransportError(f"no answer from {where} within {timeout:g} seconds") from None
    except aiohttp.ClientConnectorCertificateError as exc:
        raise TransportError(
            f"the TLS certificate of {where} is not trusted: {exc.certificate_error}"
        ) from None
    except aiohttp.ClientSSLError as exc:
        raise TransportError(f"TLS failure with {where}: {_os_reason(exc)}") from None
    except aiohttp.ClientConnectorError as exc:
        raise TransportError(f"cannot connect to {where}: {_os_reason(exc)}") from None
    except aiohttp.ServerDisconnectedError:
        raise TransportError(f"{where} closed the connection without answering") from None
    except aiohttp.InvalidURL:
        raise TransportError(f"invalid server URL {url!r}") from None
    except aiohttp.ClientError as exc:
        reason = _one_line(str(exc)) or type(exc).__name__
        raise TransportError(f"HTTP failure with {where}: {reason}") from None
    except OSError as exc:
        raise TransportError(f"network failure with {where}: {exc.strerror or exc}") from None


def _os_reason(exc: aiohttp.ClientConnectorError) -> str:
    err = exc.os_error
    if err.errno:
        return os.strerror(err.errno)
    return _one_line(err.strerror or str(err) or type(err).__name__)


async def _http_failure(resp: aiohttp.ClientResponse, where: str) -> str:
    """A one-line description of an HTTP error answer."""
    text = ""
    if resp.content_type == "text/plain":
        with contextlib.suppress(Exception):
            raw = await resp.content.read(500)
            text = raw.decode("utf-8", "replace").strip().splitlines()[0] if raw.strip() else ""
    if 300 <= resp.status < 400:
        location = resp.headers.get("Location", "?")
        return f"{where} redirects to {location}; put that URL in the configuration"
    reason = f"HTTP {resp.status} {resp.reason or ''}".rstrip()
    return f"{where} answered {reason}" + (f": {_one_line(text)}" if text else "")


__all__ = [
    "DEFAULT_CLIENT_TIMEOUT",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_MAX_REQUEST_SIZE",
    "DEFAULT_MAX_SESSIONS",
    "DEFAULT_SESSION_TIMEOUT",
    "HANDLER_KEY",
    "SESSION_PARAM",
    "HttpServer",
    "SyncmlHttpHandler",
    "TransportError",
    "make_app",
    "run_client_session",
]
