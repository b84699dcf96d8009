"""Bluetooth through BlueZ's D-Bus API, against a fake BlueZ on a private bus.

The fake (:mod:`tests.fakebluez`) owns ``org.bluez`` on a real ``dbus-daemon``
and hands over real ``socketpair()`` fds through ``Profile1.NewConnection``;
the test keeps the other end and plays the phone on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.server import ServerConfig, notification
from syncmld.engine.session import Datastore, SessionFinished
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.obex.client import ObexClient
from syncmld.obex.events import ConnectResult, Disconnected, GetResult, PutResult
from syncmld.obex.events import Event as ObexEvent
from syncmld.obex.packets import SYNCML_TARGET
from syncmld.obex.server import ServerConfig as ObexServerConfig
from syncmld.obex.syncml import (
    SAN_TYPE,
    SYNCML_TYPES,
    MessageReceived,
    SessionEnded,
    SyncmlObexServerBinding,
)
from syncmld.protocol.codec import Encoding
from syncmld.protocol.codes import SyncMode
from syncmld.protocol.san import parse_san
from syncmld.state import StateRepository
from syncmld.transports.bluetooth import (
    CLIENT_PROFILE_PATH,
    SERVER_PROFILE_PATH,
    SYNCML_CLIENT_UUID,
    SYNCML_SERVER_UUID,
    BluetoothError,
    BluetoothProfiles,
    BluezWatcher,
    DeviceInfo,
)
from syncmld.transports.obex import run_server_alerted_sync, serve_obex_connection
from syncmld.transports.runner import SessionRunner
from tests.buses import PrivateBus
from tests.fakebluez import FakeBluez

PHONE = "00:11:22:33:44:55"
PHONE_PATH = "/org/bluez/hci0/dev_00_11_22_33_44_55"
TIMEOUT = 10.0


@pytest.fixture
async def bluez(system_bus: PrivateBus) -> AsyncIterator[FakeBluez]:
    fake = FakeBluez(system_bus.address)
    await fake.start()
    yield fake
    await fake.stop()


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


async def stream(sock: socket.socket) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock.setblocking(False)
    return await asyncio.open_connection(sock=sock)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()


async def until(check: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not check():
            await asyncio.sleep(0.01)


async def echo(
    path: str, address: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """A server callback that answers each chunk with the device address and the chunk."""
    while data := await reader.read(4096):
        writer.write(address.encode() + b" " + data)
        await writer.drain()


# ------------------------------------------------------------------ registration


async def test_profiles_registered_with_uuid_options_and_record(
    bluez: FakeBluez, system_bus: PrivateBus
) -> None:
    profiles = BluetoothProfiles(system_bus.address, channel=21, on_server_connection=echo)
    await profiles.start()
    try:
        assert profiles.registered
        server = bluez.profile(SYNCML_SERVER_UUID)
        client = bluez.profile(SYNCML_CLIENT_UUID)
        assert bluez.warnings == []  # every option had BlueZ's D-Bus type
        assert server.path == SERVER_PROFILE_PATH and client.path == CLIENT_PROFILE_PATH
        assert server.option("Role") == "server" and client.option("Role") == "client"
        assert server.option("Channel") == 21
        assert server.option("RequireAuthentication") is True
        assert client.option("RequireAuthentication") is True
        assert server.option("AutoConnect") is False
        assert client.option("Channel") is None and client.option("ServiceRecord") is None
        # The SDP record: service class, L2CAP + RFCOMM channel + OBEX, browse group, name.
        record = ET.fromstring(server.option("ServiceRecord"))
        attrs = {a.get("id"): a for a in record.findall("attribute")}
        assert [u.get("value") for u in attrs["0x0001"].iter("uuid")] == [SYNCML_SERVER_UUID]
        protos = attrs["0x0004"].findall("sequence/sequence")
        assert [p.find("uuid").get("value") for p in protos] == ["0x0100", "0x0003", "0x0008"]
        assert int(protos[1].find("uint8").get("value"), 16) == 21
        assert attrs["0x0100"].find("text").get("value") == "SyncML Server"
    finally:
        await profiles.stop()
    assert bluez.profiles == []  # unregistered on stop


def test_channel_out_of_range() -> None:
    with pytest.raises(ValueError, match="between 1 and 30"):
        BluetoothProfiles(channel=31)


async def test_stale_registration_is_replaced(bluez: FakeBluez, system_bus: PrivateBus) -> None:
    profiles = BluetoothProfiles(system_bus.address)
    await profiles.start()
    try:
        first = bluez.register_calls
        # BlueZ still has our profiles (as after a lost reply): AlreadyExists, then
        # Unregister + Register again.
        assert profiles._owner is not None
        await profiles._register(profiles._owner)
        assert bluez.register_calls == first + 4
        assert len(bluez.profiles) == 2 and profiles.registered
    finally:
        await profiles.stop()


async def test_system_bus_unreachable(tmp_path: Path) -> None:
    profiles = BluetoothProfiles(f"unix:path={tmp_path}/nothing")
    with pytest.raises(BluetoothError, match="cannot connect to unix:path="):
        await profiles.start()
    watcher = BluezWatcher(f"unix:path={tmp_path}/nothing")
    with pytest.raises(BluetoothError, match="cannot connect"):
        await watcher.start()


# ------------------------------------------------------------------ phone-initiated


async def test_phone_connection_reaches_the_callback(
    bluez: FakeBluez, system_bus: PrivateBus
) -> None:
    seen: list[tuple[str, str]] = []

    async def callback(
        path: str, address: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        seen.append((path, address))
        await echo(path, address, reader, writer)

    bluez.add_device(PHONE, "Nokia 6230i", uuids=(SYNCML_CLIENT_UUID,))
    profiles = BluetoothProfiles(system_bus.address, on_server_connection=callback)
    await profiles.start()
    try:
        phone = await bluez.deliver_connection(PHONE, SYNCML_SERVER_UUID)
        reader, writer = await stream(phone)
        writer.write(b"hello")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(23), TIMEOUT) == f"{PHONE} hello".encode()
        assert seen == [(PHONE_PATH, PHONE)]
        await close(writer)  # the phone hangs up: the callback returns, the link is closed
        await until(lambda: not profiles._links, "the link to be closed")
    finally:
        await profiles.stop()


def vcard(n: int) -> str:
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:bt-{n}\r\nN:Person{n};Anna;;;\r\nFN:Anna Person{n}\r\n"
        f"TEL;TYPE=CELL:+4915200{n:05d}\r\nEND:VCARD\r\n"
    )


def contents(store: MemoryStore) -> list[str]:
    return sorted(store.get(i)[0].replace("\r\n", "\n").strip() for i, _ in store.list())


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[StateRepository]:
    with StateRepository(f"sqlite:///{tmp_path / 'state.db'}") as r:
        yield r


async def obex_round(
    client: ObexClient, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> list[ObexEvent]:
    """Send what ``client`` queued, feed it the answers until it reports something."""
    while True:
        if out := client.data_to_send():
            writer.write(out)
            await writer.drain()
        data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
        events = client.receive_data(data)
        if events or not data:
            return events


def phone_session(
    store: MemoryStore, *, server_alerted: bool = False, session_id: str = "1"
) -> ClientSession:
    config = ClientConfig(
        url="PC Suite",
        dev_id="IMEI:350000000000001",
        stores=(
            ClientStore(datastore=Datastore(name="Contacts", store=store), remote_uri="contacts"),
        ),
        encoding=Encoding.WBXML,
        server_alerted=server_alerted,
    )
    return ClientSession(config, peer=None, now=1_700_000_000.0, session_id=session_id)


async def phone_syncs(sock: socket.socket, store: MemoryStore) -> SessionFinished:
    """A phone's "sync with PC": OBEX CONNECT SYNCML-SYNC, PUT each message, GET the reply."""
    reader, writer = await stream(sock)
    cs = phone_session(store)
    obex = ObexClient()
    ctype = Encoding.WBXML.content_type
    try:
        obex.connect(SYNCML_TARGET)
        (ev,) = await obex_round(obex, reader, writer)
        assert isinstance(ev, ConnectResult) and ev.ok, ev
        msg: bytes | None = cs.start()
        while msg is not None:
            obex.put(ctype, msg)
            (ev,) = await obex_round(obex, reader, writer)
            assert isinstance(ev, PutResult) and ev.ok, ev
            obex.get(ctype)
            (ev,) = await obex_round(obex, reader, writer)
            assert isinstance(ev, GetResult) and ev.ok, ev
            msg = cs.receive(ev.body).data
        obex.disconnect()
        (ev,) = await obex_round(obex, reader, writer)
        assert isinstance(ev, Disconnected)
    finally:
        await close(writer)
    assert cs.result is not None
    return cs.result


