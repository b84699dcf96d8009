"""ContentType and the to_desktop/to_phone dispatch over every recorded item."""

from __future__ import annotations

from typing import Any

import icalendar
import pytest

from syncmld.formats import (
    ContentType,
    FormatError,
    content_hash,
    to_desktop,
    to_phone,
    vcal10_to_ical20,
)
from syncmld.formats.vcard import parse_component

from ._vectors import items

ALL_ITEMS = [
    i
    for pattern in ("horde/sessions/*/*.xml", "syncevolution/**/*.xml", "libwbxml/*.xml")
    for i in items(pattern)
    # Large objects split over messages (MoreData) are incomplete on their own.
    if "BEGIN:" not in i.data or i.data.count("BEGIN:") == i.data.count("END:")
]
PHONE_TYPE = {ContentType.VCARD30: ContentType.VCARD21,
              ContentType.ICALENDAR20: ContentType.VCALENDAR10}


def test_content_types() -> None:
    assert ContentType.from_meta("text/x-vcard") is ContentType.VCARD21
    assert ContentType.from_meta("text/vcard", "3.0") is ContentType.VCARD30
    assert ContentType.from_meta("text/x-vcalendar") is ContentType.VCALENDAR10
    assert ContentType.from_meta("text/calendar", "1.0") is ContentType.VCALENDAR10
    assert ContentType.from_meta("text/plain") is ContentType.PLAIN
    assert ContentType.from_meta("TEXT/X-VNOTE", "1.1") is ContentType.VNOTE11
    assert ContentType.VCARD21.desktop is ContentType.VCARD30
    assert ContentType.PLAIN.desktop is ContentType.ICALENDAR20
    assert ContentType.VCARD21.mime == "text/x-vcard" and ContentType.VCARD21.ver_ct == "2.1"
    assert all(t.description for t in ContentType)
    with pytest.raises(FormatError):
        ContentType.from_meta("text/x-s4j-sife")


def test_sniffing_beats_mislabelled_meta() -> None:
    # The P900 labels vCalendar 1.0 as text/calendar (Horde P900 session).
    p900 = next(i for i in ALL_ITEMS if "X-EPOCAGENDAENTRYTYPE" in i.data
                and "VERSION:1.0" in i.data and "client" in i.path.name)
    assert p900.content_type == "text/calendar"
    assert ContentType.sniff(p900.data) is ContentType.VCALENDAR10
    assert ContentType.sniff("a memo") is ContentType.PLAIN


@pytest.mark.parametrize("item", ALL_ITEMS, ids=lambda i: i.label)
def test_every_recorded_item_converts_both_ways(item: Any) -> None:
    kind = ContentType.sniff(item.data)
    desktop = to_desktop(item.data, kind, device_tz="Europe/Berlin")
    if kind.kind == "contact":
        assert parse_component(desktop).version == "3.0"
    else:
        assert icalendar.Calendar.from_ical(desktop)["VERSION"] == "2.0"
    phone = to_phone(desktop, PHONE_TYPE.get(kind, kind), device_tz="Europe/Berlin")
    # What goes back to the phone comes in again as the same desktop item.
    again = to_desktop(phone.text, PHONE_TYPE.get(kind, kind), device_tz="Europe/Berlin")
    assert content_hash(again) == content_hash(desktop)


def test_broken_tz_does_not_cost_the_item() -> None:
    text = ("BEGIN:VCALENDAR\r\nVERSION:1.0\r\nTZ:somewhere\r\nDAYLIGHT:TRUE;x;y;z\r\n"
            "BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20240101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    event = icalendar.Calendar.from_ical(vcal10_to_ical20(text)).walk("VEVENT")[0]
    assert event["DTSTART"].to_ical() == b"20240101T100000Z"
