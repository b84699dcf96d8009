"""The objects syncmld exports on the session bus, and the bus connection.

Theory of operation
-------------------
Every exported object is a :class:`BusObject`: a dbus-fast
``ServiceInterface`` whose properties are values in a dictionary.  The
property getters are generated from the interface XML files (see
:mod:`syncmld.dbus.names`), so the service cannot drift from the files
clients are written against; methods and signals are written out below.

The daemon keeps its own view of devices, runs and conflicts *in* these
objects and changes them with :meth:`BusObject.update`, bus or no bus:
without a session bus they are simply never exported.  ``update`` records
which properties changed and sends one ``PropertiesChanged`` for all of
them, at most once per :attr:`BusObject.min_interval` (0.5 s: two signals a
second); ``urgent=True`` sends at once (a run reaching its final state).

:class:`DbusService` owns the connection: it exports the manager, requests
the well-known name, and for every object added or removed emits
``InterfacesAdded`` / ``InterfacesRemoved`` from the manager's path, as the
ObjectManager specification asks.  ``GetManagedObjects`` is answered by
dbus-fast for every object below the manager's path (the same objects).
dbus-fast also emits these two signals from each object's own path when it
is exported; clients following the specification listen on the manager's
path and ignore those.

Methods never block the event loop: what touches the state database runs in
a worker thread inside the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.constants import NameFlag, PropertyAccess, RequestNameReply
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property, dbus_signal

from syncmld.dbus.names import (
    BUS_NAME,
    CONFLICT_INTERFACE,
    DEVICE_INTERFACE,
    MANAGER_INTERFACE,
    MANAGER_PATH,
    OBJECT_MANAGER_INTERFACE,
    RUN_INTERFACE,
    RunState,
    property_signatures,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable

log = logging.getLogger(__name__)

UInt32 = Annotated[int, DBusSignature("u")]
VarDict = Annotated[dict[str, Variant], DBusSignature("a{sv}")]
VarDicts = Annotated[list[dict[str, Variant]], DBusSignature("aa{sv}")]
SyncReply = Annotated[list[Any], DBusSignature("oa{sv}")]
Str = Annotated[str, DBusSignature("s")]
NoReply = Annotated[None, DBusSignature("")]


class Backend(Protocol):
    """What the D-Bus methods ask the daemon to do.

    Each call raises :class:`~syncmld.dbus.names.ServiceError` with a
    documented error name when it cannot do what is asked.
    """

    def sync(self, device: DeviceObject, mode: int, options: dict[str, Variant]) -> RunObject:
        """Start a sync with ``device``; the run object is exported on return."""
        ...

    def cancel(self, run: RunObject) -> None:
        """Abort ``run``."""
        ...

    def history(
        self, device: DeviceObject | None, start: int, count: int
    ) -> Awaitable[list[dict[str, Variant]]]:
        """A page of the history (of ``device``, else of every peer)."""
        ...

    def clear_attention(self, device: DeviceObject) -> None:
        """The user has seen the device's attention reason."""
        ...

    def resolve(self, conflict: ConflictObject, choice: int) -> Awaitable[None]:
        """Apply the user's decision on a conflict and remove it."""
        ...


# --------------------------------------------------------------------------- objects


def _with_properties(interface: str) -> Callable[[type[BusObject]], type[BusObject]]:
    """Class decorator: read-only D-Bus properties for every property in the XML file."""

    def decorate(cls: type[BusObject]) -> type[BusObject]:
        signatures = property_signatures(interface)
        for name, signature in signatures.items():
            getter = _getter(name, signature, cls.__name__)
            prop = dbus_property(access=PropertyAccess.READ, name=name)(getter)
            setattr(cls, getter.__name__, prop)
        cls.signatures = signatures
        cls.interface_name = interface
        return cls

    return decorate


def _getter(name: str, signature: str, owner: str) -> Callable[[BusObject], Any]:
    """A property getter for dbus-fast: only ``self``, the signature as return annotation."""

    def getter(self: BusObject) -> Any:
        return self.values[name]

    getter.__name__ = f"_property_{name}"
    getter.__qualname__ = f"{owner}._property_{name}"
    getter.__annotations__ = {"return": signature}
    return getter