def runner_for(store: MemoryStore, repo: StateRepository) -> SessionRunner:
    config = ServerConfig(datastores=(Datastore(name="contacts", store=store),))
    return SessionRunner(config, repo)


async def test_phone_syncs_over_bluetooth(
    bluez: FakeBluez, system_bus: PrivateBus, repo: StateRepository
) -> None:
    pc = MemoryStore(content_types=(VCARD_30,))
    pc.add(vcard(1))
    runner = runner_for(pc, repo)
    outcomes: list[SessionFinished | None] = []

    async def serve(
        path: str, address: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        outcomes.append(
            await serve_obex_connection(reader, writer, runner, transport="bluetooth", peer=address)
        )

    bluez.add_device(PHONE, "Nokia 6230i", uuids=(SYNCML_CLIENT_UUID,))
    profiles = BluetoothProfiles(system_bus.address, on_server_connection=serve)
    await profiles.start()
    try:
        phone_store = MemoryStore(content_types=(VCARD_30,))
        phone_store.add(vcard(2))
        phone_store.add(vcard(3))
        result = await phone_syncs(
            await bluez.deliver_connection(PHONE, SYNCML_SERVER_UUID), phone_store
        )
        assert result.run.status == 200, result.run
        await until(lambda: bool(outcomes), "the server session to end")
        assert outcomes[0] is not None and outcomes[0].run.status == 200
        assert len(contents(pc)) == 3 and contents(pc) == contents(phone_store)
        assert repo.load_peer("IMEI:350000000000001") is not None
    finally:
        await profiles.stop()


async def test_incoming_connection_without_a_callback_is_rejected(
    bluez: FakeBluez, system_bus: PrivateBus
) -> None:
    bluez.add_device(PHONE)
    profiles = BluetoothProfiles(system_bus.address)
    await profiles.start()
    try:
        with pytest.raises(Exception, match=r"org\.bluez\.Error\.Rejected"):
            await bluez.deliver_connection(PHONE, SYNCML_SERVER_UUID)
    finally:
        await profiles.stop()


# ------------------------------------------------------------------ PC-initiated


async def test_pc_initiated_connect_profile(bluez: FakeBluez, system_bus: PrivateBus) -> None:
    bluez.add_device(PHONE, "Nokia 6230i", uuids=(SYNCML_CLIENT_UUID,))
    profiles = BluetoothProfiles(system_bus.address)
    await profiles.start()
    try:
        reader, writer = await profiles.connect_sync_client(PHONE.lower(), timeout=TIMEOUT)
        phone_reader, phone_writer = await stream(await bluez.take_peer(PHONE))
        writer.write(b"ping")
        await writer.drain()
        assert await asyncio.wait_for(phone_reader.readexactly(4), TIMEOUT) == b"ping"
        phone_writer.write(b"pong")
        await phone_writer.drain()
        assert await asyncio.wait_for(reader.readexactly(4), TIMEOUT) == b"pong"
        assert bluez.devices[PHONE].connected  # ConnectProfile brought the link up
        await close(writer)
        assert await asyncio.wait_for(phone_reader.read(), TIMEOUT) == b""
        await close(phone_writer)
    finally:
        await profiles.stop()


async def alerted_phone(sock: socket.socket, store: MemoryStore) -> tuple[int, bool]:
    """A phone's SyncML Client service: takes the SAN, then syncs as the notification asks.

    Returns the SAN's session id and whether the phone's session succeeded.
    """
    reader, writer = await stream(sock)
    binding = SyncmlObexServerBinding(ObexServerConfig(put_types=SYNCML_TYPES | {SAN_TYPE}))
    cs: ClientSession | None = None
    session_id = -1
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
            for event in binding.receive_data(data):
                if isinstance(event, MessageReceived):
                    if cs is None:
                        assert event.content_type == SAN_TYPE
                        san = parse_san(event.body)
                        session_id = san.session_id
                        cs = phone_session(
                            store, server_alerted=True, session_id=str(san.session_id)
                        )
                        binding.send_reply(cs.start())
                    else:
                        out = cs.receive(event.body).data
                        if out is not None:
                            binding.send_reply(out)
                elif isinstance(event, SessionEnded):
                    if out_data := binding.data_to_send():
                        writer.write(out_data)
                        await writer.drain()
                    assert cs is not None and cs.result is not None
                    return session_id, cs.result.run.status == 200
            if out_data := binding.data_to_send():
                writer.write(out_data)
                await writer.drain()
            if not data:
                raise AssertionError("the PC hung up before DISCONNECT")
    finally:
        await close(writer)


async def test_pc_initiated_sync_end_to_end(
    bluez: FakeBluez, system_bus: PrivateBus, repo: StateRepository
) -> None:
    pc = MemoryStore(content_types=(VCARD_30,))
    pc.add(vcard(1))
    runner = runner_for(pc, repo)
    phone_store = MemoryStore(content_types=(VCARD_30,))
    phone_store.add(vcard(2))
    bluez.add_device(PHONE, "Nokia 6230i", uuids=(SYNCML_CLIENT_UUID,))
    profiles = BluetoothProfiles(system_bus.address)
    await profiles.start()
    try:
        san, san_type = notification(
            [(Datastore(name="contacts", store=pc), SyncMode.TWO_WAY)],
            server_id="PC Suite",
            session_id=42,
        )
        reader, writer = await profiles.connect_sync_client(PHONE, timeout=TIMEOUT)
        phone = asyncio.create_task(alerted_phone(await bluez.take_peer(PHONE), phone_store))
        result = await run_server_alerted_sync(
            reader, writer, runner, san, san_type=san_type, transport="bluetooth", peer=PHONE
        )
        assert await asyncio.wait_for(phone, TIMEOUT) == (42, True)
        assert result.run.status == 200, result.run
        assert contents(pc) == contents(phone_store) and len(contents(pc)) == 2
    finally:
        await profiles.stop()


@pytest.mark.parametrize(
    ("setup", "address", "message"),
    [
        pytest.param(None, "12:34", "is not a Bluetooth address", id="bad-address"),
        pytest.param(None, "66:55:44:33:22:11", "knows no such device", id="unknown"),
        pytest.param(
            "no-service", PHONE, r"org\.bluez\.Error\.InvalidArguments", id="no-syncml-client"
        ),
        pytest.param(
            "fail", PHONE, r"org\.bluez\.Error\.Failed: br-connection-refused", id="failed"
        ),
        pytest.param(
            "stall",
            PHONE,
            r"no connection to its SyncML Client service within 0\.3 s",
            id="timeout",
        ),
    ],
)
async def test_connect_sync_client_errors(
    bluez: FakeBluez, system_bus: PrivateBus, setup: str | None, address: str, message: str
) -> None:
    bluez.add_device(PHONE, uuids=() if setup == "no-service" else (SYNCML_CLIENT_UUID,))
    if setup == "fail":
        bluez.connect_errors[PHONE] = ("org.bluez.Error.Failed", "br-connection-refused")
    bluez.stall_connect = setup == "stall"
    profiles = BluetoothProfiles(system_bus.address)
    await profiles.start()
    try:
        with pytest.raises(BluetoothError, match=message) as info:
            await profiles.connect_sync_client(address, timeout=0.3)
        if setup in ("no-service", "fail"):
            assert info.value.dbus_error is not None
        assert profiles._waiting == {}
    finally:
        await profiles.stop()


async def test_connect_sync_client_without_bluez(system_bus: PrivateBus) -> None:
    profiles = BluetoothProfiles(system_bus.address)
    await profiles.start()
    try:
        with pytest.raises(BluetoothError, match="BlueZ is not running"):
            await profiles.connect_sync_client(PHONE)
    finally:
        await profiles.stop()


async def test_stop_during_a_connect_gives_a_clear_error(
    bluez: FakeBluez, system_bus: PrivateBus
) -> None:
    bluez.add_device(PHONE, uuids=(SYNCML_CLIENT_UUID,))
    bluez.stall_connect = True
    profiles = BluetoothProfiles(system_bus.address)
    await profiles.start()
    pending = asyncio.create_task(profiles.connect_sync_client(PHONE, timeout=TIMEOUT))
    await until(lambda: bool(profiles._waiting), "the connect to be under way")
    await profiles.stop()
    with pytest.raises(BluetoothError, match="cannot open its SyncML Client service"):
        await asyncio.wait_for(pending, TIMEOUT)


# ------------------------------------------------------------------ fds and disconnection


async def test_every_fd_is_closed(bluez: FakeBluez, system_bus: PrivateBus) -> None:
    bluez.add_device(PHONE, uuids=(SYNCML_CLIENT_UUID,))
    before = open_fds()
    profiles = BluetoothProfiles(system_bus.address, on_server_connection=echo)
    await profiles.start()
    phones: list[socket.socket] = []
    try:
        # Accepted server links: one the phone closes, one left open until stop().
        for _ in range(2):
            phones.append(await bluez.deliver_connection(PHONE, SYNCML_SERVER_UUID))
        phones[0].close()
        # An unrequested link to the client profile is refused, its fd closed.
        with pytest.raises(Exception, match="Rejected"):
            await bluez.deliver_connection(PHONE, SYNCML_CLIENT_UUID, role="client")
        # A NewConnection from someone who is not org.bluez: refused, fd closed.
        reply, stranger_end = await bluez.call_profile_as_stranger(
            system_bus.address, bluez.profile(SYNCML_SERVER_UUID), PHONE
        )
        phones.append(stranger_end)
        assert reply.error_name == "org.bluez.Error.Rejected"
        # A client link handed to the caller and a timed-out one.
        await profiles.connect_sync_client(PHONE, timeout=TIMEOUT)
        phones.append(await bluez.take_peer(PHONE))
        bluez.stall_connect = True
        with pytest.raises(BluetoothError):
            await profiles.connect_sync_client(PHONE, timeout=0.2)
        # A link BlueZ asks to drop before its serving task has even run.
        ours, theirs = socket.socketpair()
        phones.append(theirs)
        profiles._new_connection("server", PHONE_PATH, ours.detach())
        profiles._disconnect("server", PHONE_PATH)
    finally:
        await profiles.stop()
    # Every peer end sees its link closed: our side of each fd is gone.
    for sock in phones[1:]:
        sock.settimeout(TIMEOUT)
        assert sock.recv(10) == b""
        sock.close()
    await bluez.stop()  # the fake's own bus and fds go too
    await until(lambda: open_fds() <= before, "fds to be closed")
    assert open_fds() <= before
    await bluez.start()


async def test_request_disconnection_closes_the_link(
    bluez: FakeBluez, system_bus: PrivateBus
) -> None:
    bluez.add_device(PHONE, uuids=(SYNCML_CLIENT_UUID,))
    profiles = BluetoothProfiles(system_bus.address, on_server_connection=echo)
    await profiles.start()
    try:
        server_side = await bluez.deliver_connection(PHONE, SYNCML_SERVER_UUID)
        await profiles.connect_sync_client(PHONE, timeout=TIMEOUT)
        client_side = await bluez.take_peer(PHONE)
        for uuid, sock in ((SYNCML_SERVER_UUID, server_side), (SYNCML_CLIENT_UUID, client_side)):
            reply = await bluez.request_disconnection(PHONE, uuid)
            assert reply.error_name is None
            reader, writer = await stream(sock)
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
            await close(writer)
        await until(lambda: all(x.closed for x in profiles._links), "links closed")
    finally:
        await profiles.stop()


async def test_release_closes_links_and_unregisters(
    bluez: FakeBluez, system_bus: PrivateBus
) -> None:
    bluez.add_device(PHONE, uuids=(SYNCML_CLIENT_UUID,))
    profiles = BluetoothProfiles(system_bus.address, on_server_connection=echo)
    await profiles.start()
    try:
        reader, writer = await stream(await bluez.deliver_connection(PHONE, SYNCML_SERVER_UUID))
        await bluez.release(SYNCML_SERVER_UUID)
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
        await close(writer)
        assert not profiles.registered
    finally:
        await profiles.stop()


# ------------------------------------------------------------------ BlueZ comes and goes


async def test_bluetoothd_restart_registers_again(bluez: FakeBluez, system_bus: PrivateBus) -> None:
    bluez.add_device(PHONE, uuids=(SYNCML_CLIENT_UUID,))
    profiles = BluetoothProfiles(system_bus.address, on_server_connection=echo)
    await profiles.start()
    try:
        old_owner = bluez.unique_name
        await bluez.restart()
        assert bluez.unique_name != old_owner
        await bluez.wait_profiles(2)
        await asyncio.wait_for(profiles.wait_registered(), TIMEOUT)
        assert {p.sender for p in bluez.profiles} == {profiles._bus.unique_name}
        assert {p.uuid for p in bluez.profiles} == {SYNCML_SERVER_UUID, SYNCML_CLIENT_UUID}
        # Connections work with the new bluetoothd.
        reader, writer = await stream(await bluez.deliver_connection(PHONE, SYNCML_SERVER_UUID))
        writer.write(b"again")
        assert await asyncio.wait_for(reader.readexactly(23), TIMEOUT) == f"{PHONE} again".encode()
        await close(writer)
    finally:
        await profiles.stop()


async def test_bluez_absent_at_start_then_appearing(
    system_bus: PrivateBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="syncmld.transports.bluetooth")
    profiles = BluetoothProfiles(system_bus.address, on_server_connection=echo)
    watcher = BluezWatcher(system_bus.address)
    await profiles.start()
    await watcher.start()
    fake = FakeBluez(system_bus.address)
    try:
        assert not profiles.registered and not watcher.bluez_running
        absent = [r for r in caplog.records if "not running" in r.getMessage()]
        assert len(absent) == 2  # once each, as a warning
        assert all(r.levelno == logging.WARNING for r in absent)
        await fake.start()
        fake.add_device(PHONE, "Phone", uuids=(SYNCML_CLIENT_UUID,))
        await fake.wait_profiles(2)
        await asyncio.wait_for(profiles.wait_registered(), TIMEOUT)
        await asyncio.wait_for(watcher.wait_seeded(), TIMEOUT)
        await until(lambda: PHONE in watcher.devices, "the watcher to see the phone")
        assert len([r for r in caplog.records if "not running" in r.getMessage()]) == 2
    finally:
        await watcher.stop()
        await profiles.stop()
        await fake.stop()


# ------------------------------------------------------------------ the device watcher


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[str, DeviceInfo | None]] = []
        self.connected: list[DeviceInfo] = []

    def watcher(self, address: str) -> BluezWatcher:
        return BluezWatcher(
            address,
            on_change=lambda a, i: self.changes.append((a, i)),
            on_connected=self.connected.append,
        )


