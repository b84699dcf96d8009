"""The six-mode scenario both interop directions go through, and its bookkeeping.

A :class:`Model` says which items (key -> version) each side should hold and
which changed since the last sync; :meth:`Model.apply` moves it the way a
mode moves data.  A :class:`Side` is one peer's datastores, edited directly
(the way a desktop program or the phone's user would) and read back.  After
every sync, both sides must hold exactly what the model says, compared with
:func:`~tests.interop.harness.canonical_set` - an item lost, duplicated or
left stale fails the test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from syncmld.engine.store import Store
from tests.interop.harness import SE_STORES, canonical_set, make_item


class Side(Protocol):
    """One peer's datastores (SyncEvolution names), edited and read directly."""

    name: str

    def put(self, store: str, key: str, text: str) -> None: ...

    def delete(self, store: str, key: str) -> None: ...

    def texts(self, store: str) -> list[str]: ...


class FileSide:
    """SyncEvolution's file datastores: one item per file in ``folders[store]``.

    Items the test makes are files named after their key.  SyncEvolution's
    file backend tracks changes by mtime in whole seconds, so every write
    gets a later second than any before it.
    """

    def __init__(self, name: str, folders: Mapping[str, Path]) -> None:
        self.name = name
        self.folders = folders
        self._clock = time.time() + 2

    def put(self, store: str, key: str, text: str) -> None:
        path = self.folders[store] / key
        path.write_text(text, encoding="utf-8", newline="")
        self._clock = max(self._clock + 2, time.time() + 2)
        os.utime(path, (self._clock, self._clock))

    def delete(self, store: str, key: str) -> None:
        (self.folders[store] / key).unlink()

    def texts(self, store: str) -> list[str]:
        folder = self.folders[store]
        return [
            p.read_text(encoding="utf-8")
            for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")
        ]


class StoreSide:
    """syncmld's stores, edited through the store API (as the desktop would)."""

    def __init__(self, name: str, stores: Mapping[str, Store]) -> None:
        self.name = name
        self.stores = stores
        self.ids: dict[tuple[str, str], str] = {}

    def put(self, store: str, key: str, text: str) -> None:
        target = self.stores[store]
        if (store, key) in self.ids:
            target.replace(self.ids[store, key], text, etag=None)
        else:
            self.ids[store, key], _ = target.add(text)

    def delete(self, store: str, key: str) -> None:
        self.stores[store].delete(self.ids.pop((store, key)), etag=None)

    def texts(self, store: str) -> list[str]:
        target = self.stores[store]
        return [target.get(item_id)[0] for item_id, _ in target.list()]


def number(key: str) -> int:
    """Item number of a key: ``c3`` (made on the client) -> 3, ``s3`` (server) -> 103."""
    return int(key[1:]) + (0 if key[0] == "c" else 100)


@dataclass
class Model:
    """What each side should hold (item key -> version) and what changed since the last sync."""

    tag: str
    client: dict[str, str] = field(default_factory=dict)
    server: dict[str, str] = field(default_factory=dict)
    client_changed: set[str] = field(default_factory=set)
    server_changed: set[str] = field(default_factory=set)
    #: The server forgets its own changes a one-way-from-client sync did not
    #: send (SyncEvolution's server: its change tracking takes the state at
    #: the end of every session as the new baseline).
    server_forgets_unsent: bool = False

    def texts(self, side: dict[str, str], store: str) -> list[str]:
        """The items ``side`` should hold in ``store``."""
        return [make_item(store, self.tag, number(key), version) for key, version in side.items()]

    @staticmethod
    def _send(changed: set[str], source: dict[str, str], target: dict[str, str]) -> None:
        for key in changed:
            if key in source:
                target[key] = source[key]
            else:
                target.pop(key, None)
        changed.clear()

    def apply(self, mode: str) -> None:
        """Move the model the way ``mode`` moves the data."""
        if mode == "slow":
            # Nothing is known: items are matched and the union is kept.
            merged = {**self.server, **self.client}
            self.client, self.server = dict(merged), dict(merged)
        if mode in ("two-way", "one-way-from-client"):
            self._send(self.client_changed, self.client, self.server)
        if mode in ("two-way", "one-way-from-server"):
            self._send(self.server_changed, self.server, self.client)
        if mode == "one-way-from-client" and self.server_forgets_unsent:
            self.server_changed.clear()
        if mode == "refresh-from-client":
            self.server = dict(self.client)
        if mode == "refresh-from-server":
            self.client = dict(self.server)
        if mode in ("slow", "refresh-from-client", "refresh-from-server"):
            self.client_changed.clear()
            self.server_changed.clear()


