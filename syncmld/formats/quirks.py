"""The device quirk table: what particular phones need beyond their DevInf.

A device's DevInf says which formats it takes and which properties it stores,
but not everything that matters: some Nokia phones hide e-mail addresses that
lack ``TYPE=INTERNET``, Sony Ericsson phones mangle UTF-8, a Motorola V3 breaks
on folded lines.  Each entry of :data:`QUIRKS` describes one such behaviour of
one family of devices, matched on the DevInf ``Man``, ``Mod`` and ``SwV``
values with shell-style globs (case-insensitive; ``*`` matches anything,
including a missing value).  :func:`profile_for` folds every matching entry,
in table order, into one :class:`DeviceProfile` that the format-converting
codec (:mod:`syncmld.formats.codec`) applies.

Every entry names the device it was seen on and where the behaviour is
documented; the golden files in ``tests/formats/golden/<device>/`` show what
each one changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

__all__ = ["QUIRKS", "DeviceProfile", "Quirk", "profile_for"]

TzMode = Literal["utc", "local"]
AllDayStyle = Literal["midnight", "date", "epoc"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceProfile:
    """The switches the codec applies for one device (defaults: a well-behaved phone).

    Attributes:
        charset: charset of non-ASCII text sent to the device.
        fold: fold long lines (``False``: every property on one line).
        email_internet_type: add ``TYPE=INTERNET`` to e-mail addresses.
        min_year: the earliest year the device's calendar stores; yearly
            events starting earlier are moved to their first occurrence on or
            after it (the desktop keeps the original start).
        alarm_utc: alarm times in UTC even when event times are local.
        tz_mode: event times in UTC or in the device's local time.
        allday: how an all-day event is written in vCalendar 1.0.
        calendar_holds_tasks: one calendar database holds events and tasks.
        field_lengths: the longest value (characters) the device stores per
            property name; longer values are cut when sent, and the desktop
            keeps the whole value while the device does not change it.
        quote_8bit: 8-bit text must be sent quoted-printable (never raw).
        max_msg_size: message size limit when the DevInf/header names none.
        max_guid_size: longest item id the device stores (the engine maps
            longer ids to temporary ones when DevInf announces the limit).
        applied: names of the quirk entries folded into this profile.
    """

    charset: str = "UTF-8"
    fold: bool = True
    email_internet_type: bool = False
    min_year: int | None = None
    alarm_utc: bool = False
    tz_mode: TzMode = "utc"
    allday: AllDayStyle = "midnight"
    calendar_holds_tasks: bool = False
    field_lengths: tuple[tuple[str, int], ...] = ()
    quote_8bit: bool = True
    max_msg_size: int | None = None
    max_guid_size: int | None = None
    applied: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Quirk:
    """One known device behaviour and the profile settings that handle it.

    ``manufacturer``, ``model`` and ``software`` are globs over DevInf
    ``Man``/``Mod``/``SwV``; ``settings`` are :class:`DeviceProfile` fields.
    """

    name: str
    device: str
    manufacturer: str
    model: str = "*"
    software: str = "*"
    settings: dict[str, object] = field(default_factory=dict)

    def matches(self, man: str | None, mod: str | None, swv: str | None) -> bool:
        """True when the DevInf values match this entry's globs."""
        return all(
            pattern == "*" or fnmatchcase((value or "").strip().lower(), pattern.lower())
            for pattern, value in (
                (self.manufacturer, man), (self.model, mod), (self.software, swv))
        )


