"""Bluetooth through BlueZ's D-Bus API: the SyncML profiles and a device watcher.

syncmld never opens a Bluetooth socket itself.  It asks ``bluetoothd`` over the
system bus (``org.bluez``) to listen and connect for it, and receives each
RFCOMM connection as a file descriptor in ``org.bluez.Profile1.NewConnection``
(the BlueZ "Profile API").  That works on a Python without ``AF_BLUETOOTH``:
the fd is wrapped with ``socket.socket(fileno=fd)``, which takes the family
from the kernel, and turned into an asyncio stream.

Two public classes:

:class:`BluetoothProfiles`
    Registers two profiles with ``org.bluez.ProfileManager1``:

    * **SyncML Server** (``00000001-0000-1000-8000-0002ee000002``, role
      ``server``) with our own SDP record (OBEX over RFCOMM on a fixed channel,
      26 by default) and authentication required: a phone that "syncs with
      PC" connects here; each connection is handed to ``on_server_connection``.
    * **SyncML Client** (``00000002-0000-1000-8000-0002ee000002``, role
      ``client``): :meth:`BluetoothProfiles.connect_sync_client` asks BlueZ
      (``Device1.ConnectProfile``) to open the phone's SyncML Client service;
      the connection arrives through this profile's ``NewConnection`` and is
      returned to the caller as a stream (PC-initiated sync).

:class:`BluezWatcher`
    Mirrors BlueZ's ``org.bluez.Device1`` objects (address, name, paired,
    connected, ...) and reports changes, in particular a device's
    ``Connected`` turning true (auto-sync on connect).

Theory of operation
-------------------
*BlueZ comes and goes.*  Both classes subscribe to ``NameOwnerChanged`` for
``org.bluez`` before asking who owns the name, so an owner change between the
two cannot be missed.  With no owner at start they log once and wait; every new
owner (``bluetoothd`` started or restarted) gets the profiles registered again
and the device table seeded again; a vanished owner clears the registration
flag and the device table.

*The watcher is race-free* the way bleak's BlueZ manager is: match rules for
``InterfacesAdded``/``InterfacesRemoved``/``PropertiesChanged`` are installed
first, then ``GetManagedObjects`` is called.  Signals that arrive before the
reply are applied at once; the reply is then merged in (it never deletes an
object a signal added), so an object added between subscribing and the
snapshot is seen either way.  Signals are accepted only from the unique name
that owns ``org.bluez``.

*Fds.*  A received fd belongs to us from the moment the message arrives
(dbus-fast does not close it).  Every path closes it: a rejected
``NewConnection`` closes it before answering, an accepted one wraps it in a
socket whose stream is closed when the session ends, on
``RequestDisconnection``/``Release`` for that profile, and on :meth:`stop`.
Calls to our profile objects from anyone but ``org.bluez``'s owner are refused
(``org.bluez.Error.Rejected``) and their fds closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from xml.sax.saxutils import quoteattr

from dbus_fast import BusType, DBusError, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusDict, DBusObjectPath, DBusSignature, DBusUnixFd
from dbus_fast.service import ServiceInterface, dbus_method

from syncmld.errors import UserError

log = logging.getLogger(__name__)

#: The SyncML Server service class: phones connect here to sync with the PC.
SYNCML_SERVER_UUID = "00000001-0000-1000-8000-0002ee000002"
#: The SyncML Client service class a phone advertises; the PC connects to it.
SYNCML_CLIENT_UUID = "00000002-0000-1000-8000-0002ee000002"
#: The RFCOMM channel BlueZ's assigned numbers reserve for the SyncML Server.
DEFAULT_CHANNEL = 26
#: Seconds :meth:`BluetoothProfiles.connect_sync_client` waits by default.
DEFAULT_CONNECT_TIMEOUT = 30.0

BLUEZ = "org.bluez"
PROFILE_MANAGER_PATH = "/org/bluez"
PROFILE_MANAGER_IFACE = "org.bluez.ProfileManager1"
PROFILE_IFACE = "org.bluez.Profile1"
DEVICE_IFACE = "org.bluez.Device1"
OBJECT_MANAGER_IFACE = "org.freedesktop.DBus.ObjectManager"
PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"
_DBUS = "org.freedesktop.DBus"
_DBUS_PATH = "/org/freedesktop/DBus"

#: Where our two ``org.bluez.Profile1`` objects live on our connection.
SERVER_PROFILE_PATH = "/org/syncmld/bluetooth/syncml_server"
CLIENT_PROFILE_PATH = "/org/syncmld/bluetooth/syncml_client"

_ADDRESS = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){5}", re.IGNORECASE)
_DEVICE_PATH = re.compile(r"/dev_([0-9A-F]{2}(?:_[0-9A-F]{2}){5})$", re.IGNORECASE)
_NEW_CONNECTION_SIGNATURE = "oha{sv}"
_UNREGISTER_TIMEOUT = 2.0
#: How long a D-Bus call may take (libdbus's default reply time-out).
_CALL_TIMEOUT = 25.0


class BluetoothError(UserError):
    """A Bluetooth operation failed.

    Attributes:
        dbus_error: the D-Bus error name behind it (``org.bluez.Error.Failed``...),
            ``None`` when the failure was local (a time-out, BlueZ absent).
    """

    def __init__(self, message: str, *, dbus_error: str | None = None) -> None:
        super().__init__(message)
        self.dbus_error = dbus_error


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    """What BlueZ says about one ``org.bluez.Device1`` object.

    Attributes:
        path: the object path (``/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF``).
        address: the Bluetooth address, upper case (``AA:BB:CC:DD:EE:FF``).
        name: the remote name, ``None`` when not known yet.
        paired, connected, trusted: the ``Device1`` flags.
        uuids: the remote services (lower case), from ``UUIDs``.
    """

    path: str
    address: str
    name: str | None = None
    paired: bool = False
    connected: bool = False
    trusted: bool = False
    uuids: tuple[str, ...] = ()

    @property
    def has_syncml_client(self) -> bool:
        """Whether the device advertises the SyncML Client service (a phone we can sync)."""
        return SYNCML_CLIENT_UUID in self.uuids


#: ``on_server_connection(device_path, address, reader, writer)``: a phone
#: opened our SyncML Server service.  The stream is closed when it returns.
ServerConnectionCallback = Callable[
    [str, str, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]
]
#: ``on_change(address, info)``: a device appeared or changed (``info``), or
#: disappeared (``None``).
DeviceChangeCallback = Callable[[str, DeviceInfo | None], None]
#: ``on_connected(info)``: a device's ``Connected`` turned true.
DeviceConnectedCallback = Callable[[DeviceInfo], None]


# --------------------------------------------------------------------------- helpers


async def _connect_bus(bus_address: str | None, *, unix_fds: bool) -> MessageBus:
    """A connection to the system bus (or to ``bus_address``)."""
    where = bus_address or "the system bus"
    try:
        if bus_address is None:
            bus = MessageBus(bus_type=BusType.SYSTEM, negotiate_unix_fd=unix_fds)
        else:
            bus = MessageBus(bus_address=bus_address, negotiate_unix_fd=unix_fds)
        return await bus.connect()
    except (OSError, ValueError, EOFError) as exc:
        raise BluetoothError(f"cannot connect to {where}: {exc}") from None
    except Exception as exc:  # dbus-fast's AuthError and friends
        raise BluetoothError(f"cannot connect to {where}: {type(exc).__name__}: {exc}") from None


async def _disconnect(bus: MessageBus) -> None:
    """Leave the bus and wait until its socket is closed."""
    bus.disconnect()
    with contextlib.suppress(Exception):
        await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]


def _check(reply: Message, what: str) -> Message:
    """``reply`` if it is a method return, else :class:`BluetoothError` naming the D-Bus error."""
    if reply.message_type == MessageType.ERROR:
        text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        detail = f"{reply.error_name}: {text}" if text else str(reply.error_name)
        raise BluetoothError(f"{what}: {detail}", dbus_error=reply.error_name)
    return reply


async def _bus_call(
    bus: MessageBus,
    what: str,
    *,
    destination: str,
    path: str,
    interface: str,
    member: str,
    signature: str = "",
    body: list[Any] | None = None,
    timeout: float | None = _CALL_TIMEOUT,
) -> Message:
    """Call a method; a D-Bus error, a lost bus or no answer in ``timeout`` s: BluetoothError."""
    msg = Message(
        destination=destination,
        path=path,
        interface=interface,
        member=member,
        signature=signature,
        body=body or [],
    )
    try:
        async with asyncio.timeout(timeout):
            reply = await bus.call(msg)
    except TimeoutError:
        raise BluetoothError(f"{what}: no answer from {destination} within {timeout:g} s") from None
    except Exception as exc:  # the bus connection went away under the call
        raise BluetoothError(f"{what}: {type(exc).__name__}: {exc}") from None
    assert reply is not None  # a method call always gets a reply
    return _check(reply, what)


async def _manager_call(
    bus: MessageBus, what: str, member: str, signature: str, body: list[Any]
) -> None:
    """Call ``org.bluez.ProfileManager1.<member>``."""
    await _bus_call(
        bus,
        what,
        destination=BLUEZ,
        path=PROFILE_MANAGER_PATH,
        interface=PROFILE_MANAGER_IFACE,
        member=member,
        signature=signature,
        body=body,
    )


async def _add_match(bus: MessageBus, rule: str) -> None:
    await _bus_call(
        bus,
        "cannot subscribe to BlueZ signals",
        destination=_DBUS,
        path=_DBUS_PATH,
        interface=_DBUS,
        member="AddMatch",
        signature="s",
        body=[rule],
    )


_OWNER_RULE = (
    "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
    "member='NameOwnerChanged',arg0='org.bluez'"
)


_DEVICE_RULES = (
    f"type='signal',sender='{BLUEZ}',interface='{OBJECT_MANAGER_IFACE}',member='InterfacesAdded'",
    f"type='signal',sender='{BLUEZ}',interface='{OBJECT_MANAGER_IFACE}',member='InterfacesRemoved'",
    (
        f"type='signal',sender='{BLUEZ}',interface='{PROPERTIES_IFACE}',"
        f"member='PropertiesChanged',arg0='{DEVICE_IFACE}'"
    ),
)


async def _bluez_owner(bus: MessageBus) -> str | None:
    """The unique name owning ``org.bluez``, ``None`` when BlueZ is not running."""
    try:
        reply = await _bus_call(
            bus,
            "cannot ask who owns org.bluez",
            destination=_DBUS,
            path=_DBUS_PATH,
            interface=_DBUS,
            member="GetNameOwner",
            signature="s",
            body=[BLUEZ],
        )
    except BluetoothError as exc:
        if exc.dbus_error == "org.freedesktop.DBus.Error.NameHasNoOwner":
            return None
        raise
    owner = reply.body[0]
    return owner if isinstance(owner, str) and owner else None


def _owner_change(msg: Message) -> tuple[str] | None:
    """``(new_owner,)`` if ``msg`` is ``NameOwnerChanged`` for ``org.bluez``."""
    if (
        msg.message_type == MessageType.SIGNAL
        and msg.sender == _DBUS
        and msg.interface == _DBUS
        and msg.member == "NameOwnerChanged"
        and msg.signature == "sss"
        and msg.body[0] == BLUEZ
    ):
        return (msg.body[2],)
    return None


def address_from_path(path: str) -> str | None:
    """The address in a BlueZ device path (``.../dev_AA_BB_...`` -> ``AA:BB:...``)."""
    m = _DEVICE_PATH.search(path)
    return m.group(1).replace("_", ":").upper() if m else None


def _close_fds(fds: list[int], keep: int | None = None) -> None:
    for fd in fds:
        if fd != keep:
            with contextlib.suppress(OSError):
                os.close(fd)


def sdp_record(*, uuid: str, channel: int, name: str) -> str:
    """The SDP record (BlueZ's XML form) of an OBEX service on an RFCOMM channel.

    Attributes: 0x0001 service class (``uuid``), 0x0004 protocol descriptor
    list (L2CAP, RFCOMM ``channel``, OBEX), 0x0005 public browse group and
    0x0100 the service name.  BlueZ's generated record lacks the OBEX entry,
    which phones look for before they offer "sync with PC".
    """
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        "<record>\n"
        '  <attribute id="0x0001">\n'
        f'    <sequence><uuid value="{uuid}" /></sequence>\n'
        "  </attribute>\n"
        '  <attribute id="0x0004">\n'
        "    <sequence>\n"
        '      <sequence><uuid value="0x0100" /></sequence>\n'
        f'      <sequence><uuid value="0x0003" /><uint8 value="0x{channel:02x}" /></sequence>\n'
        '      <sequence><uuid value="0x0008" /></sequence>\n'
        "    </sequence>\n"
        "  </attribute>\n"
        '  <attribute id="0x0005">\n'
        '    <sequence><uuid value="0x1002" /></sequence>\n'
        "  </attribute>\n"
        '  <attribute id="0x0100">\n'
        f"    <text value={quoteattr(name)} />\n"
        "  </attribute>\n"
        "</record>\n"
    )


# --------------------------------------------------------------------------- profiles


#: The return annotation of a D-Bus method without out-arguments: with postponed
#: annotations dbus-fast would read a plain ``None`` as a missing signature.
_Void = Annotated[None, DBusSignature("")]


class _Profile(ServiceInterface):
    """One exported ``org.bluez.Profile1`` object; forwards to :class:`BluetoothProfiles`."""

    def __init__(self, owner: BluetoothProfiles, role: str) -> None:
        super().__init__(PROFILE_IFACE)
        self._owner = owner
        self._role = role

    @dbus_method()
    def Release(self) -> _Void:
        self._owner._released(self._role)

    @dbus_method()
    def NewConnection(
        self, device: DBusObjectPath, fd: DBusUnixFd, fd_properties: DBusDict
    ) -> _Void:
        self._owner._new_connection(self._role, device, fd)

    @dbus_method()
    def RequestDisconnection(self, device: DBusObjectPath) -> _Void:
        self._owner._disconnect(self._role, device)


@dataclass(eq=False, slots=True)
class _Link:
    """One RFCOMM connection we own."""

    role: str
    device: str
    sock: socket.socket
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None

    def close(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()  # the task closes its own stream
            return
        if self.writer is not None:
            self.writer.close()
        else:
            self.sock.close()

    @property
    def closed(self) -> bool:
        if self.writer is not None:
            return self.writer.transport.is_closing()
        return self.sock.fileno() < 0


@dataclass(slots=True)
class _ProfileSpec:
    """What :meth:`BluetoothProfiles._register` sends for one profile."""

    role: str
    path: str
    uuid: str
    options: dict[str, Variant]


class BluetoothProfiles:
    """The SyncML Server and SyncML Client profiles, registered with BlueZ.

    Args:
        bus_address: the system bus address (``None``: the real system bus;
            tests pass a private bus).
        channel: the RFCOMM channel of the SyncML Server service (1-30).
        on_server_connection: called for each phone that connects to our
            SyncML Server service, as ``await on_server_connection(device_path,
            address, reader, writer)``; the stream is closed when it returns
            (or raises).  Without it, incoming connections are rejected.
        require_authorization: ask BlueZ's agent before accepting a phone
            that is paired but not trusted (BlueZ's own default).
        name: the service name in our SDP record (what the phone shows).

    Usage: ``await start()``, then :meth:`connect_sync_client` as often as
    needed, ``await stop()`` at the end.  Works when BlueZ is not running at
    start (it says so once and registers when ``org.bluez`` appears) and
    registers again whenever ``bluetoothd`` restarts.
    """

    def __init__(
        self,
        bus_address: str | None = None,
        *,
        channel: int = DEFAULT_CHANNEL,
        on_server_connection: ServerConnectionCallback | None = None,
        require_authorization: bool = True,
        name: str = "SyncML Server",
    ) -> None:
        if not 1 <= channel <= 30:
            raise ValueError(f"RFCOMM channel {channel} is not between 1 and 30")
        self.channel = channel
        self._bus_address = bus_address
        self._on_server_connection = on_server_connection
        self._specs = (
            _ProfileSpec(
                "server",
                SERVER_PROFILE_PATH,
                SYNCML_SERVER_UUID,
                {
                    "Name": Variant("s", name),
                    "Role": Variant("s", "server"),
                    "Channel": Variant("q", channel),
                    "RequireAuthentication": Variant("b", True),
                    "RequireAuthorization": Variant("b", require_authorization),
                    "AutoConnect": Variant("b", False),
                    "ServiceRecord": Variant(
                        "s", sdp_record(uuid=SYNCML_SERVER_UUID, channel=channel, name=name)
                    ),
                },
            ),
            _ProfileSpec(
                "client",
                CLIENT_PROFILE_PATH,
                SYNCML_CLIENT_UUID,
                {
                    "Name": Variant("s", "SyncML Client"),
                    "Role": Variant("s", "client"),
                    "RequireAuthentication": Variant("b", True),
                    # We open these connections ourselves: nothing to authorize.
                    "RequireAuthorization": Variant("b", False),
                    "AutoConnect": Variant("b", False),
                },
            ),
        )
        self._bus: MessageBus | None = None
        self._interfaces: dict[str, _Profile] = {}
        self._owner: str | None = None
        self._registered: set[str] = set()  # roles registered with the current owner
        self._lock = asyncio.Lock()
        self._register_task: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[socket.socket]] = {}
        self._links: set[_Link] = set()
        self._said_absent = False
        self._registered_event = asyncio.Event()

    # ----------------------------------------------------------------- public

    @property
    def registered(self) -> bool:
        """Whether both profiles are registered with the running BlueZ."""
        return len(self._registered) == len(self._specs)

    async def wait_registered(self) -> None:
        """Wait until both profiles are registered (after a start or a BlueZ restart).

        Waits as long as BlueZ stays away: give it a time-out.
        """
        while not self.registered:
            self._registered_event.clear()
            await self._registered_event.wait()

    async def start(self) -> None:
        """Connect to the system bus, export the profile objects and register them.

        Raises:
            BluetoothError: the system bus cannot be reached, or the running
                BlueZ refused a registration (the message names its error).
        """
        if self._bus is not None:
            return
        bus = await _connect_bus(self._bus_address, unix_fds=True)
        try:
            for spec in self._specs:
                iface = _Profile(self, spec.role)
                self._interfaces[spec.role] = iface
                bus.export(spec.path, iface)
            bus.add_message_handler(self._on_message)
            self._bus = bus
            await _add_match(bus, _OWNER_RULE)
            owner = await _bluez_owner(bus)
            if owner is None:
                self._say_absent()
            elif owner != self._owner:
                self._owner = owner
                await self._register(owner)
        except BaseException:
            self._bus = None
            await _disconnect(bus)
            raise

    async def connect_sync_client(
        self, address: str, *, timeout: float = DEFAULT_CONNECT_TIMEOUT
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open the SyncML Client service of a phone (PC-initiated sync).

        Calls ``Device1.ConnectProfile`` with the SyncML Client UUID; BlueZ
        resolves the phone's RFCOMM channel, connects, and hands the socket to
        our client profile, which returns it here as a stream.  The caller
        closes the writer when done (:meth:`stop` closes it too).

        Args:
            address: the phone's address (``AA:BB:...``) or BlueZ object path.
            timeout: seconds to wait for the whole connection.

        Raises:
            BluetoothError: BlueZ is not running, the device is unknown, a
                connection to it is already being opened, BlueZ answered with
                an ``org.bluez.Error.*`` (in the message and ``dbus_error``),
                or nothing arrived within ``timeout``.
        """
        bus = self._require_bus()
        if self._owner is None or "client" not in self._registered:
            raise BluetoothError(f"{address}: BlueZ is not running (no org.bluez on the bus)")
        path = address if address.startswith("/") else await self._device_path(bus, address)
        label = address_from_path(path) or path
        if path in self._waiting:
            raise BluetoothError(f"{label}: a connection to it is already being opened")
        fut: asyncio.Future[socket.socket] = asyncio.get_running_loop().create_future()
        self._waiting[path] = fut
        sock: socket.socket | None = None
        stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            async with asyncio.timeout(timeout):
                await _bus_call(
                    bus,
                    f"{label}: cannot open its SyncML Client service",
                    destination=BLUEZ,
                    path=path,
                    interface=DEVICE_IFACE,
                    member="ConnectProfile",
                    signature="s",
                    body=[SYNCML_CLIENT_UUID],
                    timeout=None,  # the caller's time-out covers it
                )
                sock = await fut
                stream = await asyncio.open_connection(sock=sock)
        except TimeoutError:
            raise BluetoothError(
                f"{label}: no connection to its SyncML Client service within {timeout:g} s"
            ) from None
        finally:
            self._waiting.pop(path, None)
            if stream is None:
                # Failed or timed out: a socket that arrived anyway is closed here.
                if sock is None and fut.done() and not fut.cancelled() and not fut.exception():
                    sock = fut.result()
                if sock is not None:
                    sock.close()
            fut.cancel()
        assert sock is not None and stream is not None
        reader, writer = stream
        self._links = {x for x in self._links if x.task is not None or not x.closed}
        self._links.add(_Link("client", path, sock, writer))
        return reader, writer

    async def stop(self) -> None:
        """Unregister the profiles, close every connection and leave the bus."""
        bus, self._bus = self._bus, None
        if bus is None:
            return
        if self._register_task is not None:
            self._register_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._register_task
            self._register_task = None
        if self._owner is not None:
            for spec in self._specs:
                if spec.role in self._registered:
                    # Leaving the bus unregisters too; this is only the polite way,
                    # so a bluetoothd that does not answer does not hold us up.
                    with contextlib.suppress(BluetoothError, TimeoutError):
                        async with asyncio.timeout(_UNREGISTER_TIMEOUT):
                            await _manager_call(
                                bus, "cannot unregister", "UnregisterProfile", "o", [spec.path]
                            )
        self._registered.clear()
        self._fail_waiting("Bluetooth is shutting down")
        tasks = [link.task for link in self._links if link.task is not None]
        for link in list(self._links):
            link.close()
        self._links.clear()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        bus.remove_message_handler(self._on_message)
        for spec in self._specs:
            bus.unexport(spec.path)
        await _disconnect(bus)

    # ----------------------------------------------------------------- BlueZ presence

    def _require_bus(self) -> MessageBus:
        if self._bus is None:
            raise BluetoothError("Bluetooth is not started")
        return self._bus

    def _say_absent(self) -> None:
        if not self._said_absent:
            self._said_absent = True
            log.warning(
                "BlueZ (org.bluez) is not running; the SyncML Bluetooth services "
                "will be registered when it starts"
            )

    def _on_message(self, msg: Message) -> Message | bool | None:
        change = _owner_change(msg)
        if change is not None:
            self._owner_changed(change[0] or None)
            return None
        if msg.message_type == MessageType.METHOD_CALL and msg.path in (
            SERVER_PROFILE_PATH,
            CLIENT_PROFILE_PATH,
        ):
            return self._screen_profile_call(msg)
        return None

    def _screen_profile_call(self, msg: Message) -> Message | None:
        """Refuse calls to our profiles from anyone but BlueZ; keep only fds we use."""
        standard = (msg.interface or "").startswith("org.freedesktop.DBus.")
        if standard and not msg.unix_fds:
            return None  # introspection, Peer.Ping: anyone may
        if msg.sender != self._owner or self._owner is None:
            _close_fds(list(msg.unix_fds))
            return Message.new_error(msg, "org.bluez.Error.Rejected", "not from org.bluez")
        if msg.unix_fds:
            keep: int | None = None
            if (
                msg.member == "NewConnection"
                and msg.signature == _NEW_CONNECTION_SIGNATURE
                and isinstance(msg.body[1], int)
                and 0 <= msg.body[1] < len(msg.unix_fds)
            ):
                keep = msg.unix_fds[msg.body[1]]
            _close_fds(list(msg.unix_fds), keep)
            if keep is None:
                return Message.new_error(
                    msg, "org.bluez.Error.InvalidArguments", "unexpected file descriptors"
                )
        return None

    def _owner_changed(self, owner: str | None) -> None:
        if owner == self._owner:
            return
        self._owner = owner
        self._registered.clear()
        if owner is None:
            log.warning("BlueZ left the system bus; waiting for it to return")
            self._fail_waiting("BlueZ stopped")
            return
        if self._bus is None:
            return
        log.info("BlueZ is on the system bus (%s); registering the SyncML services", owner)
        if self._register_task is not None:
            self._register_task.cancel()
        self._register_task = asyncio.get_running_loop().create_task(self._register_logged(owner))

    async def _register_logged(self, owner: str) -> None:
        try:
            await self._register(owner)
        except BluetoothError as exc:
            log.error("%s", exc)

    async def _register(self, owner: str) -> None:
        """Register both profiles with ``owner``; ``AlreadyExists`` means a stale entry."""
        bus = self._require_bus()
        async with self._lock:
            for spec in self._specs:
                if self._owner != owner:
                    return  # BlueZ changed again; the newer task registers
                what = f"cannot register the {spec.options['Name'].value} profile"
                register = [spec.path, spec.uuid, spec.options]
                try:
                    await _manager_call(bus, what, "RegisterProfile", "osa{sv}", register)
                except BluetoothError as exc:
                    if exc.dbus_error != "org.bluez.Error.AlreadyExists":
                        raise
                    await _manager_call(bus, what, "UnregisterProfile", "o", [spec.path])
                    await _manager_call(bus, what, "RegisterProfile", "osa{sv}", register)
                if self._owner == owner:
                    self._registered.add(spec.role)
            if self.registered:
                self._said_absent = False
                log.info("SyncML Server service registered on RFCOMM channel %d", self.channel)
                self._registered_event.set()

    def _fail_waiting(self, why: str) -> None:
        for path, fut in list(self._waiting.items()):
            if not fut.done():
                label = address_from_path(path) or path
                fut.set_exception(BluetoothError(f"{label}: {why}"))

    async def _device_path(self, bus: MessageBus, address: str) -> str:
        if not _ADDRESS.fullmatch(address):
            raise BluetoothError(f"{address!r} is not a Bluetooth address (AA:BB:CC:DD:EE:FF)")
        reply = await _bus_call(
            bus,
            f"{address}: cannot list BlueZ's devices",
            destination=BLUEZ,
            path="/",
            interface=OBJECT_MANAGER_IFACE,
            member="GetManagedObjects",
        )
        found: list[tuple[bool, str]] = []
        for path, interfaces in reply.body[0].items():
            props = interfaces.get(DEVICE_IFACE)
            if props is None or "Address" not in props:
                continue
            if str(props["Address"].value).upper() == address.upper():
                connected = bool(props["Connected"].value) if "Connected" in props else False
                found.append((not connected, path))
        if not found:
            raise BluetoothError(f"{address}: BlueZ knows no such device (pair it first)")
        return sorted(found)[0][1]  # a connected one first, if any adapter has it

    # ----------------------------------------------------------------- Profile1 calls

    def _new_connection(self, role: str, device: str, fd: int) -> None:
        label = address_from_path(device) or device
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            _close_fds([fd])
            raise DBusError("org.bluez.Error.Rejected", f"not a socket: {exc}") from None
        if sock.type != socket.SOCK_STREAM:
            sock.close()
            raise DBusError("org.bluez.Error.Rejected", "not a stream socket")
        sock.setblocking(False)
        if self._bus is None:  # stopping: nothing may outlive stop()
            sock.close()
            raise DBusError("org.bluez.Error.Rejected", "shutting down")
        if role == "client":
            fut = self._waiting.get(device)
            if fut is None or fut.done():
                sock.close()
                log.warning("%s: unrequested SyncML Client connection refused", label)
                raise DBusError("org.bluez.Error.Rejected", "no connection was requested")
            fut.set_result(sock)
            return
        callback = self._on_server_connection
        if callback is None:
            sock.close()
            raise DBusError("org.bluez.Error.Rejected", "not accepting SyncML connections")
        link = _Link(role, device, sock)
        link.task = asyncio.get_running_loop().create_task(self._serve(link, callback))
        # A task cancelled before it ran never reaches its finally: close here too.
        link.task.add_done_callback(lambda _: self._forget(link))
        self._links.add(link)
        log.info("%s connected to the SyncML Server service", label)

    async def _serve(self, link: _Link, callback: ServerConnectionCallback) -> None:
        label = address_from_path(link.device) or link.device
        reader, writer = await asyncio.open_connection(sock=link.sock)
        link.writer = writer
        try:
            await callback(link.device, label, reader, writer)
        except asyncio.CancelledError:
            log.info("%s: SyncML connection closed", label)
        except Exception as exc:
            log.error("%s: SyncML session failed: %s", label, exc)
            log.debug("details", exc_info=True)
        finally:
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    def _forget(self, link: _Link) -> None:
        if link.writer is None:
            link.sock.close()  # the stream was never made
        self._links.discard(link)

    def _disconnect(self, role: str, device: str) -> None:
        for link in list(self._links):
            if link.role == role and link.device == device:
                link.close()
                if link.task is None:
                    self._links.discard(link)

    def _released(self, role: str) -> None:
        log.warning("BlueZ released the SyncML %s profile", role)
        self._registered.discard(role)
        for link in list(self._links):
            if link.role == role:
                link.close()
                if link.task is None:
                    self._links.discard(link)
        if role == "client":
            self._fail_waiting("BlueZ released the SyncML Client profile")


# --------------------------------------------------------------------------- watcher


def _device_info(path: str, props: Mapping[str, Any]) -> DeviceInfo | None:
    def value(key: str, default: Any) -> Any:
        v = props.get(key)
        return v.value if isinstance(v, Variant) else default

    address = value("Address", None)
    if not isinstance(address, str):
        address = address_from_path(path)
    if address is None:
        return None
    name = value("Name", None)
    uuids = value("UUIDs", [])
    return DeviceInfo(
        path=path,
        address=address.upper(),
        name=name if isinstance(name, str) else None,
        paired=bool(value("Paired", False)),
        connected=bool(value("Connected", False)),
        trusted=bool(value("Trusted", False)),
        uuids=tuple(str(u).lower() for u in uuids) if isinstance(uuids, list) else (),
    )


class BluezWatcher:
    """A race-free mirror of BlueZ's ``org.bluez.Device1`` objects.

    Args:
        bus_address: the system bus address (``None``: the real system bus).
        on_change: ``on_change(address, info)`` after a device appeared or
            changed (``info`` is the new :class:`DeviceInfo`) or disappeared
            (``None``; also for every device when BlueZ stops).  Changes of
            properties the table does not keep (RSSI...) are not reported.
        on_connected: ``on_connected(info)`` when a known device's
            ``Connected`` turns true, or a device appears connected after the
            initial snapshot.  Devices already connected when the snapshot is
            taken are not reported (look at :attr:`devices`).

    Callbacks are plain functions called on the event loop; start a task for
    anything slow.  An exception in a callback is logged and swallowed.
    """

    def __init__(
        self,
        bus_address: str | None = None,
        *,
        on_change: DeviceChangeCallback | None = None,
        on_connected: DeviceConnectedCallback | None = None,
    ) -> None:
        self._bus_address = bus_address
        self._on_change = on_change
        self._on_connected = on_connected
        self._bus: MessageBus | None = None
        self._owner: str | None = None
        self._by_path: dict[str, DeviceInfo] = {}
        self._seed_task: asyncio.Task[None] | None = None
        self._said_absent = False
        self._seeded = asyncio.Event()

    @property
    def devices(self) -> Mapping[str, DeviceInfo]:
        """Known devices by address (``AA:BB:CC:DD:EE:FF``), a fresh snapshot."""
        return {info.address: info for info in self._by_path.values()}

    @property
    def bluez_running(self) -> bool:
        """Whether ``org.bluez`` currently has an owner."""
        return self._owner is not None

    async def wait_seeded(self) -> None:
        """Wait until the table holds BlueZ's current objects (after start or a restart)."""
        await self._seeded.wait()

    async def start(self) -> None:
        """Subscribe to BlueZ's signals, then read its current objects.

        Raises:
            BluetoothError: the system bus cannot be reached or refused the
                subscription.  BlueZ itself may be absent: it is logged once
                and the table filled when it appears.
        """
        if self._bus is not None:
            return
        bus = await _connect_bus(self._bus_address, unix_fds=False)
        try:
            bus.add_message_handler(self._on_message)
            self._bus = bus
            for rule in (_OWNER_RULE, *_DEVICE_RULES):
                await _add_match(bus, rule)
            owner = await _bluez_owner(bus)
            if owner is None:
                self._say_absent()
            elif owner != self._owner:
                self._owner = owner
                await self._seed(owner)
        except BaseException:
            self._bus = None
            await _disconnect(bus)
            raise

    async def stop(self) -> None:
        """Leave the bus.  The table keeps its last contents."""
        bus, self._bus = self._bus, None
        if bus is None:
            return
        if self._seed_task is not None:
            self._seed_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._seed_task
            self._seed_task = None
        bus.remove_message_handler(self._on_message)
        await _disconnect(bus)

    # ----------------------------------------------------------------- internals

    def _say_absent(self) -> None:
        if not self._said_absent:
            self._said_absent = True
            log.warning("BlueZ (org.bluez) is not running; watching for it to start")

    def _on_message(self, msg: Message) -> None:
        change = _owner_change(msg)
        if change is not None:
            self._owner_changed(change[0] or None)
            return
        if msg.message_type != MessageType.SIGNAL or msg.sender != self._owner:
            return
        if msg.interface == OBJECT_MANAGER_IFACE:
            if msg.member == "InterfacesAdded" and msg.signature == "oa{sa{sv}}":
                path, interfaces = msg.body
                if DEVICE_IFACE in interfaces:
                    self._update(path, interfaces[DEVICE_IFACE], replace=True, report=True)
            elif msg.member == "InterfacesRemoved" and msg.signature == "oas":
                path, names = msg.body
                if DEVICE_IFACE in names:
                    self._remove(path)
        elif (
            msg.interface == PROPERTIES_IFACE
            and msg.member == "PropertiesChanged"
            and msg.signature == "sa{sv}as"
            and msg.body[0] == DEVICE_IFACE
            and msg.path in self._by_path
        ):
            self._update(msg.path, msg.body[1], replace=False, report=True)

    def _owner_changed(self, owner: str | None) -> None:
        if owner == self._owner:
            return
        self._owner = owner
        self._seeded.clear()
        for path in list(self._by_path):
            self._remove(path)
        if owner is None:
            log.warning("BlueZ left the system bus; waiting for it to return")
            return
        if self._bus is None:
            return
        self._said_absent = False
        if self._seed_task is not None:
            self._seed_task.cancel()
        self._seed_task = asyncio.get_running_loop().create_task(self._seed_logged(owner))

    async def _seed_logged(self, owner: str) -> None:
        try:
            await self._seed(owner)
        except BluetoothError as exc:
            log.error("%s", exc)

    async def _seed(self, owner: str) -> None:
        assert self._bus is not None
        reply = await _bus_call(
            self._bus,
            "cannot list BlueZ's devices",
            destination=BLUEZ,
            path="/",
            interface=OBJECT_MANAGER_IFACE,
            member="GetManagedObjects",
        )
        if self._owner != owner:
            return  # BlueZ restarted meanwhile; a newer seed follows
        for path, interfaces in reply.body[0].items():
            props = interfaces.get(DEVICE_IFACE)
            if props is not None:
                self._update(path, props, replace=True, report=False)
        self._seeded.set()

    def _update(self, path: str, props: Mapping[str, Any], *, replace: bool, report: bool) -> None:
        old = self._by_path.get(path)
        if old is not None and not replace:
            merged = {
                "Address": Variant("s", old.address),
                "Paired": Variant("b", old.paired),
                "Connected": Variant("b", old.connected),
                "Trusted": Variant("b", old.trusted),
                "UUIDs": Variant("as", list(old.uuids)),
            }
            if old.name is not None:
                merged["Name"] = Variant("s", old.name)
            merged.update(props)
            props = merged
        info = _device_info(path, props)
        if info is None or info == old:
            return
        self._by_path[path] = info
        self._call(self._on_change, info.address, info)
        if report and info.connected and (old is None or not old.connected):
            self._call(self._on_connected, info)

    def _remove(self, path: str) -> None:
        old = self._by_path.pop(path, None)
        if old is not None:
            self._call(self._on_change, old.address, None)

    @staticmethod
    def _call(callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("Bluetooth device callback failed")


__all__ = [
    "DEFAULT_CHANNEL",
    "DEFAULT_CONNECT_TIMEOUT",
    "SYNCML_CLIENT_UUID",
    "SYNCML_SERVER_UUID",
    "BluetoothError",
    "BluetoothProfiles",
    "BluezWatcher",
    "DeviceChangeCallback",
    "DeviceConnectedCallback",
    "DeviceInfo",
    "ServerConnectionCallback",
    "address_from_path",
    "sdp_record",
]
