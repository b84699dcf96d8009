"""vCalendar 1.0 <-> iCalendar 2.0 for VEVENT and VTODO.

Theory of operation
-------------------
Phones (Sony Ericsson, Nokia, Motorola, Symbian/UIQ) speak vCalendar 1.0
(``text/x-vcalendar``); the desktop stores iCalendar 2.0 (``text/calendar``). The 1.0
side is read and written with the line codec of :mod:`syncmld.formats.vcard` (same
syntax: quoted-printable, ``CHARSET``, RFC 822 folding); the 2.0 side with
``icalendar``.

Times
    1.0 values end in ``Z`` (UTC) or are local. Local times belong to the zone the
    object declares with ``TZ``/``DAYLIGHT`` or, when it declares none, to the
    phone's zone (``device_tz``). :func:`syncmld.formats.timezones.resolve_zone`
    maps the declaration to an IANA zone where one matches (else a custom
    VTIMEZONE follows the declaration literally). When a zone is known, 2.0 output
    writes local times with that ``TZID`` plus a complete VTIMEZONE; UTC times stay
    UTC (so a desktop item sent to a UTC phone comes back identical) except in
    recurring items, which move to the zone so the rule keeps its local time across
    DST. Without a zone UTC stays UTC and local stays floating. Towards the phone,
    ``tz_mode="utc"`` writes every time in UTC (floating times through
    ``device_tz`` when given) and no TZ/DAYLIGHT (Nokia
    rejected updates carrying 2.0 time zones, SyncEvolution NEWS BMC #9600);
    ``tz_mode="local"`` writes local times plus TZ/DAYLIGHT (Nokia 6230/6600 and the
    P800 need local time, SyncEvolution ``14_6600.xml``). Alarm times are written in
    UTC whenever the instant is known (Nokia and Sony Ericsson need UTC alarms,
    ``00_nokia.xml``, ``00_sony_ericsson.xml``).

All-day
    1.0 has no date type for events: phones send midnight-to-midnight, the P900
    ``DTSTART:20061225T000000Z``/``DTEND:20061225T240000Z`` (Horde P900 session),
    others end at ``T235900``/``T235959`` or send a bare date. Such events become
    ``VALUE=DATE`` in 2.0 unless the P900 marks them ``X-EPOCAGENDAENTRYTYPE:
    APPOINTMENT`` (a timed entry). Back to 1.0, ``allday`` picks the style:
    ``"midnight"`` (``T000000`` to next ``T000000``, floating), ``"date"`` or
    ``"epoc"`` (the P900's ``T000000Z``/``T240000Z``).

Alarms
    ``AALARM``/``DALARM`` (run time; snooze; repeat; sound or text) become VALARM
    AUDIO/DISPLAY with a trigger relative to DTSTART (VTODO: to DUE) when there is
    one - absolute alarms had to be turned back into relative ones for Evolution
    (SyncEvolution NEWS, BMC #11233). The P900's Windows sound path is kept in
    ``X-VCAL10-AUDIOCONTENT``. PALARM/MALARM are kept verbatim as X- properties.

Recurrence
    vCalendar 1.0 rules (``D1 #0``, ``W2 MO TU 20251231T000000``, ``MP1 1+ SU``,
    ``MD1 15 #5``, ``YM1 6 #0``, ``YD1 100``) map to RFC 5545 RRULE and back. A 1.0
    ``#n`` counts *intervals*, not occurrences, so rules with several occurrences
    per interval get an UNTIL at the end of the n-th interval; a missing duration
    means ``#2`` (vCalendar 1.0 spec; libsynthesis ``rrules.cpp`` does the same).
    A rule that cannot be expressed on the other side is not guessed: 1.0 rules
    are kept as ``X-VCAL10-RRULE``, 2.0 rules as ``X-ICAL20-RRULE`` (and reported
    as lossy), and restored when the item comes back.

Other vocabulary
    ``DCREATED`` <-> ``CREATED``; CATEGORIES/RESOURCES ``;`` <-> ``,``; ``GEO``
    ``lon,lat`` <-> ``lat;lon``; TRANSP ``0``/``1`` <-> OPAQUE/TRANSPARENT; STATUS
    vocabularies (1.0 ``NEEDS ACTION``, ``ACCEPTED``, ``DECLINED``, ``SENT``,
    ``DELEGATED`` ...) with the original kept in ``X-VCAL10-STATUS`` when 2.0 has
    no exact word; ATTENDEE roles/status/RSVP. X- properties pass verbatim.

Pure functions: no I/O (zoneinfo data aside), no clock - pass ``now`` for DTSTAMP.
"""

from __future__ import annotations

import calendar as _calendar
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

import icalendar
from dateutil import rrule as _dateutil_rrule  # type: ignore[import-untyped]

from syncmld.formats.errors import FormatError
from syncmld.formats.timezones import (
    ResolvedZone,
    VcalTimezone,
    build_vtimezone,
    get_zone,
    resolve_zone,
    vcal_tz_properties,
)
from syncmld.formats.vcard import (
    Component,
    ContentLine,
    Conversion,
    Param,
    encode_21_text,
    escape21,
    escape30,
    parse_component,
    python_codec,
    serialize_component,
    split_escaped,
    unescape21,
    unescape30,
    verbatim_to_21,
    verbatim_to_30,
)

__all__ = [
    "PRODID",
    "ical20_to_vcal10",
    "ical_text",
    "rrule10_to_20",
    "rrule20_to_10",
    "vcal10_to_ical20",
]

PRODID = "-//syncmld//syncmld formats//EN"
"""PRODID written on iCalendar 2.0 output."""

TzMode = Literal["utc", "local"]
AllDayStyle = Literal["midnight", "date", "epoc"]

_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_ITEMS = ("VEVENT", "VTODO")

# icalendar's value classes are only partly annotated; reach them through Any.
_ICAL: Any = icalendar


def ical_text(*values: str) -> Any:
    """A TEXT (or comma separated TEXT list) value for icalendar, escaped by us.

    icalendar 7's own text escaping turns a literal backslash-N into a line
    break, so text is escaped here and handed over as a raw value.
    """
    return _ICAL.prop.vUnknown(",".join(escape30(v) for v in values))


# ---------------------------------------------------------------------------
# 1.0 date-times
# ---------------------------------------------------------------------------

_DT_RE = re.compile(r"^(\d{8})(?:T(\d{2})(\d{2})(\d{2})?)?(Z)?$")


