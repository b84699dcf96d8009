"""vCard 2.1 <-> 3.0: a small, exact line codec and the conversions built on it.

Theory of operation
-------------------
Phones speak vCard 2.1 (``text/x-vcard``); the desktop (khard, Evolution, vdirsyncer)
stores UTF-8 vCard 3.0 (``text/vcard``) and must never be handed 2.1 (khard refused
Sony Ericsson 2.1 quoted-printable files, lucc/khard#183). This module has two layers.

1. **The line codec** (shared with :mod:`syncmld.formats.vcalendar` and
   :mod:`syncmld.formats.notes`, because vCalendar 1.0 and vNote 1.1 use the same
   "mime-dir" syntax as vCard 2.1):

   * :func:`parse_components` turns text into :class:`Component` trees of
     :class:`ContentLine` objects. A content line keeps its *wire* value (still
     quoted-printable or base64 encoded, still backslash-escaped) after unfolding,
     so ``serialize(parse(text))`` reproduces every logical line exactly; only
     physical line breaks are re-chosen. :meth:`ContentLine.decoded` applies the
     transfer encoding and the ``CHARSET``.
   * Unfolding follows the item's version. vCard 2.1 and vCalendar 1.0 fold the
     RFC 822 way (the line break goes *before* existing white space, which is part
     of the value); vCard 3.0 and iCalendar 2.0 fold the RFC 2425 way (the break
     and one inserted white space character are removed).
   * Quoted-printable soft line breaks (``=`` at the end of a line) are joined
     before anything else, so a continuation line that starts with a space keeps
     it. Evolution wrote QP values with a bare line break inside them (libwbxml
     test vectors ``syncml-013.xml``: ``LABEL;...QUOTED-PRINTABLE:...MA`` +
     ``02215=0AUSA``); a line that cannot start a property continues the QP value
     with a line break. vCard 2.1 base64 data may continue on unindented lines and
     ends at an empty line.
   * :func:`serialize_component` writes CRLF lines. In ``"3.0"`` style lines are
     folded at 75 octets without splitting a UTF-8 sequence. In ``"2.1"`` style
     quoted-printable values get ``=`` soft breaks (lines of at most 76
     characters), base64 continues on indented lines and ends with an empty line,
     and plain values are folded only before existing white space (so a reader of
     either folding school gets the same value). ``fold=False`` writes one
     physical line per property (Motorola V3 cannot unfold, SyncEvolution
     ``02_V3.xml``).

2. **The conversions** :func:`vcard21_to_30` and :func:`vcard30_to_21`:

   * Parameters: bare 2.1 types (``TEL;CELL;PREF``) <-> ``TYPE=CELL,PREF``;
     ``ENCODING=BASE64`` <-> ``ENCODING=b``; ``VALUE=URL`` <-> ``VALUE=uri``;
     ``ENCODING=QUOTED-PRINTABLE`` and ``CHARSET`` exist only on the 2.1 side.
   * Escaping: 3.0 escapes ``\\ ; ,`` and new lines; 2.1 escapes ``;`` (and a
     backslash only where it would otherwise be ambiguous), never commas, and
     carries new lines as quoted-printable ``=0D=0A``.
   * Values are converted by kind: text (FN, NOTE, ...), structured (N, ADR, ORG:
     ``;`` separated components), lists (CATEGORIES, NICKNAME), raw (TEL, URL,
     dates, binary: never re-escaped) and unknown/X- properties, which are kept
     verbatim apart from the representation of new lines.
   * 3.0 requires FN: it is derived from N (then ORG, EMAIL, TEL) when missing.
     Both versions require N: an empty one is added when missing.
   * On the 2.1 side quoted-printable is used only where needed (non-ASCII, line
     breaks, control characters) and ``CHARSET`` only for non-ASCII text. When the
     target charset (ISO-8859-1 for Sony Ericsson, ``00_sony_ericsson.xml``) cannot
     hold a character it becomes ``?`` and the property is named in
     :attr:`Conversion.lossy_properties` - never silently dropped.

Known limits: in 3.0 an unescaped comma inside an N or ADR component is a list
separator; 2.1 cannot express that, so such lists come back as one text with an
escaped comma. 2.1 AGENT properties with an embedded vCard are not supported.

Everything here is a pure function on ``str``: no I/O, no clock.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from syncmld.formats.errors import FormatError

__all__ = [
    "CRLF",
    "Component",
    "ContentLine",
    "Conversion",
    "FoldStyle",
    "Param",
    "decode_bytes",
    "encode_21_text",
    "escape21",
    "escape30",
    "parse_component",
    "parse_components",
    "python_codec",
    "qp_decode",
    "qp_encode",
    "serialize_component",
    "serialize_line",
    "split_escaped",
    "unescape21",
    "unescape30",
    "vcard21_to_30",
    "vcard30_to_21",
    "verbatim_to_21",
    "verbatim_to_30",
]

CRLF = "\r\n"

FoldStyle = Literal["2.1", "3.0"]
"""How lines are folded: ``"2.1"`` = RFC 822 (vCard 2.1, vCalendar 1.0, vNote 1.1),
``"3.0"`` = RFC 2425 (vCard 3.0, iCalendar 2.0)."""

_MAX_OCTETS = 75

# ---------------------------------------------------------------------------
# Charsets
# ---------------------------------------------------------------------------

_CHARSET_ALIASES = {
    # Motorola V3 calls Windows-1252 "ANSI" (SyncEvolution remoterules 02_V3.xml).
    "ANSI": "cp1252",
    "UTF8": "utf-8",
}


def python_codec(charset: str | None) -> str | None:
    """Return Python's codec name for a ``CHARSET`` parameter value, or ``None``.

    Unknown or empty names give ``None``; callers then fall back to UTF-8 with a
    Windows-1252 rescue (see :func:`decode_bytes`).
    """
    if not charset:
        return None
    name = charset.strip().strip('"').upper()
    alias = _CHARSET_ALIASES.get(name)
    if alias is not None:
        return alias
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode item bytes, tolerating phones that mislabel their charset.

    The declared charset is tried first, then UTF-8, then Windows-1252 (which
    also covers ISO-8859-1 text), and finally ISO-8859-1, which cannot fail.
    Sony Ericsson phones send ISO-8859-1 while the SyncML document is UTF-8
    (``00_sony_ericsson.xml``); some devices declare UTF-8 and send Latin-1.
    """
    tried: list[str] = []
    for codec in (python_codec(charset), "utf-8", "cp1252"):
        if codec is None or codec in tried:
            continue
        tried.append(codec)
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


