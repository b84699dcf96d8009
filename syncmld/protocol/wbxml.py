"""WBXML 1.1-1.3 codec: bytes <-> :class:`~syncmld.protocol.tree.Node` trees.

Theory of operation
-------------------

A WBXML document is a header (version byte, public identifier, character
set, string table) followed by a token stream.  The decoder walks the stream
once, left to right, with an explicit stack of open elements (no recursion
per element), so its time is linear in the input and its memory a small
multiple of it:

* A tag token names an element through the current *code page*: page 0 of a
  SyncML document is SyncML, page 1 MetInf, page 2 DevInf (Nokia's
  field-level filter generator writes DevInf ``Property`` elements on a page
  2 of the SyncML document, §8.6); page 0 of a DevInf document is DevInf.
  The page is global state that persists across elements: captures switch
  back to page 0 lazily, right before the next page-0 tag (§8.5).
* Text arrives as STR_I (inline, NUL-terminated), STR_T (string table
  reference), ENTITY (one character) or OPAQUE (length + raw bytes); the
  pieces of one element are joined and decoded in the document's character
  set when the element ends.  Sony Ericsson K500i/K700i/Z600 send *every*
  text as OPAQUE, so OPAQUE is text whenever it decodes; if it does not, the
  node keeps the raw ``bytes``.
* ``Data`` whose OPAQUE content is itself a WBXML DevInf document (the way
  every sender embeds DevInf in Put/Results, §8.6) is decoded into a
  ``DevInf`` child, against the same limits; only one level of nesting is
  ever followed.
* Asked for commands (what :func:`~syncmld.protocol.codec.decode_message`
  does), the decoder reads each ``Status`` of ``SyncBody`` and each
  ``Add``/``Replace``/``Delete`` of a ``Sync`` straight into its model
  object (:class:`_CommandReader`) and leaves a
  :class:`~syncmld.protocol.tree.Decoded` node in its place: a large sync
  is thousands of these, and building their nodes first was half of the
  decoding time.  The reader takes only the common shape; at anything else
  (or anything wrong) it gives up and the element is decoded as a tree from
  the same byte, so the message and every error are those of the tree path.
* Each malformed input is refused with a
  :class:`~syncmld.protocol.errors.RemoteProtocolError` that names the byte
  offset of the offending token or field.  Offsets of a nested document are
  offsets in the outer input.

The encoder writes what every peer accepts: UTF-8, text as STR_I (OPAQUE for
binary or NUL-containing text), no STR_T (some phones mishandle string-table
references, §8.7), SWITCH_PAGE only when the page changes, and the FPI in the
string table or the registered numeric public identifier.
"""

from __future__ import annotations

import base64
import dataclasses
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.limits import DEFAULT_LIMITS, Limits
from syncmld.protocol.model import Add, Command, Delete, Item, Location, Meta, Replace, Status
from syncmld.protocol.tables import (
    DEVINF_ENCODE,
    DEVINF_PAGE0,
    METINF_PAGE1,
    PUBLIC_ID_NUMBERS,
    PUBLIC_IDS,
    SYNCML_ENCODE,
    SYNCML_PAGE0,
    fpi,
    parse_fpi,
)
from syncmld.protocol.tree import DEVINF, METINF, SYNCML, Decoded, Node

__all__ = ["WbxmlDocument", "decode_wbxml", "encode_wbxml", "is_wbxml"]

# --- Global tokens (§8.3) ----------------------------------------------------
SWITCH_PAGE: Final = 0x00
END: Final = 0x01
ENTITY: Final = 0x02
STR_I: Final = 0x03
LITERAL: Final = 0x04
EXT_I_0: Final = 0x40
EXT_I_2: Final = 0x42
PI: Final = 0x43
LITERAL_C: Final = 0x44
EXT_T_0: Final = 0x80
EXT_T_2: Final = 0x82
STR_T: Final = 0x83
LITERAL_A: Final = 0x84
EXT_0: Final = 0xC0
EXT_2: Final = 0xC2
OPAQUE: Final = 0xC3
LITERAL_AC: Final = 0xC4

#: Tag byte flags.
_CONTENT: Final = 0x40
_ATTRS: Final = 0x80

#: IANA MIBenum of UTF-8, the charset syncmld writes.
UTF8: Final = 106

_VERSIONS: Final = ("1.0", "1.1", "1.2")

#: DevInf token 0x1C is ``Size`` up to DevInf 1.1 and ``MaxSize`` in 1.2.
_DEVINF_PAGE0_12: Final[dict[int, str]] = {**DEVINF_PAGE0, 0x1C: "MaxSize"}

_Pages = dict[int, tuple[str, dict[int, str]]]


def _pages(devinf_doc: bool, v12: bool) -> _Pages:
    devinf = _DEVINF_PAGE0_12 if v12 else DEVINF_PAGE0
    if devinf_doc:
        return {0: (DEVINF, devinf)}
    # Page 2 = DevInf inside a SyncML document: Nokia's DS 1.2 filter quirk (§8.6).
    return {0: (SYNCML, SYNCML_PAGE0), 1: (METINF, METINF_PAGE1), 2: (DEVINF, devinf)}


#: (DevInf document?, version 1.2?) -> code pages.
_PAGE_SETS: Final[dict[tuple[bool, bool], _Pages]] = {
    (d, v): _pages(d, v) for d in (False, True) for v in (False, True)
}

#: (vocabulary, name) -> (page, token) in a SyncML or MetInf document.
_SYNCML_DOC_ENCODE: Final[dict[tuple[str, str], tuple[int, int]]] = {
    **SYNCML_ENCODE,
    **{key: (2, tok) for key, (_, tok) in DEVINF_ENCODE.items()},
}

#: IANA MIBenum -> (Python codec, width of the NUL terminator in bytes).
#: UTF-16/UTF-32 without a byte order mark are big-endian (RFC 2781).
_CHARSETS: Final[dict[int, tuple[str, int]]] = {
    0: ("utf-8", 1),  # "unknown": WBXML peers mean UTF-8
    3: ("ascii", 1),
    4: ("latin-1", 1),
    5: ("iso8859-2", 1),
    6: ("iso8859-3", 1),
    7: ("iso8859-4", 1),
    8: ("iso8859-5", 1),
    9: ("iso8859-6", 1),
    10: ("iso8859-7", 1),
    11: ("iso8859-8", 1),
    12: ("iso8859-9", 1),
    13: ("iso8859-10", 1),
    17: ("shift_jis", 1),
    18: ("euc_jp", 1),
    38: ("euc_kr", 1),
    39: ("iso2022_jp", 1),
    106: ("utf-8", 1),
    109: ("iso8859-13", 1),
    110: ("iso8859-14", 1),
    111: ("iso8859-15", 1),
    112: ("iso8859-16", 1),
    113: ("gbk", 1),
    114: ("gb18030", 1),
    1000: ("utf-16-be", 2),  # ISO-10646-UCS-2
    1001: ("utf-32-be", 4),  # ISO-10646-UCS-4
    1013: ("utf-16-be", 2),
    1014: ("utf-16-le", 2),
    1015: ("utf-16", 2),
    1017: ("utf-32", 4),
    1018: ("utf-32-be", 4),
    1019: ("utf-32-le", 4),
    2025: ("gb2312", 1),
    2026: ("big5", 1),
    2084: ("koi8-r", 1),
    **{2250 + k: (f"cp125{k}", 1) for k in range(9)},
}

