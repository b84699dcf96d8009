"""syncmld as a library: a program syncs its own data with a SyncML server.

A program hands its data to syncmld as stores (an :class:`~syncmld.agent.Agent`
of its own, a vdir folder, a :class:`~syncmld.engine.store.MemoryStore`),
names the state database and the server, and calls :meth:`SyncClient.sync`::

    from syncmld import SyncClient

    client = SyncClient(
        "https://sync.example.org/sync",
        user="anna",
        password="secret",
        state_url="sqlite:////home/anna/.local/state/notes/sync.db",
    )
    client.add_store("notes", NotesAgent("~/notes"), remote="./notes")
    result = client.sync()
    if not result.ok:
        print("sync failed:", result.message)
    for store in result.stores:
        print(store.name, store.local_added, store.remote_added)

The state database (any SQLAlchemy URL; SQLite is the usual choice) keeps
the anchors and, per item, the etag and content hash of the last sync, so
the next sync is two-way and sends only what changed; a store needs no
change log.  The first sync with a server is a slow sync, which matches
equal items instead of duplicating them.

:meth:`SyncClient.sync` blocks (it runs its own event loop);
:meth:`SyncClient.sync_async` is the same for programs already running
asyncio.  A network failure or a server error never raises: it comes back as
a :class:`SyncResult` whose ``ok`` is false and whose ``message`` says what
happened.  Only misuse (no stores, a bad URL) raises :class:`ValueError`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from syncmld import __version__
from syncmld.agent import Agent, AgentStore
from syncmld.config import default_device_id
from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.items import ItemCodec
from syncmld.engine.session import Datastore
from syncmld.engine.state import RunRecord, StoreCounts
from syncmld.engine.store import Store
from syncmld.protocol.codec import Encoding
from syncmld.protocol.codes import StatusCode, SyncMode
from syncmld.state.repository import StateRepository
from syncmld.stores.vdir import VdirStore
from syncmld.transports.http import DEFAULT_CLIENT_TIMEOUT, run_client_session

__all__ = ["StoreResult", "SyncClient", "SyncMode", "SyncResult", "run_client"]


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What one sync did to one store.

    ``local_*`` count writes to the local store, ``remote_*`` changes sent to
    the server; ``status`` is the SyncML status the store ended with (200:
    synced) and ``message`` says why otherwise.
    """

    name: str
    remote_uri: str
    mode: SyncMode | None
    local_added: int
    local_replaced: int
    local_deleted: int
    remote_added: int
    remote_replaced: int
    remote_deleted: int
    conflicts: int
    status: int
    message: str

    @property
    def ok(self) -> bool:
        """The store synced completely."""
        return self.status == StatusCode.OK

    @classmethod
    def from_counts(cls, counts: StoreCounts) -> StoreResult:
        """Built from the engine's per-store record."""
        try:
            mode = SyncMode.from_alert(counts.mode) if counts.mode is not None else None
        except ValueError:
            mode = None
        return cls(
            name=counts.local_uri,
            remote_uri=counts.remote_uri,
            mode=mode,
            local_added=counts.local_added,
            local_replaced=counts.local_replaced,
            local_deleted=counts.local_deleted,
            remote_added=counts.remote_added,
            remote_replaced=counts.remote_replaced,
            remote_deleted=counts.remote_deleted,
            conflicts=counts.conflicts,
            status=counts.status,
            message=counts.message,
        )


