"""The device quirk table and its golden files.

``golden/<device>/device.txt`` names the device as its DevInf does (``Man``,
``Mod``, ``SwV``, and optionally the phone's ``TZ``); every
``<quirk>.in.(vcf|ics)`` next to it is a desktop item and
``<quirk>.out.(vcf|vcs)`` what the codec sends that device.  The quirk named
by the file must be among those applied; ``<quirk>.lossy`` lists the
properties the codec must report as not representable.  Set
``SYNCMLD_REGEN_GOLDEN=1`` to rewrite the expected files after a deliberate
change (and review the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncmld.engine.server import _Store
from syncmld.engine.session import Datastore
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.formats.codec import FormatCodec
from syncmld.formats.quirks import QUIRKS, DeviceProfile, profile_for
from syncmld.formats.vcard import parse_components
from syncmld.protocol.devinf import ContentTypeRef, DataStore, DevInf

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(GOLDEN.glob("*/*.in.*"))


def _device(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (folder / "device.txt").read_text("utf-8").splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def _codec(case: Path) -> tuple[FormatCodec, str]:
    dev = _device(case.parent)
    devinf = DevInf(ver_dtd="1.1", man=dev["Man"], mod=dev["Mod"], sw_v=dev.get("SwV"),
                    dev_id="golden", dev_typ="phone")
    kind = "contacts" if case.suffix == ".vcf" else "calendar"
    codec = FormatCodec(kind, device_tz=dev.get("TZ")).for_peer(devinf, "./golden")
    return codec, case.name.split(".in.")[0]


def test_every_quirk_has_a_golden_file() -> None:
    names = {c.name.split(".in.")[0] for c in CASES}
    # The message-size and GUID-size limits change no item; they are checked below.
    untestable = {"sonyericsson-max-msg-2700", "sonyericsson-latin1-alias", "p900-max-guid-4"}
    assert {q.name for q in QUIRKS} - untestable <= names
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=[f"{c.parent.name}/{c.name}" for c in CASES])
def test_golden(case: Path) -> None:
    codec, quirk = _codec(case)
    assert quirk in codec.profile.applied
    text, ctype = codec.to_remote(case.read_text("utf-8"), ())
    assert ctype.mime in ("text/x-vcard", "text/x-vcalendar")
    suffix = ".vcf" if case.suffix == ".vcf" else ".vcs"
    expected = case.with_name(f"{quirk}.out{suffix}")
    if os.environ.get("SYNCMLD_REGEN_GOLDEN"):
        expected.write_bytes(text.encode("utf-8"))
    assert text == expected.read_bytes().decode("utf-8")
    lossy_file = case.with_name(f"{quirk}.lossy")
    lossy = lossy_file.read_text("utf-8").split() if lossy_file.exists() else []
    reported = " ".join(codec.warnings)
    for name in lossy:
        assert name in reported
    if not lossy:
        assert codec.warnings == []
    # What the device gets reads back; no field is lost the device could hold.
    back = codec.to_local(text, ctype.mime)
    assert parse_components(back)


def test_golden_effects() -> None:
    """The visible effect of each quirk, stated once more in words."""
    def out(device: str, quirk: str) -> str:
        return next(GOLDEN.glob(f"{device}/{quirk}.out.*")).read_bytes().decode("utf-8")

    assert "EMAIL;INTERNET:aino@example.fi" in out("nokia", "nokia-email-internet")
    assert "DTSTART:19800314" in out("nokia", "nokia-min-year-1980")
    assert "BEGIN:VTODO" in out("nokia", "nokia-calendar-holds-tasks")
    alarm = out("nokia6600", "nokia-alarms-utc")
    assert "DTSTART:20240710T090000" in alarm and "DALARM:20240710T064500Z" in alarm
    assert "CHARSET=ISO-8859-1" in out("sonyericsson", "sonyericsson-latin1")
    moto = out("motorola", "motorola-no-folding")
    assert all(not line.startswith((" ", "\t")) for line in moto.split("\r\n"))
    assert any(len(line) > 75 for line in moto.split("\r\n"))
    assert "FN:Hubert Blaine Wolfeschlegelstein\r\n" in out("motorola", "motorola-field-length")
    eight = out("motorola", "motorola-quote-8bit")
    assert eight.isascii() and "ENCODING=QUOTED-PRINTABLE" in eight
    assert "T000000" in out("p900", "p900-allday-epoc")


def test_profile_matching() -> None:
    assert profile_for(None, None) == DeviceProfile()
    nokia = profile_for("NOKIA", "Nokia 6230i", "V 03.88")
    assert nokia.email_internet_type and nokia.min_year == 1980 and nokia.calendar_holds_tasks
    assert nokia.tz_mode == "utc"
    assert profile_for("Nokia", "Nokia 6600").tz_mode == "local"
    se = profile_for("Sony Ericsson", "K750i")
    assert se.charset == "ISO-8859-1" and se.max_msg_size == 2700 and se.max_guid_size is None
    assert profile_for("SonyEricsson", "W810i").charset == "ISO-8859-1"
    p900 = profile_for("Sony Ericsson", "P900")
    assert p900.max_guid_size == 4 and p900.allday == "epoc"
    moto = profile_for("Motorola CE, Copyright 2004", "MOTOV3")
    assert not moto.fold and dict(moto.field_lengths)["FN"] == 32 and moto.quote_8bit
    assert profile_for("Motorola", "E398").field_lengths == ()
    assert profile_for("Samsung", "SGH-D500").applied == ()


def test_every_quirk_names_its_device() -> None:
    source = Path(__file__).resolve().parents[2] / "syncmld" / "formats" / "quirks.py"
    text = source.read_text("utf-8")
    for quirk in QUIRKS:
        assert quirk.device
        before = text[: text.index(f'name="{quirk.name}"')]
        comment = before[before.rstrip().rfind("\n    #"):]
        assert "#" in comment, quirk.name


def test_p900_guid_limit_applies_without_devinf_limit() -> None:
    ref = ContentTypeRef(ct_type="text/x-vcard", ver_ct="2.1")
    peer_store = DataStore(source_ref="Contacts", rx_pref=ref, tx_pref=ref)  # no MaxGUIDSize
    devinf = DevInf(ver_dtd="1.1", man="Sony Ericsson", mod="P900", dev_id="p900",
                    dev_typ="smartphone", datastores=(peer_store,))
    ds = Datastore(name="contacts", store=MemoryStore(content_types=(VCARD_30,)))

    def store(codec: FormatCodec | None) -> _Store:
        st = _Store(ds, remote_uri="Contacts", requested=200, mode=200, pair=None,
                    local_anchor="a", remote_next="b", peer_store=peer_store)
        if codec is not None:
            st.codec = codec
        return st

    long_id = "0f8e5c1a-6b7d-4c3e-9a21-5d4f3b2a1c0e.vcf"
    assert store(None).guid_for(long_id) == long_id  # nothing says the limit
    bound = FormatCodec("contacts").for_peer(devinf, "Contacts")
    st = store(bound)
    guid = st.guid_for(long_id)
    assert len(guid.encode()) <= 4 and st.guids[guid] == long_id
    assert bound.max_msg_size == 2700