#: Byte order marks for the two charsets whose byte order a BOM decides.
_BOMS: Final = {
    "utf-16": (b"\xfe\xff", b"\xff\xfe"),
    "utf-32": (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"),
}

#: Elements whose OPAQUE content is not plain text: ``Data`` may hold a DevInf
#: document, ``NextNonce`` raw nonce bytes.
_OPAQUE_SPECIAL: Final = frozenset({"Data", "NextNonce"})

# Piece kinds collected for one element's text.
_STR: Final = 1  # STR_I / STR_T (must decode in the document charset)
_OPQ: Final = 2  # OPAQUE (may stay bytes)
_ENT: Final = 4  # ENTITY (a str piece)

#: An element's text pieces are merged every this many pieces.
_FOLD_AT: Final = 1024

#: Text produced by STR_T references may not exceed this multiple of the
#: input size (a short reference to a long string is an amplifier).
_STR_T_FACTOR: Final = 4
_STR_T_SLACK: Final = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class WbxmlDocument:
    """A decoded WBXML document.

    Attributes:
        root: the element tree.
        kind: :data:`~syncmld.protocol.tree.SYNCML`, ``DEVINF`` or ``METINF``:
            from the public identifier, else from the root element.
        version: "1.0", "1.1" or "1.2": from the public identifier, else from
            the ``VerDTD`` child, else "1.2".
        wbxml_version: the header's version byte (0x01-0x03).
        charset: IANA MIBenum of the document's character set (0 = unknown,
            read as UTF-8).
        public_id: the numeric public identifier, or the FPI string when the
            header points into the string table.
    """

    root: Node
    kind: str
    version: str
    wbxml_version: int
    charset: int
    public_id: int | str


# =============================================================================
# Decoding
# =============================================================================


def _node_factory() -> Callable[[str, str, tuple[Node, ...], str | bytes | None, int], Node]:
    """A constructor for :class:`Node` that is ~3x faster than the dataclass's.

    A frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``; calling the slot descriptors directly does the
    same work without that detour.  Decoding builds one node per element, so
    this is a third of the decoder's time.  The shortcut is only taken while
    ``Node`` is exactly the five-slot, validation-free class it was written
    for; otherwise the real constructor is used.
    """
    names = tuple(f.name for f in dataclasses.fields(Node))
    if names != ("tag", "ns", "children", "text", "pos") or hasattr(Node, "__post_init__"):
        return Node
    new = Node.__new__
    slots = vars(Node)
    s_tag, s_ns, s_children, s_text, s_pos = (slots[n].__set__ for n in names)

    def make(
        tag: str, ns: str, children: tuple[Node, ...], text: str | bytes | None, pos: int
    ) -> Node:
        node = new(Node)
        s_tag(node, tag)
        s_ns(node, ns)
        s_children(node, children)
        s_text(node, text)
        s_pos(node, pos)
        return node

    probe = make("VerDTD", SYNCML, (), "1.2", 7)
    if probe != Node("VerDTD", SYNCML, (), "1.2", 7) or probe.pos != 7:
        return Node
    return make


_new_node: Final = _node_factory()


@dataclass(slots=True)
class _Header:
    wbxml_version: int
    public_id: int | str
    charset: int
    codec: str
    nulw: int
    tbl_start: int
    tbl_end: int
    body: int
    kind: str | None
    version: str | None


class _Budget:
    """Limits shared by a document and the DevInf documents nested in it."""

    __slots__ = ("elements", "str_t")

    def __init__(self, size: int) -> None:
        self.elements = 0
        self.str_t = _STR_T_FACTOR * size + _STR_T_SLACK


def _read_mb(data: bytes, i: int, end: int, what: str) -> tuple[int, int]:
    """Read an mb_u_int32 at ``i``: (value, offset after it)."""
    start = i
    value = 0
    while i < end:
        b = data[i]
        i += 1
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            if value > 0xFFFFFFFF:
                raise RemoteProtocolError(f"{what}: mb_u_int32 exceeds 32 bits", offset=start)
            return value, i
        if i - start >= 5:
            raise RemoteProtocolError(f"{what}: mb_u_int32 longer than 5 bytes", offset=start)
    raise RemoteProtocolError(f"{what}: truncated mb_u_int32", offset=start)


def _find_nul(data: bytes, s: int, end: int, width: int) -> int:
    """Offset of the NUL terminator of a string starting at ``s``, or -1."""
    if width == 1:
        return data.find(0, s, end)
    nul = b"\x00" * width
    k = s
    while True:
        j = data.find(nul, k, end)
        if j < 0 or (j - s) % width == 0:
            return j
        k = j + 1


def _decode_text(raw: bytes, codec: str) -> str:
    """Decode ``raw`` in ``codec``; UTF-16/32 without BOM are big-endian."""
    boms = _BOMS.get(codec)
    if boms is not None and not raw.startswith(boms):
        return raw.decode(codec + "-be")
    return raw.decode(codec)


def _table_string(data: bytes, hdr: _Header, index: int, offset: int, what: str) -> bytes:
    """The string-table string at ``index``: up to NUL or the end of the table."""
    s = hdr.tbl_start + index
    if index >= hdr.tbl_end - hdr.tbl_start:
        raise RemoteProtocolError(
            f"{what}: string table index {index} outside the {hdr.tbl_end - hdr.tbl_start}"
            "-byte string table",
            offset=offset,
        )
    j = _find_nul(data, s, hdr.tbl_end, hdr.nulw)
    return data[s : j if j >= 0 else hdr.tbl_end]


def _read_header(data: bytes, start: int, end: int) -> _Header:
    """Parse the document header starting at ``start``."""
    if start >= end:
        raise RemoteProtocolError("empty WBXML document", offset=start)
    version = data[start]
    if not 1 <= version <= 3:
        raise RemoteProtocolError(
            f"unsupported WBXML version byte 0x{version:02x}", status=415, offset=start
        )
    i = start + 1
    pid, i = _read_mb(data, i, end, "public identifier")
    fpi_at = i
    fpi_index = -1
    if pid == 0:
        fpi_index, i = _read_mb(data, i, end, "public identifier index")
    cs_at = i
    charset, i = _read_mb(data, i, end, "charset")
    cs = _CHARSETS.get(charset)
    if cs is None:
        raise RemoteProtocolError(
            f"unsupported charset MIBenum {charset}", status=415, offset=cs_at
        )
    codec, nulw = cs
    tl_at = i
    tlen, i = _read_mb(data, i, end, "string table length")
    if tlen > end - i:
        raise RemoteProtocolError(
            f"string table of {tlen} bytes runs past the end of the document", offset=tl_at
        )
    hdr = _Header(
        wbxml_version=version,
        public_id=pid,
        charset=charset,
        codec=codec,
        nulw=nulw,
        tbl_start=i,
        tbl_end=i + tlen,
        body=i + tlen,
        kind=None,
        version=None,
    )
    if fpi_index >= 0:
        raw = _table_string(data, hdr, fpi_index, fpi_at, "public identifier")
        try:
            text = _decode_text(raw, codec)
        except UnicodeDecodeError:
            raise RemoteProtocolError(
                "public identifier is not text in the document charset", offset=fpi_at
            ) from None
        hdr.public_id = text
        known = parse_fpi(text)
    else:
        known = PUBLIC_IDS.get(pid)
    if known is not None:
        hdr.kind, hdr.version = known
    return hdr


def _skip_attributes(data: bytes, i: int, end: int, hdr: _Header) -> int:
    """Skip an attribute list (or a PI body) up to and including its END."""
    tbl_len = hdr.tbl_end - hdr.tbl_start
    while True:
        if i >= end:
            raise RemoteProtocolError("document ends inside an attribute list", offset=end)
        b = data[i]
        if b == END:
            return i + 1
        if b == SWITCH_PAGE:
            if i + 1 >= end:
                raise RemoteProtocolError("truncated SWITCH_PAGE", offset=i)
            i += 2
        elif b == STR_I or EXT_I_0 <= b <= EXT_I_2:
            j = _find_nul(data, i + 1, end, hdr.nulw)
            if j < 0:
                raise RemoteProtocolError("unterminated inline string", offset=i)
            i = j + hdr.nulw
        elif b == LITERAL:
            idx, j = _read_mb(data, i + 1, end, "attribute name")
            # Nokia quirk (§8.3): some Nokia software writes the SyncML namespace
            # as an attribute whose LITERAL name is index 0 of a string table it
            # never sends.  It can only be ``xmlns``; skip it.
            if idx >= tbl_len and not (idx == 0 and tbl_len == 0):
                raise RemoteProtocolError(
                    f"attribute name index {idx} outside the {tbl_len}-byte string table",
                    offset=i,
                )
            i = j
        elif b == ENTITY:
            _, i = _read_mb(data, i + 1, end, "ENTITY")
        elif EXT_T_0 <= b <= STR_T:
            idx, j = _read_mb(data, i + 1, end, "string table reference")
            if idx >= tbl_len:
                raise RemoteProtocolError(
                    f"string table index {idx} outside the {tbl_len}-byte string table",
                    offset=i,
                )
            i = j
        elif b == OPAQUE:
            n, j = _read_mb(data, i + 1, end, "OPAQUE length")
            if n > end - j:
                raise RemoteProtocolError("OPAQUE data runs past the end", offset=i)
            i = j + n
        elif b in (PI, LITERAL_C, LITERAL_A, LITERAL_AC):
            raise RemoteProtocolError(f"token 0x{b:02x} inside an attribute list", offset=i)
        else:
            # EXT_0..2, or an attribute start/value token of an attribute code
            # page SyncML never defines: one byte, nothing to keep.
            i += 1


def _guess_devinf(data: bytes, i: int, end: int, hdr: _Header) -> bool:
    """For an unknown public id: does the body start with a DevInf root?"""
    page = 0
    try:
        while i < end:
            b = data[i]
            if b == SWITCH_PAGE and i + 1 < end:
                page = data[i + 1]
                i += 2
            elif b == PI:
                i = _skip_attributes(data, i + 1, end, hdr)
            elif b & 0x3F == LITERAL:
                idx, _ = _read_mb(data, i + 1, end, "tag name")
                name = _table_string(data, hdr, idx, i, "tag name")
                return _decode_text(name, hdr.codec) == "DevInf"
            else:
                return page == 0 and b & 0x3F == 0x0A  # DevInf (0x0A is Cmd in SyncML)
    except (RemoteProtocolError, UnicodeDecodeError):
        pass  # the real parse reports it
    return False


def _nested_devinf(data: bytes, start: int, end: int) -> bool:
    """True when ``data[start:end]`` starts like a WBXML DevInf document."""
    if end - start < 4 or not 1 <= data[start] <= 3:
        return False
    try:
        return _read_header(data, start, end).kind == DEVINF
    except RemoteProtocolError:
        return False


def _fold(frame: list[Any], codec: str) -> None:
    """Merge the text pieces an element gathered since the last fold.

    Text can arrive in pieces of two or three bytes each (tiny STR_I, OPAQUE
    or ENTITY tokens); kept apart, each would cost a Python object worth
    ten times its input.  Folding every :data:`_FOLD_AT` pieces keeps the
    memory near the input size and the time linear (a piece is folded once).
    """
    pieces: list[bytes | str] = frame[4]
    tail = pieces[frame[8] :]
    if all(isinstance(p, bytes) for p in tail):
        pieces[frame[8] :] = [b"".join(cast("list[bytes]", tail))]
    else:
        # ENTITY pieces among them: decode the byte runs between the
        # characters (as the final assembly would) and keep a trailing byte
        # run, which may continue in the next piece.
        cut = max(k for k, p in enumerate(tail) if isinstance(p, str)) + 1
        text = _assemble(
            tail[:cut], _ENT, codec=codec, tag=frame[0], vocab=frame[1], offset=frame[6]
        )
        keep = tail[cut:]
        pieces[frame[8] :] = [text, *keep]
        frame[8] = len(pieces) - len(keep)
        return
    frame[8] = len(pieces)


def _embedded_devinf(
    data: bytes, pieces: list[bytes | str], last_opaque: tuple[int, bytes]
) -> bool:
    """Is the content of a ``Data`` element a WBXML DevInf document?

    It is when its last OPAQUE piece is one and every other piece is
    whitespace (libwbxml's xml2wbxml -k keeps the indentation around the
    DevInf it embeds).
    """
    start, raw = last_opaque
    for p in pieces:
        if p is not raw and isinstance(p, bytes) and p.strip(b" \t\r\n"):
            return False
    return _nested_devinf(data, start, start + len(raw))


def _assemble(
    pieces: list[bytes | str], flags: int, *, codec: str, tag: str, vocab: str, offset: int
) -> str | bytes:
    """Join the text pieces of one element (everything but the fast paths)."""
    if flags & _ENT:
        out: list[str] = []
        run: list[bytes] = []
        try:
            for p in pieces:
                if isinstance(p, str):
                    if run:
                        out.append(_decode_text(b"".join(run), codec))
                        run.clear()
                    out.append(p)
                else:
                    run.append(p)
            if run:
                out.append(_decode_text(b"".join(run), codec))
        except UnicodeDecodeError:
            raise RemoteProtocolError(
                f"text of {tag} is not in the document charset", offset=offset
            ) from None
        return "".join(out)
    raw = b"".join(cast("list[bytes]", pieces))  # no ENTITY: all pieces are bytes
    if flags == _OPQ and tag == "NextNonce" and vocab == METINF:
        # A nonce sent as OPAQUE is its raw bytes; its XML (and libwbxml) form
        # is base64 (§6), so that is the text.
        return base64.b64encode(raw).decode("ascii")
    try:
        return _decode_text(raw, codec)
    except UnicodeDecodeError:
        if flags & _OPQ or tag == "Data":
            return raw
        raise RemoteProtocolError(
            f"text of {tag} is not in the document charset", offset=offset
        ) from None


def _parse(
    data: bytes,
    start: int,
    end: int,
    *,
    limits: Limits,
    budget: _Budget,
    depth0: int,
    nest: int,
    commands: bool = False,
) -> tuple[_Header, Node, str | None]:
    """Decode the document in ``data[start:end]``.

    ``depth0`` is the nesting depth of the element holding this document (0
    for the outer one); ``nest`` counts enclosing documents.  ``commands``:
    see :func:`decode_wbxml`.  Returns the header, the root and the first
    usable ``VerDTD`` value seen.
    """
    hdr = _read_header(data, start, end)
    codec = hdr.codec
    nulw = hdr.nulw
    i = hdr.body
    devinf_doc = _guess_devinf(data, i, end, hdr) if hdr.kind is None else hdr.kind == DEVINF
    version = hdr.version
    pages = _PAGE_SETS[devinf_doc, version in (None, "1.2")]
    vocab, table = pages[0]
    page = 0
    tbl_len = hdr.tbl_end - hdr.tbl_start
    seen_verdtd: str | None = None
    # Single-piece STR_I text of a one-byte charset takes the fast path.
    simple = nulw == 1 and codec not in _BOMS
    fast_str = _STR if simple else -1
    fast_opq = _OPQ if simple else -1
    fast_leaf = simple

    # Prologue: SWITCH_PAGE and PI may precede the root element.
    while True:
        if i >= end:
            raise RemoteProtocolError("document has no root element", offset=end)
        b = data[i]
        if b == SWITCH_PAGE:
            if i + 1 >= end:
                raise RemoteProtocolError("truncated SWITCH_PAGE", offset=i)
            entry = pages.get(data[i + 1])
            if entry is None:
                raise RemoteProtocolError(f"unknown code page {data[i + 1]}", offset=i)
            page = data[i + 1]
            vocab, table = entry
            i += 2
        elif b == PI:
            i = _skip_attributes(data, i + 1, end, hdr)
        elif b & 0x3F >= LITERAL:
            break
        else:
            raise RemoteProtocolError(f"token 0x{b:02x} before the root element", offset=i)

    # A frame is [tag, vocab, pos, children, text pieces, piece kinds, offset
    # of the first piece, (offset, bytes) of the last OPAQUE piece, number of
    # leading pieces already folded].
    stack: list[list[Any]] = []
    top: list[Any] = []
    kids: list[Node] = []
    pieces: list[bytes | str] | None = None
    elements = budget.elements
    max_elements = limits.max_elements
    max_depth = limits.max_depth - depth0
    root: Node | None = None
    tstrings: dict[int, bytes] = {}
    literal_names: dict[int, str] = {}
    new_node = _new_node
    # Status in SyncBody and Add/Replace/Delete in Sync go straight to the
    # model when asked (deep enough limits, a plain one-byte charset, the
    # outer SyncML document).
    reader = (
        _CommandReader(data, end, codec)
        if commands and simple and nest == 0 and not devinf_doc and max_depth > 8
        else None
    )

    while True:
        if i >= end:
            raise RemoteProtocolError(
                f"document ends inside element {top[0]} (missing END)", offset=end
            )
        b = data[i]
        tok = b & 0x3F
        if tok >= LITERAL:
            pos = i
            if tok > LITERAL:
                name = table.get(tok)
                if name is None:
                    raise RemoteProtocolError(
                        f"unknown tag token 0x{tok:02x} on code page {page}", offset=i
                    )
                i += 1
            else:
                # LITERAL tag: the name is in the string table, the vocabulary
                # is the current page's.
                idx, i = _read_mb(data, i + 1, end, "tag name")
                name = literal_names.get(idx)
                if name is None:
                    raw_name = _table_string(data, hdr, idx, pos, "tag name")
                    try:
                        name = literal_names[idx] = _decode_text(raw_name, codec)
                    except UnicodeDecodeError:
                        raise RemoteProtocolError(
                            "tag name is not text in the document charset", offset=pos
                        ) from None
            if (
                reader is not None
                and tok in _READ_COMMANDS
                and b & 0xC0 == _CONTENT
                and page == 0
                and len(stack) == (2 if tok == _T_STATUS else 3)
                and top[0] == _READ_COMMANDS[tok]
                and _in_body(stack)
            ):
                done = reader.command(pos)
                if done is not None and elements + reader.count <= max_elements:
                    elements += reader.count
                    if reader.page != page:
                        page = reader.page
                        vocab, table = pages[page]
                    kids.append(_new_decoded(name, SYNCML, (), None, pos, done[0]))
                    i = done[1]
                    continue
            elements += 1
            if elements > max_elements:
                raise RemoteProtocolError(
                    f"more than {max_elements} elements", status=413, offset=pos
                )
            if len(stack) >= max_depth:
                raise RemoteProtocolError(
                    f"elements nested deeper than {limits.max_depth}", offset=pos
                )
            if b & _ATTRS:
                i = _skip_attributes(data, i, end, hdr)
            if b & _CONTENT:
                if fast_leaf and stack and i < end and data[i] == STR_I and name != "VerDTD":
                    # The most common shape by far (CmdID, LocURI, Data, ...):
                    # one inline string, then END.  Read it in one step; any
                    # other shape, or text not in the charset, takes the
                    # general path below from the same byte.
                    j = data.find(0, i + 1, end)
                    if j >= 0 and j + 1 < end and data[j + 1] == END:
                        try:
                            leaf_text = data[i + 1 : j].decode(codec)
                        except UnicodeDecodeError:
                            pass
                        else:
                            kids.append(new_node(name, vocab, (), leaf_text or None, pos))
                            i = j + 2
                            continue
                kids = []
                pieces = None
                top = [name, vocab, pos, kids, None, 0, 0, None, 0]
                stack.append(top)
            else:
                node = new_node(name, vocab, (), None, pos)
                if not stack:
                    root = node
                    break
                kids.append(node)
            continue

        if b == END:
            frame = stack.pop()
            name, fvocab, pos, fkids, fpieces, flags, toff, last_opaque, _ = frame
            text: str | bytes | None
            if fpieces is None:
                text = None
            elif flags == fast_str and len(fpieces) == 1:
                try:
                    text = fpieces[0].decode(codec)
                except UnicodeDecodeError:
                    if name != "Data":
                        raise RemoteProtocolError(
                            f"text of {name} is not in the document charset", offset=toff
                        ) from None
                    # Item data in another charset (Sony Ericsson: ISO-8859-1
                    # vCards in a UTF-8 document): kept as bytes for the engine.
                    text = fpieces[0]
            elif flags == fast_opq and len(fpieces) == 1 and name not in _OPAQUE_SPECIAL:
                # OPAQUE text (every text of a Sony Ericsson K500i/K700i/Z600).
                try:
                    text = fpieces[0].decode(codec)
                except UnicodeDecodeError:
                    text = fpieces[0]
            elif (
                flags & _OPQ
                and not flags & _ENT
                and name == "Data"
                and fvocab == SYNCML
                and nest == 0
                and _embedded_devinf(data, fpieces, last_opaque)
            ):
                # WBXML DevInf document inside Data (Put/Results of ./devinf1x).
                budget.elements = elements
                _, inner, _ = _parse(
                    data,
                    last_opaque[0],
                    last_opaque[0] + len(last_opaque[1]),
                    limits=limits,
                    budget=budget,
                    depth0=depth0 + len(stack) + 1,
                    nest=nest + 1,
                )
                elements = budget.elements
                fkids.append(inner)
                text = None
            else:
                text = _assemble(fpieces, flags, codec=codec, tag=name, vocab=fvocab, offset=toff)
            if not text:
                text = None
            if fkids:
                if isinstance(text, str) and not text.strip(" \t\r\n"):
                    text = None  # indentation between child elements
                node = new_node(name, fvocab, tuple(fkids), text, pos)
            else:
                node = new_node(name, fvocab, (), text, pos)
            if seen_verdtd is None and name == "VerDTD" and isinstance(text, str):
                v = text.strip()
                if v in _VERSIONS:
                    seen_verdtd = v
                    if version is None:
                        # The DevInf page's 0x1C name depends on the version.
                        pages = _PAGE_SETS[devinf_doc, v == "1.2"]
                        vocab, table = pages[page]
            i += 1
            if not stack:
                root = node
                break
            top = stack[-1]
            kids = top[3]
            kids.append(node)
            pieces = top[4]
            continue

        if b == STR_I:
            s = i + 1
            j = data.find(0, s, end) if nulw == 1 else _find_nul(data, s, end, nulw)
            if j < 0:
                raise RemoteProtocolError("unterminated inline string (STR_I)", offset=i)
            if pieces is None:
                pieces = top[4] = [data[s:j]]
                top[6] = i
            else:
                pieces.append(data[s:j])
                if len(pieces) > _FOLD_AT:
                    _fold(top, codec)
            top[5] |= _STR
            i = j + nulw
        elif b == OPAQUE:
            at = i
            i += 1
            if i < end and data[i] < 0x80:
                n = data[i]
                i += 1
            else:
                n, i = _read_mb(data, i, end, "OPAQUE length")
            if n > end - i:
                raise RemoteProtocolError(
                    f"OPAQUE data of {n} bytes runs past the end of the document", offset=at
                )
            chunk = data[i : i + n]
            if pieces is None:
                pieces = top[4] = [chunk]
                top[6] = at
            else:
                pieces.append(chunk)
                if len(pieces) > _FOLD_AT:
                    _fold(top, codec)
            top[5] |= _OPQ
            top[7] = (i, chunk)
            i += n
        elif b == SWITCH_PAGE:
            if i + 1 >= end:
                raise RemoteProtocolError("truncated SWITCH_PAGE", offset=i)
            entry = pages.get(data[i + 1])
            if entry is None:
                raise RemoteProtocolError(f"unknown code page {data[i + 1]}", offset=i)
            page = data[i + 1]
            vocab, table = entry
            i += 2
        elif b == STR_T:
            at = i
            idx, i = _read_mb(data, i + 1, end, "STR_T")
            raw = tstrings.get(idx)
            if raw is None:
                raw = tstrings[idx] = _table_string(data, hdr, idx, at, "STR_T")
            budget.str_t -= len(raw)
            if budget.str_t < 0:
                raise RemoteProtocolError(
                    "string table references expand beyond the size limit", status=413, offset=at
                )
            if pieces is None:
                pieces = top[4] = [raw]
                top[6] = at
            else:
                pieces.append(raw)
                if len(pieces) > _FOLD_AT:
                    _fold(top, codec)
            top[5] |= _STR
        elif b == ENTITY:
            at = i
            cp, i = _read_mb(data, i + 1, end, "ENTITY")
            if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                raise RemoteProtocolError(f"ENTITY {cp:#x} is not a character", offset=at)
            if pieces is None:
                pieces = top[4] = [chr(cp)]
                top[6] = at
            else:
                pieces.append(chr(cp))
                if len(pieces) > _FOLD_AT:
                    _fold(top, codec)
            top[5] |= _ENT
        elif b == PI:
            i = _skip_attributes(data, i + 1, end, hdr)
        elif EXT_I_0 <= b <= EXT_I_2:
            j = _find_nul(data, i + 1, end, nulw)
            if j < 0:
                raise RemoteProtocolError("unterminated EXT_I string", offset=i)
            i = j + nulw
        elif EXT_T_0 <= b <= EXT_T_2:
            idx, j = _read_mb(data, i + 1, end, "EXT_T")
            if idx >= tbl_len:
                raise RemoteProtocolError(
                    f"string table index {idx} outside the {tbl_len}-byte string table", offset=i
                )
            i = j
        else:  # EXT_0..EXT_2: single-byte extension tokens, ignored
            i += 1

    budget.elements = elements
    # Only processing instructions may follow the root element.
    while i < end:
        if data[i] != PI:
            raise RemoteProtocolError("trailing data after the root element", offset=i)
        i = _skip_attributes(data, i + 1, end, hdr)
    return hdr, root, seen_verdtd


def _in_body(stack: list[list[Any]]) -> bool:
    """Is the open element at depth 2 (or 3) ``SyncBody`` (and ``Sync``) of a ``SyncML``?"""
    return bool(
        stack[0][0] == "SyncML"
        and stack[0][1] == SYNCML
        and stack[1][0] == "SyncBody"
        and stack[1][1] == SYNCML
        and stack[-1][1] == SYNCML
    )


def is_wbxml(data: bytes) -> bool:
    """Cheap sniff: a WBXML version byte (0x01-0x03) and a header that fits.

    XML never starts with a byte below 0x09, so this tells the two SyncML
    representations apart.
    """
    if len(data) < 5 or not 1 <= data[0] <= 3:
        return False
    try:
        hdr = _read_header(data, 0, len(data))
    except RemoteProtocolError:
        return False
    return hdr.body < len(data)


def decode_wbxml(
    data: bytes, *, limits: Limits = DEFAULT_LIMITS, commands: bool = False
) -> WbxmlDocument:
    """Decode a WBXML SyncML, DevInf or MetInf document.

    With ``commands``, the common commands of a SyncML message (``Status``
    in ``SyncBody``; ``Add``, ``Replace``, ``Delete`` in ``Sync``) are read
    straight into their model objects, each standing in the tree as a
    :class:`~syncmld.protocol.tree.Decoded` node, for
    :func:`~syncmld.protocol.mapping.message_from_node`.  A command of any
    less common shape is decoded as a tree as usual, so the message and any
    error are the same either way.

    Raises:
        RemoteProtocolError: the input is not well-formed WBXML of these
            vocabularies (``offset`` is the byte where the problem was
            found), or exceeds ``limits`` (status 413 for size and element
            count).
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    if len(data) > limits.max_size:
        raise RemoteProtocolError(
            f"document of {len(data)} bytes exceeds the limit of {limits.max_size}",
            status=413,
            offset=limits.max_size,
        )
    budget = _Budget(len(data))
    hdr, root, seen_verdtd = _parse(
        data, 0, len(data), limits=limits, budget=budget, depth0=0, nest=0, commands=commands
    )
    kind = hdr.kind
    if kind is None:
        if root.tag == "DevInf" and root.ns == DEVINF:
            kind = DEVINF
        elif root.tag == "MetInf" and root.ns == METINF:
            kind = METINF
        else:
            kind = SYNCML
    version = hdr.version or seen_verdtd or "1.2"
    return WbxmlDocument(
        root=root,
        kind=kind,
        version=version,
        wbxml_version=hdr.wbxml_version,
        charset=hdr.charset,
        public_id=hdr.public_id,
    )


# =============================================================================
# Encoding
# =============================================================================


def _mb(n: int) -> bytes:
    """``n`` as an mb_u_int32."""
    if n < 0x80:
        return bytes((n,))
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.reverse()
    return bytes(out)


def _ver_dtd(node: Node) -> str | None:
    ver = node.child("VerDTD")
    if ver is not None and isinstance(ver.text, str) and ver.text.strip() in _VERSIONS:
        return ver.text.strip()
    return None


def encode_wbxml(
    root: Node,
    *,
    version: str,
    textual_public_id: bool = True,
    wbxml_version: int = 0x02,
) -> bytes:
    """Encode a tree as a WBXML document in UTF-8.

    The document type follows the root's vocabulary (SyncML, DevInf or
    MetInf).  ``Data`` holding a single ``DevInf`` element is written as
    OPAQUE containing a complete WBXML DevInf document, whose version is the
    DevInf's ``VerDTD`` (else ``version``).

    Args:
        root: the tree.
        version: "1.0", "1.1" or "1.2": picks the public identifier.
        textual_public_id: write the FPI through the string table (what Sony
            Ericsson phones and Synthesis send) rather than the registered
            number; documents without a registered number always get the FPI.
        wbxml_version: the header's version byte, 0x01-0x03.

    Raises:
        LocalProtocolError: an element with no WBXML token in this document
            type (status 415), text that cannot be encoded, or a bad
            ``version``/``wbxml_version``.
    """
    if version not in _VERSIONS:
        raise LocalProtocolError(f"unsupported SyncML version {version!r}", status=505)
    if not 1 <= wbxml_version <= 3:
        raise LocalProtocolError(f"unsupported WBXML version {wbxml_version!r}")
    kind = root.ns
    if kind == DEVINF:
        enc = DEVINF_ENCODE
    elif kind in (SYNCML, METINF):
        enc = _SYNCML_DOC_ENCODE
    else:
        raise LocalProtocolError(
            f"<{root.tag}> of vocabulary {kind!r} has no WBXML document type", status=415
        )
    out = bytearray((wbxml_version,))
    number = PUBLIC_ID_NUMBERS.get((kind, version))
    if textual_public_id or number is None:
        name = fpi(kind, version).encode("ascii")
        # publicid 0, string table index 0, UTF-8, table = the FPI without NUL
        # (as Sony Ericsson, Synthesis and the Toolkit write it, §8.2).
        out += b"\x00\x00\x6a"
        out += _mb(len(name))
        out += name
    else:
        out += _mb(number)
        out += b"\x6a\x00"
    _encode_body(
        root,
        enc=enc,
        kind=kind,
        version=version,
        textual_public_id=textual_public_id,
        wbxml_version=wbxml_version,
        out=out,
    )
    return bytes(out)


def _encode_body(
    root: Node,
    *,
    enc: dict[tuple[str, str], tuple[int, int]],
    kind: str,
    version: str,
    textual_public_id: bool,
    wbxml_version: int,
    out: bytearray,
) -> None:
    page = 0
    stack: list[Node | None] = [root]
    pop = stack.pop
    push = stack.append
    extend = stack.extend
    append = out.append
    nested_ok = kind != DEVINF
    node: Node | None = root
    try:
        while stack:
            node = pop()
            if node is None:
                append(END)
                continue
            entry = enc.get((node.ns, node.tag))
            if entry is None:
                if node.ns == FRAGMENT and type(node.text) is bytes and nested_ok:
                    # A command written by command_fragment (from code page 0).
                    if page:
                        append(SWITCH_PAGE)
                        append(0)
                        page = 0
                    out += node.text
                    continue
                raise LocalProtocolError(
                    f"<{node.tag}> of vocabulary {node.ns!r} has no WBXML token in a "
                    f"{kind} document",
                    status=415,
                )
            p, tok = entry
            if p != page:
                append(SWITCH_PAGE)
                append(p)
                page = p
            text = node.text
            kids = node.children
            if kids:
                if (
                    nested_ok
                    and p == 0
                    and tok == 0x0F  # Data
                    and len(kids) == 1
                    and kids[0].ns == DEVINF
                    and kids[0].tag == "DevInf"
                ):
                    if isinstance(text, bytes) or (text and text.strip(" \t\r\n")):
                        raise LocalProtocolError("Data holds both text and a DevInf document")
                    inner = encode_wbxml(
                        kids[0],
                        version=_ver_dtd(kids[0]) or version,
                        textual_public_id=textual_public_id,
                        wbxml_version=wbxml_version,
                    )
                    append(tok | _CONTENT)
                    append(OPAQUE)
                    out += _mb(len(inner))
                    out += inner
                    append(END)
                    continue
                append(tok | _CONTENT)
                if text:
                    _write_text(out, node, text)
                push(None)
                extend(reversed(kids))
            elif text:
                append(tok | _CONTENT)
                if type(text) is str and "\x00" not in text:
                    append(STR_I)
                    out += text.encode("utf-8")
                    append(0)
                else:
                    _write_text(out, node, text)
                append(END)
            else:
                append(tok)
    except UnicodeEncodeError:
        tag = node.tag if node is not None else "?"
        raise LocalProtocolError(
            f"text of <{tag}> cannot be encoded in UTF-8", status=415
        ) from None


def _write_text(out: bytearray, node: Node, text: str | bytes) -> None:
    if isinstance(text, str):
        if "\x00" not in text:
            out.append(STR_I)
            out += text.encode("utf-8")
            out.append(0)
            return
        if node.tag == "NextNonce" and node.ns == METINF:
            # Decoders turn an OPAQUE nonce into base64 (§6): it would not come back.
            raise LocalProtocolError("NextNonce text contains NUL", status=415)
        raw = text.encode("utf-8")
    else:
        raw = text
    out.append(OPAQUE)
    out += _mb(len(raw))
    out += raw


# =============================================================================
# Pre-encoded commands
# =============================================================================

#: The vocabulary of a :class:`Node` that holds an already encoded command
#: (see :func:`command_fragment`); only the WBXML encoder knows it.
FRAGMENT: Final = "wbxml-fragment"


class _Fallback(Exception):
    """The command has a part the fragment writer leaves to the tree encoder."""


def _syncml_token(tag: str) -> int:
    page, tok = _SYNCML_DOC_ENCODE[SYNCML, tag]
    assert page == 0
    return tok


def _metinf_token(tag: str) -> int:
    page, tok = _SYNCML_DOC_ENCODE[METINF, tag]
    assert page == 1
    return tok


_T_CMDID = _syncml_token("CmdID")
_T_MSGREF = _syncml_token("MsgRef")
_T_CMDREF = _syncml_token("CmdRef")
_T_CMD = _syncml_token("Cmd")
_T_TARGETREF = _syncml_token("TargetRef")
_T_SOURCEREF = _syncml_token("SourceRef")
_T_DATA = _syncml_token("Data")
_T_ITEM = _syncml_token("Item")
_T_TARGET = _syncml_token("Target")
_T_SOURCE = _syncml_token("Source")
_T_LOCURI = _syncml_token("LocURI")
_T_MOREDATA = _syncml_token("MoreData")
_T_META = _syncml_token("Meta")
_T_NORESP = _syncml_token("NoResp")
_T_ARCHIVE = _syncml_token("Archive")
_T_SFTDEL = _syncml_token("SftDel")
_COMMAND_TOKENS = {name: _syncml_token(name) for name in ("Status", "Add", "Replace", "Delete")}
#: Meta children written here, in MetInf DTD order (``None``: a flag).
_META_LEAVES = (
    ("format", _metinf_token("Format")),
    ("type", _metinf_token("Type")),
    ("mark", _metinf_token("Mark")),
    ("size", _metinf_token("Size")),
)
_META_TAIL = (
    ("version", _metinf_token("Version")),
    ("next_nonce", _metinf_token("NextNonce")),
    ("max_msg_size", _metinf_token("MaxMsgSize")),
    ("max_obj_size", _metinf_token("MaxObjSize")),
)
_T_FIELDLEVEL = _metinf_token("FieldLevel")
_T_EMI = _metinf_token("EMI")


class _Writer:
    """Bytes and the current code page of a command being written."""

    __slots__ = ("out", "page")

    def __init__(self) -> None:
        self.out = bytearray()
        self.page = 0

    def page0(self) -> None:
        """Back on the SyncML page before a SyncML tag, as the tree encoder does."""
        if self.page:
            self.out.append(SWITCH_PAGE)
            self.out.append(0)
            self.page = 0

    def leaf(self, tok: int, value: object) -> None:
        """One element with text (on the current page), as the tree encoder writes a leaf."""
        if type(value) is int:
            self.out += b"%c\x03%d\x00\x01" % (tok | _CONTENT, value)
            return
        text = value if type(value) is str else str(value)
        if not text:
            self.out.append(tok)
            return
        if "\x00" in text:
            raise _Fallback
        self.out += b"%c\x03%b\x00\x01" % (tok | _CONTENT, text.encode("utf-8"))

    def location(self, tok: int, loc: Any) -> None:
        if loc.name is not None or loc.filter is not None:
            raise _Fallback
        self.page0()
        self.out.append(tok | _CONTENT)
        self.leaf(_T_LOCURI, loc.uri)
        self.out.append(END)

    def meta(self, meta: Any) -> None:
        if meta.anchor is not None or meta.mem is not None:
            raise _Fallback
        self.page0()
        out = self.out
        start = len(out)
        out.append(_T_META | _CONTENT)
        out.append(SWITCH_PAGE)
        out.append(1)
        if meta.field_level:
            out.append(_T_FIELDLEVEL)
        for name, tok in _META_LEAVES:
            value = getattr(meta, name)
            if value is not None:
                self.leaf(tok, value)
        for name, tok in _META_TAIL:
            value = getattr(meta, name)
            if value is not None:
                self.leaf(tok, value)
        for emi in meta.emi:
            self.leaf(_T_EMI, emi)
        if len(out) == start + 3:
            del out[start:]
            out.append(_T_META)  # no MetInf element: no content, no page switch
            return
        out.append(END)
        self.page = 1

    def item(self, item: Any) -> None:
        if item.source_parent is not None or item.target_parent is not None:
            raise _Fallback
        self.page0()
        out = self.out
        start = len(out)
        out.append(_T_ITEM | _CONTENT)
        if item.target is not None:
            self.location(_T_TARGET, item.target)
        if item.source is not None:
            self.location(_T_SOURCE, item.source)
        if item.meta is not None:
            self.meta(item.meta)
        data = item.data
        if data is not None:
            self.page0()
            if type(data) is str:
                self.leaf(_T_DATA, data)
            elif type(data) is bytes:
                if data:
                    out.append(_T_DATA | _CONTENT)
                    out.append(OPAQUE)
                    out += _mb(len(data))
                    out += data
                    out.append(END)
                else:
                    out.append(_T_DATA)
            else:
                raise _Fallback
        if item.more_data:
            self.page0()
            out.append(_T_MOREDATA)
        if len(out) == start + 1:
            out[start] = _T_ITEM  # an empty Item has no content
            return
        out.append(END)


def command_fragment(cmd: object) -> Node | None:
    """``cmd`` already encoded as WBXML of a SyncML message, or ``None``.

    The commands that make up almost all of a large sync (``Status``, and
    ``Add``/``Replace``/``Delete`` inside ``Sync``) are written straight to
    bytes, token for token what :func:`encode_wbxml` writes for their element
    tree, without building that tree.  The bytes start and end on code page
    0; they travel in a :class:`Node` of vocabulary :data:`FRAGMENT` that
    only this module's encoder accepts.  Anything less common (credentials,
    a challenge, anchors, filters, a DevInf, text containing NUL) gives
    ``None``: the caller builds the tree as usual.
    """
    w = _Writer()
    out = w.out
    kind = type(cmd)
    try:
        if kind is Status:
            st = cast("Status", cmd)
            if st.cred is not None or st.chal is not None:
                return None
            out.append(_COMMAND_TOKENS["Status"] | _CONTENT)
            w.leaf(_T_CMDID, st.cmd_id)
            if st.msg_ref is not None:
                w.leaf(_T_MSGREF, st.msg_ref)
            w.leaf(_T_CMDREF, st.cmd_ref)
            w.leaf(_T_CMD, st.cmd)
            for ref in st.target_refs:
                w.leaf(_T_TARGETREF, ref)
            for ref in st.source_refs:
                w.leaf(_T_SOURCEREF, ref)
            w.leaf(_T_DATA, st.data)
            for item in st.items:
                w.item(item)
        elif kind is Add or kind is Replace or kind is Delete:
            ch = cast("Add | Replace | Delete", cmd)
            if ch.cred is not None:
                return None
            out.append(_COMMAND_TOKENS[kind.__name__] | _CONTENT)
            w.leaf(_T_CMDID, ch.cmd_id)
            if ch.no_resp:
                out.append(_T_NORESP)
            if isinstance(ch, Delete):
                if ch.archive:
                    out.append(_T_ARCHIVE)
                if ch.sft_del:
                    out.append(_T_SFTDEL)
            if ch.meta is not None:
                w.meta(ch.meta)
            for item in ch.items:
                w.item(item)
        else:
            return None
    except (_Fallback, UnicodeEncodeError):
        return None
    if w.page:
        return None  # ends on the MetInf page: left to the tree encoder
    out.append(END)
    return Node(kind.__name__, FRAGMENT, (), bytes(out))


# =============================================================================
# Commands read straight into the model
# =============================================================================

_T_STATUS = _COMMAND_TOKENS["Status"]
_T_ADD = _COMMAND_TOKENS["Add"]
_T_REPLACE = _COMMAND_TOKENS["Replace"]
_T_DELETE = _COMMAND_TOKENS["Delete"]
#: Commands read by :class:`_CommandReader` -> the element that must hold them.
_READ_COMMANDS: Final = {
    _T_STATUS: "SyncBody",
    _T_ADD: "Sync",
    _T_REPLACE: "Sync",
    _T_DELETE: "Sync",
}
#: MetInf leaves of a ``Meta`` -> (field, is a number).
_META_FIELDS: Final = {
    _metinf_token(tag): (name, tag in ("Size", "MaxMsgSize", "MaxObjSize"))
    for tag, name in (
        ("Type", "type"),
        ("Format", "format"),
        ("Size", "size"),
        ("Version", "version"),
        ("Mark", "mark"),
        ("MaxMsgSize", "max_msg_size"),
        ("MaxObjSize", "max_obj_size"),
        ("NextNonce", "next_nonce"),
    )
}

_T = TypeVar("_T")


def _slot_maker(cls: type[_T]) -> Callable[..., _T]:
    """A positional constructor for the frozen, slotted model class ``cls``.

    Like :func:`_node_factory`: a frozen dataclass's ``__init__`` sets every
    field through ``object.__setattr__``; setting the slots directly is about
    twice as fast, and a large sync builds several objects per item.  Taken
    only while every field is a plain slot set by ``__init__`` and the class
    validates nothing; otherwise the class itself is called.
    """
    fields = dataclasses.fields(cast("Any", cls))
    names = tuple(f.name for f in fields)
    slots = tuple(getattr(cls, n, None) for n in names)
    if hasattr(cls, "__post_init__") or not all(
        f.init and isinstance(s, types.MemberDescriptorType)
        for f, s in zip(fields, slots, strict=True)
    ):

        def call(*args: object) -> _T:
            return cls(**dict(zip(names, args, strict=True)))

        return call
    setters = tuple(cast("types.MemberDescriptorType", s).__set__ for s in slots)
    new = object.__new__
    # Unrolled for the field counts of the classes read here (a loop over
    # the setters costs half the gain).
    if len(setters) == 3:
        s0, s1, s2 = setters

        def make3(a: object, b: object, c: object) -> _T:
            obj = new(cls)
            s0(obj, a)
            s1(obj, b)
            s2(obj, c)
            return obj

        return make3
    if len(setters) == 5:
        s0, s1, s2, s3, s4 = setters

        def make5(a: object, b: object, c: object, d: object, e: object) -> _T:
            obj = new(cls)
            s0(obj, a)
            s1(obj, b)
            s2(obj, c)
            s3(obj, d)
            s4(obj, e)
            return obj

        return make5
    if len(setters) == 6:
        s0, s1, s2, s3, s4, s5 = setters

        def make6(*args: object) -> _T:
            a, b, c, d, e, f = args
            obj = new(cls)
            s0(obj, a)
            s1(obj, b)
            s2(obj, c)
            s3(obj, d)
            s4(obj, e)
            s5(obj, f)
            return obj

        return make6
    if len(setters) == 10:
        s0, s1, s2, s3, s4, s5, s6, s7, s8, s9 = setters

        def make10(*args: object) -> _T:
            a, b, c, d, e, f, g, h, k, m = args
            obj = new(cls)
            s0(obj, a)
            s1(obj, b)
            s2(obj, c)
            s3(obj, d)
            s4(obj, e)
            s5(obj, f)
            s6(obj, g)
            s7(obj, h)
            s8(obj, k)
            s9(obj, m)
            return obj

        return make10
    if len(setters) == 7:
        s0, s1, s2, s3, s4, s5, s6 = setters

        def make7(*args: object) -> _T:
            a, b, c, d, e, f, g = args
            obj = new(cls)
            s0(obj, a)
            s1(obj, b)
            s2(obj, c)
            s3(obj, d)
            s4(obj, e)
            s5(obj, f)
            s6(obj, g)
            return obj

        return make7

    def make(*args: object) -> _T:
        obj = new(cls)
        for setter, arg in zip(setters, args, strict=True):
            setter(obj, arg)
        return obj

    return make


# Field order: see the classes in syncmld.protocol.model.
_new_location: Final = _slot_maker(Location)
_new_item: Final = _slot_maker(Item)
_new_status: Final = _slot_maker(Status)
_new_change: Final = {tok: _slot_maker(cls) for tok, cls in ((_T_ADD, Add), (_T_REPLACE, Replace))}
_new_delete: Final = _slot_maker(Delete)
_new_decoded: Final = _slot_maker(Decoded)
_EMPTY_META: Final = Meta()
_EMPTY_ITEM: Final = Item()


def _leaf(data: bytes, i: int, b: int, end: int, codec: str) -> tuple[str, int]:
    """The text of the leaf whose tag byte ``b`` is at ``i`` ('' when empty), and what follows.

    Only one inline string (or nothing) is read here; any other content is
    the generic path's.
    """
    if not b & _CONTENT:
        return "", i + 1
    c = data[i + 1]
    if c == STR_I:
        j = data.find(0, i + 2, end)
        if j < 0 or data[j + 1] != END:
            raise _Fallback
        return data[i + 2 : j].decode(codec), j + 2
    if c == END:
        return "", i + 2
    raise _Fallback


def _number(text: str) -> int:
    """A SyncML number as mapping reads it; anything else is the generic path's error."""
    t = text.strip()
    if t.isascii() and t.isdigit() and len(t) <= 18:
        return int(t)
    raise _Fallback


