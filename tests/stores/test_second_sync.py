"""A sync with no changes writes nothing: every file keeps its mtime and inode.

Our client (:class:`syncmld.SyncClient`) and our server (:class:`HttpServer`)
talk over HTTP on 127.0.0.1, each with vdir folders (contacts and events),
the format converters of :mod:`syncmld.formats` and a SQLite state database.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncmld import SyncClient
from syncmld.engine.server import ServerConfig
from syncmld.engine.session import AuthMode, Datastore
from syncmld.formats.codec import FormatCodec
from syncmld.library import SyncResult
from syncmld.state.repository import StateRepository
from syncmld.stores.vdir import VdirStore
from syncmld.transports.http import HttpServer, make_app

KINDS = ("contacts", "events")


def vcard(uid: str, name: str) -> str:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nN:{name};Anna;;;\r\n"
        f"FN:Anna {name}\r\nEMAIL;TYPE=INTERNET:{uid}@example.org\r\nEND:VCARD\r\n"
    )


def event(uid: str, summary: str, start: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncmld//tests//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    """Relative path -> (mtime_ns, inode, size) of every file below ``root``."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith((".db", ".db-wal", ".db-shm", ".db-journal")):
                continue  # the state databases do change
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_mtime_ns, st.st_ino, st.st_size)
    return out


@dataclass
class Setup:
    root: Path
    client: SyncClient
    local: dict[str, VdirStore]
    remote: dict[str, VdirStore]


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    remote = {k: VdirStore.of_kind(tmp_path / "server" / k, k) for k in KINDS}
    local = {k: VdirStore.of_kind(tmp_path / "client" / k, k) for k in KINDS}
    remote["contacts"].add(vcard("shared-1", "Both"))
    remote["contacts"].add(vcard("server-1", "Server"))
    remote["events"].add(event("server-ev", "Dentist", "20260325T090000Z"))
    local["contacts"].add(vcard("shared-1", "Both"))
    for n in range(3):
        local["contacts"].add(vcard(f"client-{n}", f"Client{n}"))
    local["events"].add(event("client-ev", "Flight ✈ Berlin", "20260329T003000Z"))
    config = ServerConfig(
        datastores=tuple(
            Datastore(name=k, store=s, codec=FormatCodec(k)) for k, s in remote.items()
        ),
        auth=AuthMode.BASIC,
        passwords={"anna": "secret"},
    )
    with StateRepository(f"sqlite:///{tmp_path / 'server' / 'state.db'}") as repo:
        async with HttpServer(make_app(config, repo), port=0) as http:
            client = SyncClient(
                http.url,
                state_url=f"sqlite:///{tmp_path / 'client' / 'state.db'}",
                user="anna",
                password="secret",
            )
            for kind, store in local.items():
                client.add_store(kind, store)
            yield Setup(tmp_path, client, local, remote)


def writes(result: SyncResult) -> int:
    return sum(
        s.local_added
        + s.local_replaced
        + s.local_deleted
        + s.remote_added
        + s.remote_replaced
        + s.remote_deleted
        for s in result.stores
    )


async def test_second_sync_touches_no_file(setup: Setup) -> None:
    first = await setup.client.sync_async()
    assert first.ok, first.message
    assert [s.name for s in first.stores] == list(KINDS)
    for kind in KINDS:
        assert len(list(setup.local[kind].list())) == len(list(setup.remote[kind].list()))
    assert len(list(setup.local["contacts"].list())) == 5  # the shared one matched, not doubled
    before = snapshot(setup.root)

    second = await setup.client.sync_async()
    assert second.ok, second.message
    assert writes(second) == 0
    assert snapshot(setup.root) == before

    # After a real change, again only the changed file is written, and then nothing.
    item_id, etag = next(iter(setup.local["contacts"].list()))
    text, _ = setup.local["contacts"].get(item_id)
    setup.local["contacts"].replace(item_id, text.replace("Anna", "Anne"), etag=etag)
    third = await setup.client.sync_async()
    assert third.ok and third["contacts"].remote_replaced == 1 and writes(third) == 1
    after_change = snapshot(setup.root)
    changed = {k for k in after_change if after_change[k] != before.get(k)}
    assert changed == {
        f"client/contacts/{item_id}",
        *(
            f"server/contacts/{i}"
            for i, _ in setup.remote["contacts"].list()
            if "Anne" in setup.remote["contacts"].get(i)[0]
        ),
    }
    fourth = await setup.client.sync_async()
    assert fourth.ok and writes(fourth) == 0
    assert snapshot(setup.root) == after_change
