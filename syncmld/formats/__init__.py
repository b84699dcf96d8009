"""PIM data formats: pure conversions between what phones speak and what the desktop stores.

The desktop side is always UTF-8 vCard 3.0 (contacts) and iCalendar 2.0 (events,
tasks, and notes as VJOURNAL); phones speak vCard 2.1, vCalendar 1.0, plain text and
vNote 1.1 (``docs/syncml-protocol.md`` section 11). Nothing here does I/O or reads
the clock; pass ``now``/``uid`` where a new item needs them.

Public API
----------
Contacts (:mod:`syncmld.formats.vcard`)
    :func:`vcard21_to_30` (phone -> desktop, ``str``), :func:`vcard30_to_21`
    (desktop -> phone, :class:`Conversion`), plus the mime-dir line codec
    (``parse_components``, ``serialize_component``, ``ContentLine``...).
Calendar (:mod:`syncmld.formats.vcalendar`, :mod:`syncmld.formats.timezones`)
    :func:`vcal10_to_ical20` and :func:`ical20_to_vcal10` (UTC or local time mode,
    TZ/DAYLIGHT <-> IANA zones and VTIMEZONE, alarms, recurrence, all-day).
Notes (:mod:`syncmld.formats.notes`)
    :func:`plain_to_ical20`, :func:`ical20_to_plain`, :func:`vnote_to_ical20`,
    :func:`ical20_to_vnote`.
Change detection (:mod:`syncmld.formats.normalize`)
    :func:`content_hash`, :func:`normalize`.
Dispatch
    :class:`ContentType` names the SyncML content types; :func:`to_desktop` and
    :func:`to_phone` pick the right conversion for one.
SIF (:mod:`syncmld.formats.sif`)
    Funambol's XML items (``text/x-s4j-sifc/-sife/-sift/-sifn``) to and from
    vCard 3.0 / iCalendar 2.0.
The engine's codec (:mod:`syncmld.formats.codec`)
    :class:`~syncmld.formats.codec.FormatCodec`, the ``ItemCodec`` built-in
    stores use: format choice from the peer's DevInf, device quirks
    (:mod:`syncmld.formats.quirks`), normalized digests and the
    field-preserving merge.

Conversions towards a phone return :class:`Conversion` (text plus the properties
that could not be represented, e.g. characters outside ISO-8859-1); all functions
raise :class:`FormatError` for input they cannot read.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import Enum

from syncmld.formats.errors import FormatError
from syncmld.formats.normalize import content_hash, normalize
from syncmld.formats.notes import (
    ical20_to_plain,
    ical20_to_vnote,
    plain_to_ical20,
    vnote_to_ical20,
)
from syncmld.formats.vcalendar import AllDayStyle, TzMode, ical20_to_vcal10, vcal10_to_ical20
from syncmld.formats.vcard import Conversion, vcard21_to_30, vcard30_to_21

__all__ = [
    "ContentType",
    "Conversion",
    "FormatError",
    "content_hash",
    "ical20_to_plain",
    "ical20_to_vcal10",
    "ical20_to_vnote",
    "normalize",
    "plain_to_ical20",
    "to_desktop",
    "to_phone",
    "vcal10_to_ical20",
    "vcard21_to_30",
    "vcard30_to_21",
    "vnote_to_ical20",
]


class ContentType(Enum):
    """The item content types syncmld converts (``Meta/Type`` + ``VerCT``).

    Each member has ``mime``, ``ver_ct`` (the SyncML ``VerCT`` version), ``kind``
    (``contact``, ``calendar`` or ``note``) and a one-line ``description``.
    """

    VCARD21 = ("text/x-vcard", "2.1", "contact",
               "vCard 2.1: what nearly every phone uses for contacts")
    VCARD30 = ("text/vcard", "3.0", "contact",
               "vCard 3.0: the desktop's contact format (khard, Evolution, vdir)")
    VCALENDAR10 = ("text/x-vcalendar", "1.0", "calendar",
                   "vCalendar 1.0: phones' events and tasks (VEVENT, VTODO)")
    ICALENDAR20 = ("text/calendar", "2.0", "calendar",
                   "iCalendar 2.0: the desktop's events, tasks and notes (VJOURNAL)")
    PLAIN = ("text/plain", "1.0", "note",
             "plain text memos (SyncML conformance suite, Sony Ericsson Memo)")
    VNOTE11 = ("text/x-vnote", "1.1", "note", "vNote 1.1 (IrMC) notes")

    def __init__(self, mime: str, ver_ct: str, kind: str, description: str) -> None:
        self.mime = mime
        self.ver_ct = ver_ct
        self.kind = kind
        self.description = description

    @property
    def desktop(self) -> ContentType:
        """The type the desktop stores items of this type as."""
        return ContentType.VCARD30 if self.kind == "contact" else ContentType.ICALENDAR20

    @property
    def is_desktop_format(self) -> bool:
        """True for the formats the desktop stores as they are."""
        return self in (ContentType.VCARD30, ContentType.ICALENDAR20)

    @classmethod
    def from_meta(cls, mime: str, version: str | None = None) -> ContentType:
        """The type for a SyncML ``Meta/Type`` (and ``VerCT``, when known).

        Raises:
            FormatError: an unsupported type.
        """
        wanted = mime.strip().lower()
        if wanted == "text/directory":
            wanted = "text/vcard"
        matches = [m for m in cls if m.mime == wanted]
        if version is not None:
            exact = [m for m in cls if m.ver_ct == version.strip()
                     and m.kind == (matches[0].kind if matches else None)]
            matches = exact or matches
        if not matches:
            raise FormatError(f"unsupported content type {mime!r} {version or ''}".strip())
        return matches[0]

    @classmethod
    def sniff(cls, text: str, hint: ContentType | None = None) -> ContentType:
        """The type of an item judged by its content, ``hint`` when inconclusive.

        Devices mislabel: the Sony Ericsson P900 sends vCalendar 1.0 as
        ``text/calendar`` (Horde P900 session), so the BEGIN/VERSION lines win.
        """
        begin = re.search(r"^BEGIN:(\w+)", text, re.IGNORECASE | re.MULTILINE)
        version = re.search(r"^VERSION:\s*([\d.]+)", text, re.IGNORECASE | re.MULTILINE)
        name = begin.group(1).upper() if begin else ""
        ver = version.group(1) if version else ""
        if name == "VCARD":
            return cls.VCARD21 if ver == "2.1" else cls.VCARD30
        if name == "VCALENDAR":
            return cls.VCALENDAR10 if ver == "1.0" else cls.ICALENDAR20
        if name == "VNOTE":
            return cls.VNOTE11
        return hint if hint is not None else cls.PLAIN


def to_desktop(
    text: str,
    content_type: ContentType,
    *,
    device_tz: str | None = None,
    now: datetime | None = None,
    uid: str | None = None,
) -> str:
    """Convert a phone item of ``content_type`` (checked by sniffing) to the desktop format.

    Raises:
        FormatError: the item cannot be read.
    """
    actual = ContentType.sniff(text, content_type)
    if actual.kind == "contact":
        return vcard21_to_30(text)
    if actual in (ContentType.VCALENDAR10, ContentType.ICALENDAR20):
        return vcal10_to_ical20(text, device_tz=device_tz, now=now, uid=uid)
    if actual is ContentType.VNOTE11:
        return vnote_to_ical20(text, uid=uid, now=now)
    return plain_to_ical20(text, uid=uid, now=now)


def to_phone(
    text: str,
    content_type: ContentType,
    *,
    charset: str = "UTF-8",
    fold: bool = True,
    tz_mode: TzMode = "utc",
    device_tz: str | None = None,
    allday: AllDayStyle = "midnight",
) -> Conversion:
    """Convert a desktop item (vCard 3.0 / iCalendar 2.0) to ``content_type`` for a phone.

    Raises:
        FormatError: the item cannot be read or converted.
    """
    if content_type is ContentType.VCARD21:
        return vcard30_to_21(text, charset=charset, fold=fold)
    if content_type is ContentType.VCALENDAR10:
        return ical20_to_vcal10(text, tz_mode=tz_mode, device_tz=device_tz, charset=charset,
                                fold=fold, allday=allday)
    if content_type is ContentType.VNOTE11:
        return ical20_to_vnote(text, charset=charset, fold=fold)
    if content_type is ContentType.PLAIN:
        return Conversion(ical20_to_plain(text))
    if content_type is ContentType.VCARD30:
        return Conversion(vcard21_to_30(text))
    return Conversion(vcal10_to_ical20(text, device_tz=device_tz))
