"""Notes: text/plain and vNote 1.1 <-> VJOURNAL (SUMMARY = first line, DESCRIPTION = text)."""

from __future__ import annotations

from datetime import UTC, datetime

import icalendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmld.formats.errors import FormatError
from syncmld.formats.notes import (
    Note,
    ical20_to_note,
    ical20_to_plain,
    ical20_to_vnote,
    plain_to_ical20,
    vnote_to_ical20,
)
from syncmld.formats.vcard import parse_component

from ._vectors import items

MEMOS = items("syncevolution/**/*.xml", "text/plain")

VNOTE = (
    "BEGIN:VNOTE\r\n"
    "VERSION:1.1\r\n"
    "BODY;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Einkaufsliste=0D=0AMilch=0D=0AK=C3=A4se\r\n"
    "DCREATED:20070305T101500Z\r\n"
    "LAST-MODIFIED:20070306T081000Z\r\n"
    "CATEGORIES:PERSONAL\r\n"
    "CLASS:PRIVATE\r\n"
    "X-IRMC-LUID:000100000012\r\n"
    "END:VNOTE\r\n"
)


def _journal(text: str) -> icalendar.Journal:
    return icalendar.Calendar.from_ical(text).walk("VJOURNAL")[0]


@pytest.mark.parametrize("memo", MEMOS, ids=lambda m: m.label)
def test_recorded_memos_round_trip_exactly(memo: object) -> None:
    data = memo.data  # type: ignore[attr-defined]
    ical = plain_to_ical20(data, uid="m1")
    journal = _journal(ical)
    assert str(journal["SUMMARY"]) == data.split("\n")[0]
    assert str(journal["DESCRIPTION"]) == data
    assert ical20_to_plain(ical) == data.replace("\n", "\r\n")
    # Converting again changes nothing: no growing trailing blank lines.
    assert plain_to_ical20(ical20_to_plain(ical), uid="m1") == ical


def test_memos_found() -> None:
    assert len(MEMOS) >= 3


def test_note_title_and_body() -> None:
    note = Note.from_text("Title line\r\nsecond\r\nthird")
    assert note.title == "Title line"
    assert note.body == "second\nthird"
    assert Note.from_text("").title == ""


def test_retitled_note_keeps_both() -> None:
    ical = plain_to_ical20("Shopping\nmilk", uid="n")
    edited = ical.replace("SUMMARY:Shopping", "SUMMARY:Groceries")
    assert ical20_to_plain(edited, line_ending="\n") == "Groceries\nShopping\nmilk"


def test_summary_only_journal() -> None:
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VJOURNAL\r\nUID:j\r\n"
            "SUMMARY:Just a title\r\nEND:VJOURNAL\r\nEND:VCALENDAR\r\n")
    assert ical20_to_plain(text) == "Just a title"


def test_vnote_both_ways() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    ical = vnote_to_ical20(VNOTE, uid="v1", now=now)
    journal = _journal(ical)
    assert str(journal["DESCRIPTION"]) == "Einkaufsliste\nMilch\nKäse"
    assert str(journal["SUMMARY"]) == "Einkaufsliste"
    assert journal.decoded("CREATED") == datetime(2007, 3, 5, 10, 15, tzinfo=UTC)
    assert str(journal["CLASS"]) == "PRIVATE"
    assert str(journal["X-IRMC-LUID"]) == "000100000012"
    assert journal.decoded("DTSTAMP") == now
    back = ical20_to_vnote(ical)
    assert not back.lossy
    comp = parse_component(back.text)
    original = parse_component(VNOTE)
    assert {(p.name, p.decoded()) for p in comp.properties} == \
        {(p.name, p.decoded()) for p in original.properties}


def test_vnote_charset_loss_reported() -> None:
    ical = plain_to_ical20("Заметка\nnote", uid="r")
    conv = ical20_to_vnote(ical, charset="ISO-8859-1")
    assert conv.lossy_properties == ("BODY",)
    assert "BODY;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:???????=0D=0Anote" in conv.text


def test_errors() -> None:
    with pytest.raises(FormatError):
        vnote_to_ical20("BEGIN:VCARD\r\nVERSION:2.1\r\nEND:VCARD\r\n")
    with pytest.raises(FormatError):
        ical20_to_note("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
    with pytest.raises(FormatError):
        ical20_to_vnote(plain_to_ical20("x"), charset="nope")


NOTE_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\t;,\\"),
                    max_size=80)


@given(NOTE_TEXT)
def test_plain_round_trip(text: str) -> None:
    assert ical20_to_plain(plain_to_ical20(text, uid="h"), line_ending="\n") == text


@given(NOTE_TEXT)
def test_vnote_round_trip(text: str) -> None:
    ical = plain_to_ical20(text, uid="h")
    vnote = ical20_to_vnote(ical).text
    assert ical20_to_plain(vnote_to_ical20(vnote, uid="h"), line_ending="\n") == text
