"""The codec's fast path: desktop-form vCards stored and sent as they are, digests
computed once and without the UID, and the simple-line parser behind it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmld.engine.store import VCARD_30
from syncmld.formats import FormatError
from syncmld.formats.codec import SYNTHETIC_UID_PREFIX, FormatCodec, clear_caches
from syncmld.formats.normalize import components_hash, content_hash, normalize
from syncmld.formats.vcard import (
    Component,
    ContentLine,
    escape30,
    parse_component,
    parse_components,
    parse_lines,
    parse_simple,
    serialize_line,
    vcard21_to_30,
)
from syncmld.protocol.devinf import ContentTypeRef as Ref
from syncmld.protocol.devinf import CTCap, DataStore, DevInf, Property

from .test_vcard import TEXT, cards30

CARD = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:card-1@example.org\r\nN:Doe;John;;;\r\n"
    "FN:John Doe\r\nTEL;TYPE=CELL:+49 151 000\r\nEMAIL;TYPE=INTERNET,WORK:john@example.org\r\n"
    "NOTE:A note long enough to be folded by any writer that folds at seventy-five o\r\n"
    " ctets\\, with an escaped comma\r\nREV:20260101T000000Z\r\nEND:VCARD\r\n"
)
NO_UID = CARD.replace("UID:card-1@example.org\r\n", "")


def slow_local(codec: FormatCodec, text: str) -> str:
    """What the full conversion path stores (the reference for the fast path)."""
    return codec._finish(vcard21_to_30(text))


def digest_fresh(text: str) -> str:
    clear_caches()
    return FormatCodec("contacts").digest(text)


def test_desktop_card_is_stored_as_sent() -> None:
    codec = FormatCodec("contacts")
    assert codec.to_local(CARD, "text/vcard") == CARD
    assert codec.seen_type == VCARD_30


def test_missing_uid_is_added_after_version_and_ignored_by_the_digest() -> None:
    codec = FormatCodec("contacts")
    local = codec.to_local(NO_UID, "text/x-vcard")
    uid_line = local.split("\r\n")[2]
    assert local.replace(uid_line + "\r\n", "") == NO_UID
    assert uid_line.startswith("UID:" + SYNTHETIC_UID_PREFIX)
    # Same made-up UID as the full conversion gives.
    assert uid_line in slow_local(codec, NO_UID).split("\r\n")
    assert codec.uid(local) is None


def test_lf_only_card_gets_crlf() -> None:
    local = FormatCodec("contacts").to_local(CARD.replace("\r\n", "\n"), "text/vcard")
    assert local == CARD


def test_same_contact_with_and_without_uid_digests_equal() -> None:
    """SyncEvolution sends contacts without their UID; a slow sync pairs by content."""
    codec = FormatCodec("contacts")
    with_uid = codec.to_local(CARD, "text/vcard")
    without = codec.to_local(NO_UID, "text/vcard")
    other_uid = CARD.replace("card-1@", "card-2@")
    assert codec.digest(with_uid) == codec.digest(without) == codec.digest(other_uid)
    assert codec.uid(with_uid) == "card-1@example.org" and codec.uid(without) is None
    edited = CARD.replace("+49 151 000", "+49 151 001")
    assert codec.digest(edited) != codec.digest(with_uid)
    # The UID still counts for content_hash itself (merge uses it).
    assert content_hash(CARD) != content_hash(other_uid)


def test_remembered_digest_equals_a_fresh_one() -> None:
    codec = FormatCodec("contacts")
    for text, label in ((CARD, "text/vcard"), (NO_UID, "text/vcard"),
                        (vcard21_to_30(CARD).replace("VERSION:3.0", "VERSION:2.1"),
                         "text/x-vcard")):
        clear_caches()
        local = codec.to_local(text, label)
        remembered = codec.digest(local)
        assert remembered == digest_fresh(local)


@pytest.mark.parametrize(
    ("label", "text"),
    [
        ("quoted-printable", CARD.replace("NOTE:", "NOTE;ENCODING=QUOTED-PRINTABLE:")),
        ("charset", CARD.replace("FN:", "FN;CHARSET=UTF-8:")),
        ("no FN", CARD.replace("FN:John Doe\r\n", "")),
        ("no N", CARD.replace("N:Doe;John;;;\r\n", "")),
        ("two cards", CARD + CARD.replace("card-1", "card-2")),
        ("quoted parameter", CARD.replace("TEL;TYPE=CELL", 'TEL;X-LABEL="a:b"')),
        ("bare LF inside", CARD.replace("FN:John Doe\r\n", "FN:John Doe\n")),
        ("version 2.1", CARD.replace("VERSION:3.0", "VERSION:2.1")),
        ("base64 2.1 style", CARD.replace("END:VCARD", "PHOTO;ENCODING=BASE64:AAAA\r\nEND:VCARD")),
    ],
)
def test_other_input_takes_the_full_conversion(label: str, text: str) -> None:
    codec = FormatCodec("contacts")
    assert codec.to_local(text, "text/vcard") == slow_local(codec, text), label


@pytest.mark.parametrize(
    "text",
    [
        CARD.replace("FN:John Doe\r\n", "FN:John Doe\r\nno colon here\r\n"),
        CARD.replace("END:VCARD\r\n", ""),
        CARD.replace("FN:John Doe", "F N:John Doe"),
    ],
)
def test_malformed_desktop_card_is_refused(text: str) -> None:
    with pytest.raises(FormatError):
        FormatCodec("contacts").to_local(text, "text/vcard")


def se_peer(props: tuple[str, ...]) -> FormatCodec:
    v30 = Ref(ct_type="text/vcard", ver_ct="3.0")
    cap = CTCap(ct_type="text/vcard", ver_ct="3.0",
                properties=tuple(Property(name=p) for p in props))
    store = DataStore(source_ref="addressbook", rx_pref=v30, tx_pref=v30, ctcaps=(cap,))
    devinf = DevInf(ver_dtd="1.2", man="Patrick Ohly", mod="SyncEvolution", dev_id="se",
                    dev_typ="workstation", datastores=(store,))
    return FormatCodec("contacts").for_peer(devinf, "addressbook")


def test_desktop_card_is_sent_as_stored_to_a_30_peer() -> None:
    codec = se_peer(("BEGIN", "END", "VERSION", "UID", "N", "FN", "TEL", "EMAIL", "NOTE", "REV"))
    text, ctype = codec.to_remote(CARD, (VCARD_30,))
    assert (text, ctype) == (CARD, VCARD_30)


def test_property_outside_the_ctcap_is_still_dropped() -> None:
    codec = se_peer(("BEGIN", "END", "VERSION", "UID", "N", "FN", "TEL", "EMAIL", "REV"))
    text, _ = codec.to_remote(CARD, (VCARD_30,))
    assert "NOTE" not in text and "TEL;TYPE=CELL:+49 151 000" in text


def test_unknown_date_does_not_break_the_hash() -> None:
    event = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:e\r\n"
             "DTSTART:20241301T100000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    assert "DTSTART:20241301T100000Z" in normalize(event)
    assert content_hash(event) != content_hash(event.replace("20241301", "20241201"))


# -- the simple-line parser --------------------------------------------------------

NAMES = st.sampled_from(["FN", "NOTE", "TEL", "X-CUSTOM", "item1.EMAIL", "Adr", "BEGIN"])
PARAMS = st.sampled_from(["", ";TYPE=WORK", ";type=cell,voice", ';X-A="q;:"', ";PREF",
                          ";ENCODING=b", ";VALUE=uri", ";ENCODING=QUOTED-PRINTABLE"])


@st.composite
def loose_cards(draw: st.DrawFn) -> str:
    """vCard 3.0 text as other writers produce it (not necessarily canonical)."""
    version = draw(st.sampled_from(["3.0", "3.0", "2.1"]))
    lines = ["BEGIN:VCARD", f"VERSION:{version}", "N:" + escape30(draw(TEXT)), "FN:x"]
    for _ in range(draw(st.integers(0, 5))):
        value = escape30(draw(TEXT)).replace("\\n", draw(st.sampled_from(["\\n", "\\N"])))
        lines.append(f"{draw(NAMES)}{draw(PARAMS)}:{value}")
    lines.append("END:VCARD")
    body = "".join(f"{line}\r\n" for line in lines)
    if draw(st.booleans()):  # fold somewhere
        cut = draw(st.integers(20, max(20, len(body) - 15)))
        if body[cut - 1] not in "\r\n" and body[cut] not in "\r\n":
            body = body[:cut] + "\r\n " + body[cut:]
    return body


def line_by_line(text: str) -> list[Component]:
    """parse_components without its fast path: the general line parser."""
    roots: list[Component] = []
    stack: list[Component] = []
    for line in parse_lines(text):
        if line.name == "BEGIN":
            comp = Component(line.value.strip().upper())
            (stack[-1].components if stack else roots).append(comp)
            stack.append(comp)
        elif line.name == "END":
            if not stack or stack[-1].name != line.value.strip().upper():
                raise FormatError("unbalanced")
            stack.pop()
        elif not stack:
            raise FormatError("outside")
        else:
            stack[-1].properties.append(line)
    if stack or not roots:
        raise FormatError("unbalanced")
    return roots


@given(loose_cards())
def test_parse_simple_equals_the_full_parser_or_declines(text: str) -> None:
    simple = parse_simple(text)
    try:
        full = line_by_line(text)
    except FormatError:
        assert simple is None
        with pytest.raises(FormatError):
            parse_components(text)
        return
    assert parse_components(text) == full
    if simple is not None:
        assert [simple] == full


@given(loose_cards())
def test_fast_and_full_path_digest_alike(text: str) -> None:
    codec = FormatCodec("contacts")
    try:
        reference = slow_local(codec, text)
    except FormatError:
        with pytest.raises(FormatError):
            codec.to_local(text, "text/vcard")
        return
    clear_caches()
    local = codec.to_local(text, "text/vcard")
    assert codec.digest(local) == digest_fresh(reference)
    assert codec.uid(local) == codec.uid(reference)


@given(cards30())
def test_canonical_cards_round_trip_unchanged(card: str) -> None:
    codec = FormatCodec("contacts")
    local = codec.to_local(card, "text/vcard")
    assert local == slow_local(codec, card)
    card_parsed = parse_simple(local)
    assert card_parsed is not None and card_parsed == parse_component(local)
    assert components_hash((card_parsed,)) == content_hash(local)


@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=300))
def test_folded_lines_stay_within_75_octets(value: str) -> None:
    text = serialize_line(ContentLine("NOTE", escape30(value)))
    rows = text.split("\r\n")[:-1]
    assert all(len(row.encode("utf-8")) <= 75 for row in rows)
    assert "".join([rows[0], *(r[1:] for r in rows[1:])]) == "NOTE:" + escape30(value)