class BusObject(ServiceInterface):
    """One exported object with one interface; properties live in :attr:`values`.

    Args:
        path: the object path.
        values: every property's initial value (Python values matching the
            signatures; ``a{sv}`` values as :class:`~dbus_fast.Variant`).
    """

    interface_name: ClassVar[str]
    signatures: ClassVar[dict[str, str]]
    #: Seconds between two PropertiesChanged signals of one object, at least.
    min_interval: ClassVar[float] = 0.5

    def __init__(self, path: str, values: Mapping[str, Any]) -> None:
        super().__init__(self.interface_name)
        missing = set(self.signatures) - set(values)
        if missing:
            raise ValueError(f"{self.interface_name}: no value for {', '.join(sorted(missing))}")
        self.path = path
        self.values: dict[str, Any] = {k: values[k] for k in self.signatures}
        self._dirty: set[str] = set()
        self._last_emit = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self.exported = False

    def update(self, *, urgent: bool = False, **changes: Any) -> None:
        """Change properties; ``PropertiesChanged`` follows, throttled unless ``urgent``."""
        for name, value in changes.items():
            if name not in self.signatures:
                raise KeyError(f"{self.interface_name} has no property {name}")
            if self.values[name] != value:
                self.values[name] = value
                self._dirty.add(name)
        if not self._dirty or not self.exported:
            self._dirty.clear()
            return
        wait = self._last_emit + self.min_interval - time.monotonic()
        if urgent or wait <= 0:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self.flush)

    def flush(self) -> None:
        """Send the pending property changes now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._dirty:
            return
        changed = {name: self.values[name] for name in self.signatures if name in self._dirty}
        self._dirty.clear()
        self._last_emit = time.monotonic()
        if self.exported:
            try:
                self.emit_properties_changed(changed)
            except Exception as exc:  # the bus went away; the values stay right here
                log.debug("%s: PropertiesChanged not sent: %s", self.path, exc)

    def variants(self) -> dict[str, Variant]:
        """Every property as a variant (what ``GetAll`` returns)."""
        return {name: Variant(sig, self.values[name]) for name, sig in self.signatures.items()}

    def discard(self) -> None:
        """Forget pending changes (the object leaves the bus)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._dirty.clear()


@_with_properties(MANAGER_INTERFACE)
class ManagerObject(BusObject):
    """``/org/syncmld/Syncmld1``: the daemon (``org.syncmld.Syncmld1.Manager``)."""

    def __init__(self, backend: Backend, values: Mapping[str, Any]) -> None:
        super().__init__(MANAGER_PATH, values)
        self._backend = backend

    @dbus_method(name="GetHistory")
    async def get_history(self, start: UInt32, count: UInt32) -> VarDicts:
        """A page of every peer's history, newest first."""
        return await self._backend.history(None, start, count)


@_with_properties(DEVICE_INTERFACE)
class DeviceObject(BusObject):
    """A configured peer (``org.syncmld.Syncmld1.Device``).

    Attributes:
        config_name: the configuration table's name (``name`` is dbus-fast's
            interface name).
    """

    def __init__(self, backend: Backend, path: str, name: str, values: Mapping[str, Any]) -> None:
        super().__init__(path, values)
        self.config_name = name
        self._backend = backend

    @dbus_method(name="Sync")
    def sync(self, mode: UInt32, options: VarDict) -> SyncReply:
        """Start a sync; returns the run's path and properties."""
        run = self._backend.sync(self, mode, options)
        return [run.path, run.variants()]

    @dbus_method(name="GetHistory")
    async def get_history(self, start: UInt32, count: UInt32) -> VarDicts:
        """A page of this device's history, newest first."""
        return await self._backend.history(self, start, count)

    @dbus_method(name="ClearAttention")
    def clear_attention(self) -> NoReply:
        """Reset ``AttentionReason``."""
        self._backend.clear_attention(self)

    @dbus_signal(name="AttentionNeeded")
    def attention_needed(
        self, reason: UInt32, detail: Str
    ) -> Annotated[list[Any], DBusSignature("us")]:
        """Something only the user can fix happened (see the XML file)."""
        return [reason, detail]


@_with_properties(RUN_INTERFACE)
class RunObject(BusObject):
    """One sync session (``org.syncmld.Syncmld1.Run``).

    Attributes:
        number: the ``<n>`` of its path.
        device: the device object, when the peer is configured.
        cancel_hook: what :meth:`cancel` calls (set by whoever runs the session).
    """

    def __init__(self, backend: Backend, path: str, number: int, values: Mapping[str, Any]) -> None:
        super().__init__(path, values)
        self.number = number
        self.device: DeviceObject | None = None
        self.cancel_hook: Callable[[], None] | None = None
        self._backend = backend

    @property
    def final(self) -> bool:
        """The run is over."""
        return RunState(self.values["State"]).final

    @dbus_method(name="Cancel")
    def cancel(self) -> NoReply:
        """Abort the run."""
        self._backend.cancel(self)


@_with_properties(CONFLICT_INTERFACE)
class ConflictObject(BusObject):
    """An item both sides changed (``org.syncmld.Syncmld1.Conflict``).

    Attributes:
        device: the device object it belongs to.
        peer: the dev id whose state holds the item.
    """

    def __init__(
        self,
        backend: Backend,
        path: str,
        device: DeviceObject,
        peer: str,
        values: Mapping[str, Any],
    ) -> None:
        super().__init__(path, values)
        self.device = device
        self.peer = peer
        self._backend = backend

    @dbus_method(name="Resolve")
    async def resolve(self, choice: UInt32) -> NoReply:
        """Decide about the conflict."""
        await self._backend.resolve(self, choice)