def _parse_dt10(text: str) -> datetime | date:
    """Parse a vCalendar 1.0 date or date-time.

    UTC values come back aware (UTC), local values naive, bare dates as ``date``.
    ``T240000`` is midnight of the next day (Sony Ericsson P900).
    """
    value = text.strip().upper().replace("-", "").replace(":", "")
    match = _DT_RE.match(value)
    if match is None:
        raise FormatError(f"bad date-time {text!r}")
    day_text, hh, mm, ss, z = match.groups()
    try:
        day = datetime.strptime(day_text, "%Y%m%d")
    except ValueError:
        raise FormatError(f"bad date {text!r}") from None
    if hh is None:
        return day.date()
    hours, minutes, seconds = int(hh), int(mm), int(ss or 0)
    if hours == 24 and minutes == 0 and seconds == 0:
        result = day + timedelta(days=1)
    else:
        try:
            result = day.replace(hour=hours, minute=minutes, second=seconds)
        except ValueError:
            raise FormatError(f"bad time {text!r}") from None
    return result.replace(tzinfo=UTC) if z else result


def _fmt_naive(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def _fmt_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# ---------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------


def _text10(line: ContentLine) -> str:
    return unescape21(line.decoded())


def _list10(line: ContentLine) -> list[str]:
    # vCalendar 1.0 separates CATEGORIES/RESOURCES with ';' (commas are data).
    return [unescape21(p).strip() for p in split_escaped(line.decoded(), ";") if p.strip()]


def _verbatim_10_to_20(line: ContentLine) -> str:
    return verbatim_to_30(line.decoded())


def _x_params(line: ContentLine) -> dict[str, str]:
    return {
        p.name: ",".join(p.values)
        for p in line.params
        if p.name not in ("ENCODING", "CHARSET", "VALUE") and not p.bare
    }


# ---------------------------------------------------------------------------
# Recurrence rules
# ---------------------------------------------------------------------------

_RULE_HEAD = re.compile(r"^(D|W|MP|MD|YM|YD)(\d+)$")
_OCCURRENCE = re.compile(r"^([1-5])([+-]?)$")
_NUMBER = re.compile(r"^(\d{1,3})([+-]?)$")
_END_DATE = re.compile(r"^\d{8}(T\d{4,6}Z?)?$")


@dataclass
class _Rule10:
    code: str
    interval: int
    byday: list[str] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    count: int | None = 2  # no duration means "#2" in vCalendar 1.0
    until: str | None = None


def _parse_rule10(text: str) -> _Rule10 | None:
    tokens = text.upper().split()
    if not tokens:
        return None
    head = _RULE_HEAD.match(tokens[0])
    if head is None:
        return None
    rule = _Rule10(head.group(1), int(head.group(2)))
    if rule.interval < 1:
        return None
    body = tokens[1:]
    if body and (body[-1].startswith("#") or _END_DATE.match(body[-1])):
        last = body.pop()
        if last.startswith("#"):
            if not last[1:].isdigit():
                return None
            rule.count = int(last[1:]) or None
        else:
            rule.count, rule.until = None, last
    pending: list[int] = []
    after_day = False
    for token in body:
        if token in _WEEKDAYS:
            if rule.code == "W":
                rule.byday.append(token)
            elif rule.code == "MP" and pending:
                rule.byday += [f"{n}{token}" for n in pending]
                after_day = True
            else:
                return None
            continue
        if rule.code == "MP" and (occ := _OCCURRENCE.match(token)):
            if after_day:
                pending, after_day = [], False
            pending.append(-int(occ.group(1)) if occ.group(2) == "-" else int(occ.group(1)))
            continue
        if rule.code in ("MD", "YM", "YD"):
            if token == "LD" and rule.code == "MD":
                rule.numbers.append(-1)
                continue
            num = _NUMBER.match(token)
            if num is None or int(num.group(1)) == 0:
                return None
            value = int(num.group(1))
            if rule.code == "YM" and (num.group(2) or value > 12):
                return None
            rule.numbers.append(-value if num.group(2) == "-" else value)
            continue
        return None  # time lists, "$" markers, a second rule ... -> not expressible
    if rule.code == "MP" and pending and not rule.byday:
        return None
    return rule


def _per_interval(rule: _Rule10) -> int:
    if rule.code in ("W", "MP"):
        return len(rule.byday)
    if rule.code in ("MD", "YM", "YD"):
        return len(rule.numbers)
    return 1


def _end_of_interval(rule: _Rule10, start: date, n: int) -> date:
    """Last day of the n-th interval of ``rule`` counted from ``start``."""
    steps = (n - 1) * rule.interval
    if rule.code == "W":
        return start + timedelta(days=6 - start.weekday() + 7 * steps)
    if rule.code in ("MP", "MD"):
        month_index = start.month - 1 + steps
        year, month = start.year + month_index // 12, month_index % 12 + 1
        return date(year, month, _calendar.monthrange(year, month)[1])
    return date(start.year + steps, 12, 31)


def rrule10_to_20(
    text: str,
    dtstart: datetime | date | None,
    *,
    to_until: Callable[[datetime | date], datetime | date] | None = None,
) -> dict[str, Any] | None:
    """Convert a vCalendar 1.0 rule to an RFC 5545 recurrence (``icalendar`` dict).

    Args:
        text: the 1.0 rule, e.g. ``"W2 MO TU 20251231T000000"``.
        dtstart: the item's start as it will appear in 2.0 (decides the UNTIL type).
        to_until: converts a parsed 1.0 end date (or the computed end of the n-th
            interval) to the 2.0 UNTIL value; default: keep it.

    Returns:
        ``None`` if the rule cannot be expressed (the caller keeps it verbatim).
    """
    rule = _parse_rule10(text)
    if rule is None:
        return None
    freq = {"D": "DAILY", "W": "WEEKLY", "MP": "MONTHLY", "MD": "MONTHLY",
            "YM": "YEARLY", "YD": "YEARLY"}[rule.code]
    recur: dict[str, Any] = {"FREQ": freq}
    if rule.interval != 1:
        recur["INTERVAL"] = rule.interval
    if rule.byday:
        recur["BYDAY"] = rule.byday
    if rule.numbers:
        key = {"MD": "BYMONTHDAY", "YM": "BYMONTH", "YD": "BYYEARDAY"}[rule.code]
        recur[key] = rule.numbers
    convert = to_until or (lambda v: v)
    if rule.until is not None:
        until = _parse_dt10(rule.until)
        if isinstance(dtstart, datetime) or not isinstance(until, datetime):
            recur["UNTIL"] = convert(until)
        else:
            recur["UNTIL"] = convert(until.date())
    elif rule.count:
        if _per_interval(rule) <= 1:
            recur["COUNT"] = rule.count
        elif dtstart is not None:
            start_day = dtstart.date() if isinstance(dtstart, datetime) else dtstart
            last_day = _end_of_interval(rule, start_day, rule.count)
            if isinstance(dtstart, datetime):
                local = datetime.combine(last_day, time(23, 59, 59))
                recur["UNTIL"] = convert(local.replace(tzinfo=dtstart.tzinfo)
                                         if dtstart.tzinfo else local)
            else:
                recur["UNTIL"] = convert(last_day)
        else:
            return None
    return recur


def _first(recur: dict[str, Any], key: str) -> Any:
    value = recur.get(key)
    if isinstance(value, list | tuple):
        return value[0] if value else None
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


_BYDAY_RE = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")


def rrule20_to_10(
    recur: dict[str, Any],
    dtstart: datetime | date,
    format_until: Callable[[datetime | date], str],
) -> str | None:
    """Convert an RFC 5545 recurrence (``icalendar`` vRecur/dict) to vCalendar 1.0.

    Args:
        recur: the RRULE parts (values may be lists, as icalendar gives them).
        dtstart: the item's start (defaults for missing BY parts, COUNT expansion).
        format_until: writes an end date/date-time in the 1.0 output's time mode.

    Returns:
        The 1.0 rule, or ``None`` if 1.0 cannot express it.
    """
    keys = {k.upper() for k in recur}
    allowed = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH",
               "BYYEARDAY", "BYSETPOS", "WKST"}
    if keys - allowed:
        return None
    upper = {k.upper(): v for k, v in recur.items()}
    freq = str(_first(upper, "FREQ") or "").upper()
    interval = int(_first(upper, "INTERVAL") or 1)
    byday = [str(d).upper() for d in _as_list(upper.get("BYDAY"))]
    bymonthday = [int(d) for d in _as_list(upper.get("BYMONTHDAY"))]
    bymonth = [int(m) for m in _as_list(upper.get("BYMONTH"))]
    byyearday = [int(d) for d in _as_list(upper.get("BYYEARDAY"))]
    bysetpos = [int(p) for p in _as_list(upper.get("BYSETPOS"))]
    start_day = dtstart.date() if isinstance(dtstart, datetime) else dtstart
    parsed_days = [_BYDAY_RE.match(d) for d in byday]
    if any(m is None for m in parsed_days):
        return None
    days = [(int(m.group(1)) if m.group(1) else None, m.group(2)) for m in parsed_days if m]
    if bysetpos and not (freq == "MONTHLY" and len(bysetpos) == 1 and len(days) == 1
                         and days[0][0] is None):
        return None
    if bysetpos:
        days = [(bysetpos[0], days[0][1])]
    if str(_first(upper, "WKST") or "MO").upper() != "MO" and freq == "WEEKLY" and interval > 1:
        return None
    per_interval = 1
    if freq == "DAILY" and not (byday or bymonthday or bymonth or byyearday):
        text = f"D{interval}"
    elif freq == "WEEKLY" and not (bymonthday or bymonth or byyearday):
        if any(n is not None for n, _ in days):
            return None
        names = [d for _, d in days] or [_WEEKDAYS[start_day.weekday()]]
        per_interval = len(names)
        text = f"W{interval} " + " ".join(names)
    elif freq == "MONTHLY" and not (bymonth or byyearday):
        if days and not bymonthday:
            positions = [(n, day) for n, day in days if n is not None and 0 < abs(n) <= 5]
            if len(positions) != len(days):
                return None
            parts: list[str] = []
            for n, day in positions:
                parts += [f"{abs(n)}{'-' if n < 0 else '+'}", day]
            per_interval = len(days)
            text = f"MP{interval} " + " ".join(parts)
        elif bymonthday and not days:
            per_interval = len(bymonthday)
            text = f"MD{interval} " + " ".join(
                f"{abs(d)}-" if d < 0 else str(d) for d in bymonthday
            )
        elif not days and not bymonthday:
            text = f"MD{interval} {start_day.day}"
        else:
            return None
    elif freq == "YEARLY" and not days:
        if byyearday and not (bymonth or bymonthday):
            per_interval = len(byyearday)
            text = f"YD{interval} " + " ".join(str(d) for d in byyearday)
        elif not byyearday and bymonthday in ([], [start_day.day]):
            months = bymonth or [start_day.month]
            per_interval = len(months)
            text = f"YM{interval} " + " ".join(str(m) for m in months)
        else:
            return None
    else:
        return None
    count = _first(upper, "COUNT")
    until = _first(upper, "UNTIL")
    if until is not None:
        return f"{text} {format_until(until)}"
    if count is not None:
        if per_interval <= 1:
            return f"{text} #{int(count)}"
        last = _last_occurrence(recur, dtstart)
        return None if last is None else f"{text} {format_until(last)}"
    return f"{text} #0"


