"""The live service matches the interface XML files clients are written against.

``busctl --user --xml-interface introspect`` (pointed at the private bus by
``DBUS_SESSION_BUS_ADDRESS``) reads each kind of object of a running daemon:
the manager, a device, a run and a conflict.  Methods (argument types and
directions), signals (argument types) and properties (type and access) must
be those of ``syncmld/dbus/interfaces/<interface>.xml``; the manager must
also be an ``org.freedesktop.DBus.ObjectManager``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from dbus_fast import introspection as intr

from syncmld.daemon import Daemon
from syncmld.dbus.names import (
    BUS_NAME,
    CONFLICT_INTERFACE,
    DEVICE_INTERFACE,
    INTERFACES,
    MANAGER_INTERFACE,
    MANAGER_PATH,
    OBJECT_MANAGER_INTERFACE,
    RUN_INTERFACE,
    RunState,
    device_path,
    interface_xml,
)
from syncmld.engine.session import ConflictResolved
from tests.buses import PrivateBus
from tests.daemon.helpers import make_config

pytestmark = pytest.mark.skipif(shutil.which("busctl") is None, reason="busctl is not installed")


def shape(interface: intr.Interface) -> dict[str, Any]:
    """What a client relies on: member names, types, directions, access."""
    return {
        "methods": {
            m.name: (
                [a.signature for a in m.in_args],
                [a.signature for a in m.out_args],
            )
            for m in interface.methods
        },
        "signals": {s.name: [a.signature for a in s.args] for s in interface.signals},
        "properties": {p.name: (p.signature, p.access.value) for p in interface.properties},
    }


async def live(address: str, path: str) -> dict[str, intr.Interface]:
    proc = await asyncio.create_subprocess_exec(
        "busctl",
        "--user",
        "--xml-interface",
        "introspect",
        BUS_NAME,
        path,
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": address},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return {i.name: i for i in intr.Node.parse(out.decode()).interfaces}


async def test_live_introspection_matches_the_xml_files(
    tmp_path: Path, session_bus: PrivateBus
) -> None:
    config = make_config(
        tmp_path,
        phone={
            "transport": "obex-tcp",
            "host": "127.0.0.1",
            "port": 9,  # discard: nobody answers, the run fails at once
            "dev_id": "IMEI:1",
            "stores": {"contacts": "Contacts"},
        },
    )
    daemon = Daemon(config, session_bus=session_bus.address, system_bus="")
    await daemon.start()
    try:
        peer = daemon.peers["phone"]
        run = daemon.start_sync(peer, 0)
        daemon._add_conflict(peer, run, ConflictResolved("contacts", "a.vcf", "7", "merge"))
        (conflict,) = [p for p in daemon.dbus.objects if "/conflicts/" in p]
        objects = {
            MANAGER_INTERFACE: MANAGER_PATH,
            DEVICE_INTERFACE: device_path("phone"),
            RUN_INTERFACE: run.path,
            CONFLICT_INTERFACE: conflict,
        }
        assert set(objects) == set(INTERFACES)
        for name, path in objects.items():
            found = await live(session_bus.address, path)
            assert name in found, (path, sorted(found))
            (expected,) = [
                i for i in intr.Node.parse(interface_xml(name)).interfaces if i.name == name
            ]
            assert shape(found[name]) == shape(expected), name
        manager = await live(session_bus.address, MANAGER_PATH)
        assert set(shape(manager[OBJECT_MANAGER_INTERFACE])["methods"]) == {"GetManagedObjects"}
        assert set(shape(manager[OBJECT_MANAGER_INTERFACE])["signals"]) == {
            "InterfacesAdded",
            "InterfacesRemoved",
        }
        while not RunState(run.values["State"]).final:
            await asyncio.sleep(0.05)
    finally:
        await daemon.stop()