async def test_watcher_mirrors_devices(bluez: FakeBluez, system_bus: PrivateBus) -> None:
    bluez.add_device(PHONE, "Nokia 6230i", paired=True, connected=True, uuids=(SYNCML_CLIENT_UUID,))
    rec = Recorder()
    watcher = rec.watcher(system_bus.address)
    await watcher.start()
    try:
        info = watcher.devices[PHONE]
        assert info == DeviceInfo(
            path=PHONE_PATH,
            address=PHONE,
            name="Nokia 6230i",
            paired=True,
            connected=True,
            uuids=(SYNCML_CLIENT_UUID,),
        )
        assert info.has_syncml_client
        assert rec.connected == []  # already connected at the snapshot: not an event
        other = "AA:BB:CC:DD:EE:FF"
        bluez.add_device(other, None, paired=False)
        await until(lambda: other in watcher.devices, "the new device")
        assert rec.changes[-1] == (other, watcher.devices[other])
        bluez.set_properties(other, Paired=True, Name="Headset")
        await until(lambda: watcher.devices[other].paired, "Paired")
        assert watcher.devices[other].name == "Headset"
        bluez.set_connected(other, True)
        bluez.set_connected(other, True)  # a repeated signal is no new event
        bluez.set_properties(other, Trusted=False)
        bluez.set_connected(PHONE, False)
        bluez.set_connected(PHONE, True)
        await until(lambda: len(rec.connected) == 2, "two connects")
        await asyncio.sleep(0.05)
        assert [i.address for i in rec.connected] == [other, PHONE]
        bluez.remove_device(other)
        await until(lambda: other not in watcher.devices, "the removal")
        assert rec.changes[-1] == (other, None)
    finally:
        await watcher.stop()