def _last_occurrence(recur: dict[str, Any], dtstart: datetime | date) -> datetime | date | None:
    start = dtstart if isinstance(dtstart, datetime) else datetime.combine(dtstart, time())
    rule_text = _ICAL.vRecur(recur).to_ical().decode()
    try:
        occurrences = list(_dateutil_rrule.rrulestr(rule_text, dtstart=start))
    except (ValueError, TypeError):
        return None
    if not occurrences:
        return None
    last: datetime = occurrences[-1]
    return last if isinstance(dtstart, datetime) else last.date()


# ---------------------------------------------------------------------------
# STATUS, TRANSP, ATTENDEE vocabularies
# ---------------------------------------------------------------------------

_EVENT_STATUS_10 = {
    "TENTATIVE": "TENTATIVE", "CONFIRMED": "CONFIRMED", "DECLINED": "CANCELLED",
    "ACCEPTED": "CONFIRMED", "SENT": "TENTATIVE", "COMPLETED": "CONFIRMED",
    "NEEDS ACTION": None, "DELEGATED": None,
}
_EVENT_STATUS_20 = {"TENTATIVE": "TENTATIVE", "CONFIRMED": "CONFIRMED", "CANCELLED": "DECLINED"}
_TODO_STATUS_10 = {
    "NEEDS ACTION": "NEEDS-ACTION", "COMPLETED": "COMPLETED", "ACCEPTED": "IN-PROCESS",
    "CONFIRMED": "IN-PROCESS", "DECLINED": "CANCELLED", "TENTATIVE": "NEEDS-ACTION",
    "SENT": "NEEDS-ACTION", "DELEGATED": "NEEDS-ACTION",
}
_TODO_STATUS_20 = {"NEEDS-ACTION": "NEEDS ACTION", "COMPLETED": "COMPLETED",
                   "IN-PROCESS": "ACCEPTED", "CANCELLED": "DECLINED"}