# ---------------------------------------------------------------------------
# Quoted-printable
# ---------------------------------------------------------------------------

_QP_RUN = re.compile(r"(?:=[0-9A-Fa-f]{2})+")
_QP_ATOM = re.compile(r"=[0-9A-F]{2}|.", re.DOTALL)


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def qp_decode(raw: str, charset: str | None = None) -> str:
    """Decode a quoted-printable value (soft breaks already joined) to text.

    Runs of ``=XX`` escapes are decoded with ``charset`` (see
    :func:`decode_bytes` for the fallbacks); literal characters are kept as they
    are, so a stray 8-bit character or a lone ``=`` survives. Line breaks in the
    result are normalized to ``"\\n"``.
    """
    out: list[str] = []
    pos = 0
    for match in _QP_RUN.finditer(raw):
        out.append(raw[pos : match.start()])
        out.append(decode_bytes(bytes.fromhex(match.group().replace("=", "")), charset))
        pos = match.end()
    out.append(raw[pos:])
    return _normalize_newlines("".join(out))


def qp_encode(text: str, charset: str = "UTF-8") -> tuple[str, bool]:
    """Quoted-printable encode ``text`` in ``charset``; return ``(encoded, lossy)``.

    New lines become ``=0D=0A``. Characters the charset cannot hold are written as
    ``?`` and ``lossy`` is true. The result has no soft line breaks; the
    serializer adds them. A trailing space or tab is encoded, as RFC 2045 asks.

    Raises:
        FormatError: ``charset`` is unknown.
    """
    codec = python_codec(charset)
    if codec is None:
        raise FormatError(f"unknown charset {charset!r}")
    wire = _normalize_newlines(text).replace("\n", "\r\n")
    lossy = False
    try:
        data = wire.encode(codec)
    except UnicodeEncodeError:
        lossy = True
        data = wire.encode(codec, errors="replace")
    out: list[str] = []
    last = len(data) - 1
    for i, byte in enumerate(data):
        if (33 <= byte <= 126 and byte != 61) or (byte in (9, 32) and i != last):
            out.append(chr(byte))
        else:
            out.append(f"={byte:02X}")
    return "".join(out), lossy


# ---------------------------------------------------------------------------
# Escaping
# ---------------------------------------------------------------------------


def split_escaped(value: str, sep: str) -> list[str]:
    """Split ``value`` on ``sep`` characters that are not backslash-escaped.

    The pieces keep their escapes; unescape them with :func:`unescape30` or
    :func:`unescape21`.
    """
    if "\\" not in value:
        if len(sep) == 1:
            return value.split(sep)
        return _SEPARATORS[sep].split(value) if sep in _SEPARATORS else re.split(
            "[" + re.escape(sep) + "]", value)
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current.append(value[i : i + 2])
            i += 2
            continue
        if ch in sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


_SEPARATORS = {",;": re.compile("[,;]")}


