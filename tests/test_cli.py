"""``syncmld decode`` and ``syncmld encode`` run as a user runs them: a real process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from syncmld.protocol.codec import decode_document, decode_message

from .conftest import DATA

K700I = DATA / "vectors/horde/wbxml/k700i_syncml_client_0.wbxml"
A780 = DATA / "vectors/horde/wbxml/MotorolaA780.wbxml"
FUNAMBOL = DATA / "vectors/horde/sessions/funambol_outlook3015_calendar/syncml_client_10.xml"


def syncmld(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "syncmld.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_decode_prints_indented_xml_of_a_phone_capture() -> None:
    r = syncmld("decode", str(K700I))
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.startswith("<?xml")
    assert '<MaxMsgSize xmlns="syncml:metinf">2700</MaxMsgSize>' in out
    assert "\n  <SyncHdr>" in out  # indented
    assert decode_message(r.stdout) == decode_message(K700I.read_bytes())


def test_decode_reads_standard_input() -> None:
    r = syncmld("decode", "-", stdin=A780.read_bytes())
    assert r.returncode == 0, r.stderr
    assert decode_message(r.stdout) == decode_message(A780.read_bytes())


def test_decode_inlines_a_nested_devinf_document() -> None:
    r = syncmld("decode", str(A780))
    assert r.returncode == 0, r.stderr
    assert b'<DevInf xmlns="syncml:devinf">' in r.stdout


@pytest.mark.parametrize("numeric", [False, True])
def test_encode_converts_both_ways(tmp_path: Path, numeric: bool) -> None:
    wbxml = tmp_path / "out.wbxml"
    args = ["encode", "--wbxml", str(FUNAMBOL), "-o", str(wbxml)]
    if numeric:
        args.append("--numeric-public-id")
    r = syncmld(*args)
    assert r.returncode == 0, r.stderr
    data = wbxml.read_bytes()
    assert data[0] == 0x02
    assert decode_document(data).encoding.name == "WBXML"
    assert decode_message(data) == decode_message(FUNAMBOL.read_bytes())

    r = syncmld("encode", "--xml", str(wbxml))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"<?xml")
    assert decode_message(r.stdout) == decode_message(FUNAMBOL.read_bytes())


def _one_clear_line(r: subprocess.CompletedProcess[bytes]) -> str:
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert r.stdout == b""
    return err


def test_truncated_wbxml_names_the_byte_offset(tmp_path: Path) -> None:
    bad = tmp_path / "cut.wbxml"
    bad.write_bytes(K700I.read_bytes()[:100])
    err = _one_clear_line(syncmld("decode", str(bad)))
    assert str(bad) in err
    assert re.search(r"at byte \d+", err)


def test_broken_xml_names_the_byte_offset() -> None:
    err = _one_clear_line(syncmld("decode", "-", stdin=b"<SyncML><SyncHdr></SyncML>"))
    assert re.search(r"at byte \d+", err)


def test_not_syncml_at_all() -> None:
    err = _one_clear_line(syncmld("decode", "-", stdin=b"\x89PNG\r\n\x1a\n"))
    assert "neither XML nor WBXML" in err
    err = _one_clear_line(syncmld("encode", "--wbxml", "-", stdin=b"<html><body/></html>"))
    assert "html" in err


def test_missing_element_is_reported() -> None:
    err = _one_clear_line(
        syncmld(
            "decode",
            "-",
            stdin=b"<SyncML><SyncHdr><VerDTD>1.2</VerDTD></SyncHdr>"
            b"<SyncBody/></SyncML>",
        )
    )
    assert "SyncHdr has no SessionID" in err


def test_missing_file_and_usage_errors() -> None:
    err = _one_clear_line(syncmld("decode", "/nonexistent/x.wbxml"))
    assert "cannot read /nonexistent/x.wbxml" in err
    r = syncmld("encode", str(K700I))  # neither --wbxml nor --xml
    assert r.returncode == 2
