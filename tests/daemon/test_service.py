"""The daemon in-process on a private session bus: syncs over D-Bus, progress, history, Cancel.

The phone is :class:`~tests.daemon.helpers.AlertedPhone` on OBEX/TCP; the
daemon alerts it (PC-initiated sync) when ``Device.Sync`` is called.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import MessageType, Variant

from syncmld.daemon import Daemon
from syncmld.dbus.names import (
    DEVICE_INTERFACE,
    MANAGER_INTERFACE,
    MANAGER_PATH,
    RUN_INTERFACE,
    Error,
    Result,
    RunState,
    device_path,
)
from tests.buses import PrivateBus
from tests.daemon.helpers import AlertedPhone, BusClient, make_config, vcard

PHONE = device_path("phone")

StartDaemon = Callable[..., Awaitable[Daemon]]


@pytest.fixture
async def phone() -> AsyncIterator[AlertedPhone]:
    p = AlertedPhone()
    await p.listen()
    yield p
    await p.close()


@pytest.fixture
async def start_daemon(tmp_path: Path, session_bus: PrivateBus) -> AsyncIterator[StartDaemon]:
    started: list[Daemon] = []

    async def start(**devices: dict[str, Any]) -> Daemon:
        daemon = Daemon(
            make_config(tmp_path, **devices),
            session_bus=session_bus.address,
            system_bus="",
            run_retention=30,
        )
        await daemon.start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        await daemon.stop()


@pytest.fixture
async def client(session_bus: PrivateBus) -> AsyncIterator[BusClient]:
    c = await BusClient.connect(session_bus.address)
    yield c
    await c.close()


def tcp_phone(phone: AlertedPhone) -> dict[str, Any]:
    return {
        "transport": "obex-tcp",
        "host": "127.0.0.1",
        "port": phone.port,
        "dev_id": phone.dev_id,
        "stores": {"contacts": "Contacts"},
    }


async def sync(client: BusClient, mode: int = 0, **options: Variant) -> tuple[str, dict[str, Any]]:
    reply = await client.call(PHONE, DEVICE_INTERFACE, "Sync", "ua{sv}", [mode, options])
    assert reply.message_type == MessageType.METHOD_RETURN, reply.body
    path, props = reply.body
    return path, {k: v.value for k, v in props.items()}


async def finished(client: BusClient, run: str) -> dict[str, Any]:
    await client.wait_for(
        lambda m: (
            m.path == run
            and m.member == "PropertiesChanged"
            and "State" in m.body[1]
            and RunState(m.body[1]["State"].value).final
        )
    )
    return await client.get_all(run, RUN_INTERFACE)


async def test_sync_reports_progress_and_lands_in_history(
    start_daemon: StartDaemon, client: BusClient, phone: AlertedPhone, tmp_path: Path
) -> None:
    for n in range(5):
        phone.store.add(vcard(n))
    await start_daemon(phone=tcp_phone(phone))

    run, initial = await sync(client)
    started = time.monotonic()
    # The run exists at reply time, with everything a client needs to follow it.
    assert run.startswith(MANAGER_PATH + "/runs/")
    assert initial["Device"] == PHONE
    assert initial["State"] in (RunState.CONNECTING, RunState.RUNNING)
    assert "contacts" in initial["PerStore"]

    props = await finished(client, run)
    elapsed = time.monotonic() - started
    assert props["State"] == RunState.DONE and props["Result"] == Result.OK, props
    assert props["Status"] == 200 and props["ErrorName"] == ""
    assert props["ItemsDone"] == 5
    assert props["PerStore"]["contacts"]["local-added"] == 5
    assert len(list((tmp_path / "contacts").glob("*.vcf"))) == 5

    # Progress was reported while running, at most two signals a second
    # (plus the final one, which is sent at once).
    changes = client.property_changes(run)
    assert any(c.get("ItemsDone") for c in changes)
    assert len(changes) <= 2 * elapsed + 2, (len(changes), elapsed)

    # InterfacesAdded came from the manager's path, as ObjectManager requires.
    added = [m for m in client.signals if m.member == "InterfacesAdded" and m.path == MANAGER_PATH]
    assert [m.body[0] for m in added] == [run]
    assert RUN_INTERFACE in added[0].body[1]

    device = await client.get_all(PHONE, DEVICE_INTERFACE)
    assert device["CurrentRun"] == "/" and device["LastResult"] == Result.OK
    assert device["LastSync"] > 0

    reply = await client.call(PHONE, DEVICE_INTERFACE, "GetHistory", "uu", [0, 10])
    (entry,) = [{k: v.value for k, v in e.items()} for e in reply.body[0]]
    assert entry["device"] == phone.dev_id and entry["result"] == Result.OK
    assert entry["stores"][0]["local-added"].value == 5
    reply = await client.call(MANAGER_PATH, MANAGER_INTERFACE, "GetHistory", "uu", [1, 10])
    assert reply.body == [[]]  # paging: nothing after the first entry


async def test_cancel_mid_sync_leaves_the_state_unchanged(
    start_daemon: StartDaemon, client: BusClient, phone: AlertedPhone, tmp_path: Path
) -> None:
    for n in range(3):
        phone.store.add(vcard(n))
    daemon = await start_daemon(phone=tcp_phone(phone))
    run, _ = await sync(client)
    assert (await finished(client, run))["Result"] == Result.OK
    before = daemon.repository.load_peer(phone.dev_id)
    assert before is not None

    phone.store.add(vcard(10))
    release = asyncio.Event()
    phone.gate = (1, release)
    run, _ = await sync(client)
    await asyncio.wait_for(phone.waiting.wait(), 10)
    reply = await client.call(run, RUN_INTERFACE, "Cancel")
    assert reply.message_type == MessageType.METHOD_RETURN, reply.body
    release.set()
    props = await finished(client, run)
    assert props["State"] == RunState.CANCELLED and props["Result"] == Result.CANCELLED
    assert props["ErrorName"] == Error.CANCELLED.dbus_name

    # Anchors and item states are those of the last completed session (the
    # engine may note where to resume, nothing else).
    after = daemon.repository.load_peer(phone.dev_id)
    assert after is not None
    for old, new in zip(before.pairs.values(), after.pairs.values(), strict=True):
        assert (new.local_anchor, new.remote_anchor, new.last_mode) == (
            old.local_anchor,
            old.remote_anchor,
            old.last_mode,
        )
        assert new.items == old.items
    assert len(list((tmp_path / "contacts").glob("*.vcf"))) == 3
    history = daemon.repository.history(phone.dev_id)
    assert [run_.message for run_ in history][:1] == ["cancelled"]

    # A finished run cannot be cancelled again.
    reply = await client.call(run, RUN_INTERFACE, "Cancel")
    assert reply.error_name == Error.NOT_SUPPORTED.dbus_name


async def test_bad_calls_get_documented_errors(
    start_daemon: StartDaemon, client: BusClient, phone: AlertedPhone
) -> None:
    await start_daemon(phone=tcp_phone(phone))
    cases: list[tuple[int, dict[str, Variant], Error]] = [
        (99, {}, Error.INVALID_ARGS),
        (0, {"colour": Variant("s", "red")}, Error.INVALID_ARGS),
        (0, {"stores": Variant("as", ["notes"])}, Error.INVALID_ARGS),
        (0, {"transport": Variant("s", "http")}, Error.NOT_SUPPORTED),
    ]
    for mode, options, error in cases:
        reply = await client.call(PHONE, DEVICE_INTERFACE, "Sync", "ua{sv}", [mode, options])
        assert reply.error_name == error.dbus_name, (mode, options, reply.body)

    release = asyncio.Event()
    phone.gate = (1, release)
    run, _ = await sync(client)
    reply = await client.call(PHONE, DEVICE_INTERFACE, "Sync", "ua{sv}", [0, {}])
    assert reply.error_name == Error.BUSY.dbus_name
    release.set()
    assert (await finished(client, run))["Result"] == Result.OK


async def test_unreachable_phone_fails_the_run_and_asks_for_attention(
    start_daemon: StartDaemon, client: BusClient, phone: AlertedPhone
) -> None:
    await phone.close()  # nobody listens on the port any more
    await start_daemon(phone=tcp_phone(phone))
    run, _ = await sync(client)
    props = await finished(client, run)
    assert props["State"] == RunState.FAILED and props["Result"] == Result.FAILED
    assert props["ErrorName"] == Error.TRANSPORT_FAILED.dbus_name
    assert "cannot connect" in props["ErrorDetail"]
    signal = await client.wait_for(lambda m: m.member == "AttentionNeeded")
    assert signal.path == PHONE and signal.body[0] == 4


async def test_stopping_aborts_the_session_in_flight(
    start_daemon: StartDaemon, client: BusClient, phone: AlertedPhone, tmp_path: Path
) -> None:
    phone.store.add(vcard(1))
    daemon = await start_daemon(phone=tcp_phone(phone))
    release = asyncio.Event()
    phone.gate = (1, release)
    run, _ = await sync(client)
    await asyncio.wait_for(phone.waiting.wait(), 10)
    await daemon.stop()
    release.set()
    obj = daemon.runs[run]
    assert RunState(obj.values["State"]).final and obj.values["Result"] != Result.OK
    # Nothing committed: no anchors, no item states (the engine may note
    # where to resume), nothing written locally, and the broken-off run is
    # in the history.
    daemon.repository.open()
    try:
        state = daemon.repository.load_peer(phone.dev_id)
        for pair in state.pairs.values() if state is not None else ():
            assert pair.local_anchor is None and pair.remote_anchor is None
            assert pair.items == {}
        (record,) = daemon.repository.history(phone.dev_id)
        assert record.status != 200
    finally:
        daemon.repository.close()
    assert list((tmp_path / "contacts").glob("*.vcf")) == []


async def test_unexpected_slow_sync_asks_for_attention(
    start_daemon: StartDaemon, client: BusClient, phone: AlertedPhone
) -> None:
    phone.store.add(vcard(1))
    daemon = await start_daemon(phone=tcp_phone(phone))
    run, _ = await sync(client)
    assert (await finished(client, run))["Result"] == Result.OK
    assert not [m for m in client.signals if m.member == "AttentionNeeded"]

    # Our state of the phone is gone (a restored backup, a new disk): the
    # phone's anchors no longer match and the engine falls back to a slow sync.
    assert daemon.repository.forget(phone.dev_id)
    run, _ = await sync(client)
    assert (await finished(client, run))["Result"] == Result.OK
    signal = await client.wait_for(lambda m: m.member == "AttentionNeeded")
    assert signal.path == PHONE and signal.body[0] == 2, signal.body
    device = await client.get_all(PHONE, DEVICE_INTERFACE)
    assert device["AttentionReason"] == 2
    reply = await client.call(PHONE, DEVICE_INTERFACE, "ClearAttention")
    assert reply.message_type == MessageType.METHOD_RETURN
    assert (await client.get_all(PHONE, DEVICE_INTERFACE))["AttentionReason"] == 0


async def test_keeps_syncing_when_the_session_bus_goes_away(
    start_daemon: StartDaemon, session_bus: PrivateBus, phone: AlertedPhone, tmp_path: Path
) -> None:
    phone.store.add(vcard(1))
    daemon = await start_daemon(phone=tcp_phone(phone))
    session_bus.close()
    await asyncio.sleep(0.2)
    run = daemon.start_sync(daemon.peers["phone"], 0)
    async with asyncio.timeout(20):
        while not run.final:
            await asyncio.sleep(0.05)
    assert run.values["Result"] == Result.OK
    assert len(list((tmp_path / "contacts").glob("*.vcf"))) == 1
