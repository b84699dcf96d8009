"""Time zones between vCalendar 1.0 (``TZ``/``DAYLIGHT``) and iCalendar 2.0 (``VTIMEZONE``).

vCalendar 1.0 describes a zone only by its offsets: ``TZ:+01:00`` is the standard
offset and each ``DAYLIGHT:TRUE;+02:00;<begin>;<end>;<std name>;<dst name>`` one
daylight-saving period (``DAYLIGHT:FALSE``: none). iCalendar 2.0 names the zone
(``TZID``) and describes it with a ``VTIMEZONE``. Broken TZ information made Nokia
phones reject updates and Sony Ericsson phones repeat an event a day too long
(SyncEvolution NEWS, BMC #9600/#10092), and events moved by an hour after DST
changes (buteo-sync-plugin-caldav#50), so this module is careful:

* :func:`resolve_zone` maps declared offsets to an IANA zone by checking the
  candidate's real offsets around every declared DST boundary (and in the middle
  of each period). Candidates are the configured device zone first, then
  :data:`CANDIDATE_ZONES` in order. A zone without DST maps to the device zone if
  it agrees at the item's times, to ``UTC`` or ``Etc/GMT-N`` for whole hours, or to
  a candidate without DST. When nothing matches, a :class:`DeclaredZone` tzinfo
  built from the declaration itself is used, so instants are still right.
* :func:`build_vtimezone` writes a complete, RFC 5545 conforming VTIMEZONE
  (``DTSTART`` in local time *before* each onset, yearly ``RRULE`` where the rule
  is regular, ``RDATE`` otherwise) for any tzinfo, covering the given years.
  (icalendar's own ``Timezone.from_tzinfo`` writes the onset in the local time
  *after* the change, which other readers interpret an hour off.)
* :func:`vcal_tz_properties` goes the other way for phones that want local times.

The candidate list is embedded (not read from the installed tz database) so the
choice is the same on every machine. No I/O beyond zoneinfo's own data, no clock.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar

from syncmld.formats.errors import FormatError

__all__ = [
    "CANDIDATE_ZONES",
    "DaylightPeriod",
    "DeclaredZone",
    "ResolvedZone",
    "Transition",
    "VcalTimezone",
    "build_vtimezone",
    "format_utc_offset",
    "get_zone",
    "parse_utc_offset",
    "resolve_zone",
    "transitions",
    "vcal_tz_properties",
]

# Ordered by preference: when several zones share the same rules the first one wins
# (pass ``device_tz`` to pick the user's own). One or more per distinct rule set of
# recent years; major cities first.
CANDIDATE_ZONES: tuple[str, ...] = (
    # Europe
    "Europe/Berlin", "Europe/London", "Europe/Helsinki", "Europe/Moscow", "Europe/Lisbon",
    "Europe/Dublin", "Europe/Paris", "Europe/Madrid", "Europe/Rome", "Europe/Amsterdam",
    "Europe/Istanbul", "Europe/Minsk", "Europe/Kaliningrad", "Europe/Samara",
    "Europe/Volgograd", "Atlantic/Reykjavik", "Atlantic/Azores", "Atlantic/Canary",
    "Europe/Chisinau",
    # Americas
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
    "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu", "America/Adak",
    "America/Halifax", "America/St_Johns", "America/Puerto_Rico", "America/Regina",
    "America/Mexico_City", "America/Cancun", "America/Havana", "America/Bogota",
    "America/Lima", "America/Caracas", "America/La_Paz", "America/Santiago",
    "America/Asuncion", "America/Sao_Paulo", "America/Argentina/Buenos_Aires",
    "America/Montevideo", "America/Noronha", "America/Nuuk", "America/Miquelon",
    "America/Scoresbysund", "America/Port-au-Prince", "America/Grand_Turk",
    "America/Whitehorse", "America/Tijuana", "America/Ojinaga", "America/Chihuahua",
    "America/Mazatlan", "Atlantic/Cape_Verde", "Atlantic/South_Georgia",
    "America/Punta_Arenas", "Pacific/Easter",
    # Africa and the Middle East
    "Africa/Lagos", "Africa/Johannesburg", "Africa/Cairo", "Africa/Nairobi",
    "Africa/Abidjan", "Africa/Casablanca", "Africa/El_Aaiun", "Africa/Windhoek",
    "Africa/Juba", "Africa/Tripoli", "Asia/Jerusalem", "Asia/Gaza", "Asia/Beirut",
    "Asia/Amman", "Asia/Damascus", "Asia/Baghdad", "Asia/Riyadh", "Asia/Tehran",
    "Asia/Dubai", "Asia/Kabul",
    # Asia
    "Asia/Karachi", "Asia/Tashkent", "Asia/Yekaterinburg", "Asia/Kolkata",
    "Asia/Colombo", "Asia/Kathmandu", "Asia/Dhaka", "Asia/Almaty", "Asia/Omsk",
    "Asia/Yangon", "Asia/Bangkok", "Asia/Jakarta", "Asia/Novosibirsk",
    "Asia/Krasnoyarsk", "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Singapore",
    "Asia/Taipei", "Asia/Manila", "Asia/Irkutsk", "Asia/Ulaanbaatar", "Asia/Pyongyang",
    "Asia/Tokyo", "Asia/Seoul", "Asia/Yakutsk", "Asia/Vladivostok", "Asia/Magadan",
    "Asia/Sakhalin", "Asia/Kamchatka", "Asia/Anadyr",
    # Oceania
    "Australia/Sydney", "Australia/Brisbane", "Australia/Adelaide", "Australia/Darwin",
    "Australia/Perth", "Australia/Eucla", "Australia/Lord_Howe", "Pacific/Auckland",
    "Pacific/Chatham", "Pacific/Norfolk", "Pacific/Fiji", "Pacific/Tongatapu",
    "Pacific/Apia", "Pacific/Kiritimati", "Pacific/Noumea", "Pacific/Guam",
    "Pacific/Port_Moresby", "Pacific/Pago_Pago", "Pacific/Tahiti", "Pacific/Marquesas",
    "Pacific/Gambier", "Pacific/Pitcairn", "Pacific/Tarawa", "Pacific/Niue",
)

_ONE_DAY = timedelta(days=1)
_SLACK = timedelta(minutes=61)
_OFFSET_RE = re.compile(r"^([+-])(\d{1,2})(?::?(\d{2}))?(?::?(\d{2}))?$")
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


# ---------------------------------------------------------------------------
# Offsets
# ---------------------------------------------------------------------------


def parse_utc_offset(text: str) -> timedelta:
    """Parse ``+01``, ``+0100``, ``+01:00``, ``-0530``, ``Z`` into a timedelta.

    Raises:
        FormatError: not an offset.
    """
    value = text.strip()
    if value.upper() in ("Z", "UTC", "GMT"):
        return timedelta(0)
    match = _OFFSET_RE.match(value)
    if match is None:
        raise FormatError(f"bad UTC offset {text!r}")
    sign, hours, minutes, seconds = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0), seconds=int(seconds or 0))
    return -delta if sign == "-" else delta


def format_utc_offset(offset: timedelta, *, colon: bool = True) -> str:
    """``timedelta(hours=1)`` -> ``+01:00`` (or ``+0100`` without ``colon``)."""
    total = int(offset.total_seconds())
    sign = "-" if total < 0 else "+"
    minutes = abs(total) // 60
    sep = ":" if colon else ""
    return f"{sign}{minutes // 60:02d}{sep}{minutes % 60:02d}"


@lru_cache(maxsize=256)
def get_zone(name: str) -> tzinfo | None:
    """The zoneinfo zone called ``name`` (``UTC`` included), or ``None`` if unknown."""
    if name.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _offset_at(zone: tzinfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    return offset if offset is not None else timedelta(0)


# ---------------------------------------------------------------------------
# What vCalendar 1.0 declares
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DaylightPeriod:
    """One ``DAYLIGHT:TRUE`` property: DST with ``offset`` from ``start`` to ``end`` (UTC)."""

    offset: timedelta
    start: datetime
    end: datetime
    std_name: str = ""
    dst_name: str = ""


def _parse_vcal_instant(text: str, local_offset: timedelta) -> datetime:
    value = text.strip().replace("-", "").replace(":", "")
    utc = value.upper().endswith("Z")
    value = value.rstrip("Zz")
    try:
        naive = datetime.strptime(value, "%Y%m%dT%H%M%S")
    except ValueError:
        try:
            naive = datetime.strptime(value, "%Y%m%d")
        except ValueError:
            raise FormatError(f"bad DAYLIGHT date-time {text!r}") from None
    if utc:
        return naive.replace(tzinfo=UTC)
    return (naive - local_offset).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class VcalTimezone:
    """The ``TZ`` and ``DAYLIGHT`` properties of a vCalendar 1.0 object.

    ``daylight`` is ``None`` when there was no DAYLIGHT property at all, ``False``
    for ``DAYLIGHT:FALSE`` and ``True`` when DST periods were declared.
    """

    std_offset: timedelta | None = None
    periods: tuple[DaylightPeriod, ...] = ()
    daylight: bool | None = None

    @classmethod
    def from_properties(cls, tz: str | None, daylights: Sequence[str]) -> VcalTimezone:
        """Build from the raw TZ value and DAYLIGHT values.

        A non-Z DAYLIGHT begin is read as local standard time, a non-Z end as local
        daylight time (the vCalendar 1.0 example; Nokia sends local times).

        Malformed values are skipped rather than failing the whole item.
        """
        try:
            std = parse_utc_offset(tz) if tz and tz.strip() else None
        except FormatError:
            std = None  # a broken TZ must not cost the item; its times stay as sent
        periods: list[DaylightPeriod] = []
        flag: bool | None = None
        for raw in daylights:
            parts = [p.strip() for p in raw.split(";")]
            if parts[0].upper() != "TRUE":
                flag = bool(flag)
                continue
            flag = True
            if len(parts) < 4 or not parts[1]:
                continue
            try:
                offset = parse_utc_offset(parts[1])
                base = std if std is not None else offset - timedelta(hours=1)
                start = _parse_vcal_instant(parts[2], base)
                end = _parse_vcal_instant(parts[3], offset)
            except FormatError:
                continue  # one unreadable DST period: use the others
            names = [*parts[4:6], "", ""]
            periods.append(DaylightPeriod(offset, start, end, names[0], names[1]))
        return cls(std, tuple(sorted(periods, key=lambda p: p.start)), flag)

    @property
    def declared(self) -> bool:
        """True if the object had TZ or DAYLIGHT information."""
        return self.std_offset is not None or bool(self.periods)

    @property
    def standard(self) -> timedelta:
        """The standard offset (inferred as DST - 1h when only DAYLIGHT was given)."""
        if self.std_offset is not None:
            return self.std_offset
        if self.periods:
            return self.periods[0].offset - timedelta(hours=1)
        return timedelta(0)

    @property
    def key(self) -> str:
        """A stable TZID for a zone that matched no IANA zone."""
        name = f"vCalendar/UTC{format_utc_offset(self.standard)}"
        if self.periods:
            name += f"/DST{format_utc_offset(self.periods[0].offset)}"
        return name


class DeclaredZone(tzinfo):
    """A tzinfo that follows a :class:`VcalTimezone` literally (fallback zone)."""

    def __init__(self, declared: VcalTimezone) -> None:
        super().__init__()
        self._declared = declared
        self._std = declared.standard

    def _period_local(self, naive: datetime) -> DaylightPeriod | None:
        for period in self._declared.periods:
            start = (period.start + self._std).replace(tzinfo=None)
            end = (period.end + period.offset).replace(tzinfo=None)
            if start <= naive < end:
                return period
        return None

    def utcoffset(self, dt: datetime | None) -> timedelta:
        """Offset at local time ``dt``."""
        if dt is None:
            return self._std
        period = self._period_local(dt.replace(tzinfo=None))
        return period.offset if period else self._std

    def dst(self, dt: datetime | None) -> timedelta:
        """DST amount at local time ``dt``."""
        return self.utcoffset(dt) - self._std

    def tzname(self, dt: datetime | None) -> str:
        """Declared name (or ``UTC+hh:mm``) at local time ``dt``."""
        period = self._period_local(dt.replace(tzinfo=None)) if dt else None
        if period is not None:
            return period.dst_name or f"UTC{format_utc_offset(period.offset)}"
        names = [p.std_name for p in self._declared.periods if p.std_name]
        return names[0] if names else f"UTC{format_utc_offset(self._std)}"

    def fromutc(self, dt: datetime) -> datetime:
        """UTC (attached to this zone) -> local time."""
        naive = dt.replace(tzinfo=None)
        for period in self._declared.periods:
            if period.start.replace(tzinfo=None) <= naive < period.end.replace(tzinfo=None):
                return dt + period.offset
        return dt + self._std

    def __repr__(self) -> str:
        return f"DeclaredZone({self._declared.key!r})"


# ---------------------------------------------------------------------------
# Matching declared offsets to a zone
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvedZone:
    """The zone to use for an item: its TZID, tzinfo and whether it is an IANA zone."""

    tzid: str
    zone: tzinfo
    iana: bool

    @property
    def is_utc(self) -> bool:
        """True for UTC itself (times are written with ``Z``, no VTIMEZONE)."""
        return self.zone is UTC


def _matches_daylight(zone: tzinfo, declared: VcalTimezone) -> bool:
    std = declared.std_offset
    for period in declared.periods:
        checks = [
            (period.start + _SLACK, period.offset),
            (period.end - _SLACK, period.offset),
            (period.start + (period.end - period.start) / 2, period.offset),
        ]
        if std is not None:
            checks += [(period.start - _SLACK, std), (period.end + _SLACK, std)]
        for instant, expected in checks:
            if _offset_at(zone, instant) != expected:
                return False
        if std is None and _offset_at(zone, period.start - _SLACK) == period.offset:
            return False
    return True


def _has_transitions(zone: tzinfo, years: Iterable[int]) -> bool:
    return any(transitions(zone, datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC))
               for y in years)


def _localize(naive_or_aware: datetime, zone: tzinfo) -> datetime:
    if naive_or_aware.tzinfo is None:
        return naive_or_aware.replace(tzinfo=zone)
    return naive_or_aware.astimezone(zone)


def resolve_zone(
    declared: VcalTimezone,
    *,
    device_tz: str | None = None,
    samples: Sequence[datetime] = (),
) -> ResolvedZone | None:
    """Pick the zone for a vCalendar 1.0 object.

    Args:
        declared: the object's TZ/DAYLIGHT information.
        device_tz: the IANA zone configured for the phone, tried first.
        samples: the item's date-times (naive = phone local time), used to check
            fixed-offset declarations and to know which years matter.

    Returns:
        ``None`` when nothing is declared and no device zone is configured
        (times stay floating or UTC as sent).

    Raises:
        FormatError: ``device_tz`` is not a known zone.
    """
    device = get_zone(device_tz) if device_tz else None
    if device_tz and device is None:
        raise FormatError(f"unknown time zone {device_tz!r}")
    device_resolved = ResolvedZone(device_tz, device, True) if device and device_tz else None
    if not declared.declared:
        return device_resolved
    years = sorted({s.year for s in samples}) or sorted(
        {p.start.year for p in declared.periods}
    )
    if declared.periods:
        names = ([device_tz] if device_tz else []) + list(CANDIDATE_ZONES)
        for name in names:
            zone = get_zone(name)
            if zone is not None and zone is not UTC and _matches_daylight(zone, declared):
                return ResolvedZone(name, zone, True)
        return ResolvedZone(declared.key, DeclaredZone(declared), False)
    offset = declared.standard
    if device is not None and device_tz:
        agree = [
            _localize(s, device).utcoffset() == offset for s in samples
        ] or [device.utcoffset(datetime(y, 1, 1)) == offset for y in years]
        if agree and all(agree):
            return device_resolved
    if offset == timedelta(0):
        return ResolvedZone("UTC", UTC, True)
    seconds = int(offset.total_seconds())
    if seconds % 3600 == 0 and abs(seconds) <= 12 * 3600:
        hours = seconds // 3600
        # IANA's Etc/GMT zones have inverted signs: UTC+1 is Etc/GMT-1.
        name = f"Etc/GMT{-hours:+d}"
        zone = get_zone(name)
        if zone is not None:
            return ResolvedZone(name, zone, True)
    for name in CANDIDATE_ZONES:
        zone = get_zone(name)
        if (zone is not None and zone is not UTC and years
                and not _has_transitions(zone, years)
                and _offset_at(zone, datetime(years[0], 1, 1, tzinfo=UTC)) == offset):
            return ResolvedZone(name, zone, True)
    return ResolvedZone(declared.key, DeclaredZone(declared), False)


# ---------------------------------------------------------------------------
# Transitions and VTIMEZONE
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    """An offset change: at ``at`` (UTC) the offset goes from ``before`` to ``after``."""

    at: datetime
    before: timedelta
    after: timedelta
    dst: bool
    name: str


def transitions(zone: tzinfo, start: datetime, end: datetime) -> list[Transition]:
    """All offset changes of ``zone`` in ``[start, end)`` (aware datetimes)."""
    out: list[Transition] = []
    cursor = start
    offset = _offset_at(zone, cursor)
    while cursor < end:
        step = min(cursor + _ONE_DAY, end)
        new = _offset_at(zone, step)
        if new != offset:
            low, high = cursor, step
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                mid = mid.replace(microsecond=0)
                if mid <= low:
                    mid = low + timedelta(seconds=1)
                if _offset_at(zone, mid) == offset:
                    low = mid
                else:
                    high = mid
            local = high.astimezone(zone)
            dst = local.dst()
            out.append(Transition(high, offset, new, bool(dst), local.tzname() or ""))
            offset = new
        cursor = step
    return out


def _rule_signatures(local: datetime) -> set[str]:
    """BYDAY forms that describe the weekday of ``local``'s date in its month."""
    weekday = _WEEKDAYS[local.weekday()]
    nth = (local.day - 1) // 7 + 1
    sigs = {f"{nth}{weekday}"}
    if local.day + 7 > calendar.monthrange(local.year, local.month)[1]:
        sigs.add(f"-1{weekday}")
    return sigs


