"""Model-level cross-check against an independent WBXML codec: Debian's libwbxml.

Two directions, for every vector and for a few generated messages:

* our WBXML, turned into XML by libwbxml's ``wbxml2xml`` and read by our XML
  decoder, gives the model we encoded;
* our XML, turned into WBXML by libwbxml's ``xml2wbxml`` and read by our
  WBXML decoder, gives the model we encoded.

So our writers produce what another implementation reads as the same thing,
and our readers read what another implementation writes.  (The tree-level
cross-check of the WBXML codec itself is ``tests/test_libwbxml.py``.)

libwbxml changes a few things on the way; each is forgiven by one function
below, on the expected side, and nothing else is.  The tools run with ``-k``
(keep whitespace: Data is whitespace-significant) and in compact mode.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings

from syncmld.protocol.codec import (
    Encoding,
    decode_devinf,
    decode_document,
    decode_message,
    encode_devinf,
    encode_message,
    validate_document,
)
from syncmld.protocol.devinf import DevInf
from syncmld.protocol.model import Item, Message, Meta
from syncmld.protocol.tree import Node
from tests.conftest import DATA
from tests.strategies import as_sent, messages, model_diff

WBXML2XML = shutil.which("wbxml2xml") or "/usr/bin/wbxml2xml"
XML2WBXML = shutil.which("xml2wbxml") or "/usr/bin/xml2wbxml"

pytestmark = [
    pytest.mark.external,
    pytest.mark.skipif(
        not (Path(WBXML2XML).exists() and Path(XML2WBXML).exists()),
        reason="libwbxml's wbxml2xml/xml2wbxml are not installed (Debian: libwbxml2-utils)",
    ),
]

VECTORS = DATA / "vectors"
TIMEOUT = 30

#: Messages that libwbxml cannot carry in WBXML for reasons that are not ours.
#: (Our encoder refuses the DDF tree too, see test_vectors.py.)
NO_WBXML = {"libwbxml/syncml_with_ddf-001.xml"}
#: libwbxml's CDATA fragments without a SyncHdr are not messages.
FRAGMENTS = {"libwbxml/syncml-013.xml", "libwbxml/syncml-014.xml"}


def _libwbxml(tool: str, args: list[str], data: bytes, suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"in{suffix}"
        dst = Path(tmp) / "out"
        src.write_bytes(data)
        proc = subprocess.run(
            [tool, *args, "-o", str(dst), str(src)],
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert proc.returncode == 0 and dst.exists(), (
            f"{tool} failed ({proc.returncode}): {proc.stdout[-300:]!r} {proc.stderr[-300:]!r}"
        )
        return dst.read_bytes()


def libwbxml_to_xml(wbxml: bytes) -> bytes:
    """``wbxml2xml``: compact output, whitespace kept."""
    return _libwbxml(WBXML2XML, ["-m", "0", "-k"], wbxml, ".wbxml")


def libwbxml_to_wbxml(xml: bytes) -> bytes:
    """``xml2wbxml``: no string table (like ours), whitespace kept."""
    return _libwbxml(XML2WBXML, ["-n", "-k"], xml, ".xml")


# --- what libwbxml changes, one function per difference ------------------------------


def _map_model(model: object, fn: Callable[[object], object]) -> object:
    """Rebuild ``model`` bottom-up, applying ``fn`` to every dataclass."""
    if isinstance(model, tuple):
        return tuple(_map_model(m, fn) for m in model)
    if dataclasses.is_dataclass(model) and not isinstance(model, type | Node):
        changes = {f.name: _map_model(getattr(model, f.name), fn) for f in dataclasses.fields(model)}
        return fn(dataclasses.replace(model, **changes))  # type: ignore[arg-type]
    return model


#: Types of documents libwbxml embeds as nested WBXML and converts on the way.
_EMBEDDED = ("application/vnd.syncml-devinf", "application/vnd.syncml.dmtnds")


def embedded_types_as_xml(model: object) -> object:
    """libwbxml converts the DevInf (and DM TNDS) documents it embeds and
    rewrites their ``Meta/Type`` to the new encoding (``+xml`` <-> ``+wbxml``),
    wherever the Meta is.  Compare those types as ``+xml``."""

    def fix(o: object) -> object:
        if isinstance(o, Meta) and o.type is not None:
            base, _, enc = o.type.strip().lower().rpartition("+")
            if base in _EMBEDDED and enc in ("xml", "wbxml"):
                return dataclasses.replace(o, type=f"{base}+xml")
        return o

    return _map_model(model, fix)


def cr_lost_in_cdata(model: object) -> object:
    """``wbxml2xml`` writes item Data as CDATA with raw CRs; XML line-end
    handling (XML 1.0 §2.11) then reads every CR and CRLF as LF."""

    def fix(o: object) -> object:
        if isinstance(o, Item) and isinstance(o.data, str):
            return dataclasses.replace(o, data=o.data.replace("\r\n", "\n").replace("\r", "\n"))
        return o

    return _map_model(model, fix)


def cr_added_before_lf(model: object) -> object:
    """``xml2wbxml`` inserts a CR before every LF of a SyncML Data element
    (vCards need CRLF, protocol reference §8.7), even one that follows a CR."""

    def fix(o: object) -> object:
        if isinstance(o, Item) and isinstance(o.data, str):
            return dataclasses.replace(o, data=o.data.replace("\n", "\r\n"))
        return o

    return _map_model(model, fix)


# --- the two directions ---------------------------------------------------------------


def _decode(data: bytes, devinf: bool) -> Message | DevInf:
    return decode_devinf(data) if devinf else decode_message(data)


def _encode(model: Message | DevInf, encoding: Encoding) -> bytes:
    if isinstance(model, DevInf):
        return encode_devinf(model, encoding)
    return encode_message(model, encoding)


def _sent(model: Message | DevInf, encoding: Encoding) -> Message | DevInf:
    return as_sent(model, encoding) if isinstance(model, Message) else model


def check_our_wbxml_read_by_libwbxml(model: Message | DevInf) -> None:
    xml = libwbxml_to_xml(_encode(model, Encoding.WBXML))
    got = _decode(xml, isinstance(model, DevInf))
    want = cr_lost_in_cdata(embedded_types_as_xml(_sent(model, Encoding.WBXML)))
    got = embedded_types_as_xml(got)
    assert got == want, model_diff(want, got)


def check_libwbxml_wbxml_read_by_us(model: Message | DevInf) -> None:
    wbxml = libwbxml_to_wbxml(_encode(model, Encoding.XML))
    assert wbxml[:1] in (b"\x01", b"\x02", b"\x03")
    got = _decode(wbxml, isinstance(model, DevInf))
    want = cr_added_before_lf(embedded_types_as_xml(_sent(model, Encoding.XML)))
    got = embedded_types_as_xml(got)
    assert got == want, model_diff(want, got)


# --- vectors --------------------------------------------------------------------------


def _rel(path: Path) -> str:
    return path.relative_to(VECTORS).as_posix()


DOCUMENTS = [
    pytest.param(p, id=_rel(p))
    for p in sorted(VECTORS.rglob("*"))
    if p.suffix in (".xml", ".wbxml") and _rel(p) not in FRAGMENTS
]


def _vector_model(path: Path) -> Message | DevInf:
    model = validate_document(decode_document(path.read_bytes()))
    assert isinstance(model, Message | DevInf)
    return model


@pytest.mark.parametrize("path", DOCUMENTS)
def test_vector_our_wbxml_read_by_libwbxml(path: Path) -> None:
    if _rel(path) in NO_WBXML:
        pytest.skip("the DDF tree has no WBXML form in our encoder (see test_vectors.py)")
    check_our_wbxml_read_by_libwbxml(_vector_model(path))


@pytest.mark.parametrize("path", DOCUMENTS)
def test_vector_libwbxml_wbxml_read_by_us(path: Path) -> None:
    check_libwbxml_wbxml_read_by_us(_vector_model(path))


# --- generated messages -----------------------------------------------------------------


def libwbxml_can_carry(msg: Message) -> bool:
    """Generated content libwbxml cannot pass through unchanged, for reasons
    of its own: ``]]>`` inside Data (it writes Data as one CDATA section)."""
    stack: list[object] = [msg]
    while stack:
        o = stack.pop()
        if isinstance(o, Item) and isinstance(o.data, str) and "]]>" in o.data:
            return False
        if isinstance(o, tuple):
            stack.extend(o)
        elif dataclasses.is_dataclass(o) and not isinstance(o, type | Node | DevInf):
            stack.extend(getattr(o, f.name) for f in dataclasses.fields(o))
    return True


# Each example runs both tools twice: a modest count, and never above the profile's.
_FEW = settings(
    max_examples=min(25, settings.default.max_examples),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@_FEW
@given(msg=messages())
def test_generated_our_wbxml_read_by_libwbxml(msg: Message) -> None:
    assume(libwbxml_can_carry(msg))
    check_our_wbxml_read_by_libwbxml(msg)


@_FEW
@given(msg=messages())
def test_generated_libwbxml_wbxml_read_by_us(msg: Message) -> None:
    assume(libwbxml_can_carry(msg))
    check_libwbxml_wbxml_read_by_us(msg)


def test_forgiveness_functions_are_exact() -> None:
    item = Item(meta=Meta(type="application/vnd.syncml-devinf+wbxml"), data="a\r\nb\rc\nd")
    assert cr_lost_in_cdata(item) == dataclasses.replace(item, data="a\nb\nc\nd")
    assert cr_added_before_lf(item) == dataclasses.replace(item, data="a\r\r\nb\rc\r\nd")
    retyped = embedded_types_as_xml(item)
    assert isinstance(retyped, Item)
    assert retyped.meta == Meta(type="application/vnd.syncml-devinf+xml")
    assert embedded_types_as_xml(Meta(type="text/x-vcard")) == Meta(type="text/x-vcard")