async def test_watcher_sees_a_device_added_during_the_snapshot(
    bluez: FakeBluez, system_bus: PrivateBus
) -> None:
    late = "AA:BB:CC:00:00:01"

    async def add_late() -> None:
        # Added after the reply's contents were taken: only the signal tells.
        bluez.add_device(late, "Late phone", connected=True, uuids=(SYNCML_CLIENT_UUID,))

    bluez.add_device(PHONE, "Early phone")
    bluez.after_snapshot = add_late
    rec = Recorder()
    watcher = rec.watcher(system_bus.address)
    await watcher.start()
    try:
        assert set(watcher.devices) == {PHONE, late}
        assert watcher.devices[late].name == "Late phone"
    finally:
        await watcher.stop()


async def test_watcher_follows_a_bluetoothd_restart(
    bluez: FakeBluez, system_bus: PrivateBus
) -> None:
    bluez.add_device(PHONE, "Phone", connected=True)
    rec = Recorder()
    watcher = rec.watcher(system_bus.address)
    await watcher.start()
    try:
        await bluez.stop()
        await until(lambda: not watcher.devices, "the table to be cleared")
        assert rec.changes[-1] == (PHONE, None)
        await bluez.start()
        await asyncio.wait_for(watcher.wait_seeded(), TIMEOUT)
        assert watcher.devices[PHONE].connected  # the fake keeps its state on a plain stop/start
        # Signals from the new owner are followed.
        bluez.set_connected(PHONE, False)
        bluez.set_connected(PHONE, True)
        await until(lambda: len(rec.connected) == 1, "the connect")
    finally:
        await watcher.stop()