_PARTSTAT_10 = {
    "ACCEPTED": "ACCEPTED", "NEEDS ACTION": "NEEDS-ACTION", "SENT": "NEEDS-ACTION",
    "TENTATIVE": "TENTATIVE", "CONFIRMED": "ACCEPTED", "DECLINED": "DECLINED",
    "COMPLETED": "COMPLETED", "DELEGATED": "DELEGATED",
}
_PARTSTAT_20 = {"ACCEPTED": "ACCEPTED", "NEEDS-ACTION": "NEEDS ACTION", "TENTATIVE": "TENTATIVE",
                "DECLINED": "DECLINED", "COMPLETED": "COMPLETED", "DELEGATED": "DELEGATED",
                "IN-PROCESS": "CONFIRMED"}
_ROLE_10 = {"ATTENDEE": "REQ-PARTICIPANT", "OWNER": "CHAIR", "DELEGATE": "REQ-PARTICIPANT"}
_ROLE_20 = {"REQ-PARTICIPANT": "ATTENDEE", "CHAIR": "OWNER", "OPT-PARTICIPANT": "ATTENDEE",
            "NON-PARTICIPANT": "ATTENDEE"}


def _status_10_to_20(kind: str, value: str) -> tuple[str | None, bool]:
    """(2.0 status or None, whether the 1.0 word must be kept in X-VCAL10-STATUS)."""
    word = value.strip().upper().replace("-", " ")
    table = _EVENT_STATUS_10 if kind == "VEVENT" else _TODO_STATUS_10
    back = _EVENT_STATUS_20 if kind == "VEVENT" else _TODO_STATUS_20
    if word not in table:
        return None, True
    mapped = table[word]
    return mapped, mapped is None or back.get(mapped) != word


def _status_20_to_10(kind: str, status: str | None, original: str | None) -> str | None:
    table = _EVENT_STATUS_10 if kind == "VEVENT" else _TODO_STATUS_10
    if original is not None:
        word = original.strip().upper()
        if table.get(word.replace("-", " "), word) == status or (
            word.replace("-", " ") not in table and status is None
        ):
            return word
    if status is None:
        return None
    back = _EVENT_STATUS_20 if kind == "VEVENT" else _TODO_STATUS_20
    return back.get(status.upper(), status.upper())


# ---------------------------------------------------------------------------
# vCalendar 1.0 -> iCalendar 2.0
# ---------------------------------------------------------------------------

_ALLDAY_END_TIMES = (time(0, 0), time(23, 59), time(23, 59, 59))


@dataclass
class _In:
    """State for converting one 1.0 object."""

    zone: ResolvedZone | None
    local_years: set[int] = field(default_factory=set)
    recurring: bool = False

    def to20(self, value: datetime | date) -> datetime | date:
        """A parsed 1.0 value as it should appear in 2.0.

        Local times get the zone. UTC times stay UTC unless the item recurs: then
        they move to the zone so the rule repeats at the same local time.
        """
        if not isinstance(value, datetime):
            return value
        zone = self.zone
        if zone is None:
            return value
        if value.tzinfo is None:
            aware = value.replace(tzinfo=zone.zone)
        elif zone.is_utc or not self.recurring:
            return value.astimezone(UTC)
        else:
            aware = value.astimezone(zone.zone)
        if not zone.is_utc:
            self.local_years.add(aware.year)
        return aware

    def instant(self, value: datetime) -> datetime:
        """An aware UTC instant for a 1.0 date-time (floating: as if UTC)."""
        converted = self.to20(value)
        assert isinstance(converted, datetime)
        if converted.tzinfo is None:
            return converted.replace(tzinfo=UTC)
        return converted.astimezone(UTC)


def _ical_add(comp: Any, name: str, value: Any, zone: ResolvedZone | None,
              params: dict[str, str] | None = None) -> None:
    parameters = dict(params or {})
    if isinstance(value, datetime) and value.tzinfo is not None and zone is not None \
            and not zone.iana and not zone.is_utc:
        # A zone that matched no IANA name: write local time with our TZID.
        parameters["TZID"] = zone.tzid
        value = value.replace(tzinfo=None)
    if isinstance(value, list) and value and isinstance(value[0], datetime) \
            and value[0].tzinfo is not None and zone is not None and not zone.iana \
            and not zone.is_utc:
        parameters["TZID"] = zone.tzid
        value = [v.replace(tzinfo=None) for v in value]
    comp.add(name, value, parameters=parameters or None)


def _is_allday_pair(start: datetime | date, end: datetime | date | None,
                    zone: ResolvedZone | None) -> tuple[date, date] | None:
    """Dates (start, exclusive end) if the 1.0 pair is an all-day event."""
    if not isinstance(start, datetime):
        if end is None:
            return start, start + timedelta(days=1)
        if isinstance(end, datetime):
            return None
        return start, max(end, start + timedelta(days=1))
    if end is None or not isinstance(end, datetime):
        return None
    candidates = [(start, end)]
    if start.tzinfo is not None and zone is not None and not zone.is_utc:
        candidates.append((start.astimezone(zone.zone), end.astimezone(zone.zone)))
    for s, e in candidates:
        if s.time() != time(0, 0) or e.time() not in _ALLDAY_END_TIMES:
            continue
        end_day = e.date() if e.time() == time(0, 0) else e.date() + timedelta(days=1)
        if end_day > s.date():
            return s.date(), end_day
    return None


def _alarm_10_to_20(line: ContentLine, state: _In, ref: tuple[datetime, str] | None,
                    summary: str) -> Any | None:
    parts = [unescape21(p) for p in split_escaped(line.decoded(), ";")] + ["", "", "", ""]
    run, snooze, repeat, content = (p.strip() for p in parts[:4])
    if not run:
        return None
    runtime = _parse_dt10(run)
    if not isinstance(runtime, datetime):
        runtime = datetime.combine(runtime, time())
    alarm = icalendar.Alarm()
    if line.name == "AALARM":
        alarm.add("ACTION", "AUDIO")
    else:
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", ical_text(content or summary or "Reminder"))
    if ref is not None:
        ref_instant, related = ref
        params = {"RELATED": "END"} if related == "END" else {}
        alarm.add("TRIGGER", state.instant(runtime) - ref_instant, parameters=params)
    else:
        alarm.add("TRIGGER", state.instant(runtime), parameters={"VALUE": "DATE-TIME"})
    if snooze and repeat.isdigit() and int(repeat) > 0:
        try:
            alarm.add("DURATION", _ICAL.vDuration.from_ical(snooze))
            alarm.add("REPEAT", int(repeat))
        except ValueError:
            alarm.add("X-VCAL10-SNOOZE", f"{snooze};{repeat}")
    elif repeat and repeat != "0":
        alarm.add("X-VCAL10-SNOOZE", f"{snooze};{repeat}")
    if line.name == "AALARM" and content:
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://|^(cid|mailto|urn|data):", content):
            alarm.add("ATTACH", content, parameters={"VALUE": "URI"})
        else:
            # The P900 names a local sound file: c:\system\data\themes\sound\...
            alarm.add("X-VCAL10-AUDIOCONTENT", escape30(content))
    kind = line.param("TYPE")
    if kind:
        alarm.add("X-VCAL10-TYPE", kind)
    return alarm


