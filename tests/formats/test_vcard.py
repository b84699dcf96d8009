"""vCard line codec and 2.1 <-> 3.0 conversion: golden tests on recorded traffic and
Hypothesis round trips over arbitrary Unicode."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from syncmld.formats.errors import FormatError
from syncmld.formats.vcard import (
    Component,
    ContentLine,
    Param,
    escape30,
    parse_component,
    parse_components,
    qp_decode,
    qp_encode,
    serialize_component,
    vcard21_to_30,
    vcard30_to_21,
)

from ._vectors import VECTORS, crlf, items

VCARD_ITEMS = [
    i
    for pattern in ("syncevolution/**/*.xml", "libwbxml/*.xml")
    for i in items(pattern)
    if "BEGIN:VCARD" in i.data and "END:VCARD" in i.data
]
VCARD21 = [i for i in VCARD_ITEMS if "VERSION:2.1" in i.data]
VCARD30 = [i for i in VCARD_ITEMS if "VERSION:3.0" in i.data]


def test_vectors_hold_both_versions() -> None:
    assert len(VCARD21) >= 7
    assert len(VCARD30) >= 40


# ---------------------------------------------------------------------------
# Line codec
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("item", VCARD_ITEMS, ids=lambda i: i.label)
def test_parse_serialize_reproduces_recorded_items(item: object) -> None:
    data = item.data  # type: ignore[attr-defined]
    comp = parse_component(data)
    style = "2.1" if "VERSION:2.1" in data else "3.0"
    out = serialize_component(comp, style=style, fold=False)
    if "EVOLUTION" in data:
        # Evolution's bare line break inside a QP value comes back as =0A.
        assert "MA=0A02215=0AUSA" in out
    elif "\n " in data:
        # Folded input: the logical lines survive, the fold points are ours.
        assert parse_component(out) == comp
        assert parse_component(serialize_component(comp, style=style)) == comp
    else:
        assert out == crlf(data)


def test_bare_type_params_are_typed() -> None:
    comp = parse_component("BEGIN:VCARD\nVERSION:2.1\nTEL;CELL;PREF:+49\nEND:VCARD\n")
    tel = comp.properties[1]
    assert tel.types == ("CELL", "PREF")
    assert tel.params == (Param("TYPE", ("CELL",), bare=True), Param("TYPE", ("PREF",), bare=True))


def test_qp_soft_breaks_and_charsets() -> None:
    text = (
        "BEGIN:VCARD\r\nVERSION:2.1\r\n"
        "NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:Gr=FC=DF=\r\n"
        " e=0D=0Ax\r\n"
        "TITLE;QUOTED-PRINTABLE;CHARSET=WINDOWS-1252:=80 5\r\n"
        "ORG;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=D0=96\r\n"
        "END:VCARD\r\n"
    )
    comp = parse_component(text)
    note, title, org = comp.properties[1:]
    # The space after the soft break is data, not folding.
    assert note.decoded() == "Grüß e\nx"
    assert title.decoded() == "€ 5"
    assert org.decoded() == "Ж"


def test_qp_charset_lies_fall_back() -> None:
    # Declared UTF-8 but Latin-1 bytes: rescued through Windows-1252.
    assert qp_decode("M=FCller", "UTF-8") == "Müller"
    # No CHARSET: UTF-8 first.
    assert qp_decode("=C3=BC", None) == "ü"


def test_unfolding_follows_the_version() -> None:
    v21 = "BEGIN:VCARD\r\nVERSION:2.1\r\nNOTE:Hello\r\n World\r\nEND:VCARD\r\n"
    v30 = "BEGIN:VCARD\r\nVERSION:3.0\r\nNOTE:Hello\r\n World\r\nEND:VCARD\r\n"
    assert parse_component(v21).get("NOTE").value == "Hello World"  # type: ignore[union-attr]
    assert parse_component(v30).get("NOTE").value == "HelloWorld"  # type: ignore[union-attr]


def test_base64_21_continuation_without_indent() -> None:
    text = (
        "BEGIN:VCARD\nVERSION:2.1\nPHOTO;ENCODING=BASE64;TYPE=GIF:R0lGODdh\n"
        "AQABAIAAAP///wAAACwAAAAAAQABAAACAkQBADs=\n\nEND:VCARD\n"
    )
    photo = parse_component(text).get("PHOTO")
    assert photo is not None
    assert base64.b64decode(photo.decoded()).startswith(b"GIF87a")


def test_folding_75_octets_never_splits_utf8() -> None:
    value = "ü€😀ж" * 40
    comp = Component("VCARD", [ContentLine("VERSION", "3.0"), ContentLine("NOTE", value)])
    out = serialize_component(comp)
    for line in out.split("\r\n"):
        assert len(line.encode("utf-8")) <= 75
    assert parse_component(out).get("NOTE").value == value  # type: ignore[union-attr]


def test_qp_output_lines_at_most_76() -> None:
    conv = vcard30_to_21(_card("N:X;;;;", "FN:X", "NOTE:" + "Zürich " * 40))
    for line in conv.text.split("\r\n"):
        assert len(line) <= 76
    assert "Zürich " * 39 in vcard21_to_30(conv.text).replace("\r\n ", "")


def test_malformed_items_raise_format_error() -> None:
    with pytest.raises(FormatError):
        parse_component("BEGIN:VCARD\nVERSION:2.1\nthis is not a property\nEND:VCARD\n")
    with pytest.raises(FormatError):
        parse_component("BEGIN:VCARD\nVERSION:2.1\nFN:x\n")
    with pytest.raises(FormatError):
        vcard30_to_21("BEGIN:VCARD\nVERSION:3.0\nFN:x\nEND:VCARD\n", charset="no-such-charset")


# ---------------------------------------------------------------------------
# Golden conversions on recorded items
# ---------------------------------------------------------------------------


def _without_prodid(text: str) -> str:
    return "".join(line + "\r\n" for line in text.split("\r\n") if line and
                   not line.startswith("PRODID:"))


def test_syncevolution_21_matches_its_own_30() -> None:
    """SyncEvolution sent the same contacts as 2.1 (SyncML 1.1 session) and as 3.0
    (SyncML 1.2 sessions); our 2.1 -> 3.0 must give its 3.0 (minus PRODID) and back."""
    def key(data: str) -> tuple[str, ...]:
        comp = parse_component(data)
        return tuple(line.value for line in comp.properties if line.name in ("FN", "TEL"))

    by_name_30 = {key(item.data): crlf(item.data) for item in VCARD30}
    checked = 0
    for item in VCARD21:
        if key(item.data) not in by_name_30:
            continue
        original30 = by_name_30[key(item.data)]
        assert vcard21_to_30(item.data) == _without_prodid(original30)
        assert vcard30_to_21(original30).text == crlf(item.data)
        checked += 1
    assert checked >= 5


def test_ximian_21_golden() -> None:
    item = next(i for i in VCARD21 if "Ximian" in i.data)
    assert vcard21_to_30(item.data) == crlf(
        "BEGIN:VCARD\n"
        "VERSION:3.0\n"
        "X-EVOLUTION-FILE-AS:Ximian, Inc.\n"
        "N:\n"
        "FN:Ximian\\, Inc.\n"
        "LABEL;TYPE=WORK:401 Park Drive  3 West\\nBoston\\, MA\\n02215\\nUSA\n"
        "TEL;TYPE=WORK,VOICE:(617) 236-0442\n"
        "TEL;TYPE=WORK,FAX:(617) 236-8630\n"
        "EMAIL;TYPE=INTERNET:[EMAIL PROTECTED]\n"
        "URL:www.ximian.com/\n"
        "ORG:Ximian\\, Inc.\n"
        "NOTE:Welcome to the Ximian Addressbook.\n"
        "UID:pas-id-3F4B790300000000\n"
        "END:VCARD\n"
    )


def _large_photo_card() -> str:
    """The ~20 KB PHOTO contact, sent as a large object split over two messages."""
    folder = next(VECTORS.glob("syncevolution/http-xml-1.2/06-*"))
    chunks = []
    for name in ("07-c2s.xml", "09-c2s.xml"):
        tree = etree.parse(str(folder / name))
        chunks += [
            e.text for e in tree.iter()
            if isinstance(e.tag, str) and etree.QName(e).localname == "Data"
            and e.text and len(e.text) > 1000
        ]
    return "".join(chunks)


def test_large_photo_round_trip() -> None:
    card = _large_photo_card()
    photo30 = parse_component(card).get("PHOTO")
    assert photo30 is not None and photo30.types == ("JPEG",)
    v21 = vcard30_to_21(card).text
    assert "PHOTO;JPEG;ENCODING=BASE64:" in v21
    assert "\r\n\r\n" in v21  # 2.1 base64 ends with an empty line
    photo21 = parse_component(v21).get("PHOTO")
    assert photo21 is not None and photo21.decoded() == photo30.decoded()
    back = parse_component(vcard21_to_30(v21)).get("PHOTO")
    assert back is not None
    assert back.params == (Param("TYPE", ("JPEG",)), Param("ENCODING", ("b",)))
    assert back.decoded() == photo30.decoded()


# ---------------------------------------------------------------------------
# Conversion rules
# ---------------------------------------------------------------------------


def _card(*lines: str, version: str = "3.0") -> str:
    return "".join(f"{line}\r\n" for line in ("BEGIN:VCARD", f"VERSION:{version}", *lines,
                                               "END:VCARD"))


def test_params_map_both_ways() -> None:
    v30 = _card(
        "N:Doe;John;;;", "FN:John Doe", "TEL;TYPE=cell,pref:+1", "TEL;TYPE=WORK;TYPE=VOICE:+2",
        "URL;VALUE=uri:http://example.com/", "EMAIL;PREF=1:j@example.com",
        "item1.X-ABLabel;X-FOO=bar:Custom",
    )
    v21 = vcard30_to_21(v30).text
    assert "TEL;CELL;PREF:+1\r\n" in v21
    assert "TEL;WORK;VOICE:+2\r\n" in v21
    assert "URL;VALUE=URL:http://example.com/\r\n" in v21
    assert "EMAIL;PREF:j@example.com\r\n" in v21
    assert "item1.X-ABLABEL;X-FOO=bar:Custom\r\n" in v21
    back = vcard21_to_30(v21)
    assert "TEL;TYPE=CELL,PREF:+1\r\n" in back
    assert "URL;VALUE=uri:http://example.com/\r\n" in back


def test_email_internet_type_for_nokia() -> None:
    v30 = _card("N:D;J;;;", "FN:J D", "EMAIL:j@example.com", "EMAIL;TYPE=X400:x")
    out = vcard30_to_21(v30, email_internet_type=True).text
    assert "EMAIL;INTERNET:j@example.com" in out
    assert "EMAIL;X400:x" in out


def test_escaping_rules() -> None:
    v30 = _card(
        "N:O\\,Brien\\;x;Seán;;;", "FN:Seán O\\,Brien", "NOTE:a\\, b\\; c\\\\d\\ne",
        "ADR;TYPE=HOME:;;1 High St\\, Flat 2;London;;N1;UK", "CATEGORIES:Work,A\\,B",
        "X-PATH:c:\\\\dir\\;x,y",
    )
    v21 = vcard30_to_21(v30).text
    # 2.1 escapes ';' but not ',', and carries the new line as QP.
    assert "ADR;HOME:;;1 High St, Flat 2;London;;N1;UK\r\n" in v21
    assert "NOTE;ENCODING=QUOTED-PRINTABLE:a, b\\; c\\d=0D=0Ae\r\n" in v21
    assert "CATEGORIES:Work,A\\,B\r\n" in v21
    assert "X-PATH:c:\\\\dir\\;x,y\r\n" in v21
    assert vcard21_to_30(v21) == v30


def test_fn_derived_from_n_and_n_added() -> None:
    out = vcard21_to_30(_card("N:Doe;John;Q.;Dr.;Jr.", version="2.1"))
    assert "FN:Dr. John Q. Doe Jr.\r\n" in out
    out = vcard21_to_30(_card("ORG:ACME;Sales", version="2.1"))
    assert "N:;;;;\r\nFN:ACME Sales\r\n" in out
    v21 = vcard30_to_21(_card("FN:Only Fn")).text
    assert "N:Only Fn;;;;\r\n" in v21


def test_lossy_charset_is_reported() -> None:
    v30 = _card("N:Müller;Jürgen;;;", "FN:Jürgen Müller", "NOTE:Привет", "TITLE:plain")
    conv = vcard30_to_21(v30, charset="ISO-8859-1")
    assert conv.lossy_properties == ("NOTE",)
    assert "N;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:M=FCller;J=FCrgen;;;" in conv.text
    assert "NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:??????" in conv.text
    assert not vcard30_to_21(v30, charset="UTF-8").lossy


def test_no_fold_for_motorola() -> None:
    v30 = _card("N:X;;;;", "FN:X", "NOTE:" + "é" * 100)
    out = vcard30_to_21(v30, fold=False).text
    assert any(len(line) > 300 for line in out.split("\r\n"))
    assert "=\r\n" not in out


# ---------------------------------------------------------------------------
# Hypothesis: arbitrary Unicode through 2.1
# ---------------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc")),
        st.sampled_from(
            ["\n", "\t", ";", ",", "\\", ":", "=", " ", "😀", "Ж", "漢", "é", "\u0301", "\u200d",
             "\U0001f1e9"]
        ),
    ),
    max_size=40,
)


def _verbatim30(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace("\n", "\\n")


@st.composite
def cards30(draw: st.DrawFn) -> str:
    parts = [draw(TEXT) for _ in range(5)]
    adr = [draw(TEXT) for _ in range(7)]
    cats = draw(st.lists(TEXT, min_size=1, max_size=3))
    lines = [
        "N:" + ";".join(escape30(p) for p in parts),
        "FN:" + escape30(draw(TEXT)),
        "NOTE:" + escape30(draw(TEXT)),
        "ORG:" + escape30(draw(TEXT)) + ";" + escape30(draw(TEXT)),
        "ADR;TYPE=HOME:" + ";".join(escape30(p) for p in adr),
        "TEL;TYPE=CELL,PREF:+49 151 000",
        "EMAIL;TYPE=INTERNET:" + escape30(draw(TEXT)),
        "CATEGORIES:" + ",".join(escape30(c) for c in cats),
        "X-CUSTOM:" + _verbatim30(draw(TEXT)),
    ]
    return vcard21_to_30(_card(*lines))  # canonical 3.0 (folded, CRLF)


def _charset_filter(text: str, charset: str) -> str:
    return text.encode(charset, errors="replace").decode(charset)


@given(cards30())
def test_roundtrip_utf8_is_lossless(card: str) -> None:
    conv = vcard30_to_21(card, charset="UTF-8")
    assert not conv.lossy
    assert all(ord(ch) < 128 for ch in conv.text)  # QP keeps the 2.1 side ASCII
    assert vcard21_to_30(conv.text) == card


@given(cards30())
@settings(max_examples=100)
def test_roundtrip_latin1_loses_only_what_it_must(card: str) -> None:
    conv = vcard30_to_21(card, charset="ISO-8859-1")
    comp = parse_component(card)
    expected_lossy = []
    for line in comp.properties:
        if any(ord(ch) > 255 for ch in line.value) and line.name not in expected_lossy:
            expected_lossy.append(line.name)
    assert list(conv.lossy_properties) == expected_lossy
    back = parse_component(vcard21_to_30(conv.text))
    for before, after in zip(comp.properties, back.properties, strict=True):
        assert after.value == _charset_filter(before.value, "latin-1")


@given(st.lists(cards30(), min_size=1, max_size=3))
@settings(max_examples=30)
def test_several_cards_in_one_text(cards: list[str]) -> None:
    joined = "".join(cards)
    assert len(parse_components(vcard30_to_21(joined).text)) == len(cards)
    assert vcard21_to_30(vcard30_to_21(joined).text) == joined


@given(TEXT, st.sampled_from(["UTF-8", "ISO-8859-1", "WINDOWS-1252"]))
def test_qp_roundtrip(text: str, charset: str) -> None:
    encoded, lossy = qp_encode(text, charset)
    codec = {"UTF-8": "utf-8", "ISO-8859-1": "latin-1", "WINDOWS-1252": "cp1252"}[charset]
    expected = _charset_filter(text, codec)
    assert lossy == (expected != text)
    assert qp_decode(encoded, charset) == expected