def _standard_name_offset(zone: tzinfo, year: int) -> tuple[timedelta, str]:
    for month in (1, 7):
        local = datetime(year, month, 1, 12).replace(tzinfo=zone)
        if not local.dst():
            return local.utcoffset() or timedelta(0), local.tzname() or ""
    # DST all year (America/Santiago 2015): standard = current offset - DST amount.
    local = datetime(year, 1, 1, 12).replace(tzinfo=zone)
    return (local.utcoffset() or timedelta(0)) - (local.dst() or timedelta(0)), ""


def build_vtimezone(tzid: str, zone: tzinfo, first_year: int, last_year: int) -> icalendar.Timezone:
    """A complete VTIMEZONE for ``zone`` valid at least from ``first_year`` to ``last_year``.

    Each kind of change becomes one STANDARD or DAYLIGHT sub-component whose
    ``DTSTART`` is the first onset in local time before the change; a change that
    happens every year on the same "n-th/last weekday of month" gets a yearly
    ``RRULE``, others list their onsets in ``RDATE``. A zone without changes gets
    one STANDARD sub-component.
    """
    start = datetime(first_year - 1, 1, 1, tzinfo=UTC)
    end = datetime(last_year + 2, 1, 1, tzinfo=UTC)
    changes = transitions(zone, start, end)
    vtz = icalendar.Timezone()
    vtz.add("TZID", tzid)
    if not changes:
        offset, name = _standard_name_offset(zone, first_year)
        only = icalendar.TimezoneStandard()
        only.add("DTSTART", datetime(1970, 1, 1))
        only.add("TZOFFSETFROM", offset)
        only.add("TZOFFSETTO", offset)
        if name:
            only.add("TZNAME", name)
        vtz.add_component(only)
        return vtz
    groups: dict[tuple[bool, timedelta, timedelta, str], list[datetime]] = {}
    for change in changes:
        local_before = (change.at + change.before).replace(tzinfo=None)
        groups.setdefault((change.dst, change.before, change.after, change.name), []).append(
            local_before
        )
    years = range(first_year - 1, last_year + 2)
    for (dst, before, after, name), onsets in groups.items():
        sub: icalendar.TimezoneDaylight | icalendar.TimezoneStandard = (
            icalendar.TimezoneDaylight() if dst else icalendar.TimezoneStandard()
        )
        sub.add("DTSTART", onsets[0])
        sub.add("TZOFFSETFROM", before)
        sub.add("TZOFFSETTO", after)
        if name:
            sub.add("TZNAME", name)
        common = set.intersection(*(_rule_signatures(o) for o in onsets))
        regular = (
            len(onsets) == len(years)
            and [o.year for o in onsets] == list(years)
            and len({(o.month, o.time()) for o in onsets}) == 1
            and common
        )
        if regular:
            byday = sorted(common, key=lambda s: (not s.startswith("-"), s))[0]
            sub.add("RRULE", {"FREQ": "YEARLY", "BYMONTH": onsets[0].month, "BYDAY": byday})
        elif len(onsets) > 1:
            sub.add("RDATE", onsets[1:])
        vtz.add_component(sub)
    return vtz