_GEO_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[,;]\s*(-?\d+(?:\.\d+)?)\s*$")


def _attendee_10_to_20(line: ContentLine) -> tuple[str, str, dict[str, str]]:
    text = _text10(line).strip()
    params: dict[str, str] = {}
    match = re.match(r"^(.*?)\s*<([^>]+)>$", text)
    if match:
        if match.group(1).strip():
            params["CN"] = match.group(1).strip().strip('"')
        address = match.group(2)
    else:
        address = text
    if "@" in address and not address.lower().startswith("mailto:"):
        address = "mailto:" + address
    role = (line.param("ROLE") or "").upper()
    name = "ORGANIZER" if role == "ORGANIZER" else "ATTENDEE"
    if role in _ROLE_10:
        params["ROLE"] = _ROLE_10[role]
    status = (line.param("STATUS") or "").upper().replace("-", " ")
    if status in _PARTSTAT_10 and name == "ATTENDEE":
        params["PARTSTAT"] = _PARTSTAT_10[status]
    rsvp = (line.param("RSVP") or "").upper()
    if rsvp in ("YES", "NO", "TRUE", "FALSE"):
        params["RSVP"] = "TRUE" if rsvp in ("YES", "TRUE") else "FALSE"
    expect = (line.param("EXPECT") or "").upper()
    if expect:
        params["X-VCAL10-EXPECT"] = expect
    for param in line.params:
        if param.name.startswith("X-") or param.name in ("CN", "LANGUAGE"):
            params[param.name] = ",".join(param.values)
    return name, address, params


def _samples(comp: Component) -> list[datetime]:
    out: list[datetime] = []
    for item in comp.components:
        for name in ("DTSTART", "DTEND", "DUE"):
            line = item.get(name)
            if line is None:
                continue
            try:
                value = _parse_dt10(line.decoded())
            except FormatError:
                continue
            if isinstance(value, datetime):
                out.append(value)
    return out


def _convert_item_10(item: Component, state: _In, *, uid: str | None,
                     now: datetime | None) -> Any:
    kind = item.name
    out: Any = icalendar.Event() if kind == "VEVENT" else icalendar.Todo()
    zone = state.zone
    state.recurring = any(item.get(name) for name in ("RRULE", "RDATE", "EXRULE"))

    def dt(name: str) -> datetime | date | None:
        line = item.get(name)
        return _parse_dt10(line.decoded()) if line and line.decoded().strip() else None

    start, end, due = dt("DTSTART"), dt("DTEND"), dt("DUE")
    entry_type = (item.get("X-EPOCAGENDAENTRYTYPE") or ContentLine("X", "")).value.upper()
    allday: tuple[date, date] | None = None
    if kind == "VEVENT" and start is not None and entry_type != "APPOINTMENT":
        allday = _is_allday_pair(start, end, zone)
    summary_line = item.get("SUMMARY")
    summary = _text10(summary_line) if summary_line else ""

    def ref() -> tuple[datetime, str] | None:
        base, related = (start, "START")
        if kind == "VTODO" and due is not None:
            base, related = due, "END"
        if base is None:
            return None
        if not isinstance(base, datetime):
            base = datetime.combine(base, time())
        return state.instant(base), related

    if uid is not None and item.get("UID") is None:
        out.add("UID", uid)
    stamp = item.get("DTSTAMP") or item.get("LAST-MODIFIED") or item.get("DCREATED")
    if now is not None:
        out.add("DTSTAMP", now.astimezone(UTC))
    elif stamp is not None:
        value = _parse_dt10(stamp.decoded())
        if isinstance(value, datetime):
            out.add("DTSTAMP", state.instant(value))
    start20: datetime | date | None = None
    for line in item.properties:
        name = line.name
        params = {"LANGUAGE": lang} if (lang := line.param("LANGUAGE")) else {}
        if name in ("UID", "SUMMARY", "DESCRIPTION", "LOCATION", "COMMENT", "CONTACT",
                    "RELATED-TO"):
            out.add(name, ical_text(_text10(line)), parameters=params)
        elif name in ("DTSTART", "DTEND", "DUE"):
            when = dt(name)
            if when is None:
                continue
            if allday is not None and name in ("DTSTART", "DTEND"):
                _ical_add(out, name, allday[0] if name == "DTSTART" else allday[1], zone)
                if name == "DTSTART":
                    start20 = allday[0]
                continue
            if kind == "VTODO" and isinstance(when, datetime) and when.tzinfo is None \
                    and when.time() == time(0, 0):
                when = when.date()  # a floating midnight DUE is a due date
            converted = state.to20(when)
            if name == "DTSTART":
                start20 = converted
            _ical_add(out, name, converted, zone)
        elif name in ("DCREATED", "LAST-MODIFIED", "COMPLETED"):
            value = _parse_dt10(line.decoded())
            if not isinstance(value, datetime):
                value = datetime.combine(value, time())
            out.add("CREATED" if name == "DCREATED" else name, state.instant(value))
        elif name in ("CATEGORIES", "RESOURCES"):
            values = _list10(line)
            if values:
                out.add(name, ical_text(*values), parameters=params)
        elif name in ("PRIORITY", "SEQUENCE"):
            text = line.decoded().strip()
            if text.lstrip("-").isdigit():
                out.add(name, int(text))
        elif name == "CLASS":
            out.add(name, line.decoded().strip().upper())
        elif name == "URL":
            out.add(name, line.decoded().strip())
        elif name == "TRANSP":
            text = line.decoded().strip().upper()
            mapped = {"0": "OPAQUE", "1": "TRANSPARENT"}.get(text, text)
            if mapped in ("OPAQUE", "TRANSPARENT"):
                out.add("TRANSP", mapped)
            else:
                out.add("X-VCAL10-TRANSP", _verbatim_10_to_20(line))
        elif name == "STATUS":
            mapped20, keep = _status_10_to_20(kind, line.decoded())
            if mapped20:
                out.add("STATUS", mapped20)
            if keep:
                out.add("X-VCAL10-STATUS", escape30(line.decoded().strip().upper()))
        elif name == "GEO":
            match = _GEO_RE.match(line.decoded())
            if match:
                # vCalendar 1.0 writes "longitude,latitude" (Synthesis 11calendar-profile).
                out.add("GEO", (float(match.group(2)), float(match.group(1))))
        elif name in ("AALARM", "DALARM"):
            alarm = _alarm_10_to_20(line, state, ref(), summary)
            if alarm is not None:
                out.add_component(alarm)
        elif name in ("EXDATE", "RDATE"):
            moments: list[datetime | date] = []
            for part in split_escaped(line.decoded(), ";,"):
                if not part.strip():
                    continue
                parsed = _parse_dt10(part)
                if allday is not None and isinstance(parsed, datetime):
                    moments.append(parsed.date())
                else:
                    moments.append(state.to20(parsed))
            if moments:
                _ical_add(out, name, moments, zone)
        elif name == "RRULE":
            continue  # after DTSTART is known, below
        elif name in ("ATTENDEE", "ORGANIZER"):
            if name == "ORGANIZER":
                # Not vCalendar 1.0, but Horde writes "ORGANIZER;CN=...:mailto:..."
                out.add(name, _ICAL.prop.vUnknown(_text10(line).strip()),
                        parameters=_x_params(line))
                continue
            prop, address, attendee_params = _attendee_10_to_20(line)
            out.add(prop, address, parameters=attendee_params or None)
        elif name in ("DTSTAMP", "VERSION"):
            continue
        elif name == "X-ICAL20-RRULE" and item.get("RRULE") is None:
            # A desktop rule the phone could not express comes back unchanged.
            try:
                out.add("RRULE", icalendar.vRecur.from_ical(line.decoded().strip()))
            except ValueError:
                out.add(name, icalendar.prop.vUnknown(_verbatim_10_to_20(line)))
        elif name.startswith("X-"):
            out.add(name, icalendar.prop.vUnknown(_verbatim_10_to_20(line)),
                    parameters=_x_params(line) or None)
        else:
            # 1.0-only properties without a 2.0 meaning (EXRULE, PALARM, MALARM, RNUM).
            out.add(f"X-VCAL10-{name}", icalendar.prop.vUnknown(_verbatim_10_to_20(line)),
                    parameters=_x_params(line) or None)
    for line in item.get_all("RRULE"):
        raw = line.decoded().strip()

        def until20(value: datetime | date) -> datetime | date:
            if not isinstance(start20, datetime):
                return value.date() if isinstance(value, datetime) else value
            if isinstance(value, datetime):
                converted = state.to20(value)
                assert isinstance(converted, datetime)
                if converted.tzinfo is None:
                    return converted  # floating start: floating UNTIL
                return converted.astimezone(UTC)
            return value

        recur = rrule10_to_20(raw, start20, to_until=until20)
        if recur is None:
            out.add("X-VCAL10-RRULE", icalendar.prop.vUnknown(escape30(raw)))
        else:
            out.add("RRULE", recur)
    return out


