"""``syncmlctl`` as a real process against a live ``syncmld run`` on a private session bus.

One daemon serves the whole module (starting it is the slow part).  Its
configuration has three peers:

* ``peer``: a ``[servers.*]`` entry pointing at a second syncmld, a real
  ``syncmld serve-http`` process with a vdir of three contacts;
* ``stuck``: a ``[servers.*]`` entry pointing at a socket that accepts
  connections and never answers, so a sync with it runs until cancelled;
* ``phone``: a ``[devices.*]`` entry recognised by its SyncML device id; the
  test itself plays the phone with :class:`syncmld.SyncClient` against the
  daemon's HTTP listener, which is how conflicts come about.
"""

from __future__ import annotations

import json
import os
import pty
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from syncmld import __version__
from tests.buses import PrivateBus

TIMEOUT = 30

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/dbus-daemon").exists() and not Path("/bin/dbus-daemon").exists(),
    reason="needs dbus-daemon",
)


def vcard(uid: str, name: str, tel: str = "+4915100000") -> str:
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nN:{name};Anna;;;\r\n"
        f"FN:Anna {name}\r\nTEL;TYPE=CELL:{tel}\r\nEND:VCARD\r\n"
    )


def environment(home: Path, bus: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("XDG_", "DBUS_")) and k != "DISPLAY"
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_RUNTIME_DIR=str(home / "runtime"),
        PYTHONUNBUFFERED="1",
    )
    if bus is not None:
        env["DBUS_SESSION_BUS_ADDRESS"] = bus
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Lines:
    """The lines a process writes to one of its pipes, collected by a thread."""

    def __init__(self, pipe: Any) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe: Any) -> None:
        with pipe:
            for line in pipe:
                self.queue.put(line)

    def wait_for(self, text: str, timeout: float = TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line with {text!r} in {self.seen}")
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line


@dataclass
class World:
    """The running daemon and what surrounds it."""

    root: Path
    bus: PrivateBus
    env: dict[str, str]
    daemon_url: str
    local_contacts: Path
    peer_contacts: Path
    daemon: subprocess.Popen[str]

    def ctl(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``syncmlctl ARGS`` to the end."""
        return subprocess.run(
            [sys.executable, "-m", "syncmld.ctl", *args],
            env=self.env if env is None else env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def ctl_json(self, *args: str) -> Any:
        done = self.ctl(*args, "--json")
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        return json.loads(done.stdout)

    def start_ctl(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "syncmld.ctl", *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def _stop(proc: subprocess.Popen[str], lines: Lines) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    lines.thread.join(10)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("ctl")
    # The peer server: a second syncmld with three contacts.
    peer_home = root / "peer"
    peer_contacts = peer_home / "contacts"
    peer_contacts.mkdir(parents=True)
    for n in (1, 2, 3):
        (peer_contacts / f"peer-{n}.vcf").write_text(vcard(f"peer-{n}", f"Peer{n}"), "utf-8")
    peer_port = free_port()
    (peer_home / "syncmld.toml").write_text(
        f"""
[state]
url = "sqlite:///{peer_home / "state.db"}"
[stores.contacts]
kind = "contacts"
path = "{peer_contacts}"
[accounts]
test = "secret"
""",
        "utf-8",
    )
    # A server that accepts connections and never answers.
    stuck = socket.socket()
    stuck.bind(("127.0.0.1", 0))
    stuck.listen(16)
    # The daemon.
    home = root / "home"
    local_contacts = home / "contacts"
    daemon_port = free_port()
    (home / "runtime").mkdir(parents=True)
    (home / "syncmld.toml").write_text(
        f"""
[state]
url = "sqlite:///{home / "state.db"}"
[stores.contacts]
kind = "contacts"
path = "{local_contacts}"
[http]
host = "127.0.0.1"
port = {daemon_port}
[obex]
enabled = false
[bluetooth]
enabled = false

[servers.peer]
url = "http://127.0.0.1:{peer_port}/"
user = "test"
password = "secret"
[[servers.peer.sync]]
local = "contacts"
remote = "contacts"

[servers.stuck]
url = "http://127.0.0.1:{stuck.getsockname()[1]}/"
timeout = 60
[[servers.stuck.sync]]
local = "contacts"
remote = "contacts"

[devices.phone]
dev_id = "ctl-test-phone"
auto_sync = false
conflict_policy = "phone-wins"
stores = {{ contacts = "contacts" }}
""",
        "utf-8",
    )
    bus = PrivateBus()
    env = environment(home, bus.address)
    peer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "syncmld.cli",
            "serve-http",
            "--config",
            str(peer_home / "syncmld.toml"),
            "--port",
            str(peer_port),
        ],
        env=environment(peer_home, None),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "syncmld.cli", "run", "--config", str(home / "syncmld.toml")],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peer_lines, daemon_lines = Lines(peer.stderr), Lines(daemon.stderr)
    try:
        peer_lines.wait_for("serving SyncML on")
        daemon_lines.wait_for("serving HTTP on")
        yield World(
            root=root,
            bus=bus,
            env=env,
            daemon_url=f"http://127.0.0.1:{daemon_port}/",
            local_contacts=local_contacts,
            peer_contacts=peer_contacts,
            daemon=daemon,
        )
    finally:
        _stop(daemon, daemon_lines)
        _stop(peer, peer_lines)
        stuck.close()
        bus.close()


# --------------------------------------------------------------------------- no daemon


def test_help_documents_exit_codes_and_usage_errors_exit_2(tmp_path: Path) -> None:
    env = environment(tmp_path, None)
    run = [sys.executable, "-m", "syncmld.ctl"]
    done = subprocess.run([*run, "--help"], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0
    for code in ("0", "1", "2", "3", "4", "5", "6"):
        assert f"\n  {code}  " in done.stdout
    bad = subprocess.run(
        [*run, "sync", "peer", "--mode", "sideways"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "invalid choice: 'sideways'" in bad.stderr


def test_no_daemon_or_no_bus_exits_3_with_one_line(session_bus: PrivateBus, tmp_path: Path) -> None:
    (tmp_path / "runtime").mkdir()
    cases = {
        session_bus.address: "syncmld is not running",
        None: "no session bus",
        f"unix:path={tmp_path / 'nothing'}": "cannot connect to the session bus",
    }
    for address, message in cases.items():
        done = subprocess.run(
            [sys.executable, "-m", "syncmld.ctl", "status"],
            env=environment(tmp_path, address),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 3, (address, done.stderr)
        assert done.stdout == ""
        assert done.stderr.startswith(f"syncmlctl: {message}"), done.stderr
        assert done.stderr.count("\n") == 1, done.stderr


# --------------------------------------------------------------------------- listings


def test_status_text_and_json(world: World) -> None:
    done = world.ctl("status")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"syncmld {__version__}: running\n")
    assert "http-server" in done.stdout
    names = [line.split()[0] for line in done.stdout.split("devices:\n")[1].splitlines()[1:]]
    assert sorted(names) == ["peer", "phone", "stuck"]

    status = world.ctl_json("status")
    assert status["version"] == __version__
    assert status["state"] == "running"
    assert "http-server" in status["features"]
    devices = {d["name"]: d for d in status["devices"]}
    assert set(devices) == {"peer", "phone", "stuck"}
    assert devices["phone"]["kind"] == "phone"
    assert devices["phone"]["connected"] is False
    assert devices["peer"]["attention"] == "none"
    # --json is accepted before the command too.
    done = world.ctl("--json", "status")
    assert json.loads(done.stdout)["version"] == __version__


def test_devices_text_and_json(world: World) -> None:
    devices = {d["name"]: d for d in world.ctl_json("devices")}
    assert devices["peer"]["kind"] == "server"
    assert devices["peer"]["transport"] == "http"
    assert devices["peer"]["address"].startswith("http://127.0.0.1:")
    assert devices["peer"]["stores"] == {"contacts": "contacts"}
    assert devices["peer"]["path"] == "/org/syncmld/Syncmld1/devices/peer"
    assert devices["phone"]["dev_id"] == "ctl-test-phone"
    assert devices["phone"]["auto_sync"] is False

    done = world.ctl("devices")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "KIND", "TRANSPORT"]
    peer = next(r for r in rows if r.startswith("peer "))
    assert peer.split()[1:5] == ["server", "http", devices["peer"]["address"], "contacts"]


# --------------------------------------------------------------------------- sync


def test_sync_prints_progress_and_summary_then_history_has_it(world: World) -> None:
    done = world.ctl("sync", "peer")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("peer: ")  # stderr is no terminal: progress lines
    assert any(line.startswith("peer: done") for line in lines)
    store = next(line for line in lines if line.startswith("contacts <-> contacts"))
    assert store.endswith("conflicts")
    assert lines[-1].startswith("sync with peer: ok")
    # The peer's contacts arrived (the first sync is slow; a later one is two-way).
    uids = {
        p.read_text("utf-8").split("UID:")[1].split()[0] for p in world.local_contacts.glob("*.vcf")
    }
    assert {"peer-1", "peer-2", "peer-3"} <= uids

    devices = {d["name"]: d for d in world.ctl_json("devices")}
    assert devices["peer"]["last_result"] == "ok"
    assert devices["peer"]["last_sync"] > time.time() - 60

    history = world.ctl_json("history", "peer", "--limit", "1")
    assert len(history) == 1
    newest = history[0]
    assert newest["result"] == "ok"
    assert newest["role"] == "client"
    assert newest["device_name"] == "peer"
    assert newest["device"] == world.ctl_json("devices")[0]["dev_id"]
    assert newest["status"] == 200
    assert [s["local"] for s in newest["stores"]] == ["contacts"]
    assert newest["stores"][0]["remote"] == "contacts"

    text = world.ctl("history", "peer", "--limit", "1")
    assert text.returncode == 0, text.stderr
    first, store_line = text.stdout.splitlines()
    assert "  peer  client  ok" in first
    assert store_line.strip().startswith("contacts <-> contacts (")
    everything = world.ctl_json("history")
    assert newest in everything
    # Paging: page 2 of 1-entry pages is the second newest.
    assert world.ctl_json("history", "--limit", "1", "--page", "2") == everything[1:2]
    assert world.ctl("history", "--limit", "0").returncode == 2


def test_sync_on_a_terminal_shows_a_progress_bar(world: World) -> None:
    master, slave = pty.openpty()
    env = {**world.env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncmld.ctl", "sync", "peer"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    screen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
        reader.join(TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert proc.returncode == 0, screen
    text = screen.decode("utf-8", "replace")
    assert "peer: " in text
    assert "\u2501" in text  # the bar
    assert "  contacts" in text  # one bar per store
    # The summary goes to stdout, the bar only to the terminal on stderr.
    assert out.splitlines()[-1].startswith("sync with peer: ok")
    assert "\u2501" not in out


def test_sync_json_is_one_object_without_progress(world: World) -> None:
    (world.peer_contacts / "peer-4.vcf").write_text(vcard("peer-4", "Peer4"), "utf-8")
    done = world.ctl("sync", "peer", "--json", "--mode", "two-way")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["device"] == "peer"
    assert run["path"].startswith("/org/syncmld/Syncmld1/runs/")
    assert run["state"] == "done"
    assert run["result"] == "ok"
    assert run["mode"] == "two-way"
    assert run["error"] is None
    assert run["bytes_sent"] > 0 and run["bytes_received"] > 0
    (store,) = run["stores"]
    assert store["local"] == "contacts"
    assert store["mode"] == "two-way"
    assert store["local_added"] == 1  # peer-4
    assert store["remote_added"] == 0


def test_sync_unknown_device_or_store(world: World) -> None:
    done = world.ctl("sync", "nosuchphone")
    assert done.returncode == 4
    assert done.stderr == "syncmlctl: no device named 'nosuchphone' (devices: peer, phone, stuck)\n"
    done = world.ctl("sync", "peer", "--store", "nosuchstore")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("syncmlctl: cannot sync with peer: invalid argument")
    assert done.stderr.count("\n") == 1
    done = world.ctl("history", "nosuchphone")
    assert done.returncode == 4


def _finish(follower: subprocess.Popen[str]) -> tuple[str, str]:
    """Wait for a ``syncmlctl sync`` started with :meth:`World.start_ctl`; its output."""
    try:
        return follower.communicate(timeout=TIMEOUT)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def test_cancel_by_device_and_busy(world: World) -> None:
    follower = world.start_ctl("sync", "stuck", "--no-progress")
    assert follower.stdout is not None
    try:
        # The first line comes once Sync has replied: the run exists.
        first = Lines(follower.stdout)
        first.wait_for("stuck: ")
        status = world.ctl_json("status")
        (run,) = status["active_runs"]
        assert run["device"] == "stuck"
        assert run["role"] == "client"
        assert run["state"] in ("queued", "connecting", "running")
        assert {d["name"]: d for d in status["devices"]}["stuck"]["current_run"] == run["path"]
        # A second sync with the same device is refused.
        busy = world.ctl("sync", "stuck")
        assert busy.returncode == 5, busy.stderr
        assert busy.stderr.startswith("syncmlctl: cannot sync with stuck: busy")
        done = world.ctl("cancel", "stuck")
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"cancelling run {run['path'].rsplit('/', 1)[1]}\n"
        follower.wait(TIMEOUT)
        first.thread.join(TIMEOUT)
        out = "".join(first.seen + list(first.queue.queue))
        assert follower.stderr is not None
        err = follower.stderr.read()
        follower.stderr.close()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 6, (out, err)
    assert out.splitlines()[-1].startswith("sync with stuck: cancelled")
    assert err.startswith("syncmlctl: sync with stuck cancelled")
    (last,) = world.ctl_json("history", "stuck", "--limit", "1")
    assert last["result"] in ("cancelled", "failed")
    # Nothing left to cancel.
    for args in (["stuck"], ["9999"], []):
        done = world.ctl("cancel", *args)
        assert done.returncode == 4, done.stderr
        assert done.stderr.count("\n") == 1


def test_cancel_everything_while_sync_json_waits(world: World) -> None:
    follower = world.start_ctl("sync", "stuck", "--json")
    deadline = time.monotonic() + TIMEOUT
    while (done := world.ctl("cancel")).returncode == 4:  # until the run exists
        assert time.monotonic() < deadline, done.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("cancelling run ")
    out, _ = _finish(follower)
    assert follower.returncode == 6
    run = json.loads(out)
    assert run["state"] == "cancelled"
    assert run["result"] == "cancelled"
    assert run["error"] == "org.syncmld.Syncmld1.Error.Cancelled"


def test_ctrl_c_cancels_the_run_and_exits_6(world: World) -> None:
    follower = world.start_ctl("sync", "stuck", "--no-progress")
    assert follower.stdout is not None
    lines = Lines(follower.stdout)
    try:
        lines.wait_for("stuck: ")
        follower.send_signal(signal.SIGINT)
        follower.wait(TIMEOUT)
        lines.thread.join(TIMEOUT)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.stderr is not None
    with follower.stderr:
        err = follower.stderr.read()
    assert follower.returncode == 6
    assert err == "syncmlctl: sync with stuck cancelled\n"
    # syncmlctl waited for the run to end: nothing is left running.
    assert world.ctl("cancel", "stuck").returncode == 4


# --------------------------------------------------------------------------- conflicts


def test_conflicts_and_resolve(world: World) -> None:
    from syncmld import SyncClient
    from syncmld.stores.vdir import VdirStore

    phone_dir = world.root / "phone"
    phone_dir.mkdir()
    (phone_dir / "phone-1.vcf").write_text(vcard("phone-1", "Phone"), "utf-8")

    def phone_sync() -> None:
        client = SyncClient(
            world.daemon_url,
            state_url=f"sqlite:///{world.root / 'phone.db'}",
            device_id="ctl-test-phone",
        )
        client.add_store("contacts", VdirStore.of_kind(phone_dir, "contacts"), remote="contacts")
        result = client.sync()
        assert result.ok, result.message

    phone_sync()
    on_desktop = next(
        p for p in world.local_contacts.glob("*.vcf") if "UID:phone-1" in p.read_text("utf-8")
    )
    on_desktop.write_text(vcard("phone-1", "Phone", tel="+491111"), "utf-8")
    (phone_dir / "phone-1.vcf").write_text(vcard("phone-1", "Phone", tel="+492222"), "utf-8")
    phone_sync()

    conflicts = world.ctl_json("conflicts")
    assert len(conflicts) == 1
    (conflict,) = conflicts
    assert conflict["device"] == "phone"
    assert conflict["store"] == "contacts"
    assert conflict["resolution"]  # what the policy did
    assert conflict["detected_at"] > time.time() - 60
    assert conflict["id"] == f"phone/{conflict['path'].rsplit('/', 1)[1]}"
    assert world.ctl_json("conflicts", "phone") == conflicts
    assert world.ctl_json("conflicts", "peer") == []
    assert {d["name"]: d for d in world.ctl_json("devices")}["phone"]["conflict_count"] == 1

    text = world.ctl("conflicts")
    assert text.returncode == 0
    assert text.stdout.splitlines()[1].split()[:2] == [conflict["id"], "contacts"]

    assert world.ctl("resolve", "phone/999", "accept").returncode == 4
    assert world.ctl("resolve", conflict["id"], "sideways").returncode == 2
    done = world.ctl("resolve", conflict["id"], "accept")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"resolved {conflict['id']}\n"
    assert world.ctl_json("conflicts") == []
    assert world.ctl("conflicts").stdout == "no conflicts\n"


# --------------------------------------------------------------------------- the end


def test_daemon_stopping_during_a_sync_ends_it(world: World) -> None:
    """Runs last: it stops the module's daemon."""
    follower = world.start_ctl("sync", "stuck", "--no-progress")
    assert follower.stdout is not None
    lines = Lines(follower.stdout)
    try:
        lines.wait_for("stuck: ")
        world.daemon.send_signal(signal.SIGTERM)
        follower.wait(TIMEOUT)
        lines.thread.join(TIMEOUT)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.stderr is not None
    with follower.stderr:
        err = follower.stderr.read()
    # The daemon aborts the run before it leaves the bus (cancelled, 6); had
    # it vanished first, syncmlctl would say so (3).
    assert follower.returncode in (6, 3), err
    assert err.startswith(("syncmlctl: sync with stuck cancelled", "syncmlctl: syncmld stopped"))
    assert err.count("\n") == 1
    assert world.daemon.wait(TIMEOUT) == 0
    done = world.ctl("status")
    assert done.returncode == 3
    assert done.stderr == (
        "syncmlctl: syncmld is not running (no org.syncmld.Syncmld1 on the session bus)\n"
    )
