"""``syncmld sync`` as a real process against a real ``syncmld serve-http`` process.

Both run on 127.0.0.1 (the server on a free port it picks itself), with
temporary XDG folders, vdir stores and SQLite state databases.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TIMEOUT = 60

pytestmark = pytest.mark.slow


def vcard(n: int, name: str) -> str:
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:person-{n}\r\nN:{name};Anna;;;\r\nFN:Anna {name}\r\n"
        f"TEL;TYPE=CELL:+49151000{n:04d}\r\nEND:VCARD\r\n"
    )


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        PYTHONUNBUFFERED="1",
    )
    return env


def syncmld(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncmld.cli", *args],
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def vdir_items(path: Path) -> dict[str, str]:
    """File name -> content (line endings folded) of the .vcf files."""
    return {
        p.name: p.read_bytes().decode().replace("\r\n", "\n").strip()
        for p in sorted(path.glob("*.vcf"))
    }


LINE = re.compile(
    r"(?P<store>[^:]+): (?P<mode>[a-z-]+), "
    r"local (\d+) added (\d+) replaced (\d+) deleted, "
    r"remote (\d+) added (\d+) replaced (\d+) deleted, "
    r"(?P<conflicts>\d+) conflicts, (?P<status>.*)"
)


@dataclass
class Report:
    """One store line of ``syncmld sync``; counts are (added, replaced, deleted)."""

    store: str
    mode: str
    local: tuple[int, ...]
    remote: tuple[int, ...]
    conflicts: int
    status: str


def parse(line: str) -> Report:
    m = LINE.fullmatch(line)
    assert m is not None, line
    n = [int(g) for g in m.groups()[2:8]]
    return Report(
        m["store"], m["mode"], tuple(n[:3]), tuple(n[3:]), int(m["conflicts"]), m["status"]
    )


def snapshot(path: Path) -> dict[str, tuple[int, int]]:
    """File name -> (mtime_ns, inode) of every file."""
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in sorted(path.iterdir())}


@dataclass
class Server:
    """A running ``syncmld serve-http`` process."""

    process: subprocess.Popen[str]
    url: str
    contacts: Path
    lines: queue.Queue[str]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "server"
    contacts = home / "data" / "syncmld" / "contacts"
    contacts.mkdir(parents=True)
    (contacts / "person-1.vcf").write_bytes(vcard(1, "Server").encode())
    config = home / "syncmld.toml"
    config.write_text(
        f"""
[state]
url = "sqlite:///{home / "state.db"}"

[stores.contacts]
kind = "contacts"

[http]
host = "127.0.0.1"

[accounts]
test = "secret"
""",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "syncmld.cli", "serve-http", "--config", str(config), "--port", "0"],
        env=environment(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    url = None
    try:
        while url is None:
            line = lines.get(timeout=TIMEOUT)
            m = re.search(r"serving SyncML on (http://127\.0\.0\.1:\d+/)", line)
            if m:
                url = m.group(1)
        yield Server(process, url, contacts, lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=TIMEOUT)
        assert process.stderr is not None
        process.stderr.close()


@pytest.fixture
def client_home(tmp_path: Path) -> Path:
    home = tmp_path / "client"
    contacts = home / "data" / "syncmld" / "contacts"
    contacts.mkdir(parents=True)
    (contacts / "person-2.vcf").write_bytes(vcard(2, "Client").encode())
    (contacts / "person-3.vcf").write_bytes(vcard(3, "Client").encode())
    return home


def client_config(home: Path, url: str, password: str = "secret") -> Path:
    path = home / "client.toml"
    path.write_text(
        f"""
[stores.contacts]
kind = "contacts"

[servers.desktop]
url = "{url}"
user = "test"
password = "{password}"

