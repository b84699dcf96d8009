"""Names, paths, enumerations and error names of syncmld's D-Bus API (version 1).

The canonical description of the API is the set of interface XML files in
``syncmld/dbus/interfaces/`` (installed with the package); this module reads
the property signatures from them, so the service and the files cannot drift
apart.  Clients treat enumeration values they do not know as 0 (unknown).
"""

from __future__ import annotations

import enum
import functools
import re
from importlib import resources

from dbus_fast import DBusError
from dbus_fast import introspection as intr

#: The well-known name on the session bus.
BUS_NAME = "org.syncmld.Syncmld1"
#: The manager object (also the ObjectManager).
MANAGER_PATH = "/org/syncmld/Syncmld1"
DEVICES_PATH = MANAGER_PATH + "/devices"
RUNS_PATH = MANAGER_PATH + "/runs"

MANAGER_INTERFACE = "org.syncmld.Syncmld1.Manager"
DEVICE_INTERFACE = "org.syncmld.Syncmld1.Device"
RUN_INTERFACE = "org.syncmld.Syncmld1.Run"
CONFLICT_INTERFACE = "org.syncmld.Syncmld1.Conflict"
INTERFACES = (MANAGER_INTERFACE, DEVICE_INTERFACE, RUN_INTERFACE, CONFLICT_INTERFACE)
OBJECT_MANAGER_INTERFACE = "org.freedesktop.DBus.ObjectManager"

#: Prefix of every error name.
ERROR_PREFIX = "org.syncmld.Syncmld1.Error."


class Error(enum.Enum):
    """The error names (``org.syncmld.Syncmld1.Error.<value>``)."""

    NOT_FOUND = "NotFound"
    INVALID_ARGS = "InvalidArgs"
    BUSY = "Busy"
    NOT_CONNECTED = "NotConnected"
    NOT_PAIRED = "NotPaired"
    TRANSPORT_FAILED = "TransportFailed"
    AUTH_FAILED = "AuthFailed"
    CANCELLED = "Cancelled"
    SLOW_SYNC_REFUSED = "SlowSyncRefused"
    STORAGE_EMPTY = "StorageEmpty"
    NOT_SUPPORTED = "NotSupported"
    INTERNAL = "Internal"

    @property
    def dbus_name(self) -> str:
        """The full D-Bus error name."""
        return ERROR_PREFIX + self.value


class ServiceError(DBusError):
    """An error reply with one of the documented names."""

    def __init__(self, error: Error, text: str) -> None:
        super().__init__(error.dbus_name, text)
        self.error = error


class SyncModeCode(enum.IntEnum):
    """The ``mode`` argument of ``Device.Sync``.  *Phone* is the peer, *desktop* us."""

    DEFAULT = 0
    TWO_WAY = 1
    SLOW = 2
    REFRESH_FROM_PHONE = 3
    REFRESH_FROM_DESKTOP = 4
    ONE_WAY_FROM_PHONE = 5
    ONE_WAY_FROM_DESKTOP = 6


class RunState(enum.IntEnum):
    """``Run.State``."""

    UNKNOWN = 0
    QUEUED = 1
    CONNECTING = 2
    RUNNING = 3
    CANCELLING = 4
    DONE = 5
    FAILED = 6
    CANCELLED = 7

    @property
    def final(self) -> bool:
        """The run is over."""
        return self in (RunState.DONE, RunState.FAILED, RunState.CANCELLED)


class Phase(enum.IntEnum):
    """``Run.Phase``."""

    UNKNOWN = 0
    INIT = 1
    RECEIVING = 2
    SENDING = 3
    MAPPING = 4
    FINISHED = 5


class Result(enum.IntEnum):
    """``Run.Result``, ``Device.LastResult`` and the history's ``result``."""

    NONE = 0
    OK = 1
    PARTIAL = 2
    FAILED = 3
    CANCELLED = 4


class Attention(enum.IntEnum):
    """``Device.AttentionReason`` and ``AttentionNeeded``'s reason."""

    NONE = 0
    AUTH_FAILED = 1
    UNEXPECTED_SLOW_SYNC = 2
    STORAGE_EMPTY = 3
    TRANSPORT_FAILED = 4


class ConflictChoice(enum.IntEnum):
    """``Conflict.Resolve``'s choice."""

    ACCEPT = 0
    KEEP_DESKTOP = 1


_UNSAFE = re.compile(rb"[^A-Za-z0-9]")


def path_element(name: str) -> str:
    """``name`` as one object path element: bytes outside ``[A-Za-z0-9]`` become ``_XX``."""
    if not name:
        return "_"
    return _UNSAFE.sub(lambda m: b"_%02x" % m.group()[0], name.encode()).decode("ascii")


def device_path(name: str) -> str:
    """The object path of the device ``[devices.<name>]`` / ``[servers.<name>]``."""
    return f"{DEVICES_PATH}/{path_element(name)}"


def interface_xml(interface: str) -> str:
    """The canonical XML description of ``interface`` (a file of the package)."""
    return (
        resources.files("syncmld.dbus")
        .joinpath("interfaces")
        .joinpath(f"{interface}.xml")
        .read_text(encoding="utf-8")
    )


@functools.cache
def interface_description(interface: str) -> intr.Interface:
    """The parsed XML description of ``interface``."""
    node = intr.Node.parse(interface_xml(interface))
    for item in node.interfaces:
        if item.name == interface:
            return item
    raise LookupError(f"{interface}.xml does not describe {interface}")


def property_signatures(interface: str) -> dict[str, str]:
    """Property name -> D-Bus signature, in the XML file's order."""
    return {p.name: p.signature for p in interface_description(interface).properties}


__all__ = [
    "BUS_NAME",
    "CONFLICT_INTERFACE",
    "DEVICE_INTERFACE",
    "ERROR_PREFIX",
    "INTERFACES",
    "MANAGER_INTERFACE",
    "MANAGER_PATH",
    "RUN_INTERFACE",
    "Attention",
    "ConflictChoice",
    "Error",
    "Phase",
    "Result",
    "RunState",
    "ServiceError",
    "SyncModeCode",
    "device_path",
    "interface_xml",
    "path_element",
    "property_signatures",
]
