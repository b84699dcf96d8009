"""Notes and memos: ``text/plain`` and ``text/x-vnote`` 1.1 <-> the desktop's VJOURNAL.

Desktop representation (the choice)
-----------------------------------
A note is stored on the desktop as an iCalendar 2.0 ``VJOURNAL``:

* ``DESCRIPTION`` holds the **complete text**, exactly as the phone sent it (line
  ends normalized to ``\\n``). A ``text/plain`` memo therefore round-trips
  byte for byte (apart from the line-end style), whatever its first line is.
* ``SUMMARY`` holds the **first line** as the title, for desktop tools that list
  memos by title (Evolution memo lists, EDS; both store memos as VJOURNAL, and a
  vdir collection needs ``.ics`` items).

Going back to the phone the text is ``DESCRIPTION``; if the desktop user changed
the title so that it no longer equals the first line, the title is put in front
as a new first line (nothing the user typed is dropped). A VJOURNAL with only a
SUMMARY gives that line.

``text/x-vnote`` 1.1 (IrMC vNote, Sony Ericsson ``Memo``/Nokia ``Notes``) carries the
text in ``BODY`` (quoted-printable when it has line breaks or non-ASCII text),
plus ``DCREATED``, ``LAST-MODIFIED``, ``CATEGORIES`` and ``CLASS``; these map to
``CREATED``, ``LAST-MODIFIED``, ``CATEGORIES`` and ``CLASS`` of the VJOURNAL.
X- properties (such as the phone's ``X-IRMC-LUID``) are kept verbatim.

Pure functions: no I/O, no clock (pass ``now`` for DTSTAMP, ``uid`` for new items).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import icalendar

from syncmld.formats.errors import FormatError
from syncmld.formats.vcalendar import ical_text
from syncmld.formats.vcard import (
    Component,
    ContentLine,
    Conversion,
    encode_21_text,
    escape21,
    parse_component,
    python_codec,
    serialize_component,
    split_escaped,
    unescape21,
    verbatim_to_21,
    verbatim_to_30,
)

__all__ = [
    "PRODID",
    "Note",
    "ical20_to_note",
    "ical20_to_plain",
    "ical20_to_vnote",
    "note_to_ical20",
    "plain_to_ical20",
    "vnote_to_ical20",
]

PRODID = "-//syncmld//syncmld formats//EN"
"""PRODID written on iCalendar 2.0 output."""

_NEWLINES = re.compile(r"\r\n|\r|\n")


def _normalize(text: str) -> str:
    return _NEWLINES.sub("\n", text)


@dataclass(frozen=True, slots=True)
class Note:
    """A note: its complete text (``\\n`` line ends) and optional metadata."""

    text: str
    categories: tuple[str, ...] = ()
    classification: str | None = None
    created: datetime | None = None
    last_modified: datetime | None = None
    uid: str | None = None

    @classmethod
    def from_text(cls, text: str) -> Note:
        """A note from plain text, line ends normalized."""
        return cls(_normalize(text))

    @property
    def title(self) -> str:
        """The first line (what desktop tools show as the note's name)."""
        return self.text.split("\n", 1)[0]

    @property
    def body(self) -> str:
        """Everything after the first line."""
        parts = self.text.split("\n", 1)
        return parts[1] if len(parts) > 1 else ""


# ---------------------------------------------------------------------------
# Desktop side (VJOURNAL)
# ---------------------------------------------------------------------------


def note_to_ical20(note: Note, *, uid: str | None = None, now: datetime | None = None) -> str:
    """Write ``note`` as an iCalendar 2.0 VJOURNAL (SUMMARY = title, DESCRIPTION = text).

    ``uid`` is used when the note has none; ``now`` becomes DTSTAMP.
    """
    cal = icalendar.Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    journal = icalendar.Journal()
    if note.uid or uid:
        journal.add("UID", note.uid or uid)
    if now is not None:
        journal.add("DTSTAMP", now.astimezone(UTC))
    elif note.last_modified is not None:
        journal.add("DTSTAMP", note.last_modified.astimezone(UTC))
    if note.created is not None:
        journal.add("CREATED", note.created.astimezone(UTC))
    if note.last_modified is not None:
        journal.add("LAST-MODIFIED", note.last_modified.astimezone(UTC))
    journal.add("SUMMARY", ical_text(note.title))
    journal.add("DESCRIPTION", ical_text(note.text))
    if note.categories:
        journal.add("CATEGORIES", ical_text(*note.categories))
    if note.classification:
        journal.add("CLASS", note.classification)
    cal.add_component(journal)
    return str(cal.to_ical().decode("utf-8"))


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    return None


def ical20_to_note(text: str) -> Note:
    """Read the first VJOURNAL of an iCalendar 2.0 text as a :class:`Note`.

    Raises:
        FormatError: not iCalendar, or no VJOURNAL in it.
    """
    try:
        cal = icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError) as exc:
        raise FormatError(f"bad iCalendar: {exc}") from exc
    journals = cal.walk("VJOURNAL")
    if not journals:
        raise FormatError("no VJOURNAL in iCalendar")
    journal = journals[0]
    summary = _normalize(str(journal["SUMMARY"])) if "SUMMARY" in journal else None
    description = _normalize(str(journal["DESCRIPTION"])) if "DESCRIPTION" in journal else None
    if description is None:
        body = summary or ""
    elif summary and description.split("\n", 1)[0] != summary:
        body = f"{summary}\n{description}"  # the desktop user retitled the note
    else:
        body = description
    categories: list[str] = []
    raw_categories = journal.get("CATEGORIES")
    for entry in raw_categories if isinstance(raw_categories, list) else [raw_categories]:
        if entry is not None:
            categories += [str(c) for c in getattr(entry, "cats", [entry])]
    created = journal.get("CREATED")
    modified = journal.get("LAST-MODIFIED")
    return Note(
        body,
        tuple(categories),
        str(journal["CLASS"]) if "CLASS" in journal else None,
        _aware(created.dt) if created is not None else None,
        _aware(modified.dt) if modified is not None else None,
        str(journal["UID"]) if "UID" in journal else None,
    )


