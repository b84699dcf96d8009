"""Hostile input is refused with ``RemoteProtocolError``, quickly and in bounded memory.

Every case goes through the public entry point (``decode_message``, which
sniffs XML vs WBXML) unless it tests a codec detail.  Each refusal is timed
(loosely: a few seconds on a busy CI machine, where the honest figure is
milliseconds) and, in a second run under ``tracemalloc``, its peak Python
memory is bounded.
"""

from __future__ import annotations

import base64
import socket
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from syncmld.protocol.codec import decode_document, decode_message, validate_document
from syncmld.protocol.errors import RemoteProtocolError
from syncmld.protocol.limits import DEFAULT_LIMITS, Limits
from syncmld.protocol.wbxml import decode_wbxml

#: Loose bound on the wall time of one refusal.
SECONDS = 5.0
MB = 1024 * 1024

#: WBXML 1.2, SyncML 1.2 (0x1201), UTF-8, empty string table.
WBXML_HEAD = b"\x02\xa4\x01\x6a\x00"
SYNCML_C = 0x6D  # SyncML tag with content
FINAL = 0x12  # Final, no content


def refused(
    data: bytes,
    *,
    limits: Limits = DEFAULT_LIMITS,
    decode: Callable[..., object] = decode_message,
    peak_mb: float | None = 16,
) -> RemoteProtocolError:
    """Decode ``data``; assert it is refused fast and (when ``peak_mb``) lean."""
    start = time.perf_counter()
    with pytest.raises(RemoteProtocolError) as exc:
        decode(data, limits=limits)
    elapsed = time.perf_counter() - start
    assert elapsed < SECONDS, f"refusal took {elapsed:.1f} s"
    if peak_mb is not None:
        tracemalloc.start()
        try:
            with pytest.raises(RemoteProtocolError):
                decode(data, limits=limits)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < peak_mb * MB, f"peak {peak / MB:.1f} MB"
    err = exc.value
    assert type(err) is RemoteProtocolError
    assert 400 <= err.status <= 599
    return err


# --- entities ------------------------------------------------------------------------

LAUGHS = "\n".join(
    ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
)
HEADER = (
    "<SyncHdr><VerDTD>1.2</VerDTD><VerProto>SyncML/1.2</VerProto><SessionID>1</SessionID>"
    "<MsgID>1</MsgID><Target><LocURI>srv</LocURI></Target><Source><LocURI>dev</LocURI></Source>"
    "</SyncHdr>"
)


def _message_with(internal_subset: str, data: str, *, decl: str = "") -> str:
    return (
        f"{decl}<!DOCTYPE SyncML [{internal_subset}]><SyncML>{HEADER}<SyncBody><Alert>"
        f"<CmdID>1</CmdID><Item><Data>{data}</Data></Item></Alert></SyncBody></SyncML>"
    )


def test_billion_laughs_is_refused() -> None:
    doc = _message_with(LAUGHS, "&lol9;").encode()
    err = refused(doc)
    assert err.status == 400
    assert err.offset == doc.index(b"<!ENTITY")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_billion_laughs_in_utf16_is_refused(codec: str) -> None:
    """A byte search for ``<!ENTITY`` does not see it in UTF-16."""
    doc = _message_with(LAUGHS, "&lol9;", decl='<?xml version="1.0" encoding="UTF-16"?>')
    data = doc.encode(codec)
    with pytest.raises(RemoteProtocolError):
        decode_message(data)
    if data[:1] == b"<":  # sniffed as XML: the XML codec itself must refuse it
        refused(data, decode=decode_document)