async def test_watcher_ignores_signals_from_others(
    bluez: FakeBluez, system_bus: PrivateBus
) -> None:
    bluez.add_device(PHONE, "Phone")
    rec = Recorder()
    watcher = rec.watcher(system_bus.address)
    await watcher.start()
    impostor = FakeBluez(system_bus.address)
    impostor.devices = dict(bluez.devices)
    from dbus_fast.aio import MessageBus

    impostor.bus = await MessageBus(bus_address=system_bus.address).connect()
    try:
        impostor.set_connected(PHONE, True)
        impostor.add_device("AA:AA:AA:AA:AA:AA")
        bluez.set_properties(PHONE, Name="Real")  # a marker: bluez's signals come in order
        await until(lambda: watcher.devices[PHONE].name == "Real", "the marker")
        assert not watcher.devices[PHONE].connected
        assert "AA:AA:AA:AA:AA:AA" not in watcher.devices and rec.connected == []
    finally:
        impostor.bus.disconnect()
        await watcher.stop()


# ------------------------------------------------------------------ configuration


def test_bluetooth_config_section() -> None:
    from syncmld.config import ConfigError, parse

    assert parse({}).bluetooth.enabled and parse({}).bluetooth.channel == 26
    bt = parse({"bluetooth": {"enabled": False, "channel": 12, "require_authorization": False}})
    assert (bt.bluetooth.enabled, bt.bluetooth.channel, bt.bluetooth.require_authorization) == (
        False,
        12,
        False,
    )
    with pytest.raises(ConfigError, match=r"bluetooth\.channel: 31 is not between 1 and 30"):
        parse({"bluetooth": {"channel": 31}})
    with pytest.raises(ConfigError, match=r"bluetooth\.enabled: expected true or false"):
        parse({"bluetooth": {"enabled": "yes"}})
    with pytest.raises(ConfigError, match=r"bluetooth\.chanel: unknown key"):
        parse({"bluetooth": {"chanel": 3}})


