"""``syncmlctl``: the command-line client of a running syncmld (over the session D-Bus).

Every command is one short conversation with the daemon's D-Bus API
(``org.syncmld.Syncmld1`` on the session bus, see the interface XML files in
``syncmld/dbus/interfaces``).  Method signatures come from those packaged
files, so no ``Introspect`` round trip is needed; listings read every object
at once with ``ObjectManager.GetManagedObjects``.

Following a sync
----------------
``sync`` subscribes to the ``PropertiesChanged`` signals of every run object
*before* it calls ``Device.Sync``, so no change can slip by between the call
and the subscription.  ``Device.Sync`` replies with the new run's path and its
properties at reply time.  D-Bus keeps the order of one sender's messages and
serials count up per sender, so a signal of the new run whose serial is
below the reply's carries values that the reply's properties already
contain: those are dropped, every later one is applied.  The run is over when
its ``State`` is final; the owner of the bus name going away ends the wait too.

Exit status: see :data:`EXIT_CODES` (also shown by ``syncmlctl --help``).
Every error is one line on stderr; D-Bus errors are named by what they mean.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from syncmld import __version__

if TYPE_CHECKING:
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

# Exit status a script can rely on.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_DAEMON = 3
EXIT_NOT_FOUND = 4
EXIT_BUSY = 5
EXIT_CANCELLED = 6

#: Exit status -> meaning (``--help`` and the README list the same).
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_FAILED: "the sync ran but failed or partly failed, or the daemon refused the request",
    EXIT_USAGE: "usage error (bad option, unknown mode or store, invalid choice)",
    EXIT_NO_DAEMON: "no session bus, or syncmld is not running or not answering",
    EXIT_NOT_FOUND: "no such device, run or conflict",
    EXIT_BUSY: "a sync with this device is already running",
    EXIT_CANCELLED: "the sync was cancelled (Ctrl-C, syncmlctl cancel, the daemon stopping)",
}

# Kept here rather than imported so that ``syncmlctl --help`` needs no D-Bus
# code; they mirror syncmld.dbus.names (SyncModeCode, RunState, ...).
MODES = {
    "two-way": 1,
    "slow": 2,
    "refresh-from-phone": 3,
    "refresh-from-desktop": 4,
    "one-way-from-phone": 5,
    "one-way-from-desktop": 6,
}
STATES = ("unknown", "queued", "connecting", "running", "cancelling", "done", "failed", "cancelled")
FINAL_STATES = frozenset({5, 6, 7})
PHASES = ("unknown", "init", "receiving", "sending", "mapping", "finished")
RESULTS = ("none", "ok", "partial", "failed", "cancelled")
ATTENTION = ("none", "auth-failed", "unexpected-slow-sync", "storage-empty", "transport-failed")
MANAGER_STATES = ("unknown", "running", "stopping")
CHOICES = {"accept": 0, "keep-desktop": 1}
# SyncML alert codes of the sync modes (the "mode" of history and PerStore entries).
ALERT_MODES = {
    200: "two-way",
    201: "slow",
    202: "one-way-from-client",
    203: "refresh-from-client",
    204: "one-way-from-server",
    205: "refresh-from-server",
    206: "two-way",
    207: "one-way-from-client",
    208: "refresh-from-client",
    209: "one-way-from-server",
    210: "refresh-from-server",
}

#: Seconds to wait for any one reply of the daemon.
CALL_TIMEOUT = 30.0
#: Seconds to wait for a cancelled run to reach its final state.
CANCEL_TIMEOUT = 15.0

BUS_NAME = "org.syncmld.Syncmld1"
MANAGER_PATH = "/org/syncmld/Syncmld1"
RUNS_PATH = MANAGER_PATH + "/runs"
MANAGER_INTERFACE = "org.syncmld.Syncmld1.Manager"
DEVICE_INTERFACE = "org.syncmld.Syncmld1.Device"
RUN_INTERFACE = "org.syncmld.Syncmld1.Run"
CONFLICT_INTERFACE = "org.syncmld.Syncmld1.Conflict"
PROPERTIES_INTERFACE = "org.freedesktop.DBus.Properties"
OBJECT_MANAGER_INTERFACE = "org.freedesktop.DBus.ObjectManager"
ERROR_PREFIX = "org.syncmld.Syncmld1.Error."

# Error name (after ERROR_PREFIX) -> (what it means, exit status).
_ERRORS = {
    "NotFound": ("not found", EXIT_NOT_FOUND),
    "InvalidArgs": ("invalid argument", EXIT_USAGE),
    "Busy": ("busy: a sync with this device is already running", EXIT_BUSY),
    "NotConnected": ("the device is not connected or not reachable", EXIT_FAILED),
    "NotPaired": ("the phone is not paired over Bluetooth", EXIT_FAILED),
    "TransportFailed": ("the connection broke or could not be made", EXIT_FAILED),
    "AuthFailed": ("authentication failed", EXIT_FAILED),
    "Cancelled": ("cancelled", EXIT_CANCELLED),
    "SlowSyncRefused": ("an unexpected slow sync was refused", EXIT_FAILED),
    "StorageEmpty": ("the mass-deletion guard stopped a datastore", EXIT_FAILED),
    "NotSupported": ("not supported", EXIT_FAILED),
    "Internal": ("internal error in syncmld (its log has the details)", EXIT_FAILED),
}
_BUS_ERRORS = {
    "org.freedesktop.DBus.Error.ServiceUnknown": ("syncmld is not running", EXIT_NO_DAEMON),
    "org.freedesktop.DBus.Error.NameHasNoOwner": ("syncmld is not running", EXIT_NO_DAEMON),
    "org.freedesktop.DBus.Error.NoReply": ("syncmld did not answer", EXIT_NO_DAEMON),
    "org.freedesktop.DBus.Error.Timeout": ("syncmld did not answer", EXIT_NO_DAEMON),
    "org.freedesktop.DBus.Error.Disconnected": ("the session bus went away", EXIT_NO_DAEMON),
    "org.freedesktop.DBus.Error.UnknownObject": ("not found (it went away)", EXIT_NOT_FOUND),
    "org.freedesktop.DBus.Error.UnknownMethod": (
        "syncmld does not offer this (a different version?)",
        EXIT_FAILED,
    ),
    "org.freedesktop.DBus.Error.UnknownInterface": (
        "syncmld does not offer this (a different version?)",
        EXIT_FAILED,
    ),
    "org.freedesktop.DBus.Error.AccessDenied": ("access denied by the bus", EXIT_FAILED),
}


class CtlError(Exception):
    """A failure that ends the command: one line for stderr and an exit status."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def dbus_error(name: str, text: str) -> CtlError:
    """The :class:`CtlError` for a D-Bus error reply ``name`` with ``text``."""
    if name.startswith(ERROR_PREFIX):
        meaning, code = _ERRORS.get(name[len(ERROR_PREFIX) :], (name, EXIT_FAILED))
    else:
        meaning, code = _BUS_ERRORS.get(name, (name, EXIT_FAILED))
    text = " ".join(text.split())
    if text and text.lower() != meaning.lower():
        return CtlError(f"{meaning}: {text}", code)
    return CtlError(meaning, code)