def vcal10_to_ical20(
    text: str,
    *,
    device_tz: str | None = None,
    now: datetime | None = None,
    uid: str | None = None,
) -> str:
    """Convert a vCalendar 1.0 object (events and/or tasks) to iCalendar 2.0.

    Args:
        text: the phone's vCalendar 1.0 item (an iCalendar 2.0 input is re-written
            unchanged in meaning, which normalizes it).
        device_tz: the phone's IANA zone; used for local times when the item
            declares no TZ/DAYLIGHT, and preferred when matching declared offsets.
        now: the DTSTAMP to write (default: the item's LAST-MODIFIED/DCREATED).
        uid: the UID for an item that has none (the engine allocates it).

    Returns:
        UTF-8 iCalendar 2.0 text, CRLF lines folded at 75 octets.

    Raises:
        FormatError: the input is malformed or ``device_tz`` is unknown.
    """
    root = parse_component(text)
    if root.name != "VCALENDAR":
        raise FormatError(f"expected VCALENDAR, got {root.name}")
    if root.version == "2.0":
        return _normalize_ical20(text)
    tz_line = root.get("TZ")
    declared = VcalTimezone.from_properties(
        tz_line.decoded() if tz_line else None, [d.decoded() for d in root.get_all("DAYLIGHT")]
    )
    zone = resolve_zone(declared, device_tz=device_tz, samples=_samples(root))
    state = _In(zone)
    cal = icalendar.Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    for line in root.properties:
        if line.name.startswith("X-"):
            cal.add(line.name, icalendar.prop.vUnknown(_verbatim_10_to_20(line)))
    items = [c for c in root.components if c.name in _ITEMS]
    if not items:
        raise FormatError("no VEVENT or VTODO in vCalendar")
    converted = [_convert_item_10(item, state, uid=uid, now=now) for item in items]
    if zone is not None and not zone.is_utc and state.local_years:
        years = sorted(state.local_years)
        cal.add_component(build_vtimezone(zone.tzid, zone.zone, years[0], years[-1]))
    for comp in converted:
        cal.add_component(comp)
    return str(cal.to_ical().decode("utf-8"))


def _parse_ical(text: str) -> Any:
    try:
        return icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError) as exc:
        raise FormatError(f"bad iCalendar: {exc}") from exc


def _normalize_ical20(text: str) -> str:
    return str(_parse_ical(text).to_ical().decode("utf-8"))


# ---------------------------------------------------------------------------
# iCalendar 2.0 -> vCalendar 1.0
# ---------------------------------------------------------------------------


@dataclass
class _Out:
    """Settings and accumulated state for one 2.0 -> 1.0 conversion."""

    tz_mode: TzMode
    device: tzinfo | None
    target: tzinfo | None
    allday: AllDayStyle
    alarm_utc: bool
    charset: str
    lossy: list[str] = field(default_factory=list)
    years: set[int] = field(default_factory=set)

    def note_lossy(self, name: str) -> None:
        """Record a property that could not be fully represented."""
        if name not in self.lossy:
            self.lossy.append(name)

    def fmt(self, value: datetime | date, *, alarm: bool = False) -> str:
        """A 2.0 date/date-time written in the 1.0 output's time mode."""
        if not isinstance(value, datetime):
            return value.strftime("%Y%m%dT000000")
        if value.tzinfo is None:
            if (self.tz_mode == "utc" or (alarm and self.alarm_utc)) and self.device is not None:
                return _fmt_utc(value.replace(tzinfo=self.device))
            return _fmt_naive(value)
        if self.tz_mode == "utc" or (alarm and self.alarm_utc) or self.target is None:
            return _fmt_utc(value)
        local = value.astimezone(self.target)
        self.years.add(local.year)
        return _fmt_naive(local)

    def text(self, name: str, value: str, params: Sequence[Param] = ()) -> ContentLine:
        """A 1.0 text line (escaped, QP/CHARSET as needed)."""
        return self.raw_text(name, escape21(value), params)

    def raw_text(self, name: str, escaped: str, params: Sequence[Param] = ()) -> ContentLine:
        """A 1.0 line for an already escaped value."""
        line, lost = encode_21_text(name, escaped, params, charset=self.charset)
        if lost:
            self.note_lossy(name)
        return line