# ---------------------------------------------------------------------------
# iCalendar zone -> vCalendar 1.0 TZ/DAYLIGHT
# ---------------------------------------------------------------------------


def _vcal_local(instant: datetime, offset: timedelta) -> str:
    return (instant + offset).strftime("%Y%m%dT%H%M%S")


def vcal_tz_properties(zone: tzinfo, years: Sequence[int]) -> list[tuple[str, str]]:
    """``TZ`` and ``DAYLIGHT`` values describing ``zone`` during ``years``.

    Each DST period overlapping the years gives one
    ``DAYLIGHT:TRUE;+02:00;<begin, local standard time>;<end, local DST>;STD;DST``;
    a zone without DST gives ``DAYLIGHT:FALSE``.
    """
    first, last = min(years), max(years)
    std, _name = _standard_name_offset(zone, first)
    window_start = datetime(first, 1, 1, tzinfo=UTC)
    window_end = datetime(last + 1, 1, 1, tzinfo=UTC)
    year = timedelta(days=366)
    changes = transitions(zone, window_start - year, window_end + year)
    props: list[tuple[str, str]] = [("TZ", format_utc_offset(std))]
    daylight: list[str] = []
    for i, change in enumerate(changes):
        if not change.dst:
            continue
        following = changes[i + 1] if i + 1 < len(changes) else None
        if following is None or following.dst:
            continue
        if following.at < window_start or change.at >= window_end:
            continue
        std_name = following.name
        daylight.append(
            ";".join(
                [
                    "TRUE",
                    format_utc_offset(change.after),
                    _vcal_local(change.at, change.before),
                    _vcal_local(following.at, following.before),
                    std_name,
                    change.name,
                ]
            )
        )
    props += [("DAYLIGHT", value) for value in daylight] or [("DAYLIGHT", "FALSE")]
    return props
