"""SIF (Funambol Outlook/PocketPC) items both ways, on the recorded Horde sessions."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar
import pytest
from lxml import etree

from syncmld.formats import FormatError
from syncmld.formats.sif import (
    decode_payload,
    encode_payload,
    ical20_to_sif,
    sif_to_ical20,
    sif_to_vcard30,
    vcard30_to_sif,
)
from syncmld.formats.vcard import parse_component

from ._vectors import items

SIF = [
    i
    for ctype in ("text/x-s4j-sifc", "text/x-s4j-sife", "text/x-s4j-sift", "text/x-s4j-sifn")
    for i in items("horde/sessions/*/*.xml", ctype)
]
# Fields whose value is a default or derived from others, not something a user typed.
_DERIVED = {"Duration", "IsRecurring", "RecurrenceType", "Interval", "MonthOfYear",
            "DayOfMonth", "DayOfWeekMask", "Instance", "PatternStartDate", "NoEndDate",
            "PatternEndDate", "Occurrences", "ReminderMinutesBeforeStart", "AllDayEvent",
            "BusyStatus", "Sensitivity", "Importance", "ReminderSet", "MeetingStatus"}
_TIMES = {"Start", "End", "Date", "StartDate", "DueDate"}


def _fields(xml: str) -> dict[str, str]:
    root = etree.fromstring(decode_payload(xml).encode("utf-8"),
                            etree.XMLParser(resolve_entities=False, no_network=True))
    out = {}
    for child in root:
        name = child.tag.replace("WorkAddress", "BusinessAddress")
        if (child.text or "").strip():
            out[name] = child.text.replace("\r\n", "\n").strip()
    return out


def _instant(value: str) -> datetime | date:
    v = value.replace("-", "").replace(":", "")
    if "T" not in v:
        return datetime.strptime(v, "%Y%m%d").date()
    moment = datetime.strptime(v[:15], "%Y%m%dT%H%M%S")
    return moment.replace(tzinfo=UTC) if v.endswith("Z") else moment


def test_all_four_recorded_sif_clients_are_found() -> None:
    sessions = {i.path.parent.name for i in SIF}
    assert sessions == {"funambol_outlook3015_calendar", "sync4j_pocketpc_calendar",
                        "sync4j_pocketpc_contacts", "sync4j_pocketpc_notes"}
    assert len(SIF) >= 25
    assert all(not i.data.lstrip().startswith("<") for i in SIF)  # all base64 here


@pytest.mark.parametrize("item", SIF, ids=lambda i: i.label)
def test_recorded_sif_round_trip_loses_nothing(item: Any) -> None:
    before = _fields(item.data)
    if item.content_type == "text/x-s4j-sifc":
        desktop = sif_to_vcard30(item.data)
        card = parse_component(desktop)
        assert card.get("VERSION").value == "3.0"  # type: ignore[union-attr]
        assert desktop.encode("utf-8").decode("utf-8") == desktop
        after = _fields(vcard30_to_sif(desktop))
    else:
        desktop = sif_to_ical20(item.data, item.content_type, device_tz="Europe/Berlin")
        icalendar.Calendar.from_ical(desktop)
        after = _fields(ical20_to_sif(desktop, item.content_type))
    for name, value in before.items():
        if name in _DERIVED or (name == "FileAs" and "FileAs" not in after):
            continue
        if name in _TIMES:
            if before.get("AllDayEvent") in ("1", "True"):
                continue  # checked in test_allday_events
            assert _instant(after[name]) == _instant(value), name
            continue
        assert after.get(name) == value, (name, after)
    # Reminders and recurrence survive where they were set.
    if before.get("ReminderSet") == "1" and item.content_type.endswith("sife"):
        assert after["ReminderMinutesBeforeStart"] == before["ReminderMinutesBeforeStart"]


def test_allday_events() -> None:
    # Outlook: 1 January 2007 as a date; the desktop gets an all-day date range.
    item = next(i for i in SIF if "new year all day" in decode_payload(i.data)
                and "client" in i.path.name)
    cal = icalendar.Calendar.from_ical(sif_to_ical20(item.data, "text/x-s4j-sife"))
    event = cal.walk("VEVENT")[0]
    assert event.decoded("DTSTART") == date(2007, 1, 1)
    assert event.decoded("DTEND") == date(2007, 1, 2)
    back = _fields(ical20_to_sif(cal.to_ical().decode(), "text/x-s4j-sife"))
    assert back["Start"] == back["End"] == "2007-01-01" and back["AllDayEvent"] == "1"
    # An all-day event written as local midnight in UTC (Outlook in Berlin).
    xml = ("<appointment><AllDayEvent>1</AllDayEvent><Start>20061231T230000Z</Start>"
           "<End>20070101T230000Z</End><Subject>New year</Subject></appointment>")
    event = icalendar.Calendar.from_ical(
        sif_to_ical20(xml, "text/x-s4j-sife", device_tz="Europe/Berlin")).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == date(2007, 1, 1)
    assert event.decoded("DTEND") == date(2007, 1, 2)


def test_reminder_and_recurrence() -> None:
    xml = ("<appointment><Subject>Gym</Subject><Start>20240108T170000Z</Start>"
           "<End>20240108T180000Z</End><ReminderSet>1</ReminderSet>"
           "<ReminderMinutesBeforeStart>30</ReminderMinutesBeforeStart>"
           "<IsRecurring>1</IsRecurring><RecurrenceType>1</RecurrenceType>"
           "<Interval>2</Interval><DayOfWeekMask>10</DayOfWeekMask><NoEndDate>0</NoEndDate>"
           "<Occurrences>8</Occurrences><Importance>2</Importance><Sensitivity>2</Sensitivity>"
           "<Mileage>12 km</Mileage></appointment>")
    text = sif_to_ical20(encode_payload(xml, b64=True), "text/x-s4j-sife")
    event = icalendar.Calendar.from_ical(text).walk("VEVENT")[0]
    rule = event["RRULE"]
    assert rule["FREQ"] == ["WEEKLY"] and rule["INTERVAL"] == [2] and rule["COUNT"] == [8]
    assert sorted(rule["BYDAY"]) == ["MO", "WE"]
    assert event.walk("VALARM")[0].decoded("TRIGGER") == timedelta(minutes=-30)
    assert event["PRIORITY"] == 1 and event["CLASS"] == "PRIVATE"
    assert "X-SIF-MILEAGE" in event
    back = _fields(ical20_to_sif(text, "text/x-s4j-sife"))
    assert back["DayOfWeekMask"] == "10" and back["Interval"] == "2"
    assert back["Occurrences"] == "8" and back["RecurrenceType"] == "1"
    assert back["ReminderMinutesBeforeStart"] == "30" and back["Mileage"] == "12 km"
    assert back["Importance"] == "2" and back["Sensitivity"] == "2"


def test_tasks_both_ways() -> None:
    xml = ("<?xml version='1.0' encoding='UTF-8'?><task><Subject>Taxes</Subject>"
           "<Body>File them</Body><StartDate>2024-03-01</StartDate><DueDate>2024-04-30</DueDate>"
           "<Complete>0</Complete><Status>1</Status><PercentComplete>40</PercentComplete>"
           "<Importance>2</Importance><ReminderSet>1</ReminderSet>"
           "<ReminderTime>20240429T080000Z</ReminderTime><Categories>Home;Money</Categories>"
           "</task>")
    text = sif_to_ical20(xml, "text/x-s4j-sift")
    todo = icalendar.Calendar.from_ical(text).walk("VTODO")[0]
    assert todo.decoded("DUE") == date(2024, 4, 30)
    assert todo["STATUS"] == "IN-PROCESS" and todo["PERCENT-COMPLETE"] == 40
    assert todo.walk("VALARM")[0].decoded("TRIGGER") == datetime(2024, 4, 29, 8, tzinfo=UTC)
    back = _fields(ical20_to_sif(text, "text/x-s4j-sift"))
    assert back["DueDate"] == "2024-04-30" and back["StartDate"] == "2024-03-01"
    assert back["Status"] == "1" and back["PercentComplete"] == "40"
    assert back["ReminderTime"] == "20240429T080000Z" and back["Categories"] == "Home;Money"
    assert back["Subject"] == "Taxes" and back["Body"] == "File them"


def test_contact_fields_both_ways() -> None:
    xml = ("<contact><FirstName>Ana</FirstName><LastName>Silva</LastName>"
           "<CompanyName>ACME</CompanyName><Department>R&amp;D</Department>"
           "<Email1Address>ana@acme.example</Email1Address><Email2Address>ana@home.example"
           "</Email2Address><MobileTelephoneNumber>+351911</MobileTelephoneNumber>"
           "<HomeTelephoneNumber>+351212</HomeTelephoneNumber><BusinessFaxNumber>+351213"
           "</BusinessFaxNumber><HomeAddressStreet>Rua 1</HomeAddressStreet>"
           "<HomeAddressCity>Lisboa</HomeAddressCity><Birthday>1980-05-17</Birthday>"
           "<Body>line one\nline two; with, punctuation</Body><Categories>VIP,Work</Categories>"
           "<YomiLastName>シルバ</YomiLastName></contact>")
    card = sif_to_vcard30(xml)
    parsed = parse_component(card)
    assert parsed.get("N").value == "Silva;Ana;;;"  # type: ignore[union-attr]
    assert parsed.get("BDAY").value == "1980-05-17"  # type: ignore[union-attr]
    assert {t.value for t in parsed.get_all("TEL")} == {"+351911", "+351212", "+351213"}
    assert "X-SIF-YOMILASTNAME" in card
    back = _fields(vcard30_to_sif(card))
    for key in ("FirstName", "LastName", "CompanyName", "Department", "Email1Address",
                "Email2Address", "MobileTelephoneNumber", "HomeTelephoneNumber",
                "BusinessFaxNumber", "HomeAddressStreet", "HomeAddressCity", "Birthday",
                "YomiLastName"):
        assert back[key] == _fields(xml)[key], key
    assert back["Body"] == "line one\nline two; with, punctuation"
    assert back["Categories"] == "VIP;Work"


def test_vcard21_to_sif() -> None:
    phone = ("BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:"
             "M=C3=BCller;Hans\r\nTEL;CELL:+49170\r\nEND:VCARD\r\n")
    back = _fields(vcard30_to_sif(phone))
    assert back["LastName"] == "Müller" and back["MobileTelephoneNumber"] == "+49170"


def test_notes_both_ways() -> None:
    xml = "<note><Subject>Shopping</Subject><Body>milk\neggs</Body><Color>2</Color></note>"
    text = sif_to_ical20(xml, "text/x-s4j-sifn")
    journal = icalendar.Calendar.from_ical(text).walk("VJOURNAL")[0]
    assert str(journal["SUMMARY"]) == "Shopping"
    assert journal.decoded("DESCRIPTION") == "milk\neggs"
    back = _fields(ical20_to_sif(text, "text/x-s4j-sifn"))
    assert back == {"Subject": "Shopping", "Body": "milk\neggs", "Color": "2"}


def test_payload_encodings() -> None:
    xml = "<note><Body>Grüße</Body></note>"
    b64 = base64.b64encode(xml.encode()).decode()
    assert decode_payload(b64) == xml
    assert decode_payload("  " + xml) == xml
    assert decode_payload(encode_payload(xml, b64=True)) == xml
    assert encode_payload(xml, b64=False) == xml
    with pytest.raises(FormatError):
        decode_payload("not xml, not base64!")
    with pytest.raises(FormatError):
        decode_payload(base64.b64encode(b"plain words").decode())


@pytest.mark.parametrize("hostile", [
    '<?xml version="1.0"?><!DOCTYPE note [<!ENTITY x "boom">]><note><Body>&x;</Body></note>',
    '<!DOCTYPE note SYSTEM "http://127.0.0.1:9/evil.dtd"><note><Body>x</Body></note>',
    "<note><Body>unclosed</note>",
    "<contact><FirstName>x</FirstName></contact>",  # wrong root for a note
])
def test_hostile_or_broken_documents_are_refused(hostile: str) -> None:
    with pytest.raises(FormatError):
        sif_to_ical20(hostile, "text/x-s4j-sifn")


def test_wrong_type_is_refused() -> None:
    with pytest.raises(FormatError):
        sif_to_ical20("<contact/>", "text/x-s4j-sifc")
    with pytest.raises(FormatError):
        ical20_to_sif("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "text/x-s4j-sife")
    with pytest.raises(FormatError):
        vcard30_to_sif("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