# --------------------------------------------------------------------------- values


def unwrap(value: Any) -> Any:
    """``value`` with every :class:`~dbus_fast.Variant` replaced by its content."""
    from dbus_fast import Variant  # noqa: PLC0415

    if isinstance(value, Variant):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [unwrap(v) for v in value]
    return value


def _name(table: Sequence[str], value: Any) -> str:
    """The name of enumeration ``value`` (unknown values are ``table[0]``)."""
    if isinstance(value, int) and 0 <= value < len(table):
        return table[value]
    return table[0]


def _snake(name: str) -> str:
    """``ItemsDone`` -> ``items_done``, ``local-added`` -> ``local_added``."""
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append("_" if ch == "-" else ch.lower())
    return "".join(out)


def _when(seconds: Any) -> str:
    """Seconds since the epoch as local time; 0 as ``never``."""
    if not seconds:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(seconds)))


def _timestamp(seconds: Any) -> float | None:
    """A time for JSON: seconds since the epoch, ``None`` for 0 (never / unknown)."""
    return float(seconds) if seconds else None


def _path(value: Any) -> str | None:
    """An object path for JSON, ``None`` for ``/``."""
    return None if not value or value == "/" else str(value)


def _bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} kB"
    return f"{n / 1024 / 1024:.1f} MB"


