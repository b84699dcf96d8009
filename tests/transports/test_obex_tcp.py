"""SyncML over OBEX/TCP: our listener, our PC-initiated sync, malformed packets, a foreign client.

The phones here are our own engine client (:class:`ClientSession`) behind
our own OBEX machines, over real TCP connections on 127.0.0.1:

* :class:`ObexPhone` syncs *to* us (phone-initiated): an :class:`ObexClient`
  CONNECTs with Target SYNCML-SYNC, PUTs each message, GETs our reply.
* :class:`AlertablePhone` is alerted *by* us (PC-initiated): a TCP listener
  running :class:`SyncmlObexServerBinding` that takes our SAN and answers
  with a client session started from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.server import ServerConfig, notification
from syncmld.engine.session import (
    Datastore,
    Event,
    PeerIdentified,
    SessionFinished,
    StoreStarted,
)
from syncmld.engine.state import PeerState
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.errors import UserError
from syncmld.obex.client import ObexClient
from syncmld.obex.events import ConnectResult, Disconnected, GetResult, PutResult
from syncmld.obex.events import Event as ObexEvent
from syncmld.obex.packets import SYNCML_TARGET, ResponseCode
from syncmld.obex.server import ServerConfig as ObexServerConfig
from syncmld.obex.syncml import (
    SAN_TYPE,
    SYNCML_TYPES,
    MessageReceived,
    SessionEnded,
    SyncmlObexServerBinding,
)
from syncmld.protocol.codec import Encoding, decode_message
from syncmld.protocol.codes import SyncMode
from syncmld.protocol.san import San, message_to_san, parse_san
from syncmld.state import StateRepository
from syncmld.transports.obex import (
    ObexTcpServer,
    ObexTransportError,
    connect_obex_tcp,
    run_server_alerted_sync,
)
from syncmld.transports.runner import SessionRunner

TIMEOUT = 10.0


def vcard(n: int, name: str | None = None) -> str:
    """A small vCard 3.0 with a UID."""
    name = name or f"Person{n}"
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:uid-{n}\r\nN:{name};John;;;\r\nFN:John {name}\r\n"
        f"TEL;TYPE=CELL:+4915100{n:05d}\r\nEND:VCARD\r\n"
    )


def contents(store: MemoryStore) -> list[str]:
    """The store's items, normalized for comparison (sorted, line ends unified)."""
    return sorted(store.get(i)[0].replace("\r\n", "\n").strip() for i, _ in store.list())


class Dropped(Exception):
    """The test phone dropped the connection where it was told to."""


# ------------------------------------------------------------------ the OBEX wire


