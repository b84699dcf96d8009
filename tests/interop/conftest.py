"""Fixtures of the SyncEvolution interop tests: the shims, syncmld's server and client sides."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.server import ServerConfig
from syncmld.engine.session import AuthMode, Datastore, SessionFinished
from syncmld.engine.store import TEXT_PLAIN, MemoryStore, Store
from syncmld.protocol.codec import Encoding
from syncmld.protocol.codes import SyncMode
from syncmld.state import StateRepository
from syncmld.stores.vdir import VdirStore
from syncmld.transports.http import run_client_session
from syncmld.transports.obex import ObexTcpServer
from tests.interop.harness import Shims, build_shims, missing

#: Our datastore name per SyncEvolution datastore.
OUR_NAMES = {"addressbook": "contacts", "calendar": "calendar", "todo": "tasks", "memo": "memos"}


@pytest.fixture(scope="session")
def shims(tmp_path_factory: pytest.TempPathFactory) -> Shims:
    """The LD_PRELOAD shims, compiled once per test run."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    return build_shims(tmp_path_factory.mktemp("shims"))


@dataclass
class Ours:
    """syncmld's server side: stores by SyncEvolution datastore name, the state."""

    stores: dict[str, Store]
    repo: StateRepository
    config: ServerConfig

    def texts(self, se_store: str) -> list[str]:
        """Every item of a store."""
        store = self.stores[se_store]
        return [store.get(item_id)[0] for item_id, _ in store.list()]


def our_stores(root: Path) -> dict[str, Store]:
    """vdir folders for contacts, events and tasks; memos (text/plain) in memory."""
    return {
        "addressbook": VdirStore.of_kind(root / "contacts", "contacts"),
        "calendar": VdirStore.of_kind(root / "calendar", "events"),
        "todo": VdirStore.of_kind(root / "tasks", "tasks"),
        "memo": MemoryStore(content_types=(TEXT_PLAIN,)),
    }


def server_config(stores: dict[str, Store], auth: AuthMode = AuthMode.BASIC) -> ServerConfig:
    """Our four datastores, user ``test`` / password ``secret``."""
    return ServerConfig(
        datastores=tuple(Datastore(name=OUR_NAMES[s], store=st) for s, st in stores.items()),
        auth=auth,
        passwords={"test": "secret"},
    )


@pytest.fixture
def ours(tmp_path: Path) -> Iterator[Ours]:
    """Our stores and a SQLite state database (no transport yet)."""
    stores = our_stores(tmp_path / "ours")
    with StateRepository(f"sqlite:///{tmp_path / 'state.db'}") as repo:
        yield Ours(stores, repo, server_config(stores))


@dataclass
class OurClient:
    """syncmld's client role against a SyncML server, its state kept in ``repo``.

    Persists each outcome the way ``syncmld sync`` does.
    """

    url: str
    stores: dict[str, Store]
    repo: StateRepository
    dev_id: str = "syncmld-interop"
    user: str | None = "test"
    password: str | None = "secret"
    auth: str = "basic"
    encoding: Encoding = Encoding.XML
    version: str = "1.2"
    max_msg_size: int = 1_000_000

    async def sync(self, mode: SyncMode) -> SessionFinished:
        """One session with every store in ``mode``; its outcome is persisted."""
        config = ClientConfig(
            url=self.url,
            dev_id=self.dev_id,
            stores=tuple(
                ClientStore(
                    datastore=Datastore(name=OUR_NAMES[s], store=st), remote_uri=s, mode=mode
                )
                for s, st in self.stores.items()
            ),
            user=self.user,
            password=self.password,
            auth=self.auth,
            encoding=self.encoding,
            version=self.version,
            max_msg_size=self.max_msg_size,
        )
        now = time.time()
        peer = self.repo.load_peer(self.url)
        session_id = str(int(now * 10) % 100000)
        session = ClientSession(config, peer=peer, now=now, session_id=session_id)
        async with aiohttp.ClientSession() as http:
            outcome = await run_client_session(session, http=http, timeout=60)
        run = dataclasses.replace(outcome.run, finished=time.time())
        if outcome.peer is not None:
            self.repo.save_session(outcome.peer, run)
        else:
            self.repo.record_run(run)
        return outcome


async def settle(obex: ObexTcpServer, timeout: float = 5.0) -> None:
    """Wait until the listener has finished serving its connections.

    SyncEvolution's client hangs up right after its DISCONNECT; stopping the
    listener at that very moment would cancel the connection task while it
    closes the socket, and the test's event loop may end before the close
    completes.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while obex.connections and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