#: Runs one sync in a mode; returns where its logs are (for failure messages).
SyncRunner = Callable[[str], Awaitable[str]]


class Scenario:
    """Edits both sides in step with the :class:`Model` and checks them after each sync."""

    def __init__(
        self,
        client: Side,
        server: Side,
        tag: str,
        sync: SyncRunner,
        *,
        stores: Sequence[str] = SE_STORES,
        server_forgets_unsent: bool = False,
    ) -> None:
        self.client = client
        self.server = server
        self.sync_once = sync
        self.stores = stores
        self.model = Model(tag, server_forgets_unsent=server_forgets_unsent)

    def _put(
        self, side: Side, changes: dict[str, str], changed: set[str], key: str, version: str
    ) -> None:
        for store in self.stores:
            side.put(store, key, make_item(store, self.model.tag, number(key), version))
        changes[key] = version
        changed.add(key)

    def client_put(self, key: str, version: str = "first version") -> None:
        self._put(self.client, self.model.client, self.model.client_changed, key, version)

    def server_put(self, key: str, version: str = "first version") -> None:
        self._put(self.server, self.model.server, self.model.server_changed, key, version)

    def client_delete(self, key: str) -> None:
        for store in self.stores:
            self.client.delete(store, key)
        del self.model.client[key]
        self.model.client_changed.add(key)

    def server_delete(self, key: str) -> None:
        for store in self.stores:
            self.server.delete(store, key)
        del self.model.server[key]
        self.model.server_changed.add(key)

    def check(self, what: str) -> None:
        """Both sides hold what the model says."""
        for store in self.stores:
            for side, items in ((self.server, self.model.server), (self.client, self.model.client)):
                want = canonical_set(self.model.texts(items, store))
                got = canonical_set(side.texts(store))
                if got != want:
                    missing = [i for i in want if i not in got]
                    extra = [i for i in got if i not in want]
                    raise AssertionError(
                        f"{what}: {side.name} {store} holds {len(got)} items, expected "
                        f"{len(want)}\nmissing: {missing}\nunexpected: {extra}"
                    )

    async def sync(self, mode: str) -> None:
        where = await self.sync_once(mode)
        self.model.apply(mode)
        self.check(f"{mode} ({where})")

    async def run_six_modes(self) -> None:
        """Every mode once, with edits on both sides before each, then a no-change two-way."""
        self.client_put("c0")
        self.client_put("c1")
        self.server_put("s0")
        await self.sync("slow")

        self.client_put("c0", "edited on the client")
        self.client_delete("c1")
        self.server_put("s0", "edited on the server")
        self.server_put("s1")
        await self.sync("two-way")

        self.client_put("c2")
        self.client_put("c0", "edited again on the client")
        self.server_put("s1", "edited on the server and sent later")
        await self.sync("one-way-from-client")

        self.server_put("s2")
        self.server_delete("s0")
        self.client_put("c2", "edited on the client and not sent")
        await self.sync("one-way-from-server")

        self.client_put("c3")
        await self.sync("refresh-from-client")

        self.client_put("c3", "edited on the client and overwritten")
        self.client_put("c4")
        self.server_put("s3")
        await self.sync("refresh-from-server")

        # Nothing changed: the states both sides committed agree.
        await self.sync("two-way")