@contextmanager
def listening() -> Iterator[tuple[socket.socket, int]]:
    """A local TCP port that records whether anybody connected."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.setblocking(False)
    try:
        yield srv, srv.getsockname()[1]
    finally:
        srv.close()


def _nobody_connected(srv: socket.socket) -> bool:
    time.sleep(0.05)
    try:
        conn, _ = srv.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


@pytest.mark.parametrize("codec", ["utf-8", "utf-16-le"])
def test_external_entities_are_refused_and_never_fetched(codec: str) -> None:
    decl = f'<?xml version="1.0" encoding="{codec.upper()[:6]}"?>'
    with listening() as (srv, port):
        for uri in ("file:///etc/passwd", f"http://127.0.0.1:{port}/evil.dtd"):
            doc = _message_with(f'<!ENTITY xxe SYSTEM "{uri}">', "[&xxe;]", decl=decl)
            err = refused(doc.encode(codec), decode=decode_document)
            assert err.status == 400
            assert "root:" not in str(err)
        assert _nobody_connected(srv)


def test_external_dtd_is_accepted_but_never_fetched() -> None:
    """Real clients name the DTD by URL; we read the message, never the DTD."""
    with listening() as (srv, port):
        doc = (
            '<?xml version="1.0"?>\n<!DOCTYPE SyncML PUBLIC "-//SYNCML//DTD SyncML 1.2//EN" '
            f'"http://127.0.0.1:{port}/syncml.dtd">\n<SyncML>{HEADER}<SyncBody><Final/>'
            "</SyncBody></SyncML>"
        )
        msg = decode_message(doc.encode())
        assert msg.final
        assert _nobody_connected(srv)


def test_reference_to_an_undeclared_entity_is_refused() -> None:
    """With an external DTD named (and not read), ``&foo;`` is well-formed; it
    must not vanish together with the text after it."""
    doc = (
        '<?xml version="1.0"?><!DOCTYPE SyncML PUBLIC "-//SYNCML//DTD SyncML 1.2//EN" '
        f'"http://127.0.0.1:9/syncml.dtd"><SyncML>{HEADER}<SyncBody><Alert><CmdID>1</CmdID>'
        "<Item><Data>[&foo;]</Data></Item></Alert></SyncBody></SyncML>"
    )
    err = refused(doc.encode())
    assert err.status == 400
    assert "entity" in str(err)


# --- size ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xml", "wbxml"])
def test_100_mb_document_is_refused_before_it_is_looked_at(kind: str) -> None:
    size = 100 * 1000 * 1000
    if kind == "xml":
        data = b"<SyncML>" + b"<Final/>" * (size // 8) + b"</SyncML>"
    else:
        data = WBXML_HEAD + bytes((SYNCML_C,)) + bytes((FINAL,)) * size + b"\x01"
    err = refused(data, peak_mb=0.5)
    assert err.status == 413
    assert err.offset == DEFAULT_LIMITS.max_size


# --- WBXML structure ---------------------------------------------------------------------


def test_wbxml_string_table_reference_outside_the_table() -> None:
    table = b"abc\x00"
    for index in (b"\x0a", b"\x04", b"\x8f\xff\xff\xff\x7f"):  # 10, just past, 2**32-1
        data = b"\x02\xa4\x01\x6a" + bytes((len(table),)) + table + bytes((SYNCML_C,))
        at = len(data)
        data += b"\x83" + index + b"\x01"
        err = refused(data)
        assert err.status == 400
        assert err.offset == at
        assert "string table" in str(err)


def test_wbxml_literal_tag_name_outside_the_table() -> None:
    data = b"\x02\xa4\x01\x6a\x02a\x00" + bytes((SYNCML_C,)) + b"\x04\x09\x01"
    err = refused(data)
    assert err.offset == len(data) - 3


def test_wbxml_public_id_index_outside_the_table() -> None:
    data = b"\x02\x00\x05\x6a\x02a\x00" + bytes((SYNCML_C,)) + b"\x01"
    err = refused(data, decode=decode_wbxml)
    assert err.offset == 2  # the index field
    refused(data)  # and sniffing refuses it too


@pytest.mark.parametrize(
    ("data", "where"),
    [
        # OPAQUE whose length stops after a continuation byte.
        (WBXML_HEAD + bytes((SYNCML_C,)) + b"\xc3\x81", 7),
        # A string table length cut off.
        (b"\x02\xa4\x01\x6a\x81", 4),
        # A public id cut off (too short to sniff as WBXML at all).
        (b"\x02\x9f", None),
        # Six bytes: more than a 32-bit mb_u_int32 can need.
        (WBXML_HEAD + bytes((SYNCML_C,)) + b"\xc3\x81\x81\x81\x81\x81\x01", 7),
    ],
)
def test_wbxml_truncated_or_overlong_multibyte_integer(data: bytes, where: int | None) -> None:
    err = refused(data)
    if where is not None:
        direct = refused(data, decode=decode_wbxml)
        assert direct.offset == where
        assert "mb_u_int32" in str(direct)
    assert err.status in (400, 415)


def test_wbxml_opaque_longer_than_the_document() -> None:
    data = WBXML_HEAD + bytes((SYNCML_C,)) + b"\xc3\x8f\xff\xff\xff\x7f" + b"x" * 10
    err = refused(data, peak_mb=0.5)
    assert err.offset == 6


# --- nesting and element count -------------------------------------------------------------


@pytest.mark.parametrize("depth", [DEFAULT_LIMITS.max_depth + 1, 100_000])
def test_deeply_nested_xml(depth: int) -> None:
    data = b"<SyncML>" + b"<a>" * depth + b"</a>" * depth + b"</SyncML>"
    assert refused(data).status == 400


@pytest.mark.parametrize("depth", [DEFAULT_LIMITS.max_depth + 1, 100_000])
def test_deeply_nested_wbxml(depth: int) -> None:
    data = WBXML_HEAD + bytes((SYNCML_C,)) * depth + b"\x01" * depth
    err = refused(data)
    assert err.status == 400
    assert err.offset == len(WBXML_HEAD) + DEFAULT_LIMITS.max_depth


def test_deeply_nested_devinf_inside_wbxml_counts_the_outer_depth() -> None:
    """A DevInf document nested in Data starts at the depth of its Data."""
    inner = b"\x02\x9f\x54\x6a\x00" + b"\x4a" * 60 + b"\x01" * 60  # DevInf 1.1 (0x0FD4)
    outer = (
        WBXML_HEAD
        + bytes((SYNCML_C,))
        + b"\x6b\x5f\x54\x4f\xc3"  # SyncBody Put Item Data OPAQUE
        + bytes((len(inner),))
        + inner
        + b"\x01" * 5
    )
    err = refused(outer)
    assert err.status == 400
    assert "deeper" in str(err)
    assert err.offset is not None
    assert err.offset > outer.index(inner)  # inside the nested document


@pytest.mark.parametrize("kind", ["xml", "wbxml"])
def test_too_many_elements(kind: str) -> None:
    n = DEFAULT_LIMITS.max_elements + 1
    if kind == "xml":
        data = b"<SyncML>" + b"<Final/>" * n + b"</SyncML>"
    else:
        data = WBXML_HEAD + bytes((SYNCML_C,)) + bytes((FINAL,)) * n + b"\x01"
    assert len(data) < DEFAULT_LIMITS.max_size
    # Timed at the default limit; tracemalloc (which slows allocation several
    # times) measures the same refusal at a tenth of the limit.
    assert refused(data, peak_mb=None).status == 413
    small = Limits(max_elements=n // 10)
    assert refused(data, limits=small, peak_mb=48).status == 413


# --- required elements ----------------------------------------------------------------------

GOOD_XML = """<SyncML xmlns="SYNCML:SYNCML1.2">
<SyncHdr>
<VerDTD>1.2</VerDTD>
<VerProto>SyncML/1.2</VerProto>
<SessionID>1</SessionID>
<MsgID>1</MsgID>
<Target><LocURI>srv</LocURI></Target>
<Source><LocURI>dev</LocURI></Source>
</SyncHdr>
<SyncBody>
<Status>
<CmdID>1</CmdID>
<MsgRef>1</MsgRef>
<CmdRef>0</CmdRef>
<Cmd>SyncHdr</Cmd>
<Data>200</Data>
</Status>
<Alert>
<CmdID>2</CmdID>
<Data>201</Data>
</Alert>
<Final/>
</SyncBody>
</SyncML>
"""


def test_the_well_formed_message_is_accepted() -> None:
    msg = decode_message(GOOD_XML.encode())
    assert msg.header.session_id == "1"
    assert len(msg.commands) == 2


@pytest.mark.parametrize(
    ("remove", "element", "status"),
    [
        ("<CmdID>2</CmdID>\n", b"<Alert>", 412),
        ("<Data>200</Data>\n", b"<Status>", 412),
        ("<SessionID>1</SessionID>\n", b"<SyncHdr>", 412),
        ("<CmdRef>0</CmdRef>\n", b"<Status>", 412),
    ],
)
def test_missing_required_element_names_its_parent(
    remove: str, element: bytes, status: int
) -> None:
    data = GOOD_XML.replace(remove, "", 1).encode()
    err = refused(data)
    assert err.status == status
    assert err.offset is not None
    assert data[err.offset :].startswith(element)
    assert remove.strip()[1 : remove.index(">")] in str(err)


@pytest.mark.parametrize(
    ("replace", "by", "element"),
    [
        ("<CmdID>2</CmdID>", "<CmdID>two</CmdID>", b"<CmdID>two"),
        ("<Data>200</Data>", "<Data>2OO</Data>", b"<Data>2OO"),
    ],
)
def test_number_that_is_not_a_number(replace: str, by: str, element: bytes) -> None:
    data = GOOD_XML.replace(replace, by, 1).encode()
    err = refused(data)
    assert err.status == 400
    assert err.offset is not None
    assert data[err.offset :].startswith(element)


@pytest.mark.parametrize("verdtd", ["<VerDTD/>", "<VerDTD> </VerDTD>", "<VerDTD></VerDTD>"])
def test_empty_verdtd_is_refused_as_incomplete(verdtd: str) -> None:
    """Found by atheris: the model refuses an empty VerDTD with a
    LocalProtocolError, which must not escape the decoder."""
    data = GOOD_XML.replace("<VerDTD>1.2</VerDTD>", verdtd, 1).encode()
    err = refused(data)
    assert err.status == 412
    assert err.offset is not None
    assert data[err.offset :].startswith(b"<VerDTD")


def test_empty_verdtd_in_wbxml_is_refused_as_incomplete() -> None:
    # The atheris find: <VerDTD> holding elements and no text.
    crash = (
        "AqQBagBtbHEuMTIDAAFyA1N5bmNNTC8xLjIAAWUDNQABWwMzAAFuVwNjd2IxAAFWA3Rlc3QAAQFnVwNo"
        "dHRwOi8vMTI3LjAuMC4xOjkzMDAvc3luYz9zZXNzaXdiMQABVgN0ZXN0AAEBZ1cDaHR0cDovLzEyNy4w"
        "LjAuMTUwMDAwAAFVAzQwMDAwMDAAAQEBAABraUsDMQABXAMzAAFMAzAAAUoDU3luY2FkZHJlc3Nib29r"
        "AAFoAy4vYSdkZHJlc3Nib29rAAFPAzEwMAABARIBAQ=="
    )
    data = base64.b64decode(crash)
    assert refused(data).status == 412
    assert refused(data, decode=decode_document_and_model).status == 412


def decode_document_and_model(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> object:
    return validate_document(decode_document(data, limits=limits))


@pytest.mark.parametrize("number", ["-1", "+2", "1_000", "\u0661\u0662", "0x10", "1e3", ""])
def test_only_ascii_digits_make_a_number(number: str) -> None:
    """``int()`` would take all of these; SyncML numbers are unsigned decimals."""
    data = GOOD_XML.replace("<CmdID>2</CmdID>", f"<CmdID>{number}</CmdID>", 1).encode()
    err = refused(data)
    assert err.status == 400
    assert "CmdID" in str(err)


def test_missing_element_in_wbxml_points_at_the_element_token() -> None:
    # <SyncML><SyncHdr>...</SyncHdr><SyncBody><Alert><Data>201</Data></Alert></SyncBody></SyncML>
    def s(text: str) -> bytes:
        return b"\x03" + text.encode() + b"\x00\x01"

    hdr = (
        b"\x6c"
         b"\x71" + s("1.2") + b"\x72" + s("SyncML/1.2") + b"\x65" + s("1") + b"\x5b" + s("1")
        + b"\x6e\x57" + s("srv") + b"\x01" + b"\x67\x57" + s("dev") + b"\x01"
        + b"\x01"
    )  # fmt: skip
    body_start = len(WBXML_HEAD) + 1 + len(hdr)
    data = WBXML_HEAD + b"\x6d" + hdr + b"\x6b" + b"\x46\x4f" + s("201") + b"\x01\x01\x01"
    err = refused(data)
    assert err.status == 412
    assert err.offset == body_start + 1  # the Alert token
    assert "CmdID" in str(err)
