"""``syncmld run`` as a process: start-up failures, a missing session bus, D-Bus activation.

Each failure gives one line naming what is wrong and a non-zero exit, never
a traceback; without a session bus (or a system bus) the daemon says so
once, tells the service manager it is ready and keeps serving HTTP; a
D-Bus call to ``org.syncmld.Syncmld1`` starts it through the activation file.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from syncmld import __version__
from syncmld.dbus.names import BUS_NAME, MANAGER_INTERFACE, MANAGER_PATH
from tests.buses import PrivateBus

ROOT = Path(__file__).resolve().parents[2]
RUN = [sys.executable, "-m", "syncmld.cli", "run"]
NO_BUS = "unix:path=/nonexistent/bus"


def write_config(tmp_path: Path, text: str = "", *, state: str | None = None) -> Path:
    config = tmp_path / "syncmld.toml"
    state = state or str(tmp_path / "state" / "state.db")
    config.write_text(
        f'[state]\nurl = "sqlite:///{state}"\n'
        f'[stores.contacts]\nkind = "contacts"\npath = "{tmp_path / "contacts"}"\n' + text
    )
    return config


def run_fails(config: Path, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    result = subprocess.run(
        [*RUN, "--config", str(config)],
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": NO_BUS, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    return result.returncode, result.stderr.splitlines()


def test_broken_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[http]\nport = "eighty"\n')
    status, lines = run_fails(config)
    assert status == 2
    assert lines == [f"syncmld: {config}: http.port: expected an integer, got a string"]


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = write_config(tmp_path, f'[http]\nhost = "127.0.0.1"\nport = {port}\n')
        status, lines = run_fails(config)
    assert status == 1
    assert lines[-1] == f"syncmld: cannot listen on 127.0.0.1:{port}: Address already in use"
    assert sum("cannot listen" in line for line in lines) == 1


def test_unwritable_state_directory(tmp_path: Path) -> None:
    # A regular file where the state directory should be: even root cannot
    # create a directory there.
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    config = write_config(tmp_path, "[http]\nport = 0\n", state=str(blocker / "state.db"))
    status, lines = run_fails(config)
    assert status == 1
    assert len(lines) == 1 and str(blocker) in lines[0], lines
    assert lines[0].startswith("syncmld: ")


async def test_without_session_bus_it_says_so_once_and_keeps_serving(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[http]\nhost = "127.0.0.1"\nport = 0\n'
        '[devices.k700i]\naddress = "00:1D:FE:12:34:56"\n'
        '[devices.k700i.stores]\ncontacts = "Contacts"\n',
    )
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.setblocking(False)
    env = {
        **os.environ,
        "DBUS_SESSION_BUS_ADDRESS": NO_BUS,
        "DBUS_SYSTEM_BUS_ADDRESS": NO_BUS,
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "JOURNAL_STREAM": "8:12345",
    }
    proc = await asyncio.create_subprocess_exec(
        *RUN,
        "--config",
        str(config),
        env=env,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    loop = asyncio.get_running_loop()
    try:
        ready = (await asyncio.wait_for(loop.sock_recv(notify, 4096), 60)).decode()
        assert ready.startswith("READY=1\nSTATUS=serving HTTP on http://127.0.0.1:"), ready
        url = ready.split(" on ", 1)[1].split("/", 3)
        base = "/".join(url[:3]) + "/"

        def get() -> int:
            try:
                with urllib.request.urlopen(base, timeout=10) as response:
                    return int(response.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        assert await asyncio.to_thread(get) in (400, 405, 415)
        proc.send_signal(signal.SIGTERM)
        assert (await asyncio.wait_for(loop.sock_recv(notify, 4096), 30)) == b"STOPPING=1"
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        notify.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.stderr is not None
    lines = (await proc.stderr.read()).decode().splitlines()
    assert all(line[:3] in ("<6>", "<4>", "<3>", "<7>") for line in lines), lines
    assert "Traceback" not in "\n".join(lines)
    assert sum("D-Bus" in line for line in lines if line.startswith("<4>")) == 1, lines
    assert sum("Bluetooth" in line for line in lines if line.startswith("<4>")) == 1, lines


def busctl(address: str, *args: str) -> str:
    result = subprocess.run(
        ["busctl", "--user", *args],
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": address},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_activation_file_starts_the_daemon(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[http]\nhost = "127.0.0.1"\nport = 0\n')
    services = tmp_path / "services"
    services.mkdir()
    activation = (ROOT / "systemd" / f"{BUS_NAME}.service").read_text()
    # Our interpreter instead of /usr/bin/syncmld, and the test's configuration.
    exec_line = next(line for line in activation.splitlines() if line.startswith("Exec="))
    command = " ".join([*RUN, "--config", str(config)])
    (services / f"{BUS_NAME}.service").write_text(activation.replace(exec_line, f"Exec={command}"))
    with PrivateBus(service_dir=services, env={"DBUS_SYSTEM_BUS_ADDRESS": NO_BUS}) as bus:
        version = busctl(
            bus.address, "get-property", BUS_NAME, MANAGER_PATH, MANAGER_INTERFACE, "Version"
        )
        assert version == f's "{__version__}"'
        pid = int(
            busctl(
                bus.address,
                "call",
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "GetConnectionUnixProcessID",
                "s",
                BUS_NAME,
            ).split()[1]
        )
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the activated daemon did not stop on SIGTERM")
