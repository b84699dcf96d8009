"""vCalendar 1.0 <-> iCalendar 2.0: recorded phone items, DST boundaries in three zones,
alarms, recurrence, all-day, status, categories."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncmld.formats.errors import FormatError
from syncmld.formats.timezones import (
    VcalTimezone,
    build_vtimezone,
    resolve_zone,
    vcal_tz_properties,
)
from syncmld.formats.vcalendar import (
    ical20_to_vcal10,
    ical_text,
    rrule10_to_20,
    rrule20_to_10,
    vcal10_to_ical20,
)
from syncmld.formats.vcard import parse_component

from ._vectors import items

VCAL10 = [
    i
    for pattern in ("horde/sessions/P900*/*client*.xml", "horde/sessions/synthesis*/*client*.xml",
                    "syncevolution/http-xml-1.1/*/*.xml")
    for i in items(pattern)
    if "VERSION:1.0" in i.data and "BEGIN:VCALENDAR" in i.data
]


def _semantic(text: str) -> list[list[tuple[Any, ...]]]:
    """Items as sorted (name, params, decoded value) triples: QP and order do not matter."""
    root = parse_component(text)
    return [
        sorted(
            (line.name,
             tuple((p.name, p.values) for p in line.params
                   if p.name not in ("ENCODING", "CHARSET")),
             line.decoded())
            for line in comp.properties
        )
        for comp in root.components
    ]


def _ical(text: str) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(text)


def _item(text: str) -> Any:
    return next(c for c in _ical(text).walk() if c.name in ("VEVENT", "VTODO"))


def _vcal(*body: str, header: tuple[str, ...] = ()) -> str:
    return "\r\n".join(("BEGIN:VCALENDAR", "VERSION:1.0", *header, *body, "END:VCALENDAR")) + "\r\n"


# ---------------------------------------------------------------------------
# Recorded phone items
# ---------------------------------------------------------------------------


def test_vectors_found() -> None:
    labels = {i.path.parent.name for i in VCAL10}
    assert {"P900_tasksandcalendar", "synthesis_tasks",
            "01-first-sync-vcard21-vcal10-text"} <= labels
    assert len(VCAL10) >= 12


@pytest.mark.parametrize("item", VCAL10, ids=lambda i: i.label)
def test_phone_items_come_back_unchanged(item: Any) -> None:
    """What a phone sent survives 1.0 -> 2.0 -> 1.0 (UTC mode, the P900's all-day
    style): same properties, parameters and decoded values."""
    two = vcal10_to_ical20(item.data)
    assert _ical(two).walk("VEVENT") or _ical(two).walk("VTODO")
    back = ical20_to_vcal10(two, allday="epoc")
    assert not back.lossy
    assert _semantic(back.text) == _semantic(item.data)


@pytest.mark.parametrize("item", VCAL10, ids=lambda i: i.label)
def test_phone_items_with_device_zone(item: Any) -> None:
    two = vcal10_to_ical20(item.data, device_tz="Europe/Berlin")
    back = ical20_to_vcal10(two, allday="epoc", device_tz="Europe/Berlin")
    assert _semantic(back.text) == _semantic(item.data)


def test_p900_appointment_golden() -> None:
    item = next(i for i in VCAL10 if "UID:667" in i.data and "client1 12-1" in i.data)
    event = _item(vcal10_to_ical20(item.data, device_tz="Europe/Berlin"))
    # Not recurring: the phone's UTC time stays UTC.
    assert event["DTSTART"].to_ical() == b"20061222T110000Z"
    recurring = item.data.replace("CLASS:PUBLIC", "RRULE:W1 FR #0\nCLASS:PUBLIC")
    event = _item(vcal10_to_ical20(recurring, device_tz="Europe/Berlin"))
    assert event.decoded("DTSTART") == datetime(2006, 12, 22, 12, tzinfo=ZoneInfo("Europe/Berlin"))
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event.decoded("CREATED") == datetime(2006, 12, 21, 23, tzinfo=UTC)
    assert "STATUS" not in event  # 2.0 events have no NEEDS-ACTION
    assert str(event["X-VCAL10-STATUS"]) == "NEEDS ACTION"
    (alarm,) = event.walk("VALARM")
    assert str(alarm["ACTION"]) == "AUDIO"
    assert alarm.decoded("TRIGGER") == timedelta(minutes=-10)
    assert str(alarm["X-VCAL10-TYPE"]) == "X-EPOCSOUND"


def test_p900_allday_golden() -> None:
    item = next(i for i in VCAL10 if "UID:678" in i.data)
    event = _item(vcal10_to_ical20(item.data))
    assert event.decoded("DTSTART") == date(2006, 12, 25)
    assert event.decoded("DTEND") == date(2006, 12, 26)
    assert str(event["DESCRIPTION"]) == "uumlaut: ü"


def test_syncevolution_10_matches_its_20() -> None:
    """SyncEvolution sent the same task as vCalendar 1.0 (SyncML 1.1) and as
    iCalendar 2.0 (SyncML 1.2 WBXML session)."""
    ical = next(
        i.data for i in items("syncevolution/http-wbxml-1.2/01-*/03-c2s.translated.xml")
        if "wbxml-todo-1" in i.data
    )
    vcal = next(i.data for i in VCAL10 if "wbxml-todo-1" in i.data)
    ours = _item(vcal10_to_ical20(vcal))
    theirs = _item(ical)
    for name in ("UID", "SUMMARY", "PRIORITY", "STATUS"):
        assert ours[name] == theirs[name]
    assert ours.decoded("DUE") == theirs.decoded("DUE")
    expected = {t for t in _semantic(vcal)[0] if t[0] != "LAST-MODIFIED"}
    assert set(_semantic(ical20_to_vcal10(ical).text)[0]) == expected


def test_vcal10_without_items_is_an_error() -> None:
    with pytest.raises(FormatError):
        vcal10_to_ical20("BEGIN:VCALENDAR\nVERSION:1.0\nEND:VCALENDAR\n")
    with pytest.raises(FormatError):
        vcal10_to_ical20(_vcal("BEGIN:VEVENT", "DTSTART:2024-13-45", "END:VEVENT"))
    with pytest.raises(FormatError):
        ical20_to_vcal10("not a calendar")


# ---------------------------------------------------------------------------
# DST boundaries: vCal 1.0 (TZ/DAYLIGHT) -> iCal 2.0 -> vCal 1.0
# ---------------------------------------------------------------------------

# (zone, TZ, DAYLIGHT lines, [(local start, local end, UTC start, UTC end)])
DST_CASES = [
    (
        "Europe/Berlin", "+01:00",
        ["TRUE;+02:00;20240331T020000;20241027T030000;CET;CEST"],
        [
            ("20240331T013000", "20240331T040000", "20240331T003000Z", "20240331T020000Z"),
            ("20240331T033000", "20240331T043000", "20240331T013000Z", "20240331T023000Z"),
            ("20241027T013000", "20241027T033000", "20241026T233000Z", "20241027T023000Z"),
            ("20241027T033000", "20241027T043000", "20241027T023000Z", "20241027T033000Z"),
        ],
    ),
    (
        "America/New_York", "-05:00",
        ["TRUE;-04:00;20240310T020000;20241103T020000;EST;EDT"],
        [
            ("20240310T013000", "20240310T033000", "20240310T063000Z", "20240310T073000Z"),
            ("20240310T030000", "20240310T040000", "20240310T070000Z", "20240310T080000Z"),
            ("20241103T003000", "20241103T030000", "20241103T043000Z", "20241103T080000Z"),
            ("20241103T030000", "20241103T040000", "20241103T080000Z", "20241103T090000Z"),
        ],
    ),
    (
        "Australia/Sydney", "+10:00",
        ["TRUE;+11:00;20231001T020000;20240407T030000;AEST;AEDT",
         "TRUE;+11:00;20241006T020000;20250406T030000;AEST;AEDT"],
        [
            ("20240407T013000", "20240407T043000", "20240406T143000Z", "20240406T183000Z"),
            ("20240407T033000", "20240407T043000", "20240406T173000Z", "20240406T183000Z"),
            ("20241006T013000", "20241006T033000", "20241005T153000Z", "20241005T163000Z"),
            ("20241006T033000", "20241006T043000", "20241005T163000Z", "20241005T173000Z"),
        ],
    ),
]


def _dst_vcal(tz: str, daylight: list[str], events: list[tuple[str, str, str, str]]) -> str:
    body: list[str] = []
    for n, (start, end, _, _) in enumerate(events):
        body += ["BEGIN:VEVENT", f"UID:dst-{n}", f"SUMMARY:event {n}", f"DTSTART:{start}",
                 f"DTEND:{end}", "END:VEVENT"]
    header = (f"TZ:{tz}", *(f"DAYLIGHT:{d}" for d in daylight))
    return _vcal(*body, header=header)


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize(("zone", "tz", "daylight", "events"), DST_CASES,
                         ids=[c[0] for c in DST_CASES])
def test_dst_boundaries(zone: str, tz: str, daylight: list[str],
                        events: list[tuple[str, str, str, str]]) -> None:
    phone = _dst_vcal(tz, daylight, events)
    two = vcal10_to_ical20(phone)
    cal = _ical(two)
    (vtz,) = cal.walk("VTIMEZONE")
    assert str(vtz["TZID"]) == zone
    assert vtz.walk("STANDARD") and vtz.walk("DAYLIGHT")
    vevents = cal.walk("VEVENT")
    for event, (_, _, utc_start, utc_end) in zip(vevents, events, strict=True):
        assert event["DTSTART"].params["TZID"] == zone
        assert event.decoded("DTSTART") == _utc(utc_start)
        assert event.decoded("DTEND") == _utc(utc_end)

    # Back to a phone that wants local time: the same text it sent.
    local = ical20_to_vcal10(two, tz_mode="local")
    assert _semantic(local.text) == _semantic(phone)
    header = [line for line in local.text.split("\r\n") if line.startswith(("TZ:", "DAYLIGHT:"))]
    assert header == [f"TZ:{tz}", *(f"DAYLIGHT:{d}" for d in daylight)]
    # ... and to one that wants UTC.
    utc = parse_component(ical20_to_vcal10(two, tz_mode="utc").text)
    assert utc.get("TZ") is None
    for comp, (_, _, utc_start, utc_end) in zip(utc.components, events, strict=True):
        assert comp.get("DTSTART").value == utc_start  # type: ignore[union-attr]
        assert comp.get("DTEND").value == utc_end  # type: ignore[union-attr]


@pytest.mark.parametrize(("zone", "tz", "daylight", "events"), DST_CASES,
                         ids=[c[0] for c in DST_CASES])
def test_dst_declared_in_utc_and_with_device_zone(zone: str, tz: str, daylight: list[str],
                                                  events: list[tuple[str, str, str, str]]) -> None:
    # Some phones give the DAYLIGHT boundaries in UTC; the zone must still match.
    zone_info = ZoneInfo(zone)
    utc_daylight = []
    for d in daylight:
        parts = d.split(";")
        std = datetime.strptime(parts[2], "%Y%m%dT%H%M%S").replace(tzinfo=zone_info, fold=0)
        dst = datetime.strptime(parts[3], "%Y%m%dT%H%M%S").replace(tzinfo=zone_info, fold=0)
        # parts[3] is a DST wall time: it is the first (DST) reading of the repeated hour
        parts[2] = std.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        parts[3] = (dst.astimezone(UTC)).strftime("%Y%m%dT%H%M%SZ")
        utc_daylight.append(";".join(parts))
    two = vcal10_to_ical20(_dst_vcal(tz, utc_daylight, events))
    assert str(_ical(two).walk("VTIMEZONE")[0]["TZID"]) == zone
    # A device zone with the same rules wins over the candidate list.
    if zone == "Europe/Berlin":
        two = vcal10_to_ical20(_dst_vcal(tz, daylight, events), device_tz="Europe/Paris")
        assert str(_ical(two).walk("VTIMEZONE")[0]["TZID"]) == "Europe/Paris"


def test_weekly_rule_keeps_local_time_across_dst() -> None:
    phone = _vcal("BEGIN:VEVENT", "UID:w", "DTSTART:20240325T100000", "DTEND:20240325T110000",
                  "RRULE:W1 MO #3", "END:VEVENT",
                  header=("TZ:+01:00", "DAYLIGHT:TRUE;+02:00;20240331T020000;20241027T030000;;"))
    event = _item(vcal10_to_ical20(phone))
    assert str(event["RRULE"].to_ical().decode()) == "FREQ=WEEKLY;COUNT=3;BYDAY=MO"
    from dateutil.rrule import rrulestr

    start = event.decoded("DTSTART")
    times = list(rrulestr(event["RRULE"].to_ical().decode(), dtstart=start))
    assert [t.hour for t in times] == [10, 10, 10]
    assert [t.utcoffset() for t in times] == [timedelta(hours=1), timedelta(hours=2),
                                              timedelta(hours=2)]


def test_floating_times_use_device_zone() -> None:
    phone = _vcal("BEGIN:VEVENT", "UID:f", "DTSTART:20240701T100000", "END:VEVENT")
    floating = _item(vcal10_to_ical20(phone))
    assert floating.decoded("DTSTART") == datetime(2024, 7, 1, 10)
    zoned = _item(vcal10_to_ical20(phone, device_tz="America/New_York"))
    assert zoned.decoded("DTSTART") == datetime(2024, 7, 1, 14, tzinfo=UTC)
    # UTC output of a floating time needs the device zone.
    back = ical20_to_vcal10(vcal10_to_ical20(phone), device_tz="Europe/Berlin")
    assert "DTSTART:20240701T080000Z" in back.text


def test_fixed_offset_zones() -> None:
    def zone_of(tz: str, **kw: Any) -> str:
        phone = _vcal("BEGIN:VEVENT", "UID:x", "DTSTART:20240115T100000", "END:VEVENT",
                      header=(f"TZ:{tz}", "DAYLIGHT:FALSE"))
        cal = _ical(vcal10_to_ical20(phone, **kw))
        tzs = cal.walk("VTIMEZONE")
        return str(tzs[0]["TZID"]) if tzs else "UTC"

    assert zone_of("+00:00") == "UTC"
    assert zone_of("+09") == "Etc/GMT-9"
    assert zone_of("+0530") == "Asia/Kolkata"
    assert zone_of("+01:00", device_tz="Europe/Berlin") == "Europe/Berlin"  # January: +01
    assert zone_of("+04:17") == "vCalendar/UTC+04:17"


def test_unknown_rules_get_a_custom_vtimezone() -> None:
    # DST on dates no real zone uses: the declaration itself becomes the zone.
    phone = _vcal("BEGIN:VEVENT", "UID:c", "DTSTART:20240601T120000", "END:VEVENT",
                  header=("TZ:+03:00", "DAYLIGHT:TRUE;+04:00;20240505T020000;20240905T030000;;"))
    cal = _ical(vcal10_to_ical20(phone))
    (vtz,) = cal.walk("VTIMEZONE")
    assert str(vtz["TZID"]) == "vCalendar/UTC+03:00/DST+04:00"
    event = cal.walk("VEVENT")[0]
    assert event.decoded("DTSTART").astimezone(UTC) == datetime(2024, 6, 1, 8, tzinfo=UTC)


def test_vtimezone_is_rfc_conformant() -> None:
    vtz = build_vtimezone("America/New_York", ZoneInfo("America/New_York"), 2024, 2024)
    (daylight,) = vtz.walk("DAYLIGHT")
    (standard,) = vtz.walk("STANDARD")
    # Onsets in local time before the change (RFC 5545 3.6.5 example).
    assert daylight.decoded("DTSTART") == datetime(2023, 3, 12, 2)
    assert standard.decoded("DTSTART") == datetime(2023, 11, 5, 2)
    assert daylight["RRULE"].to_ical() == b"FREQ=YEARLY;BYDAY=2SU;BYMONTH=3"
    assert standard["RRULE"].to_ical() == b"FREQ=YEARLY;BYDAY=1SU;BYMONTH=11"
    # icalendar reads it back to the same offsets as zoneinfo.
    cal = icalendar.Calendar()
    cal.add_component(vtz)
    tz = vtz.to_tz(lookup_tzid=False)
    for month in range(1, 13):
        moment = datetime(2024, month, 15, 12)
        assert moment.replace(tzinfo=tz).utcoffset() == \
            moment.replace(tzinfo=ZoneInfo("America/New_York")).utcoffset()


@given(st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney",
                        "Europe/London", "America/Santiago", "Asia/Tokyo", "Pacific/Auckland"]),
       st.integers(min_value=2000, max_value=2030))
@settings(max_examples=40)
def test_tz_daylight_properties_resolve_back(zone: str, year: int) -> None:
    props = vcal_tz_properties(ZoneInfo(zone), [year])
    declared = VcalTimezone.from_properties(props[0][1], [v for k, v in props[1:]])
    resolved = resolve_zone(declared, device_tz=zone, samples=[datetime(year, 6, 1)])
    assert resolved is not None and resolved.tzid == zone


# ---------------------------------------------------------------------------
# Alarms
# ---------------------------------------------------------------------------


def test_alarms_both_ways() -> None:
    phone = _vcal(
        "BEGIN:VEVENT", "UID:a", "SUMMARY:Dentist", "DTSTART:20240610T080000Z",
        "DTEND:20240610T090000Z", "AALARM:20240610T074500Z;PT5M;3;",
        "DALARM:20240610T070000Z;;;Leave now", "END:VEVENT",
        "BEGIN:VTODO", "UID:t", "SUMMARY:Taxes", "DUE:20240615T170000Z",
        "DALARM:20240614T170000Z", "END:VTODO",
    )
    cal = _ical(vcal10_to_ical20(phone))
    event, todo = cal.walk("VEVENT")[0], cal.walk("VTODO")[0]
    audio, display = event.walk("VALARM")
    assert str(audio["ACTION"]) == "AUDIO"
    assert audio.decoded("TRIGGER") == timedelta(minutes=-15)
    assert audio.decoded("DURATION") == timedelta(minutes=5) and audio["REPEAT"] == 3
    assert str(display["ACTION"]) == "DISPLAY"
    assert str(display["DESCRIPTION"]) == "Leave now"
    assert display.decoded("TRIGGER") == timedelta(hours=-1)
    (todo_alarm,) = todo.walk("VALARM")
    assert todo_alarm["TRIGGER"].params["RELATED"] == "END"
    assert todo_alarm.decoded("TRIGGER") == timedelta(days=-1)
    back = ical20_to_vcal10(cal.to_ical().decode())
    assert "AALARM:20240610T074500Z;PT5M;3\r\n" in back.text
    assert "DALARM:20240610T070000Z;;;Leave now\r\n" in back.text
    assert "DALARM:20240614T170000Z\r\n" in back.text


def test_absolute_and_local_alarms_from_desktop() -> None:
    desktop = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:d\r\n"
        "DTSTART;TZID=Europe/Berlin:20240110T090000\r\nSUMMARY:Standup\r\n"
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Standup\r\n"
        "TRIGGER;VALUE=DATE-TIME:20240110T074500Z\r\nEND:VALARM\r\n"
        "BEGIN:VALARM\r\nACTION:EMAIL\r\nTRIGGER:-PT1H\r\nEND:VALARM\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    conv = ical20_to_vcal10(desktop, tz_mode="local")
    assert "DTSTART:20240110T090000\r\n" in conv.text
    assert "TZ:+01:00\r\n" in conv.text
    assert "DALARM:20240110T074500Z\r\n" in conv.text  # alarms stay UTC for Nokia/SE
    assert conv.lossy_properties == ("VALARM",)  # the EMAIL alarm cannot be sent


# ---------------------------------------------------------------------------
# Recurrence
# ---------------------------------------------------------------------------

START = datetime(2024, 1, 1, 9, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize(
    ("rule10", "expected20"),
    [
        ("D1 #0", "FREQ=DAILY"),
        ("D2 #10", "FREQ=DAILY;COUNT=10;INTERVAL=2"),
        ("D1", "FREQ=DAILY;COUNT=2"),  # no duration: "#2" per the vCalendar 1.0 spec
        ("W1 MO #0", "FREQ=WEEKLY;BYDAY=MO"),
        ("W2 MO TU 20251231T000000", "FREQ=WEEKLY;UNTIL=20251230T230000Z;INTERVAL=2;BYDAY=MO,TU"),
        ("W1 MO WE FR #2", "FREQ=WEEKLY;UNTIL=20240114T225959Z;BYDAY=MO,WE,FR"),
        ("MD1 15 #5", "FREQ=MONTHLY;COUNT=5;BYMONTHDAY=15"),
        ("MD1 1- #0", "FREQ=MONTHLY;BYMONTHDAY=-1"),
        ("MD1 LD #0", "FREQ=MONTHLY;BYMONTHDAY=-1"),
        ("MP1 1+ SU #0", "FREQ=MONTHLY;BYDAY=1SU"),
        ("MP2 2- FR #3", "FREQ=MONTHLY;COUNT=3;INTERVAL=2;BYDAY=-2FR"),
        ("MP1 1+ SU TU 2- MO #0", "FREQ=MONTHLY;BYDAY=1SU,1TU,-2MO"),
        ("YM1 6 #0", "FREQ=YEARLY;BYMONTH=6"),
        ("YD1 100 #2", "FREQ=YEARLY;COUNT=2;BYYEARDAY=100"),
    ],
)
def test_rrule_10_to_20(rule10: str, expected20: str) -> None:
    def until(value: datetime | date) -> datetime | date:
        assert isinstance(value, datetime)
        local = value if value.tzinfo else value.replace(tzinfo=START.tzinfo)
        return local.astimezone(UTC)

    recur = rrule10_to_20(rule10, START, to_until=until)
    assert recur is not None
    assert icalendar.vRecur(recur).to_ical().decode() == expected20


@pytest.mark.parametrize("rule10", ["M60 #5", "D1 0800 1200 #5", "YM1 6 MP1 1+ SU #0",
                                    "W1 XX #0", "MD1 1$ #0", "Q1 #0", ""])
def test_inexpressible_10_rules_are_kept(rule10: str) -> None:
    assert rrule10_to_20(rule10, START) is None
    if not rule10:
        return
    phone = _vcal("BEGIN:VEVENT", "UID:r", "DTSTART:20240101T090000Z", f"RRULE:{rule10}",
                  "END:VEVENT")
    event = _item(vcal10_to_ical20(phone))
    assert "RRULE" not in event
    assert str(event["X-VCAL10-RRULE"]) == rule10
    assert f"RRULE:{rule10}\r\n" in ical20_to_vcal10(vcal10_to_ical20(phone)).text


@pytest.mark.parametrize(
    ("rule20", "expected10"),
    [
        ("FREQ=DAILY", "D1 #0"),
        ("FREQ=DAILY;INTERVAL=3;COUNT=4", "D3 #4"),
        ("FREQ=WEEKLY", "W1 MO #0"),
        ("FREQ=WEEKLY;BYDAY=MO,TU;UNTIL=20251231T230000Z", "W1 MO TU 20251231T230000Z"),
        ("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3", "W1 MO WE 20240108T080000Z"),
        ("FREQ=MONTHLY", "MD1 1 #0"),
        ("FREQ=MONTHLY;BYMONTHDAY=15,-1", "MD1 15 1- #0"),
        ("FREQ=MONTHLY;BYDAY=-1FR;COUNT=2", "MP1 1- FR #2"),
        ("FREQ=MONTHLY;BYDAY=FR;BYSETPOS=-1", "MP1 1- FR #0"),
        ("FREQ=YEARLY", "YM1 1 #0"),
        ("FREQ=YEARLY;BYMONTH=6,7", "YM1 6 7 #0"),
        ("FREQ=YEARLY;BYYEARDAY=100", "YD1 100 #0"),
    ],
)
def test_rrule_20_to_10(rule20: str, expected10: str) -> None:
    recur = dict(icalendar.vRecur.from_ical(rule20))
    assert rrule20_to_10(recur, START, lambda v: v.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
                         if isinstance(v, datetime) else v.strftime("%Y%m%d")) == expected10


@pytest.mark.parametrize("rule20", ["FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "FREQ=HOURLY",
                                    "FREQ=DAILY;BYHOUR=9,17", "FREQ=MONTHLY;BYDAY=MO,TU;BYSETPOS=1",
                                    "FREQ=WEEKLY;BYDAY=1MO"])
def test_inexpressible_20_rules_are_reported(rule20: str) -> None:
    desktop = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:r\r\n"
        f"DTSTART:20240101T090000Z\r\nRRULE:{rule20}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    conv = ical20_to_vcal10(desktop)
    assert conv.lossy_properties == ("RRULE",)
    assert "\r\nRRULE:" not in conv.text
    kept = parse_component(conv.text).components[0].get("X-ICAL20-RRULE")
    assert kept is not None
    assert icalendar.vRecur.from_ical(kept.value) == icalendar.vRecur.from_ical(rule20)
    # ... and the desktop gets its rule back.
    event = _item(vcal10_to_ical20(conv.text))
    assert event["RRULE"] == icalendar.vRecur.from_ical(rule20)
    assert "X-ICAL20-RRULE" not in event


def test_exdate_both_ways() -> None:
    phone = _vcal("BEGIN:VEVENT", "UID:e", "DTSTART:20240101T090000", "RRULE:D1 #10",
                  "EXDATE:20240103T090000;20240105T090000", "END:VEVENT")
    event = _item(vcal10_to_ical20(phone, device_tz="Europe/Berlin"))
    exdates = [d.dt for d in event["EXDATE"].dts]
    assert exdates == [datetime(2024, 1, 3, 9, tzinfo=ZoneInfo("Europe/Berlin")),
                       datetime(2024, 1, 5, 9, tzinfo=ZoneInfo("Europe/Berlin"))]
    back = ical20_to_vcal10(vcal10_to_ical20(phone, device_tz="Europe/Berlin"))
    assert "EXDATE:20240103T080000Z;20240105T080000Z\r\n" in back.text


@given(
    st.sampled_from(["D", "W", "MD", "MP", "YM"]),
    st.integers(min_value=1, max_value=4),
    st.one_of(st.just("#0"), st.integers(min_value=1, max_value=9).map(lambda n: f"#{n}")),
    st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2035, 1, 1)),
)
@settings(max_examples=60)
def test_simple_rules_round_trip(code: str, interval: int, duration: str, start: datetime) -> None:
    start = start.replace(second=0, microsecond=0)
    modifier = {
        "D": "", "W": " " + ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[start.weekday()],
        "MD": f" {start.day}", "MP": f" {(start.day - 1) // 7 + 1}+ "
        + ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[start.weekday()],
        "YM": f" {start.month}",
    }[code]
    rule = f"{code}{interval}{modifier} {duration}"
    phone = _vcal("BEGIN:VEVENT", "UID:p", f"DTSTART:{start:%Y%m%dT%H%M%S}Z", f"RRULE:{rule}",
                  "END:VEVENT")
    back = ical20_to_vcal10(vcal10_to_ical20(phone))
    assert f"RRULE:{rule}\r\n" in back.text


# ---------------------------------------------------------------------------
# All-day, status, categories, misc
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("20240401T000000Z", "20240401T240000Z", (date(2024, 4, 1), date(2024, 4, 2))),  # P900
        ("20240401T000000", "20240402T000000", (date(2024, 4, 1), date(2024, 4, 2))),
        ("20240401T000000", "20240401T235900", (date(2024, 4, 1), date(2024, 4, 2))),  # 23:59 end
        ("20240401", "20240403", (date(2024, 4, 1), date(2024, 4, 3))),
        ("20240401", None, (date(2024, 4, 1), date(2024, 4, 2))),
    ],
)
def test_allday_from_phone(start: str, end: str | None,
                           expected: tuple[date, date]) -> None:
    lines = ["BEGIN:VEVENT", "UID:d", f"DTSTART:{start}"]
    lines += [f"DTEND:{end}"] if end else []
    event = _item(vcal10_to_ical20(_vcal(*lines, "END:VEVENT")))
    # Without DTEND a date event lasts one day (RFC 5545 3.6.1).
    dtend = event.decoded("DTEND") if "DTEND" in event else event.decoded("DTSTART") + timedelta(1)
    assert (event.decoded("DTSTART"), dtend) == expected


def test_allday_local_midnight_in_device_zone_and_appointments() -> None:
    # Midnight-to-midnight in the phone's zone, sent in UTC.
    phone = _vcal("BEGIN:VEVENT", "UID:d", "DTSTART:20240331T220000Z",
                  "DTEND:20240401T220000Z", "END:VEVENT")
    event = _item(vcal10_to_ical20(phone, device_tz="Europe/Berlin"))
    assert event.decoded("DTSTART") == date(2024, 4, 1)
    # The P900 marks timed entries; a midnight appointment stays timed.
    phone = _vcal("BEGIN:VEVENT", "UID:d", "DTSTART:20240401T000000Z", "DTEND:20240402T000000Z",
                  "X-EPOCAGENDAENTRYTYPE:APPOINTMENT", "END:VEVENT")
    assert isinstance(_item(vcal10_to_ical20(phone)).decoded("DTSTART"), datetime)


@pytest.mark.parametrize(
    ("style", "start", "end"),
    [("midnight", "20240401T000000", "20240403T000000"),
     ("date", "20240401", "20240403"),
     ("epoc", "20240401T000000Z", "20240402T240000Z")],
)
def test_allday_to_phone(style: Any, start: str, end: str) -> None:
    desktop = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:d\r\n"
        "DTSTART;VALUE=DATE:20240401\r\nDTEND;VALUE=DATE:20240403\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    text = ical20_to_vcal10(desktop, allday=style).text
    assert f"DTSTART:{start}\r\nDTEND:{end}\r\n" in text
    back = _item(vcal10_to_ical20(text))
    assert (back.decoded("DTSTART"), back.decoded("DTEND")) == (date(2024, 4, 1), date(2024, 4, 3))


@pytest.mark.parametrize(
    ("kind", "status10", "status20"),
    [
        ("VEVENT", "TENTATIVE", "TENTATIVE"),
        ("VEVENT", "CONFIRMED", "CONFIRMED"),
        ("VEVENT", "DECLINED", "CANCELLED"),
        ("VEVENT", "NEEDS ACTION", None),
        ("VEVENT", "ACCEPTED", "CONFIRMED"),
        ("VEVENT", "SENT", "TENTATIVE"),
        ("VTODO", "NEEDS ACTION", "NEEDS-ACTION"),
        ("VTODO", "COMPLETED", "COMPLETED"),
        ("VTODO", "ACCEPTED", "IN-PROCESS"),
        ("VTODO", "DECLINED", "CANCELLED"),
        ("VTODO", "DELEGATED", "NEEDS-ACTION"),
    ],
)
def test_status_vocabularies(kind: str, status10: str, status20: str | None) -> None:
    phone = _vcal(f"BEGIN:{kind}", "UID:s", "DTSTART:20240101T090000Z", f"STATUS:{status10}",
                  f"END:{kind}")
    two = vcal10_to_ical20(phone)
    item = _item(two)
    assert (str(item["STATUS"]) if "STATUS" in item else None) == status20
    assert f"STATUS:{status10}\r\n" in ical20_to_vcal10(two).text


def test_desktop_status_change_wins_over_kept_word() -> None:
    phone = _vcal("BEGIN:VEVENT", "UID:s", "DTSTART:20240101T090000Z", "STATUS:NEEDS ACTION",
                  "END:VEVENT")
    two = vcal10_to_ical20(phone).replace("END:VEVENT", "STATUS:CANCELLED\r\nEND:VEVENT")
    assert "STATUS:DECLINED\r\n" in ical20_to_vcal10(two).text


def test_categories_and_text_escaping() -> None:
    phone = _vcal("BEGIN:VEVENT", "UID:c", "DTSTART:20240101T090000Z",
                  "CATEGORIES:MEETING;PHONE CALL;A\\;B", "SUMMARY:Lunch, then work\\; or not",
                  "LOCATION;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:K=F6ln=0D=0AHbf",
                  "END:VEVENT")
    two = vcal10_to_ical20(phone)
    event = _item(two)
    assert [str(c) for c in event["CATEGORIES"].cats] == ["MEETING", "PHONE CALL", "A;B"]
    assert str(event["SUMMARY"]) == "Lunch, then work; or not"
    assert str(event["LOCATION"]) == "Köln\nHbf"
    assert "CATEGORIES:MEETING,PHONE CALL,A\\;B\r\n" in two
    back = ical20_to_vcal10(two)
    assert "CATEGORIES:MEETING;PHONE CALL;A\\;B\r\n" in back.text
    assert "SUMMARY:Lunch, then work\\; or not\r\n" in back.text
    assert "LOCATION;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:K=C3=B6ln=0D=0AHbf\r\n" in back.text


def test_charset_loss_is_reported() -> None:
    desktop = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:c\r\n"
        "DTSTART:20240101T090000Z\r\nSUMMARY:Встреча\r\nLOCATION:Café\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    conv = ical20_to_vcal10(desktop, charset="ISO-8859-1")
    assert conv.lossy_properties == ("SUMMARY",)
    assert "LOCATION;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:Caf=E9\r\n" in conv.text


def test_misc_properties() -> None:
    phone = _vcal("BEGIN:VEVENT", "UID:m", "DTSTART:20240101T090000Z", "GEO:13.4,52.5",
                  "TRANSP:1", "DCREATED:20231201T100000Z", "CLASS:private",
                  "ATTENDEE;ROLE=ATTENDEE;STATUS=ACCEPTED;RSVP=YES:Jane Doe <jane@example.com>",
                  "X-NOKIA-FOO;X-P=1:a,b", "PALARM:20240101T080000Z;;;c:\\run.exe", "END:VEVENT")
    two = vcal10_to_ical20(phone)
    event = _item(two)
    assert (event["GEO"].latitude, event["GEO"].longitude) == (52.5, 13.4)
    assert str(event["TRANSP"]) == "TRANSPARENT"
    assert event.decoded("CREATED") == datetime(2023, 12, 1, 10, tzinfo=UTC)
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:jane@example.com"
    assert attendee.params["CN"] == "Jane Doe"
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    assert attendee.params["RSVP"] == "TRUE"
    back = ical20_to_vcal10(two).text
    for line in ("GEO:13.4,52.5", "TRANSP:1", "DCREATED:20231201T100000Z", "CLASS:PRIVATE",
                 "ATTENDEE;ROLE=ATTENDEE;STATUS=ACCEPTED;RSVP=YES:Jane Doe <jane@example.com>",
                 "X-NOKIA-FOO;X-P=1:a,b", "PALARM:20240101T080000Z;;;c:\\run.exe"):
        assert line + "\r\n" in back


def test_dtstamp_from_now_and_uid_for_items_without() -> None:
    phone = _vcal("BEGIN:VTODO", "SUMMARY:no uid", "END:VTODO")
    now = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    todo = _item(vcal10_to_ical20(phone, now=now, uid="generated-1"))
    assert str(todo["UID"]) == "generated-1"
    assert todo.decoded("DTSTAMP") == now


def test_recurrence_exceptions_and_journals_are_reported() -> None:
    desktop = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        "BEGIN:VEVENT\r\nUID:r\r\nDTSTART:20240101T090000Z\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:r\r\nRECURRENCE-ID:20240102T090000Z\r\n"
        "DTSTART:20240102T100000Z\r\nEND:VEVENT\r\n"
        "BEGIN:VJOURNAL\r\nUID:j\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n"
    )
    conv = ical20_to_vcal10(desktop)
    assert conv.lossy_properties == ("RECURRENCE-ID", "VJOURNAL")
    assert conv.text.count("BEGIN:VEVENT") == 1


# icalendar drops a leading U+FEFF from values it writes, so it is left out.
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff")
               | st.sampled_from("\n;,\\:"), max_size=30)


@given(TEXT, TEXT, st.lists(TEXT.filter(lambda t: t.strip() == t and t), max_size=3))
@settings(max_examples=100)
def test_text_round_trip_through_10(summary: str, description: str, cats: list[str]) -> None:
    cal = icalendar.Calendar()
    cal.add("PRODID", "x")
    cal.add("VERSION", "2.0")
    event = icalendar.Event()
    event.add("UID", "h")
    event.add("DTSTART", datetime(2024, 1, 1, 9, tzinfo=UTC))
    # ical_text: icalendar's own escaping turns a literal backslash-N into a new line.
    event.add("SUMMARY", ical_text(summary))
    event.add("DESCRIPTION", ical_text(description))
    if cats:
        event.add("CATEGORIES", ical_text(*cats))
    cal.add_component(event)
    conv = ical20_to_vcal10(cal.to_ical().decode())
    assert not conv.lossy
    back = _item(vcal10_to_ical20(conv.text))
    assert str(back["SUMMARY"]) == summary.replace("\r\n", "\n")
    assert str(back["DESCRIPTION"]) == description
    if cats:
        assert [str(c) for c in back["CATEGORIES"].cats] == cats
