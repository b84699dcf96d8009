"""What the daemon reports about runs and itself: conflict resolutions, features,
client-role phases, bytes of server-role runs, device names in the history, the
HTTP switch, one warning when BlueZ is missing; and what it defers until the
first session (the state database, the format converters).
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import MessageType

from syncmld.config import ConfigError, _DeferredCodec, parse
from syncmld.daemon import _RESOLUTIONS, Daemon
from syncmld.dbus.names import (
    CONFLICT_INTERFACE,
    DEVICE_INTERFACE,
    MANAGER_INTERFACE,
    MANAGER_PATH,
    RUN_INTERFACE,
    Phase,
    Result,
    RunState,
    device_path,
)
from syncmld.dbus.service import RunObject
from syncmld.engine.decide import Resolution
from syncmld.engine.server import ServerConfig
from syncmld.engine.session import ConflictResolved, Datastore
from syncmld.engine.state import RunRecord
from syncmld.engine.store import VCARD_21, VCARD_30, MemoryStore
from syncmld.state.repository import StateRepository
from syncmld.transports.http import HttpServer, make_app
from tests.buses import PrivateBus
from tests.daemon.helpers import (
    AlertedPhone,
    BusClient,
    make_config,
    phone_initiated_sync,
    vcard,
)

INTERFACES = Path(__file__).parents[2] / "syncmld" / "dbus" / "interfaces"
OFFICE = device_path("office")


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[HttpServer]:
    """A SyncML server (our own server role over HTTP) holding three contacts."""
    store = MemoryStore(content_types=(VCARD_30,))
    for n in range(3):
        store.add(vcard(n))
    with StateRepository(f"sqlite:///{tmp_path / 'server.db'}") as repo:
        app = make_app(ServerConfig(datastores=(Datastore(name="card", store=store),)), repo)
        async with HttpServer(app, port=0) as server:
            yield server


@pytest.fixture
async def client(session_bus: PrivateBus) -> AsyncIterator[BusClient]:
    c = await BusClient.connect(session_bus.address)
    yield c
    await c.close()


def client_role_config(tmp_path: Path, url: str) -> dict[str, Any]:
    return {
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "stores": {"contacts": {"kind": "contacts", "path": str(tmp_path / "contacts")}},
        "http": {"port": 0},
        "servers": {"office": {"url": url, "sync": [{"local": "contacts", "remote": "card"}]}},
    }


async def until_final(client: BusClient, run: str) -> dict[str, Any]:
    await client.wait_for(
        lambda m: (
            m.path == run
            and m.member == "PropertiesChanged"
            and "State" in m.body[1]
            and RunState(m.body[1]["State"].value).final
        )
    )
    return await client.get_all(run, RUN_INTERFACE)


def test_every_engine_resolution_has_its_documented_name() -> None:
    xml = (INTERFACES / "org.syncmld.Syncmld1.Conflict.xml").read_text()
    doc = next(line for line in xml.splitlines() if "Resolution: what the policy did" in line)
    documented = set(re.findall(r'"([a-z-]+)"', doc))
    assert documented == {"merge", "phone-wins", "desktop-wins", "keep-both"}
    assert {_RESOLUTIONS[str(r)] for r in Resolution} == documented


async def test_client_role_run_phases_bytes_features_and_conflict_names(
    tmp_path: Path,
    session_bus: PrivateBus,
    client: BusClient,
    office: HttpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every property change is signalled at once, so each phase can be seen.
    monkeypatch.setattr(RunObject, "min_interval", 0.0)
    daemon = Daemon(
        parse(client_role_config(tmp_path, office.url)),
        session_bus=session_bus.address,
        system_bus="",
    )
    await daemon.start()
    try:
        manager = await client.get_all(MANAGER_PATH, MANAGER_INTERFACE)
        assert "client" in manager["Features"] and "http-server" in manager["Features"]

        reply = await client.call(OFFICE, DEVICE_INTERFACE, "Sync", "ua{sv}", [0, {}])
        assert reply.message_type == MessageType.METHOD_RETURN, reply.body
        run = reply.body[0]
        props = await until_final(client, run)
        assert props["Result"] == Result.OK, props
        assert props["BytesSent"] > 0 and props["BytesReceived"] > 0
        phases: list[int] = []
        for change in client.property_changes(run):
            if "Phase" in change and (not phases or phases[-1] != change["Phase"]):
                phases.append(change["Phase"])
        # Alerts answered, our changes sent, the server's received, our Map sent.
        assert phases == [Phase.INIT, Phase.SENDING, Phase.RECEIVING, Phase.MAPPING, Phase.FINISHED]

        # The engine's "remote-won" is the documented "phone-wins".
        peer = daemon.peers["office"]
        run_obj = daemon.runs[run]
        daemon._add_conflict(peer, run_obj, ConflictResolved("contacts", "a", "b", "remote-won"))
        (path,) = [p for p in daemon.dbus.objects if "/conflicts/" in p]
        conflict = await client.get_all(path, CONFLICT_INTERFACE)
        assert conflict["Resolution"] == "phone-wins"

        # The history names the configured device.
        reply = await client.call(MANAGER_PATH, MANAGER_INTERFACE, "GetHistory", "uu", [0, 0])
        (entry,) = reply.body[0]
        assert entry["device"].value == office.url and entry["device-name"].value == "office"
    finally:
        await daemon.stop()


async def test_server_role_runs_count_bytes_and_history_names_devices(
    tmp_path: Path, session_bus: PrivateBus, client: BusClient
) -> None:
    phone = AlertedPhone()
    await phone.listen()
    for n in range(4):
        phone.store.add(vcard(n))
    config = make_config(
        tmp_path,
        phone={
            "transport": "obex-tcp",
            "host": "127.0.0.1",
            "port": phone.port,
            "dev_id": phone.dev_id,
            "stores": {"contacts": "Contacts"},
        },
    )
    daemon = Daemon(config, session_bus=session_bus.address, system_bus="")
    await daemon.start()
    try:
        manager = await client.get_all(MANAGER_PATH, MANAGER_INTERFACE)
        assert "client" not in manager["Features"]
        reply = await client.call(device_path("phone"), DEVICE_INTERFACE, "Sync", "ua{sv}", [0, {}])
        assert reply.message_type == MessageType.METHOD_RETURN, reply.body
        run = reply.body[0]
        props = await until_final(client, run)
        assert props["Result"] == Result.OK, props
        # Four vCards came in from the phone; our replies went out.
        assert props["BytesReceived"] > 4 * len(vcard(0)) // 2
        assert props["BytesSent"] > 0

        # A session with a device nobody configured: no name.
        now = props["Finished"] + 1
        daemon.repository.record_run(RunRecord(dev_id="IMEI:99", role="server", started=now))
        reply = await client.call(MANAGER_PATH, MANAGER_INTERFACE, "GetHistory", "uu", [0, 0])
        names = {e["device"].value: e["device-name"].value for e in reply.body[0]}
        assert names == {"IMEI:99": "", phone.dev_id: "phone"}
        reply = await client.call(
            device_path("phone"), DEVICE_INTERFACE, "GetHistory", "uu", [0, 0]
        )
        assert [e["device-name"].value for e in reply.body[0]] == ["phone"]
    finally:
        await daemon.stop()
        await phone.close()


async def test_http_listener_can_be_switched_off(tmp_path: Path) -> None:
    config = parse(
        {
            "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
            "http": {"enabled": False, "port": 0},
            "obex": {"enabled": True, "port": 0},
        }
    )
    assert config.http.enabled is False
    daemon = Daemon(config, session_bus="", system_bus="")
    await daemon.start()
    try:
        assert daemon.http is None
        assert daemon.features == ["obex-tcp"]
        assert daemon.describe().startswith("serving OBEX/TCP on 127.0.0.1:")
    finally:
        await daemon.stop()
    assert parse({}).http.enabled is True
    with pytest.raises(ConfigError, match=r"http\.enabled.*true or false"):
        parse({"http": {"enabled": "no"}})


async def test_without_bluez_one_warning(
    tmp_path: Path, system_bus: PrivateBus, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(
        tmp_path, k700i={"address": "00:1D:FE:12:34:56", "stores": {"contacts": "Contacts"}}
    )
    daemon = Daemon(config, session_bus="", system_bus=system_bus.address)
    with caplog.at_level(logging.INFO, logger="syncmld"):
        await daemon.start()
        try:
            assert "bluetooth" in daemon.features and "bluetooth-watch" in daemon.features
            assert "Bluetooth (waiting for BlueZ)" in daemon.describe()
        finally:
            await daemon.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([w for w in warnings if "BlueZ" in w]) == 1, warnings


def test_waiting_daemon_imports_no_format_converters() -> None:
    code = (
        "import sys, syncmld.daemon\n"
        "print(sorted(m for m in ('icalendar', 'syncmld.formats') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


async def test_state_and_codecs_are_opened_by_the_first_session(tmp_path: Path) -> None:
    config = parse(
        {
            "state": {"url": f"sqlite:///{tmp_path / 'state' / 'state.db'}"},
            "stores": {"contacts": {"kind": "contacts", "path": str(tmp_path / "contacts")}},
            "http": {"enabled": False},
            "obex": {"enabled": True, "port": 0},
        }
    )
    daemon = Daemon(config, session_bus="", system_bus="")
    await daemon.start()
    try:
        # Nothing needed the database or the converters yet; the directory is there.
        assert daemon._state._repository is None
        assert (tmp_path / "state").is_dir()
        assert daemon.runner is not None and daemon.obex is not None
        (datastore,) = daemon.runner.config.datastores
        assert isinstance(datastore.codec, _DeferredCodec) and datastore.codec._codec is None

        # A vCard 2.1 phone syncs over OBEX/TCP: stored as vCard 3.0 on the desktop.
        phone_store = MemoryStore(content_types=(VCARD_21,))
        phone_store.add(
            "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Nowak;Ewa\r\nFN:Ewa Nowak\r\n"
            "TEL;CELL:+48601000001\r\nEND:VCARD\r\n"
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.obex.port)
        outcome = await phone_initiated_sync(phone_store, "IMEI:1", reader, writer)
        assert outcome.run.status == 200, outcome.run
        (card,) = (tmp_path / "contacts").glob("*.vcf")
        assert "VERSION:3.0" in card.read_text()
        assert datastore.codec._codec is not None
        assert daemon._state._repository is not None
        assert [r.status for r in daemon.repository.history("IMEI:1")] == [200]
    finally:
        await daemon.stop()
    assert daemon._state._repository is None
