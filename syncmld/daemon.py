"""``syncmld run``: the daemon wiring transports, engine, state, D-Bus and BlueZ.

Theory of operation
-------------------
:class:`Daemon` owns, for its lifetime, the state repository, the local
stores and one :class:`~syncmld.transports.runner.SessionRunner` shared by the
listeners (HTTP, OBEX over TCP, Bluetooth).  Every transport is optional:
one that cannot start because something outside syncmld is missing (no
session bus, no BlueZ, no system bus) is reported once and the others keep
serving; one the configuration asks for and that fails (a port in use, an
unwritable state directory) stops the start with one clear message.

Runs.  Each sync session - a phone or client that connected to a listener, a
``Device.Sync`` call, an automatic sync - is a
:class:`~syncmld.dbus.service.RunObject`, created the moment it is known
and exported on the bus when there is one.  Server-role sessions are
followed through the runner's observer, ``observer(key, event)``: the first
event of an unknown key creates the run, the engine's events update it
(peer, per-store progress, conflicts, guard trips, authentication
failures), and the final ``SessionFinished`` - sent after the outcome was
persisted - closes it.  Client-role sessions (a ``[servers.*]`` device) are
driven here over HTTP, with the engine's events taken from each reply.
Finished runs stay on the bus for :attr:`Daemon.run_retention` seconds.

Nothing half-committed.  Persisting is always the transport's (or, for the
client role, this module's) last step of a session that ended: a cancelled
or broken-off session is aborted in the engine, which leaves the peer's
state untouched and only appends the failed run to the history.

Auto-sync.  The :class:`~syncmld.transports.bluetooth.BluezWatcher` mirrors
BlueZ's devices; a configured phone's ``Connected``/``Paired`` are copied to
its device object.  When ``Connected`` turns true for a paired phone with
``auto_sync``, a timer waits ``settle_delay`` seconds, then a PC-initiated
sync starts - unless the phone went away meanwhile, a sync with it is
running, or its last sync ended less than ``min_interval`` seconds ago.

Start-up cost.  Only what a waiting daemon needs is imported before
``READY=1``: the state database (SQLAlchemy) is opened on first use - the
first session or history read - unless configured devices need their last
results at start; a SQLite file's directory is still checked up front, so an
unusable one stops the start with one clear message.  The format converters
are loaded by the first session that needs them (see :mod:`syncmld.config`).

Stopping (SIGTERM, SIGINT): ``STOPPING=1``, pending auto-sync timers are
dropped, every live session is aborted and recorded, the listeners close,
the name is released, the repository is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dbus_fast import Variant

from syncmld import __version__
from syncmld.config import Config, DeviceConfig, RemoteServerConfig, client_config
from syncmld.dbus.names import (
    RUNS_PATH,
    Attention,
    ConflictChoice,
    Error,
    Phase,
    Result,
    RunState,
    ServiceError,
    SyncModeCode,
    device_path,
)
from syncmld.dbus.service import (
    BusUnavailable,
    ConflictObject,
    DbusService,
    DeviceObject,
    ManagerObject,
    RunObject,
)
from syncmld.engine.client import ClientResult, ClientSession
from syncmld.engine.server import notification
from syncmld.engine.session import (
    AuthFailed,
    ConflictResolved,
    Datastore,
    Event,
    GuardTripped,
    PeerIdentified,
    Progress,
    SessionFinished,
    StoreStarted,
)
from syncmld.engine.state import RunRecord, StoreCounts
from syncmld.engine.store import Store
from syncmld.errors import UserError
from syncmld.protocol.codes import StatusCode, SyncMode
from syncmld.sdnotify import Notifier
from syncmld.state.files import prepare_database_directory
from syncmld.transports.runner import MessageExchanged, SessionRunner, in_thread

if TYPE_CHECKING:
    from syncmld.state.repository import StateRepository
    from syncmld.transports.bluetooth import BluetoothProfiles, BluezWatcher, DeviceInfo
    from syncmld.transports.http import HttpServer
    from syncmld.transports.obex import ObexTcpServer

log = logging.getLogger("syncmld.daemon")

#: Seconds a finished run stays on the bus.
RUN_RETENTION = 600.0
#: Most history entries one GetHistory call returns.
MAX_HISTORY_PAGE = 1000
#: Our server id in notifications (what Nokia and Sony Ericsson phones expect from a PC).
SAN_SERVER_ID = "PC Suite"

# Device.Sync's mode, for each role.  "phone" is the peer, "desktop" us; in
# the server role (PC-initiated sync with a phone) the phone is the client.
_SERVER_ROLE_MODES = {
    SyncModeCode.TWO_WAY: SyncMode.TWO_WAY,
    SyncModeCode.SLOW: SyncMode.SLOW,
    SyncModeCode.REFRESH_FROM_PHONE: SyncMode.REFRESH_FROM_CLIENT,
    SyncModeCode.REFRESH_FROM_DESKTOP: SyncMode.REFRESH_FROM_SERVER,
    SyncModeCode.ONE_WAY_FROM_PHONE: SyncMode.ONE_WAY_FROM_CLIENT,
    SyncModeCode.ONE_WAY_FROM_DESKTOP: SyncMode.ONE_WAY_FROM_SERVER,
}
_CLIENT_ROLE_MODES = {
    SyncModeCode.TWO_WAY: SyncMode.TWO_WAY,
    SyncModeCode.SLOW: SyncMode.SLOW,
    SyncModeCode.REFRESH_FROM_PHONE: SyncMode.REFRESH_FROM_SERVER,
    SyncModeCode.REFRESH_FROM_DESKTOP: SyncMode.REFRESH_FROM_CLIENT,
    SyncModeCode.ONE_WAY_FROM_PHONE: SyncMode.ONE_WAY_FROM_SERVER,
    SyncModeCode.ONE_WAY_FROM_DESKTOP: SyncMode.ONE_WAY_FROM_CLIENT,
}
_PHASES = {"receiving": Phase.RECEIVING, "sending": Phase.SENDING, "mapping": Phase.MAPPING}
_SLOW_ALERTS = (201, 207)  # slow sync, and its server-alerted form
# The engine's conflict outcomes, as Conflict.Resolution names them ("phone" is the peer).
_RESOLUTIONS = {
    "merged": "merge",
    "remote-won": "phone-wins",
    "local-won": "desktop-wins",
    "kept-both": "keep-both",
}
# The client engine's phases (``syncmld.engine.client.Phase`` values) as Run.Phase.
_CLIENT_PHASES = {
    "send-sync": Phase.SENDING,
    "receive-sync": Phase.RECEIVING,
    "maps": Phase.MAPPING,
}


# --------------------------------------------------------------------------- logging


_PRIORITIES = ((logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


class JournalFormatter(logging.Formatter):
    """``<N>message`` lines (sd-daemon priority prefixes) for stderr connected to the journal."""

    def format(self, record: logging.LogRecord) -> str:
        """The record's message with its priority prefix, one line per line."""
        prio = next((p for level, p in _PRIORITIES if record.levelno >= level), 7)
        if record.levelno >= logging.CRITICAL:
            prio = 2
        text = super().format(record)
        return "\n".join(f"<{prio}>{line}" for line in text.splitlines() or [""])


