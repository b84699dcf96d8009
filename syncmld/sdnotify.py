"""The systemd notification protocol (``sd_notify``), written directly to ``$NOTIFY_SOCKET``.

A service of ``Type=notify`` tells systemd that it is ready (``READY=1``),
what it is doing (``STATUS=...``), that it is stopping (``STOPPING=1``) and
that it is alive (``WATCHDOG=1``, at least every ``WatchdogSec``) by sending
datagrams of ``KEY=value`` lines to the ``AF_UNIX`` socket named in
``$NOTIFY_SOCKET``; a name starting with ``@`` is in the abstract namespace.
No C library is needed.  Without ``$NOTIFY_SOCKET`` (not started by
systemd) every call does nothing.

The watchdog interval comes from ``$WATCHDOG_USEC`` (only when
``$WATCHDOG_PID`` is unset or names this process); :meth:`Notifier.watchdog`
pings at half of it, as ``sd_watchdog_enabled(3)`` recommends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends notifications to the service manager.

    Args:
        environ: where ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and
            ``WATCHDOG_PID`` are read (default: :data:`os.environ`).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        name = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if name.startswith("@"):
            self._address = b"\0" + name[1:].encode()
        elif name.startswith("/"):
            self._address = name
        self._socket: socket.socket | None = None
        self.watchdog_interval: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1_000_000
        self._failed = False

    @property
    def enabled(self) -> bool:
        """True when started by a service manager that listens."""
        return self._address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send one message: ``notify(READY=1, STATUS="serving")``.

        Returns whether it was sent.  A failure is logged once and never
        raised: the service keeps running without its manager's attention.
        """
        if self._address is None:
            return False
        text = "\n".join(f"{key}={value}" for key, value in fields.items())
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(text.encode(), self._address)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("cannot notify the service manager: %s", exc.strerror or exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1`` (and a status line)."""
        if status is None:
            return self.notify(READY=1)
        return self.notify(READY=1, STATUS=status)

    def status(self, text: str) -> bool:
        """``STATUS=text``: one line shown by ``systemctl status``."""
        return self.notify(STATUS=" ".join(text.split()))

    def stopping(self) -> bool:
        """``STOPPING=1``."""
        return self.notify(STOPPING=1)

    async def watchdog(self) -> None:
        """Ping ``WATCHDOG=1`` at half the watchdog interval until cancelled.

        Returns at once when no watchdog is asked for.
        """
        if self.watchdog_interval is None or not self.enabled:
            return
        while True:
            self.notify(WATCHDOG=1)
            await asyncio.sleep(self.watchdog_interval / 2)

    def close(self) -> None:
        """Close the socket."""
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None


__all__ = ["Notifier"]
