"""khard and khal read the vdir folders a sync writes.

Contacts and events go from our server to our client's vdir folders over
HTTP; then ``khard list`` and ``khal list`` run as real processes, with their
configuration files (and HOME, XDG folders) in a temporary folder, and must
show the right names and times - including an event in Europe/Berlin that
spans the night the clocks go forward.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from syncmld import SyncClient
from syncmld.engine.server import ServerConfig
from syncmld.engine.session import Datastore
from syncmld.engine.store import ICAL_20, VCARD_30, MemoryStore
from syncmld.state.repository import StateRepository
from syncmld.stores.vdir import VdirStore
from syncmld.transports.http import HttpServer, make_app

pytestmark = pytest.mark.external

TIMEOUT = 30

CONTACTS = {
    "anna-1": ("Müller;Anna;;;", "Anna Müller"),
    "pjotr 2": ("Иванов;Пётр;;;", "Пётр Иванов"),  # an unsafe UID: a UUID file name
    "li-3@example.org": ("李;小龙;;;", "李小龙"),
}

BERLIN = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"
    "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"
    "DTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n"
    "DTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)


def vcard(uid: str, n: str, fn: str) -> str:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nN:{n}\r\nFN:{fn}\r\nEND:VCARD\r\n"


def event(uid: str, summary: str, start: str, end: str, timezone: str = "") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncmld//tests//EN\r\n"
        f"{timezone}BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"{start}\r\n{end}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


EVENTS = [
    # 01:30 CET to 04:30 CEST: two hours, across the jump from 02:00 to 03:00.
    event(
        "night-train@example.org",
        "Night train",
        "DTSTART;TZID=Europe/Berlin:20260329T013000",
        "DTEND;TZID=Europe/Berlin:20260329T043000",
        BERLIN,
    ),
    # The same UTC hour shows one hour later in Berlin after the change.
    event(
        "before@example.org", "Standup CET", "DTSTART:20260328T110000Z", "DTEND:20260328T113000Z"
    ),
    event(
        "after@example.org", "Standup CEST", "DTSTART:20260330T110000Z", "DTEND:20260330T113000Z"
    ),
]


def run(tool: str, *args: str, home: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "LC_", "LANG"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        LANG="C.UTF-8",
        TZ="Europe/Berlin",
    )
    done = subprocess.run(
        [tool, *args], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{tool} failed: {done.stderr}"
    return done.stdout


@pytest.fixture
def tools() -> dict[str, str]:
    found = {name: shutil.which(name) for name in ("khard", "khal")}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (pip install -e '.[test]')")
    return {n: p for n, p in found.items() if p is not None}


async def test_khard_and_khal_show_synced_items(tmp_path: Path, tools: dict[str, str]) -> None:
    server_contacts = MemoryStore(
        [vcard(uid, n, fn) for uid, (n, fn) in CONTACTS.items()], content_types=(VCARD_30,)
    )
    server_events = MemoryStore(EVENTS, content_types=(ICAL_20,))
    config = ServerConfig(
        datastores=(
            Datastore(name="contacts", store=server_contacts),
            Datastore(name="calendar", store=server_events),
        )
    )
    contacts = VdirStore.of_kind(tmp_path / "vdir" / "contacts", "contacts")
    events = VdirStore.of_kind(tmp_path / "vdir" / "calendar", "events")
    with StateRepository(f"sqlite:///{tmp_path / 'server.db'}") as repo:
        async with HttpServer(make_app(config, repo), port=0) as http:
            client = SyncClient(http.url, state_url=f"sqlite:///{tmp_path / 'client.db'}")
            client.add_store("contacts", contacts)
            client.add_store("calendar", events)
            result = await client.sync_async()
    assert result.ok, result.message
    assert result["contacts"].local_added == 3 and result["calendar"].local_added == 3

    home = tmp_path / "home"
    home.mkdir()
    (home / "khard.conf").write_text(
        f"[addressbooks]\n[[phone]]\npath = {contacts.path}\n"
        "[general]\neditor = /bin/true\nmerge_editor = /bin/true\n"
        "[contact table]\ndisplay = formatted_name\n",
        encoding="utf-8",
    )
    (home / "khal.conf").write_text(
        f"[calendars]\n[[phone]]\npath = {events.path}\n"
        "[locale]\nlocal_timezone = Europe/Berlin\ndefault_timezone = Europe/Berlin\n"
        "timeformat = %H:%M\ndateformat = %Y-%m-%d\nlongdateformat = %Y-%m-%d\n"
        "datetimeformat = %Y-%m-%d %H:%M\nlongdatetimeformat = %Y-%m-%d %H:%M\n"
        f"[sqlite]\npath = {home / 'khal.db'}\n",
        encoding="utf-8",
    )

    listing = run(tools["khard"], "-c", str(home / "khard.conf"), "list", "--parsable", home=home)
    names = sorted(line.split("\t")[1] for line in listing.splitlines() if line.strip())
    assert names == sorted(fn for _, fn in CONTACTS.values())

    agenda = run(
        tools["khal"],
        "-c",
        str(home / "khal.conf"),
        "list",
        "--format",
        "{start} | {end} | {title}",
        "--day-format",
        "",
        "2026-03-28",
        "4d",
        home=home,
    )
    lines = [line for line in agenda.splitlines() if "|" in line]
    assert lines == [
        "2026-03-28 12:00 | 2026-03-28 12:30 | Standup CET",
        "2026-03-29 01:30 | 2026-03-29 04:30 | Night train",
        "2026-03-30 13:00 | 2026-03-30 13:30 | Standup CEST",
    ]