def setup_logging(level: int = logging.INFO, *, environ: Mapping[str, str] | None = None) -> None:
    """Log to stderr: priority prefixes when it goes to the journal, ``syncmld:`` otherwise.

    systemd sets ``$JOURNAL_STREAM`` for a service whose stderr is the journal.
    Records with an exception become one line (no traceback) above DEBUG.
    """
    from syncmld.cli import _OneLine  # noqa: PLC0415 (the CLI module imports us lazily)

    env = os.environ if environ is None else environ
    handler = logging.StreamHandler(sys.stderr)
    if env.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(logging.Formatter("syncmld: %(message)s"))
    if level > logging.DEBUG:
        handler.addFilter(_OneLine())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("syncmld").setLevel(level)


# --------------------------------------------------------------------------- helpers


def run_result(run: RunRecord) -> Result:
    """The D-Bus result of a finished session."""
    if run.status == StatusCode.OPERATION_CANCELLED or run.message == "cancelled":
        return Result.CANCELLED
    if run.status == 200 and all(s.status == 200 for s in run.stores):
        return Result.OK
    if run.stores and any(s.status == 200 for s in run.stores):
        return Result.PARTIAL
    return Result.FAILED


def _store_counts(counts: StoreCounts) -> dict[str, Variant]:
    return {
        "local": Variant("s", counts.local_uri),
        "remote": Variant("s", counts.remote_uri),
        "mode": Variant("u", counts.mode or 0),
        "local-added": Variant("u", counts.local_added),
        "local-replaced": Variant("u", counts.local_replaced),
        "local-deleted": Variant("u", counts.local_deleted),
        "remote-added": Variant("u", counts.remote_added),
        "remote-replaced": Variant("u", counts.remote_replaced),
        "remote-deleted": Variant("u", counts.remote_deleted),
        "conflicts": Variant("u", counts.conflicts),
        "status": Variant("u", counts.status),
        "message": Variant("s", counts.message),
    }


def history_entry(run: RunRecord, device_name: str = "") -> dict[str, Variant]:
    """One ``GetHistory`` entry (see ``org.syncmld.Syncmld1.Device.xml``).

    ``device_name`` is the configured device the run was with (``""`` when unknown).
    """
    return {
        "device": Variant("s", run.dev_id),
        "device-name": Variant("s", device_name),
        "role": Variant("s", run.role),
        "started": Variant("d", float(run.started)),
        "finished": Variant("d", float(run.finished or 0.0)),
        "status": Variant("u", run.status),
        "result": Variant("u", int(run_result(run))),
        "message": Variant("s", run.message),
        "stores": Variant("aa{sv}", [_store_counts(s) for s in run.stores]),
    }


def _error_for(result: Result, status: int, hint: Error | None) -> str:
    """The ``ErrorName`` of a finished run: what went wrong, as one documented name."""
    if result in (Result.OK, Result.NONE):
        return ""
    if result is Result.CANCELLED:
        return Error.CANCELLED.dbus_name
    if hint is not None:
        return hint.dbus_name
    if status in (401, 407):
        return Error.AUTH_FAILED.dbus_name
    if status == 500:
        return Error.INTERNAL.dbus_name
    return Error.TRANSPORT_FAILED.dbus_name


@dataclasses.dataclass(eq=False)
class _Peer:
    """One configured peer: a phone (``[devices.*]``) or a server (``[servers.*]``)."""

    name: str
    obj: DeviceObject
    device: DeviceConfig | None = None
    server: RemoteServerConfig | None = None
    run: RunObject | None = None
    task: asyncio.Task[None] | None = None
    session_key: str | None = None
    last_end: float | None = None  # monotonic
    settle: asyncio.TimerHandle | None = None
    conflicts: int = 0


# --------------------------------------------------------------------------- the daemon


