"""Private D-Bus daemons for tests: a session bus and a stand-in system bus.

Each :class:`PrivateBus` is a real ``dbus-daemon`` on a Unix socket in a temp
directory, with a policy that lets any connection own any name and talk to
anyone (what a fake BlueZ on the "system bus" needs).  Use the ``session_bus``
and ``system_bus`` fixtures from ``tests/conftest.py``, or the class directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  {servicedir}
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
    <allow user="*"/>
  </policy>
  <limit name="max_replies_per_connection">50000</limit>
</busconfig>
"""


class PrivateBus:
    """A private ``dbus-daemon``; ``address`` is its D-Bus address.

    Args:
        service_dir: a folder of D-Bus ``.service`` activation files the bus
            may use to start services on demand.
        env: extra environment for services the bus activates.
    """

    def __init__(self, service_dir: Path | None = None, env: dict[str, str] | None = None):
        if shutil.which("dbus-daemon") is None:
            raise RuntimeError("dbus-daemon is not installed (apt-get install dbus)")
        self._dir = Path(tempfile.mkdtemp(prefix="syncmld-bus-"))
        socket = self._dir / "bus"
        config = self._dir / "bus.conf"
        servicedir = f"<servicedir>{service_dir}</servicedir>" if service_dir else ""
        config.write_text(_CONFIG.format(socket=socket, servicedir=servicedir))
        self.address = f"unix:path={socket}"
        child_env = {**os.environ, **(env or {})}
        self._proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=child_env,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # printed once the bus listens
        if not line:
            self.close()
            raise RuntimeError("dbus-daemon did not start")

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        return self._proc.pid

    def close(self) -> None:
        """Stop the daemon and remove its folder."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