# ---------------------------------------------------------------------------
# text/plain
# ---------------------------------------------------------------------------


def plain_to_ical20(text: str, *, uid: str | None = None, now: datetime | None = None) -> str:
    """Convert a ``text/plain`` memo to the desktop's VJOURNAL."""
    return note_to_ical20(Note.from_text(text), uid=uid, now=now)


def ical20_to_plain(text: str, *, line_ending: str = "\r\n") -> str:
    """Convert the desktop's VJOURNAL to a ``text/plain`` memo.

    Raises:
        FormatError: not iCalendar with a VJOURNAL.
    """
    return ical20_to_note(text).text.replace("\n", line_ending)


# ---------------------------------------------------------------------------
# text/x-vnote 1.1
# ---------------------------------------------------------------------------


def _vnote_time(line: ContentLine | None) -> datetime | None:
    if line is None:
        return None
    value = line.decoded().strip().replace("-", "").replace(":", "").rstrip("Zz")
    try:
        parsed = datetime.strptime(value, "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    # CREATED/LAST-MODIFIED must be UTC in 2.0; a local time without zone is taken as UTC.
    return parsed.replace(tzinfo=UTC)


def vnote_to_ical20(text: str, *, uid: str | None = None, now: datetime | None = None) -> str:
    """Convert a vNote 1.1 to the desktop's VJOURNAL.

    Raises:
        FormatError: the input is not a VNOTE.
    """
    comp = parse_component(text)
    if comp.name != "VNOTE":
        raise FormatError(f"expected VNOTE, got {comp.name}")
    body = comp.get("BODY")
    summary = comp.get("SUMMARY")
    if body is not None:
        note_text = unescape21(body.decoded())
    elif summary is not None:
        note_text = unescape21(summary.decoded())
    else:
        note_text = ""
    categories: list[str] = []
    for line in comp.get_all("CATEGORIES"):
        categories += [unescape21(p).strip() for p in split_escaped(line.decoded(), ";,")
                       if p.strip()]
    cls = comp.get("CLASS")
    note = Note(
        _normalize(note_text),
        tuple(categories),
        cls.decoded().strip().upper() if cls is not None else None,
        _vnote_time(comp.get("DCREATED")),
        _vnote_time(comp.get("LAST-MODIFIED")),
    )
    ical = note_to_ical20(note, uid=uid, now=now)
    extras = [line for line in comp.properties if line.name.startswith("X-")]
    if not extras:
        return ical
    cal = icalendar.Calendar.from_ical(ical)
    journal = cal.walk("VJOURNAL")[0]
    for line in extras:
        journal.add(line.name, icalendar.prop.vUnknown(verbatim_to_30(line.decoded())))
    return str(cal.to_ical().decode("utf-8"))


def ical20_to_vnote(text: str, *, charset: str = "UTF-8", fold: bool = True) -> Conversion:
    """Convert the desktop's VJOURNAL to a vNote 1.1 for a phone.

    Raises:
        FormatError: not iCalendar with a VJOURNAL, or an unknown charset.
    """
    if python_codec(charset) is None:
        raise FormatError(f"unknown charset {charset!r}")
    note = ical20_to_note(text)
    lossy: list[str] = []

    def line(name: str, escaped: str) -> ContentLine:
        result, lost = encode_21_text(name, escaped, charset=charset)
        if lost and name not in lossy:
            lossy.append(name)
        return result

    props = [ContentLine("VERSION", "1.1"), line("BODY", escape21(note.text))]
    if note.categories:
        props.append(line("CATEGORIES", ";".join(escape21(c) for c in note.categories)))
    if note.classification:
        props.append(ContentLine("CLASS", note.classification.upper()))
    if note.created is not None:
        props.append(ContentLine("DCREATED", note.created.strftime("%Y%m%dT%H%M%SZ")))
    if note.last_modified is not None:
        props.append(ContentLine("LAST-MODIFIED", note.last_modified.strftime("%Y%m%dT%H%M%SZ")))
    cal = icalendar.Calendar.from_ical(text)
    journal = cal.walk("VJOURNAL")[0]
    for name, value in journal.items():
        if str(name).upper().startswith("X-"):
            for item in value if isinstance(value, list) else [value]:
                props.append(line(str(name).upper(), verbatim_to_21(str(item))))
    body = serialize_component(Component("VNOTE", props), style="2.1", fold=fold)
    return Conversion(body, tuple(lossy))
