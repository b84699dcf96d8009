"""A fake BlueZ (``bluetoothd``) on a private bus, for the Bluetooth transport tests.

:class:`FakeBluez` owns ``org.bluez`` on a test bus (the ``system_bus``
fixture) and implements what syncmld uses, with BlueZ's documented names,
signatures and errors (``doc/org.bluez.ProfileManager.rst``,
``org.bluez.Profile.rst``, ``org.bluez.Device.rst``; the option parsing
follows ``src/profile.c``):

* ``org.bluez.ProfileManager1`` at ``/org/bluez``: ``RegisterProfile(osa{sv})``
  records each profile with its sender; ``AlreadyExists`` for the same
  sender and path, ``InvalidArguments`` for a bad UUID or a Channel above 31.
  An option of the wrong D-Bus type is ignored as bluetoothd does, and noted
  in :attr:`FakeBluez.warnings`.  ``UnregisterProfile(o)`` (``DoesNotExist``).
  A sender leaving the bus loses its profiles.
* ``org.freedesktop.DBus.ObjectManager`` at ``/``: ``GetManagedObjects``
  and ``InterfacesAdded``/``InterfacesRemoved`` from ``/``.
* ``org.bluez.Adapter1`` at ``/org/bluez/hci0`` and ``org.bluez.Device1``
  objects below it (``Address``, ``Name``, ``Alias``, ``Paired``,
  ``Connected``, ``Trusted``, ``UUIDs``, ``Adapter``) with
  ``Properties.Get/GetAll`` and ``PropertiesChanged``.
* ``Device1.ConnectProfile(s)``: finds a registered client-role profile for
  the UUID the device offers (else ``InvalidArguments``), connects the
  device, makes a real ``socketpair()`` and hands one end to the profile's
  ``NewConnection(oha{sv})``; the other end is the phone's
  (:meth:`FakeBluez.take_peer`).  Answers after ``NewConnection`` returned,
  as bluetoothd does.

Test controls: :meth:`add_device`, :meth:`remove_device`,
:meth:`set_connected`, :meth:`deliver_connection` (a phone opens a
registered server profile), :meth:`request_disconnection`, :meth:`release`,
:meth:`restart` (bluetoothd drops the name and takes it again), plus
:attr:`connect_errors`, :attr:`stall_connect` and :attr:`after_snapshot`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import Message, MessageFlag, MessageType, NameFlag, RequestNameReply, Variant
from dbus_fast.aio import MessageBus

BLUEZ = "org.bluez"
OM = "org.freedesktop.DBus.ObjectManager"
PROPS = "org.freedesktop.DBus.Properties"
PROFILE_MANAGER = "org.bluez.ProfileManager1"
ADAPTER = "org.bluez.Adapter1"
DEVICE = "org.bluez.Device1"
PROFILE = "org.bluez.Profile1"
ADAPTER_PATH = "/org/bluez/hci0"
ADAPTER_ADDRESS = "00:1A:7D:DA:71:13"

_OWNER_RULE = (
    "type='signal',sender='org.freedesktop.DBus',"
    "interface='org.freedesktop.DBus',member='NameOwnerChanged'"
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)

# Option name (lower case, bluetoothd compares without case) -> D-Bus type.
OPTION_TYPES = {
    "name": "s",
    "service": "s",
    "role": "s",
    "channel": "q",
    "psm": "q",
    "requireauthentication": "b",
    "requireauthorization": "b",
    "autoconnect": "b",
    "servicerecord": "s",
    "version": "q",
    "features": "q",
}


class FakeBluezError(Exception):
    """A call the fake made (NewConnection...) got a D-Bus error."""

    def __init__(self, name: str | None, text: str) -> None:
        super().__init__(f"{name}: {text}")
        self.name = name


@dataclass
class RegisteredProfile:
    """One ``RegisterProfile`` call that succeeded."""

    sender: str
    path: str
    uuid: str
    options: dict[str, Any]  # option name as sent -> plain value

    def option(self, name: str) -> Any:
        """An option's value by case-insensitive name (``None`` when absent)."""
        for key, value in self.options.items():
            if key.lower() == name.lower():
                return value
        return None

    @property
    def role(self) -> str | None:
        return self.option("Role")

    def serves(self, uuid: str, role: str) -> bool:
        """Whether BlueZ would use this profile for ``uuid`` in ``role``."""
        own = (self.option("Service") or self.uuid).lower()
        return own == uuid.lower() and self.role in (None, role)


