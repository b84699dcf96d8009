"""Test doubles for the daemon tests: a phone the PC alerts, a D-Bus client, configurations.

:class:`AlertedPhone` is a phone's SyncML Client service on any stream (a
TCP listener on 127.0.0.1, or the phone's end of a Bluetooth link the fake
BlueZ made): our OBEX server machine takes the PC's notification, and our
engine's client session - started from it - syncs the phone's memory store.
``gate`` holds the phone before it answers the PC's n-th message, so a
test can act in the middle of a session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from syncmld.config import Config, parse
from syncmld.dbus.names import BUS_NAME
from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.session import Datastore, SessionFinished
from syncmld.engine.state import PeerState
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.obex.client import ObexClient
from syncmld.obex.events import ConnectResult, Disconnected, GetResult, PutResult
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
from syncmld.protocol.san import parse_san

TIMEOUT = 20.0


def vcard(n: int) -> str:
    """A small vCard 3.0 with a UID."""
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:phone-{n}\r\nN:Person{n};Ann;;;\r\nFN:Ann Person{n}\r\n"
        f"TEL;TYPE=CELL:+4915100{n:05d}\r\nEND:VCARD\r\n"
    )


@dataclass
class AlertedPhone:
    """A phone that syncs when the PC alerts it (see the module docstring)."""

    store: MemoryStore = field(default_factory=lambda: MemoryStore(content_types=(VCARD_30,)))
    state: PeerState | None = None
    dev_id: str = "IMEI:350000000000001"
    now: float = 1_700_000_000.0
    #: Before answering the PC's message number ``gate[0]``, wait for ``gate[1]``.
    gate: tuple[int, asyncio.Event] | None = None
    #: Set when the phone is waiting at the gate.
    waiting: asyncio.Event = field(default_factory=asyncio.Event)
    outcomes: list[SessionFinished] = field(default_factory=list)
    sessions: int = 0
    port: int = 0
    _server: asyncio.Server | None = None

    async def listen(self) -> None:
        """Listen on 127.0.0.1 (``port``) for the PC's OBEX/TCP connections."""
        self._server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One PC-initiated session over a connected stream."""
        self.sessions += 1
        binding = SyncmlObexServerBinding(ObexServerConfig(put_types=SYNCML_TYPES | {SAN_TYPE}))
        cs: ClientSession | None = None
        received = 0
        try:
            ended = False
            while not ended:
                data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
                for ev in binding.receive_data(data):
                    if isinstance(ev, MessageReceived) and cs is None:
                        cs = self._session(parse_san(ev.body))
                        binding.send_reply(cs.start())
                    elif isinstance(ev, MessageReceived):
                        received += 1
                        if self.gate is not None and self.gate[0] == received:
                            self.waiting.set()
                            await self.gate[1].wait()
                        answer = cs.receive(ev.body).data
                        if answer is not None:
                            binding.send_reply(answer)
                    elif isinstance(ev, SessionEnded):
                        ended = True
                if not data:
                    break
                writer.write(binding.data_to_send())
                await writer.drain()
        except (ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            if cs is not None:
                if cs.result is None:
                    cs.abort("the connection was dropped")
                assert cs.result is not None
                if cs.result.peer is not None:
                    self.state = cs.result.peer
                self.outcomes.append(cs.result)

    def _session(self, san: Any) -> ClientSession:
        self.now += 60
        config = ClientConfig(
            url=san.server_id,
            dev_id=self.dev_id,
            stores=tuple(
                ClientStore(
                    datastore=Datastore(name="Contacts", store=self.store),
                    remote_uri=alert.server_uri,
                )
                for alert in san.alerts
            ),
            encoding=Encoding.WBXML,
            server_alerted=True,
        )
        return ClientSession(config, peer=self.state, now=self.now, session_id=str(san.session_id))


async def phone_initiated_sync(
    store: MemoryStore, dev_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> SessionFinished:
    """A phone's "sync with PC": our OBEX client and engine client over ``reader``/``writer``."""
    config = ClientConfig(
        url="PC Suite",
        dev_id=dev_id,
        stores=(
            ClientStore(datastore=Datastore(name="Contacts", store=store), remote_uri="contacts"),
        ),
        encoding=Encoding.WBXML,
    )
    cs = ClientSession(config, peer=None, now=1_700_000_000.0, session_id="1")
    obex = ObexClient()
    ctype = Encoding.WBXML.content_type

    async def round_trip() -> Any:
        while True:
            writer.write(obex.data_to_send())
            await writer.drain()
            data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
            events = obex.receive_data(data)
            if events or not data:
                (event,) = events
                return event

    try:
        obex.connect(SYNCML_TARGET)
        assert isinstance(await round_trip(), ConnectResult)
        msg: bytes | None = cs.start()
        while msg is not None:
            obex.put(ctype, msg)
            assert isinstance(await round_trip(), PutResult)
            obex.get(ctype)
            got = await round_trip()
            assert isinstance(got, GetResult) and got.ok, got
            msg = cs.receive(got.body).data
        obex.disconnect()
        assert isinstance(await round_trip(), Disconnected)
    finally:
        writer.close()
    assert cs.result is not None
    return cs.result


