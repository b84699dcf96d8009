"""The format-converting ItemCodec: recorded items, field-preserving merge, stable digests."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import icalendar
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncmld.engine.items import PlainCodec, bind_codec
from syncmld.engine.store import VCARD_21, VCARD_30, ContentType, MemoryStore
from syncmld.formats import FormatError
from syncmld.formats.codec import SYNTHETIC_UID_PREFIX, FormatCodec
from syncmld.formats.sif import decode_payload
from syncmld.formats.vcard import parse_component, parse_components, unescape30
from syncmld.protocol.devinf import ContentTypeRef as Ref
from syncmld.protocol.devinf import CTCap, DataStore, DevInf, Property

from ._vectors import items
from .test_vcalendar import DST_CASES, _dst_vcal

PHONE_ITEMS = [
    i
    for pattern in ("horde/sessions/*/*.xml", "syncevolution/**/*.xml", "libwbxml/*.xml")
    for i in items(pattern)
    if i.data.count("BEGIN:") == i.data.count("END:")  # not one chunk of a large object
] + [
    i
    for ctype in ("text/x-s4j-sifc", "text/x-s4j-sife", "text/x-s4j-sift", "text/x-s4j-sifn")
    for i in items("horde/sessions/*/*.xml", ctype)
]
_HUMAN = {"FN", "N", "TEL", "EMAIL", "ADR", "ORG", "TITLE", "NOTE", "URL", "BDAY", "SUMMARY",
          "DESCRIPTION", "LOCATION", "CATEGORIES", "NICKNAME", "ROLE"}
_SIF_DERIVED = re.compile(r"<(Duration|IsRecurring|RecurrenceType|Interval|MonthOfYear|"
                          r"DayOfMonth|DayOfWeekMask|Instance|PatternStartDate|NoEndDate|"
                          r"PatternEndDate|Occurrences|ReminderMinutesBeforeStart|AllDayEvent|"
                          r"BusyStatus|Sensitivity|Importance|ReminderSet|Start|End|Date|"
                          r"FileAs|MeetingStatus|Email1AddressType)>[^<]*</\1>")


def _kind_for(item: Any) -> str:
    if "sifc" in item.content_type or "BEGIN:VCARD" in item.data:
        return "contacts"
    if "sifn" in item.content_type or "BEGIN:VNOTE" in item.data:
        return "notes"
    return "calendar"


def _tokens(text: str, names: set[str] | None) -> set[str]:
    """The words of the human-visible values of a mime-dir item."""
    out: set[str] = set()
    for root in parse_components(text):
        for comp in root.walk():
            for line in comp.properties:
                if names is not None and line.name not in names:
                    continue
                value = re.sub(r"\\(.)", r"\1", line.decoded().replace("\\n", "\n"))
                out.update(_words(value))
    return out


def _words(value: str) -> set[str]:
    return {w for w in re.split(r"[\s;,]+", unicodedata.normalize("NFC", value)) if w}


def _sif_tokens(xml: str) -> set[str]:
    body = _SIF_DERIVED.sub("", decode_payload(xml))
    body = re.sub(r"<\?xml[^>]*\?>", "", body)
    out: set[str] = set()
    for value in re.findall(r">([^<]+)<", body):
        out.update(_words(value.replace("&amp;", "&")))
    return out


@pytest.mark.parametrize("item", PHONE_ITEMS, ids=lambda i: i.label)
def test_recorded_items_convert_and_store_without_loss(item: Any) -> None:
    codec = FormatCodec(_kind_for(item), device_tz="Europe/Berlin")
    try:
        desktop = codec.to_local(item.data, item.content_type)
    except FormatError as exc:
        # A calendar datastore refuses nothing but non-calendar content.
        pytest.fail(f"{item.label}: {exc}")
    assert "VERSION:2.1" not in desktop and "VERSION:1.0" not in desktop
    assert "QUOTED-PRINTABLE" not in desktop.upper()
    store = MemoryStore(content_types=(VCARD_30,))
    local_id, _ = store.add(desktop)
    stored, _ = store.get(local_id)
    if item.data.lstrip().startswith("BEGIN:"):
        missing = _tokens(item.data, _HUMAN) - _tokens(stored, None)
    else:
        missing = _sif_tokens(item.data) - _tokens(stored, None)
    assert not missing, missing
    # Back to the device in the format it sent, and in again: same content.
    text, ctype = codec.to_remote(stored, ())
    assert ctype == codec.seen_type
    again = codec.to_local(text, ctype.mime)
    assert codec.digest(again) == codec.digest(stored)
    assert codec.merge(stored, again) == stored


def test_every_kind_of_recorded_item_is_covered() -> None:
    kinds = {_kind_for(i) for i in PHONE_ITEMS}
    assert kinds == {"contacts", "calendar", "notes"}
    assert len(PHONE_ITEMS) > 60


# ---------------------------------------------------------------------------
# Peer binding and format choice
# ---------------------------------------------------------------------------

DESKTOP_CARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:card-1\r\nN:Nowak;Ewa;;;\r\nFN:Ewa Nowak\r\n"
    "TEL;TYPE=CELL:+48601000001\r\nEMAIL;TYPE=INTERNET:ewa@example.pl\r\n"
    "ADR;TYPE=HOME:;;ul. Długa 5;Gdańsk;;80-001;Polska\r\n"
    "NOTE:Likes jazz\\, hates spam\r\nPHOTO;ENCODING=b;TYPE=JPEG:/9j/4AAQSkZJRg==\r\n"
    "REV:20240101T000000Z\r\nEND:VCARD\r\n"
)


def _devinf(man: str = "Acme", mod: str = "Phone 1", *, ctcap: tuple[str, ...] | None = None,
            rx: str = "text/x-vcard", ver: str = "2.1", sizes: dict[str, int] | None = None
            ) -> DevInf:
    caps: tuple[CTCap, ...] = ()
    if ctcap is not None:
        props = tuple(Property(name=n, max_size=(sizes or {}).get(n)) for n in ctcap)
        caps = (CTCap(ct_type=rx, ver_ct=ver, properties=props),)
    store = DataStore(source_ref="./contacts", rx_pref=Ref(ct_type=rx, ver_ct=ver),
                      tx_pref=Ref(ct_type=rx, ver_ct=ver), ctcaps=caps)
    return DevInf(ver_dtd="1.2", man=man, mod=mod, dev_id="phone-1", dev_typ="phone",
                  datastores=(store,))


def test_built_in_stores_get_the_converting_codec() -> None:
    from syncmld.config import StoreConfig

    store = MemoryStore(content_types=(VCARD_30,))
    for kind in ("contacts", "calendar", "events", "tasks", "notes"):
        codec = StoreConfig(name="x", type="memory", kind=kind).datastore(store).codec
        assert isinstance(codec, FormatCodec) and codec.kind == kind


def test_bind_codec_keeps_plain_codec() -> None:
    plain = PlainCodec(VCARD_30)
    assert bind_codec(plain, _devinf(), "./contacts") is plain
    bound = bind_codec(FormatCodec("contacts"), _devinf(man="Nokia"), "./contacts")
    assert isinstance(bound, FormatCodec) and bound.profile.email_internet_type


def test_format_is_chosen_from_devinf_then_what_the_peer_sent() -> None:
    codec = FormatCodec("contacts")
    text, ctype = codec.to_remote(DESKTOP_CARD, ())
    assert ctype == VCARD_21 and "VERSION:2.1" in text  # a phone without DevInf
    text, ctype = codec.to_remote(DESKTOP_CARD, (VCARD_30,))
    assert ctype == VCARD_30 and "VERSION:3.0" in text
    bound = codec.for_peer(_devinf(rx="text/vcard", ver="3.0"), "contacts")
    assert bound.to_remote(DESKTOP_CARD, ())[1] == VCARD_30
    sif = FormatCodec("contacts")
    sif.to_local("<contact><LastName>X</LastName></contact>", "text/x-s4j-sifc")
    text, ctype = sif.to_remote(DESKTOP_CARD, ())
    assert ctype.mime == "text/x-s4j-sifc" and "<LastName>Nowak</LastName>" in text
    cal = FormatCodec("calendar")
    cal.to_local("<task><Subject>x</Subject></task>", "text/x-s4j-sift")
    todo = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t1\r\n"
            "SUMMARY:Do it\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")
    assert cal.to_remote(todo, (ContentType("text/x-s4j-sife", ""),))[1].mime == (
        "text/x-s4j-sift")


def test_kind_checks_and_clear_errors() -> None:
    event = ("BEGIN:VCALENDAR\r\nVERSION:1.0\r\nBEGIN:VTODO\r\nSUMMARY:x\r\nEND:VTODO\r\n"
             "END:VCALENDAR\r\n")
    with pytest.raises(FormatError, match="cannot store VTODO"):
        FormatCodec("events").to_local(event, "text/x-vcalendar")
    nokia = FormatCodec("events").for_peer(_devinf(man="Nokia"), "contacts")
    with pytest.raises(FormatError, match="kind calendar"):
        nokia.to_local(event, "text/x-vcalendar")
    with pytest.raises(FormatError):
        FormatCodec("contacts").to_local("just text", "text/plain")
    with pytest.raises(ValueError, match="unknown datastore kind"):
        FormatCodec("photos")
    assert "SUMMARY:a memo" in FormatCodec("notes").to_local("a memo\nmore", "text/plain")


def test_items_without_uid_get_a_stable_one_that_identity_ignores() -> None:
    phone = "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Doe;Jane\r\nTEL;CELL:+1555\r\nEND:VCARD\r\n"
    codec = FormatCodec("contacts")
    one = codec.to_local(phone, "text/x-vcard")
    two = codec.to_local(phone.replace("\r\n", "\n"), "text/x-vcard")
    assert one == two and f"UID:{SYNTHETIC_UID_PREFIX}" in one
    assert codec.uid(one) is None
    edited = codec.to_local(phone.replace("+1555", "+1666"), "text/x-vcard")
    assert codec.digest(one) != codec.digest(edited)
    relabelled = one.replace(codec.to_local(phone, None).split("UID:")[1].split("\r\n")[0],
                             SYNTHETIC_UID_PREFIX + "other")
    assert codec.digest(relabelled) == codec.digest(one)
    assert codec.uid(DESKTOP_CARD) == "card-1"


# ---------------------------------------------------------------------------
# Field-preserving merge
# ---------------------------------------------------------------------------


def _prop(text: str, name: str) -> list[str]:
    card = parse_component(text)
    return [unescape30(p.decoded()) for p in card.get_all(name)]


def test_ctcap_limited_phone_update_keeps_desktop_only_fields() -> None:
    devinf = _devinf(ctcap=("BEGIN", "END", "VERSION", "N", "FN", "TEL", "EMAIL"))
    codec = FormatCodec("contacts").for_peer(devinf, "./contacts")
    sent, ctype = codec.to_remote(DESKTOP_CARD, ())
    assert "NOTE" not in sent and "PHOTO" not in sent and "ADR" not in sent
    # On the phone: a new number, the e-mail address deleted.
    edited = re.sub(r"EMAIL[^\r\n]*\r\n", "", sent.replace("+48601000001", "+48601999999"))
    merged = codec.merge(DESKTOP_CARD, codec.to_local(edited, ctype.mime))
    assert _prop(merged, "TEL") == ["+48601999999"]
    assert _prop(merged, "EMAIL") == []  # the phone stores e-mail: its deletion counts
    assert _prop(merged, "NOTE") == ["Likes jazz, hates spam"]
    assert _prop(merged, "ADR") == [";;ul. Długa 5;Gdańsk;;80-001;Polska"]
    assert _prop(merged, "PHOTO") == ["/9j/4AAQSkZJRg=="]
    assert _prop(merged, "UID") == ["card-1"]
    # The phone sends back what it got: nothing changes.
    assert codec.merge(DESKTOP_CARD, codec.to_local(sent, ctype.mime)) == DESKTOP_CARD


def test_phone_without_ctcap_keeps_fields_it_never_sent() -> None:
    codec = FormatCodec("contacts")
    phone = ("BEGIN:VCARD\r\nVERSION:2.1\r\nN:Nowak;Ewa\r\nTEL;CELL:+48601000002\r\n"
             "END:VCARD\r\n")
    merged = codec.merge(DESKTOP_CARD, codec.to_local(phone, "text/x-vcard"))
    assert _prop(merged, "TEL") == ["+48601000002"]
    for name in ("EMAIL", "NOTE", "ADR", "PHOTO", "UID"):
        assert _prop(merged, name) == _prop(DESKTOP_CARD, name), name


def test_phone_that_adds_a_second_number_keeps_the_first() -> None:
    codec = FormatCodec("contacts")
    sent, _ = codec.to_remote(DESKTOP_CARD, ())
    more = sent.replace("END:VCARD", "TEL;WORK:+48580000000\r\nEND:VCARD")
    merged = codec.merge(DESKTOP_CARD, codec.to_local(more, "text/x-vcard"))
    assert sorted(_prop(merged, "TEL")) == ["+48580000000", "+48601000001"]
    assert _prop(merged, "NOTE") == ["Likes jazz, hates spam"]


def test_values_cut_for_the_device_stay_whole_on_the_desktop() -> None:
    long_name = "Hubert Blaine Wolfeschlegelsteinhausenbergerdorff"
    card = DESKTOP_CARD.replace("FN:Ewa Nowak", f"FN:{long_name}")
    moto = FormatCodec("contacts").for_peer(_devinf(man="Motorola", mod="MOTOV3"), "contacts")
    sent, _ = moto.to_remote(card, ())
    assert f"FN:{long_name[:32]}\r\n" in sent and "\r\n " not in sent
    assert any("FN cut to 32" in w for w in moto.warnings)
    edited = sent.replace("+48601000001", "+48601000003")
    merged = moto.merge(card, moto.to_local(edited, "text/x-vcard"))
    assert _prop(merged, "FN") == [long_name] and _prop(merged, "TEL") == ["+48601000003"]
    # CTCap sizes count too.
    sized = FormatCodec("contacts").for_peer(
        _devinf(ctcap=("N", "FN", "TEL", "NOTE"), sizes={"NOTE": 5}), "./contacts")
    out, _ = sized.to_remote(DESKTOP_CARD, ())
    assert "NOTE:Likes\r\n" in out
    assert sized.merge(DESKTOP_CARD, sized.to_local(out, "text/x-vcard")) == DESKTOP_CARD


def test_latin1_phone_echo_keeps_characters_it_cannot_hold() -> None:
    card = DESKTOP_CARD.replace("Likes jazz", "Łódź ☕ 日本")
    se = FormatCodec("contacts").for_peer(_devinf(man="Sony Ericsson", mod="K750i"), "contacts")
    sent, ctype = se.to_remote(card, ())
    assert "CHARSET=ISO-8859-1" in sent
    assert any("NOTE" in w for w in se.warnings)  # reported, not silent
    assert se.merge(card, se.to_local(sent, ctype.mime)) == card


BIRTHDAY = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:bd-1\r\n"
            "DTSTAMP:20240101T000000Z\r\nSUMMARY:Birthday Ewa\r\nDTSTART;VALUE=DATE:19750314\r\n"
            "DTEND;VALUE=DATE:19750315\r\nRRULE:FREQ=YEARLY\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\n"
            "DESCRIPTION:Birthday\r\nTRIGGER:-PT15H\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def test_nokia_moved_birthday_keeps_its_real_year() -> None:
    nokia = FormatCodec("calendar").for_peer(_devinf(man="Nokia", mod="6230i"), "contacts")
    sent, ctype = nokia.to_remote(BIRTHDAY, ())
    assert "DTSTART:19800314" in sent
    edited = sent.replace("Birthday Ewa", "Birthday Ewa N.")
    merged = nokia.merge(BIRTHDAY, nokia.to_local(edited, ctype.mime))
    event = icalendar.Calendar.from_ical(merged).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == "Birthday Ewa N."
    assert event.decoded("DTSTART").year == 1975
    assert nokia.merge(BIRTHDAY, nokia.to_local(sent, ctype.mime)) == BIRTHDAY


def test_alarm_the_phone_cannot_store_survives_an_update() -> None:
    devinf = _devinf(rx="text/x-vcalendar", ver="1.0",
                     ctcap=("BEGIN", "END", "VERSION", "SUMMARY", "DTSTART", "DTEND", "RRULE"))
    codec = FormatCodec("calendar").for_peer(devinf, "./contacts")
    sent, ctype = codec.to_remote(BIRTHDAY, ())
    assert "ALARM" not in sent
    merged = codec.merge(BIRTHDAY, codec.to_local(sent.replace("Ewa", "Eva"), ctype.mime))
    event = icalendar.Calendar.from_ical(merged).walk("VEVENT")[0]
    assert str(event["SUMMARY"]) == "Birthday Eva" and event.walk("VALARM")


# ---------------------------------------------------------------------------
# Digest: no user change, no write
# ---------------------------------------------------------------------------


def test_volatile_properties_do_not_count() -> None:
    codec = FormatCodec("contacts")
    touched = DESKTOP_CARD.replace("REV:20240101T000000Z", "REV:20261122T000000Z")
    touched = touched.replace("N:Nowak;Ewa;;;\r\nFN:Ewa Nowak", "FN:Ewa Nowak\r\nn:Nowak;Ewa;;;")
    assert codec.digest(touched) == codec.digest(DESKTOP_CARD)
    assert codec.digest(DESKTOP_CARD.replace("jazz", "blues")) != codec.digest(DESKTOP_CARD)


@pytest.mark.parametrize(("zone", "tz", "daylight", "events"), DST_CASES,
                         ids=[c[0] for c in DST_CASES])
def test_dst_round_trip_through_the_codec(zone: str, tz: str, daylight: list[str],
                                          events: list[tuple[str, str, str, str]]) -> None:
    devinf = _devinf(man="Nokia", mod="Nokia 6600", rx="text/x-vcalendar", ver="1.0")
    codec = FormatCodec("calendar", device_tz=zone).for_peer(devinf, "./contacts")
    phone = _dst_vcal(tz, daylight, events)
    desktop = codec.to_local(phone, "text/x-vcalendar")
    assert f"TZID={zone}" in desktop or f"TZID:{zone}" in desktop
    back, ctype = codec.to_remote(desktop, ())
    assert ctype.mime == "text/x-vcalendar"
    starts = re.findall(r"^DTSTART:(\S+)", back, re.MULTILINE)
    assert starts == [e[0] for e in events]
    again = codec.to_local(back, ctype.mime)
    assert codec.digest(again) == codec.digest(desktop)
    assert codec.merge(desktop, again) == desktop


# ---------------------------------------------------------------------------
# Arbitrary Unicode through vCard 2.1 quoted-printable, UTF-8 and ISO-8859-1
# ---------------------------------------------------------------------------

SAMPLES = ["Ёлка", "日本語", "👍🏽", "e\u0301", "Ωμέγα", "ä ö ü ß", "Łódź", "x\\y;z,w"]
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("".join(SAMPLES))),
        st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Zs")),
    ),
    min_size=1, max_size=40,
).map(str.strip).filter(bool)


def _card(prop: str, text: str) -> str:
    esc = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    fn = "" if prop == "FN" else "FN:Test\r\n"
    return (f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u-1\r\nN:Test;;;;\r\n{fn}"
            f"{prop}:{esc}\r\nEND:VCARD\r\n")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT, st.sampled_from(["Acme", "Sony Ericsson"]), st.sampled_from(["NOTE", "FN", "TITLE"]))
def test_unicode_round_trip_through_21_qp(note: str, man: str, prop: str) -> None:
    codec = FormatCodec("contacts").for_peer(_devinf(man=man, mod="K750i"), "contacts")
    card = _card(prop, note)
    sent, ctype = codec.to_remote(card, ())
    assert sent.isascii() or "ENCODING=QUOTED-PRINTABLE" in sent
    back = codec.to_local(sent, ctype.mime)
    got = _prop(back, prop)[0]
    try:
        note.encode(codec.profile.charset)
        fits = True
    except UnicodeEncodeError:
        fits = False
    if fits:
        assert got == note
        assert codec.warnings == []
    else:
        assert any(prop in w for w in codec.warnings)  # the loss is reported
        assert len(got) == len(note)
        for a, b in zip(note, got, strict=True):
            assert a == b or (b == "?" and not _encodable(a, codec.profile.charset))
    # Whatever was lost on the phone, the desktop keeps the original.
    assert codec.merge(card, back) == card


def _encodable(char: str, charset: str) -> bool:
    try:
        char.encode(charset)
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------------------------------------
# Bad input: a clear FormatError, never anything else
# ---------------------------------------------------------------------------

SEEDS = [
    "BEGIN:VCARD\r\nVERSION:2.1\r\nN;ENCODING=QUOTED-PRINTABLE:a=C3=;b\r\nEND:VCARD\r\n",
    ("BEGIN:VCALENDAR\r\nVERSION:1.0\r\nTZ:+01:00\r\nBEGIN:VEVENT\r\nDTSTART:20240101T100000\r\n"
     "DTEND:20240101T110000\r\nRRULE:W1 MO #3\r\nAALARM:20240101T090000\r\nEND:VEVENT\r\n"
     "END:VCALENDAR\r\n"),
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTODO\r\nDUE:20240101\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
    ("<appointment><Start>20240101T100000Z</Start><IsRecurring>1</IsRecurring>"
     "<RecurrenceType>1</RecurrenceType><DayOfWeekMask>2</DayOfWeekMask></appointment>"),
    "<task><DueDate>2024-01-01</DueDate><ReminderSet>1</ReminderSet></task>",
    "<contact><Birthday>1970-01-01</Birthday><Photo>AAAA</Photo></contact>",
    "BEGIN:VNOTE\r\nVERSION:1.1\r\nBODY:x\r\nEND:VNOTE\r\n",
]
TYPES = [None, "text/x-vcard", "text/x-vcalendar", "text/calendar", "text/plain",
         "text/x-s4j-sifc", "text/x-s4j-sife", "text/x-s4j-sift", "text/x-s4j-sifn"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.integers(0, 200), st.text(max_size=10),
       st.sampled_from(["contacts", "calendar", "tasks", "notes"]), st.sampled_from(TYPES))
def test_mangled_items_give_format_errors_only(seed: str, at: int, junk: str, kind: str,
                                               ctype: str | None) -> None:
    codec = FormatCodec(kind, device_tz="Europe/Berlin")
    data = seed[:at] + junk + seed[at:]
    try:
        desktop = codec.to_local(data, ctype)
    except FormatError:
        return
    sent, sent_type = codec.to_remote(desktop, ())
    assert codec.merge(desktop, codec.to_local(sent, sent_type.mime))