def _props(comp: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for name, value in comp.items():
        for item in value if isinstance(value, list) else [value]:
            out.append((str(name).upper(), item))
    return out


def _dt_value(prop: Any) -> Any:
    return prop.dt if hasattr(prop, "dt") else prop


def _dt_list(prop: Any) -> list[datetime | date]:
    if hasattr(prop, "dts"):
        return [d.dt for d in prop.dts]
    return [_dt_value(prop)]


def _allday_pair10(start: date, end: date, style: AllDayStyle) -> tuple[str, str]:
    if style == "date":
        return start.strftime("%Y%m%d"), end.strftime("%Y%m%d")
    if style == "epoc":
        # Symbian EPOC agenda (Sony Ericsson P900): T000000Z to T240000Z of the last day.
        last = end - timedelta(days=1)
        return start.strftime("%Y%m%dT000000Z"), last.strftime("%Y%m%dT240000Z")
    return start.strftime("%Y%m%dT000000"), end.strftime("%Y%m%dT000000")


def _alarm_20_to_10(alarm: Any, item: Any, out: _Out) -> ContentLine | None:
    action = str(alarm.get("ACTION", "")).upper()
    if action not in ("AUDIO", "DISPLAY"):
        out.note_lossy("VALARM")
        return None
    trigger_prop = alarm.get("TRIGGER")
    if trigger_prop is None:
        return None
    trigger = alarm.decoded("TRIGGER")
    if isinstance(trigger, timedelta):
        related = str(trigger_prop.params.get("RELATED", "START")).upper()
        if related == "END":
            base_prop = item.get("DUE") or item.get("DTEND")
            if base_prop is None and item.get("DTSTART") is not None and item.get("DURATION"):
                base: Any = _dt_value(item.get("DTSTART")) + item.decoded("DURATION")
            else:
                base = _dt_value(base_prop) if base_prop is not None else None
        else:
            base = _dt_value(item.get("DTSTART")) if item.get("DTSTART") is not None else None
        if base is None:
            out.note_lossy("VALARM")
            return None
        if not isinstance(base, datetime):
            base = datetime.combine(base, time())
        runtime = base + trigger
    else:
        runtime = trigger
    fields = [out.fmt(runtime, alarm=True), "", ""]
    duration, repeat = alarm.get("DURATION"), alarm.get("REPEAT")
    if duration is not None and repeat is not None:
        fields[1:3] = [_ICAL.vDuration(alarm.decoded("DURATION")).to_ical().decode(),
                       str(int(repeat))]
    elif (snooze := alarm.get("X-VCAL10-SNOOZE")) is not None:
        fields[1:3] = [*str(snooze).split(";"), "", ""][:2]
    params: list[Param] = []
    if (kind := alarm.get("X-VCAL10-TYPE")) is not None:
        params.append(Param("TYPE", (str(kind),)))
    if action == "AUDIO":
        attach = alarm.get("ATTACH")
        content_prop = alarm.get("X-VCAL10-AUDIOCONTENT")
        content = unescape30(str(content_prop)) if content_prop is not None else (
            str(attach) if attach is not None else "")
        if content:
            fields.append(content)
            if not fields[2]:
                fields[2] = "0"
        name = "AALARM"
    else:
        description = str(alarm.get("DESCRIPTION", ""))
        summary = str(item.get("SUMMARY", ""))
        fields.append("" if description in (summary, "Reminder") else description)
        name = "DALARM"
    while len(fields) > 1 and not fields[-1]:
        fields.pop()
    escaped = ";".join(escape21(f) for f in fields)
    return out.raw_text(name, escaped, params)


def _attendee_20_to_10(name: str, prop: Any, out: _Out) -> ContentLine:
    address = str(prop)
    if address.lower().startswith("mailto:"):
        address = address[7:]
    params: list[Param] = []
    cn = prop.params.get("CN")
    value = f"{cn} <{address}>" if cn else address
    if name == "ORGANIZER":
        params.append(Param("ROLE", ("ORGANIZER",)))
    elif (role := prop.params.get("ROLE")) and str(role).upper() in _ROLE_20:
        params.append(Param("ROLE", (_ROLE_20[str(role).upper()],)))
    if (partstat := prop.params.get("PARTSTAT")) and str(partstat).upper() in _PARTSTAT_20:
        params.append(Param("STATUS", (_PARTSTAT_20[str(partstat).upper()],)))
    if (rsvp := prop.params.get("RSVP")) is not None:
        params.append(Param("RSVP", ("YES" if str(rsvp).upper() == "TRUE" else "NO",)))
    if (expect := prop.params.get("X-VCAL10-EXPECT")) is not None:
        params.append(Param("EXPECT", (str(expect),)))
    return out.text("ATTENDEE", value, params)


def _convert_item_20(item: Any, out: _Out) -> Component:
    kind = str(item.name).upper()
    result = Component(kind)
    props = result.properties
    start = _dt_value(item.get("DTSTART")) if item.get("DTSTART") is not None else None
    end_prop = item.get("DTEND")
    end = _dt_value(end_prop) if end_prop is not None else None
    if end is None and start is not None and item.get("DURATION") is not None and kind == "VEVENT":
        end = start + item.decoded("DURATION")
    if kind == "VEVENT" and isinstance(start, date) and not isinstance(start, datetime):
        allday_end = end if isinstance(end, date) and not isinstance(end, datetime) else (
            start + timedelta(days=1))
        start10, end10 = _allday_pair10(start, allday_end, out.allday)
        props += [ContentLine("DTSTART", start10), ContentLine("DTEND", end10)]
    else:
        if start is not None:
            props.append(ContentLine("DTSTART", out.fmt(start)))
        if end is not None and kind == "VEVENT":
            props.append(ContentLine("DTEND", out.fmt(end)))
    original_status = item.get("X-VCAL10-STATUS")
    status = item.get("STATUS")
    status10 = _status_20_to_10(kind, str(status).upper() if status is not None else None,
                                unescape30(str(original_status)) if original_status else None)
    for name, value in _props(item):
        if name in ("DTSTART", "DTEND", "DURATION", "DTSTAMP", "STATUS", "X-VCAL10-STATUS"):
            continue
        if name in ("UID", "SUMMARY", "DESCRIPTION", "LOCATION", "COMMENT", "CONTACT",
                    "RELATED-TO"):
            params = [Param("LANGUAGE", (str(value.params["LANGUAGE"]),))] \
                if "LANGUAGE" in value.params else []
            props.append(out.text(name, str(value), params))
        elif name == "DUE":
            due = _dt_value(value)
            props.append(ContentLine("DUE", out.fmt(due)))
        elif name in ("CREATED", "LAST-MODIFIED", "COMPLETED"):
            moment = _dt_value(value)
            if not isinstance(moment, datetime):
                moment = datetime.combine(moment, time())
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=out.device or UTC)
            props.append(ContentLine("DCREATED" if name == "CREATED" else name, _fmt_utc(moment)))
        elif name in ("CATEGORIES", "RESOURCES"):
            values = [str(v) for v in getattr(value, "cats", [value])]
            escaped = ";".join(escape21(v) for v in values)
            props.append(out.raw_text(name, escaped))
        elif name in ("PRIORITY", "SEQUENCE"):
            props.append(ContentLine(name, str(int(value))))
        elif name == "CLASS":
            props.append(ContentLine(name, str(value).upper()))
        elif name == "URL":
            props.append(out.raw_text(name, str(value)))
        elif name == "ATTACH" and str(value.params.get("VALUE", "")).upper() == "BINARY":
            out.note_lossy("ATTACH")  # inline binary attachments are not sent to phones
        elif name == "TRANSP":
            mapped = {"OPAQUE": "0", "TRANSPARENT": "1"}.get(str(value).upper())
            if mapped is not None:
                props.append(ContentLine("TRANSP", mapped))
        elif name == "GEO":
            props.append(ContentLine("GEO", f"{value.longitude},{value.latitude}"))
        elif name in ("EXDATE", "RDATE"):
            values10 = [out.fmt(v) for v in _dt_list(value)]
            props.append(ContentLine(name, ";".join(values10)))
        elif name == "RRULE":
            anchor = start if start is not None else date(1970, 1, 1)
            rule = rrule20_to_10(dict(value), anchor, out.fmt)
            if rule is None:
                out.note_lossy("RRULE")
                props.append(out.raw_text("X-ICAL20-RRULE", value.to_ical().decode()))
            else:
                props.append(ContentLine("RRULE", rule))
        elif name in ("ATTENDEE", "ORGANIZER"):
            props.append(_attendee_20_to_10(name, value, out))
        elif name == "X-VCAL10-RRULE":
            if item.get("RRULE") is None:
                props.append(ContentLine("RRULE", unescape30(str(value))))
            else:
                continue
        elif name.startswith("X-VCAL10-"):
            original = name[len("X-VCAL10-"):]
            props.append(out.raw_text(original, verbatim_to_21(str(value)),
                                      _params_from_ical(value)))
        elif name == "RECURRENCE-ID":
            continue
        else:
            # X- properties verbatim; 2.0-only properties (PERCENT-COMPLETE, ...) too.
            raw = value.to_ical().decode() if hasattr(value, "to_ical") else str(value)
            props.append(out.raw_text(name, verbatim_to_21(raw), _params_from_ical(value)))
    if status10 is not None:
        props.append(ContentLine("STATUS", status10))
    for alarm in item.walk("VALARM"):
        line = _alarm_20_to_10(alarm, item, out)
        if line is not None:
            props.append(line)
    return result