async def obex_round(
    client: ObexClient, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> list[ObexEvent]:
    """Send what ``client`` queued and feed it the answers until it reports something."""
    while True:
        out = client.data_to_send()
        if out:
            writer.write(out)
            await writer.drain()
        data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
        events = client.receive_data(data)
        if events or not data:
            return events


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


# ------------------------------------------------------------------ phone-initiated


@dataclass
class ObexPhone:
    """A phone that syncs to an OBEX/TCP server (our engine client on our OBEX client).

    ``cut`` makes :meth:`sync` drop the TCP connection at a point of the
    session: ``("put", k)`` right after the server accepted the k-th message
    (before fetching the reply), ``("get", k)`` right after receiving the
    k-th reply, ``("mid-put", k)`` in the middle of the k-th PUT packet.
    """

    port: int
    store: MemoryStore = field(default_factory=lambda: MemoryStore(content_types=(VCARD_30,)))
    state: PeerState | None = None
    dev_id: str = "obex-phone-1"
    now: float = 1_700_000_000.0
    max_msg_size: int = 1_000_000
    messages: int = 0

    def session(self, encoding: Encoding, mode: SyncMode = SyncMode.TWO_WAY) -> ClientSession:
        self.now += 60
        config = ClientConfig(
            url="syncmld",
            dev_id=self.dev_id,
            stores=(
                ClientStore(
                    datastore=Datastore(name="card", store=self.store),
                    remote_uri="contacts",
                    mode=mode,
                ),
            ),
            encoding=encoding,
            max_msg_size=self.max_msg_size,
        )
        return ClientSession(config, peer=self.state, now=self.now, session_id=str(int(self.now)))

    async def sync(
        self, encoding: Encoding = Encoding.XML, *, cut: tuple[str, int] | None = None
    ) -> SessionFinished:
        """One session; its outcome's state is kept, as a real client keeps it."""
        cs = self.session(encoding)
        ctype = encoding.content_type
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        obex = ObexClient()
        self.messages = 0
        try:
            obex.connect(SYNCML_TARGET)
            (ev,) = await obex_round(obex, reader, writer)
            assert isinstance(ev, ConnectResult) and ev.ok, ev
            msg: bytes | None = cs.start()
            while msg is not None:
                self.messages += 1
                obex.put(ctype, msg)
                if cut == ("mid-put", self.messages):
                    data = obex.data_to_send()
                    writer.write(data[: len(data) // 2])
                    await writer.drain()
                    raise Dropped
                (ev,) = await obex_round(obex, reader, writer)
                assert isinstance(ev, PutResult) and ev.ok, ev
                if cut == ("put", self.messages):
                    raise Dropped
                obex.get(ctype)
                (ev,) = await obex_round(obex, reader, writer)
                assert isinstance(ev, GetResult) and ev.ok, ev
                if cut == ("get", self.messages):
                    raise Dropped
                msg = cs.receive(ev.body).data
            obex.disconnect()
            (ev,) = await obex_round(obex, reader, writer)
            assert isinstance(ev, Disconnected)
        except Dropped:
            cs.abort("the connection was dropped")
        finally:
            await close(writer)
        assert cs.result is not None
        if cs.result.peer is not None:
            self.state = cs.result.peer
        return cs.result


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[StateRepository]:
    with StateRepository(f"sqlite:///{tmp_path / 'state.db'}") as r:
        yield r


@dataclass
class Listener:
    """A running :class:`ObexTcpServer`, its store and what its observer saw."""

    server: ObexTcpServer
    store: MemoryStore
    events: list[tuple[str, Event]]

    def phone(self, **kw: object) -> ObexPhone:
        return ObexPhone(port=self.server.port, **kw)  # type: ignore[arg-type]


def server_config(store: MemoryStore, *, max_msg_size: int = 1_000_000) -> ServerConfig:
    return ServerConfig(
        datastores=(Datastore(name="contacts", store=store),), max_msg_size=max_msg_size
    )


@pytest.fixture
async def listener(repo: StateRepository) -> AsyncIterator[Listener]:
    store = MemoryStore(content_types=(VCARD_30,))
    events: list[tuple[str, Event]] = []
    server = ObexTcpServer(
        server_config(store),
        repo,
        port=0,
        observer=lambda key, event: events.append((key, event)),
        idle_timeout=5,
        max_packet=0x2000,
    )
    async with server:
        yield Listener(server, store, events)


@pytest.mark.parametrize("encoding", [Encoding.XML, Encoding.WBXML], ids=["xml", "wbxml"])
async def test_phone_syncs_to_the_listener(
    listener: Listener, repo: StateRepository, encoding: Encoding
) -> None:
    phone = listener.phone()
    for n in range(3):
        phone.store.add(vcard(n))
    listener.store.add(vcard(10))
    out = await phone.sync(encoding)
    assert out.run.status == 200, out.run
    assert contents(listener.store) == contents(phone.store)
    assert len(contents(listener.store)) == 4
    # The outcome was persisted and the observer saw the session through.
    stored = repo.load_peer(phone.dev_id)
    assert stored is not None and stored.pairs
    keys = {key for key, _ in listener.events}
    assert len(keys) == 1 and next(iter(keys)).startswith("obex-")
    kinds = [type(e) for _, e in listener.events]
    assert PeerIdentified in kinds and StoreStarted in kinds
    assert kinds.count(SessionFinished) == 1 and kinds[-1] is SessionFinished
    finished = listener.events[-1][1]
    assert isinstance(finished, SessionFinished) and finished.run.status == 200
    assert finished.run.finished is not None
    # A second, no-change sync is a two-way sync that changes nothing.
    before = contents(listener.store)
    out = await phone.sync(encoding)
    assert out.run.status == 200 and out.run.stores[0].mode == 200
    assert contents(listener.store) == before == contents(phone.store)
    assert listener.server.runner.sessions == {}


@pytest.mark.parametrize("encoding", [Encoding.XML, Encoding.WBXML], ids=["xml", "wbxml"])
async def test_multi_message_packages_both_ways(repo: StateRepository, encoding: Encoding) -> None:
    store = MemoryStore(content_types=(VCARD_30,))
    for n in range(100, 125):
        store.add(vcard(n, f"Server{n}" + "x" * 200))
    async with ObexTcpServer(server_config(store, max_msg_size=3000), repo, port=0) as server:
        phone = ObexPhone(port=server.port, max_msg_size=3000)
        for n in range(25):
            phone.store.add(vcard(n, f"Phone{n}" + "y" * 200))
        out = await phone.sync(encoding)
        assert out.run.status == 200, out.run
        assert phone.messages >= 6  # both packages needed several messages
        assert len(contents(store)) == 50
        assert contents(store) == contents(phone.store)


async def test_two_phones_at_once(listener: Listener) -> None:
    a = listener.phone(dev_id="phone-a")
    b = listener.phone(dev_id="phone-b")
    a.store.add(vcard(1))
    b.store.add(vcard(2))
    outs = await asyncio.gather(a.sync(), b.sync())
    assert all(o.run.status == 200 for o in outs)
    assert len(contents(listener.store)) == 2
    assert len({k for k, _ in listener.events}) == 2


async def test_dropped_connection_aborts_the_session(
    listener: Listener, repo: StateRepository
) -> None:
    phone = listener.phone()
    phone.store.add(vcard(1))
    out = await phone.sync(cut=("put", 1))
    assert out.run.status != 200
    await wait_for_idle(listener.server)
    finished = [e for _, e in listener.events if isinstance(e, SessionFinished)]
    assert len(finished) == 1 and finished[0].run.status != 200
    assert "closed" in finished[0].run.message or "ended" in finished[0].run.message
    assert repo.history(limit=5)[0].status != 200
    # Nothing of the cut session is committed: the next sync is a first (slow) one.
    out = await phone.sync()
    assert out.run.status == 200
    assert contents(listener.store) == contents(phone.store)


async def wait_for_idle(server: ObexTcpServer) -> None:
    """Until the listener has finished with every connection."""
    for _ in range(500):
        if server.connections == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the listener did not finish its connections")


async def test_cancel_by_key_hangs_up(listener: Listener) -> None:
    phone = listener.phone()
    phone.store.add(vcard(1))
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.server.port)
    obex = ObexClient()
    obex.connect(SYNCML_TARGET)
    await obex_round(obex, reader, writer)
    obex.put(Encoding.XML.content_type, phone.session(Encoding.XML).start())
    (ev,) = await obex_round(obex, reader, writer)
    assert isinstance(ev, PutResult) and ev.ok
    (key,) = listener.server.runner.sessions
    assert await listener.server.runner.abort(key, "cancelled by the user")
    assert not await listener.server.runner.abort(key)
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # we hung up
    await close(writer)
    finished = [e for _, e in listener.events if isinstance(e, SessionFinished)]
    assert len(finished) == 1 and finished[0].run.message == "cancelled by the user"


async def test_undecodable_syncml_is_answered_with_bad_request(
    listener: Listener, repo: StateRepository
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.server.port)
    obex = ObexClient()
    obex.connect(SYNCML_TARGET)
    await obex_round(obex, reader, writer)
    obex.put(Encoding.XML.content_type, b"<SyncML><SyncHdr>truncated")
    (ev,) = await obex_round(obex, reader, writer)
    assert isinstance(ev, PutResult) and ev.ok
    obex.get(Encoding.XML.content_type)
    (ev,) = await obex_round(obex, reader, writer)
    assert isinstance(ev, GetResult) and ev.code == ResponseCode.BAD_REQUEST
    obex.disconnect()
    (ev,) = await obex_round(obex, reader, writer)
    assert isinstance(ev, Disconnected)
    await close(writer)
    await wait_for_idle(listener.server)
    (run,) = repo.history()
    assert run.status == 400
    await assert_still_serving(listener)


async def test_put_and_hang_up_at_once(
    listener: Listener, repo: StateRepository, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that PUTs and closes without waiting for any answer."""
    phone = listener.phone()
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.server.port)
    obex = ObexClient()
    obex.connect(SYNCML_TARGET)
    await obex_round(obex, reader, writer)
    obex.put(Encoding.XML.content_type, phone.session(Encoding.XML).start())
    writer.write(obex.data_to_send())
    writer.write_eof()
    await close(writer)
    await wait_for_idle(listener.server)
    assert "OBEX connection failed" not in caplog.text
    (run,) = repo.history()
    assert run.status != 200
    await assert_still_serving(listener)


async def test_stopping_the_listener_aborts_live_sessions(repo: StateRepository) -> None:
    store = MemoryStore(content_types=(VCARD_30,))
    server = ObexTcpServer(server_config(store), repo, port=0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", server.port)
        obex = ObexClient()
        obex.connect(SYNCML_TARGET)
        await obex_round(obex, reader, writer)
        phone = ObexPhone(port=server.port)
        obex.put(Encoding.XML.content_type, phone.session(Encoding.XML).start())
        (ev,) = await obex_round(obex, reader, writer)
        assert isinstance(ev, PutResult) and ev.ok
    finally:
        await server.stop()
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    assert await asyncio.wait_for(idle_reader.read(), TIMEOUT) == b""
    await close(writer)
    await close(idle_writer)
    assert [r.message for r in repo.history()] == ["the server stopped"]
    assert server.connections == 0


async def test_stopping_closes_connections_accepted_a_moment_before(
    repo: StateRepository,
) -> None:
    """Regression: stop() right as phones connect or hang up left accepted sockets open.

    A connection accepted just before stop() whose handler had not started
    yet was never closed (a ResourceWarning, and a phone left waiting).
    """
    store = MemoryStore(content_types=(VCARD_30,))
    server = ObexTcpServer(server_config(store), repo, port=0)
    await server.start()
    clients = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(6)]
    clients[0][1].close()  # this phone hangs up at the same moment
    await server.stop()
    for reader, writer in clients[1:]:
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        await close(writer)
    await close(clients[0][1])
    assert server.connections == 0
    assert server.open_transports == 0


async def test_idle_connection_is_dropped(repo: StateRepository) -> None:
    store = MemoryStore(content_types=(VCARD_30,))
    async with ObexTcpServer(server_config(store), repo, port=0, idle_timeout=0.3) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        obex = ObexClient()
        obex.connect(SYNCML_TARGET)
        (ev,) = await obex_round(obex, reader, writer)
        assert isinstance(ev, ConnectResult) and ev.ok
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        await close(writer)


async def test_address_in_use(repo: StateRepository, listener: Listener) -> None:
    store = MemoryStore(content_types=(VCARD_30,))
    with pytest.raises(UserError, match=r"cannot listen on 127\.0\.0\.1"):
        async with ObexTcpServer(server_config(store), repo, port=listener.server.port):
            pass


# ------------------------------------------------------------------ malformed input


async def exchange_raw(port: int, *packets: bytes) -> bytes:
    """Send raw packets one by one; return what the server said until it closed or went quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = b""
    try:
        for packet in packets:
            writer.write(packet)
            await writer.drain()
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.5)
            except TimeoutError:
                continue
            answer += chunk
            if not chunk:
                break
    finally:
        await close(writer)
    return answer


def connect_packet(target: bytes | None = SYNCML_TARGET, max_packet: int = 0x2000) -> bytes:
    headers = b""
    if target is not None:
        headers = bytes([0x46]) + struct.pack(">H", 3 + len(target)) + target
    return bytes([0x80]) + struct.pack(">HBBH", 7 + len(headers), 0x10, 0, max_packet) + headers


def put_packet(body: bytes) -> bytes:
    mime = b"application/vnd.syncml+xml\0"
    headers = bytes([0x42]) + struct.pack(">H", 3 + len(mime)) + mime
    headers += bytes([0x49]) + struct.pack(">H", 3 + len(body)) + body
    return bytes([0x82]) + struct.pack(">H", 3 + len(headers)) + headers


def response_codes(answer: bytes) -> list[int]:
    """The codes of the OBEX response packets in ``answer`` (which must frame exactly)."""
    codes = []
    while answer:
        (length,) = struct.unpack(">H", answer[1:3])
        assert 3 <= length <= len(answer), answer.hex()
        codes.append(answer[0])
        answer = answer[length:]
    return codes


async def assert_still_serving(listener: Listener) -> None:
    phone = listener.phone(dev_id=f"after-{len(listener.events)}")
    phone.store.add(vcard(99))
    out = await phone.sync()
    assert out.run.status == 200, out.run


C = ResponseCode


@pytest.mark.parametrize(
    ("packets", "codes"),
    [
        # Refusals that keep the framing: the connection survives (the CONNECT after them works).
        pytest.param(
            [b"\x15\x00\x06abc", connect_packet()], [C.NOT_IMPLEMENTED, C.OK], id="unknown-opcode"
        ),
        pytest.param(
            [b"\x80\x00\x06\x10\x00\x20", connect_packet()],
            [C.BAD_REQUEST, C.OK],
            id="6-byte-connect",
        ),
        pytest.param(
            [put_packet(b"<SyncML/>"), connect_packet()],
            [C.FORBIDDEN, C.OK],
            id="put-before-connect",
        ),
        pytest.param([connect_packet(target=None)], [C.NOT_FOUND], id="connect-without-target"),
        pytest.param(
            [connect_packet(target=bytes.fromhex("F9EC7BC4953C11D2984E525400DC9E09"))],
            [C.NOT_FOUND],
            id="folder-browsing-target",
        ),
        # Framing lost: the error code, then the connection is closed.
        pytest.param([b"GET / HTTP/1.1\r\n\r\n"], [C.REQUEST_ENTITY_TOO_LARGE], id="garbage"),
        pytest.param([b"\x00\x00\x01junk"], [C.BAD_REQUEST], id="length-below-3"),
        pytest.param(
            [connect_packet(), b"\x82\x20\x01" + b"x" * 100],
            [C.OK, C.REQUEST_ENTITY_TOO_LARGE],
            id="length-beyond-max",
        ),
    ],
)
async def test_malformed_packets_get_an_error_code(
    listener: Listener, packets: list[bytes], codes: list[ResponseCode]
) -> None:
    answer = await exchange_raw(listener.server.port, *packets)
    assert response_codes(answer) == codes
    await wait_for_idle(listener.server)
    assert listener.server.runner.sessions == {}
    await assert_still_serving(listener)


# ------------------------------------------------------------------ PC-initiated


@dataclass
class AlertablePhone:
    """A phone whose SyncML Client service listens on OBEX/TCP: the PC alerts it with a SAN.

    The phone is the OBEX server: it takes the notification PUT, answers the
    GET with the first message of a client session the notification started,
    then answers each PUT of the PC's reply with its next message on the GET.
    ``hang_up_after`` closes the connection after receiving that many of
    the PC's SyncML messages; ``targets`` are the CONNECT Targets it accepts.
    """

    store: MemoryStore = field(default_factory=lambda: MemoryStore(content_types=(VCARD_30,)))
    state: PeerState | None = None
    dev_id: str = "alertable-phone"
    encoding: Encoding = Encoding.WBXML
    now: float = 1_700_000_000.0
    targets: frozenset[bytes] = frozenset({SYNCML_TARGET})
    hang_up_after: int | None = None
    sans: list[San] = field(default_factory=list)
    outcomes: list[SessionFinished] = field(default_factory=list)
    endings: list[SessionEnded] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def __aenter__(self) -> AlertablePhone:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def _session(self, san: San) -> ClientSession:
        self.now += 60
        (alert,) = san.alerts
        config = ClientConfig(
            url=san.server_id,
            dev_id=self.dev_id,
            stores=(
                ClientStore(
                    datastore=Datastore(name="card", store=self.store),
                    remote_uri=alert.server_uri,
                ),
            ),
            encoding=self.encoding,
            server_alerted=True,
        )
        return ClientSession(config, peer=self.state, now=self.now, session_id=str(san.session_id))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        binding = SyncmlObexServerBinding(
            ObexServerConfig(targets=self.targets, put_types=SYNCML_TYPES | {SAN_TYPE})
        )
        cs: ClientSession | None = None
        received = 0
        try:
            ended = False
            while not ended:
                data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
                for ev in binding.receive_data(data):
                    if isinstance(ev, MessageReceived) and cs is None:
                        if ev.content_type == SAN_TYPE:
                            san = parse_san(ev.body)
                        else:  # a SyncML 1.1 "package 0"
                            san = message_to_san(decode_message(ev.body))
                        self.sans.append(san)
                        cs = self._session(san)
                        binding.send_reply(cs.start())
                    elif isinstance(ev, MessageReceived):
                        assert cs is not None
                        received += 1
                        if received == self.hang_up_after:
                            return
                        answer = cs.receive(ev.body).data
                        if answer is not None:
                            binding.send_reply(answer)
                    elif isinstance(ev, SessionEnded):
                        self.endings.append(ev)
                        ended = True
                writer.write(binding.data_to_send())
                await writer.drain()
        finally:
            writer.close()
            if cs is not None:
                if cs.result is None:
                    cs.abort("the connection was dropped")
                assert cs.result is not None
                if cs.result.peer is not None:
                    self.state = cs.result.peer
                self.outcomes.append(cs.result)


def alert_for(store: MemoryStore, version: str = "1.2") -> tuple[bytes, str]:
    return notification(
        [(Datastore(name="contacts", store=store), SyncMode.TWO_WAY)],
        server_id="PC Suite",
        session_id=42,
        version=version,
    )


@pytest.mark.parametrize(
    ("encoding", "version"),
    [(Encoding.WBXML, "1.2"), (Encoding.XML, "1.2"), (Encoding.WBXML, "1.1")],
    ids=["wbxml-san12", "xml-san12", "wbxml-pkg0"],
)
async def test_pc_initiated_sync(repo: StateRepository, encoding: Encoding, version: str) -> None:
    store = MemoryStore(content_types=(VCARD_30,))
    store.add(vcard(1))
    events: list[tuple[str, Event]] = []
    runner = SessionRunner(server_config(store), repo, observer=lambda k, e: events.append((k, e)))
    opened: list[str] = []
    async with AlertablePhone(encoding=encoding) as phone:
        phone.store.add(vcard(2))
        san, san_type = alert_for(store, version)
        for _ in range(2):  # a first (slow) sync, then a two-way one
            out = await connect_obex_tcp(
                "127.0.0.1", phone.port, runner, san, san_type=san_type, on_open=opened.append
            )
            assert out.run.status == 200, out.run
            assert phone.outcomes[-1].run.status == 200
            assert phone.endings[-1].clean  # we said DISCONNECT before closing
        assert out.run.stores[0].mode == 200
    assert [a.sync_type for a in phone.sans[0].alerts] == [206]
    assert phone.sans[0].server_id == "PC Suite"
    assert contents(store) == contents(phone.store) and len(contents(store)) == 2
    assert repo.load_peer(phone.dev_id) is not None
    assert len(opened) == 2 and {k for k, _ in events} == set(opened)
    assert sum(isinstance(e, SessionFinished) for _, e in events) == 2


async def test_phone_refusing_the_connection_is_a_failed_run(repo: StateRepository) -> None:
    store = MemoryStore(content_types=(VCARD_30,))
    runner = SessionRunner(server_config(store), repo)
    async with AlertablePhone(targets=frozenset({b"SOMETHING-ELSE"})) as phone:
        out = await connect_obex_tcp("127.0.0.1", phone.port, runner, alert_for(store)[0])
    assert out.peer is None and out.run.status != 200
    assert "0xC4" in out.run.message
    assert repo.history(limit=1)[0].message == out.run.message
    assert runner.sessions == {}


@pytest.mark.parametrize("cut", [1, 2, 3])
async def test_phone_hanging_up_mid_session(repo: StateRepository, cut: int) -> None:
    """The phone hangs up before handling our cut-th message; the next alerted sync converges."""
    store = MemoryStore(content_types=(VCARD_30,))
    store.add(vcard(1))
    runner = SessionRunner(server_config(store), repo)
    async with AlertablePhone(hang_up_after=cut) as phone:
        phone.store.add(vcard(2))
        san, san_type = alert_for(store)
        out = await connect_obex_tcp("127.0.0.1", phone.port, runner, san, san_type=san_type)
        assert phone.outcomes[-1].run.status != 200
        if cut < 3:  # the third is our last message: our side was complete
            assert out.run.status != 200 and "connection" in out.run.message
        phone.hang_up_after = None
        for _ in range(2):
            out = await connect_obex_tcp("127.0.0.1", phone.port, runner, san, san_type=san_type)
            assert out.run.status == 200, out.run
            assert contents(store) == contents(phone.store) and len(contents(store)) == 2
        (counts,) = out.run.stores
        assert counts.mode == 200 and (counts.local_added, counts.remote_added) == (0, 0)


async def test_pc_initiated_sync_over_any_stream(repo: StateRepository) -> None:
    """``run_server_alerted_sync`` only needs a connected stream (BlueZ hands over a socket)."""
    store = MemoryStore(content_types=(VCARD_30,))
    runner = SessionRunner(server_config(store), repo)
    async with AlertablePhone() as phone:
        phone.store.add(vcard(5))
        san, san_type = alert_for(store)
        sock = socket.create_connection(("127.0.0.1", phone.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        out = await run_server_alerted_sync(reader, writer, runner, san, san_type=san_type)
        assert out.run.status == 200, out.run
    assert sock.fileno() == -1  # closed
    assert contents(store) == contents(phone.store)


async def test_connecting_to_nothing_is_a_clear_error(repo: StateRepository) -> None:
    store = MemoryStore(content_types=(VCARD_30,))
    runner = SessionRunner(server_config(store), repo)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with pytest.raises(ObexTransportError, match=f"cannot connect to 127.0.0.1:{port}: "):
        await connect_obex_tcp("127.0.0.1", port, runner, alert_for(store)[0])
    assert runner.sessions == {} and repo.history(limit=1) == []


# ------------------------------------------------------------------ a foreign OBEX client


@pytest.mark.external
@pytest.mark.skipif(shutil.which("obexftp") is None, reason="obexftp is not installed")
@pytest.mark.parametrize("uuid", ["FBS", "none"], ids=["folder-browsing", "no-target"])
async def test_obexftp_is_refused_and_the_listener_keeps_serving(
    listener: Listener, caplog: pytest.LogCaptureFixture, uuid: str
) -> None:
    """Debian's obexftp (OpenOBEX) asks for file browsing, or for nothing: 0xC4 Not Found."""
    caplog.set_level(logging.INFO, logger="syncmld.transports.obex")
    proc = await asyncio.create_subprocess_exec(
        "obexftp",
        "-n",
        f"127.0.0.1:{listener.server.port}",
        "-U",
        uuid,
        "-l",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode != 0, output
    assert b"failed: connect" in output or b"error on connect" in output, output
    assert "refused 0xC4" in caplog.text
    await wait_for_idle(listener.server)
    assert listener.events == []  # no SyncML session was started
    await assert_still_serving(listener)
