"""Helpers for the WBXML tests: vectors, a byte builder, Hypothesis trees, normalisation."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path

from hypothesis import strategies as st

from syncmld.protocol.tables import (
    DEVINF_PAGE0,
    METINF_PAGE1,
    SYNCML_PAGE0,
)
from syncmld.protocol.tree import DEVINF, METINF, SYNCML, Node

from .conftest import DATA

VECTORS = DATA / "vectors"
#: Every WBXML capture: Sony Ericsson K500i/K700i/Z600, Motorola A780, the
#: Synthesis packets, the server challenge, devinf.wbxml, SyncEvolution.
WBXML_VECTORS: list[Path] = sorted(VECTORS.rglob("*.wbxml"))


def vector_id(path: Path) -> str:
    """A short test id for a vector file."""
    return str(path.relative_to(VECTORS))


# --- Building WBXML by hand ---------------------------------------------------


def mb(n: int) -> bytes:
    """``n`` as an mb_u_int32 (written independently of the codec's helper)."""
    groups = [n & 0x7F]
    n >>= 7
    while n:
        groups.insert(0, 0x80 | (n & 0x7F))
        n >>= 7
    return bytes(groups)


def body(*parts: int | bytes | str) -> bytes:
    """Concatenate tokens: ints are single bytes, bytes are copied, str is STR_I."""
    out = bytearray()
    for p in parts:
        if isinstance(p, int):
            out.append(p)
        elif isinstance(p, bytes):
            out += p
        else:
            out += b"\x03" + p.encode() + b"\x00"
    return bytes(out)


def opaque(data: bytes) -> bytes:
    """An OPAQUE token with its length."""
    return b"\xc3" + mb(len(data)) + data


def document(
    *parts: int | bytes | str,
    public_id: int = 0x1201,
    charset: int = 106,
    strtbl: bytes = b"",
    version: int = 0x02,
) -> bytes:
    """A WBXML document: header with a numeric public id, then ``body(*parts)``."""
    return bytes([version]) + mb(public_id) + mb(charset) + mb(len(strtbl)) + strtbl + body(*parts)


def fpi_document(fpi: str, *parts: int | bytes | str, charset: int = 106) -> bytes:
    """A WBXML document naming its DTD by an FPI at string-table index 0 (no NUL)."""
    raw = fpi.encode()
    return b"\x02\x00\x00" + mb(charset) + mb(len(raw)) + raw + body(*parts)


# --- Trees --------------------------------------------------------------------


def leaf(tag: str, text: str | bytes | None = None, ns: str = SYNCML) -> Node:
    """A node without children."""
    return Node(tag, ns, (), text)


def el(tag: str, *children: Node, ns: str = SYNCML) -> Node:
    """A node with children."""
    return Node(tag, ns, children)


def expected_after_roundtrip(node: Node) -> Node:
    """What the decoder gives back for a tree the encoder wrote.

    Documented conversions: empty text is no text; OPAQUE (``bytes``) that
    is valid UTF-8 comes back as ``str``; a NextNonce sent as OPAQUE comes
    back as the base64 of its bytes (§6, as libwbxml does).
    """
    text = node.text
    if isinstance(text, bytes):
        if node.tag == "NextNonce" and node.ns == METINF and text:
            text = base64.b64encode(text).decode("ascii")
        else:
            with contextlib.suppress(UnicodeDecodeError):
                text = text.decode("utf-8")
    if not text:
        text = None
    if node.children and isinstance(text, str) and not text.strip(" \t\r\n"):
        text = None
    return Node(node.tag, node.ns, tuple(expected_after_roundtrip(c) for c in node.children), text)


# --- Hypothesis strategies ----------------------------------------------------

# Size/MaxSize share DevInf token 0x1C and decode by the document's version;
# they get their own tests.
_DEVINF_NAMES = sorted(set(DEVINF_PAGE0.values()) - {"Size"})
_SYNCML_NAMES = sorted(SYNCML_PAGE0.values())
_METINF_NAMES = sorted(METINF_PAGE1.values())

#: Any Unicode scalar value but NUL (surrogates are not characters).
_UNICODE_CHARS = st.characters(codec="utf-8", blacklist_characters="\x00")
#: XML 1.0 can carry these characters (libwbxml writes them as they are).
_XML_CHARS = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"
) | st.sampled_from("\t\n\r ")