def make_config(tmp_path: Path, **devices: dict[str, Any]) -> Config:
    """A daemon configuration: a contacts vdir store, state in ``tmp_path``, HTTP on any port."""
    return parse(
        {
            "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
            "stores": {"contacts": {"kind": "contacts", "path": str(tmp_path / "contacts")}},
            "http": {"host": "127.0.0.1", "port": 0},
            "devices": devices,
        },
        source="test.toml",
    )


class BusClient:
    """A D-Bus client of the daemon: method calls and the signals it sends."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.signals: list[Message] = []
        self._changed = asyncio.Event()
        bus.add_message_handler(self._on_message)

    @classmethod
    async def connect(cls, address: str) -> BusClient:
        """Connect and subscribe to every signal of the daemon."""
        bus = await MessageBus(bus_address=address).connect()
        client = cls(bus)
        await client.call_bus("AddMatch", "s", [f"type='signal',sender='{BUS_NAME}'"])
        return client

    def _on_message(self, msg: Message) -> None:
        if msg.message_type == MessageType.SIGNAL:
            self.signals.append(msg)
            self._changed.set()

    async def call_bus(self, member: str, signature: str, body: list[Any]) -> Message:
        return await self.bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member=member,
                signature=signature,
                body=body,
            )
        )

    async def call(
        self, path: str, interface: str, member: str, signature: str = "", body: Any = ()
    ) -> Message:
        """Call a method of the daemon; returns the reply (method return or error)."""
        reply = await self.bus.call(
            Message(
                destination=BUS_NAME,
                path=path,
                interface=interface,
                member=member,
                signature=signature,
                body=list(body),
            )
        )
        assert reply is not None
        return reply

    async def get_all(self, path: str, interface: str) -> dict[str, Any]:
        """Every property of an object, unwrapped."""
        reply = await self.call(path, "org.freedesktop.DBus.Properties", "GetAll", "s", [interface])
        assert reply.message_type == MessageType.METHOD_RETURN, reply.body
        return {k: unwrap(v) for k, v in reply.body[0].items()}

    async def wait_for(
        self, predicate: Callable[[Message], bool], timeout: float = TIMEOUT
    ) -> Message:
        """The first signal (seen so far or arriving) for which ``predicate`` holds."""
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for msg in self.signals[seen:]:
                    if predicate(msg):
                        return msg
                seen = len(self.signals)
                self._changed.clear()
                await self._changed.wait()

    def property_changes(self, path: str) -> list[dict[str, Any]]:
        """The PropertiesChanged contents of ``path``, in order."""
        return [
            {k: unwrap(v) for k, v in m.body[1].items()}
            for m in self.signals
            if m.path == path and m.member == "PropertiesChanged"
        ]

    async def close(self) -> None:
        self.bus.disconnect()


def unwrap(value: Any) -> Any:
    """Variants (nested in dicts and lists too) to plain values."""
    if isinstance(value, Variant):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value
