"""Start-up time, idle memory and idle CPU of ``syncmld run``.

Starts the daemon as systemd would - a ``NOTIFY_SOCKET`` this script
listens on, a private session bus when ``dbus-daemon`` is installed, no
system bus - with a configuration of two vdir stores and the HTTP and
OBEX/TCP listeners on free ports, then prints:

* the time from spawning the process to ``READY=1`` (target < 1 s),
* its resident memory once idle (target < 60 MB),
* the CPU seconds it uses while idling for ``--idle`` seconds (target ~ 0:
  nothing polls).

Usage: ``python benchmarks/daemon.py [--idle 60] [--runs 3]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """
[state]
url = "sqlite:///{dir}/state.db"
[stores.contacts]
kind = "contacts"
path = "{dir}/contacts"
[stores.calendar]
kind = "calendar"
path = "{dir}/calendar"
[http]
host = "127.0.0.1"
port = 0
[obex]
enabled = true
port = 0
"""


def start_bus(folder: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    """A private session bus, or none (the daemon then runs without D-Bus)."""
    if shutil.which("dbus-daemon") is None:
        return None, "unix:path=/nonexistent"
    proc = subprocess.Popen(
        [
            "dbus-daemon",
            "--session",
            "--nofork",
            "--print-address=1",
            f"--address=unix:path={folder / 'bus'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().decode().strip()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_run(folder: Path, bus: str, idle: float) -> tuple[float, float, float]:
    config = folder / "syncmld.toml"
    config.write_text(CONFIG.format(dir=folder))
    notify_path = folder / "notify"
    notify_path.unlink(missing_ok=True)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(60)
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(notify_path),
        "DBUS_SESSION_BUS_ADDRESS": bus,
        "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent",
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncmld.cli", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            message = notify.recv(4096)
            if message.startswith(b"READY=1"):
                break
        ready = time.perf_counter() - started
        time.sleep(1)
        before = cpu_seconds(proc.pid)
        time.sleep(idle)
        cpu = cpu_seconds(proc.pid) - before
        rss = rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        notify.close()
    return ready, rss, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idling measured")
    parser.add_argument("--runs", type=int, default=3, help="start-ups measured")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncmld-bench-") as tmp:
        folder = Path(tmp)
        bus_proc, bus = start_bus(folder)
        try:
            results = [one_run(folder, bus, args.idle if i == 0 else 0.0) for i in range(args.runs)]
        finally:
            if bus_proc is not None:
                bus_proc.terminate()
                bus_proc.wait()
    readies = [r[0] for r in results]
    print(f"D-Bus: {'private session bus' if bus_proc else 'none'}; system bus: none")
    print(
        f"start-up to READY=1: median {statistics.median(readies):.2f} s "
        f"(min {min(readies):.2f}, max {max(readies):.2f}, {len(readies)} runs; target < 1 s)"
    )
    print(f"RSS when idle:       {results[0][1]:.1f} MB (target < 60 MB)")
    print(f"CPU over {args.idle:g} s idle: {results[0][2]:.3f} s (target ~ 0)")


if __name__ == "__main__":
    main()
