"""Drive SyncEvolution 2.0 (Debian) as an independent SyncML peer, on 127.0.0.1 only.

SyncEvolution plays both roles:

* :class:`SeClient` - its command line client (``syncevolution --daemon=no``)
  with file datastores ``addressbook``, ``calendar``, ``todo`` and ``memo``
  (one item per file), over HTTP or over OBEX/TCP.
* :class:`SeServer` - its HTTP server: a private ``dbus-daemon``,
  ``syncevo-dbus-server`` (which forks one ``syncevo-dbus-helper`` per
  session) and the Twisted front end ``syncevo-http-server``.

Everything lives in one folder per peer (``HOME`` and the XDG folders point
into it); nothing global is touched.  Three small ``LD_PRELOAD`` shims are
compiled from ``shims/*.c`` with gcc at run time (:func:`build_shims`):

* ``curl_fix``: Debian's 2.0.0 HTTP client crashes on its first message
  (lambdas passed through the variadic ``curl_easy_setopt``);
* ``obex_tcp``: its OBEX client only speaks Bluetooth RFCOMM; the shim
  connects the socket to a TCP port instead (OpenOBEX runs on the fd);
* ``nosleep``: removes the one-second pause after every write (file
  backend, mtime-based change tracking); the tests give each file they edit
  a distinct mtime instead (:class:`tests.interop.scenario.FileSide`).

Quirks of this SyncEvolution worked around here, each seen for real:
``syncevo-http-server`` has the shebang ``#!@PYTHON@`` and binds every
interface (a patched copy is run with ``/usr/bin/python3``); the server
accepts only registered device ids (one peer config per client); its
multithreaded request mode adds a second per datastore (``REQUESTMAXTIME=0``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from syncmld.formats.normalize import normalize

HERE = Path(__file__).resolve().parent
SYNCEVOLUTION = "/usr/bin/syncevolution"
DBUS_SERVER = "/usr/libexec/syncevo-dbus-server"
HTTP_SERVER = "/usr/bin/syncevo-http-server"
SYSTEM_PYTHON = "/usr/bin/python3"

#: SyncEvolution's datastore names and the storage/wire format of each.
SE_FORMATS: Mapping[str, str] = {
    "addressbook": "text/vcard",
    "calendar": "text/calendar",
    "todo": "text/calendar",
    "memo": "text/plain",
}
SE_STORES: tuple[str, ...] = tuple(SE_FORMATS)
#: The six modes, as SyncEvolution names them (the same words syncmld uses).
MODES = (
    "two-way",
    "slow",
    "one-way-from-client",
    "refresh-from-client",
    "one-way-from-server",
    "refresh-from-server",
)


def missing() -> str | None:
    """Why SyncEvolution cannot be driven here, or ``None`` when it can."""
    if not Path(SYNCEVOLUTION).exists():
        return "syncevolution is not installed (apt-get install syncevolution)"
    if shutil.which("gcc") is None:
        return "gcc is not installed (needed for the LD_PRELOAD shims)"
    return None


def missing_server() -> str | None:
    """Why SyncEvolution's HTTP server cannot run here, or ``None``."""
    reason = missing()
    if reason:
        return reason
    if not Path(HTTP_SERVER).exists() or not Path(DBUS_SERVER).exists():
        return "syncevolution-http is not installed"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import twisted.web, dbus, gi"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return "python3-twisted (Debian's python3) is not installed"
    if shutil.which("dbus-daemon") is None:
        return "dbus-daemon is not installed"
    return None


@dataclass(frozen=True)
class Shims:
    """The compiled ``LD_PRELOAD`` libraries."""

    curl_fix: Path
    obex_tcp: Path
    nosleep: Path


def build_shims(dest: Path) -> Shims:
    """Compile ``shims/*.c`` into ``dest`` (gcc, a fraction of a second each)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in ("curl_fix", "obex_tcp", "nosleep"):
        lib = dest / f"{name}.so"
        if not lib.exists():
            source = HERE / "shims" / f"{name}.c"
            subprocess.run(
                ["gcc", "-shared", "-fPIC", "-O2", "-o", str(lib), str(source), "-ldl"],
                check=True,
                capture_output=True,
            )
        out[name] = lib
    return Shims(**out)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "LD_PRELOAD")
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        LC_ALL="C.UTF-8",
    )
    return env


# --------------------------------------------------------------------------- items


def canonical(text: str) -> str:
    """An item in a form that ignores what SyncEvolution rewrites on every hop.

    vCards and iCalendar items go through :func:`syncmld.formats.normalize.normalize`
    (folding, property order, REV/PRODID/DTSTAMP stamps, empty properties such
    as the ``X-EVOLUTION-FILE-AS:`` SyncEvolution adds).  ``text/plain`` memos
    gain CRLF line ends and blank lines on each SyncEvolution hop, so blank
    lines and trailing white space are ignored for them.
    """
    if text.lstrip().upper().startswith("BEGIN:VCARD"):
        # SyncEvolution's vCard profile does not carry UID on the wire.
        return "\n".join(
            line for line in normalize(text).split("\n") if not line.startswith(("UID:", "UID;"))
        )
    if text.lstrip().upper().startswith("BEGIN:"):
        return normalize(text)
    lines = (line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n".join(line for line in lines if line)


def canonical_set(items: Iterable[str]) -> list[str]:
    """The sorted canonical forms (duplicates stay, so a doubled item shows)."""
    return sorted(canonical(i) for i in items)


def vcard(tag: str, n: int, *, note: str = "first version", photo: str | None = None) -> str:
    """A vCard 3.0 with a UID, unique per ``tag`` and ``n``."""
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"UID:{tag}-contact-{n}",
        f"N:Tester{n};{tag.title()};;;",
        f"FN:{tag.title()} Tester{n}",
        f"TEL;TYPE=CELL:+49 151 {1000000 + n}",
        f"EMAIL;TYPE=INTERNET:{tag}.{n}@example.org",
        f"NOTE:{note}",
    ]
    if photo is not None:
        lines.append(f"PHOTO;ENCODING=b;TYPE=JPEG:{photo}")
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"


def _day(n: int) -> str:
    return f"2027{n // 28 % 12 + 1:02d}{n % 28 + 1:02d}"


def vevent(tag: str, n: int, *, summary: str = "first version") -> str:
    """An iCalendar 2.0 event (UTC times) with a UID."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncmld tests//EN\r\n"
        "BEGIN:VEVENT\r\n"
        f"UID:{tag}-event-{n}\r\n"
        f"DTSTART:{_day(n)}T090000Z\r\nDTEND:{_day(n)}T100000Z\r\n"
        f"SUMMARY:{tag} meeting {n}: {summary}\r\n"
        f"DESCRIPTION:Agenda of meeting {n}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def vtodo(tag: str, n: int, *, summary: str = "first version") -> str:
    """An iCalendar 2.0 task with a UID."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncmld tests//EN\r\n"
        "BEGIN:VTODO\r\n"
        f"UID:{tag}-task-{n}\r\n"
        f"DUE:{_day(n)}T120000Z\r\n"
        f"SUMMARY:{tag} task {n}: {summary}\r\n"
        f"DESCRIPTION:Details of task {n}\r\n"
        "STATUS:NEEDS-ACTION\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n"
    )


def memo(tag: str, n: int, *, summary: str = "first version") -> str:
    """A plain-text memo: a summary line and a body line."""
    return f"{tag} memo {n}\n{summary}\n"


def make_item(store: str, tag: str, n: int, version: str = "first version") -> str:
    """Item ``n`` of a SyncEvolution datastore in a given version (its note or summary)."""
    if store == "addressbook":
        return vcard(tag, n, note=version)
    if store == "calendar":
        return vevent(tag, n, summary=version)
    if store == "todo":
        return vtodo(tag, n, summary=version)
    return memo(tag, n, summary=version)


# --------------------------------------------------------------------------- client


@dataclass
class SeResult:
    """What one ``syncevolution --run`` did."""

    returncode: int
    output: str
    status: str
    wall: float
    session_dir: Path | None

    @property
    def ok(self) -> bool:
        """The sync completed (exit status 0)."""
        return self.returncode == 0

    def describe(self) -> str:
        """A short description for assertion messages."""
        tail = "\n".join(self.output.splitlines()[-25:])
        return f"rc={self.returncode} status={self.status!r} log={self.session_dir}\n{tail}"


@dataclass
class SeClient:
    """SyncEvolution's command line client with file datastores in ``root``.

    Args:
        root: its folder (config, change tracking, logs, data).
        shims: the compiled preload libraries.
        url: ``http://...`` or ``obex-tcp://HOST:PORT``.
        device_id: its SyncML device id.
        uris: SyncEvolution datastore -> the server's database name.
        encoding: ``"xml"`` or ``"wbxml"``.
        version: ``"1.1"`` or ``"1.2"``.
        user, password: credentials; ``auth``: ``"basic"`` or ``"md5"`` (or
            ``None``: SyncEvolution's default, basic).
        max_msg_size: its MaxMsgSize (``None``: 150000).
        loglevel: 5 dumps every message into the session log folder.
        nosleep: preload the ``nosleep`` shim.
        logdir_none: write no session logs (the benchmark).
        timeout: seconds a sync may take before it is killed.
    """

    root: Path
    shims: Shims
    url: str
    device_id: str
    uris: Mapping[str, str]
    encoding: str = "xml"
    version: str = "1.2"
    user: str = "test"
    password: str = "secret"
    auth: str | None = None
    max_msg_size: int | None = None
    loglevel: int = 4
    nosleep: bool = True
    logdir_none: bool = False
    timeout: float = 120.0

    @property
    def stores(self) -> tuple[str, ...]:
        """The datastores in use."""
        return tuple(s for s in SE_STORES if s in self.uris)

    @property
    def home(self) -> Path:
        return self.root / "home"

    def data(self, store: str) -> Path:
        """The folder holding ``store``'s items, one file each."""
        return self.root / "data" / store

    def env(self) -> dict[str, str]:
        """The environment of its processes."""
        env = _environment(self.home)
        preload = [self.shims.curl_fix]
        if self.nosleep:
            preload.append(self.shims.nosleep)
        if self.url.startswith("obex-tcp://"):
            host, _, port = self.url.removeprefix("obex-tcp://").rstrip("/").partition(":")
            env["SE_OBEX_TCP_HOST"] = host
            env["SE_OBEX_TCP_PORT"] = port or "650"
            preload.append(self.shims.obex_tcp)
        env["LD_PRELOAD"] = " ".join(str(p) for p in preload)
        return env

    def _se(self, *args: str) -> None:
        env = _environment(self.home)
        proc = subprocess.run(
            [SYNCEVOLUTION, "--daemon=no", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"syncevolution {' '.join(args)} failed: {proc.stderr.strip()}")

    def configure(self) -> None:
        """Write (or update) its configuration; keeps the sync state of an existing one."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        (self.root / "none").mkdir(exist_ok=True)
        props = ["--template", "none", "backend=file"]
        for s in self.stores:
            self.data(s).mkdir(parents=True, exist_ok=True)
            props += [f"{s}/database=file://{self.data(s)}", f"{s}/databaseFormat={SE_FORMATS[s]}"]
        self._se("--configure", *props, "@client", *self.stores)
        url = self.url
        if url.startswith("obex-tcp://"):
            # The explicit channel (+1) skips the SDP lookup.
            url = "obex-bt://00:00:00:00:00:00+1"
        fresh = not (self.home / ".config/syncevolution/client/peers/peer").exists()
        sync = [
            f"syncURL={url}",
            f"username={self.user}",
            f"password={self.password}",
            f"deviceId={self.device_id}",
            "keyring=no",
            f"loglevel={self.loglevel}",
            # "none" writes no session log at all; SyncEvolution 2.0 then looks
            # for a folder named "none" in its working directory (its bug).
            "logdir=none" if self.logdir_none else f"logdir={self.root / 'logs'}",
            "maxlogdirs=50",
            f"enableWBXML={1 if self.encoding == 'wbxml' else 0}",
            "preventSlowSync=0",
            # Refresh-from-server as Alert 205, not "wipe locally + slow sync".
            "enableRefreshSync=1",
            f"RetryDuration={max(60, int(self.timeout))}",
            "RetryInterval=0",
            f"SyncMLVersion={self.version}",
            "printChanges=0",
            "dumpData=0",
            "notifyLevel=0",
        ]
        if self.auth:
            sync.append(f"clientAuthType={self.auth}")
        if self.max_msg_size:
            sync.append(f"maxMsgSize={self.max_msg_size}")
        per_store = []
        for s in self.stores:
            per_store += [
                f"{s}/uri={self.uris[s]}",
                f"{s}/syncFormat={SE_FORMATS[s]}",
                f"{s}/sync=two-way",
            ]
        template = ["--template", "SyncEvolution"] if fresh else []
        self._se("--configure", *template, *sync, *per_store, "peer@client", *self.stores)

    async def sync(self, mode: str, stores: Sequence[str] | None = None) -> SeResult:
        """Run one sync of ``stores`` (default: all) in ``mode``; never raises on failure."""
        logs = self.root / "logs"
        before = {p.name for p in logs.iterdir()} if logs.exists() else set()
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            SYNCEVOLUTION,
            "--daemon=no",
            "--run",
            "--sync",
            mode,
            "peer@client",
            *(stores or self.stores),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env(),
            cwd=self.root,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            proc.kill()
            out, _ = await proc.communicate()
            out += f"\n(killed after {self.timeout:g} s)".encode()
        wall = time.monotonic() - started
        new = sorted(p for p in logs.iterdir() if p.name not in before) if logs.exists() else []
        session = new[-1] if new else None
        status = ""
        if session is not None and (session / "status.ini").exists():
            found = re.search(r"^status\s*=\s*(.*)$", (session / "status.ini").read_text(), re.M)
            status = found.group(1).strip() if found else ""
        assert proc.returncode is not None
        return SeResult(proc.returncode, out.decode(errors="replace"), status, wall, session)

    # -------------------------------------------------------------- items
    def items(self, store: str) -> dict[str, str]:
        """File name (the client's LUID) -> item text."""
        folder = self.data(store)
        return {
            p.name: p.read_text(encoding="utf-8")
            for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".")
        }


# --------------------------------------------------------------------------- server


@dataclass
class SeServer:
    """SyncEvolution's HTTP server on 127.0.0.1 with file datastores in ``root``.

    Use as a context manager; :meth:`add_client` registers a device id (it may
    be called while running).  ``url`` is ``http://127.0.0.1:PORT/sync``.
    ``preload``: libraries preloaded into the D-Bus server and its session
    helpers (``nosleep`` in the tests); ``logdir_none``: no session logs at
    all (the benchmark).
    """

    root: Path
    user: str = "test"
    password: str = "secret"
    loglevel: int = 3
    port: int = 0
    logdir_none: bool = False
    preload: Sequence[Path] = ()
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    bus_address: str = ""

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sync"

    def data(self, store: str) -> Path:
        """The folder of ``store``: files ``0``, ``1``, ... one item each."""
        return self.root / "data" / store

    def items(self, store: str) -> dict[str, str]:
        """File name -> item text."""
        return {
            p.name: p.read_text(encoding="utf-8")
            for p in sorted(self.data(store).iterdir())
            if p.is_file() and not p.name.startswith(".")
        }

    def _se(self, *args: str) -> None:
        proc = subprocess.run(
            [SYNCEVOLUTION, "--daemon=no", *args],
            capture_output=True,
            text=True,
            env=_environment(self.home),
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"syncevolution {' '.join(args)} failed: {proc.stderr.strip()}")

    def add_client(self, device_id: str) -> None:
        """Let the SyncML client with this device id sync (SyncEvolution knows no wildcard)."""
        name = "client-" + re.sub(r"[^a-z0-9_-]", "_", device_id.lower())
        fresh = not (self.home / f".config/syncevolution/server/peers/{name}").exists()
        template = ["--template", "SyncEvolution_Client"] if fresh else []
        props = [
            f"remoteDeviceId={device_id}",
            f"username={self.user}",
            f"password={self.password}",
            "keyring=no",
            f"loglevel={self.loglevel}",
            # Answer each request at once instead of polling a thread each second.
            "SyncMLVersion=REQUESTMAXTIME=0",
            "printChanges=0",
            "dumpData=0",
            "notifyLevel=0",
        ]
        if self.logdir_none:
            props.append("logdir=none")
        self._se("--configure", *template, *props, f"{name}@server", *SE_STORES)

    def configure(self) -> None:
        """Write the datastore configuration (context ``@server``)."""
        self.home.mkdir(parents=True, exist_ok=True)
        props = ["--template", "none", "backend=file"]
        for s in SE_STORES:
            self.data(s).mkdir(parents=True, exist_ok=True)
            props += [f"{s}/database=file://{self.data(s)}", f"{s}/databaseFormat={SE_FORMATS[s]}"]
        self._se("--configure", *props, "@server", *SE_STORES)

    def start(self) -> None:
        """Start the bus, the D-Bus server and the HTTP front end; wait until it listens."""
        self.configure()
        if not self.port:
            self.port = free_port()
        env = _environment(self.home)
        logs = self.root / "log"
        logs.mkdir(exist_ok=True)
        (self.root / "none").mkdir(exist_ok=True)  # logdir=none looks for a folder "none"
        bus = subprocess.Popen(
            [
                "dbus-daemon",
                "--session",
                "--nofork",
                "--print-address=1",
                f"--address=unix:path={self.root / 'bus'}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=self.root,
        )
        self.processes.append(bus)
        assert bus.stdout is not None
        self.bus_address = bus.stdout.readline().decode().strip()
        if not self.bus_address:
            self.stop()
            raise RuntimeError("dbus-daemon did not start")
        env["DBUS_SESSION_BUS_ADDRESS"] = self.bus_address
        server_env = dict(env)
        if self.preload:
            # Inherited by the session helpers it forks.
            server_env["LD_PRELOAD"] = " ".join(str(p) for p in self.preload)
        with open(logs / "dbus-server.log", "wb") as out:
            self.processes.append(
                subprocess.Popen(
                    [
                        DBUS_SERVER,
                        "--duration=unlimited",
                        "--verbosity=1",
                        "--stdout",
                        "--no-syslog",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=server_env,
                    cwd=self.root,
                )
            )
        self._wait_for_name(env)
        script = self.root / "syncevo-http-server.py"
        source = Path(HTTP_SERVER).read_text()
        lines = source.split("\n")
        lines[0] = f"#!{SYSTEM_PYTHON}"
        patched = "\n".join(lines).replace(
            "reactor.listenTCP(url.port, site)",
            "reactor.listenTCP(url.port, site, interface='127.0.0.1')",
        )
        if "interface='127.0.0.1'" not in patched:
            self.stop()
            raise RuntimeError(f"cannot patch {HTTP_SERVER}: listenTCP call not found")
        script.write_text(patched)
        http_log = logs / "http-server.log"
        with open(http_log, "wb") as out:
            self.processes.append(
                subprocess.Popen(
                    [SYSTEM_PYTHON, str(script), self.url],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=self.root,
                )
            )
        deadline = time.monotonic() + 20
        while "listening on port" not in http_log.read_text(errors="replace"):
            if self.processes[-1].poll() is not None or time.monotonic() > deadline:
                text = http_log.read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"syncevo-http-server did not start: {text[-500:]}")
            time.sleep(0.05)

    def _wait_for_name(self, env: dict[str, str]) -> None:
        deadline = time.monotonic() + 20
        while True:
            probe = subprocess.run(
                [
                    "dbus-send",
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.syncevolution",
                ],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if "boolean true" in probe.stdout:
                return
            if self.processes[-1].poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("syncevo-dbus-server did not start")
            time.sleep(0.05)

    @property
    def pids(self) -> dict[str, int]:
        """Process ids: ``bus``, ``dbus-server``, ``http-server``."""
        names = ("bus", "dbus-server", "http-server")
        return dict(zip(names, (p.pid for p in self.processes), strict=False))

    def stop(self) -> None:
        """Stop what was started, newest first (and helpers of our D-Bus server)."""
        for child in self._helpers():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
        for proc in reversed(self.processes):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self.processes.clear()

    def _helpers(self) -> Iterator[int]:
        """Children of our syncevo-dbus-server (session helpers still running)."""
        if len(self.processes) < 2:
            return
        parent = self.processes[1].pid
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent:
                yield int(stat.parent.name)

    def __enter__(self) -> SeServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