QUIRKS: tuple[Quirk, ...] = (
    # Nokia S40/S60 phones (6230i, E-series, N-series): events and to-dos live in one
    # "Calendar" database that takes vCalendar 1.0 VEVENT and VTODO (SyncEvolution
    # remoterules/server/00_nokia.xml; SyncML DevInf of the 6630 lists one store).
    Quirk(name="nokia-calendar-holds-tasks", device="Nokia", manufacturer="nokia*",
          settings={"calendar_holds_tasks": True}),
    # Nokia phones reject or shift dates before 1980 (00_nokia.xml "no dates before 1980");
    # yearly birthdays/anniversaries from the desktop start at their 1980 occurrence.
    Quirk(name="nokia-min-year-1980", device="Nokia", manufacturer="nokia*",
          settings={"min_year": 1980}),
    # Nokia hides e-mail addresses without TYPE=INTERNET and later loses them on update
    # (SyncEvolution NEWS, FDO #61784).
    Quirk(name="nokia-email-internet", device="Nokia", manufacturer="nokia*",
          settings={"email_internet_type": True}),
    # Nokia takes alarms only in UTC (00_nokia.xml).
    Quirk(name="nokia-alarms-utc", device="Nokia", manufacturer="nokia*",
          settings={"alarm_utc": True}),
    # Nokia 6600 (S60 2nd edition) misplaces UTC event times: send local time
    # with TZ/DAYLIGHT (remoterules/server/14_6600.xml "force local time").
    Quirk(name="nokia-6600-local-time", device="Nokia 6600", manufacturer="nokia*",
          model="*6600*", settings={"tz_mode": "local"}),
    # Sony Ericsson phones (K750i, W810i, P900) read and write ISO-8859-1 text
    # whatever the CHARSET says (00_sony_ericsson.xml).
    Quirk(name="sonyericsson-latin1", device="Sony Ericsson",
          manufacturer="sony ericsson*", settings={"charset": "ISO-8859-1"}),
    # Sony Ericsson K-series OBEX clients fail on messages over about 2,700 bytes
    # when their DevInf/header gives no MaxMsgSize (00_sony_ericsson.xml).
    Quirk(name="sonyericsson-max-msg-2700", device="Sony Ericsson",
          manufacturer="sony ericsson*", settings={"max_msg_size": 2700}),
    # Sony Ericsson's DevInf says "SonyEricsson" on some models (K750i).
    Quirk(name="sonyericsson-latin1-alias", device="Sony Ericsson",
          manufacturer="sonyericsson*", settings={"charset": "ISO-8859-1",
                                                   "max_msg_size": 2700}),
    # Motorola V3 (RAZR) breaks on folded lines (remoterules 02_V3.xml "no line folding").
    Quirk(name="motorola-no-folding", device="Motorola V3", manufacturer="motorola*",
          settings={"fold": False}),
    # Motorola V3 truncates or rejects long fields (02_V3.xml "limited field lengths"):
    # its phone book keeps 32 characters of a name or title, 64 of an e-mail address
    # and 256 of a note.
    Quirk(name="motorola-field-length", device="Motorola V3", manufacturer="motorola*",
          model="*v3*", settings={"field_lengths": (
              ("FN", 32), ("TITLE", 32), ("EMAIL", 64), ("NOTE", 256),
              ("SUMMARY", 64), ("LOCATION", 64), ("DESCRIPTION", 256))}),
    # Motorola V3 mangles raw 8-bit bytes: non-ASCII must be quoted-printable
    # ("8-bit content must be quoted", 02_V3.xml).
    Quirk(name="motorola-quote-8bit", device="Motorola V3", manufacturer="motorola*",
          settings={"quote_8bit": True}),
    # Sony Ericsson P900/P910 store item ids of at most 4 bytes (its DevInf says
    # MaxGUIDSize 4; Horde P900 session devinf.txt): the engine maps longer ids.
    # Sony Ericsson P900/P910 write all-day events as 00:00:00 to 00:00:00 of the same
    # day ("epoc" style, Horde P900 session data.txt) and read them back only that way.
    Quirk(name="p900-allday-epoc", device="Sony Ericsson P900", manufacturer="sony ericsson*",
          model="p9*", settings={"allday": "epoc"}),
    Quirk(name="p900-max-guid-4", device="Sony Ericsson P900", manufacturer="sony ericsson*",
          model="p9*", settings={"max_guid_size": 4}),
)
"""The known device quirks, in the order they are folded (later entries win)."""


def profile_for(
    man: str | None,
    mod: str | None,
    swv: str | None = None,
    *,
    quirks: tuple[Quirk, ...] = QUIRKS,
) -> DeviceProfile:
    """The :class:`DeviceProfile` for a device named by its DevInf ``Man``/``Mod``/``SwV``."""
    profile = DeviceProfile()
    names: list[str] = []
    for quirk in quirks:
        if quirk.matches(man, mod, swv):
            profile = dataclasses.replace(profile, **quirk.settings)  # type: ignore[arg-type]
            names.append(quirk.name)
    return dataclasses.replace(profile, applied=tuple(names))
