"""Server Alerted Notification: the DS 1.2 binary form and the 1.0/1.1 package 0."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmld.protocol.codec import Encoding, decode_message, encode_message
from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.model import Alert, Cred, Item, Location, Message, Meta, Status, SyncHdr
from syncmld.protocol.san import (
    CONTENT_TYPES,
    SAN_CONTENT_TYPE,
    San,
    SanAlert,
    build_san,
    content_type_name,
    content_type_number,
    is_san,
    message_to_san,
    parse_san,
    san_digest,
    san_to_message,
    verify_san_digest,
)

from .conftest import DATA

#: The reference's worked example (§4.4): version 12, ui 0, initiator server,
#: session 1, server id "PC Suite", one sync 206 of "Contacts", type 0x07.
EXAMPLE = San(
    version="1.2",
    ui_mode=0,
    initiator_server=True,
    session_id=1,
    server_id="PC Suite",
    alerts=(SanAlert(sync_type=206, content_type=0x07, server_uri="Contacts"),),
)
EXAMPLE_NOTIFICATION = bytes.fromhex(
    "03 08 00 00 00 00 01 08 50 43 20 53 75 69 74 65 10 60 00 00 07 08 43 6f 6e 74 61 63 74 73"
)


def test_worked_example() -> None:
    data = build_san(EXAMPLE, password=None, nonce=b"")
    assert data == bytes(16) + EXAMPLE_NOTIFICATION
    assert parse_san(data) == EXAMPLE
    assert is_san(data)
    assert verify_san_digest(data, "PC Suite", None, b"")
    assert SAN_CONTENT_TYPE == "application/vnd.syncml.ds.notification"


def test_digest_formula() -> None:
    def md5b64(b: bytes) -> bytes:
        return base64.b64encode(hashlib.md5(b).digest())

    nonce = b"SyncEvolution"  # what SyncEvolution uses when it knows no nonce
    data = build_san(EXAMPLE, password="secret", nonce=nonce)
    expected = hashlib.md5(
        md5b64(b"PC Suite:secret") + b":" + nonce + b":" + md5b64(EXAMPLE_NOTIFICATION)
    ).digest()
    assert data == expected + EXAMPLE_NOTIFICATION
    assert san_digest(
        EXAMPLE_NOTIFICATION, server_id="PC Suite", password="secret", nonce=nonce
    ) == (expected)
    assert verify_san_digest(data, "PC Suite", "secret", nonce)
    assert not verify_san_digest(data, "PC Suite", "Secret", nonce)
    assert not verify_san_digest(data, "PC Suite", "secret", b"")
    assert not verify_san_digest(data, "PC suite", "secret", nonce)
    assert not verify_san_digest(data, "PC Suite", None, nonce)
    tampered = data[:-1] + b"S"
    assert not verify_san_digest(tampered, "PC Suite", "secret", nonce)
    assert not verify_san_digest(data[:10], "PC Suite", "secret", nonce)
    assert parse_san(data) == EXAMPLE


def test_header_bits() -> None:
    san = dataclasses.replace(
        EXAMPLE, version="1.1", ui_mode=3, initiator_server=False, session_id=0xBEEF
    )
    data = build_san(san, password=None, nonce=b"")
    # version 11 in the top 10 bits (not shifted by 8), ui-mode 3, initiator 0
    assert data[16:21] == bytes([0x02, 0xC0 | 0x30, 0, 0, 0])
    assert data[21:23] == b"\xbe\xef"
    assert parse_san(data) == san
    assert is_san(data)
    flags = dataclasses.replace(EXAMPLE, ui_mode=2)
    assert build_san(flags, password=None, nonce=b"")[16:18] == bytes([0x03, 0x28])


def test_several_alerts_all_datastores_and_vendor_bytes() -> None:
    san = San(
        session_id=65535,
        server_id="syncmld",
        alerts=tuple(
            SanAlert(sync_type=t, content_type=c, server_uri=u)
            for t, c, u in [(206, 0x07, "Contacts"), (209, 0x0305, "Calendar"), (210, 0, "")]
        ),
        vendor=b"\x00\xffvendor",
    )
    data = build_san(san, password="pw", nonce=b"n")
    assert parse_san(data) == san
    assert data.endswith(b"\x00\xffvendor")
    everything = San(session_id=7, server_id="", vendor=b"x")
    data = build_san(everything, password=None, nonce=b"")
    assert data[24] == 0x00  # "sync all data stores"
    assert parse_san(data) == everything


def test_future_use_bits_are_ignored() -> None:
    data = bytearray(build_san(EXAMPLE, password=None, nonce=b""))
    data[17] |= 0x07
    data[18:21] = b"\xff\xff\xff"
    data[32] |= 0x0F  # beside the number of syncs
    data[33] |= 0x0F  # beside the sync type
    assert parse_san(bytes(data)) == EXAMPLE


def test_every_truncation_is_refused() -> None:
    san = dataclasses.replace(
        EXAMPLE, alerts=(*EXAMPLE.alerts, SanAlert(sync_type=207, server_uri="Notes"))
    )
    data = build_san(san, password=None, nonce=b"")
    for n in range(len(data)):
        with pytest.raises(RemoteProtocolError) as exc:
            parse_san(data[:n])
        assert exc.value.status == 400
        assert exc.value.offset is not None and 0 <= exc.value.offset <= n


@pytest.mark.parametrize("version", [0, 9, 13, 1023])
def test_unknown_version(version: int) -> None:
    data = bytearray(build_san(EXAMPLE, password=None, nonce=b""))
    data[16:18] = ((version << 6) | (data[17] & 0x3F)).to_bytes(2, "big")
    assert not is_san(bytes(data))
    with pytest.raises(RemoteProtocolError) as exc:
        parse_san(bytes(data))
    assert exc.value.status == 513 and exc.value.offset == 16


@pytest.mark.parametrize("sync_type", [0, 1, 5, 11, 15])
def test_sync_type_outside_6_to_10(sync_type: int) -> None:
    data = bytearray(build_san(EXAMPLE, password=None, nonce=b""))
    data[33] = sync_type << 4  # the sync's first byte
    with pytest.raises(RemoteProtocolError) as exc:
        parse_san(bytes(data))
    assert exc.value.status == 400 and exc.value.offset == 33


def test_lengths_running_past_the_end() -> None:
    data = bytearray(build_san(EXAMPLE, password=None, nonce=b""))
    data[23] = 200  # server-id length
    with pytest.raises(RemoteProtocolError, match="server id"):
        parse_san(bytes(data))
    data = bytearray(build_san(EXAMPLE, password=None, nonce=b""))
    data[-9] = 9  # URI length, one more than there is
    with pytest.raises(RemoteProtocolError, match="server URI"):
        parse_san(bytes(data))
    data = bytearray(build_san(EXAMPLE, password=None, nonce=b""))
    data[32] = 0x30  # three syncs announced, one there
    with pytest.raises(RemoteProtocolError, match="sync 2 of 3"):
        parse_san(bytes(data))


def test_latin1_server_id() -> None:
    data = bytearray(
        build_san(dataclasses.replace(EXAMPLE, server_id="PC-Suit?"), password=None, nonce=b"")
    )
    data[31] = 0xE9  # ISO-8859-1 e acute where the ? was
    assert parse_san(bytes(data)).server_id == "PC-Suité"


@pytest.mark.parametrize(
    "change",
    [
        {"version": "2.0"},
        {"ui_mode": 4},
        {"ui_mode": -1},
        {"session_id": 65536},
        {"session_id": -1},
        {"server_id": "x" * 256},
        {"alerts": (SanAlert(sync_type=206, server_uri="a"),) * 16},
        {"alerts": (SanAlert(sync_type=201, server_uri="a"),)},
        {"alerts": (SanAlert(sync_type=211, server_uri="a"),)},
        {"alerts": (SanAlert(sync_type=206, content_type=1 << 24, server_uri="a"),)},
        {"alerts": (SanAlert(sync_type=206, content_type=-1, server_uri="a"),)},
        {"alerts": (SanAlert(sync_type=206, server_uri="é" * 128),)},
    ],
)
def test_build_refuses_what_does_not_fit(change: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        build_san(dataclasses.replace(EXAMPLE, **change), password=None, nonce=b"")  # type: ignore[arg-type]


def test_is_san_on_other_documents() -> None:
    vectors = DATA / "vectors"
    others = [*vectors.rglob("*.wbxml"), *vectors.rglob("*.xml")]
    assert len(others) > 100
    for p in others:
        assert not is_san(p.read_bytes()), p
    assert not is_san(b"")
    assert not is_san(bytes(16) + EXAMPLE_NOTIFICATION[:8])


def test_content_type_numbers() -> None:
    assert CONTENT_TYPES["text/x-vcard"] == 0x07
    assert content_type_number("text/x-vcalendar") == 0x06
    assert content_type_number("TEXT/PLAIN; charset=utf-8") == 0x03
    assert content_type_number("text/calendar") == 0x0305
    assert content_type_number("application/x-unknown") == 0
    assert content_type_number(None) == 0
    assert content_type_name(0x0309) == "text/vcard"
    assert content_type_name(0) is None


_text = st.text(max_size=20).filter(lambda t: len(t.encode()) <= 255)
_alerts = st.builds(
    SanAlert,
    sync_type=st.integers(206, 210),
    content_type=st.integers(0, 0xFFFFFF),
    server_uri=_text,
)
_sans = st.builds(
    San,
    version=st.sampled_from(["1.0", "1.1", "1.2"]),
    ui_mode=st.integers(0, 3),
    initiator_server=st.booleans(),
    session_id=st.integers(0, 0xFFFF),
    server_id=_text,
    alerts=st.lists(_alerts, max_size=15).map(tuple),
    vendor=st.binary(max_size=20),
)


@given(_sans, st.none() | st.text(max_size=10), st.binary(max_size=16))
def test_random_round_trip(san: San, password: str | None, nonce: bytes) -> None:
    data = build_san(san, password=password, nonce=nonce)
    assert parse_san(data) == san
    assert is_san(data)
    assert verify_san_digest(data, san.server_id, password, nonce)


@given(st.binary(max_size=80))
def test_random_bytes(data: bytes) -> None:
    try:
        parse_san(data)
    except RemoteProtocolError as exc:
        assert exc.status in (400, 513)


@given(_sans, st.data())
def test_random_corruption(san: San, data: st.DataObject) -> None:
    raw = bytearray(build_san(san, password=None, nonce=b""))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    with contextlib.suppress(RemoteProtocolError):
        parse_san(bytes(raw[:cut]))


# --- package 0 -----------------------------------------------------------------

PKG0 = San(
    version="1.1",
    session_id=42,
    server_id="PC Suite",
    alerts=(
        SanAlert(sync_type=206, content_type=0x07, server_uri="Contacts"),
        SanAlert(sync_type=210, content_type=0x06, server_uri="Calendar"),
        SanAlert(sync_type=207, content_type=0, server_uri="Notes"),
    ),
)


def test_san_to_message() -> None:
    msg = san_to_message(PKG0, target="IMEI:355884000217404")
    hdr = msg.header
    assert (hdr.ver_dtd, hdr.ver_proto, hdr.session_id, hdr.msg_id) == (
        "1.1",
        "SyncML/1.1",
        "42",
        1,
    )
    assert hdr.source == Location(uri="PC Suite")
    assert hdr.target == Location(uri="IMEI:355884000217404")
    assert msg.final
    vcard, vcal = Meta(type="text/x-vcard"), Meta(type="text/x-vcalendar")
    assert msg.commands == (
        Alert(cmd_id=1, data=206, items=(Item(source=Location(uri="Contacts"), meta=vcard),)),
        Alert(cmd_id=2, data=210, items=(Item(source=Location(uri="Calendar"), meta=vcal),)),
        Alert(cmd_id=3, data=207, items=(Item(source=Location(uri="Notes")),)),
    )
    assert san_to_message(PKG0).header.target == Location(uri="/")
    cred = Cred(meta=Meta(type="syncml:auth-basic", format="b64"), data="dGVzdDpzZWNyZXQ=")
    assert san_to_message(PKG0, cred=cred).header.cred == cred


@pytest.mark.parametrize("encoding", list(Encoding))
@pytest.mark.parametrize("version", ["1.0", "1.1"])
def test_package0_through_the_codec(encoding: Encoding, version: str) -> None:
    san = dataclasses.replace(PKG0, version=version)
    data = encode_message(san_to_message(san), encoding)
    assert not is_san(data)
    assert message_to_san(decode_message(data)) == san


def _message(*commands: object, session_id: str = "3", version: str = "1.1") -> Message:
    hdr = SyncHdr(
        ver_dtd=version,
        ver_proto=f"SyncML/{version}",
        session_id=session_id,
        msg_id=1,
        target=Location(uri="/"),
        source=Location(uri="server"),
    )
    return Message(header=hdr, commands=commands, final=True)  # type: ignore[arg-type]


def test_message_to_san_tolerance() -> None:
    """One Alert with several Items (libsynthesis' layout), a URI only in
    Target, other commands and non-sync alerts beside it."""
    msg = _message(
        Status(cmd_id=1, cmd_ref=0, cmd="SyncHdr", data=200),
        Alert(cmd_id=2, data=222),
        Alert(
            cmd_id=3,
            data=209,
            items=(
                Item(source=Location(uri="card"), meta=Meta(type="text/x-vcard")),
                Item(target=Location(uri="event"), meta=Meta(type="text/calendar")),
            ),
        ),
        session_id=" 0042 ",
    )
    assert message_to_san(msg) == San(
        version="1.1",
        session_id=42,
        server_id="server",
        alerts=(
            SanAlert(sync_type=209, content_type=0x07, server_uri="card"),
            SanAlert(sync_type=209, content_type=0x0305, server_uri="event"),
        ),
    )


_A206 = Alert(cmd_id=1, data=206, items=(Item(source=Location(uri="a")),))


@pytest.mark.parametrize(
    ("msg", "status"),
    [
        (_message(), 412),
        (_message(Alert(cmd_id=1, data=222)), 412),
        (_message(Alert(cmd_id=1, data=200, items=(Item(source=Location(uri="a")),))), 400),
        (_message(Alert(cmd_id=1, data=206, items=(Item(),))), 412),
        (_message(Alert(cmd_id=1, data=206, items=(Item(source=Location(uri="")),))), 412),
        (_message(_A206, session_id="x1"), 400),
        (_message(_A206, session_id="65536"), 400),
        (_message(_A206, session_id="-1"), 400),
    ],
)  # fmt: skip
def test_message_to_san_refuses(msg: Message, status: int) -> None:
    with pytest.raises(RemoteProtocolError) as exc:
        message_to_san(msg)
    assert exc.value.status == status


@pytest.mark.parametrize(
    "san",
    [
        dataclasses.replace(PKG0, alerts=()),
        dataclasses.replace(PKG0, version="2.0"),
        dataclasses.replace(PKG0, alerts=(SanAlert(sync_type=200, server_uri="a"),)),
    ],
)
def test_san_to_message_refuses(san: San) -> None:
    with pytest.raises(LocalProtocolError):
        san_to_message(san)