@dataclass(frozen=True, slots=True)
class SyncResult:
    """The outcome of one sync session.

    Attributes:
        status: 200 when every store synced, else the SyncML status of the
            failure (514 for a session that broke off).
        message: what went wrong ("" on success).
        stores: one :class:`StoreResult` per store, in the order added.
        run: the record kept in the state database's history.
    """

    status: int
    message: str
    stores: tuple[StoreResult, ...]
    run: RunRecord

    @property
    def ok(self) -> bool:
        """The session completed and every store synced."""
        return self.status == StatusCode.OK and all(s.ok for s in self.stores)

    @property
    def completed(self) -> bool:
        """The session ran to its end (some stores may still have failed)."""
        if self.status == StatusCode.OK:
            return True
        return self.status == StatusCode.SYNCHRONIZATION_FAILED and any(
            not s.ok for s in self.stores
        )

    def __getitem__(self, name: str) -> StoreResult:
        """The result of the store added under ``name``.

        Raises:
            KeyError: no such store in this session.
        """
        for store in self.stores:
            if store.name == name:
                return store
        raise KeyError(name)

    @classmethod
    def from_run(cls, run: RunRecord) -> SyncResult:
        """Built from the engine's run record."""
        return cls(
            status=run.status,
            message=run.message,
            stores=tuple(StoreResult.from_counts(c) for c in run.stores),
            run=run,
        )


def _session_id(now: float) -> str:
    """A SessionID that changes from one session to the next."""
    return str(int(now) % 1_000_000)


async def run_client(
    config: ClientConfig,
    state_url: str,
    *,
    timeout: float = DEFAULT_CLIENT_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
) -> SyncResult:
    """Run one client session over HTTP and commit its outcome to the state database.

    This is the engine-level entry point (:class:`SyncClient` builds the
    ``config``); ``syncmld sync`` uses it too.

    Args:
        config: the session's engine configuration (server URL, stores, ...).
        state_url: the state database URL.
        timeout: seconds to wait for each HTTP answer.
        ssl_context: TLS settings (default: verify against the system CAs).

    Raises:
        asyncio.CancelledError: the caller was cancelled; nothing was
            committed but the aborted run was recorded in the history.
        syncmld.errors.UserError: the state database cannot be opened.
    """
    repo = StateRepository(state_url)
    await asyncio.to_thread(repo.open)
    try:
        now = time.time()
        peer = await asyncio.to_thread(repo.load_peer, config.url)
        session = ClientSession(config, peer=peer, now=now, session_id=_session_id(now))
        headers = {"User-Agent": f"syncmld/{__version__}"}
        try:
            async with aiohttp.ClientSession(headers=headers) as http:
                outcome = await run_client_session(
                    session, http=http, timeout=timeout, ssl_context=ssl_context
                )
        except asyncio.CancelledError:
            aborted = session.result or session.abort("cancelled")
            repo.record_run(dataclasses.replace(aborted.run, finished=time.time()))
            raise
        run = dataclasses.replace(outcome.run, finished=time.time())
        if outcome.peer is not None:
            await asyncio.to_thread(repo.save_session, outcome.peer, run)
        else:
            await asyncio.to_thread(repo.record_run, run)
    finally:
        repo.close()
    return SyncResult.from_run(run)


@dataclass(frozen=True, slots=True)
class _Pair:
    datastore: Datastore
    remote: str
    mode: SyncMode


