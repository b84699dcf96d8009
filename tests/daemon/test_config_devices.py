"""``[devices.*]`` tables: what the daemon reads about phones; errors name file and key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from syncmld.config import ConfigError, load, parse
from syncmld.engine.decide import Policy
from syncmld.protocol.codes import SyncMode

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "syncmld.toml"
STORES = {"contacts": {"kind": "contacts", "type": "memory"}}


def devices(**tables: Any) -> dict[str, Any]:
    return {"stores": STORES, "devices": tables}


def test_a_bluetooth_phone() -> None:
    config = parse(
        devices(
            k700i={
                "address": "00:1d:fe:12:34:56",
                "stores": {"contacts": "Contacts"},
                "settle_delay": 2.5,
                "min_interval": 60,
                "conflict_policy": "phone-wins",
                "max_delete_share": 0.2,
                "mode": "slow",
            }
        )
    )
    phone = config.devices["k700i"]
    assert phone.address == "00:1D:FE:12:34:56" and phone.transport == "bluetooth"
    assert phone.stores == {"contacts": "Contacts"}
    assert (phone.settle_delay, phone.min_interval) == (2.5, 60)
    assert phone.conflict_policy is Policy.PHONE_WINS and phone.mode is SyncMode.SLOW
    assert phone.guard.max_delete_share == 0.2 and phone.auto_sync


def test_a_phone_known_by_dev_id_only_needs_no_stores() -> None:
    phone = parse(devices(n95={"dev_id": "IMEI:1"})).devices["n95"]
    assert phone.transport is None and phone.stores == {}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"address": "00:11:22"}, "devices.p.address: '00:11:22' is not a Bluetooth address"),
        ({"dev_id": "x", "transport": "obex-tcp", "host": "h"}, "devices.p.port: missing"),
        ({"address": "00:11:22:33:44:55"}, "devices.p.stores: missing"),
        (
            {"address": "00:11:22:33:44:55", "stores": {"notes": "Notes"}},
            "devices.p.stores.notes: no store named 'notes'",
        ),
        ({"dev_id": "x", "colour": "red"}, "devices.p.colour: unknown key"),
        ({"dev_id": "x", "max_delete_share": 2}, "devices.p.max_delete_share: 2 is not between"),
        ({"dev_id": "x", "auto_sync": "yes"}, "devices.p.auto_sync: expected a boolean"),
        ({}, "devices.p: give an address, a dev_id or a host"),
    ],
)
def test_errors_name_the_file_and_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(devices(p=table), source="phones.toml")
    assert str(info.value).startswith(f"phones.toml: {message}"), str(info.value)


def test_the_commented_example_works_when_uncommented(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("# [devices.k700i]")
    end = text.index("# ----", start)
    block = re.sub(r"^# (?!#)", "", text[start:end], flags=re.M)
    copy = tmp_path / "syncmld.toml"
    copy.write_text(text[:start] + block + text[end:], encoding="utf-8")
    config = load(copy)
    phone = config.devices["k700i"]
    assert phone.transport == "bluetooth" and set(phone.stores) == {"contacts", "calendar"}
