"""SIF: the XML item formats of Funambol's (formerly Sync4j's) Outlook and PocketPC clients.

Four flat XML documents, one element per field:

=================  =========================  ======================================
content type       root element               desktop form
=================  =========================  ======================================
text/x-s4j-sifc    ``<contact>``              vCard 3.0
text/x-s4j-sife    ``<appointment>``          iCalendar 2.0 VEVENT
text/x-s4j-sift    ``<task>``                 iCalendar 2.0 VTODO
text/x-s4j-sifn    ``<note>``                 iCalendar 2.0 VJOURNAL
=================  =========================  ======================================

The clients put the document in ``<Data>`` either as plain XML or base64
(``<Format>b64</Format>``; the Horde recordings also show data labelled b64
that is plain XML), so :func:`decode_payload` accepts both.

Fields with a standard counterpart are mapped (names, numbers, addresses,
times, recurrence, reminders...).  Every other non-empty field survives the
trip as an ``X-SIF-<Field>`` property and is written back under its own name,
so nothing a user typed on the device is dropped.  Empty elements mean "no
value" and are not kept.

Parsing is safe against hostile input: no DTD loading, no entity expansion,
no network access.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import icalendar
from lxml import etree

from syncmld.formats.errors import FormatError
from syncmld.formats.timezones import get_zone
from syncmld.formats.vcard import (
    Component,
    ContentLine,
    Param,
    escape30,
    parse_components,
    serialize_component,
    split_escaped,
    unescape30,
    vcard21_to_30,
)

__all__ = [
    "SIF_TYPES",
    "decode_payload",
    "encode_payload",
    "ical20_to_sif",
    "sif_to_ical20",
    "sif_to_vcard30",
    "vcard30_to_sif",
]

SIF_TYPES = {
    "text/x-s4j-sifc": "contact",
    "text/x-s4j-sife": "appointment",
    "text/x-s4j-sift": "task",
    "text/x-s4j-sifn": "note",
}
"""SIF content type -> root element name."""

_ICAL: Any = icalendar
_PRODID = "-//syncmld//syncmld formats//EN"
_X = "X-SIF-"


# ---------------------------------------------------------------------------
# Transport: plain or base64, safe parsing
# ---------------------------------------------------------------------------


def decode_payload(data: str) -> str:
    """The SIF XML in ``data``, which is either XML or base64 of UTF-8 XML.

    Raises:
        FormatError: neither.
    """
    text = data.strip().lstrip("\ufeff")
    if text.startswith("<"):
        return text
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("SIF data is neither XML nor base64") from None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        decoded = raw.decode("latin-1")
    decoded = decoded.strip().lstrip("\ufeff")
    if not decoded.startswith("<"):
        raise FormatError("base64 SIF data does not hold XML")
    return decoded


def encode_payload(xml: str, *, b64: bool) -> str:
    """``xml`` as it goes into ``<Data>``: base64 of its UTF-8 bytes when ``b64``."""
    return base64.b64encode(xml.encode("utf-8")).decode("ascii") if b64 else xml


_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
    huge_tree=False, remove_blank_text=False,
)


def _parse(data: str, root_name: str) -> list[tuple[str, str]]:
    """The (field, text) pairs of a SIF document, in order, empty ones left out."""
    xml = decode_payload(data)
    if "<!DOCTYPE" in xml.upper() or "<!ENTITY" in xml.upper():
        raise FormatError("SIF documents may not declare a DTD or entities")
    xml = re.sub(r"^<\?xml[^>]*\?>", "", xml).strip()
    try:
        root = etree.fromstring(xml.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise FormatError(f"SIF document is not well-formed XML: {exc}") from None
    if etree.QName(root).localname.lower() != root_name:
        raise FormatError(f"expected a SIF <{root_name}>, got <{etree.QName(root).localname}>")
    out: list[tuple[str, str]] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        if len(child):
            # Nested lists (recurrence <Exceptions>): keep the dates, comma-joined.
            values = [("".join(x.itertext())).strip() for x in child if isinstance(x.tag, str)]
            text = ",".join(v for v in values if v)
        else:
            text = child.text or ""
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if text.strip():
            out.append((name, text))
    return out


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _write(root_name: str, fields: list[tuple[str, str]]) -> str:
    root = etree.Element(root_name)
    for name, value in fields:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name):
            continue
        el = etree.SubElement(root, name)
        el.text = _XML_ILLEGAL.sub("", value)  # control characters cannot be sent in XML
    return '<?xml version="1.0" encoding="UTF-8"?>' + etree.tostring(root, encoding="unicode")


def _x_name(field: str) -> str:
    return _X + field.upper()


def _field_from_x(name: str, known: dict[str, str]) -> str | None:
    """The SIF field an ``X-SIF-`` property stands for (its original case if seen)."""
    key = name[len(_X):].upper()
    return known.get(key, key.title().replace("_", ""))


# ---------------------------------------------------------------------------
# Contacts
# ---------------------------------------------------------------------------

# SIF telephone field -> vCard TEL types.  Pairs (Business/Business2) fill in order.
_TELS: list[tuple[str, tuple[str, ...]]] = [
    ("BusinessTelephoneNumber", ("WORK", "VOICE")),
    ("Business2TelephoneNumber", ("WORK", "VOICE")),
    ("HomeTelephoneNumber", ("HOME", "VOICE")),
    ("Home2TelephoneNumber", ("HOME", "VOICE")),
    ("MobileTelephoneNumber", ("CELL",)),
    ("BusinessFaxNumber", ("WORK", "FAX")),
    ("HomeFaxNumber", ("HOME", "FAX")),
    ("OtherFaxNumber", ("FAX",)),
    ("PagerNumber", ("PAGER",)),
    ("CarTelephoneNumber", ("CAR",)),
    ("PrimaryTelephoneNumber", ("PREF", "VOICE")),
    ("CompanyMainTelephoneNumber", ("WORK", "X-COMPANY")),
    ("AssistantTelephoneNumber", ("X-ASSISTANT",)),
    ("RadioTelephoneNumber", ("X-RADIO",)),
    ("CallbackTelephoneNumber", ("X-CALLBACK",)),
    ("OtherTelephoneNumber", ("VOICE",)),
]
_ADR_PARTS = ("PostOfficeBox", "", "Street", "City", "State", "PostalCode", "Country")
# SIF address prefix -> ADR type ("WorkAddress" is Horde's spelling of "BusinessAddress").
_ADRS = [("HomeAddress", "HOME"), ("BusinessAddress", "WORK"), ("OtherAddress", "X-OTHER")]
_N_PARTS = ("LastName", "FirstName", "MiddleName", "Title", "Suffix")
_SIMPLE_CONTACT = {
    "JobTitle": "TITLE",
    "Body": "NOTE",
    "NickName": "NICKNAME",
    "WebPage": "URL",
    "Spouse": "X-SPOUSE",
    "Children": "X-CHILDREN",
    "AssistantName": "X-ASSISTANT",
    "Anniversary": "X-ANNIVERSARY",
    "Birthday": "BDAY",
    "ManagerName": "X-MANAGER",
}
_EMAILS = ("Email1Address", "Email2Address", "Email3Address")
_HANDLED_CONTACT = {
    *(_t for _t, _ in _TELS), *_N_PARTS, *_SIMPLE_CONTACT, *_EMAILS,
    "FileAs", "CompanyName", "Department", "Categories", "Photo",
}


def _sif_date(value: str) -> str:
    """A SIF date (``2007-01-01``, ``20070101``, ``2007-01-01T00:00:00``) as ``YYYY-MM-DD``."""
    digits = re.sub(r"[^0-9]", "", value)[:8]
    if len(digits) != 8:
        return value.strip()
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"


def sif_to_vcard30(data: str) -> str:
    """Convert a SIF ``<contact>`` (plain or base64) to UTF-8 vCard 3.0.

    Raises:
        FormatError: not a SIF contact.
    """
    fields = _parse(data, "contact")
    got: dict[str, str] = {}
    order: list[str] = []
    for name, value in fields:
        key = "BusinessAddress" + name[len("WorkAddress"):] if name.startswith(
            "WorkAddress") else name
        if key not in got:
            order.append(key)
        got[key] = value
    props: list[ContentLine] = [ContentLine("VERSION", "3.0")]
    n_parts = [got.get(p, "").strip() for p in _N_PARTS]
    fn = got.get("FileAs", "").strip() or " ".join(
        p for p in (n_parts[3], n_parts[1], n_parts[2], n_parts[0], n_parts[4]) if p)
    if not fn:
        fn = got.get("CompanyName", "").strip() or got.get("Email1Address", "").strip()
    props.append(ContentLine("FN", escape30(fn)))
    props.append(ContentLine("N", ";".join(escape30(p) for p in n_parts)))
    if got.get("CompanyName") or got.get("Department"):
        props.append(ContentLine("ORG", escape30(got.get("CompanyName", "").strip()) + (
            ";" + escape30(got["Department"].strip()) if got.get("Department") else "")))
    for i, key in enumerate(_EMAILS):
        if got.get(key, "").strip():
            types: tuple[str, ...] = ("INTERNET", "PREF") if i == 0 else ("INTERNET",)
            props.append(ContentLine("EMAIL", escape30(got[key].strip()),
                                     (Param("TYPE", types),)))
    for key, types in _TELS:
        if got.get(key, "").strip():
            props.append(ContentLine("TEL", escape30(got[key].strip()),
                                     (Param("TYPE", types),)))
    for prefix, adr_type in _ADRS:
        parts = [got.get(prefix + p, "").strip() if p else "" for p in _ADR_PARTS]
        if any(parts):
            props.append(ContentLine("ADR", ";".join(escape30(p) for p in parts),
                                     (Param("TYPE", (adr_type,)),)))
    for key, prop in _SIMPLE_CONTACT.items():
        if got.get(key, "").strip():
            value = got[key].strip() if key != "Body" else got[key]
            if key in ("Birthday", "Anniversary"):
                value = _sif_date(value)
            props.append(ContentLine(prop, escape30(value)))
    if got.get("Categories", "").strip():
        cats = [c.strip() for c in re.split(r"[;,]", got["Categories"]) if c.strip()]
        props.append(ContentLine("CATEGORIES", ",".join(escape30(c) for c in cats)))
    if got.get("Photo", "").strip():
        props.append(ContentLine("PHOTO", "".join(got["Photo"].split()),
                                 (Param("ENCODING", ("b",)), Param("TYPE", ("JPEG",)))))
    for key in order:
        if key in _HANDLED_CONTACT or any(key.startswith(p) for p, _ in _ADRS):
            continue
        props.append(ContentLine(_x_name(key), escape30(got[key]),
                                 (Param("X-SIF-NAME", (key,)),)))
    return serialize_component(Component("VCARD", props, []), style="3.0")


def _types_of(line: ContentLine) -> frozenset[str]:
    return frozenset(line.types)


def vcard30_to_sif(text: str) -> str:
    """Convert one vCard (3.0, or 2.1) to a SIF ``<contact>`` document (plain XML).

    Raises:
        FormatError: not a vCard.
    """
    cards = [c for c in parse_components(text) if c.name == "VCARD"]
    if not cards:
        raise FormatError("no VCARD to convert to SIF")
    card = cards[0]
    if card.version == "2.1":
        card = next(c for c in parse_components(vcard21_to_30(text)) if c.name == "VCARD")
    out: list[tuple[str, str]] = []

    def text_of(line: ContentLine) -> str:
        return unescape30(line.decoded())

    fn = card.get("FN")
    if fn is not None:
        out.append(("FileAs", text_of(fn)))
    n = card.get("N")
    if n is not None:
        parts = [unescape30(p) for p in split_escaped(n.decoded(), ";")]
        for key, value in zip(_N_PARTS, parts, strict=False):
            if value:
                out.append((key, value))
    org = card.get("ORG")
    if org is not None:
        parts = [unescape30(p) for p in split_escaped(org.decoded(), ";")]
        if parts and parts[0]:
            out.append(("CompanyName", parts[0]))
        if len(parts) > 1 and parts[1]:
            out.append(("Department", parts[1]))
    for key, line in zip(_EMAILS, card.get_all("EMAIL"), strict=False):
        out.append((key, text_of(line)))
    used: set[str] = set()
    for line in card.get_all("TEL"):
        types = _types_of(line) - {"PREF"} if len(_types_of(line)) > 1 else _types_of(line)
        best: str | None = None
        for key, want in _TELS:
            if key in used:
                continue
            wanted = set(want) - {"VOICE"} if len(want) > 1 else set(want)
            have = set(types) - {"VOICE"} if types - {"VOICE"} else set(types)
            if wanted == have or (not have and want == ("VOICE",)):
                best = key
                break
        if best is None:
            best = next((k for k, w in _TELS if k not in used and w == ("VOICE",)), None)
        if best is None:
            best = next((k for k, w in _TELS if k not in used), None)
        if best is not None:
            used.add(best)
            out.append((best, text_of(line)))
    taken: set[str] = set()
    for line in card.get_all("ADR"):
        types = _types_of(line)
        prefix = next((p for p, t in _ADRS if t in types and p not in taken), None)
        if prefix is None:
            prefix = next((p for p, _ in _ADRS if p not in taken), None)
        if prefix is None:
            continue
        taken.add(prefix)
        parts = [unescape30(p) for p in split_escaped(line.decoded(), ";")]
        for part_name, value in zip(_ADR_PARTS, parts, strict=False):
            if part_name and value:
                out.append((prefix + part_name, value))
    for key, prop in _SIMPLE_CONTACT.items():
        simple = card.get(prop)
        if simple is not None:
            out.append((key, text_of(simple)))
    cats = card.get("CATEGORIES")
    if cats is not None:
        out.append(("Categories", ";".join(
            unescape30(c) for c in split_escaped(cats.decoded(), ","))))
    photo = card.get("PHOTO")
    if photo is not None and photo.is_base64:
        out.append(("Photo", photo.decoded()))
    known: dict[str, str] = {}
    for line in card.properties:
        if line.name.startswith(_X):
            name = line.param("X-SIF-NAME") or _field_from_x(line.name, known) or ""
            out.append((name, text_of(line)))
    return _write("contact", out)


# ---------------------------------------------------------------------------
# Times
# ---------------------------------------------------------------------------


def _parse_time(value: str) -> datetime | date:
    """A SIF time: ``20070107T220000Z`` (UTC), ``20070107T220000`` (floating),
    ``2007-01-01`` / ``20070101`` (date), ISO forms with ``-`` and ``:``."""
    v = value.strip().replace("-", "").replace(":", "")
    m = re.fullmatch(r"(\d{8})(?:T(\d{6})(\d*)(Z?))?", v)
    if m is None:
        raise FormatError(f"bad SIF date-time {value!r}")
    day = datetime.strptime(m.group(1), "%Y%m%d")
    if m.group(2) is None:
        return day.date()
    moment = datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
    return moment.replace(tzinfo=UTC) if m.group(4) else moment


def _to_date(value: datetime | date, device_tz: str | None) -> date:
    """The calendar day an all-day SIF time means.

    Outlook writes an all-day start as local midnight in UTC
    (``20061231T230000Z`` for 1 January in Berlin): with the device's zone the
    local day is taken, else the nearest midnight.
    """
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is not None and device_tz:
        zone = get_zone(device_tz)
        if zone is not None:
            return value.astimezone(zone).date()
    return (value + timedelta(hours=12)).date()


def _fmt_time(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        return value.strftime("%Y%m%dT%H%M%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    return str(value)


# ---------------------------------------------------------------------------
# Recurrence (Outlook's pattern fields) <-> RRULE
# ---------------------------------------------------------------------------

_DAYS = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]  # DayOfWeekMask bits 1, 2, 4 ...
_RECUR_FIELDS = ("IsRecurring", "RecurrenceType", "Interval", "MonthOfYear", "DayOfMonth",
                 "DayOfWeekMask", "Instance", "PatternStartDate", "NoEndDate",
                 "PatternEndDate", "Occurrences", "Exceptions")


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int((value or "").strip())
    except ValueError:
        return default


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "-1", "yes")


def _rrule_from_sif(got: dict[str, str]) -> dict[str, Any] | None:
    if not _truthy(got.get("IsRecurring")):
        return None
    kind = _int(got.get("RecurrenceType"))
    interval = max(1, _int(got.get("Interval"), 1))
    mask = _int(got.get("DayOfWeekMask"))
    days = [d for i, d in enumerate(_DAYS) if mask & (1 << i)]
    instance = _int(got.get("Instance"))
    rule: dict[str, Any] = {}
    if kind == 0:
        rule["FREQ"] = "DAILY"
    elif kind == 1:
        rule["FREQ"] = "WEEKLY"
        if days:
            rule["BYDAY"] = days
    elif kind in (2, 3):
        rule["FREQ"] = "MONTHLY"
    elif kind in (5, 6):
        rule["FREQ"] = "YEARLY"
        interval = max(1, interval // 12) if interval >= 12 else interval
        if _int(got.get("MonthOfYear")):
            rule["BYMONTH"] = [_int(got.get("MonthOfYear"))]
    else:
        return None
    if kind in (2, 5) and _int(got.get("DayOfMonth")):
        rule["BYMONTHDAY"] = [_int(got.get("DayOfMonth"))]
    if kind in (3, 6) and days:
        nth = -1 if instance == 5 else max(1, instance)
        rule["BYDAY"] = [f"{nth}{d}" for d in days]
    if interval > 1:
        rule["INTERVAL"] = interval
    if not _truthy(got.get("NoEndDate")):
        if _int(got.get("Occurrences")):
            rule["COUNT"] = _int(got.get("Occurrences"))
        elif got.get("PatternEndDate", "").strip():
            end = _parse_time(got["PatternEndDate"])
            rule["UNTIL"] = end if isinstance(end, datetime) and end.tzinfo else (
                end if not isinstance(end, datetime) else end.replace(tzinfo=UTC))
    return rule


def _sif_from_rrule(recur: Any, start: Any) -> list[tuple[str, str]]:
    def first(key: str) -> Any:
        v = recur.get(key)
        if isinstance(v, list):
            return v[0] if v else None
        return v

    freq = str(first("FREQ") or "").upper()
    interval = int(first("INTERVAL") or 1)
    byday = [str(d) for d in (recur.get("BYDAY") or [])]
    out: list[tuple[str, str]] = [("IsRecurring", "1")]
    nth = [re.match(r"([+-]?\d*)([A-Z]{2})", d) for d in byday]
    plain_days = [m.group(2) for m in nth if m]
    ordinal = next((int(m.group(1)) for m in nth if m and m.group(1)), None)
    mask = sum(1 << _DAYS.index(d) for d in plain_days if d in _DAYS)
    if freq == "DAILY":
        kind = 0
    elif freq == "WEEKLY":
        kind = 1
        if not mask and isinstance(start, date):
            mask = 1 << ((start.weekday() + 1) % 7)
    elif freq == "MONTHLY":
        kind = 3 if ordinal is not None else 2
    else:
        kind = 6 if ordinal is not None else 5
    out.append(("RecurrenceType", str(kind)))
    out.append(("Interval", str(interval * 12 if kind in (5, 6) else interval)))
    if mask:
        out.append(("DayOfWeekMask", str(mask)))
    if kind in (3, 6) and ordinal is not None:
        out.append(("Instance", "5" if ordinal < 0 else str(ordinal)))
    if kind in (2, 5):
        day = first("BYMONTHDAY") or (start.day if isinstance(start, date) else None)
        if day:
            out.append(("DayOfMonth", str(day)))
    if kind in (5, 6):
        month = first("BYMONTH") or (start.month if isinstance(start, date) else None)
        if month:
            out.append(("MonthOfYear", str(month)))
    if isinstance(start, date):
        out.append(("PatternStartDate", _fmt_time(start)))
    count, until = first("COUNT"), first("UNTIL")
    if count:
        out += [("NoEndDate", "0"), ("Occurrences", str(count))]
    elif until is not None:
        out += [("NoEndDate", "0"), ("PatternEndDate", _fmt_time(until))]
    else:
        out.append(("NoEndDate", "1"))
    return out


# ---------------------------------------------------------------------------
# Events, tasks, notes
# ---------------------------------------------------------------------------

_BUSY = {"0": "FREE", "1": "TENTATIVE", "2": "BUSY", "3": "OOF"}
_CLASS = {"0": None, "1": "X-PERSONAL", "2": "PRIVATE", "3": "CONFIDENTIAL"}
_PRIORITY = {"0": 9, "1": None, "2": 1}
_TASK_STATUS = {"0": "NEEDS-ACTION", "1": "IN-PROCESS", "2": "COMPLETED",
                "3": "X-WAITING", "4": "X-DEFERRED"}
_HANDLED_ITEM = {
    "Subject", "Body", "Location", "Categories", "Start", "End", "AllDayEvent",
    "Duration", "ReminderSet", "ReminderMinutesBeforeStart", "ReminderTime",
    "BusyStatus", "Sensitivity", "Importance", "StartDate", "DueDate", "Complete",
    "DateCompleted", "PercentComplete", "Status", "Date", *_RECUR_FIELDS,
}
_HANDLED_NOTE = {"Subject", "Body", "Categories", "Date"}


def _text(value: str) -> Any:
    return _ICAL.prop.vUnknown(escape30(value))


def _add_extras(comp: Any, fields: list[tuple[str, str]], handled: set[str]) -> None:
    for name, value in fields:
        if name not in handled:
            comp.add(_x_name(name), _text(value), parameters={"X-SIF-NAME": name})


def _common_in(comp: Any, got: dict[str, str]) -> None:
    if got.get("Subject"):
        comp.add("SUMMARY", _text(got["Subject"]))
    if got.get("Body"):
        comp.add("DESCRIPTION", _text(got["Body"]))
    if got.get("Location"):
        comp.add("LOCATION", _text(got["Location"]))
    if got.get("Categories"):
        cats = [c.strip() for c in re.split(r"[;,]", got["Categories"]) if c.strip()]
        comp.add("CATEGORIES", _ICAL.prop.vUnknown(",".join(escape30(c) for c in cats)))
    cls = _CLASS.get(got.get("Sensitivity", "0").strip())
    if cls:
        comp.add("CLASS", cls)
    prio = _PRIORITY.get(got.get("Importance", "1").strip())
    if prio is not None:
        comp.add("PRIORITY", prio)


def sif_to_ical20(data: str, content_type: str, *, device_tz: str | None = None,
                  uid: str | None = None) -> str:
    """Convert a SIF appointment, task or note to iCalendar 2.0 (VEVENT, VTODO, VJOURNAL).

    Args:
        data: the SIF document, plain or base64.
        content_type: ``text/x-s4j-sife``, ``-sift`` or ``-sifn``.
        device_tz: the device's IANA zone, used to read all-day UTC times.
        uid: the UID to give the item (SIF has none).

    Raises:
        FormatError: not a SIF document of that type.
    """
    root_name = SIF_TYPES.get(content_type.strip().lower())
    if root_name is None or root_name == "contact":
        raise FormatError(f"{content_type!r} is not a SIF calendar or note type")
    fields = _parse(data, root_name)
    got = dict(fields)
    cal = _ICAL.Calendar()
    cal.add("PRODID", _PRODID)
    cal.add("VERSION", "2.0")
    if root_name == "note":
        comp = _ICAL.Journal()
        if uid:
            comp.add("UID", uid)
        if got.get("Subject"):
            comp.add("SUMMARY", _text(got["Subject"]))
        if got.get("Body"):
            comp.add("DESCRIPTION", _text(got["Body"]))
        if got.get("Categories"):
            cats = [c.strip() for c in re.split(r"[;,]", got["Categories"]) if c.strip()]
            comp.add("CATEGORIES", _ICAL.prop.vUnknown(",".join(escape30(c) for c in cats)))
        if got.get("Date"):
            comp.add("DTSTART", _parse_time(got["Date"]))
        _add_extras(comp, fields, _HANDLED_NOTE)
        cal.add_component(comp)
        return str(cal.to_ical().decode("utf-8"))
    comp = _ICAL.Event() if root_name == "appointment" else _ICAL.Todo()
    if uid:
        comp.add("UID", uid)
    _common_in(comp, got)
    start_v: datetime | date | None = None
    if root_name == "appointment":
        allday = _truthy(got.get("AllDayEvent"))
        if got.get("Start"):
            start_v = _parse_time(got["Start"])
        end_v = _parse_time(got["End"]) if got.get("End") else None
        if allday and start_v is not None:
            start_v = _to_date(start_v, device_tz)
            end_d = _to_date(end_v, device_tz) if end_v is not None else start_v
            # SIF all-day ends are inclusive days, or the next midnight.
            if isinstance(end_v, datetime) and end_d > start_v:
                last = end_d - timedelta(days=1) if _is_midnightish(end_v, device_tz) else end_d
            else:
                last = end_d
            comp.add("DTSTART", start_v)
            comp.add("DTEND", max(last, start_v) + timedelta(days=1))
        elif start_v is not None:
            comp.add("DTSTART", start_v)
            if end_v is None and _int(got.get("Duration")):
                end_v = start_v + timedelta(minutes=_int(got.get("Duration")))
            if end_v is not None:
                comp.add("DTEND", end_v)
        busy = got.get("BusyStatus", "").strip()
        if busy in _BUSY:
            comp.add("TRANSP", "TRANSPARENT" if busy == "0" else "OPAQUE")
            if busy in ("1", "3"):
                comp.add("X-MICROSOFT-CDO-BUSYSTATUS", _BUSY[busy])
        if _truthy(got.get("ReminderSet")):
            alarm = _ICAL.Alarm()
            alarm.add("ACTION", "DISPLAY")
            alarm.add("DESCRIPTION", _text(got.get("Subject") or "Reminder"))
            alarm.add("TRIGGER", timedelta(minutes=-_int(got.get("ReminderMinutesBeforeStart"))))
            comp.add_component(alarm)
    else:
        if got.get("StartDate"):
            start_v = _parse_time(got["StartDate"])
            comp.add("DTSTART", start_v)
        if got.get("DueDate"):
            comp.add("DUE", _parse_time(got["DueDate"]))
        status = got.get("Status", "").strip()
        if _truthy(got.get("Complete")):
            status = "2"
        if status in _TASK_STATUS:
            comp.add("STATUS", _TASK_STATUS[status])
        if got.get("PercentComplete", "").strip():
            comp.add("PERCENT-COMPLETE", _int(got["PercentComplete"]))
        if got.get("DateCompleted"):
            done = _parse_time(got["DateCompleted"])
            comp.add("COMPLETED", done if isinstance(done, datetime)
                     else datetime(done.year, done.month, done.day, tzinfo=UTC))
        if _truthy(got.get("ReminderSet")) and got.get("ReminderTime"):
            alarm = _ICAL.Alarm()
            alarm.add("ACTION", "DISPLAY")
            alarm.add("DESCRIPTION", _text(got.get("Subject") or "Reminder"))
            when = _parse_time(got["ReminderTime"])
            if not isinstance(when, datetime):
                when = datetime(when.year, when.month, when.day, tzinfo=UTC)
            alarm.add("TRIGGER", when if when.tzinfo else when.replace(tzinfo=UTC))
            comp.add_component(alarm)
    rule = _rrule_from_sif(got)
    if rule is not None:
        comp.add("RRULE", rule)
        for ex in (got.get("Exceptions") or "").split(","):
            if ex.strip():
                comp.add("EXDATE", _parse_time(ex))
    handled = set(_HANDLED_ITEM)  # a non-recurring item's pattern fields are defaults
    if rule is None and _truthy(got.get("IsRecurring")):
        handled -= set(_RECUR_FIELDS)  # a pattern we cannot read is kept as it came
    _add_extras(comp, fields, handled)
    cal.add_component(comp)
    return str(cal.to_ical().decode("utf-8"))


def _is_midnightish(value: datetime, device_tz: str | None) -> bool:
    if value.tzinfo is not None and device_tz:
        zone = get_zone(device_tz)
        if zone is not None:
            local = value.astimezone(zone)
            return local.hour == 0 and local.minute == 0
    return (value + timedelta(hours=12)).hour == 12 and value.minute == 0


def _ical_text(comp: Any, name: str) -> str | None:
    value = comp.get(name)
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0]
    raw = value.to_ical().decode("utf-8") if hasattr(value, "to_ical") else str(value)
    return unescape30(raw)


def _categories(comp: Any) -> str | None:
    value = comp.get("CATEGORIES")
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    cats: list[str] = []
    for v in values:
        raw = v.to_ical().decode("utf-8") if hasattr(v, "to_ical") else str(v)
        cats += [unescape30(c) for c in split_escaped(raw, ",") if c]
    return ";".join(cats)


def _decoded(comp: Any, name: str) -> Any:
    try:
        return comp.decoded(name) if comp.get(name) is not None else None
    except (KeyError, ValueError):
        return None


def ical20_to_sif(text: str, content_type: str) -> str:
    """Convert the first VEVENT, VTODO or VJOURNAL of an iCalendar 2.0 item to SIF.

    Raises:
        FormatError: no item of the kind ``content_type`` asks for.
    """
    root_name = SIF_TYPES.get(content_type.strip().lower())
    want = {"appointment": "VEVENT", "task": "VTODO", "note": "VJOURNAL"}.get(root_name or "")
    if want is None:
        raise FormatError(f"{content_type!r} is not a SIF calendar or note type")
    try:
        cal = _ICAL.Calendar.from_ical(text)
    except ValueError as exc:
        raise FormatError(f"not iCalendar: {exc}") from None
    comp = next((c for c in cal.walk() if str(c.name).upper() == want), None)
    if comp is None:
        raise FormatError(f"no {want} to convert to SIF")
    out: list[tuple[str, str]] = []
    for key, prop in (("Subject", "SUMMARY"), ("Body", "DESCRIPTION"), ("Location", "LOCATION")):
        value = _ical_text(comp, prop)
        if value is not None and (root_name != "note" or prop != "LOCATION"):
            out.append((key, value))
    cats = _categories(comp)
    if cats:
        out.append(("Categories", cats))
    if root_name == "note":
        start = _decoded(comp, "DTSTART")
        if start is not None:
            out.append(("Date", _fmt_time(start)))
    else:
        cls = str(comp.get("CLASS") or "").upper()
        sens = {"X-PERSONAL": "1", "PRIVATE": "2", "CONFIDENTIAL": "3"}.get(cls, "0")
        out.append(("Sensitivity", sens))
        prio = _decoded(comp, "PRIORITY")
        out.append(("Importance", "1" if not prio or prio == 5 else ("2" if prio < 5 else "0")))
        start = _decoded(comp, "DTSTART")
        alarms = [a for a in comp.subcomponents if str(a.name).upper() == "VALARM"]
        if root_name == "appointment":
            end = _decoded(comp, "DTEND")
            if end is None and start is not None and comp.get("DURATION") is not None:
                end = start + comp.decoded("DURATION")
            allday = isinstance(start, date) and not isinstance(start, datetime)
            out.append(("AllDayEvent", "1" if allday else "0"))
            if start is not None:
                out.append(("Start", _fmt_time(start)))
            if end is not None:
                if allday and isinstance(end, date) and not isinstance(end, datetime):
                    end = max(end - timedelta(days=1), start)
                out.append(("End", _fmt_time(end)))
            busy = str(comp.get("X-MICROSOFT-CDO-BUSYSTATUS") or "").upper()
            code = next((k for k, v in _BUSY.items() if v == busy), None)
            if code is None:
                code = "0" if str(comp.get("TRANSP") or "").upper() == "TRANSPARENT" else "2"
            out.append(("BusyStatus", code))
            minutes = None
            for alarm in alarms:
                trig = _decoded(alarm, "TRIGGER")
                if isinstance(trig, timedelta):
                    minutes = int(-trig.total_seconds() // 60)
                    break
                if isinstance(trig, datetime) and isinstance(start, datetime):
                    minutes = int((start - trig).total_seconds() // 60)
                    break
            out.append(("ReminderSet", "1" if minutes is not None else "0"))
            if minutes is not None:
                out.append(("ReminderMinutesBeforeStart", str(minutes)))
        else:
            if start is not None:
                out.append(("StartDate", _fmt_time(start)))
            due = _decoded(comp, "DUE")
            if due is not None:
                out.append(("DueDate", _fmt_time(due)))
            status = str(comp.get("STATUS") or "").upper()
            code = next((k for k, v in _TASK_STATUS.items() if v == status), "0")
            out.append(("Status", code))
            out.append(("Complete", "1" if code == "2" else "0"))
            pct = _decoded(comp, "PERCENT-COMPLETE")
            if pct is not None:
                out.append(("PercentComplete", str(pct)))
            done = _decoded(comp, "COMPLETED")
            if done is not None:
                out.append(("DateCompleted", _fmt_time(done)))
            when = None
            for alarm in alarms:
                trig = _decoded(alarm, "TRIGGER")
                if isinstance(trig, datetime):
                    when = trig
                elif isinstance(trig, timedelta):
                    ref = due if due is not None else start
                    if isinstance(ref, datetime):
                        when = ref + trig
                if when is not None:
                    break
            out.append(("ReminderSet", "1" if when is not None else "0"))
            if when is not None:
                out.append(("ReminderTime", _fmt_time(when)))
        recur = comp.get("RRULE")
        if recur is not None:
            out += _sif_from_rrule(recur, start)
            exdates = comp.get("EXDATE")
            if exdates is not None:
                days = []
                for ex in exdates if isinstance(exdates, list) else [exdates]:
                    days += [_fmt_time(d.dt) for d in ex.dts]
                if days:
                    out.append(("Exceptions", ",".join(days)))
        else:
            out.append(("IsRecurring", "0"))
    for name, value in comp.property_items(recursive=False):
        if str(name).upper().startswith(_X):
            field = value.params.get("X-SIF-NAME") if hasattr(value, "params") else None
            raw = value.to_ical().decode("utf-8") if hasattr(value, "to_ical") else str(value)
            out.append((str(field or _field_from_x(str(name), {})), unescape30(raw)))
    xml_fields = [(k, v) for k, v in out if k != "Exceptions"]
    xml = _write(root_name or "note", xml_fields)
    exceptions = next((v for k, v in out if k == "Exceptions"), None)
    if exceptions:
        closing = f"</{root_name}>"
        inner = "".join(f"<ExcludeDate>{d}</ExcludeDate>" for d in exceptions.split(","))
        xml = xml[: -len(closing)] + f"<Exceptions>{inner}</Exceptions>" + closing
    return xml
