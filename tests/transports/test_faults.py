"""Fault injection: the connection dies after each message of a session, in turn.

For HTTP and OBEX/TCP alike, a phone (our engine client) and our server
first sync, then both sides change items (edits, additions, deletions) and
a session with multi-message packages is cut at one point:

* OBEX: in the middle of the k-th PUT packet (``mid-put``), right after the
  server accepted the k-th message but before its reply was fetched
  (``put``: the server handled it), or right after the k-th reply arrived
  (``get``: the phone never sends the next message);
* HTTP: the k-th request is written and the TCP connection closed at once
  (``request``: the server handles it, nobody reads the answer), or the k-th
  answer is received and thrown away (``answer``).

The phone keeps what its aborted session hands back, as a real client does.
Then the next session must complete, both sides must hold exactly the
expected items (nothing lost, nothing duplicated, deletions kept), and a
further session must find nothing left to do.  Over HTTP the cut session
lingers on the server until it expires: it is expired after the recovery
sync, and must not undo it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp
import pytest
from yarl import URL

from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.session import Datastore, SessionFinished
from syncmld.engine.state import PeerState
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.state import StateRepository
from syncmld.transports.http import HANDLER_KEY, HttpServer, SyncmlHttpHandler, make_app
from syncmld.transports.obex import ObexTcpServer

from .test_obex_tcp import ObexPhone, contents, server_config, vcard, wait_for_idle

#: Both sides' largest message: small enough that every package takes several messages.
MAX_MSG = 6000
#: Messages the phone sends in the session that is cut (checked by test_scenario_shape).
MESSAGES = 6


def item(n: int, name: str) -> str:
    return vcard(n, name + "z" * 250)


def uid_of(text: str) -> str:
    return text.split("UID:", 1)[1].split("\r", 1)[0]


def by_uid(store: MemoryStore) -> dict[str, str]:
    return {uid_of(store.get(i)[0]): i for i, _ in store.list()}


def expected() -> list[str]:
    """What both sides hold once the changes of :func:`change_both_sides` are synced."""
    items = [item(1, "ServerEdit"), item(11, "PhoneEdit")]
    items += [item(n, f"S{n}") for n in (3, 4, 5, 6, 31, 32, 33)]
    items += [item(n, f"P{n}") for n in (13, 14, 15, 16, 21, 22, 23)]
    return sorted(i.replace("\r\n", "\n").strip() for i in items)


def fill(server: MemoryStore, phone: MemoryStore) -> None:
    for n in range(1, 7):
        server.add(item(n, f"S{n}"))
    for n in range(11, 17):
        phone.add(item(n, f"P{n}"))


def change_both_sides(server: MemoryStore, phone: MemoryStore) -> None:
    p = by_uid(phone)
    phone.edit(p["uid-11"], item(11, "PhoneEdit"))
    phone.delete(p["uid-12"], etag=None)
    for n in range(21, 24):
        phone.add(item(n, f"P{n}"))
    s = by_uid(server)
    server.edit(s["uid-1"], item(1, "ServerEdit"))
    server.delete(s["uid-2"], etag=None)
    for n in range(31, 34):
        server.add(item(n, f"S{n}"))


class Phone(Protocol):
    store: MemoryStore
    messages: int

    async def sync(self, *, cut: tuple[str, int] | None = None) -> SessionFinished: ...


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[StateRepository]:
    with StateRepository(f"sqlite:///{tmp_path / 'state.db'}") as r:
        yield r


# ------------------------------------------------------------------ HTTP


@dataclass
class HttpPhone:
    """A phone syncing over HTTP that can lose a request or an answer."""

    url: str
    http: aiohttp.ClientSession
    store: MemoryStore = field(default_factory=lambda: MemoryStore(content_types=(VCARD_30,)))
    state: PeerState | None = None
    now: float = 1_700_000_000.0
    messages: int = 0

    def session(self) -> ClientSession:
        self.now += 60
        config = ClientConfig(
            url=self.url,
            dev_id="http-phone",
            stores=(
                ClientStore(
                    datastore=Datastore(name="card", store=self.store), remote_uri="contacts"
                ),
            ),
            max_msg_size=MAX_MSG,
        )
        return ClientSession(config, peer=self.state, now=self.now, session_id=str(int(self.now)))

    async def sync(self, *, cut: tuple[str, int] | None = None) -> SessionFinished:
        cs = self.session()
        msg: bytes | None = cs.start()
        self.messages = 0
        while msg is not None:
            self.messages += 1
            headers = {"Content-Type": cs.encoding.content_type}
            if cut == ("request", self.messages):
                await post_and_hang_up(cs.url, msg, headers)
                cs.abort("the connection was dropped")
                break
            async with self.http.post(cs.url, data=msg, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                answer = await resp.read()
            if cut == ("answer", self.messages):
                cs.abort("the connection was dropped")
                break
            msg = cs.receive(answer).data
        assert cs.result is not None
        if cs.result.peer is not None:
            self.state = cs.result.peer
        return cs.result


async def post_and_hang_up(url: str, body: bytes, headers: dict[str, str]) -> None:
    """Write a whole POST request on a fresh connection and close it without reading."""
    target = URL(url)
    assert target.host is not None and target.port is not None
    _, writer = await asyncio.open_connection(target.host, target.port)
    head = f"POST {target.raw_path_qs} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


async def http_settled(handler: SyncmlHttpHandler) -> None:
    """Until the server has handled every request it received (the hung-up one too)."""
    for _ in range(1000):
        await asyncio.sleep(0.005)
        if not any(s.lock.locked() for s in handler._sessions.values()):
            return
    raise AssertionError("the server kept working on a request")


@dataclass
class Setup:
    phone: Phone
    server_store: MemoryStore
    settle: Callable[[], Awaitable[None]]
    expire: Callable[[], Awaitable[None]]


@pytest.fixture
async def http_setup(repo: StateRepository) -> AsyncIterator[Setup]:
    store = MemoryStore(content_types=(VCARD_30,))
    app = make_app(server_config(store, max_msg_size=MAX_MSG), repo, session_timeout=60)
    handler = app[HANDLER_KEY]

    async def expire() -> None:
        handler.session_timeout = 1e-9
        await handler.expire()
        handler.session_timeout = 60

    async with HttpServer(app, port=0) as server, aiohttp.ClientSession() as http:
        yield Setup(
            HttpPhone(url=server.url, http=http), store, lambda: http_settled(handler), expire
        )


# ------------------------------------------------------------------ OBEX


@pytest.fixture
async def obex_setup(repo: StateRepository) -> AsyncIterator[Setup]:
    store = MemoryStore(content_types=(VCARD_30,))
    async with ObexTcpServer(server_config(store, max_msg_size=MAX_MSG), repo, port=0) as server:

        async def nothing() -> None:
            return None

        yield Setup(
            ObexPhone(port=server.port, max_msg_size=MAX_MSG),
            store,
            lambda: wait_for_idle(server),
            nothing,
        )


# ------------------------------------------------------------------ the tests


async def run_scenario(setup: Setup, cut: tuple[str, int] | None) -> None:
    phone, server = setup.phone, setup.server_store
    fill(server, phone.store)
    first = await phone.sync()
    assert first.run.status == 200, first.run
    change_both_sides(server, phone.store)

    cut_run = await phone.sync(cut=cut)
    await setup.settle()
    if cut is None:
        assert cut_run.run.status == 200, cut_run.run
        assert phone.messages == MESSAGES
    else:
        assert cut_run.run.status != 200, "the session was not cut"
        assert phone.messages == cut[1]

    recovery = await phone.sync()
    assert recovery.run.status == 200, recovery.run
    await setup.settle()
    await setup.expire()
    assert contents(server) == contents(phone.store) == expected()

    again = await phone.sync()
    assert again.run.status == 200, again.run
    assert contents(server) == contents(phone.store) == expected()
    (counts,) = again.run.stores
    assert counts.mode == 200, counts  # still a two-way sync
    assert (counts.local_added, counts.local_replaced, counts.local_deleted) == (0, 0, 0)


CUTS = range(1, MESSAGES + 1)


async def test_http_scenario_without_a_cut(http_setup: Setup) -> None:
    """The scenario takes MESSAGES messages (so every cut point below is inside it)."""
    await run_scenario(http_setup, None)


async def test_obex_scenario_without_a_cut(obex_setup: Setup) -> None:
    await run_scenario(obex_setup, None)


@pytest.mark.parametrize("n", CUTS)
@pytest.mark.parametrize("kind", ["request", "answer"])
async def test_http_cut(http_setup: Setup, kind: str, n: int) -> None:
    await run_scenario(http_setup, (kind, n))


@pytest.mark.parametrize("n", CUTS)
@pytest.mark.parametrize("kind", ["mid-put", "put", "get"])
async def test_obex_cut(obex_setup: Setup, kind: str, n: int) -> None:
    await run_scenario(obex_setup, (kind, n))