#: The number elements of a Status.
_STATUS_NUMBERS: Final = frozenset({_T_CMDID, _T_CMDREF, _T_DATA, _T_MSGREF})


class _CommandReader:
    """Reads one ``Status``/``Add``/``Replace``/``Delete`` element into its model object.

    The reader accepts only the shape these commands have in almost every
    message: page-0 SyncML elements (MetInf on page 1 inside ``Meta``), text
    as one inline string (``Data`` also as one OPAQUE that is not a DevInf
    document), no attributes, no unknown elements.  Anything else, including
    everything the generic path would refuse (a missing CmdID, a number that
    is not one, truncated input), raises :class:`_Fallback` and the generic
    decoder reads the element from the same byte, so results and errors are
    exactly those of the tree path through
    :func:`syncmld.protocol.mapping.message_from_node`.  Each method takes
    the offset of its element's tag byte and returns the value and the
    offset after the element; ``page`` is the code page in force and
    ``count`` the number of elements read (for the element limit).
    """

    __slots__ = ("codec", "count", "data", "end", "last_meta", "page")

    def __init__(self, data: bytes, end: int, codec: str) -> None:
        self.data = data
        self.end = end
        self.codec = codec
        self.page = 0
        self.count = 0
        #: The bytes of the last Meta read, the page before it, its value,
        #: its element count and the page after it.
        self.last_meta: tuple[bytes, int, Meta, int, int] | None = None

    def tag(self, i: int) -> tuple[int, int]:
        """The next tag byte at or after ``i`` (SWITCH_PAGE followed), or END; and its offset."""
        data = self.data
        b = data[i]
        while b == SWITCH_PAGE:
            p = data[i + 1]
            if p > 1:
                raise _Fallback
            self.page = p
            i += 2
            b = data[i]
        if b == END:
            return b, i
        if b & _ATTRS or b & 0x3F <= LITERAL:  # text, PI, extension, literal tag
            raise _Fallback
        self.count += 1
        return b, i

    def data_value(self, i: int, b: int) -> tuple[str | bytes, int]:
        """Item ``Data``: text kept as is, or OPAQUE bytes that are not text."""
        if not b & _CONTENT:
            return "", i + 1
        data = self.data
        c = data[i + 1]
        if c == STR_I:
            j = data.find(0, i + 2, self.end)
            if j < 0 or data[j + 1] != END:
                raise _Fallback
            return data[i + 2 : j].decode(self.codec), j + 2
        if c == END:
            return "", i + 2
        if c != OPAQUE:
            raise _Fallback
        n, j = _read_mb(data, i + 2, self.end, "OPAQUE length")
        if n > self.end - j or data[j + n] != END or _nested_devinf(data, j, j + n):
            raise _Fallback
        raw = data[j : j + n]
        try:
            return raw.decode(self.codec), j + n + 1
        except UnicodeDecodeError:
            return raw, j + n + 1

    def location(self, i: int, b: int) -> tuple[Location, int]:
        """A ``Target``/``Source`` holding just a ``LocURI``."""
        if not b & _CONTENT:
            raise _Fallback
        data = self.data
        if data[i + 1] == _T_LOCURI | _CONTENT and data[i + 2] == STR_I:
            # The usual <Source><LocURI>text</LocURI></Source> in one step.
            j = data.find(0, i + 3, self.end)
            if j > 0 and data[j + 1] == END and data[j + 2] == END:
                self.count += 1
                return _new_location(data[i + 3 : j].decode(self.codec).strip(), None, None), j + 3
        b, i = self.tag(i + 1)
        if self.page or b & 0x3F != _T_LOCURI:
            raise _Fallback
        uri, i = _leaf(self.data, i, b, self.end, self.codec)
        if self.tag(i)[0] != END:
            raise _Fallback
        return _new_location(uri.strip(), None, None), i + 1

    def meta(self, i: int, b: int) -> tuple[Meta, int]:
        """A ``Meta`` of MetInf leaves (no Anchor, Mem or MetInf wrapper)."""
        if not b & _CONTENT:
            return _EMPTY_META, i + 1
        data, end, codec = self.data, self.end, self.codec
        last = self.last_meta
        if last is not None and last[1] == self.page and data.startswith(last[0], i):
            # The same bytes read from the same page as the last Meta (every
            # item of a sync has the same Meta): the same result.
            self.count += last[3]
            self.page = last[4]
            return last[2], i + len(last[0])
        start, page, count = i, self.page, self.count
        kw: dict[str, Any] = {}
        emi: list[str] = []
        i += 1
        while True:
            b, i = self.tag(i)
            if b == END:
                break
            if self.page != 1:
                raise _Fallback
            tok = b & 0x3F
            entry = _META_FIELDS.get(tok)
            if entry is not None:
                text, i = _leaf(data, i, b, end, codec)
                name, numeric = entry
                kw[name] = _number(text) if numeric else text.strip()
            elif tok == _T_EMI:
                text, i = _leaf(data, i, b, end, codec)
                emi.append(text.strip())
            elif tok == _T_FIELDLEVEL and not b & _CONTENT:
                kw["field_level"] = True
                i += 1
            else:
                raise _Fallback
        if emi:
            kw["emi"] = tuple(emi)
        meta = Meta(**kw) if kw else _EMPTY_META
        i += 1
        self.last_meta = (data[start:i], page, meta, self.count - count, self.page)
        return meta, i

    def item(self, i: int, b: int) -> tuple[Item, int]:
        """An ``Item``: Target, Source, Meta, Data, MoreData (the last of each counts)."""
        if not b & _CONTENT:
            return _EMPTY_ITEM, i + 1
        target = source = None
        meta = None
        value: str | bytes | None = None
        more = False
        data = self.data
        i += 1
        while True:
            b = data[i]
            if b == SWITCH_PAGE or b & _ATTRS or b & 0x3F <= LITERAL:  # END among them
                b, i = self.tag(i)
                if b == END:
                    break
            else:
                self.count += 1
            if self.page:
                raise _Fallback
            tok = b & 0x3F
            if tok == _T_DATA:
                value, i = self.data_value(i, b)
            elif tok == _T_SOURCE:
                source, i = self.location(i, b)
            elif tok == _T_TARGET:
                target, i = self.location(i, b)
            elif tok == _T_META:
                meta, i = self.meta(i, b)
            elif tok == _T_MOREDATA and not b & _CONTENT:
                more = True
                i += 1
            else:
                raise _Fallback
        return _new_item(target, source, None, None, meta, value, more), i + 1

    def status(self, i: int) -> tuple[Status, int]:
        """A ``Status`` (the first of each single element counts)."""
        data, end, codec = self.data, self.end, self.codec
        cmd_id = cmd_ref = code = msg_ref = None
        cmd = None
        targets: list[str] = []
        sources: list[str] = []
        items: list[Item] = []
        i += 1
        while True:
            b = data[i]
            if b == SWITCH_PAGE or b & _ATTRS or b & 0x3F <= LITERAL:  # END among them
                b, i = self.tag(i)
                if b == END:
                    break
            else:
                self.count += 1
            if self.page:
                raise _Fallback
            tok = b & 0x3F
            if tok == _T_ITEM:
                item, i = self.item(i, b)
                items.append(item)
                continue
            if b & _CONTENT and data[i + 1] == STR_I:  # _leaf, inline
                j = data.find(0, i + 2, end)
                if j < 0 or data[j + 1] != END:
                    raise _Fallback
                raw = data[i + 2 : j]
                i = j + 2
                if tok in _STATUS_NUMBERS and raw.isdigit() and len(raw) <= 18:
                    # ASCII digits and nothing else: the number (any other
                    # text goes through _number below).
                    n = int(raw)
                    if tok == _T_CMDID:
                        cmd_id = n if cmd_id is None else cmd_id
                    elif tok == _T_CMDREF:
                        cmd_ref = n if cmd_ref is None else cmd_ref
                    elif tok == _T_DATA:
                        code = n if code is None else code
                    else:
                        msg_ref = n if msg_ref is None else msg_ref
                    continue
                text = raw.decode(codec)
            else:
                text, i = _leaf(data, i, b, end, codec)
            if tok == _T_CMDID:
                n = _number(text)
                cmd_id = n if cmd_id is None else cmd_id
            elif tok == _T_CMDREF:
                n = _number(text)
                cmd_ref = n if cmd_ref is None else cmd_ref
            elif tok == _T_DATA:
                n = _number(text)
                code = n if code is None else code
            elif tok == _T_SOURCEREF:
                sources.append(text.strip())
            elif tok == _T_TARGETREF:
                targets.append(text.strip())
            elif tok == _T_MSGREF:
                n = _number(text)
                msg_ref = n if msg_ref is None else msg_ref
            elif tok == _T_CMD:
                cmd = text.strip() if cmd is None else cmd
            else:
                raise _Fallback
        if cmd_id is None or cmd_ref is None or cmd is None or code is None:
            raise _Fallback  # the generic path reports what is missing
        st = _new_status(
            cmd_id,
            cmd_ref,
            cmd,
            code,
            msg_ref,
            tuple(targets),
            tuple(sources),
            None,
            None,
            tuple(items),
        )
        return st, i + 1

    def change(self, i: int, kind: int) -> tuple[Add | Replace | Delete, int]:
        """An ``Add``, ``Replace`` or ``Delete`` (the first CmdID and Meta count)."""
        cmd_id = None
        no_resp = archive = sft_del = False
        meta = None
        items: list[Item] = []
        delete = kind == _T_DELETE
        data = self.data
        i += 1
        while True:
            b = data[i]
            if b == SWITCH_PAGE or b & _ATTRS or b & 0x3F <= LITERAL:  # END among them
                b, i = self.tag(i)
                if b == END:
                    break
            else:
                self.count += 1
            if self.page:
                raise _Fallback
            tok = b & 0x3F
            if tok == _T_ITEM:
                item, i = self.item(i, b)
                items.append(item)
            elif tok == _T_CMDID:
                text, i = _leaf(data, i, b, self.end, self.codec)
                n = _number(text)
                cmd_id = n if cmd_id is None else cmd_id
            elif tok == _T_META:
                m, i = self.meta(i, b)
                meta = m if meta is None else meta
            elif b & _CONTENT:
                raise _Fallback  # flags are empty elements here
            elif tok == _T_NORESP:
                no_resp = True
                i += 1
            elif delete and tok == _T_ARCHIVE:
                archive = True
                i += 1
            elif delete and tok == _T_SFTDEL:
                sft_del = True
                i += 1
            else:
                raise _Fallback
        if cmd_id is None:
            raise _Fallback
        cmd: Add | Replace | Delete
        if delete:
            cmd = _new_delete(cmd_id, tuple(items), no_resp, None, meta, archive, sft_del)
        else:
            new = _new_change[kind]
            cmd = cast("Add | Replace", new(cmd_id, tuple(items), no_resp, None, meta))
        return cmd, i + 1

    def command(self, i: int) -> tuple[Command, int] | None:
        """The command whose tag (with content, page 0) is at ``i`` and what follows, or None."""
        self.page = 0
        self.count = 1
        tok = self.data[i] & 0x3F
        try:
            return self.status(i) if tok == _T_STATUS else self.change(i, tok)
        except (_Fallback, IndexError, UnicodeDecodeError, RemoteProtocolError):
            return None