def _params_from_ical(value: Any) -> list[Param]:
    params = getattr(value, "params", None) or {}
    return [Param(str(k).upper(), (str(v),)) for k, v in params.items()
            if str(k).upper() not in ("VALUE", "ENCODING", "CHARSET")]


def _target_zone(cal: Any, device: tzinfo | None) -> tzinfo | None:
    if device is not None:
        return device
    for item in cal.walk():
        if str(item.name).upper() in _ITEMS and item.get("DTSTART") is not None:
            value = _dt_value(item.get("DTSTART"))
            if isinstance(value, datetime) and value.tzinfo is not None \
                    and value.utcoffset() is not None and value.tzinfo is not UTC:
                return value.tzinfo
    return None


def ical20_to_vcal10(
    text: str,
    *,
    tz_mode: TzMode = "utc",
    device_tz: str | None = None,
    charset: str = "UTF-8",
    fold: bool = True,
    allday: AllDayStyle = "midnight",
    alarm_utc: bool = True,
) -> Conversion:
    """Convert iCalendar 2.0 events/tasks to one vCalendar 1.0 object for a phone.

    Args:
        text: iCalendar 2.0 (VEVENTs and/or VTODOs; VTIMEZONEs are used for
            resolving TZIDs, VJOURNALs and recurrence exceptions cannot be sent
            and are reported as lossy).
        tz_mode: ``"utc"`` writes UTC times and no TZ/DAYLIGHT; ``"local"`` writes
            local times of ``device_tz`` (else of the first item's zone) with
            TZ/DAYLIGHT.
        device_tz: the phone's IANA zone (floating times are read in it).
        charset: the phone's charset for non-ASCII text.
        fold: ``False`` writes each property on one physical line (Motorola V3).
        allday: ``"midnight"``, ``"date"`` or ``"epoc"`` (P900) all-day style.
        alarm_utc: write alarm times in UTC even in local mode (Nokia, Sony
            Ericsson).

    Returns:
        The vCalendar 1.0 text and what could not be represented (properties
        that lost characters to ``charset``, RRULEs kept as X-ICAL20-RRULE,
        dropped alarms, exceptions or journals).

    Raises:
        FormatError: the input is not iCalendar, the charset or zone is unknown.
    """
    if python_codec(charset) is None:
        raise FormatError(f"unknown charset {charset!r}")
    device = get_zone(device_tz) if device_tz else None
    if device_tz and device is None:
        raise FormatError(f"unknown time zone {device_tz!r}")
    cal = _parse_ical(text)
    target = _target_zone(cal, device) if tz_mode == "local" else None
    out = _Out(tz_mode, device, target, allday, alarm_utc, charset)
    root = Component("VCALENDAR", [ContentLine("VERSION", "1.0")])
    for name, value in _props(cal):
        if name.startswith("X-") and name != "X-WR-TIMEZONE":
            root.properties.append(out.raw_text(name, verbatim_to_21(value.to_ical().decode()
                                                if hasattr(value, "to_ical") else str(value))))
    for comp in cal.walk():
        name = str(comp.name).upper()
        if name == "VJOURNAL":
            out.note_lossy("VJOURNAL")
        if name not in _ITEMS:
            continue
        if comp.get("RECURRENCE-ID") is not None:
            out.note_lossy("RECURRENCE-ID")
            continue
        root.components.append(_convert_item_20(comp, out))
    if not root.components:
        raise FormatError("no VEVENT or VTODO in iCalendar")
    if tz_mode == "local" and target is not None and out.years:
        years = sorted(out.years)
        tz_props = [ContentLine(n, v) for n, v in vcal_tz_properties(target, years)]
        root.properties[1:1] = tz_props
    body = serialize_component(root, style="2.1", fold=fold)
    return Conversion(body, tuple(out.lossy))
