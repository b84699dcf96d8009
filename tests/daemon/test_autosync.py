"""Automatic sync when a paired phone connects, through a fake BlueZ on a second private bus.

The daemon watches the fake ``org.bluez`` (``system_bus``) and exports its
API on ``session_bus``.  When the phone's ``Connected`` turns true, the
daemon waits the settle delay and syncs over the Bluetooth link the fake
BlueZ hands over (a real socketpair); the phone's end runs
:class:`~tests.daemon.helpers.AlertedPhone`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from syncmld.daemon import Daemon
from syncmld.dbus.names import (
    DEVICE_INTERFACE,
    MANAGER_PATH,
    RUN_INTERFACE,
    Result,
    RunState,
    device_path,
)
from syncmld.transports.bluetooth import SYNCML_CLIENT_UUID, SYNCML_SERVER_UUID
from tests.buses import PrivateBus
from tests.daemon.helpers import (
    AlertedPhone,
    BusClient,
    make_config,
    phone_initiated_sync,
    vcard,
)
from tests.fakebluez import FakeBluez

ADDRESS = "00:1D:FE:12:34:56"
PHONE = device_path("k700i")
SETTLE = 0.4


@pytest.fixture
async def bluez(system_bus: PrivateBus) -> AsyncIterator[FakeBluez]:
    fake = FakeBluez(system_bus.address)
    await fake.start()
    yield fake
    await fake.stop()


async def answer_links(bluez: FakeBluez, phone: AlertedPhone) -> None:
    """Serve every link the daemon opens to the phone's SyncML Client service."""
    while True:
        sock = await bluez.take_peer(ADDRESS, timeout=3600)
        reader, writer = await asyncio.open_connection(sock=sock)
        await phone.serve(reader, writer)


def run_added(client: BusClient) -> list[str]:
    return [
        m.body[0]
        for m in client.signals
        if m.member == "InterfacesAdded" and m.path == MANAGER_PATH and RUN_INTERFACE in m.body[1]
    ]


async def test_connect_settle_sync_history_and_minimum_interval(
    tmp_path: Path, session_bus: PrivateBus, system_bus: PrivateBus, bluez: FakeBluez
) -> None:
    phone = AlertedPhone()
    for n in range(4):
        phone.store.add(vcard(n))
    bluez.add_device(ADDRESS, "K700i", paired=True, uuids=(SYNCML_CLIENT_UUID,))
    config = make_config(
        tmp_path,
        k700i={
            "address": ADDRESS,
            "stores": {"contacts": "Contacts"},
            "settle_delay": SETTLE,
            "min_interval": 600,
        },
    )
    daemon = Daemon(config, session_bus=session_bus.address, system_bus=system_bus.address)
    client = await BusClient.connect(session_bus.address)
    links = asyncio.create_task(answer_links(bluez, phone))
    try:
        await daemon.start()
        await bluez.wait_profiles(2)
        assert (
            "bluetooth"
            in (await client.get_all(MANAGER_PATH, "org.syncmld.Syncmld1.Manager"))["Features"]
        )
        device = await client.get_all(PHONE, DEVICE_INTERFACE)
        assert device["Paired"] is True and device["Connected"] is False

        connected_at = time.time()
        bluez.set_connected(ADDRESS, True)
        await client.wait_for(
            lambda m: (
                m.path == PHONE
                and m.member == "PropertiesChanged"
                and m.body[1].get("Connected") is not None
                and m.body[1]["Connected"].value is True
            )
        )
        await client.wait_for(lambda m: bool(run_added(client)))
        (run,) = run_added(client)
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
        assert props["Transport"] == "bluetooth" and props["Device"] == PHONE
        assert props["Started"] >= connected_at + SETTLE - 0.05
        assert props["ItemsDone"] == 4
        assert any(c.get("ItemsDone") for c in client.property_changes(run))
        assert len(list((tmp_path / "contacts").glob("*.vcf"))) == 4
        history = daemon.repository.history(phone.dev_id)
        assert len(history) == 1 and history[0].status == 200

        # Within the minimum interval, a new connection does not sync.  (The
        # device object's Connected may show the flip as one change: property
        # signals are coalesced.)
        seen = len(client.signals)
        bluez.set_connected(ADDRESS, False)
        bluez.set_connected(ADDRESS, True)
        await client.wait_for(
            lambda m: (
                client.signals.index(m) >= seen
                and m.path == PHONE
                and m.member == "PropertiesChanged"
                and "Connected" in m.body[1]
            )
        )
        await asyncio.sleep(SETTLE + 0.6)
        assert run_added(client) == [run]
        assert phone.sessions == 1
        assert len(daemon.repository.history(phone.dev_id)) == 1
    finally:
        links.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await links
        await daemon.stop()
        await client.close()


async def test_phone_started_sync_over_bluetooth_shows_up_as_a_run(
    tmp_path: Path, session_bus: PrivateBus, system_bus: PrivateBus, bluez: FakeBluez
) -> None:
    phone = AlertedPhone()
    for n in range(2):
        phone.store.add(vcard(n))
    bluez.add_device(ADDRESS, "K700i", paired=True, connected=True)
    config = make_config(
        tmp_path,
        k700i={"address": ADDRESS, "dev_id": phone.dev_id, "stores": {"contacts": "Contacts"}},
    )
    daemon = Daemon(config, session_bus=session_bus.address, system_bus=system_bus.address)
    client = await BusClient.connect(session_bus.address)
    try:
        await daemon.start()
        await bluez.wait_profiles(2)
        sock = await bluez.deliver_connection(ADDRESS, SYNCML_SERVER_UUID)
        reader, writer = await asyncio.open_connection(sock=sock)
        outcome = await phone_initiated_sync(phone.store, phone.dev_id, reader, writer)
        assert outcome.run.status == 200, outcome.run
        await client.wait_for(lambda m: bool(run_added(client)))
        (run,) = run_added(client)
        await client.wait_for(
            lambda m: (
                m.path == run
                and m.member == "PropertiesChanged"
                and "State" in m.body[1]
                and RunState(m.body[1]["State"].value).final
            )
        )
        props = await client.get_all(run, RUN_INTERFACE)
        assert props["Result"] == Result.OK and props["Transport"] == "bluetooth"
        assert props["Role"] == "server" and props["Peer"] == phone.dev_id
        assert props["Device"] == PHONE
        device = await client.get_all(PHONE, DEVICE_INTERFACE)
        assert device["Connected"] is True and device["LastResult"] == Result.OK
        assert len(list((tmp_path / "contacts").glob("*.vcf"))) == 2
    finally:
        await daemon.stop()
        await client.close()