[[servers.desktop.sync]]
local = "contacts"
remote = "contacts"
""",
        encoding="utf-8",
    )
    return path


def test_sync_copies_both_ways_then_writes_nothing(server: Server, client_home: Path) -> None:
    config = client_config(client_home, server.url)
    contacts = client_home / "data" / "syncmld" / "contacts"

    first = syncmld("sync", "--config", str(config), "desktop", home=client_home)
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    [line] = first.stdout.splitlines()
    report = parse(line)
    assert (report.store, report.mode) == ("contacts", "slow")
    assert (report.local, report.status) == ((1, 0, 0), "ok")
    # A slow sync sends every item as Replace: the engine counts what the
    # server added as replaced (see the report), so only the total is fixed.
    assert sum(report.remote) == 2 and report.conflicts == 0
    ours, theirs = vdir_items(contacts), vdir_items(server.contacts)
    assert len(ours) == len(theirs) == 3
    assert sorted(ours.values()) == sorted(theirs.values())
    # Items arriving from the other side are named after their UID.
    assert sorted(ours) == sorted(theirs) == ["person-1.vcf", "person-2.vcf", "person-3.vcf"]

    before = (snapshot(contacts), snapshot(server.contacts))
    second = syncmld("sync", "--config", str(config), "desktop", home=client_home)
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines() == [
        (
            "contacts: two-way, local 0 added 0 replaced 0 deleted, "
            "remote 0 added 0 replaced 0 deleted, 0 conflicts, ok"
        )
    ]
    assert (snapshot(contacts), snapshot(server.contacts)) == before

    # An edit on the client travels; the next run is quiet again.
    (contacts / "person-2.vcf").write_bytes(vcard(2, "Edited").encode())
    os.utime(contacts / "person-2.vcf", ns=(0, before[0]["person-2.vcf"][0] + 10**9))
    third = syncmld("sync", "--config", str(config), "desktop", home=client_home)
    assert third.returncode == 0, third.stderr
    assert "remote 0 added 1 replaced 0 deleted" in third.stdout
    assert "Anna Edited" in (server.contacts / "person-2.vcf").read_text(encoding="utf-8")


def test_wrong_password(server: Server, client_home: Path) -> None:
    config = client_config(client_home, server.url, password="wrong")
    result = syncmld("sync", "--config", str(config), "desktop", home=client_home)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        (
            "syncmld: sync with desktop failed: authentication failed: "
            "check the user name and password"
        )
    ]
    assert len(vdir_items(server.contacts)) == 1


def test_unreachable_server(client_home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = client_config(client_home, f"http://127.0.0.1:{port}/")
    result = syncmld("sync", "--config", str(config), "desktop", home=client_home)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        (
            f"syncmld: sync with desktop failed: cannot connect to 127.0.0.1:{port}: "
            "Connection refused"
        )
    ]


def test_configuration_errors_exit_2(client_home: Path) -> None:
    config = client_config(client_home, "http://127.0.0.1:9/")
    result = syncmld("sync", "--config", str(config), "nosuch", home=client_home)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"syncmld: {config}: no server named 'nosuch' (defined: desktop)"
    ]
    result = syncmld(
        "sync", "--config", str(config), "desktop", "--store", "calendar", home=client_home
    )
    assert result.returncode == 2
    assert "has no sync pair for store 'calendar'" in result.stderr
    config.write_text("[servers.x]\nurl = 3\n", encoding="utf-8")
    result = syncmld("sync", "--config", str(config), "x", home=client_home)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"syncmld: {config}: servers.x.url: expected a string, got an integer"
    ]
    result = syncmld("sync", "x", home=client_home)
    assert result.returncode == 2
    assert result.stderr.startswith("syncmld: no configuration file at ")


def test_serve_http_stops_cleanly_on_ctrl_c(server: Server) -> None:
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=TIMEOUT) == 0
    rest = []
    while not server.lines.empty():
        rest.append(server.lines.get())
    assert not any("Traceback" in line for line in rest)


def test_serve_http_runs_on_embedded_defaults_without_a_config_file(tmp_path: Path) -> None:
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        env[var] = str(tmp_path / var.lower())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncmld.cli", "serve-http", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = ""
        while "serving SyncML" not in line:
            line = proc.stderr.readline()
            assert line, "serve-http ended before serving"
        assert f"http://127.0.0.1:{port}/" in line
        data_dir = tmp_path / "xdg_data_home" / "syncmld"
        assert (data_dir / "contacts").is_dir()
        assert (data_dir / "calendar").is_dir()
        assert (tmp_path / "xdg_state_home" / "syncmld" / "state.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
    assert code == 0