def _unescape(value: str, table: dict[str, str]) -> str:
    if "\\" not in value:
        return value
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in table:
            out.append(table[value[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


# Horde escapes ':' in iCalendar text (Horde session logs, "uumlaut\: ü"); accepting
# "\:" costs nothing and no writer means a literal backslash before a colon.
_UNESCAPE30 = {"\\": "\\", ";": ";", ",": ",", ":": ":", "n": "\n", "N": "\n"}
_UNESCAPE21 = {"\\": "\\", ";": ";", ",": ",", ":": ":"}


def unescape30(value: str) -> str:
    """Undo vCard 3.0 / iCalendar 2.0 text escapes (``\\\\ \\; \\, \\n``).

    Unknown escapes keep their backslash.
    """
    return _normalize_newlines(_unescape(value, _UNESCAPE30))


def unescape21(value: str) -> str:
    """Undo vCard 2.1 / vCalendar 1.0 escapes (``\\;``, ``\\\\``, tolerated ``\\,``).

    Any other backslash is literal: the Sony Ericsson P900 sends Windows paths such
    as ``c:\\system\\data`` in AALARM (Horde P900 session).
    """
    return _normalize_newlines(_unescape(value, _UNESCAPE21))


def escape30(value: str) -> str:
    """Escape text for vCard 3.0 / iCalendar 2.0: ``\\\\``, ``\\;``, ``\\,``, ``\\n``."""
    return (
        _normalize_newlines(value)
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\n", "\\n")
    )


def escape21(value: str, *, comma: bool = False) -> str:
    """Escape text for vCard 2.1 / vCalendar 1.0.

    ``;`` becomes ``\\;``; a backslash is doubled only where a reader could take
    it for an escape (before ``\\ ; , :`` or at the end); commas are escaped only
    with ``comma=True`` (inside comma separated lists). New lines stay as they
    are: the caller encodes them as quoted-printable.
    """
    value = _normalize_newlines(value)
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else ""
            out.append("\\\\" if nxt in ("", "\\", ";", ",", ":") else "\\")
        elif ch == ";" or (comma and ch == ","):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------

_ENCODING_WORDS = frozenset({"QUOTED-PRINTABLE", "BASE64", "8BIT", "7BIT", "B"})
_VALUE_WORDS = frozenset({"INLINE", "URL", "CONTENT-ID", "CID"})


@dataclass(frozen=True, slots=True)
class Param:
    """One property parameter.

    ``name`` is upper case. A vCard 2.1 parameter written without a name
    (``TEL;CELL``) has ``bare=True`` and the name the 2.1 spec implies (TYPE,
    ENCODING or VALUE). ``values`` keeps the written case.
    """

    name: str
    values: tuple[str, ...]
    bare: bool = False


@dataclass(frozen=True, slots=True)
class ContentLine:
    """One unfolded content line: ``[group.]NAME[;params]:value``.

    ``value`` is the wire value: still quoted-printable or base64 encoded (as the
    parameters say) and still escaped. Use :meth:`decoded` for text.
    """

    name: str
    value: str
    params: tuple[Param, ...] = ()
    group: str | None = None

    def param_values(self, name: str) -> tuple[str, ...]:
        """All values of the parameters called ``name`` (case-insensitive)."""
        wanted = name.upper()
        return tuple(v for p in self.params if p.name == wanted for v in p.values)

    def param(self, name: str) -> str | None:
        """The first value of parameter ``name``, or ``None``."""
        values = self.param_values(name)
        return values[0] if values else None

    @property
    def encoding(self) -> str | None:
        """The transfer encoding, upper case (``QUOTED-PRINTABLE``, ``BASE64``, ``B``)."""
        value = self.param("ENCODING")
        return value.upper() if value else None

    @property
    def is_qp(self) -> bool:
        """True for ``ENCODING=QUOTED-PRINTABLE`` values."""
        return self.encoding == "QUOTED-PRINTABLE"

    @property
    def is_base64(self) -> bool:
        """True for ``ENCODING=BASE64`` (2.1) or ``ENCODING=b`` (3.0) values."""
        return self.encoding in ("BASE64", "B")

    @property
    def types(self) -> tuple[str, ...]:
        """TYPE values (named or bare), upper case, in order, without duplicates."""
        out: list[str] = []
        for value in self.param_values("TYPE"):
            for part in value.split(","):
                up = part.strip().upper()
                if up and up not in out:
                    out.append(up)
        return tuple(out)

    def decoded(self) -> str:
        """The value with its transfer encoding removed.

        Quoted-printable is decoded with ``CHARSET`` (fallbacks: UTF-8, then
        Windows-1252); base64 is returned as base64 text without white space;
        escapes are kept. Line breaks are ``"\\n"``.
        """
        if self.is_qp:
            return qp_decode(self.value, self.param("CHARSET"))
        if self.is_base64:
            return "".join(self.value.split())
        return _normalize_newlines(self.value)

    def without_params(self, *names: str) -> ContentLine:
        """A copy without the parameters called ``names``."""
        drop = {n.upper() for n in names}
        return replace(self, params=tuple(p for p in self.params if p.name not in drop))


@dataclass(slots=True)
class Component:
    """A ``BEGIN:NAME`` ... ``END:NAME`` block: its properties and sub-components."""

    name: str
    properties: list[ContentLine] = field(default_factory=list)
    components: list[Component] = field(default_factory=list)

    def get(self, name: str) -> ContentLine | None:
        """The first property called ``name`` (case-insensitive), or ``None``."""
        wanted = name.upper()
        return next((p for p in self.properties if p.name == wanted), None)

    def get_all(self, name: str) -> list[ContentLine]:
        """All properties called ``name`` (case-insensitive)."""
        wanted = name.upper()
        return [p for p in self.properties if p.name == wanted]

    @property
    def version(self) -> str | None:
        """The VERSION property's value, if any."""
        line = self.get("VERSION")
        return line.value.strip() if line else None

    def walk(self, name: str | None = None) -> Iterator[Component]:
        """This component and all descendants (optionally only those called ``name``)."""
        if name is None or self.name == name.upper():
            yield self
        for child in self.components:
            yield from child.walk(name)


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

_VERSION_RE = re.compile(r"^[ \t]*VERSION[ \t]*:[ \t]*([0-9.]+)", re.IGNORECASE | re.MULTILINE)
_PHYSICAL_BREAK = re.compile(r"\r\n|\n|\r")
_PROPERTY_START = re.compile(r"^(?:[A-Za-z0-9_-]+\.)?[A-Za-z0-9_-]+(?:;[^:]*)?:")
_NAME_RE = re.compile(r"^(?:([A-Za-z0-9_-]+)\.)?([A-Za-z0-9_-]+)$")
_BASE64_LINE = re.compile(r"^[A-Za-z0-9+/=]+$")
_SIMPLE_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")


def detect_fold_style(text: str) -> FoldStyle:
    """The folding style of ``text``, from its first VERSION line.

    vCard 2.1, vCalendar 1.0 and vNote 1.1 give ``"2.1"``; anything else
    (including no VERSION) gives ``"3.0"``.
    """
    match = _VERSION_RE.search(text)
    if match and match.group(1) in ("2.1", "1.0", "1.1", "2", "1"):
        return "2.1"
    return "3.0"


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    if '"' not in text:
        return text.split(sep)
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _find_value_colon(logical: str) -> int:
    colon = logical.find(":")
    if colon < 0 or logical.find('"', 0, colon) < 0:
        return colon
    quoted = False
    for i, ch in enumerate(logical):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            return i
    # A stray quote in a 2.1 parameter: fall back to the first colon.
    return logical.find(":")


def _param_value(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _parse_params(pieces: Sequence[str]) -> tuple[Param, ...]:
    params: list[Param] = []
    for raw_piece in pieces:
        piece = raw_piece.strip()
        if not piece:
            continue
        name, eq, rest = piece.partition("=")
        if eq:
            values = tuple(map(_param_value, _split_outside_quotes(rest, ",")))
            params.append(Param(name.strip().upper(), values))
        else:
            word = piece.upper()
            implied = "ENCODING" if word in _ENCODING_WORDS else (
                "VALUE" if word in _VALUE_WORDS else "TYPE"
            )
            params.append(Param(implied, (piece,), bare=True))
    return tuple(params)


_Head = tuple[str | None, str, tuple[Param, ...]]
# Parsed heads by their text: a few dozen distinct ones ("TEL;TYPE=CELL") make up
# nearly every line of an address book.  Entries are immutable; the map is bounded.
_HEADS: dict[str, _Head] = {}
_HEADS_MAX = 2048


def _parse_head(head: str, lineno: int) -> _Head:
    found = _HEADS.get(head)
    if found is not None:
        return found
    if ";" not in head and "." not in head and _SIMPLE_NAME.match(head):
        found = (None, head.upper(), ())
    else:
        pieces = _split_outside_quotes(head, ";")
        match = _NAME_RE.match(pieces[0].strip())
        if match is None:
            raise FormatError(f"bad property name {pieces[0]!r}", line=lineno)
        found = (match.group(1), match.group(2).upper(), _parse_params(pieces[1:]))
    if len(_HEADS) >= _HEADS_MAX:
        _HEADS.clear()
    _HEADS[head] = found
    return found


def _head_flags(logical: str) -> tuple[bool, bool]:
    """(is quoted-printable, is base64) for a line whose head is complete."""
    colon = _find_value_colon(logical)
    if colon < 0:
        return False, False
    head = logical[:colon].upper()
    if "QUOTED-PRINTABLE" not in head and "BASE64" not in head and "ENCODING=B" not in head:
        return False, False
    words = {p.strip() for p in _split_outside_quotes(head, ";")[1:]}
    qp = "QUOTED-PRINTABLE" in words or "ENCODING=QUOTED-PRINTABLE" in words
    b64 = bool(words & {"BASE64", "ENCODING=BASE64", "ENCODING=B"})
    return qp, b64


def _logical_lines(text: str, style: FoldStyle) -> Iterator[tuple[int, str]]:
    physical = _PHYSICAL_BREAK.split(text)
    n = len(physical)
    i = 0
    while i < n:
        line = physical[i]
        lineno = i + 1
        i += 1
        if not line.strip():
            continue
        if line[0] in " \t":
            raise FormatError("continuation line without a property", line=lineno)
        while True:
            qp, b64 = _head_flags(line)
            nxt = physical[i] if i < n else None
            if qp and line.endswith("=") and nxt is not None:
                # Quoted-printable soft line break: the next line is data as is.
                line = line[:-1] + nxt
                i += 1
                continue
            if nxt and nxt[0] in " \t":
                line += nxt if style == "2.1" else nxt[1:]
                i += 1
                continue
            if qp and nxt and not _PROPERTY_START.match(nxt):
                # Evolution wrote a bare line break inside a QP value (libwbxml vectors).
                line += "=0A" + nxt
                i += 1
                continue
            if b64 and nxt and _BASE64_LINE.match(nxt):
                # vCard 2.1 base64 may continue on unindented lines; the 2.1 spec
                # ends the data with an empty line, not with indentation.
                line += nxt
                i += 1
                continue
            break
        yield lineno, line


def parse_lines(text: str, *, style: FoldStyle | None = None) -> Iterator[ContentLine]:
    """Parse ``text`` into content lines (BEGIN/END included).

    ``style`` overrides the folding style detected from the VERSION line.

    Raises:
        FormatError: a line is not a content line.
    """
    fold_style = style or detect_fold_style(text)
    for lineno, logical in _logical_lines(text, fold_style):
        colon = _find_value_colon(logical)
        if colon < 0:
            raise FormatError(f"no ':' in {logical[:40]!r}", line=lineno)
        group, name, params = _parse_head(logical[:colon], lineno)
        yield ContentLine(name, logical[colon + 1 :], params, group)


def parse_components(text: str, *, style: FoldStyle | None = None) -> list[Component]:
    """Parse all top-level components (vCards, vCalendars, vNotes) in ``text``.

    Raises:
        FormatError: unbalanced BEGIN/END, a property outside any component, or
            a malformed line.
    """
    if text.count("BEGIN:") == 1:
        simple = parse_simple(text, style=style)
        if simple is not None:
            return [simple]
    roots: list[Component] = []
    stack: list[Component] = []
    for line in parse_lines(text, style=style):
        if line.name == "BEGIN":
            comp = Component(line.value.strip().upper())
            if stack:
                stack[-1].components.append(comp)
            else:
                roots.append(comp)
            stack.append(comp)
        elif line.name == "END":
            name = line.value.strip().upper()
            if not stack or stack[-1].name != name:
                raise FormatError(f"END:{name} does not close an open {name}")
            stack.pop()
        elif not stack:
            raise FormatError(f"property {line.name} outside BEGIN/END")
        else:
            stack[-1].properties.append(line)
    if stack:
        raise FormatError(f"BEGIN:{stack[-1].name} is never closed")
    if not roots:
        raise FormatError("no BEGIN line")
    return roots


def parse_simple(text: str, *, style: FoldStyle | None = None) -> Component | None:
    """Parse one component of simple lines, much faster than :func:`parse_component`.

    Simple means: CRLF line ends, 3.0 folding (a continuation line starts with
    one space or tab), no empty line, every logical line
    ``[group.]NAME[;params]:value`` with no ``"`` in its parameters, and no
    nested component.  For such text the result equals :func:`parse_component`'s;
    for any other text (including malformed text, quoted-printable values and
    2.1-style folding) it is ``None``, and the caller uses
    :func:`parse_components`, which also reports what is wrong.
    """
    if "\r\n\r\n" in text or not text.endswith("\r\n"):
        return None
    if ("\r\n " in text or "\r\n\t" in text) and (style or detect_fold_style(text)) != "3.0":
        return None
    lines = text.replace("\r\n ", "").replace("\r\n\t", "").split("\r\n")
    lines.pop()
    if len(lines) < 2 or lines[0][:6].upper() != "BEGIN:":
        return None
    name = lines[0][6:].strip().upper()
    if lines[-1].strip().upper() != f"END:{name}":
        return None
    props: list[ContentLine] = []
    append = props.append
    base64 = False
    try:
        for line in lines[1:-1]:
            colon = line.find(":")
            if colon < 1 or '"' in line[:colon] or "\r" in line or "\n" in line:
                return None
            group, prop, params = _parse_head(line[:colon], 0)
            if prop in ("BEGIN", "END"):
                return None
            content = ContentLine(prop, line[colon + 1 :], params, group)
            if params:
                encoding = content.encoding
                if encoding == "QUOTED-PRINTABLE":
                    return None
                base64 = base64 or encoding in ("BASE64", "B")
            append(content)
    except FormatError:
        return None
    if base64 and any(row and row[0] not in " \t" and ":" not in row
                      for row in text.split("\r\n")):
        return None  # unindented base64 data lines: the full parser joins them
    return Component(name, props)


def parse_component(text: str, *, style: FoldStyle | None = None) -> Component:
    """Parse exactly one top-level component.

    Raises:
        FormatError: the text holds no component, several, or is malformed.
    """
    roots = parse_components(text, style=style)
    if len(roots) != 1:
        raise FormatError(f"expected one component, found {len(roots)}")
    return roots[0]


# ---------------------------------------------------------------------------
# Serializing
# ---------------------------------------------------------------------------


def _quote_param_value(value: str, style: FoldStyle) -> str:
    if style == "3.0" and any(ch in value for ch in ';:,"'):
        return '"' + value.replace('"', "'") + '"'
    return value


def _head(line: ContentLine, style: FoldStyle) -> str:
    parts = [f"{line.group}.{line.name}" if line.group else line.name]
    for param in line.params:
        if param.bare:
            parts.extend(param.values)
        else:
            joined = ",".join(_quote_param_value(v, style) for v in param.values)
            parts.append(f"{param.name}={joined}")
    return ";".join(parts)


def _fold_octets(line: str) -> list[str]:
    """RFC 2425 folding: chunks of at most 75 octets, never splitting a character."""
    if len(line) <= _MAX_OCTETS and (line.isascii() or len(line.encode("utf-8")) <= _MAX_OCTETS):
        return [line]
    if line.isascii():
        rest = [line[i : i + _MAX_OCTETS - 1] for i in range(_MAX_OCTETS, len(line),
                                                               _MAX_OCTETS - 1)]
        return [line[:_MAX_OCTETS], *(" " + c for c in rest)]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    limit = _MAX_OCTETS
    for ch in line:
        width = len(ch.encode("utf-8"))
        if size + width > limit:
            chunks.append("".join(current))
            current, size, limit = [], 0, _MAX_OCTETS - 1
        current.append(ch)
        size += width
    chunks.append("".join(current))
    return [chunks[0], *(" " + c for c in chunks[1:])]


def _fold_qp(head: str, value: str) -> list[str]:
    lines: list[str] = []
    current = head + ":"
    for atom in _QP_ATOM.findall(value):
        if len(current) + len(atom) > _MAX_OCTETS:
            lines.append(current + "=")
            current = ""
        current += atom
    lines.append(current)
    return lines


def _fold_at_space(line: str) -> list[str]:
    """RFC 822 folding: break only before existing white space."""
    lines: list[str] = []
    while len(line.encode("utf-8")) > _MAX_OCTETS:
        cut = -1
        size = 0
        for i, ch in enumerate(line):
            size += len(ch.encode("utf-8"))
            if size > _MAX_OCTETS:
                break
            if ch in " \t" and i > 0:
                cut = i
        if cut <= 0:
            break
        lines.append(line[:cut])
        line = line[cut:]
    lines.append(line)
    return lines


def serialize_line(line: ContentLine, *, style: FoldStyle = "3.0", fold: bool = True) -> str:
    """Write one content line with its line break(s), CRLF terminated.

    Raises:
        FormatError: the wire value holds a raw line break (it must be escaped or
            quoted-printable encoded first).
    """
    if "\n" in line.value or "\r" in line.value:
        raise FormatError(f"{line.name}: raw line break in value")
    head = _head(line, style)
    if style == "2.1" and line.is_base64:
        data = "".join(line.value.split())
        if not fold:
            return f"{head}:{data}{CRLF}{CRLF}"
        first = max(0, _MAX_OCTETS - len(head) - 1)
        rows = [f"{head}:{data[:first]}"]
        rows += ["  " + data[i : i + 72] for i in range(first, len(data), 72)]
        return CRLF.join(rows) + CRLF + CRLF
    if not fold:
        return f"{head}:{line.value}{CRLF}"
    if style == "2.1" and line.is_qp:
        return CRLF.join(_fold_qp(head, line.value)) + CRLF
    text = f"{head}:{line.value}"
    rows = _fold_octets(text) if style == "3.0" else _fold_at_space(text)
    return CRLF.join(rows) + CRLF


def serialize_component(comp: Component, *, style: FoldStyle = "3.0", fold: bool = True) -> str:
    """Write a component (properties first, then sub-components), CRLF terminated.

    Raises:
        FormatError: see :func:`serialize_line`.
    """
    out = [f"BEGIN:{comp.name}{CRLF}"]
    out.extend(serialize_line(p, style=style, fold=fold) for p in comp.properties)
    out.extend(serialize_component(c, style=style, fold=fold) for c in comp.components)
    out.append(f"END:{comp.name}{CRLF}")
    return "".join(out)


# ---------------------------------------------------------------------------
# Phone-side text encoding
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Conversion:
    """Result of a conversion towards a phone.

    ``text`` is the converted item (CRLF lines). ``lossy_properties`` names, in
    order and once each, the properties that lost characters because the target
    charset cannot hold them (they were replaced by ``?``).
    """

    text: str
    lossy_properties: tuple[str, ...] = ()

    @property
    def lossy(self) -> bool:
        """True when any property lost characters."""
        return bool(self.lossy_properties)


def verbatim_to_30(value: str) -> str:
    """An unknown (X-) property's 2.1/1.0 value for 3.0/2.0: only line breaks change.

    Everything else - commas, ``\\;``, backslashes - is kept as the writer put it.
    """
    return _normalize_newlines(value).replace("\n", "\\n")


def verbatim_to_21(value: str) -> str:
    """An unknown (X-) property's 3.0/2.0 value for 2.1/1.0 (inverse of :func:`verbatim_to_30`).

    ``\\n`` becomes a line break (sent as quoted-printable), ``\\,`` a plain comma;
    ``\\\\`` and ``\\;`` stay, as 2.1 reads them the same way.
    """
    return _unescape(value, {"n": "\n", "N": "\n", ",": ",", "\\": "\\\\"})


def _needs_qp(text: str) -> bool:
    return any(ord(ch) > 126 or (ord(ch) < 32 and ch != "\t") for ch in text)


def encode_21_text(
    name: str,
    text: str,
    params: Sequence[Param] = (),
    *,
    group: str | None = None,
    charset: str = "UTF-8",
) -> tuple[ContentLine, bool]:
    """Build a 2.1-style line for an already escaped text value.

    Quoted-printable is used only if the value has non-ASCII characters, line
    breaks or control characters; ``CHARSET`` only if it has non-ASCII ones.
    Returns the line and whether characters were lost to ``charset``.

    Raises:
        FormatError: ``charset`` is unknown.
    """
    base = tuple(p for p in params if p.name not in ("ENCODING", "CHARSET"))
    if not _needs_qp(text):
        return ContentLine(name, text, base, group), False
    non_ascii = any(ord(ch) > 127 for ch in text)
    encoded, lossy = qp_encode(text, charset if non_ascii else "US-ASCII")
    extra = [Param("ENCODING", ("QUOTED-PRINTABLE",))]
    if non_ascii:
        extra.append(Param("CHARSET", (charset.upper(),)))
    return ContentLine(name, encoded, base + tuple(extra), group), lossy


# ---------------------------------------------------------------------------
# vCard 2.1 <-> 3.0
# ---------------------------------------------------------------------------

_TEXT = frozenset(
    {"FN", "NOTE", "TITLE", "ROLE", "LABEL", "MAILER", "EMAIL", "UID", "NAME",
     "SORT-STRING", "CLASS", "PRODID", "SOURCE"}
)
_STRUCTURED = frozenset({"N", "ADR", "ORG"})
_LIST = frozenset({"CATEGORIES", "NICKNAME"})
_RAW = frozenset(
    {"TEL", "URL", "BDAY", "REV", "TZ", "GEO", "PHOTO", "LOGO", "SOUND", "KEY", "AGENT",
     "VERSION", "PROFILE"}
)


def _kind(name: str) -> str:
    if name in _TEXT:
        return "text"
    if name in _STRUCTURED:
        return "structured"
    if name in _LIST:
        return "list"
    if name in _RAW:
        return "raw"
    return "verbatim"


def _classify_value_21_to_30(value: str) -> str:
    up = value.upper()
    if up in ("URL", "CONTENT-ID", "CID"):
        return "uri"
    return value.lower()


def _params_to_30(line: ContentLine) -> tuple[Param, ...]:
    types = list(line.types)
    out: list[Param] = []
    for param in line.params:
        if param.name in ("TYPE", "CHARSET"):
            continue
        if param.name == "ENCODING":
            if param.values and param.values[0].upper() in ("BASE64", "B"):
                out.append(Param("ENCODING", ("b",)))
            continue
        if param.name == "VALUE":
            mapped = [_classify_value_21_to_30(v) for v in param.values]
            mapped = [v for v in mapped if v != "inline"]
            if mapped:
                out.append(Param("VALUE", tuple(mapped)))
            continue
        out.append(Param(param.name, param.values))
    if types:
        out.insert(0, Param("TYPE", tuple(types)))
    return tuple(out)


def _params_to_21(line: ContentLine, *, add_internet: bool) -> list[Param]:
    types = list(line.types)
    for param in line.params:
        # vCard 4.0 style PREF=1 seen in 3.0 files written by newer tools.
        if param.name == "PREF" and "PREF" not in types:
            types.append("PREF")
    if add_internet and line.name == "EMAIL" and not set(types) & {"INTERNET", "X400"}:
        # Nokia phones hide and later lose e-mail addresses without INTERNET
        # (SyncEvolution NEWS, FDO #61784).
        types.insert(0, "INTERNET")
    out: list[Param] = []
    for value in types:
        if re.fullmatch(r"[A-Z0-9-]+", value):
            out.append(Param("TYPE", (value,), bare=True))
        else:
            out.append(Param("TYPE", (value,)))
    for param in line.params:
        if param.name in ("TYPE", "CHARSET", "PREF"):
            continue
        if param.name == "ENCODING":
            if param.values and param.values[0].upper() in ("BASE64", "B"):
                out.append(Param("ENCODING", ("BASE64",)))
            continue
        if param.name == "VALUE":
            mapped = tuple(
                "URL" if v.lower() == "uri" else v.upper()
                for v in param.values
                if v.upper() in ("URI", "URL", "CONTENT-ID", "CID")
            )
            if mapped:
                out.append(Param("VALUE", mapped))
            continue
        out.append(Param(param.name, param.values))
    return out


def _value_to_30(line: ContentLine, src: str) -> str:
    decoded = line.decoded()
    if line.is_base64:
        return decoded
    unescape = unescape30 if src == "3.0" else unescape21
    kind = _kind(line.name)
    if kind == "text":
        return escape30(unescape(decoded))
    if kind == "structured":
        return ";".join(escape30(unescape(c)) for c in split_escaped(decoded, ";"))
    if kind == "list":
        seps = "," if src == "3.0" else ",;"
        return ",".join(escape30(unescape(i)) for i in split_escaped(decoded, seps))
    return verbatim_to_30(decoded)


def _value_to_21(line: ContentLine) -> str:
    decoded = line.decoded()
    if line.is_base64:
        return decoded
    kind = _kind(line.name)
    if kind == "text":
        return escape21(unescape30(decoded))
    if kind == "structured":
        return ";".join(escape21(unescape30(c)) for c in split_escaped(decoded, ";"))
    if kind == "list":
        return ",".join(escape21(unescape30(i), comma=True) for i in split_escaped(decoded, ","))
    return verbatim_to_21(decoded)


def _structured_parts(comp: Component, name: str, src: str) -> list[str]:
    line = comp.get(name)
    if line is None:
        return []
    unescape = unescape30 if src == "3.0" else unescape21
    return [unescape(c).strip() for c in split_escaped(line.decoded(), ";")]


def _derive_fn(comp: Component, src: str) -> str:
    n = _structured_parts(comp, "N", src) + [""] * 5
    family, given, additional, prefix, suffix = n[:5]
    name = " ".join(p for p in (prefix, given, additional, family, suffix) if p)
    if name:
        return name
    org = [p for p in _structured_parts(comp, "ORG", src) if p]
    if org:
        return " ".join(org)
    unescape = unescape30 if src == "3.0" else unescape21
    for prop in ("EMAIL", "TEL"):
        line = comp.get(prop)
        if line is not None and line.decoded().strip():
            return unescape(line.decoded().strip())
    return ""


def _source_version(comp: Component) -> str:
    return "3.0" if comp.version in ("3.0", "4.0") else "2.1"


def _card_to_30(comp: Component) -> Component:
    if comp.name != "VCARD":
        raise FormatError(f"expected VCARD, got {comp.name}")
    src = _source_version(comp)
    props: list[ContentLine] = []
    for line in comp.properties:
        if line.name == "VERSION":
            props.append(ContentLine("VERSION", "3.0"))
            continue
        props.append(ContentLine(line.name, _value_to_30(line, src), _params_to_30(line),
                                 line.group))
    if not any(p.name == "VERSION" for p in props):
        props.insert(0, ContentLine("VERSION", "3.0"))
    if not any(p.name == "N" for p in props):
        props.insert(1, ContentLine("N", ";;;;"))
    if not any(p.name == "FN" for p in props):
        index = next(i for i, p in enumerate(props) if p.name == "N") + 1
        props.insert(index, ContentLine("FN", escape30(_derive_fn(comp, src))))
    return Component("VCARD", props, [_card_to_30(c) for c in comp.components
                                      if c.name == "VCARD"])


def vcard21_to_30(text: str) -> str:
    """Convert one or more vCards (2.1, or already 3.0) to canonical UTF-8 vCard 3.0.

    The result has CRLF line ends and lines folded at 75 octets.

    Raises:
        FormatError: the input is not a well-formed vCard.
    """
    return "".join(serialize_component(_card_to_30(c), style="3.0")
                   for c in parse_components(text))


def _card_to_21(comp: Component, charset: str, add_internet: bool,
                lossy: list[str]) -> Component:
    if comp.name != "VCARD":
        raise FormatError(f"expected VCARD, got {comp.name}")
    src = _source_version(comp)
    if src == "2.1":
        comp = _card_to_30(comp)
    props: list[ContentLine] = []
    for line in comp.properties:
        if line.name == "VERSION":
            props.append(ContentLine("VERSION", "2.1"))
            continue
        if line.name == "PRODID":
            continue  # 3.0 only; it names the desktop writer, not the contact
        params = _params_to_21(line, add_internet=add_internet)
        if line.is_base64:
            props.append(ContentLine(line.name, line.decoded(), tuple(params), line.group))
            continue
        new, lost = encode_21_text(line.name, _value_to_21(line), params, group=line.group,
                                   charset=charset)
        if lost and line.name not in lossy:
            lossy.append(line.name)
        props.append(new)
    if not any(p.name == "N" for p in props):
        fn = comp.get("FN")
        family = escape21(unescape30(fn.decoded())) if fn else ""
        new, lost = encode_21_text("N", family + ";;;;", charset=charset)
        if lost and "N" not in lossy:
            lossy.append("N")
        props.insert(1, new)
    return Component("VCARD", props, [])


def vcard30_to_21(
    text: str,
    *,
    charset: str = "UTF-8",
    fold: bool = True,
    email_internet_type: bool = False,
) -> Conversion:
    """Convert one or more vCard 3.0 items to vCard 2.1 for a phone.

    Args:
        text: vCard 3.0 (a 2.1 input is first normalized through 3.0).
        charset: the phone's charset for non-ASCII text (``UTF-8``,
            ``ISO-8859-1``, ``Windows-1252``, ``ANSI`` ...).
        fold: ``False`` writes every property on one physical line.
        email_internet_type: add ``INTERNET`` to EMAIL properties without a
            mail type (Nokia, FDO #61784).

    Returns:
        The 2.1 text and the properties that lost characters to ``charset``.

    Raises:
        FormatError: the input is not a well-formed vCard or the charset is
            unknown.
    """
    if python_codec(charset) is None:
        raise FormatError(f"unknown charset {charset!r}")
    lossy: list[str] = []
    cards = [_card_to_21(c, charset, email_internet_type, lossy) for c in parse_components(text)]
    body = "".join(serialize_component(c, style="2.1", fold=fold) for c in cards)
    return Conversion(body, tuple(lossy))