@dataclass
class FakeDevice:
    """A remote device under ``/org/bluez/hci0``."""

    address: str
    name: str | None = None
    paired: bool = True
    connected: bool = False
    trusted: bool = False
    uuids: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{ADAPTER_PATH}/dev_{self.address.upper().replace(':', '_')}"

    def properties(self) -> dict[str, Variant]:
        props = {
            "Address": Variant("s", self.address.upper()),
            "AddressType": Variant("s", "public"),
            "Alias": Variant("s", self.name or self.address.upper().replace(":", "-")),
            "Paired": Variant("b", self.paired),
            "Bonded": Variant("b", self.paired),
            "Trusted": Variant("b", self.trusted),
            "Blocked": Variant("b", False),
            "Connected": Variant("b", self.connected),
            "UUIDs": Variant("as", list(self.uuids)),
            "Adapter": Variant("o", ADAPTER_PATH),
            "LegacyPairing": Variant("b", False),
        }
        if self.name is not None:
            props["Name"] = Variant("s", self.name)
        return props


class FakeBluez:
    """``bluetoothd`` as far as syncmld sees it; see the module docstring.

    Attributes:
        profiles: registered profiles, in registration order.
        warnings: what bluetoothd would have logged (ignored options...).
        connect_errors: address -> (error name, text) the next
            ``ConnectProfile`` on that device fails with.
        stall_connect: ``ConnectProfile`` never answers (a phone out of range).
        after_snapshot: run once inside the next ``GetManagedObjects``, after
            the reply's contents were taken and before it is sent.
        register_calls: how many ``RegisterProfile`` calls arrived (all owners).
    """

    def __init__(self, bus_address: str) -> None:
        self.bus_address = bus_address
        self.bus: MessageBus | None = None
        self.devices: dict[str, FakeDevice] = {}
        self.profiles: list[RegisteredProfile] = []
        self.warnings: list[str] = []
        self.connect_errors: dict[str, tuple[str, str]] = {}
        self.stall_connect = False
        self.after_snapshot: Callable[[], Awaitable[None]] | None = None
        self.register_calls = 0
        self._peers: dict[str, asyncio.Queue[socket.socket]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stalled: list[Message] = []
        self._registered = asyncio.Event()

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Connect, take ``org.bluez`` and serve."""
        bus = await MessageBus(bus_address=self.bus_address, negotiate_unix_fd=True).connect()
        bus.add_message_handler(self._handle)
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[_OWNER_RULE],
            )
        )
        self.bus = bus
        reply = await bus.request_name(BLUEZ, NameFlag.DO_NOT_QUEUE)
        assert reply == RequestNameReply.PRIMARY_OWNER, reply

    async def stop(self) -> None:
        """Leave the bus (``org.bluez`` loses its owner); registrations are forgotten."""
        bus, self.bus = self.bus, None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._stalled.clear()
        self.profiles.clear()
        for queue in self._peers.values():
            while not queue.empty():
                queue.get_nowait().close()
        if bus is not None:
            bus.disconnect()
            with contextlib.suppress(Exception):
                await bus.wait_for_disconnect()

    async def restart(self) -> None:
        """bluetoothd exits and starts again: new unique name, no profiles, nothing connected."""
        await self.stop()
        for dev in self.devices.values():
            dev.connected = False
        await self.start()

    @property
    def unique_name(self) -> str | None:
        return self.bus.unique_name if self.bus is not None else None

    async def wait_profiles(self, count: int, timeout: float = 5.0) -> None:
        """Until ``count`` profiles are registered."""
        async with asyncio.timeout(timeout):
            while len(self.profiles) < count:
                self._registered.clear()
                await self._registered.wait()

    def profile(self, uuid: str) -> RegisteredProfile:
        """The registered profile for ``uuid`` (exactly one)."""
        found = [p for p in self.profiles if p.uuid.lower() == uuid.lower()]
        assert len(found) == 1, self.profiles
        return found[0]

    # ------------------------------------------------------------------ test controls

    def add_device(
        self,
        address: str,
        name: str | None = None,
        *,
        paired: bool = True,
        connected: bool = False,
        trusted: bool = False,
        uuids: tuple[str, ...] = (),
    ) -> str:
        """A device appears (``InterfacesAdded``); returns its path."""
        dev = FakeDevice(address.upper(), name, paired, connected, trusted, list(uuids))
        self.devices[dev.address] = dev
        self._signal("/", OM, "InterfacesAdded", "oa{sa{sv}}", [dev.path, self._interfaces(dev)])
        return dev.path

    def remove_device(self, address: str) -> None:
        """A device goes away (``InterfacesRemoved``)."""
        dev = self.devices.pop(address.upper())
        self._signal("/", OM, "InterfacesRemoved", "oas", [dev.path, list(self._interfaces(dev))])

    def set_connected(self, address: str, connected: bool) -> None:
        """The device's ACL link comes up or goes down (``PropertiesChanged``)."""
        self.set_properties(address, Connected=connected)

    def set_properties(self, address: str, **changes: Any) -> None:
        """Change ``Device1`` properties (``Paired=True``, ``Name="x"``...) and signal it."""
        dev = self.devices[address.upper()]
        attr = {"Connected": "connected", "Paired": "paired", "Trusted": "trusted", "Name": "name"}
        for key, value in changes.items():
            setattr(dev, attr[key], value)
        props = dev.properties()
        changed = {k: props[k] for k in changes}
        self._signal(dev.path, PROPS, "PropertiesChanged", "sa{sv}as", [DEVICE, changed, []])

    async def deliver_connection(
        self,
        address: str,
        uuid: str,
        properties: dict[str, Variant] | None = None,
        *,
        role: str = "server",
    ) -> socket.socket:
        """A phone opens our ``uuid`` server profile: returns the phone's end of the link.

        ``role="client"`` hands a link to a client-role profile unasked (what a
        confused bluetoothd or a late connection looks like).

        Raises:
            FakeBluezError: the profile's ``NewConnection`` answered with an error.
            LookupError: no server profile for ``uuid`` is registered.
        """
        dev = self.devices[address.upper()]
        found = [p for p in self.profiles if p.serves(uuid, role)]
        if not found:
            raise LookupError(f"no {role} profile for {uuid}")
        if not dev.connected:
            self.set_connected(dev.address, True)
        ours, phone = socket.socketpair()
        try:
            await self._new_connection(found[0], dev, ours, properties or {})
        except BaseException:
            phone.close()
            raise
        return phone

    async def take_peer(self, address: str, timeout: float = 5.0) -> socket.socket:
        """The phone's end of the next link a ``ConnectProfile`` made to ``address``."""
        queue = self._peers.setdefault(address.upper(), asyncio.Queue())
        return await asyncio.wait_for(queue.get(), timeout)

    async def request_disconnection(self, address: str, uuid: str) -> Message:
        """Call the profile's ``RequestDisconnection(device)``; returns the reply."""
        dev = self.devices[address.upper()]
        prof = self.profile(uuid)
        return await self._call_profile(prof, "RequestDisconnection", "o", [dev.path])

    async def release(self, uuid: str) -> None:
        """Unregister a profile from bluetoothd's side and tell it (``Release``, no reply)."""
        prof = self.profile(uuid)
        self.profiles.remove(prof)
        assert self.bus is not None
        self.bus.send(
            Message(
                destination=prof.sender,
                path=prof.path,
                interface=PROFILE,
                member="Release",
                flags=MessageFlag.NO_REPLY_EXPECTED,
            )
        )

    async def call_profile_as_stranger(
        self, bus_address: str, prof: RegisteredProfile, address: str
    ) -> tuple[Message, socket.socket]:
        """``NewConnection`` from a connection that is not ``org.bluez``: (reply, the other end)."""
        dev = self.devices[address.upper()]
        other = await MessageBus(bus_address=bus_address, negotiate_unix_fd=True).connect()
        ours, phone = socket.socketpair()
        try:
            reply = await other.call(
                Message(
                    destination=prof.sender,
                    path=prof.path,
                    interface=PROFILE,
                    member="NewConnection",
                    signature="oha{sv}",
                    body=[dev.path, 0, {}],
                    unix_fds=[ours.fileno()],
                )
            )
        finally:
            ours.close()
            other.disconnect()
            with contextlib.suppress(Exception):
                await other.wait_for_disconnect()
        assert reply is not None
        return reply, phone

    # ------------------------------------------------------------------ D-Bus plumbing

    def _signal(self, path: str, iface: str, member: str, sig: str, body: list[Any]) -> None:
        assert self.bus is not None
        self.bus.send(
            Message.new_signal(path=path, interface=iface, member=member, signature=sig, body=body)
        )

    def _interfaces(self, dev: FakeDevice) -> dict[str, dict[str, Variant]]:
        return {
            "org.freedesktop.DBus.Introspectable": {},
            DEVICE: dev.properties(),
            PROPS: {},
        }

    def _snapshot(self) -> dict[str, dict[str, dict[str, Variant]]]:
        objects: dict[str, dict[str, dict[str, Variant]]] = {
            "/org/bluez": {PROFILE_MANAGER: {}, "org.bluez.AgentManager1": {}},
            ADAPTER_PATH: {
                ADAPTER: {
                    "Address": Variant("s", ADAPTER_ADDRESS),
                    "Name": Variant("s", "fakebluez"),
                    "Powered": Variant("b", True),
                }
            },
        }
        for dev in self.devices.values():
            objects[dev.path] = self._interfaces(dev)
        return objects

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _handle(self, msg: Message) -> Message | bool | None:
        if msg.message_type == MessageType.SIGNAL:
            if msg.member == "NameOwnerChanged" and msg.sender == "org.freedesktop.DBus":
                name, _old, new = msg.body
                if not new and name.startswith(":"):
                    # bluetoothd drops the profiles of an application that left the bus.
                    self.profiles = [p for p in self.profiles if p.sender != name]
            return None
        if msg.message_type != MessageType.METHOD_CALL:
            return None
        key = (msg.path, msg.interface, msg.member)
        if key == ("/", OM, "GetManagedObjects"):
            self._spawn(self._get_managed_objects(msg))
            return True
        if msg.path == "/org/bluez" and msg.interface == PROFILE_MANAGER:
            if msg.member == "RegisterProfile":
                return self._register(msg)
            if msg.member == "UnregisterProfile":
                return self._unregister(msg)
        dev = next((d for d in self.devices.values() if d.path == msg.path), None)
        if dev is not None:
            if msg.interface == DEVICE and msg.member == "ConnectProfile":
                if msg.signature != "s":
                    return _invalid_args(msg)
                self._spawn(self._connect_profile(msg, dev))
                return True
            if msg.interface == PROPS and msg.member in ("Get", "GetAll"):
                return self._properties(msg, dev)
        return None

    async def _get_managed_objects(self, msg: Message) -> None:
        objects = self._snapshot()
        hook, self.after_snapshot = self.after_snapshot, None
        if hook is not None:
            await hook()
        assert self.bus is not None
        self.bus.send(Message.new_method_return(msg, "a{oa{sa{sv}}}", [objects]))

    def _properties(self, msg: Message, dev: FakeDevice) -> Message:
        props = dev.properties()
        if msg.member == "GetAll":
            if msg.body[0] != DEVICE:
                return Message.new_method_return(msg, "a{sv}", [{}])
            return Message.new_method_return(msg, "a{sv}", [props])
        iface, name = msg.body
        if iface != DEVICE or name not in props:
            return Message.new_error(
                msg, "org.freedesktop.DBus.Error.InvalidArgs", f"No such property '{name}'"
            )
        return Message.new_method_return(msg, "v", [props[name]])

    def _register(self, msg: Message) -> Message:
        self.register_calls += 1
        if msg.signature != "osa{sv}":
            return _invalid_args(msg)
        path, uuid, options = msg.body
        if not _UUID.fullmatch(uuid):
            return _invalid_args(msg)
        assert msg.sender is not None
        if any(p.sender == msg.sender and p.path == path for p in self.profiles):
            return Message.new_error(msg, "org.bluez.Error.AlreadyExists", "Already Exists")
        plain: dict[str, Any] = {}
        for name, variant in options.items():
            want = OPTION_TYPES.get(name.lower())
            if want is None:
                continue  # bluetoothd ignores unknown keys
            if variant.signature != want:
                self.warnings.append(f"Invalid value for profile option {name}")
                continue
            if name.lower() == "channel" and variant.value > 31:
                return _invalid_args(msg)
            if name.lower() == "role" and variant.value not in ("client", "server"):
                self.warnings.append(f"Invalid value for profile option {name}")
                continue
            if name.lower() == "servicerecord":
                try:
                    ET.fromstring(variant.value)
                except ET.ParseError as exc:
                    self.warnings.append(f"Unable to parse record: {exc}")
                    continue
            plain[name] = variant.value
        self.profiles.append(RegisteredProfile(msg.sender, path, uuid.lower(), plain))
        self._registered.set()
        return Message.new_method_return(msg)

    def _unregister(self, msg: Message) -> Message:
        if msg.signature != "o":
            return _invalid_args(msg)
        for p in self.profiles:
            if p.sender == msg.sender and p.path == msg.body[0]:
                self.profiles.remove(p)
                return Message.new_method_return(msg)
        return Message.new_error(msg, "org.bluez.Error.DoesNotExist", "Does Not Exist")

    async def _connect_profile(self, msg: Message, dev: FakeDevice) -> None:
        assert self.bus is not None
        bus = self.bus
        uuid = msg.body[0].lower()
        error = self.connect_errors.pop(dev.address, None)
        if error is not None:
            bus.send(Message.new_error(msg, *error))
            return
        found = [p for p in self.profiles if p.serves(uuid, "client")]
        if uuid not in [u.lower() for u in dev.uuids] or not found:
            bus.send(_invalid_args(msg))
            return
        if self.stall_connect:
            self._stalled.append(msg)  # never answered: the caller must time out
            return
        if not dev.connected:
            self.set_connected(dev.address, True)
        ours, phone = socket.socketpair()
        try:
            await self._new_connection(found[0], dev, ours, {})
        except FakeBluezError as exc:
            phone.close()
            bus.send(Message.new_error(msg, "org.bluez.Error.Failed", str(exc)))
            return
        self._peers.setdefault(dev.address, asyncio.Queue()).put_nowait(phone)
        bus.send(Message.new_method_return(msg))

    async def _new_connection(
        self,
        prof: RegisteredProfile,
        dev: FakeDevice,
        ours: socket.socket,
        properties: dict[str, Variant],
    ) -> None:
        """Hand ``ours`` to ``prof``, then close the fake's copy (the profile owns the fd now)."""
        try:
            reply = await self._call_profile(
                prof, "NewConnection", "oha{sv}", [dev.path, 0, properties], [ours.fileno()]
            )
        finally:
            ours.close()
        if reply.message_type == MessageType.ERROR:
            raise FakeBluezError(reply.error_name, str(reply.body[0] if reply.body else ""))

    async def _call_profile(
        self,
        prof: RegisteredProfile,
        member: str,
        signature: str,
        body: list[Any],
        fds: list[int] | None = None,
    ) -> Message:
        assert self.bus is not None
        reply = await self.bus.call(
            Message(
                destination=prof.sender,
                path=prof.path,
                interface=PROFILE,
                member=member,
                signature=signature,
                body=body,
                unix_fds=fds or [],
            )
        )
        assert reply is not None
        return reply


def _invalid_args(msg: Message) -> Message:
    return Message.new_error(
        msg, "org.bluez.Error.InvalidArguments", "Invalid arguments in method call"
    )