class SyncClient:
    """Syncs local stores with one SyncML server (the client role).

    Args:
        url: the server's SyncML URL (``http://`` or ``https://``).
        state_url: the state database, a SQLAlchemy URL such as
            ``sqlite:////path/to/sync.db`` (created when missing).
        user, password: credentials (``None``: send none unless challenged).
        auth: ``"basic"`` or ``"md5"``.
        device_id: our SyncML device id towards the server; the default is
            derived from this machine and ``state_url``, so it is stable for
            one program and differs between programs.
        version: SyncML version, ``"1.1"`` or ``"1.2"``.
        encoding: ``"xml"`` or ``"wbxml"``.
        timeout: seconds to wait for each HTTP answer.
        ssl_context: TLS settings for ``https`` (default: system CAs).

    Raises:
        ValueError: a bad URL or an unknown auth, version or encoding.
    """

    def __init__(
        self,
        url: str,
        *,
        state_url: str,
        user: str | None = None,
        password: str | None = None,
        auth: str = "basic",
        device_id: str | None = None,
        version: str = "1.2",
        encoding: str = "xml",
        timeout: float = DEFAULT_CLIENT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http:// or https:// URL")
        if auth not in ("basic", "md5"):
            raise ValueError(f"auth {auth!r} is not 'basic' or 'md5'")
        if version not in ("1.1", "1.2"):
            raise ValueError(f"version {version!r} is not '1.1' or '1.2'")
        encodings = {"xml": Encoding.XML, "wbxml": Encoding.WBXML}
        if encoding not in encodings:
            raise ValueError(f"encoding {encoding!r} is not 'xml' or 'wbxml'")
        self.url = url
        self.state_url = state_url
        self.user = user
        self.password = password
        self.auth = auth
        self.device_id = device_id or _default_device_id(state_url)
        self.version = version
        self.encoding = encodings[encoding]
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._pairs: list[_Pair] = []

    def add_store(
        self,
        name: str,
        store: Store | Agent[Any],
        *,
        remote: str | None = None,
        mode: SyncMode | str = SyncMode.TWO_WAY,
        display_name: str | None = None,
        codec: ItemCodec | None = None,
    ) -> None:
        """Sync ``store`` (a :class:`Store` or an :class:`Agent`) with a server database.

        Args:
            name: the local name (shown in results and the history).
            store: the data.
            remote: the server's database URI (default: ``name``).
            mode: the store's usual sync mode (``"two-way"``, ``"slow"``, ...).
            display_name: the name announced in our device information.
            codec: a format converter between the store and the server
                (default: for a vdir store of a known kind, the converter
                :mod:`syncmld.formats` offers for that kind, so a server
                speaking vCard 2.1 or vCalendar 1.0 is understood; for other
                stores, items travel as the store holds them).

        Raises:
            ValueError: the name is taken or empty, or the mode is unknown.
        """
        if not name or any(p.datastore.name == name for p in self._pairs):
            raise ValueError(f"store name {name!r} is empty or already used")
        local = AgentStore(store, name=name) if isinstance(store, Agent) else store
        if codec is None and isinstance(local, VdirStore) and local.kind is not None:
            from syncmld.formats.codec import FormatCodec  # noqa: PLC0415

            codec = FormatCodec(local.kind)
        self._pairs.append(
            _Pair(
                Datastore(name=name, store=local, codec=codec, display_name=display_name),
                remote or name,
                SyncMode(mode),
            )
        )

    @property
    def stores(self) -> Sequence[str]:
        """The names of the stores added, in order."""
        return [p.datastore.name for p in self._pairs]

    def config(self, mode: SyncMode | str | None = None) -> ClientConfig:
        """The engine configuration of the next session (``mode`` overrides every store's).

        Raises:
            ValueError: no store was added, or an unknown mode.
        """
        if not self._pairs:
            raise ValueError("add at least one store before syncing")
        override = SyncMode(mode) if mode is not None else None
        return ClientConfig(
            url=self.url,
            dev_id=self.device_id,
            stores=tuple(
                ClientStore(datastore=p.datastore, remote_uri=p.remote, mode=override or p.mode)
                for p in self._pairs
            ),
            user=self.user,
            password=self.password,
            auth=self.auth,
            version=self.version,
            encoding=self.encoding,
        )

    async def sync_async(self, mode: SyncMode | str | None = None) -> SyncResult:
        """Run one sync session (``mode`` overrides every store's mode).

        Store calls run in worker threads, so the event loop stays free.

        Raises:
            ValueError: see :meth:`config`.
            syncmld.errors.UserError: the state database cannot be opened.
        """
        return await run_client(
            self.config(mode), self.state_url, timeout=self.timeout, ssl_context=self.ssl_context
        )

    def sync(self, mode: SyncMode | str | None = None) -> SyncResult:
        """:meth:`sync_async` in an event loop of its own (call it outside asyncio)."""
        return asyncio.run(self.sync_async(mode))


def _default_device_id(state_url: str) -> str:
    seed = f"{default_device_id()}:{state_url}"
    return "syncmld-" + hashlib.sha256(seed.encode()).hexdigest()[:16]
