"""SyncML over HTTP: our HTTP server (real ServerSession, MemoryStores, SQLite state)
against our HTTP client, on real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import socket
import sqlite3
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.server import ServerConfig
from syncmld.engine.session import AuthMode, Datastore, SessionFinished
from syncmld.engine.state import PeerState
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.errors import UserError
from syncmld.protocol.codec import Encoding, decode_message
from syncmld.protocol.codes import StatusCode
from syncmld.state import StateRepository
from syncmld.transports.http import (
    HANDLER_KEY,
    SESSION_PARAM,
    HttpServer,
    SyncmlHttpHandler,
    make_app,
    run_client_session,
)

XML = "application/vnd.syncml+xml"
WBXML = "application/vnd.syncml+wbxml"


def vcard(n: int, name: str | None = None) -> str:
    """A small vCard 3.0 with a UID."""
    name = name or f"Person{n}"
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:uid-{n}\r\nN:{name};John;;;\r\nFN:John {name}\r\n"
        f"TEL;TYPE=CELL:+4915100{n:05d}\r\nEND:VCARD\r\n"
    )


def norm(items: list[str]) -> list[str]:
    return sorted(i.replace("\r\n", "\n").strip() for i in items)


@dataclass
class Served:
    """A running HTTP server and what it holds."""

    server: HttpServer
    store: MemoryStore
    repo: StateRepository

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def handler(self) -> SyncmlHttpHandler:
        return self.server.app[HANDLER_KEY]


@dataclass
class Device:
    """The client side: a store and the state it keeps between sessions."""

    url: str
    store: MemoryStore = field(default_factory=lambda: MemoryStore(content_types=(VCARD_30,)))
    state: PeerState | None = None
    user: str | None = "test"
    password: str | None = "secret"
    auth: str = "basic"
    now: float = 1_700_000_000.0

    def session(self, encoding: Encoding = Encoding.XML) -> ClientSession:
        self.now += 60
        config = ClientConfig(
            url=self.url,
            dev_id="device-1",
            stores=(
                ClientStore(
                    datastore=Datastore(name="card", store=self.store), remote_uri="contacts"
                ),
            ),
            user=self.user,
            password=self.password,
            auth=self.auth,
            encoding=encoding,
        )
        return ClientSession(config, peer=self.state, now=self.now, session_id=str(int(self.now)))

    async def sync(
        self, http: aiohttp.ClientSession, encoding: Encoding = Encoding.XML, timeout: float = 10
    ) -> SessionFinished:
        outcome = await run_client_session(self.session(encoding), http=http, timeout=timeout)
        if outcome.peer is not None:
            self.state = outcome.peer
        return outcome


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[StateRepository]:
    with StateRepository(f"sqlite:///{tmp_path / 'state.db'}") as r:
        yield r


async def serve(
    repo: StateRepository,
    *,
    auth: AuthMode = AuthMode.BASIC,
    ssl_context: ssl.SSLContext | None = None,
    **options: float,
) -> Served:
    store = MemoryStore(content_types=(VCARD_30,))
    config = ServerConfig(
        datastores=(Datastore(name="contacts", store=store),),
        auth=auth,
        passwords={"test": "secret"},
    )
    app = make_app(config, repo, **options)  # type: ignore[arg-type]
    server = HttpServer(app, port=0, ssl_context=ssl_context)
    await server.start()
    return Served(server, store, repo)


@pytest.fixture
async def served(repo: StateRepository) -> AsyncIterator[Served]:
    s = await serve(repo)
    yield s
    await s.server.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, url: str, data: bytes, content_type: str = XML, **headers: str
) -> tuple[int, bytes, CIMultiDict[str]]:
    async with http.post(url, data=data, headers={"Content-Type": content_type, **headers}) as r:
        return r.status, await r.read(), CIMultiDict(r.headers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------- full syncs


@pytest.mark.parametrize("encoding", [Encoding.XML, Encoding.WBXML], ids=["xml", "wbxml"])
async def test_full_sync(
    served: Served, http: aiohttp.ClientSession, repo: StateRepository, encoding: Encoding
) -> None:
    device = Device(served.url)
    for n in (1, 2):
        device.store.add(vcard(n))
    served.store.add(vcard(3))

    outcome = await device.sync(http, encoding)

    assert outcome.run.status == 200, outcome.run
    assert norm(served.store.values()) == norm(device.store.values())
    assert len(served.store) == 3
    # The server committed its side: peer state and a successful run.
    assert repo.load_peer("device-1") is not None
    runs = repo.history("device-1")
    assert [r.status for r in runs] == [200]
    assert runs[0].role == "server" and runs[0].finished is not None
    assert served.handler.session_count == 1  # kept for resends until it expires

    # Changes travel both ways in the next (two-way) session.
    device.store.add(vcard(4))
    served.store.add(vcard(5))
    outcome = await device.sync(http, encoding)
    assert outcome.run.status == 200
    assert outcome.run.stores[0].mode == 200
    assert norm(served.store.values()) == norm(device.store.values())
    assert len(device.store) == 5

    # Nothing changed: nothing is written on either side.
    before = (served.store.list(), device.store.list())
    outcome = await device.sync(http, encoding)
    assert outcome.run.status == 200
    assert (served.store.list(), device.store.list()) == before


async def test_wbxml_request_gets_wbxml_answer(served: Served, http: aiohttp.ClientSession) -> None:
    first = Device(served.url).session(Encoding.WBXML).start()
    status, body, headers = await post(http, served.url, first, WBXML)
    assert status == 200
    assert headers["Content-Type"] == WBXML
    assert headers["Cache-Control"] == "private"
    assert decode_message(body).header.resp_uri is not None


async def test_charset_parameter_is_accepted(served: Served, http: aiohttp.ClientSession) -> None:
    first = Device(served.url).session().start()
    status, body, headers = await post(http, served.url, first, XML + "; charset=UTF-8")
    assert status == 200, body
    assert headers["Content-Type"].startswith(XML)


async def test_gzip_and_deflate_request_bodies(served: Served, http: aiohttp.ClientSession) -> None:
    for encoding, pack in (("gzip", gzip.compress), ("deflate", zlib.compress)):
        session = Device(served.url).session()
        session.session_id = encoding  # two distinct sessions
        data = session.start()
        status, body, _ = await post(
            http, served.url, pack(data), XML, **{"Content-Encoding": encoding}
        )
        assert status == 200, body
        assert decode_message(body).header.session_id == encoding


async def test_broken_compressed_body_is_400(served: Served, http: aiohttp.ClientSession) -> None:
    status, body, headers = await post(
        http, served.url, b"this is not gzip", XML, **{"Content-Encoding": "gzip"}
    )
    assert status == 400
    assert body.decode().startswith("cannot read the request body")
    assert headers["Connection"] == "close"
    # The server goes on serving.
    first = Device(served.url).session().start()
    status, _, _ = await post(http, served.url, first)
    assert status == 200


async def test_expect_100_continue_is_handled(served: Served, http: aiohttp.ClientSession) -> None:
    first = Device(served.url).session().start()
    async with http.post(
        served.url, data=first, headers={"Content-Type": XML}, expect100=True
    ) as r:
        assert r.status == 200
        assert decode_message(await r.read()).header.resp_uri is not None


async def test_md5_with_a_stale_nonce_recovers_in_the_same_session(
    repo: StateRepository, http: aiohttp.ClientSession
) -> None:
    """The 401 challenge carries no RespURI: the retry must reach the session that
    issued the nonce, found by the SyncML session key."""
    served = await serve(repo, auth=AuthMode.MD5)
    try:
        device = Device(served.url, auth="md5")
        device.state = PeerState(dev_id=served.url, nonce="c3RhbGUtbm9uY2U=")
        device.store.add(vcard(1))
        outcome = await device.sync(http)
        assert outcome.run.status == 200, outcome.run
        assert len(served.store) == 1
        runs = repo.history("device-1")
        assert [r.status for r in runs] == [200]  # one session, not one per attempt
    finally:
        await served.server.stop()


async def test_wrong_password_fails_cleanly(
    served: Served, http: aiohttp.ClientSession, repo: StateRepository
) -> None:
    device = Device(served.url, password="wrong")
    device.store.add(vcard(1))
    outcome = await device.sync(http)
    assert outcome.run.status in (StatusCode.INVALID_CREDENTIALS, StatusCode.MISSING_CREDENTIALS)
    assert "authentication failed" in outcome.run.message
    assert len(served.store) == 0
    runs = repo.history()
    assert len(runs) == 1 and runs[0].status == StatusCode.INVALID_CREDENTIALS
    assert repo.load_peer("device-1") is None


# ------------------------------------------------------- resends and routing


async def test_resent_requests_are_answered_from_the_cache(
    served: Served, http: aiohttp.ClientSession, repo: StateRepository
) -> None:
    device = Device(served.url)
    device.store.add(vcard(1))
    served.store.add(vcard(2))
    session = device.session()
    data: bytes | None = session.start()
    exchanges = 0
    while data is not None:
        status, first, headers = await post(http, session.url, data)
        assert status == 200
        assert headers["Cache-Control"] == "private"
        # The answer got lost: the client sends the same bytes again.
        status, again, _ = await post(http, session.url, data)
        assert status == 200
        assert again == first
        exchanges += 1
        data = session.receive(first).data
    assert exchanges >= 3
    assert session.result is not None and session.result.run.status == 200
    assert norm(served.store.values()) == norm(device.store.values())
    assert len(served.store) == 2
    runs = repo.history("device-1")
    assert [r.status for r in runs] == [200]  # the session was committed once


async def test_unknown_session_token_is_404(served: Served, http: aiohttp.ClientSession) -> None:
    data = Device(served.url).session().start()
    status, body, headers = await post(http, f"{served.url}?{SESSION_PARAM}=nonsense", data)
    assert status == 404
    assert body.decode().count("\n") == 1
    assert headers["Cache-Control"] == "private"


async def test_finished_session_is_gone(served: Served, http: aiohttp.ClientSession) -> None:
    device = Device(served.url)
    session = device.session()
    data: bytes | None = session.start()
    last: bytes = b""
    while data is not None:
        last = data
        status, answer, _ = await post(http, session.url, data)
        assert status == 200
        data = session.receive(answer).data
    other = last.replace(b"<MsgID>", b"<MsgID>9", 1)
    status, _, _ = await post(http, session.url, other)
    assert status == 410


# ------------------------------------------------------------- refusals


async def test_wrong_content_type_is_415(served: Served, http: aiohttp.ClientSession) -> None:
    data = Device(served.url).session().start()
    for ctype in ("text/plain", "application/xml", "application/vnd.syncml-devinf+xml"):
        status, body, _ = await post(http, served.url, data, ctype)
        assert status == 415, ctype
        assert b"application/vnd.syncml+xml" in body
    assert served.handler.session_count == 0


async def test_get_is_405(served: Served, http: aiohttp.ClientSession) -> None:
    async with http.get(served.url) as r:
        assert r.status == 405
        assert r.headers["Allow"] == "POST"


async def test_oversized_request_is_413(repo: StateRepository, http: aiohttp.ClientSession) -> None:
    served = await serve(repo, max_request_size=4096)
    try:
        big = b"<SyncML>" + b" " * 8192 + b"</SyncML>"
        status, _, _ = await post(http, served.url, big)
        assert status == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length
            for _ in range(10):
                yield b" " * 1024

        async with http.post(served.url, data=chunks(), headers={"Content-Type": XML}) as r:
            assert r.status == 413

        # Small on the wire, large once decompressed.
        bomb = gzip.compress(b" " * 100_000)
        assert len(bomb) < 4096
        status, _, _ = await post(http, served.url, bomb, XML, **{"Content-Encoding": "gzip"})
        assert status == 413
        assert served.handler.session_count == 0
    finally:
        await served.server.stop()


async def test_garbage_is_400_and_the_server_keeps_serving(
    served: Served, http: aiohttp.ClientSession, repo: StateRepository
) -> None:
    for garbage in (b"", b"hello", b"<SyncML><SyncHdr>", b"\x03\x01\x6a\x00\xff\xff"):
        status, body, _ = await post(http, served.url, garbage)
        assert status == 400, garbage
        text = body.decode()
        assert text.endswith("\n") and text.count("\n") == 1
    assert served.handler.session_count == 0

    # Garbage inside a running session ends that session, recorded as failed.
    session = Device(served.url).session()
    status, answer, _ = await post(http, served.url, session.start())
    assert status == 200
    session.receive(answer)
    status, body, _ = await post(http, session.url, b"<SyncML>broken")
    assert status == 400
    runs = repo.history("device-1")
    assert [r.status for r in runs] == [400]
    status, _, _ = await post(http, session.url, b"<SyncML>broken")
    assert status == 404

    # Others still sync.
    device = Device(served.url)
    device.store.add(vcard(1))
    outcome = await device.sync(http)
    assert outcome.run.status == 200
    assert len(served.store) == 1


async def test_idle_session_expires_and_records_a_failed_run(
    repo: StateRepository, http: aiohttp.ClientSession
) -> None:
    served = await serve(repo, session_timeout=0.5)
    try:
        device = Device(served.url)
        device.store.add(vcard(1))
        session = device.session()
        status, answer, _ = await post(http, served.url, session.start())
        assert status == 200
        following = session.receive(answer).data
        assert following is not None and SESSION_PARAM in session.url
        assert served.handler.session_count == 1

        for _ in range(100):
            if served.handler.session_count == 0:
                break
            await asyncio.sleep(0.05)
        assert served.handler.session_count == 0

        runs = repo.history("device-1")
        assert len(runs) == 1
        assert runs[0].status == StatusCode.SESSION_CANCELLED
        assert "no message from the client" in runs[0].message
        assert repo.load_peer("device-1") is None  # nothing committed
        assert len(served.store) == 0
        status, _, _ = await post(http, session.url, following)
        assert status == 404
    finally:
        await served.server.stop()


async def test_state_that_cannot_be_saved_is_a_500_and_nobody_commits(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """A session whose outcome cannot be saved commits nothing on either side.

    The client used to be expected to keep no state at all; since sessions
    broken after the alerts keep resume markers, it keeps those (and rows of
    acknowledged items) but never anchors, and the next session converges.
    """
    db = tmp_path / "locked.db"
    with StateRepository(f"sqlite:///{db}", busy_timeout=0.2) as repo:
        served = await serve(repo)
        blocker = sqlite3.connect(db, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
            device = Device(served.url)
            device.store.add(vcard(1))
            outcome = await device.sync(http)
            assert "HTTP 500" in outcome.run.message
            assert "the sync state could not be saved" in outcome.run.message
            assert served.handler.session_count == 0
            # The client may keep resume markers and the rows of what was
            # acknowledged, never anchors: nothing was committed.
            if outcome.peer is not None:
                for pair in outcome.peer.pairs.values():
                    assert (pair.local_anchor, pair.remote_anchor) == (None, None)
        finally:
            blocker.rollback()
            blocker.close()
        assert repo.load_peer("device-1") is None
        # The next session converges: one item on each side, no duplicate.
        again = await device.sync(http)
        assert again.run.status == 200, again.run
        assert norm(served.store.values()) == norm(device.store.values())
        assert len(served.store) == len(device.store) == 1
        await served.server.stop()


async def test_stopping_the_server_aborts_live_sessions(
    repo: StateRepository, http: aiohttp.ClientSession
) -> None:
    served = await serve(repo)
    session = Device(served.url).session()
    status, _, _ = await post(http, served.url, session.start())
    assert status == 200
    await served.server.stop()
    runs = repo.history("device-1")
    assert [r.message for r in runs] == ["the server stopped"]


async def test_server_on_an_already_bound_socket(
    repo: StateRepository, http: aiohttp.ClientSession
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    store = MemoryStore(content_types=(VCARD_30,))
    config = ServerConfig(datastores=(Datastore(name="contacts", store=store),))
    async with HttpServer(make_app(config, repo), sock=sock) as server:
        assert server.port == sock.getsockname()[1]
        device = Device(server.url, user=None, password=None)
        device.store.add(vcard(1))
        outcome = await device.sync(http)
        assert outcome.run.status == 200
        assert len(store) == 1


async def test_session_limit(repo: StateRepository, http: aiohttp.ClientSession) -> None:
    served = await serve(repo, max_sessions=1)
    try:
        device = Device(served.url)
        assert (await device.sync(http)).run.status == 200
        # The finished session, kept for resends, makes room for the next one.
        live = device.session()
        status, _, _ = await post(http, served.url, live.start())
        assert status == 200
        other = Device(served.url).session()
        other.session_id = "other"
        status, body, _ = await post(http, served.url, other.start())
        assert status == 503
        assert b"too many SyncML sessions" in body
    finally:
        await served.server.stop()


async def test_address_in_use(repo: StateRepository) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = ServerConfig(datastores=())
        server = HttpServer(make_app(config, repo), port=port)
        with pytest.raises(UserError) as err:
            await server.start()
        assert str(err.value) == f"cannot listen on 127.0.0.1:{port}: Address already in use"


# ------------------------------------------------------- client failures


async def test_unreachable_server(http: aiohttp.ClientSession) -> None:
    port = free_port()
    device = Device(f"http://127.0.0.1:{port}/sync")
    device.store.add(vcard(1))
    outcome = await device.sync(http)
    assert outcome.peer is None
    assert outcome.run.status == StatusCode.SESSION_CANCELLED
    assert outcome.run.message == f"cannot connect to 127.0.0.1:{port}: Connection refused"


async def run_against(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    http: aiohttp.ClientSession,
    timeout: float,
) -> str:
    app = web.Application()
    app.router.add_route("*", "/{p:.*}", handler)
    async with HttpServer(app, port=0, shutdown_timeout=0.2) as server:
        outcome = await Device(server.url).sync(http, timeout=timeout)
    assert outcome.peer is None
    assert "\n" not in outcome.run.message
    return outcome.run.message


async def test_server_that_never_answers(http: aiohttp.ClientSession) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response()

    message = await run_against(slow, http, timeout=0.3)
    assert message.startswith("no answer from 127.0.0.1:")
    assert message.endswith("within 0.3 seconds")


async def test_http_error_status(http: aiohttp.ClientSession) -> None:
    async def failing(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance\nsecond line")

    message = await run_against(failing, http, timeout=5)
    assert message.endswith("answered HTTP 503 Service Unavailable: down for maintenance")


async def test_html_answer(http: aiohttp.ClientSession) -> None:
    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>login</html>", content_type="text/html")

    message = await run_against(html, http, timeout=5)
    assert "answered with text/html, not a SyncML message" in message


async def test_redirect_is_not_followed(http: aiohttp.ClientSession) -> None:
    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://elsewhere.invalid/sync")

    message = await run_against(moved, http, timeout=5)
    assert message.endswith(
        "redirects to http://elsewhere.invalid/sync; put that URL in the configuration"
    )


async def test_no_expect_100_continue(http: aiohttp.ClientSession) -> None:
    seen: list[str | None] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Expect"))
        return web.Response(status=500)

    await run_against(record, http, timeout=5)
    assert seen == [None]


# ------------------------------------------------------------------ TLS


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syncmld test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


async def test_tls_is_verified_by_default(
    repo: StateRepository, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    served = await serve(repo, ssl_context=server_context)
    try:
        assert served.url.startswith("https://127.0.0.1:")
        device = Device(served.url)
        device.store.add(vcard(1))
        outcome = await device.sync(http)
        assert outcome.peer is None
        assert "TLS certificate" in outcome.run.message and "not trusted" in outcome.run.message
        assert len(served.store) == 0

        trusting = ssl.create_default_context(cafile=str(cert))
        outcome = await run_client_session(
            device.session(), http=http, timeout=10, ssl_context=trusting
        )
        assert outcome.run.status == 200, outcome.run
        assert len(served.store) == 1
    finally:
        await served.server.stop()
