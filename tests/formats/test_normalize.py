"""content_hash: equal for cosmetic differences, different for real edits."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncmld.formats.normalize import IGNORED_PROPERTIES, content_hash, normalize
from syncmld.formats.vcalendar import ical20_to_vcal10, vcal10_to_ical20
from syncmld.formats.vcard import vcard21_to_30, vcard30_to_21

from ._vectors import items
from .test_vcard import cards30

CARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//A//B//EN\r\nREV:20100328T103410Z\r\n"
    "N:Doe;John;;;\r\nFN:John Doe\r\nTEL;TYPE=CELL,PREF:+49151000001\r\n"
    "EMAIL;TYPE=INTERNET:john@example.com\r\nNOTE:Line one\\nline two\\, with comma\r\n"
    "END:VCARD\r\n"
)

EVENT = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//A//B//EN\r\n"
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
    "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:STANDARD\r\nDTSTART:19701101T020000\r\n"
    "TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    "BEGIN:VEVENT\r\nUID:e1\r\nDTSTAMP:20240101T000000Z\r\n"
    "DTSTART;TZID=Europe/Berlin:20240601T100000\r\n"
    "DTEND;TZID=America/New_York:20240601T050000\r\nSUMMARY:Meeting\r\n"
    "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT10M\r\n"
    "X-EVOLUTION-ALARM-UID:abc\r\nEND:VALARM\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _swap_timezones(text: str) -> str:
    first = text.index("BEGIN:VTIMEZONE")
    second = text.index("BEGIN:VTIMEZONE", first + 1)
    end = text.index("BEGIN:VEVENT")
    return text[:first] + text[second:end] + text[first:second] + text[end:]


COSMETIC = [
    ("LF line ends", CARD, CARD.replace("\r\n", "\n")),
    ("refolded", CARD, CARD.replace("NOTE:Line one", "NOTE:Line\r\n  one")),
    ("REV and PRODID", CARD,
     CARD.replace("REV:20100328T103410Z", "REV:20250101T000000Z").replace("-//A//B//EN", "x")),
    ("parameter order and case", CARD,
     CARD.replace("TEL;TYPE=CELL,PREF", "TEL;type=pref;TYPE=cell")),
    ("property order", CARD,
     CARD.replace("EMAIL;TYPE=INTERNET:john@example.com\r\n", "").replace(
         "N:Doe", "EMAIL;TYPE=INTERNET:john@example.com\r\nN:Doe")),
    ("\\N escape", CARD, CARD.replace("one\\nline", "one\\Nline")),
    ("VTIMEZONE order", EVENT, _swap_timezones(EVENT)),
    ("VTIMEZONE content", EVENT,
     EVENT.replace("DTSTART:19701025T030000", "DTSTART:19961027T030000")),
    ("DTSTAMP and LAST-MODIFIED", EVENT,
     EVENT.replace("DTSTAMP:20240101T000000Z", "DTSTAMP:20990101T000000Z\r\n"
                   "LAST-MODIFIED:20990101T000000Z")),
    ("alarm uid", EVENT, EVENT.replace("ALARM-UID:abc", "ALARM-UID:def")),
    ("zoned vs UTC single event", EVENT,
     EVENT.replace("DTSTART;TZID=Europe/Berlin:20240601T100000", "DTSTART:20240601T080000Z")),
    ("empty description", EVENT,
     EVENT.replace("SUMMARY:Meeting", "SUMMARY:Meeting\r\nDESCRIPTION:")),
]

REAL_EDITS = [
    ("phone number", CARD, CARD.replace("+49151000001", "+49151000002")),
    ("added e-mail", CARD, CARD.replace("END:VCARD", "EMAIL:second@example.com\r\nEND:VCARD")),
    ("type changed", CARD, CARD.replace("TYPE=INTERNET", "TYPE=INTERNET,WORK")),
    ("note text", CARD, CARD.replace("with comma", "with a comma")),
    ("escaped comma vs separator", CARD, CARD.replace("two\\, with", "two, with")),
    ("summary", EVENT, EVENT.replace("SUMMARY:Meeting", "SUMMARY:Meeting!")),
    ("start time", EVENT, EVENT.replace("20240601T100000", "20240601T110000")),
    ("zone of start", EVENT,
     EVENT.replace("DTSTART;TZID=Europe/Berlin", "DTSTART;TZID=Europe/London")),
    ("alarm", EVENT, EVENT.replace("TRIGGER:-PT10M", "TRIGGER:-PT15M")),
    ("zone of a recurring event", EVENT.replace("SUMMARY:", "RRULE:FREQ=DAILY\r\nSUMMARY:"),
     EVENT.replace("SUMMARY:", "RRULE:FREQ=DAILY\r\nSUMMARY:").replace(
         "DTSTART;TZID=Europe/Berlin:20240601T100000", "DTSTART:20240601T080000Z")),
    ("removed alarm", EVENT,
     EVENT[: EVENT.index("BEGIN:VALARM")] + "END:VEVENT\r\nEND:VCALENDAR\r\n"),
]


@pytest.mark.parametrize(("label", "a", "b"), COSMETIC, ids=[c[0] for c in COSMETIC])
def test_cosmetic_differences_hash_equal(label: str, a: str, b: str) -> None:
    assert a != b
    assert content_hash(a) == content_hash(b), label


@pytest.mark.parametrize(("label", "a", "b"), REAL_EDITS, ids=[c[0] for c in REAL_EDITS])
def test_real_edits_change_the_hash(label: str, a: str, b: str) -> None:
    assert content_hash(a) != content_hash(b), label


def test_qp_and_8bit_are_the_same_21_item() -> None:
    qp = ("BEGIN:VCARD\r\nVERSION:2.1\r\nN:M=C3=BCller;;;;\r\n"
          "NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:K=C3=A4se=0D=0Abrot\r\nEND:VCARD\r\n")
    qp = qp.replace("N:M=C3=BCller", "N;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:M=C3=BCller")
    plain = ("BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8:Müller;;;;\r\n"
             "NOTE;ENCODING=QUOTED-PRINTABLE:K=C3=A4se=0D=0Abrot\r\nEND:VCARD\r\n")
    assert content_hash(qp) == content_hash(plain)


def test_every_ignored_property_is_explained() -> None:
    assert all(reason for reason in IGNORED_PROPERTIES.values())
    for name in ("REV", "PRODID", "DTSTAMP", "LAST-MODIFIED"):
        assert name in IGNORED_PROPERTIES


def test_unparseable_text_still_hashes() -> None:
    assert content_hash("garbage\r\n") == content_hash("garbage\n")
    assert content_hash("garbage") != content_hash("other garbage")
    assert normalize("a\r\n b") == "ab"


def test_recorded_resends_hash_equal() -> None:
    """SyncEvolution sent the same contacts in several sessions (and Horde re-exported
    the same events with new DTSTAMPs); each re-send must hash like the first."""
    by_uid_hash: dict[str, set[str]] = {}
    for item in items("syncevolution/http-xml-1.2/0[1-4]*/*.xml"):
        key = next(line for line in item.data.splitlines() if line.startswith("FN:"))
        by_uid_hash.setdefault(key, set()).add(content_hash(item.data))
    # John Doe1's phone number was edited in session 03: two versions, others one.
    assert by_uid_hash["FN:John Doe1"] and len(by_uid_hash["FN:John Doe1"]) == 2
    assert all(len(v) == 1 for k, v in by_uid_hash.items() if k != "FN:John Doe1")


def test_converted_phone_item_is_stable() -> None:
    """Phone -> desktop -> phone -> desktop writes nothing new the second time."""
    item = next(i for i in items("horde/sessions/P900*/syncml_client_11.xml")
                if "UID:667" in i.data)
    first = vcal10_to_ical20(item.data, device_tz="Europe/Berlin", now=None)
    again = vcal10_to_ical20(ical20_to_vcal10(first, allday="epoc").text,
                             device_tz="Europe/Berlin")
    assert content_hash(first) == content_hash(again)


@given(cards30())
def test_vcard_round_trip_keeps_the_hash(card: str) -> None:
    assert content_hash(vcard21_to_30(vcard30_to_21(card).text)) == content_hash(card)


@given(cards30(), st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1,
                          max_size=10))
def test_appending_text_changes_the_hash(card: str, extra: str) -> None:
    value = extra.replace("\\", "")
    edited = card.replace("\r\nEND:VCARD", f"\r\nX-EXTRA:{value}x\r\nEND:VCARD")
    assert content_hash(edited) != content_hash(card)


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney"]


@st.composite
def desktop_events(draw: st.DrawFn) -> tuple[str, str]:
    """A khal/Evolution-like event in the phone's own zone, and that zone."""
    zone = draw(st.sampled_from(ZONES))
    start = draw(st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2036, 1, 1)))
    start = start.replace(second=0, microsecond=0)
    allday = draw(st.booleans())
    lines = ["BEGIN:VEVENT", "UID:p1", "SUMMARY:" + draw(st.sampled_from(["Lunch", "Zürich"]))]
    if allday:
        lines += [f"DTSTART;VALUE=DATE:{start:%Y%m%d}",
                  f"DTEND;VALUE=DATE:{start + timedelta(days=draw(st.integers(1, 3))):%Y%m%d}"]
    else:
        end = start + timedelta(minutes=draw(st.integers(15, 600)))
        lines += [f"DTSTART;TZID={zone}:{start:%Y%m%dT%H%M%S}",
                  f"DTEND;TZID={zone}:{end:%Y%m%dT%H%M%S}"]
    rule = draw(st.sampled_from([None, "FREQ=WEEKLY;BYDAY=MO", "FREQ=DAILY;COUNT=5",
                                 "FREQ=MONTHLY;BYMONTHDAY=15", "FREQ=YEARLY;BYMONTH=6"]))
    if rule:
        lines.append(f"RRULE:{rule}")
    if draw(st.booleans()):
        lines += ["BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Lunch",
                  f"TRIGGER:-PT{draw(st.integers(0, 120))}M", "END:VALARM"]
    lines.append("END:VEVENT")
    body = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *lines,
                        "END:VCALENDAR"]) + "\r\n"
    return body, zone


@given(desktop_events(), st.sampled_from(["utc", "local"]))
@settings(max_examples=60)
def test_sync_without_changes_writes_nothing(event: tuple[str, str], mode: str) -> None:
    """Desktop -> phone -> desktop with no user change: the content hash is unchanged,
    so the engine writes nothing (reliability goal 6)."""
    text, zone = event
    phone = ical20_to_vcal10(text, tz_mode=mode, device_tz=zone)  # type: ignore[arg-type]
    back = vcal10_to_ical20(phone.text, device_tz=zone)
    assert content_hash(back) == content_hash(text)
    # ... and the next round is byte-identical.
    again = vcal10_to_ical20(ical20_to_vcal10(back, tz_mode=mode,  # type: ignore[arg-type]
                                              device_tz=zone).text, device_tz=zone)
    assert again == back
