"""The systemd user unit verifies without a word; the D-Bus activation file names it."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from syncmld.dbus.names import BUS_NAME

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "syncmld.service"
ACTIVATION = ROOT / "systemd" / f"{BUS_NAME}.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_verifies_without_warnings(tmp_path: Path) -> None:
    # The unit runs %h/.local/bin/syncmld (a `pip install --user`); verify
    # checks that it exists, so give it a home where it does.
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    syncmld = shutil.which("syncmld")
    assert syncmld is not None
    (home / ".local" / "bin" / "syncmld").symlink_to(syncmld)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(UNIT)],
        env={**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == "", result.stdout + result.stderr


def test_unit_is_a_hardened_notify_service() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(UNIT)
    service = unit["Service"]
    assert service["Type"] == "notify" and service["Restart"] == "on-failure"
    assert service["WatchdogSec"]
    for option in ("NoNewPrivileges", "LockPersonality", "MemoryDenyWriteExecute"):
        assert service[option] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert "AF_BLUETOOTH" in service["RestrictAddressFamilies"].split()


def test_activation_file_names_the_bus_name_and_the_unit() -> None:
    activation = configparser.ConfigParser(interpolation=None)
    activation.optionxform = str  # type: ignore[assignment,method-assign]
    activation.read(ACTIVATION)
    section = activation["D-BUS Service"]
    assert section["Name"] == BUS_NAME
    assert section["SystemdService"] == UNIT.name
    assert section["Exec"].split()[1:] == ["run"]