# ------------------------------------------------------------------ the fake itself


async def test_fake_profile_manager_answers_like_bluez(
    bluez: FakeBluez, system_bus: PrivateBus
) -> None:
    """The documented ProfileManager1 errors and bluetoothd's lenient option parsing."""
    from dbus_fast import Message, Variant
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_address=system_bus.address).connect()

    async def call(member: str, signature: str, body: list[object]) -> Message:
        reply = await bus.call(
            Message(
                destination="org.bluez",
                path="/org/bluez",
                interface="org.bluez.ProfileManager1",
                member=member,
                signature=signature,
                body=body,
            )
        )
        assert reply is not None
        return reply

    try:
        ok = await call("RegisterProfile", "osa{sv}", ["/p", SYNCML_SERVER_UUID, {}])
        assert ok.error_name is None
        again = await call("RegisterProfile", "osa{sv}", ["/p", SYNCML_SERVER_UUID, {}])
        assert again.error_name == "org.bluez.Error.AlreadyExists"
        bad_uuid = await call("RegisterProfile", "osa{sv}", ["/q", "syncml", {}])
        assert bad_uuid.error_name == "org.bluez.Error.InvalidArguments"
        high = {"Channel": Variant("q", 40)}
        assert (
            await call("RegisterProfile", "osa{sv}", ["/q", SYNCML_SERVER_UUID, high])
        ).error_name == ("org.bluez.Error.InvalidArguments")
        # A Channel of the wrong D-Bus type is ignored (logged), the call succeeds.
        wrong = {"Channel": Variant("i", 26)}
        assert (
            await call("RegisterProfile", "osa{sv}", ["/r", SYNCML_SERVER_UUID, wrong])
        ).error_name is None
        assert bluez.warnings == ["Invalid value for profile option Channel"]
        gone = await call("UnregisterProfile", "o", ["/nothing"])
        assert gone.error_name == "org.bluez.Error.DoesNotExist"
        assert len(bluez.profiles) == 2
    finally:
        bus.disconnect()
    # An application that leaves the bus loses its profiles.
    await until(lambda: not bluez.profiles, "the profiles to be dropped")