# --------------------------------------------------------------------------- the bus


class BusUnavailable(Exception):
    """The session bus cannot be reached or the name is taken (the message says which)."""


class DbusService:
    """The connection to the session bus and the set of exported objects.

    Objects can be added before :meth:`start` and without a bus at all;
    they are exported when (and if) the connection is made.

    Args:
        manager: the manager object.
        bus_address: the bus to use (default: ``$DBUS_SESSION_BUS_ADDRESS``).
    """

    def __init__(self, manager: ManagerObject, *, bus_address: str | None = None) -> None:
        self.manager = manager
        self._bus_address = bus_address
        self._bus: MessageBus | None = None
        self._objects: dict[str, BusObject] = {}
        self._watch: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Exported on a bus."""
        return self._bus is not None and self._bus.connected

    @property
    def objects(self) -> Mapping[str, BusObject]:
        """The objects below the manager, by path."""
        return self._objects

    async def start(self) -> None:
        """Connect, export every object, then own :data:`BUS_NAME`.

        Raises:
            BusUnavailable: no session bus, or another process owns the name.
        """
        try:
            if self._bus_address is not None:
                bus = MessageBus(bus_address=self._bus_address)
            else:
                bus = MessageBus(bus_type=BusType.SESSION)
            await bus.connect()
        except Exception as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise BusUnavailable(f"no session D-Bus ({reason})") from None
        self._bus = bus
        self.manager.exported = True
        bus.export(MANAGER_PATH, self.manager)
        for obj in self._objects.values():
            obj.exported = True
            bus.export(obj.path, obj)
        try:
            reply = await bus.request_name(BUS_NAME, NameFlag.DO_NOT_QUEUE)
        except Exception as exc:
            await self.stop()
            raise BusUnavailable(f"cannot own {BUS_NAME}: {exc}") from None
        if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
            await self.stop()
            raise BusUnavailable(f"{BUS_NAME} is owned by another process (is syncmld running?)")
        self._watch = asyncio.create_task(self._watch_disconnect(bus))

    async def _watch_disconnect(self, bus: MessageBus) -> None:
        """When the bus goes away, stop exporting (the daemon goes on without D-Bus)."""
        try:
            await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
        except Exception as exc:
            log.debug("session bus connection: %s", exc)
        if self._bus is bus:
            log.warning("lost the session D-Bus; serving the other transports")
            self._bus = None
            for obj in (self.manager, *self._objects.values()):
                obj.discard()
                obj.exported = False

    def add(self, obj: BusObject) -> None:
        """Put ``obj`` on the bus; ``InterfacesAdded`` follows."""
        self._objects[obj.path] = obj
        if self._bus is None:
            return
        obj.exported = True
        self._bus.export(obj.path, obj)
        self._emit_om(
            "InterfacesAdded", "oa{sa{sv}}", [obj.path, {obj.interface_name: obj.variants()}]
        )

    def remove(self, obj: BusObject) -> None:
        """Take ``obj`` off the bus; ``InterfacesRemoved`` follows."""
        if self._objects.pop(obj.path, None) is None:
            return
        obj.flush()
        obj.discard()
        if self._bus is None or not obj.exported:
            return
        obj.exported = False
        self._bus.unexport(obj.path, obj)
        self._emit_om("InterfacesRemoved", "oas", [obj.path, [obj.interface_name]])

    def _emit_om(self, member: str, signature: str, body: Sequence[Any]) -> None:
        assert self._bus is not None
        if not self._bus.connected:
            return
        self._bus.send(
            Message(
                message_type=MessageType.SIGNAL,
                path=MANAGER_PATH,
                interface=OBJECT_MANAGER_INTERFACE,
                member=member,
                signature=signature,
                body=list(body),
            )
        )

    async def stop(self) -> None:
        """Disconnect (the bus releases the name with the connection)."""
        bus, self._bus = self._bus, None
        watch, self._watch = self._watch, None
        for obj in (self.manager, *self._objects.values()):
            obj.discard()
            obj.exported = False
        if bus is None:
            return
        bus.disconnect()
        if watch is None:
            return
        # The watch ends with the connection; it no longer finds itself current.
        done, _ = await asyncio.wait([watch], timeout=2)
        if not done:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch


__all__ = [
    "Backend",
    "BusObject",
    "BusUnavailable",
    "ConflictObject",
    "DbusService",
    "DeviceObject",
    "ManagerObject",
    "RunObject",
]
