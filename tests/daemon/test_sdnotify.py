"""sd_notify messages on a real datagram socket: a path, an abstract name, the watchdog."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncmld.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def test_ready_status_stopping_on_a_path_socket(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("serving HTTP")
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving HTTP"
    assert notifier.status("two\nlines")
    assert sock.recv(4096) == b"STATUS=two lines"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    notifier.close()


def test_abstract_socket() -> None:
    name = f"syncmld-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"
        notifier.close()
    finally:
        sock.close()


def test_without_a_service_manager_nothing_is_sent(tmp_path: Path) -> None:
    notifier = Notifier({})
    assert not notifier.enabled and not notifier.ready()
    # A socket that vanished: logged once, never raised.
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert not gone.ready() and not gone.stopping()
    gone.close()


async def test_watchdog_pings_at_half_the_interval(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    sock.setblocking(False)
    notifier = Notifier(
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000", "WATCHDOG_PID": str(os.getpid())}
    )
    assert notifier.watchdog_interval == pytest.approx(0.4)
    task = asyncio.create_task(notifier.watchdog())
    await asyncio.sleep(0.5)  # pings at 0, 0.2, 0.4
    task.cancel()
    notifier.close()
    pings = []
    while True:
        try:
            pings.append(sock.recv(4096))
        except BlockingIOError:
            break
    assert pings.count(b"WATCHDOG=1") == 3, pings
    # Another process's watchdog is not ours.
    assert (
        Notifier(
            {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1", "WATCHDOG_PID": "1"}
        ).watchdog_interval
        is None
    )
