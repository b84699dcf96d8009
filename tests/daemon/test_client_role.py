"""Syncs the daemon starts as a SyncML client (``[servers.*]``), and conflict objects.

The server is our own HTTP server role on 127.0.0.1 with a memory store and
its own state database: a real peer over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from dbus_fast import MessageType

from syncmld.config import parse
from syncmld.daemon import Daemon
from syncmld.dbus.names import (
    CONFLICT_INTERFACE,
    DEVICE_INTERFACE,
    MANAGER_PATH,
    RUN_INTERFACE,
    Error,
    Result,
    RunState,
    device_path,
)
from syncmld.engine.server import ServerConfig
from syncmld.engine.session import ConflictResolved, Datastore
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.state.repository import StateRepository
from syncmld.transports.http import HttpServer, make_app
from tests.buses import PrivateBus
from tests.daemon.helpers import BusClient, vcard

OFFICE = device_path("office")


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[tuple[HttpServer, MemoryStore]]:
    store = MemoryStore(content_types=(VCARD_30,))
    for n in range(3):
        store.add(vcard(n))
    with StateRepository(f"sqlite:///{tmp_path / 'server.db'}") as repo:
        app = make_app(ServerConfig(datastores=(Datastore(name="card", store=store),)), repo)
        async with HttpServer(app, port=0) as server:
            yield server, store


async def test_sync_with_a_server_over_dbus(
    tmp_path: Path, session_bus: PrivateBus, office: tuple[HttpServer, MemoryStore]
) -> None:
    server, _ = office
    config = parse(
        {
            "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
            "stores": {"contacts": {"kind": "contacts", "path": str(tmp_path / "contacts")}},
            "http": {"port": 0},
            "servers": {
                "office": {
                    "url": server.url,
                    "sync": [{"local": "contacts", "remote": "card"}],
                }
            },
        }
    )
    daemon = Daemon(config, session_bus=session_bus.address, system_bus="")
    client = await BusClient.connect(session_bus.address)
    await daemon.start()
    try:
        device = await client.get_all(OFFICE, DEVICE_INTERFACE)
        assert device["Kind"] == "server" and device["Transport"] == "http"
        assert device["Stores"] == {"contacts": "card"}

        reply = await client.call(OFFICE, DEVICE_INTERFACE, "Sync", "ua{sv}", [0, {}])
        assert reply.message_type == MessageType.METHOD_RETURN, reply.body
        run = reply.body[0]
        assert reply.body[1]["Role"].value == "client"
        await client.wait_for(
            lambda m: (
                m.path == run
                and m.member == "PropertiesChanged"
                and "State" in m.body[1]
                and RunState(m.body[1]["State"].value).final
            )
        )
        props = await client.get_all(run, RUN_INTERFACE)
        assert props["Result"] == Result.OK, props
        assert props["BytesSent"] > 0 and props["BytesReceived"] > 0
        assert props["PerStore"]["contacts"]["local-added"] == 3
        assert len(list((tmp_path / "contacts").glob("*.vcf"))) == 3
        assert [r.status for r in daemon.repository.history(server.url)] == [200]
        assert daemon.repository.load_peer(server.url) is not None
    finally:
        await daemon.stop()
        await client.close()


async def test_conflict_objects_are_resolved_and_removed(
    tmp_path: Path, session_bus: PrivateBus, office: tuple[HttpServer, MemoryStore]
) -> None:
    server, _ = office
    config = parse(
        {
            "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
            "stores": {"contacts": {"kind": "contacts", "path": str(tmp_path / "contacts")}},
            "http": {"port": 0},
            "servers": {
                "office": {"url": server.url, "sync": [{"local": "contacts", "remote": "card"}]}
            },
        }
    )
    daemon = Daemon(config, session_bus=session_bus.address, system_bus="")
    client = await BusClient.connect(session_bus.address)
    await daemon.start()
    try:
        peer = daemon.peers["office"]
        run = daemon.start_sync(peer, 0)
        await client.wait_for(
            lambda m: (
                m.path == run.path
                and m.member == "PropertiesChanged"
                and "State" in m.body[1]
                and RunState(m.body[1]["State"].value).final
            )
        )
        state = daemon.repository.load_peer(server.url)
        assert state is not None
        local_id = next(iter(state.pairs["contacts"].items))
        for k in range(2):
            daemon._add_conflict(peer, run, ConflictResolved("contacts", local_id, str(k), "merge"))
        assert (await client.get_all(OFFICE, DEVICE_INTERFACE))["ConflictCount"] == 2
        first, second = [p for p in daemon.dbus.objects if "/conflicts/" in p]
        props = await client.get_all(first, CONFLICT_INTERFACE)
        assert props["Store"] == "contacts" and props["Resolution"] == "merge"

        reply = await client.call(first, CONFLICT_INTERFACE, "Resolve", "u", [9])
        assert reply.error_name == Error.INVALID_ARGS.dbus_name
        reply = await client.call(first, CONFLICT_INTERFACE, "Resolve", "u", [0])
        assert reply.message_type == MessageType.METHOD_RETURN, reply.body
        removed = await client.wait_for(
            lambda m: m.member == "InterfacesRemoved" and m.path == MANAGER_PATH
        )
        assert removed.body == [first, [CONFLICT_INTERFACE]]

        # Keep the desktop's version: the next sync sees the item as changed here.
        reply = await client.call(second, CONFLICT_INTERFACE, "Resolve", "u", [1])
        assert reply.message_type == MessageType.METHOD_RETURN, reply.body
        after = daemon.repository.load_peer(server.url)
        assert after is not None and after.pairs["contacts"].items[local_id].etag == ""
        await client.wait_for(
            lambda m: (
                m.path == OFFICE
                and m.member == "PropertiesChanged"
                and "ConflictCount" in m.body[1]
                and m.body[1]["ConflictCount"].value == 0
            )
        )
    finally:
        await daemon.stop()
        await client.close()