def _store_json(name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """One PerStore / history ``stores`` entry for JSON."""
    out: dict[str, Any] = {"local": name}
    for key, value in entry.items():
        key_ = _snake(key)
        if key_ == "mode":
            out["mode"] = ALERT_MODES.get(value, "unknown")
        elif key_ == "phase":
            out["phase"] = _name(PHASES, value)
        elif key_ == "total":
            out["total"] = None if value is None or value < 0 else value
        else:
            out[key_] = value
    return out


def _counts(entry: Mapping[str, Any]) -> str:
    """``local +3 ~0 -0, remote +0 ~1 -0, 0 conflicts`` (added, replaced, deleted)."""

    def side(name: str) -> str:
        return " ".join(
            f"{sign}{entry.get(f'{name}-{what}', 0)}"
            for sign, what in (("+", "added"), ("~", "replaced"), ("-", "deleted"))
        )

    return f"local {side('local')}, remote {side('remote')}, {entry.get('conflicts', 0)} conflicts"


def device_json(path: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """A device object for JSON."""
    return {
        "name": props.get("Name", ""),
        "path": path,
        "kind": props.get("Kind", ""),
        "address": props.get("Address", ""),
        "dev_id": props.get("DevId", ""),
        "transport": props.get("Transport", ""),
        "stores": dict(props.get("Stores", {})),
        "auto_sync": props.get("AutoSync", False),
        "connected": props.get("Connected", False),
        "paired": props.get("Paired", False),
        "current_run": _path(props.get("CurrentRun")),
        "last_sync": _timestamp(props.get("LastSync")),
        "last_result": _name(RESULTS, props.get("LastResult")),
        "conflict_count": props.get("ConflictCount", 0),
        "attention": _name(ATTENTION, props.get("AttentionReason")),
    }


def run_json(path: str, props: Mapping[str, Any], device: str | None) -> dict[str, Any]:
    """A run object for JSON (``device``: the device's name, if known)."""
    total = props.get("ItemsTotal", -1)
    error = props.get("ErrorName", "")
    return {
        "path": path,
        "device": device,
        "peer": props.get("Peer", ""),
        "role": props.get("Role", ""),
        "transport": props.get("Transport", ""),
        "mode": next((k for k, v in MODES.items() if v == props.get("Mode")), "default"),
        "state": _name(STATES, props.get("State")),
        "phase": _name(PHASES, props.get("Phase")),
        "started": _timestamp(props.get("Started")),
        "finished": _timestamp(props.get("Finished")),
        "items_done": props.get("ItemsDone", 0),
        "items_total": None if total is None or total < 0 else total,
        "bytes_sent": props.get("BytesSent", 0),
        "bytes_received": props.get("BytesReceived", 0),
        "result": _name(RESULTS, props.get("Result")),
        "status": props.get("Status", 0),
        "error": error or None,
        "error_detail": props.get("ErrorDetail", "") or None,
        "stores": [_store_json(n, e) for n, e in sorted(props.get("PerStore", {}).items())],
    }


def history_json(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One history entry for JSON."""
    out: dict[str, Any] = {}
    for key, value in entry.items():
        key_ = _snake(key)
        if key_ == "result":
            out[key_] = _name(RESULTS, value)
        elif key_ in ("started", "finished"):
            out[key_] = _timestamp(value)
        elif key_ == "stores":
            out[key_] = [_store_json(s.get("local", ""), s) for s in value]
        else:
            out[key_] = value
    return out


def conflict_json(path: str, props: Mapping[str, Any], device: str | None) -> dict[str, Any]:
    """A conflict object for JSON."""
    return {
        "id": conflict_id(path, device),
        "path": path,
        "device": device,
        "store": props.get("Store", ""),
        "local_id": props.get("LocalId", ""),
        "remote_id": props.get("RemoteId", ""),
        "resolution": props.get("Resolution", ""),
        "detected_at": _timestamp(props.get("DetectedAt")),
    }


def conflict_id(path: str, device: str | None) -> str:
    """The short name of a conflict: ``DEVICE/K``."""
    return f"{device or '?'}/{path.rsplit('/', 1)[-1]}"


# --------------------------------------------------------------------------- the bus


@dataclass
class Snapshot:
    """Every object of the daemon: path -> interface -> properties (plain values)."""

    objects: dict[str, dict[str, dict[str, Any]]]

    def of(self, interface: str) -> dict[str, dict[str, Any]]:
        """Path -> properties of the objects with ``interface``, sorted by path."""
        return {
            p: ifaces[interface]
            for p, ifaces in sorted(self.objects.items(), key=lambda i: _path_key(i[0]))
            if interface in ifaces
        }

    def device_name(self, path: Any) -> str | None:
        """The name of the device at ``path`` (``None`` for ``/`` or unknown)."""
        props = self.objects.get(str(path), {}).get(DEVICE_INTERFACE)
        return None if props is None else str(props.get("Name", ""))

    def device(self, name: str) -> str:
        """The path of the device named ``name`` (or at the path ``name``).

        Raises:
            CtlError: there is none (exit status 4).
        """
        devices = self.of(DEVICE_INTERFACE)
        for path, props in devices.items():
            if props.get("Name") == name or path == name:
                return path
        known = ", ".join(str(p.get("Name")) for p in devices.values()) or "none configured"
        raise CtlError(f"no device named {name!r} (devices: {known})", EXIT_NOT_FOUND)


def _path_key(path: str) -> list[Any]:
    """Sort key: numeric path elements in numeric order."""
    return [(0, int(e), "") if e.isdigit() else (1, 0, e) for e in path.split("/")]


class Client:
    """A connection to syncmld on the session bus."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.owner = ""

    @classmethod
    async def connect(cls) -> Client:
        """Connect to the session bus and make sure syncmld is on it.

        Raises:
            CtlError: no session bus, or no syncmld on it (exit status 3).
        """
        from dbus_fast.aio import MessageBus  # noqa: PLC0415
        from dbus_fast.errors import AuthError, InvalidAddressError  # noqa: PLC0415

        address = os.environ.get("DBUS_SESSION_BUS_ADDRESS", "")
        if not address:
            # What libdbus and sd-bus fall back to: the systemd user bus.
            runtime = os.environ.get("XDG_RUNTIME_DIR", "")
            if runtime and os.path.exists(os.path.join(runtime, "bus")):
                address = f"unix:path={os.path.join(runtime, 'bus')}"
            else:
                raise CtlError(
                    "no session bus: DBUS_SESSION_BUS_ADDRESS is not set", EXIT_NO_DAEMON
                )
        try:
            bus = await asyncio.wait_for(MessageBus(bus_address=address).connect(), CALL_TIMEOUT)
        except (OSError, InvalidAddressError, AuthError, EOFError, TimeoutError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise CtlError(
                f"cannot connect to the session bus at {address}: {reason}", EXIT_NO_DAEMON
            ) from None
        client = cls(bus)
        try:
            (owner,) = await client.call_bus("GetNameOwner", "s", BUS_NAME)
        except CtlError as exc:
            bus.disconnect()
            if exc.code == EXIT_NO_DAEMON:
                raise CtlError(
                    f"syncmld is not running (no {BUS_NAME} on the session bus)", EXIT_NO_DAEMON
                ) from None
            raise
        client.owner = owner
        return client

    def close(self) -> None:
        """Drop the connection."""
        self.bus.disconnect()

    async def _send(self, msg: Message) -> Message:
        from dbus_fast import MessageType  # noqa: PLC0415

        try:
            reply = await asyncio.wait_for(self.bus.call(msg), CALL_TIMEOUT)
        except TimeoutError:
            raise CtlError("syncmld did not answer in time", EXIT_NO_DAEMON) from None
        except (OSError, EOFError) as exc:
            raise CtlError(f"the session bus went away ({exc})", EXIT_NO_DAEMON) from None
        if reply.message_type is MessageType.ERROR:
            text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise dbus_error(reply.error_name or "", text)
        return reply

    async def call_bus(self, member: str, signature: str, *args: Any) -> list[Any]:
        """Call ``member`` of the bus itself (``org.freedesktop.DBus``)."""
        from dbus_fast import Message  # noqa: PLC0415

        msg = Message(
            destination="org.freedesktop.DBus",
            path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus",
            member=member,
            signature=signature,
            body=list(args),
        )
        return list((await self._send(msg)).body)

    async def call_raw(self, path: str, interface: str, member: str, *args: Any) -> Message:
        """Call a method of syncmld; the reply message (its signature from the XML files)."""
        from dbus_fast import Message  # noqa: PLC0415

        msg = Message(
            destination=BUS_NAME,
            path=path,
            interface=interface,
            member=member,
            signature=_signature(interface, member),
            body=list(args),
        )
        return await self._send(msg)

    async def call(self, path: str, interface: str, member: str, *args: Any) -> list[Any]:
        """Call a method of syncmld; the reply's values, variants unwrapped."""
        reply = await self.call_raw(path, interface, member, *args)
        return [unwrap(v) for v in reply.body]

    async def snapshot(self) -> Snapshot:
        """Every device, run and conflict with its properties."""
        (objects,) = await self.call(MANAGER_PATH, OBJECT_MANAGER_INTERFACE, "GetManagedObjects")
        return Snapshot(objects)

    async def manager(self) -> dict[str, Any]:
        """The manager's properties."""
        (props,) = await self.call(MANAGER_PATH, PROPERTIES_INTERFACE, "GetAll", MANAGER_INTERFACE)
        return dict(props)


_STANDARD_SIGNATURES = {
    (PROPERTIES_INTERFACE, "GetAll"): "s",
    (PROPERTIES_INTERFACE, "Get"): "ss",
    (OBJECT_MANAGER_INTERFACE, "GetManagedObjects"): "",
}


def _signature(interface: str, member: str) -> str:
    """The input signature of ``interface.member``, from the packaged XML files."""
    if (interface, member) in _STANDARD_SIGNATURES:
        return _STANDARD_SIGNATURES[interface, member]
    from syncmld.dbus.names import interface_description  # noqa: PLC0415

    for method in interface_description(interface).methods:
        if method.name == member:
            return str(method.in_signature)
    raise LookupError(f"{interface} has no method {member}")


# --------------------------------------------------------------------------- output


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=False))


def _table(rows: Iterable[Sequence[str]], headers: Sequence[str]) -> None:
    """Print ``rows`` in aligned columns under ``headers``."""
    rows = [list(headers), *(list(r) for r in rows)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _last_sync(props: Mapping[str, Any]) -> str:
    if not props.get("LastSync"):
        return "never"
    return f"{_when(props['LastSync'])} ({_name(RESULTS, props.get('LastResult'))})"


def _yes(value: Any) -> str:
    return "yes" if value else "no"


# --------------------------------------------------------------------------- commands


async def cmd_status(client: Client, args: argparse.Namespace) -> int:
    """``syncmlctl status``."""
    manager, snap = await asyncio.gather(client.manager(), client.snapshot())
    runs = snap.of(RUN_INTERFACE)
    active = [str(p) for p in manager.get("ActiveRuns", [])]
    devices = snap.of(DEVICE_INTERFACE)
    if args.json:
        _print_json(
            {
                "version": manager.get("Version", ""),
                "features": list(manager.get("Features", [])),
                "state": _name(MANAGER_STATES, manager.get("State")),
                "active_runs": [
                    run_json(p, runs.get(p, {}), snap.device_name(runs.get(p, {}).get("Device")))
                    for p in active
                ],
                "devices": [device_json(p, d) for p, d in devices.items()],
            }
        )
        return EXIT_OK
    print(f"syncmld {manager.get('Version', '?')}: {_name(MANAGER_STATES, manager.get('State'))}")
    print(f"features: {', '.join(manager.get('Features', [])) or 'none'}")
    if not active:
        print("active runs: none")
    else:
        print("active runs:")
        for path in active:
            props = runs.get(path, {})
            who = snap.device_name(props.get("Device")) or props.get("Peer") or "?"
            print(f"  {path.rsplit('/', 1)[-1]}  {who}: {_progress_text(props)}")
    if not devices:
        print("devices: none configured")
        return EXIT_OK
    print("devices:")
    _table(
        (
            [
                "  " + str(d.get("Name", "")),
                str(d.get("Kind", "")),
                _yes(d.get("Connected")),
                _last_sync(d),
                _name(ATTENTION, d.get("AttentionReason")),
            ]
            for d in devices.values()
        ),
        ["  NAME", "KIND", "CONNECTED", "LAST SYNC", "ATTENTION"],
    )
    return EXIT_OK


async def cmd_devices(client: Client, args: argparse.Namespace) -> int:
    """``syncmlctl devices``."""
    snap = await client.snapshot()
    devices = snap.of(DEVICE_INTERFACE)
    if args.json:
        _print_json([device_json(p, d) for p, d in devices.items()])
        return EXIT_OK
    if not devices:
        print("no devices configured")
        return EXIT_OK
    _table(
        (
            [
                str(d.get("Name", "")),
                str(d.get("Kind", "")),
                str(d.get("Transport", "")) or "-",
                str(d.get("Address", "")) or "-",
                ", ".join(sorted(d.get("Stores", {}))) or "-",
                _yes(d.get("Connected")),
                _last_sync(d),
                str(d.get("ConflictCount", 0)),
                _name(ATTENTION, d.get("AttentionReason")),
            ]
            for d in devices.values()
        ),
        [
            "NAME",
            "KIND",
            "TRANSPORT",
            "ADDRESS",
            "STORES",
            "CONNECTED",
            "LAST SYNC",
            "CONFLICTS",
            "ATTENTION",
        ],
    )
    return EXIT_OK


async def cmd_history(client: Client, args: argparse.Namespace) -> int:
    """``syncmlctl history``."""
    start = (args.page - 1) * args.limit
    if args.device is None:
        (entries,) = await client.call(
            MANAGER_PATH, MANAGER_INTERFACE, "GetHistory", start, args.limit
        )
    else:
        path = (await client.snapshot()).device(args.device)
        (entries,) = await client.call(path, DEVICE_INTERFACE, "GetHistory", start, args.limit)
    # The daemon names the configured device of each entry ("" when none).
    for entry in entries:
        entry["device-name"] = str(entry.get("device-name", "")) or None
    if args.json:
        _print_json([history_json(e) for e in entries])
        return EXIT_OK
    if not entries:
        print("no sessions recorded" if args.page == 1 else f"no sessions on page {args.page}")
        return EXIT_OK
    for entry in entries:
        result = _name(RESULTS, entry.get("result"))
        status = entry.get("status", 0)
        line = (
            f"{_when(entry.get('started'))}  "
            f"{entry['device-name'] or entry.get('device', '') or '?'}  "
            f"{entry.get('role', '')}  {result}"
        )
        if status and status != 200:
            line += f" (status {status})"
        if entry.get("message"):
            line += f": {entry['message']}"
        print(line)
        for store in entry.get("stores", []):
            mode = ALERT_MODES.get(store.get("mode", 0), "unknown mode")
            print(
                f"    {store.get('local', '')} <-> {store.get('remote', '')} ({mode}): "
                f"{_counts(store)}"
            )
    return EXIT_OK


async def cmd_conflicts(client: Client, args: argparse.Namespace) -> int:
    """``syncmlctl conflicts``."""
    snap = await client.snapshot()
    device = None if args.device is None else snap.device(args.device)
    conflicts = [
        (p, c, snap.device_name(c.get("Device")))
        for p, c in snap.of(CONFLICT_INTERFACE).items()
        if device is None or c.get("Device") == device
    ]
    if args.json:
        _print_json([conflict_json(p, c, d) for p, c, d in conflicts])
        return EXIT_OK
    if not conflicts:
        print("no conflicts")
        return EXIT_OK
    _table(
        (
            [
                conflict_id(p, d),
                str(c.get("Store", "")),
                str(c.get("LocalId", "")) or "-",
                str(c.get("RemoteId", "")) or "-",
                str(c.get("Resolution", "")),
                _when(c.get("DetectedAt")),
            ]
            for p, c, d in conflicts
        ),
        ["ID", "STORE", "LOCAL ID", "REMOTE ID", "RESOLVED BY", "DETECTED"],
    )
    return EXIT_OK


async def cmd_resolve(client: Client, args: argparse.Namespace) -> int:
    """``syncmlctl resolve``."""
    snap = await client.snapshot()
    conflicts = snap.of(CONFLICT_INTERFACE)
    wanted = args.conflict
    matches = [
        p
        for p, c in conflicts.items()
        if wanted in (p, conflict_id(p, snap.device_name(c.get("Device"))))
        or wanted == p.rsplit("/", 1)[-1]
    ]
    if not matches:
        raise CtlError(f"no conflict {wanted!r} (see syncmlctl conflicts)", EXIT_NOT_FOUND)
    if len(matches) > 1:
        ids = ", ".join(conflict_id(p, snap.device_name(conflicts[p]["Device"])) for p in matches)
        raise CtlError(f"{wanted!r} is ambiguous: {ids}", EXIT_USAGE)
    (path,) = matches
    await client.call(path, CONFLICT_INTERFACE, "Resolve", CHOICES[args.choice])
    print(f"resolved {conflict_id(path, snap.device_name(conflicts[path].get('Device')))}")
    return EXIT_OK


async def cmd_cancel(client: Client, args: argparse.Namespace) -> int:
    """``syncmlctl cancel``."""
    snap = await client.snapshot()
    runs = snap.of(RUN_INTERFACE)
    active = {p: r for p, r in runs.items() if r.get("State") not in FINAL_STATES}
    target = args.target
    if target is None:
        targets = list(active)
        if not targets:
            raise CtlError("no sync is running", EXIT_NOT_FOUND)
    elif any(d.get("Name") == target for d in snap.of(DEVICE_INTERFACE).values()):
        device = snap.device(target)
        current = _path(snap.objects[device][DEVICE_INTERFACE].get("CurrentRun"))
        if current is None:
            raise CtlError(f"no sync with {target} is running", EXIT_NOT_FOUND)
        targets = [current]
    else:
        path = target if target.startswith("/") else f"{RUNS_PATH}/{target}"
        if path not in runs:
            raise CtlError(f"no run or device {target!r} (see syncmlctl status)", EXIT_NOT_FOUND)
        targets = [path]
    for path in targets:
        await client.call(path, RUN_INTERFACE, "Cancel")
        print(f"cancelling run {path.rsplit('/', 1)[-1]}")
    return EXIT_OK


# --------------------------------------------------------------------------- sync


def _progress_text(props: Mapping[str, Any]) -> str:
    """``running, receiving, 3/10 items, 1.2 kB sent, 4.0 kB received``."""
    state = _name(STATES, props.get("State"))
    parts = [state]
    if props.get("State") == 3 and props.get("Phase"):
        parts.append(_name(PHASES, props.get("Phase")))
    total = props.get("ItemsTotal", -1)
    done = props.get("ItemsDone", 0)
    parts.append(f"{done}/{total if total is not None and total >= 0 else '?'} items")
    parts.append(f"{_bytes(props.get('BytesSent', 0))} sent")
    parts.append(f"{_bytes(props.get('BytesReceived', 0))} received")
    return ", ".join(parts)


class Display(Protocol):
    """What ``sync`` shows while the run goes on."""

    def update(self, props: Mapping[str, Any]) -> None:
        """The run's properties changed (``props`` holds all of them)."""

    def close(self) -> None:
        """The run is over (or the command ends)."""


class NoDisplay:
    """``--json``: nothing until the end."""

    def update(self, props: Mapping[str, Any]) -> None:
        """Show nothing."""

    def close(self) -> None:
        """Nothing to close."""


class LineDisplay:
    """One line on stdout whenever state, phase or item counts change."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._last: tuple[Any, ...] | None = None

    def update(self, props: Mapping[str, Any]) -> None:
        """Print a line if something worth a line changed."""
        key = tuple(props.get(k) for k in ("State", "Phase", "ItemsDone", "ItemsTotal"))
        if key != self._last:
            self._last = key
            print(f"{self.device}: {_progress_text(props)}", flush=True)

    def close(self) -> None:
        """Nothing to close."""


class BarDisplay:
    """A live rich progress bar on stderr: one line for the run, one per store."""

    def __init__(self, device: str) -> None:
        from rich.console import Console  # noqa: PLC0415
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.device = device
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[extra]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self.progress.start()
        self.main = self.progress.add_task(device, total=None, extra="")
        self.stores: dict[str, Any] = {}

    def update(self, props: Mapping[str, Any]) -> None:
        """Move the bars."""
        state = props.get("State")
        final = state in FINAL_STATES
        what = _name(STATES, state)
        if state == 3 and props.get("Phase"):
            what = _name(PHASES, props.get("Phase"))
        done = props.get("ItemsDone", 0)
        total = props.get("ItemsTotal", -1)
        self.progress.update(
            self.main,
            description=f"{self.device}: {what}",
            completed=done,
            # A finished run's bar is full, even when the total was never known.
            total=done if final else total if total is not None and total >= 0 else None,
            extra=f"↑{_bytes(props.get('BytesSent', 0))} ↓{_bytes(props.get('BytesReceived', 0))}",
        )
        for name, entry in sorted(props.get("PerStore", {}).items()):
            if name not in self.stores:
                self.stores[name] = self.progress.add_task(f"  {name}", total=None, extra="")
            store_done = entry.get("done", 0)
            store_total = entry.get("total", -1)
            if final:
                store_total = store_done
            self.progress.update(
                self.stores[name],
                completed=store_done,
                total=store_total if store_total is not None and store_total >= 0 else None,
                extra=_name(PHASES, entry.get("phase")) if entry.get("phase") else "",
            )

    def close(self) -> None:
        """Leave the bars as they are and stop refreshing."""
        self.progress.stop()


@dataclass
class RunWatch:
    """The run ``sync`` follows, fed by the bus (see the module's docstring)."""

    owner: str
    path: str | None = None
    after_serial: int = 0
    props: dict[str, Any] = field(default_factory=dict)
    #: Signals that arrived before the Sync reply was handled: (serial, path, changes).
    early: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    daemon_gone: bool = False
    on_change: Callable[[], None] | None = None

    def handle(self, msg: Message) -> None:
        """Message handler: PropertiesChanged of runs, and the daemon leaving the bus."""
        from dbus_fast import MessageType  # noqa: PLC0415

        if msg.message_type is not MessageType.SIGNAL:
            return
        if (
            msg.member == "NameOwnerChanged"
            and msg.sender == "org.freedesktop.DBus"
            and msg.body
            and msg.body[0] == BUS_NAME
        ):
            if msg.body[2] != self.owner:
                self.daemon_gone = True
                self.changed.set()
            return
        path = str(msg.path or "")
        if (
            msg.member != "PropertiesChanged"
            or msg.interface != PROPERTIES_INTERFACE
            or msg.sender != self.owner
            or not path.startswith(RUNS_PATH + "/")
            or msg.body[0] != RUN_INTERFACE
        ):
            return
        changes = unwrap(msg.body[1])
        if self.path is None:
            self.early.append((msg.serial, path, changes))
        elif path == self.path and msg.serial > self.after_serial:
            self._apply(changes)

    def started(self, path: str, serial: int, props: Mapping[str, Any]) -> None:
        """The Sync reply: the run's path, the reply's serial, the initial properties."""
        self.path = path
        self.after_serial = serial
        self.props = dict(props)
        for sig_serial, sig_path, changes in self.early:
            if sig_path == path and sig_serial > serial:
                self.props.update(changes)
        self.early.clear()
        self.changed.set()

    def _apply(self, changes: Mapping[str, Any]) -> None:
        self.props.update(changes)
        self.changed.set()

    @property
    def final(self) -> bool:
        """The run is over."""
        return self.props.get("State") in FINAL_STATES


def _match_rules() -> list[str]:
    return [
        (
            f"type='signal',sender='{BUS_NAME}',interface='{PROPERTIES_INTERFACE}',"
            f"member='PropertiesChanged',path_namespace='{RUNS_PATH}'"
        ),
        (
            "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
            f"member='NameOwnerChanged',arg0='{BUS_NAME}'"
        ),
    ]


async def cmd_sync(client: Client, args: argparse.Namespace) -> int:
    """``syncmlctl sync``."""
    from dbus_fast import Variant  # noqa: PLC0415

    snap = await client.snapshot()
    device_path = snap.device(args.device)
    name = snap.device_name(device_path) or args.device
    watch = RunWatch(owner=client.owner)
    client.bus.add_message_handler(watch.handle)
    for rule in _match_rules():
        await client.call_bus("AddMatch", "s", rule)

    display: Display
    if args.json:
        display = NoDisplay()
    elif args.no_progress or not sys.stderr.isatty():
        display = LineDisplay(name)
    else:
        display = BarDisplay(name)

    loop = asyncio.get_running_loop()
    interrupts = 0
    cancel_task: asyncio.Task[Any] | None = None

    async def cancel() -> None:
        while watch.path is None:
            await watch.changed.wait()
            watch.changed.clear()
        with contextlib.suppress(CtlError):  # it may have finished meanwhile
            await client.call(watch.path, RUN_INTERFACE, "Cancel")

    def interrupted() -> None:
        nonlocal interrupts, cancel_task
        interrupts += 1
        watch.changed.set()
        if interrupts == 1:
            cancel_task = loop.create_task(cancel())

    def bus_lost(task: asyncio.Task[Any]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved: how the bus went away does not matter here
            watch.daemon_gone = True
            watch.changed.set()

    disconnected = loop.create_task(client.bus.wait_for_disconnect())  # type: ignore[no-untyped-call]
    disconnected.add_done_callback(bus_lost)

    options: dict[str, Any] = {}
    if args.store:
        options["stores"] = Variant("as", list(args.store))
    loop.add_signal_handler(signal.SIGINT, interrupted)
    try:
        try:
            reply = await client.call_raw(
                device_path, DEVICE_INTERFACE, "Sync", MODES.get(args.mode, 0), options
            )
        except CtlError as exc:
            if interrupts:
                raise CtlError("cancelled", EXIT_CANCELLED) from None
            raise CtlError(f"cannot sync with {name}: {exc}", exc.code) from None
        run_path, props = reply.body
        watch.started(run_path, reply.serial, unwrap(props))
        deadline: float | None = None
        while True:
            display.update(watch.props)
            if watch.final:
                break
            if watch.daemon_gone:
                raise CtlError(f"syncmld stopped during the sync with {name}", EXIT_NO_DAEMON)
            if interrupts > 1:
                raise CtlError(f"sync with {name} cancelled", EXIT_CANCELLED)
            if interrupts and deadline is None:
                deadline = loop.time() + CANCEL_TIMEOUT
            watch.changed.clear()
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                await asyncio.wait_for(watch.changed.wait(), timeout)
            except TimeoutError:
                raise CtlError(
                    f"sync with {name} cancelled (the run did not confirm it)", EXIT_CANCELLED
                ) from None
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        display.close()
        if cancel_task is not None and not cancel_task.done():
            cancel_task.cancel()
        disconnected.cancel()
    return _summary(name, str(run_path), watch.props, as_json=args.json)


def _summary(device: str, path: str, props: Mapping[str, Any], *, as_json: bool) -> int:
    """Print the outcome of a finished run; its exit status."""
    result = props.get("Result", 0)
    state = props.get("State")
    if result == 4 or state == 7:
        code = EXIT_CANCELLED
    elif result == 1 and state == 5:
        code = EXIT_OK
    else:
        code = EXIT_FAILED
    if as_json:
        _print_json(run_json(path, props, device))
        return code
    for store, entry in sorted(props.get("PerStore", {}).items()):
        mode = ALERT_MODES.get(entry.get("mode", 0), "unknown mode")
        line = f"{store} <-> {entry.get('remote', '') or '?'} ({mode}): {_counts(entry)}"
        status = entry.get("status", 0)
        if status and status != 200:
            line += f", status {status}"
            if entry.get("message"):
                line += f" ({entry['message']})"
        print(line)
    elapsed = ""
    if props.get("Started") and props.get("Finished"):
        elapsed = f" in {props['Finished'] - props['Started']:.1f} s"
    traffic = (
        f"{_bytes(props.get('BytesSent', 0))} sent, "
        f"{_bytes(props.get('BytesReceived', 0))} received"
    )
    outcome = _name(RESULTS, result)
    if code == EXIT_OK:
        print(f"sync with {device}: {outcome}{elapsed} ({traffic})")
    else:
        error = str(props.get("ErrorName", ""))
        reason = str(dbus_error(error, str(props.get("ErrorDetail", "")))) if error else ""
        why = f": {reason}" if reason and reason != outcome else ""
        print(f"sync with {device}: {outcome}{elapsed}{why}", flush=True)
        print(f"syncmlctl: sync with {device} {outcome}{why}", file=sys.stderr)
    return code


# --------------------------------------------------------------------------- arguments


_COMMANDS: dict[str, Callable[[Client, argparse.Namespace], Any]] = {
    "status": cmd_status,
    "devices": cmd_devices,
    "sync": cmd_sync,
    "cancel": cmd_cancel,
    "history": cmd_history,
    "conflicts": cmd_conflicts,
    "resolve": cmd_resolve,
}


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``syncmlctl``."""
    epilog = "exit status:\n" + "\n".join(f"  {k}  {v}" for k, v in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="syncmlctl",
        description="Control a running syncmld over the session D-Bus.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"syncmlctl {__version__}")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    # Subcommands accept --json too; SUPPRESS keeps the top-level value when absent.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of text"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser(
        "status",
        parents=[common],
        help="the daemon's version, features and state, active runs, devices",
    )
    sub.add_parser("devices", parents=[common], help="the configured phones and servers")

    p = sub.add_parser(
        "sync",
        parents=[common],
        help="sync with a device now and follow the run",
        description="Sync with DEVICE now, show the progress, then a summary per store "
        "(+added ~replaced -deleted on each side).  Ctrl-C cancels the run (exit 6).",
    )
    p.add_argument("device", metavar="DEVICE", help="a name from syncmlctl devices")
    p.add_argument(
        "--mode",
        choices=list(MODES),
        help="sync mode (default: each datastore's configured mode); "
        '"phone" is the peer, "desktop" the local stores',
    )
    p.add_argument(
        "--store",
        metavar="NAME",
        nargs="+",
        action="extend",
        help="only these local stores (default: all of the device's)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="plain progress lines instead of a progress bar (the default when stderr is "
        "not a terminal)",
    )

    p = sub.add_parser(
        "cancel",
        help="cancel a running sync",
        description="Cancel run RUN (its number or path), the run of DEVICE, or every "
        "running sync when no argument is given.",
    )
    p.add_argument("target", metavar="RUN|DEVICE", nargs="?")

    p = sub.add_parser(
        "history",
        parents=[common],
        help="recorded sessions, newest first",
        description="Recorded sessions (of DEVICE, or of every peer), newest first.  Store "
        "counts read +added ~replaced -deleted.",
    )
    p.add_argument("device", metavar="DEVICE", nargs="?")
    p.add_argument(
        "--limit", type=_positive, default=20, metavar="N", help="sessions per page (20)"
    )
    p.add_argument("--page", type=_positive, default=1, metavar="P", help="page number (1)")

    p = sub.add_parser("conflicts", parents=[common], help="conflicts waiting for a review")
    p.add_argument("device", metavar="DEVICE", nargs="?")

    p = sub.add_parser(
        "resolve",
        help="review a conflict",
        description="accept: keep what the conflict policy did; keep-desktop: the desktop's "
        "version replaces the phone's at the next sync.",
    )
    p.add_argument("conflict", metavar="CONFLICT", help="DEVICE/K as syncmlctl conflicts shows")
    p.add_argument("choice", choices=list(CHOICES))
    return parser


async def _run(args: argparse.Namespace) -> int:
    client = await Client.connect()
    try:
        result: int = await _COMMANDS[args.command](client, args)
        return result
    finally:
        client.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``syncmlctl``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except CtlError as exc:
        print(f"syncmlctl: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("syncmlctl: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        # The reader went away (syncmlctl ... | head); nothing more to say.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return EXIT_OK
    except Exception as exc:  # last resort: one line, never a traceback
        print(f"syncmlctl: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