class Daemon:
    """The long-running service (see the module docstring).

    Args:
        config: the configuration.
        session_bus: the D-Bus address to export on (default:
            ``$DBUS_SESSION_BUS_ADDRESS``); ``""`` disables D-Bus.
        system_bus: the bus BlueZ is on (default: the system bus); ``""``
            disables Bluetooth.
        notifier: the service manager's notification socket.
        run_retention: seconds a finished run stays on the bus.
    """

    def __init__(
        self,
        config: Config,
        *,
        session_bus: str | None = None,
        system_bus: str | None = None,
        notifier: Notifier | None = None,
        run_retention: float = RUN_RETENTION,
    ) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        self.run_retention = run_retention
        self._session_bus = session_bus
        self._system_bus = system_bus
        self._state = _OnDemandState(config.state_url)
        #: The state repository (opened on first use, see the module docstring).
        self.repository = cast("StateRepository", self._state)
        self.stores: dict[str, Store] = {}
        self.runner: SessionRunner | None = None
        self.http: HttpServer | None = None
        self.obex: ObexTcpServer | None = None
        self.watcher: BluezWatcher | None = None
        self.profiles: BluetoothProfiles | None = None
        self.features: list[str] = []
        self.manager = ManagerObject(
            self,
            {"Version": __version__, "Features": [], "State": 1, "ActiveRuns": []},
        )
        self.dbus = DbusService(self.manager, bus_address=session_bus or None)
        self.peers: dict[str, _Peer] = {}
        self.runs: dict[str, RunObject] = {}
        self._runs_by_key: dict[str, RunObject] = {}
        self._runner_for_key: dict[str, SessionRunner] = {}
        self._hints: dict[str, Error] = {}  # run path -> the error its events pointed at
        self._run_numbers = 0
        self._conflict_numbers = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._stopping = False
        self._watchdog: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- start/stop

    async def start(self) -> None:
        """Open the state, start the transports, D-Bus and the BlueZ watcher.

        Raises:
            UserError: the state database or a configured listener cannot be
                used (one line saying which and why).  Nothing is left running.
        """
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self._state.check()
        for name, sc in self.config.stores.items():
            self.stores[name] = sc.open()
        self.runner = SessionRunner(
            self.config.server_config(self.stores, defer_codecs=True),
            self.repository,
            observer=self._observe,
        )
        self._make_peers()
        await in_thread(self._load_last_runs)
        await self._start_http()
        await self._start_obex()
        await self._start_dbus()
        await self._start_bluetooth()
        if self.config.servers:
            self.features.append("client")
        self.manager.update(Features=list(self.features))
        self._watchdog = asyncio.create_task(self.notifier.watchdog())
        status = self.describe()
        log.info("%s", status)
        self.notifier.ready(status)

    def describe(self) -> str:
        """One line on what is being served (the service status)."""
        parts = []
        if self.http is not None:
            parts.append(f"HTTP on {self.http.url}")
        if self.obex is not None:
            parts.append(f"OBEX/TCP on {self.obex.host}:{self.obex.port}")
        if "bluetooth" in self.features:
            waiting = self.watcher is not None and not self.watcher.bluez_running
            parts.append("Bluetooth (waiting for BlueZ)" if waiting else "Bluetooth")
        if self.dbus.connected:
            parts.append("D-Bus")
        return (
            "serving " + (", ".join(parts) if parts else "nothing") + f"; {len(self.peers)} devices"
        )

    async def _start_http(self) -> None:
        http = self.config.http
        if not http.enabled:
            return
        from syncmld.transports.http import HttpServer, make_app  # noqa: PLC0415

        assert self.runner is not None
        app = make_app(
            self.runner.config,
            self.repository,
            session_timeout=http.session_timeout,
            max_request_size=http.max_request_size,
            public_url=http.public_url,
            runner=self.runner,
        )
        server = HttpServer(app, host=http.host, port=http.port)
        await server.start()
        self.http = server
        self.features.append("http-server")

    async def _start_obex(self) -> None:
        obex = self.config.obex
        if not obex.enabled:
            return
        from syncmld.transports.obex import ObexTcpServer  # noqa: PLC0415

        assert self.runner is not None
        server = ObexTcpServer(
            self.runner.config,
            self.repository,
            host=obex.host,
            port=obex.port,
            idle_timeout=obex.idle_timeout,
            runner=self.runner,
        )
        await server.start()
        self.obex = server
        self.features.append("obex-tcp")

    async def _start_dbus(self) -> None:
        if self._session_bus == "":
            return
        try:
            await self.dbus.start()
        except BusUnavailable as exc:
            log.warning("%s: not offering the D-Bus API; serving the other transports", exc)

    async def _start_bluetooth(self) -> None:
        if self._system_bus == "":
            return
        bt = self.config.bluetooth
        watched = any(p.device is not None and p.device.address for p in self.peers.values())
        if not watched and not bt.enabled:
            return
        from syncmld.transports.bluetooth import (  # noqa: PLC0415
            BluetoothProfiles,
            BluezWatcher,
        )

        bus = self._system_bus or None
        watcher = BluezWatcher(
            bus, on_change=self._bluez_change, on_connected=self._bluez_connected
        )
        # Without BlueZ, the watcher and the profiles would each say so; the
        # daemon says it once, below, for both.
        watcher._said_absent = True
        try:
            await watcher.start()
        except UserError as exc:
            log.warning("Bluetooth is not available (%s); serving the other transports", exc)
            return
        self.watcher = watcher
        self.features.append("bluetooth-watch")
        for address, info in watcher.devices.items():
            self._bluez_change(address, info)
        absent = not watcher.bluez_running
        if not bt.enabled:
            if absent:
                log.warning("BlueZ (org.bluez) is not running; watching for it to start")
            return
        profiles = BluetoothProfiles(
            bus,
            channel=bt.channel,
            on_server_connection=self._bluetooth_connection,
            require_authorization=bt.require_authorization,
        )
        profiles._said_absent = absent
        try:
            await profiles.start()
        except UserError as exc:
            log.warning("cannot register the Bluetooth SyncML profiles: %s", exc)
            return
        if absent:
            log.warning(
                "BlueZ (org.bluez) is not running; watching for it to start, the SyncML "
                "Bluetooth services will be registered when it does"
            )
        self.profiles = profiles
        self.features.append("bluetooth")

    async def stop(self) -> None:
        """End everything (see the module docstring).  Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        self.notifier.stopping()
        self.manager.update(State=2, urgent=True)
        for timer in list(self._timers):
            timer.cancel()
        self._timers.clear()
        for peer in self.peers.values():
            if peer.settle is not None:
                peer.settle.cancel()
        # Our own tasks (client-role and PC-initiated syncs) abort their sessions.
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
        if self.runner is not None:
            await self.runner.abort_all("the daemon stops")
        for closer in (self.profiles, self.watcher, self.obex, self.http):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer.stop()
        await self.dbus.stop()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        self._state.close()
        self.notifier.close()

    # ----------------------------------------------------------------- peers

    def _make_peers(self) -> None:
        for name, dev in self.config.devices.items():
            self._add_peer(name, device=dev)
        for name, server in self.config.servers.items():
            if name not in self.peers:
                self._add_peer(name, server=server)

    def _add_peer(
        self,
        name: str,
        *,
        device: DeviceConfig | None = None,
        server: RemoteServerConfig | None = None,
    ) -> None:
        if device is not None:
            address = device.address or (
                f"{device.host}:{device.port}" if device.host is not None else ""
            )
            values = {
                "Name": name,
                "Kind": "phone",
                "Address": address,
                "DevId": device.dev_id or "",
                "Transport": device.transport or "",
                "Stores": dict(device.stores),
                "AutoSync": device.auto_sync,
                "SettleDelay": float(device.settle_delay),
                "MinInterval": float(device.min_interval),
            }
        else:
            assert server is not None
            values = {
                "Name": name,
                "Kind": "server",
                "Address": server.url,
                "DevId": server.url,
                "Transport": "http",
                "Stores": {p.local: p.remote for p in server.sync},
                "AutoSync": False,
                "SettleDelay": 0.0,
                "MinInterval": 0.0,
            }
        values |= {
            "Connected": False,
            "Paired": False,
            "CurrentRun": "/",
            "LastSync": 0.0,
            "LastResult": 0,
            "ConflictCount": 0,
            "AttentionReason": 0,
        }
        obj = DeviceObject(self, device_path(name), name, values)
        self.peers[name] = _Peer(name=name, obj=obj, device=device, server=server)
        self.dbus.add(obj)

    def _load_last_runs(self) -> None:
        """``LastSync`` and ``LastResult`` of each device from the history (worker thread)."""
        for peer in self.peers.values():
            dev_id = peer.obj.values["DevId"]
            last = self.repository.history(dev_id, limit=1) if dev_id else []
            if last:
                peer.obj.values["LastSync"] = float(last[0].finished or last[0].started)
                peer.obj.values["LastResult"] = int(run_result(last[0]))

    def _peer_by_dev_id(self, dev_id: str) -> _Peer | None:
        for peer in self.peers.values():
            if peer.obj.values["DevId"] == dev_id:
                return peer
        return None

    def _peer_by_address(self, address: str) -> _Peer | None:
        for peer in self.peers.values():
            if peer.device is not None and peer.device.address == address.upper():
                return peer
        return None

    def _attention(self, peer: _Peer | None, reason: Attention, detail: str) -> None:
        log.warning("%s needs attention: %s", peer.name if peer else "a peer", detail)
        if peer is None:
            return
        peer.obj.update(AttentionReason=int(reason), urgent=True)
        if peer.obj.exported:
            peer.obj.attention_needed(int(reason), detail)

    # ----------------------------------------------------------------- runs

    def _new_run(
        self,
        *,
        role: str,
        transport: str,
        mode: int,
        peer: _Peer | None,
        state: RunState,
        stores: Mapping[str, str] = {},
    ) -> RunObject:
        self._run_numbers += 1
        number = self._run_numbers
        run = RunObject(
            self,
            f"{RUNS_PATH}/{number}",
            number,
            {
                "Device": peer.obj.path if peer is not None else "/",
                "Peer": peer.obj.values["DevId"] if peer is not None else "",
                "Role": role,
                "Transport": transport,
                "Mode": mode,
                "State": int(state),
                "Phase": int(Phase.UNKNOWN),
                "Started": time.time(),
                "Finished": 0.0,
                "ItemsDone": 0,
                "ItemsTotal": -1,
                "BytesSent": 0,
                "BytesReceived": 0,
                "PerStore": {
                    local: {
                        "remote": Variant("s", remote),
                        "mode": Variant("u", 0),
                        "phase": Variant("u", 0),
                        "done": Variant("u", 0),
                        "total": Variant("x", -1),
                    }
                    for local, remote in stores.items()
                },
                "Result": 0,
                "Status": 0,
                "ErrorName": "",
                "ErrorDetail": "",
            },
        )
        self.runs[run.path] = run
        self.dbus.add(run)
        if peer is not None:
            self._attach(run, peer)
        self._active_changed()
        return run

    def _attach(self, run: RunObject, peer: _Peer) -> None:
        run.device = peer.obj
        peer.run = run
        peer.obj.update(CurrentRun=run.path, urgent=True)
        run.update(Device=peer.obj.path)

    def _active_changed(self) -> None:
        active = [path for path, run in self.runs.items() if not run.final]
        self.manager.update(ActiveRuns=active)
        if not self._stopping:
            busy = (
                f"; {len(active)} sync{'s' if len(active) != 1 else ''} running" if active else ""
            )
            self.notifier.status(self.describe() + busy)

    def _apply(self, run: RunObject, event: Event) -> None:
        """Reflect one engine event in ``run`` (and its device)."""
        peer = self.peers.get(run.device.config_name) if run.device is not None else None
        if isinstance(event, PeerIdentified):
            run.update(Peer=event.dev_id)
            if peer is None:
                found = self._peer_by_dev_id(event.dev_id)
                if found is not None and (found.run is None or found.run.final):
                    self._attach(run, found)
        elif isinstance(event, StoreStarted):
            per = dict(run.values["PerStore"])
            entry = dict(per.get(event.local_uri, {}))
            entry.setdefault("remote", Variant("s", event.remote_uri))
            entry |= {
                "mode": Variant("u", event.mode),
                "phase": Variant("u", int(Phase.INIT)),
                "done": Variant("u", 0),
                "total": Variant("x", -1),
            }
            per[event.local_uri] = entry
            run.update(PerStore=per, State=int(RunState.RUNNING), Phase=int(Phase.INIT))
            # A slow sync nobody here asked for, with a peer we synced before:
            # the peer lost its state (a phone reset) or the anchors disagree.
            if (
                event.mode in _SLOW_ALERTS
                and run.values["Mode"] != SyncModeCode.SLOW
                and peer is not None
                and peer.obj.values["LastSync"] > 0
            ):
                self._attention(
                    peer,
                    Attention.UNEXPECTED_SLOW_SYNC,
                    f"{event.local_uri}: the peer asked for a slow sync",
                )
        elif isinstance(event, Progress):
            per = dict(run.values["PerStore"])
            entry = dict(per.get(event.local_uri, {}))
            phase = _PHASES.get(event.phase, Phase.UNKNOWN)
            entry |= {
                "phase": Variant("u", int(phase)),
                "done": Variant("u", event.done),
                "total": Variant("x", -1 if event.total is None else event.total),
            }
            per[event.local_uri] = entry
            done = sum(int(e["done"].value) for e in per.values() if "done" in e)
            totals = [int(e["total"].value) for e in per.values() if "total" in e]
            total = -1 if not totals or any(t < 0 for t in totals) else sum(totals)
            run.update(
                PerStore=per,
                ItemsDone=done,
                ItemsTotal=total,
                Phase=int(phase),
                State=int(RunState.RUNNING),
            )
        elif isinstance(event, ConflictResolved):
            if peer is not None:
                self._add_conflict(peer, run, event)
        elif isinstance(event, GuardTripped):
            self._hints[run.path] = Error.STORAGE_EMPTY
            self._attention(peer, Attention.STORAGE_EMPTY, f"{event.local_uri}: {event.reason}")
        elif isinstance(event, AuthFailed):
            if event.final:
                self._hints[run.path] = Error.AUTH_FAILED
                self._attention(
                    peer, Attention.AUTH_FAILED, f"authentication failed (status {event.status})"
                )
        elif isinstance(event, MessageExchanged):
            run.update(
                BytesReceived=run.values["BytesReceived"] + event.received,
                BytesSent=run.values["BytesSent"] + event.sent,
            )
        elif isinstance(event, SessionFinished):
            self._finish(run, event.run)

    def _finish(self, run: RunObject, record: RunRecord) -> None:
        if run.final:
            return
        result = run_result(record)
        per = dict(run.values["PerStore"])
        for counts in record.stores:
            entry = dict(per.get(counts.local_uri, {}))
            entry |= _store_counts(counts)
            entry["phase"] = Variant("u", int(Phase.FINISHED))
            per[counts.local_uri] = entry
        state = {
            Result.OK: RunState.DONE,
            Result.PARTIAL: RunState.DONE,
            Result.CANCELLED: RunState.CANCELLED,
        }.get(result, RunState.FAILED)
        finished = record.finished or time.time()
        run.update(
            PerStore=per,
            Peer=record.dev_id,
            State=int(state),
            Phase=int(Phase.FINISHED),
            Result=int(result),
            Status=record.status,
            Finished=float(finished),
            ErrorName=_error_for(result, record.status, self._hints.pop(run.path, None)),
            ErrorDetail=record.message if result is not Result.OK else "",
            urgent=True,
        )
        log.info(
            "run %d with %s: %s%s",
            run.number,
            record.dev_id or "?",
            result.name.lower(),
            f" ({record.message})" if record.message and result is not Result.OK else "",
        )
        if run.device is not None:
            peer = self.peers.get(run.device.config_name)
            if peer is not None:
                peer.last_end = time.monotonic()
                if peer.run is run:
                    peer.run = None
                    peer.session_key = None
                peer.obj.update(
                    CurrentRun="/" if peer.run is None else peer.run.path,
                    LastSync=float(finished),
                    LastResult=int(result),
                    urgent=True,
                )
                if record.dev_id and not peer.obj.values["DevId"]:
                    peer.obj.update(DevId=record.dev_id)
        self._active_changed()
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.run_retention, self._drop_run, run)
        self._timers.add(timer)

    def _drop_run(self, run: RunObject) -> None:
        self.runs.pop(run.path, None)
        self.dbus.remove(run)
        for key, value in list(self._runs_by_key.items()):
            if value is run:
                del self._runs_by_key[key]

    # ----------------------------------------------------------------- server-role sessions

    def _observe(self, key: str, event: Event) -> None:
        """The session runner's observer: server-role sessions of every transport."""
        run = self._runs_by_key.get(key)
        if run is None:
            transport = key.split("-", 1)[0]
            run = self._new_run(
                role="server", transport=transport, mode=0, peer=None, state=RunState.RUNNING
            )
            run.cancel_hook = lambda: self._abort_key(key)
            self._runs_by_key[key] = run
        self._apply(run, event)

    def _abort_key(self, key: str) -> None:
        runner = self._runner_for_key.get(key, self.runner)
        if runner is not None:
            self._spawn(runner.abort(key, "cancelled"))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _bluetooth_connection(
        self,
        device_path_: str,
        address: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        """A phone connected to our SyncML Server service: serve it like OBEX/TCP."""
        from syncmld.transports.obex import serve_obex_connection  # noqa: PLC0415

        assert self.runner is not None
        await serve_obex_connection(
            reader,
            writer,
            self.runner,
            transport="bluetooth",
            peer=address,
            idle_timeout=self.config.obex.idle_timeout,
        )

    # ----------------------------------------------------------------- Backend (D-Bus)

    def sync(self, device: DeviceObject, mode: int, options: dict[str, Variant]) -> RunObject:
        """``Device.Sync``: see :class:`~syncmld.dbus.service.Backend`."""
        peer = self.peers.get(device.config_name)
        if peer is None:
            raise ServiceError(Error.NOT_FOUND, f"no device {device.config_name!r}")
        return self.start_sync(peer, mode, options)

    def start_sync(
        self, peer: _Peer, mode: int, options: Mapping[str, Variant] | None = None
    ) -> RunObject:
        """Start a sync with ``peer`` now.

        Raises:
            ServiceError: InvalidArgs, Busy, NotSupported, NotConnected, NotPaired.
        """
        options = dict(options or {})
        if self._stopping:
            raise ServiceError(Error.BUSY, "the daemon is stopping")
        try:
            code = SyncModeCode(mode)
        except ValueError:
            raise ServiceError(Error.INVALID_ARGS, f"unknown sync mode {mode}") from None
        unknown = set(options) - {"stores", "transport"}
        if unknown:
            raise ServiceError(Error.INVALID_ARGS, f"unknown options: {', '.join(sorted(unknown))}")
        if peer.run is not None and not peer.run.final:
            raise ServiceError(Error.BUSY, f"a sync with {peer.name} is running ({peer.run.path})")
        configured = peer.obj.values["Stores"]
        wanted = list(configured)
        if "stores" in options:
            value = options["stores"]
            if value.signature != "as":
                raise ServiceError(Error.INVALID_ARGS, "option 'stores' must be of type as")
            bad = [s for s in value.value if s not in configured]
            if bad:
                raise ServiceError(
                    Error.INVALID_ARGS,
                    f"{peer.name} does not sync {', '.join(bad)} "
                    f"(it syncs {', '.join(configured)})",
                )
            wanted = [s for s in configured if s in value.value]
        if not wanted:
            raise ServiceError(Error.INVALID_ARGS, f"{peer.name} has no store to sync")
        transport = peer.obj.values["Transport"]
        if "transport" in options:
            value = options["transport"]
            if value.signature != "s" or value.value not in ("bluetooth", "obex-tcp", "http"):
                raise ServiceError(
                    Error.INVALID_ARGS, "option 'transport' must be bluetooth, obex-tcp or http"
                )
            transport = value.value
        stores = {s: configured[s] for s in wanted}
        if peer.server is not None:
            if transport != "http":
                raise ServiceError(Error.NOT_SUPPORTED, f"{peer.name} is reached over HTTP only")
            sync_mode = None if code is SyncModeCode.DEFAULT else _CLIENT_ROLE_MODES[code]
            run = self._new_run(
                role="client",
                transport="http",
                mode=int(code),
                peer=peer,
                state=RunState.CONNECTING,
                stores=stores,
            )
            self._start_task(peer, run, self._client_sync(peer, run, sync_mode, wanted))
            return run
        assert peer.device is not None
        dev = peer.device
        sync_mode = dev.mode if code is SyncModeCode.DEFAULT else _SERVER_ROLE_MODES[code]
        if transport == "bluetooth":
            if dev.address is None:
                raise ServiceError(Error.NOT_SUPPORTED, f"{peer.name} has no Bluetooth address")
            if self.profiles is None:
                raise ServiceError(Error.NOT_SUPPORTED, "Bluetooth is not available")
            if self.watcher is not None:
                info = self.watcher.devices.get(dev.address)
                if info is not None and not info.paired:
                    raise ServiceError(Error.NOT_PAIRED, f"{peer.name} is not paired")
        elif transport == "obex-tcp":
            if dev.host is None or dev.port is None:
                raise ServiceError(Error.NOT_SUPPORTED, f"{peer.name} has no OBEX/TCP address")
        else:
            raise ServiceError(
                Error.NOT_SUPPORTED,
                f"{peer.name} syncs by itself over {transport or 'its own link'}",
            )
        run = self._new_run(
            role="server",
            transport=transport,
            mode=int(code),
            peer=peer,
            state=RunState.CONNECTING,
            stores=stores,
        )
        self._start_task(peer, run, self._phone_sync(peer, run, sync_mode, wanted, transport))
        return run

    def _start_task(self, peer: _Peer, run: RunObject, coro: Coroutine[Any, Any, None]) -> None:
        task = self._spawn(coro)
        peer.task = task
        run.cancel_hook = lambda: self._cancel_task(peer, run, task)

    def _cancel_task(self, peer: _Peer, run: RunObject, task: asyncio.Task[None]) -> None:
        key = peer.session_key
        if key is not None and peer.run is run:
            runner = self._runner_for_key.get(key)
            if runner is not None:
                self._spawn(runner.abort(key, "cancelled"))
                return
        task.cancel()

    def cancel(self, run: RunObject) -> None:
        """``Run.Cancel``."""
        if run.final:
            raise ServiceError(Error.NOT_SUPPORTED, f"run {run.number} has already finished")
        if run.values["State"] == RunState.CANCELLING:
            return
        run.update(State=int(RunState.CANCELLING), urgent=True)
        log.info("cancelling run %d", run.number)
        if run.cancel_hook is not None:
            run.cancel_hook()

    async def history(
        self, device: DeviceObject | None, start: int, count: int
    ) -> list[dict[str, Variant]]:
        """``GetHistory``."""
        limit = MAX_HISTORY_PAGE if count == 0 else min(count, MAX_HISTORY_PAGE)
        dev_id: str | None = None
        if device is not None:
            dev_id = device.values["DevId"]
            if not dev_id:
                return []
        try:
            runs = await in_thread(self.repository.history, dev_id, offset=start, limit=limit)
        except Exception as exc:
            log.error("reading the history: %s", exc)
            raise ServiceError(Error.INTERNAL, "cannot read the history") from None
        if device is not None:
            return [history_entry(r, device.config_name) for r in runs]
        return [history_entry(r, self._name_of(r.dev_id)) for r in runs]

    def _name_of(self, dev_id: str) -> str:
        """The configured device a history entry's ``dev_id`` names (``""`` when none)."""
        if not dev_id:
            return ""
        for key in ("DevId", "Address", "Name"):
            for peer in self.peers.values():
                if peer.obj.values[key] == dev_id:
                    return peer.name
        return ""

    def clear_attention(self, device: DeviceObject) -> None:
        """``Device.ClearAttention``."""
        device.update(AttentionReason=0, urgent=True)

    async def resolve(self, conflict: ConflictObject, choice: int) -> None:
        """``Conflict.Resolve``."""
        try:
            what = ConflictChoice(choice)
        except ValueError:
            raise ServiceError(Error.INVALID_ARGS, f"unknown choice {choice}") from None
        peer = self.peers.get(conflict.device.config_name)
        if peer is None:
            raise ServiceError(Error.NOT_FOUND, "the device is gone")
        if what is ConflictChoice.KEEP_DESKTOP:
            if peer.run is not None and not peer.run.final:
                raise ServiceError(Error.BUSY, f"a sync with {peer.name} is running")
            changed = await in_thread(
                self._mark_local_changed,
                conflict.peer,
                conflict.values["Store"],
                conflict.values["LocalId"],
            )
            if not changed:
                raise ServiceError(Error.NOT_FOUND, "the item is no longer in the sync state")
        self.dbus.remove(conflict)
        peer.conflicts = max(0, peer.conflicts - 1)
        peer.obj.update(ConflictCount=peer.conflicts)

    def _mark_local_changed(self, dev_id: str, store: str, local_id: str) -> bool:
        """Make the next sync see the desktop's item as changed (it then goes to the phone)."""
        state = self.repository.load_peer(dev_id)
        if state is None or store not in state.pairs:
            return False
        pair = state.pairs[store]
        item = pair.items.get(local_id)
        if item is None:
            return False
        items = dict(pair.items)
        items[local_id] = dataclasses.replace(item, etag="", digest="")
        pairs = dict(state.pairs)
        pairs[store] = dataclasses.replace(pair, items=items)
        now = time.time()
        self.repository.save_session(
            dataclasses.replace(state, pairs=pairs),
            RunRecord(
                dev_id=dev_id,
                role="server",
                started=now,
                finished=now,
                message=f"conflict on {store}/{local_id}: desktop version kept",
            ),
        )
        return True

    def _add_conflict(self, peer: _Peer, run: RunObject, event: ConflictResolved) -> None:
        self._conflict_numbers += 1
        path = f"{peer.obj.path}/conflicts/{self._conflict_numbers}"
        obj = ConflictObject(
            self,
            path,
            peer.obj,
            run.values["Peer"],
            {
                "Device": peer.obj.path,
                "Store": event.local_uri,
                "LocalId": event.local_id,
                "RemoteId": event.remote_id or "",
                "Resolution": _RESOLUTIONS.get(event.resolution, event.resolution),
                "DetectedAt": time.time(),
            },
        )
        self.dbus.add(obj)
        peer.conflicts += 1
        peer.obj.update(ConflictCount=peer.conflicts)

    # ----------------------------------------------------------------- client role (HTTP)

    async def _client_sync(
        self, peer: _Peer, run: RunObject, mode: SyncMode | None, stores: list[str]
    ) -> None:
        import aiohttp  # noqa: PLC0415

        from syncmld.transports.http import run_client_session  # noqa: PLC0415

        assert peer.server is not None
        server = peer.server
        loop = asyncio.get_running_loop()
        session: _ObservedClient | None = None

        def report(kind: str, value: Any) -> None:
            loop.call_soon_threadsafe(self._client_report, run, kind, value)

        try:
            password = server.read_password()
            opened = {name: self.stores[name] for name in stores}
            engine_config = client_config(server, opened, self.config, password=password, mode=mode)
            now = time.time()
            state = await in_thread(self.repository.load_peer, server.url)
            session = _ObservedClient(
                engine_config,
                peer=state,
                now=now,
                session_id=str(secrets.randbelow(1_000_000)),
                report=report,
            )
            run.update(State=int(RunState.RUNNING))
            headers = {"User-Agent": f"syncmld/{__version__}"}
            async with aiohttp.ClientSession(headers=headers) as http:
                outcome = await run_client_session(session, http=http, timeout=server.timeout)
        except asyncio.CancelledError:
            if session is None:
                self._finish(
                    run,
                    RunRecord(
                        dev_id=server.url,
                        role="client",
                        started=time.time(),
                        status=int(StatusCode.OPERATION_CANCELLED),
                        message="cancelled",
                    ),
                )
                raise
            aborted = session.abort("cancelled", status=int(StatusCode.OPERATION_CANCELLED))
            await self._persist(aborted)
            self._finish(run, dataclasses.replace(aborted.run, finished=time.time()))
            raise
        except UserError as exc:
            record = RunRecord(
                dev_id=server.url,
                role="client",
                started=time.time(),
                finished=time.time(),
                status=500,
                message=str(exc),
            )
            await self._persist(SessionFinished(None, record))
            self._finish(run, record)
            return
        await self._persist(outcome)
        self._finish(
            run, dataclasses.replace(outcome.run, finished=outcome.run.finished or time.time())
        )

    def _client_report(self, run: RunObject, kind: str, value: Any) -> None:
        if run.final:
            return
        if kind == "sent":
            run.update(BytesSent=run.values["BytesSent"] + value)
        elif kind == "received":
            run.update(BytesReceived=run.values["BytesReceived"] + value)
        elif kind == "event" and not isinstance(value, SessionFinished):
            self._apply(run, value)
        elif kind == "phase":
            self._set_phase(run, value)

    def _set_phase(self, run: RunObject, phase: Phase) -> None:
        """Move a run (and its stores that are still going) to ``phase``."""
        if run.values["Phase"] == phase:
            return
        per = dict(run.values["PerStore"])
        for name, entry in per.items():
            if int(entry["phase"].value) not in (Phase.UNKNOWN, Phase.FINISHED):
                per[name] = entry | {"phase": Variant("u", int(phase))}
        run.update(PerStore=per, Phase=int(phase), State=int(RunState.RUNNING))

    async def _persist(self, outcome: SessionFinished) -> None:
        run = dataclasses.replace(outcome.run, finished=outcome.run.finished or time.time())
        try:
            if outcome.peer is not None:
                await in_thread(self.repository.save_session, outcome.peer, run)
            else:
                await in_thread(self.repository.record_run, run)
        except Exception as exc:
            log.error("cannot record the session with %s: %s", run.dev_id, exc)

    # ----------------------------------------------------------------- PC-initiated (phones)

    async def _phone_sync(
        self, peer: _Peer, run: RunObject, mode: SyncMode, stores: list[str], transport: str
    ) -> None:
        from syncmld.transports.obex import (  # noqa: PLC0415
            connect_obex_tcp,
            run_server_alerted_sync,
        )

        assert peer.device is not None and self.runner is not None
        dev = peer.device
        datastores = tuple(
            dataclasses.replace(
                self._datastore(name),
                policy=dev.conflict_policy,
                guard=dev.guard,
            )
            for name in stores
        )
        base = self.runner.config
        config = dataclasses.replace(base, datastores=datastores)
        runner = SessionRunner(config, self.repository, observer=self._observe)
        session_id = secrets.randbelow(65536)
        san, san_type = notification(
            [(ds, mode) for ds in datastores], server_id=SAN_SERVER_ID, session_id=session_id
        )

        def opened(key: str) -> None:
            self._runs_by_key[key] = run
            self._runner_for_key[key] = runner
            peer.session_key = key

        try:
            if transport == "obex-tcp":
                assert dev.host is not None and dev.port is not None
                await connect_obex_tcp(
                    dev.host,
                    dev.port,
                    runner,
                    san,
                    san_type=san_type,
                    on_open=opened,
                    connect_timeout=15,
                )
            else:
                assert self.profiles is not None and dev.address is not None
                reader, writer = await self.profiles.connect_sync_client(dev.address)
                await run_server_alerted_sync(
                    reader,
                    writer,
                    runner,
                    san,
                    san_type=san_type,
                    transport="bluetooth",
                    peer=dev.address,
                    on_open=opened,
                )
        except asyncio.CancelledError:
            if not run.final:
                self._finish(
                    run,
                    RunRecord(
                        dev_id=dev.dev_id or "",
                        role="server",
                        started=run.values["Started"],
                        finished=time.time(),
                        status=int(StatusCode.OPERATION_CANCELLED),
                        message="cancelled",
                    ),
                )
            raise
        except UserError as exc:
            # Nothing was exchanged (no connection): the run fails, the history says why.
            record = RunRecord(
                dev_id=dev.dev_id or dev.address or dev.name,
                role="server",
                started=run.values["Started"],
                finished=time.time(),
                status=503,
                message=str(exc),
            )
            await self._persist(SessionFinished(None, record))
            self._finish(run, record)
            self._attention(peer, Attention.TRANSPORT_FAILED, str(exc))
        finally:
            for key in [k for k, r in self._runner_for_key.items() if r is runner]:
                del self._runner_for_key[key]
            if not run.final:
                # The runner's SessionFinished did not reach us (it always should).
                self._finish(
                    run,
                    RunRecord(
                        dev_id=dev.dev_id or "",
                        role="server",
                        started=run.values["Started"],
                        finished=time.time(),
                        status=500,
                        message="the session ended without an outcome",
                    ),
                )

    def _datastore(self, name: str) -> Datastore:
        return self.config.stores[name].datastore(self.stores[name])

    # ----------------------------------------------------------------- BlueZ

    def _bluez_change(self, address: str, info: DeviceInfo | None) -> None:
        peer = self._peer_by_address(address)
        if peer is None:
            return
        connected = bool(info and info.connected)
        paired = bool(info and info.paired)
        peer.obj.update(Connected=connected, Paired=paired)
        if not connected and peer.settle is not None:
            peer.settle.cancel()
            peer.settle = None

    def _bluez_connected(self, info: DeviceInfo) -> None:
        peer = self._peer_by_address(info.address)
        if peer is None or peer.device is None or not peer.device.auto_sync:
            return
        if not info.paired:
            log.info("%s connected but is not paired: no automatic sync", peer.name)
            return
        if peer.settle is not None:
            peer.settle.cancel()
        delay = peer.device.settle_delay
        log.info("%s connected; syncing in %g s", peer.name, delay)
        peer.settle = asyncio.get_running_loop().call_later(delay, self._auto_sync, peer)

    def _auto_sync(self, peer: _Peer) -> None:
        peer.settle = None
        assert peer.device is not None
        if self._stopping or not peer.obj.values["Connected"]:
            return
        if peer.run is not None and not peer.run.final:
            log.info("%s: a sync is already running", peer.name)
            return
        if peer.last_end is not None:
            since = time.monotonic() - peer.last_end
            if since < peer.device.min_interval:
                log.info(
                    "%s: last sync %.0f s ago, under the minimum interval of %g s: not syncing",
                    peer.name,
                    since,
                    peer.device.min_interval,
                )
                return
        try:
            run = self.start_sync(peer, int(SyncModeCode.DEFAULT))
        except ServiceError as exc:
            log.warning("%s: no automatic sync: %s", peer.name, exc.text)
            return
        log.info("%s: automatic sync started (%s)", peer.name, run.path)

    # ----------------------------------------------------------------- main loop

    async def serve(self, stop: asyncio.Event) -> None:
        """Start, run until ``stop`` is set, stop."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()


_SQLITE_FILE = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[^?]+)(?:\?(?P<query>.*))?\Z")


class _OnDemandState:
    """The state repository, opened - and SQLAlchemy imported - on first use.

    Attribute access is handed to the open
    :class:`~syncmld.state.repository.StateRepository`.  Its methods that do
    I/O come back as functions that open the repository when called: the
    callers run them in worker threads, so opening never blocks the event
    loop.  A lock makes the opening happen once.
    """

    _CALLS = frozenset({"load_peer", "save_session", "record_run", "history", "devices", "forget"})

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._repository: StateRepository | None = None

    def check(self) -> None:
        """What can be checked without opening the database: a SQLite file's directory.

        Databases that are not plain SQLite files are opened here, at once.

        Raises:
            UserError: the database cannot be used (one line saying why).
        """
        match = _SQLITE_FILE.match(self.url)
        if match is None or "uri=" in (match["query"] or "") or "mode=memory" in self.url:
            self.open()
            return
        path = Path(match["path"])
        if str(path) == ":memory:":
            return
        prepare_database_directory(path)

    def open(self) -> StateRepository:
        """The open repository.

        Raises:
            UserError: it cannot be opened (see :meth:`StateRepository.open`).
        """
        with self._lock:
            if self._repository is None:
                from syncmld.state.repository import StateRepository  # noqa: PLC0415

                repository = StateRepository(self.url)
                repository.open()
                self._repository = repository
            return self._repository

    def close(self) -> None:
        """Close the repository if it was opened."""
        with self._lock:
            if self._repository is not None:
                self._repository.close()
                self._repository = None

    def __getattr__(self, name: str) -> Any:
        if name in self._CALLS:

            def call(*args: Any, **kwargs: Any) -> Any:
                return getattr(self.open(), name)(*args, **kwargs)

            return call
        return getattr(self.open(), name)


class _ObservedClient(ClientSession):
    """A client session that reports its events and message sizes (from its worker thread)."""

    def __init__(self, *args: Any, report: Callable[[str, Any], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._report = report

    def start(self) -> bytes:
        """See :meth:`ClientSession.start`."""
        data = super().start()
        self._report("sent", len(data))
        return data

    def receive(self, data: bytes) -> ClientResult:
        """See :meth:`ClientSession.receive`."""
        self._report("received", len(data))
        before = self.phase.value
        result = super().receive(data)
        for event in result.events:
            self._report("event", event)
        if result.data is not None:
            # The message being sent says where the session stands: our own
            # changes right after the alerts were answered, then the server's
            # changes, then our Map.
            after = self.phase.value
            if after in ("send-sync", "receive-sync") and before in ("init", "send-sync"):
                self._report("phase", Phase.SENDING)
            elif after in _CLIENT_PHASES:
                self._report("phase", _CLIENT_PHASES[after])
            self._report("sent", len(result.data))
        return result


# --------------------------------------------------------------------------- entry point


async def run_daemon(config: Config, *, notifier: Notifier | None = None) -> None:
    """``syncmld run``: serve until SIGTERM or SIGINT.

    Raises:
        UserError: the daemon cannot start (one line).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(config, notifier=notifier)
    try:
        await daemon.serve(stop)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    log.info("stopped")


__all__ = [
    "Daemon",
    "JournalFormatter",
    "history_entry",
    "run_daemon",
    "run_result",
    "setup_logging",
]