def _texts(xml_safe: bool) -> st.SearchStrategy[str | bytes | None]:
    if xml_safe:
        return st.none() | st.text(_XML_CHARS, min_size=1, max_size=30)
    return st.none() | st.text(_UNICODE_CHARS, max_size=40) | st.binary(max_size=40)


_SYNCML_POOL = [(SYNCML, n) for n in _SYNCML_NAMES] + [(METINF, n) for n in _METINF_NAMES]
_DEVINF_POOL = [(DEVINF, n) for n in _DEVINF_NAMES]


@st.composite
def _node(
    draw: st.DrawFn,
    pool: tuple[tuple[str, str], ...],
    texts: st.SearchStrategy[str | bytes | None],
    depth: int,
    devinf: bool,
) -> Node:
    """One element and its subtree (a composite is much faster than st.recursive here)."""
    if devinf and draw(st.integers(0, 7)) == 0:
        # A DevInf subtree: on code page 2, or a nested DevInf document when
        # it is the only child of a Data.
        pool, devinf = tuple(_DEVINF_POOL), False
    ns, tag = draw(st.sampled_from(pool))
    if depth <= 1 or draw(st.integers(0, 2)) == 0:
        return Node(tag, ns, (), draw(texts))
    kids = draw(st.lists(_node(pool, texts, depth - 1, devinf), min_size=1, max_size=3))
    return Node(tag, ns, tuple(kids))


def devinf_trees(*, xml_safe: bool = False, depth: int = 4) -> st.SearchStrategy[Node]:
    """Trees of DevInf elements only (the content of a DevInf document)."""
    return _node(tuple(_DEVINF_POOL), _texts(xml_safe), depth, False)


def syncml_trees(
    *, xml_safe: bool = False, with_devinf: bool = True, depth: int = 4
) -> st.SearchStrategy[Node]:
    """Trees of SyncML and MetInf elements, with DevInf subtrees (page 2, or
    a nested DevInf document when a ``Data`` holds just a ``DevInf``)."""
    return _node(tuple(_SYNCML_POOL), _texts(xml_safe), depth, with_devinf)


@st.composite
def documents(
    draw: st.DrawFn, *, xml_safe: bool = False, fixed_version: str | None = None
) -> tuple[Node, str]:
    """(root, version) for a SyncML, DevInf or MetInf document."""
    version = fixed_version or draw(st.sampled_from(["1.0", "1.1", "1.2"]))
    kind = draw(st.sampled_from([SYNCML, DEVINF] + ([] if xml_safe else [METINF])))
    if kind == DEVINF:
        kids = draw(st.lists(devinf_trees(xml_safe=xml_safe), max_size=4))
        return Node("DevInf", DEVINF, tuple(kids)), version
    kids = draw(st.lists(syncml_trees(xml_safe=xml_safe, with_devinf=not xml_safe), max_size=4))
    if kind == METINF:
        return Node("MetInf", METINF, tuple(kids)), version
    return Node("SyncML", SYNCML, tuple(kids)), version


def first_difference(a: Node, b: Node, path: str = "") -> str:
    """Where two trees first differ (for assertion messages)."""
    here = f"{path}/{a.tag}"
    if (a.tag, a.ns) != (b.tag, b.ns):
        return f"{here}: element {(a.tag, a.ns)} != {(b.tag, b.ns)}"
    if a.text != b.text:
        return f"{here}: text {a.text!r:.200} != {b.text!r:.200}"
    if len(a.children) != len(b.children):
        return f"{here}: children {[c.tag for c in a.children]} != {[c.tag for c in b.children]}"
    for x, y in zip(a.children, b.children, strict=True):
        if x != y:
            return first_difference(x, y, here)
    return "equal"
