"""OBEX 1.x packet codec: requests, responses, headers and a framing reader.

Wire format (IrDA OBEX 1.x, the subset every SyncML stack uses)::

    request   opcode(1)  length(2, big endian, whole packet)  [fields]  header*
    response  code(1)    length(2)                            [fields]  header*

* Bit 0x80 of a request opcode is the *final* bit.  CONNECT (0x80),
  DISCONNECT (0x81), SETPATH (0x85), SESSION (0x87) and ABORT (0xFF) always
  carry it; PUT and GET are split into several packets, only the last of which
  is final.
* Response codes always carry the final bit (0x90 Continue, 0xA0 OK, ...);
  :class:`ResponseCode` holds the values *with* that bit, as they appear on
  the wire.
* CONNECT requests and responses carry 4 extra bytes (version, flags, maximum
  packet length the sender can *receive*); SETPATH requests carry 2 (flags,
  constants).
* A header starts with its id; the id's two high bits give its encoding:
  ``00`` UTF-16BE text, NUL-terminated, with a 2-byte length; ``01`` a byte
  sequence with a 2-byte length; ``10`` one byte; ``11`` a 4-byte big-endian
  integer.  Both 2-byte lengths include the 3-byte id+length prefix.

Decoding is strict about every length (PyOBEX looped forever on a header
whose length field was 0, see ``docs/stack.md``): a packet length below 3 or
above the receiver's maximum, a header length below 3 or running past the
packet, a truncated 1- or 4-byte header all raise :class:`ObexProtocolError`
carrying the response code to answer with.  Errors that lose the packet
framing are marked ``fatal``.

Canonical forms (decode then encode is byte-identical except here): a
Unicode header holding only a NUL, or a non-empty one without its
terminating NUL, decodes to the same ``str`` as the canonical form and is
re-encoded canonically (empty text as a bare 3-byte header, other text
NUL-terminated).  Byte headers (Type, Target, Body, ...) are kept exactly as
received, including the NUL that terminates a Type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final, NoReturn

from syncmld.obex.errors import ObexProtocolError, ObexUsageError

__all__ = [
    "FINAL_BIT",
    "MAX_PACKET_SIZE",
    "MIN_PACKET_SIZE",
    "OBEX_VERSION",
    "SETPATH_BACKUP",
    "SETPATH_DONT_CREATE",
    "SYNCML_TARGET",
    "ConnectParams",
    "Header",
    "HeaderEncoding",
    "HeaderId",
    "Opcode",
    "PacketReader",
    "Request",
    "Response",
    "ResponseCode",
    "SetpathParams",
    "body_header",
    "connection_id_header",
    "decode_request",
    "decode_response",
    "header_encoding",
    "length_header",
    "name_header",
    "parse_type",
    "target_header",
    "type_header",
    "who_header",
]

#: Bit 0x80 of an opcode: this is the last packet of the request.
FINAL_BIT: Final = 0x80
#: OBEX version byte we send in CONNECT (1.0, as every SyncML stack does).
OBEX_VERSION: Final = 0x10
#: Smallest maximum packet length a peer may announce (OBEX 1.x).
MIN_PACKET_SIZE: Final = 255
#: The length field is 16 bits wide.
MAX_PACKET_SIZE: Final = 0xFFFF
#: The Target (and Who) of a SyncML data-sync OBEX connection: ASCII, no NUL.
SYNCML_TARGET: Final = b"SYNCML-SYNC"
#: SETPATH flag: go to the parent folder first ("cd ..").
SETPATH_BACKUP: Final = 0x01
#: SETPATH flag: do not create the folder if it does not exist.
SETPATH_DONT_CREATE: Final = 0x02

_PREFIX = 3  # opcode/code + 2-byte length
_CONNECT_FIELDS = 4  # version, flags, max packet length (2)
_SETPATH_FIELDS = 2  # flags, constants


class Opcode(IntEnum):
    """Request opcodes, *without* the final bit (see :data:`FINAL_BIT`)."""

    CONNECT = 0x00
    DISCONNECT = 0x01
    PUT = 0x02
    GET = 0x03
    SETPATH = 0x05
    ACTION = 0x06
    SESSION = 0x07
    ABORT = 0x7F


#: Opcodes that only exist with the final bit set.
_ALWAYS_FINAL: Final = frozenset(
    {Opcode.CONNECT, Opcode.DISCONNECT, Opcode.SETPATH, Opcode.SESSION, Opcode.ABORT}
)


class ResponseCode(IntEnum):
    """OBEX response codes as sent on the wire (final bit included)."""

    CONTINUE = 0x90
    OK = 0xA0
    CREATED = 0xA1
    ACCEPTED = 0xA2
    NON_AUTHORITATIVE = 0xA3
    NO_CONTENT = 0xA4
    RESET_CONTENT = 0xA5
    PARTIAL_CONTENT = 0xA6
    MULTIPLE_CHOICES = 0xB0
    MOVED_PERMANENTLY = 0xB1
    MOVED_TEMPORARILY = 0xB2
    SEE_OTHER = 0xB3
    NOT_MODIFIED = 0xB4
    USE_PROXY = 0xB5
    BAD_REQUEST = 0xC0
    UNAUTHORIZED = 0xC1
    PAYMENT_REQUIRED = 0xC2
    FORBIDDEN = 0xC3
    NOT_FOUND = 0xC4
    METHOD_NOT_ALLOWED = 0xC5
    NOT_ACCEPTABLE = 0xC6
    PROXY_AUTH_REQUIRED = 0xC7
    REQUEST_TIMEOUT = 0xC8
    CONFLICT = 0xC9
    GONE = 0xCA
    LENGTH_REQUIRED = 0xCB
    PRECONDITION_FAILED = 0xCC
    REQUEST_ENTITY_TOO_LARGE = 0xCD
    REQUEST_URL_TOO_LARGE = 0xCE
    UNSUPPORTED_MEDIA_TYPE = 0xCF
    INTERNAL_SERVER_ERROR = 0xD0
    NOT_IMPLEMENTED = 0xD1
    BAD_GATEWAY = 0xD2
    SERVICE_UNAVAILABLE = 0xD3
    GATEWAY_TIMEOUT = 0xD4
    HTTP_VERSION_NOT_SUPPORTED = 0xD5
    DATABASE_FULL = 0xE0
    DATABASE_LOCKED = 0xE1

    @property
    def is_success(self) -> bool:
        """``True`` for the 0xA0-0xA6 (2xx) family."""
        return 0xA0 <= self <= 0xAF


class HeaderEncoding(IntEnum):
    """The two high bits of a header id."""

    UNICODE = 0x00
    BYTES = 0x40
    BYTE = 0x80
    INT32 = 0xC0


def header_encoding(header_id: int) -> HeaderEncoding:
    """Return how a header with id ``header_id`` is encoded on the wire."""
    return HeaderEncoding(header_id & 0xC0)


class HeaderId(IntEnum):
    """Header ids defined by OBEX 1.x and later revisions (ids outside are kept as ``int``)."""

    COUNT = 0xC0
    NAME = 0x01
    TYPE = 0x42
    LENGTH = 0xC3
    TIME_ISO8601 = 0x44
    TIME_32 = 0xC4
    DESCRIPTION = 0x05
    TARGET = 0x46
    HTTP = 0x47
    BODY = 0x48
    END_OF_BODY = 0x49
    WHO = 0x4A
    CONNECTION_ID = 0xCB
    APP_PARAMETERS = 0x4C
    AUTH_CHALLENGE = 0x4D
    AUTH_RESPONSE = 0x4E
    CREATOR_ID = 0xCF
    WAN_UUID = 0x50
    OBJECT_CLASS = 0x51
    SESSION_PARAMETERS = 0x52
    SESSION_SEQUENCE_NUMBER = 0x93
    ACTION_ID = 0x94
    DEST_NAME = 0x15
    PERMISSIONS = 0xD6
    SRM = 0x97
    SRM_PARAMETERS = 0x98


_KNOWN_HEADER_IDS: Final = frozenset(int(h) for h in HeaderId)
_MAX_HEADER_PAYLOAD: Final = MAX_PACKET_SIZE - _PREFIX


@dataclass(frozen=True, slots=True)
class Header:
    """One OBEX header.

    ``value`` has the Python type matching the id's encoding: ``str`` for
    Unicode headers (without the terminating NUL), ``bytes`` for byte
    sequences (exactly as on the wire), ``int`` for 1-byte and 4-byte headers.
    Known ids are normalised to :class:`HeaderId` members.

    Raises:
        ObexUsageError: the id is not a byte, or the value does not fit the
            id's encoding.
    """

    id: int
    value: str | bytes | int

    def __post_init__(self) -> None:
        hid, value = self.id, self.value
        if isinstance(hid, bool) or not isinstance(hid, int) or not 0 <= hid <= 0xFF:
            raise ObexUsageError(f"header id must be a byte, got {hid!r}")
        if hid in _KNOWN_HEADER_IDS and not isinstance(hid, HeaderId):
            object.__setattr__(self, "id", HeaderId(hid))
        encoding = header_encoding(hid)
        if encoding is HeaderEncoding.UNICODE:
            if not isinstance(value, str):
                raise ObexUsageError(f"header 0x{hid:02X} holds text, got {type(value).__name__}")
            if "\0" in value:
                raise ObexUsageError(f"header 0x{hid:02X}: text must not contain NUL")
            if len(_encode_unicode(value)) > _MAX_HEADER_PAYLOAD:
                raise ObexUsageError(f"header 0x{hid:02X}: text too long for one header")
        elif encoding is HeaderEncoding.BYTES:
            if not isinstance(value, bytes):
                raise ObexUsageError(f"header 0x{hid:02X} holds bytes, got {type(value).__name__}")
            if len(value) > _MAX_HEADER_PAYLOAD:
                raise ObexUsageError(f"header 0x{hid:02X}: {len(value)} bytes do not fit a header")
        else:
            limit = 0xFF if encoding is HeaderEncoding.BYTE else 0xFFFFFFFF
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
                raise ObexUsageError(
                    f"header 0x{hid:02X} holds an integer 0..{limit}, got {value!r}"
                )

    @property
    def encoding(self) -> HeaderEncoding:
        """How this header is encoded on the wire."""
        return header_encoding(self.id)

    @property
    def text(self) -> str:
        """The value of a Unicode header.  Raises :class:`ObexUsageError` otherwise."""
        if not isinstance(self.value, str):
            raise ObexUsageError(f"header 0x{self.id:02X} is not a text header")
        return self.value

    @property
    def data(self) -> bytes:
        """The value of a byte-sequence header.  Raises :class:`ObexUsageError` otherwise."""
        if not isinstance(self.value, bytes):
            raise ObexUsageError(f"header 0x{self.id:02X} is not a byte-sequence header")
        return self.value

    @property
    def number(self) -> int:
        """The value of a 1-byte or 4-byte header.  Raises :class:`ObexUsageError` otherwise."""
        if not isinstance(self.value, int):
            raise ObexUsageError(f"header 0x{self.id:02X} is not an integer header")
        return self.value

    @property
    def encoded_length(self) -> int:
        """Number of bytes :meth:`encode` produces."""
        encoding = self.encoding
        if encoding is HeaderEncoding.BYTE:
            return 2
        if encoding is HeaderEncoding.INT32:
            return 5
        if encoding is HeaderEncoding.BYTES:
            return _PREFIX + len(self.data)
        return _PREFIX + len(_encode_unicode(self.text))

    def encode(self) -> bytes:
        """The header's wire form."""
        encoding = self.encoding
        if encoding is HeaderEncoding.BYTE:
            return bytes((self.id, self.number))
        if encoding is HeaderEncoding.INT32:
            return bytes((self.id,)) + self.number.to_bytes(4, "big")
        payload = self.data if encoding is HeaderEncoding.BYTES else _encode_unicode(self.text)
        return bytes((self.id,)) + (_PREFIX + len(payload)).to_bytes(2, "big") + payload


def _encode_unicode(text: str) -> bytes:
    # Empty text is sent as a bare header (length 3): OBEX uses that form for
    # "no name", e.g. SETPATH to the root folder.
    return (text + "\0").encode("utf-16-be") if text else b""


def _decode_unicode(payload: bytes, header_id: int) -> str:
    if len(payload) % 2:
        raise ObexProtocolError(
            ResponseCode.BAD_REQUEST, f"header 0x{header_id:02X}: odd UTF-16 length"
        )
    if payload.endswith(b"\0\0"):
        payload = payload[:-2]
    try:
        text = payload.decode("utf-16-be")
    except UnicodeDecodeError:
        raise ObexProtocolError(
            ResponseCode.BAD_REQUEST, f"header 0x{header_id:02X}: invalid UTF-16"
        ) from None
    if "\0" in text:
        raise ObexProtocolError(
            ResponseCode.BAD_REQUEST, f"header 0x{header_id:02X}: NUL inside text"
        )
    return text


# -- header constructors ---------------------------------------------------------------


def type_header(mime_type: str) -> Header:
    """A Type header: the MIME type as NUL-terminated ASCII."""
    try:
        raw = mime_type.encode("ascii")
    except UnicodeEncodeError:
        raise ObexUsageError(f"Type must be ASCII, got {mime_type!r}") from None
    return Header(HeaderId.TYPE, raw + b"\0")


def parse_type(raw: bytes) -> str:
    """Decode a Type header value: ASCII with trailing NULs and spaces trimmed.

    The trimming follows Nokia's S60 OBEX server plugin, which compares types
    after removing a trailing NUL or space (NK ``NSmlObexDSplugin.cpp``).

    Raises:
        ObexProtocolError: the value is not ASCII (``BAD_REQUEST``).
    """
    try:
        return raw.rstrip(b"\0 ").decode("ascii")
    except UnicodeDecodeError:
        raise ObexProtocolError(ResponseCode.BAD_REQUEST, "Type header is not ASCII") from None


def name_header(name: str) -> Header:
    """A Name header (UTF-16BE, NUL-terminated on the wire)."""
    return Header(HeaderId.NAME, name)


def connection_id_header(connection_id: int) -> Header:
    """A Connection-Id header."""
    return Header(HeaderId.CONNECTION_ID, connection_id)


def length_header(length: int) -> Header:
    """A Length header (object size in bytes)."""
    return Header(HeaderId.LENGTH, length)


def target_header(target: bytes) -> Header:
    """A Target header, e.g. ``b"SYNCML-SYNC"`` (no NUL)."""
    return Header(HeaderId.TARGET, target)


def who_header(who: bytes) -> Header:
    """A Who header (a server echoes the Target it accepted)."""
    return Header(HeaderId.WHO, who)


def body_header(chunk: bytes, *, end: bool = False) -> Header:
    """A Body header, or End-of-Body when ``end`` is true."""
    return Header(HeaderId.END_OF_BODY if end else HeaderId.BODY, chunk)


# -- packets ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectParams:
    """The fields after the length in CONNECT requests and responses.

    ``max_packet`` is the largest packet the *sender* of these fields can
    receive; the peer must not send anything longer.
    """

    max_packet: int
    version: int = OBEX_VERSION
    flags: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.version <= 0xFF or not 0 <= self.flags <= 0xFF:
            raise ObexUsageError("CONNECT version and flags are single bytes")
        if not 0 <= self.max_packet <= MAX_PACKET_SIZE:
            raise ObexUsageError(f"max packet length {self.max_packet} is not a 16-bit value")


@dataclass(frozen=True, slots=True, kw_only=True)
class SetpathParams:
    """The fields of a SETPATH request (:data:`SETPATH_BACKUP`, :data:`SETPATH_DONT_CREATE`)."""

    flags: int = 0
    constants: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.flags <= 0xFF or not 0 <= self.constants <= 0xFF:
            raise ObexUsageError("SETPATH flags and constants are single bytes")


class _HeaderAccess:
    """Header look-up helpers shared by :class:`Request` and :class:`Response`."""

    __slots__ = ()
    headers: tuple[Header, ...]

    def header(self, header_id: int) -> Header | None:
        """The first header with id ``header_id``, or ``None``."""
        for h in self.headers:
            if h.id == header_id:
                return h
        return None

    def headers_of(self, header_id: int) -> tuple[Header, ...]:
        """Every header with id ``header_id``, in packet order."""
        return tuple(h for h in self.headers if h.id == header_id)

    @property
    def body(self) -> bytes:
        """The Body and End-of-Body payloads of this packet, concatenated in order."""
        return b"".join(
            h.data for h in self.headers if h.id in (HeaderId.BODY, HeaderId.END_OF_BODY)
        )

    @property
    def has_end_of_body(self) -> bool:
        """``True`` if the packet carries an End-of-Body header."""
        return self.header(HeaderId.END_OF_BODY) is not None

    @property
    def connection_id(self) -> int | None:
        """The Connection-Id header's value, or ``None``."""
        h = self.header(HeaderId.CONNECTION_ID)
        return None if h is None else h.number

    @property
    def mime_type(self) -> str | None:
        """The Type header decoded with :func:`parse_type`, or ``None``.

        Raises:
            ObexProtocolError: the Type is not ASCII.
        """
        h = self.header(HeaderId.TYPE)
        return None if h is None else parse_type(h.data)

    def _encode(self, first: int, fields: bytes) -> bytes:
        parts = [h.encode() for h in self.headers]
        length = _PREFIX + len(fields) + sum(len(p) for p in parts)
        if length > MAX_PACKET_SIZE:
            raise ObexUsageError(f"packet of {length} bytes exceeds the 16-bit length field")
        return b"".join([bytes((first,)), length.to_bytes(2, "big"), fields, *parts])


def _check_headers(headers: Iterable[Header]) -> None:
    for h in headers:
        if not isinstance(h, Header):
            raise ObexUsageError(f"not a Header: {h!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Request(_HeaderAccess):
    """An OBEX request packet.

    ``connect`` is required for (and only allowed on) CONNECT, ``setpath``
    likewise for SETPATH.  CONNECT, DISCONNECT, SETPATH, SESSION and ABORT
    are always final.

    Raises:
        ObexUsageError: the fields do not match the opcode.
    """

    opcode: Opcode
    final: bool = True
    headers: tuple[Header, ...] = field(default=())
    connect: ConnectParams | None = None
    setpath: SetpathParams | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.opcode, Opcode):
            raise ObexUsageError(f"not an Opcode: {self.opcode!r}")
        if self.opcode in _ALWAYS_FINAL and not self.final:
            raise ObexUsageError(f"{self.opcode.name} is always final")
        if (self.opcode is Opcode.CONNECT) != (self.connect is not None):
            raise ObexUsageError("CONNECT needs ConnectParams, other requests take none")
        if (self.opcode is Opcode.SETPATH) != (self.setpath is not None):
            raise ObexUsageError("SETPATH needs SetpathParams, other requests take none")
        _check_headers(self.headers)

    @property
    def wire_opcode(self) -> int:
        """The first byte on the wire: opcode plus final bit."""
        return self.opcode | (FINAL_BIT if self.final else 0)

    def encode(self) -> bytes:
        """The packet's wire form.

        Raises:
            ObexUsageError: the packet would exceed 65535 bytes.
        """
        fields = b""
        if self.connect is not None:
            c = self.connect
            fields = bytes((c.version, c.flags)) + c.max_packet.to_bytes(2, "big")
        elif self.setpath is not None:
            fields = bytes((self.setpath.flags, self.setpath.constants))
        return self._encode(self.wire_opcode, fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(_HeaderAccess):
    """An OBEX response packet; ``connect`` holds the fields of a CONNECT response."""

    code: ResponseCode
    headers: tuple[Header, ...] = field(default=())
    connect: ConnectParams | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.code, ResponseCode):
            raise ObexUsageError(f"not a ResponseCode: {self.code!r}")
        _check_headers(self.headers)

    def encode(self) -> bytes:
        """The packet's wire form.

        Raises:
            ObexUsageError: the packet would exceed 65535 bytes.
        """
        fields = b""
        if self.connect is not None:
            c = self.connect
            fields = bytes((c.version, c.flags)) + c.max_packet.to_bytes(2, "big")
        return self._encode(self.code, fields)


# -- decoding --------------------------------------------------------------------------


def _bad(reason: str) -> ObexProtocolError:
    return ObexProtocolError(ResponseCode.BAD_REQUEST, reason)


def _decode_headers(packet: bytes, pos: int) -> tuple[Header, ...]:
    end = len(packet)
    headers: list[Header] = []
    while pos < end:
        hid = packet[pos]
        encoding = header_encoding(hid)
        value: str | bytes | int
        if encoding is HeaderEncoding.BYTE:
            if pos + 2 > end:
                raise _bad(f"1-byte header 0x{hid:02X} truncated at offset {pos}")
            value = packet[pos + 1]
            pos += 2
        elif encoding is HeaderEncoding.INT32:
            if pos + 5 > end:
                raise _bad(f"4-byte header 0x{hid:02X} truncated at offset {pos}")
            value = int.from_bytes(packet[pos + 1 : pos + 5], "big")
            pos += 5
        else:
            if pos + _PREFIX > end:
                raise _bad(f"header 0x{hid:02X} length truncated at offset {pos}")
            length = int.from_bytes(packet[pos + 1 : pos + 3], "big")
            if length < _PREFIX:
                # The 6-byte packet 82 00 06 48 00 00 made PyOBEX loop forever here.
                raise _bad(f"header 0x{hid:02X} length {length} is below 3 (offset {pos})")
            if pos + length > end:
                raise _bad(
                    f"header 0x{hid:02X} length {length} runs past the packet end (offset {pos})"
                )
            payload = packet[pos + _PREFIX : pos + length]
            value = payload if encoding is HeaderEncoding.BYTES else _decode_unicode(payload, hid)
            pos += length
        headers.append(Header(hid, value))
    return tuple(headers)


def _check_frame(packet: bytes) -> None:
    if len(packet) < _PREFIX:
        raise ObexProtocolError(ResponseCode.BAD_REQUEST, "packet shorter than 3 bytes", fatal=True)
    length = int.from_bytes(packet[1:3], "big")
    if length != len(packet):
        raise ObexProtocolError(
            ResponseCode.BAD_REQUEST,
            f"packet length field {length} does not match {len(packet)} bytes",
            fatal=True,
        )


def _decode_connect_fields(packet: bytes) -> ConnectParams:
    return ConnectParams(
        version=packet[3], flags=packet[4], max_packet=int.from_bytes(packet[5:7], "big")
    )


def decode_request(packet: bytes) -> Request:
    """Decode exactly one request packet.

    Raises:
        ObexProtocolError: ``NOT_IMPLEMENTED`` for an unknown opcode,
            ``BAD_REQUEST`` for anything malformed (``fatal`` when the length
            field does not match ``len(packet)``).
    """
    packet = bytes(packet)
    _check_frame(packet)
    first = packet[0]
    try:
        opcode = Opcode(first & ~FINAL_BIT)
    except ValueError:
        raise ObexProtocolError(
            ResponseCode.NOT_IMPLEMENTED, f"unknown opcode 0x{first:02X}"
        ) from None
    final = bool(first & FINAL_BIT)
    if opcode in _ALWAYS_FINAL and not final:
        raise _bad(f"{opcode.name} without the final bit (0x{first:02X})")
    connect = setpath = None
    pos = _PREFIX
    if opcode is Opcode.CONNECT:
        if len(packet) < _PREFIX + _CONNECT_FIELDS:
            raise _bad("CONNECT request shorter than 7 bytes")
        connect = _decode_connect_fields(packet)
        pos += _CONNECT_FIELDS
    elif opcode is Opcode.SETPATH:
        if len(packet) < _PREFIX + _SETPATH_FIELDS:
            raise _bad("SETPATH request shorter than 5 bytes")
        setpath = SetpathParams(flags=packet[3], constants=packet[4])
        pos += _SETPATH_FIELDS
    return Request(
        opcode=opcode,
        final=final,
        headers=_decode_headers(packet, pos),
        connect=connect,
        setpath=setpath,
    )


def decode_response(packet: bytes, *, to_connect: bool = False) -> Response:
    """Decode exactly one response packet.

    ``to_connect`` says the response answers a CONNECT and so carries the
    4 CONNECT fields.  A *failed* CONNECT response of exactly 3 bytes is
    accepted without them (PyOBEX's server sends ``C3 00 03``; OBEX says the
    fields are always present).

    Raises:
        ObexProtocolError: ``BAD_REQUEST`` for an unknown response code or
            anything malformed (``fatal`` when the length field does not
            match ``len(packet)``).
    """
    packet = bytes(packet)
    _check_frame(packet)
    try:
        code = ResponseCode(packet[0])
    except ValueError:
        raise _bad(f"unknown response code 0x{packet[0]:02X}") from None
    connect = None
    pos = _PREFIX
    if to_connect and (code.is_success or len(packet) > _PREFIX):
        if len(packet) < _PREFIX + _CONNECT_FIELDS:
            raise _bad("CONNECT response shorter than 7 bytes")
        connect = _decode_connect_fields(packet)
        pos += _CONNECT_FIELDS
    return Response(code=code, headers=_decode_headers(packet, pos), connect=connect)


class PacketReader:
    """Reassemble OBEX packets from a byte stream fed in arbitrary pieces.

    :meth:`feed` appends bytes; :meth:`next_frame` (or the decoding variants
    :meth:`next_request` / :meth:`next_response`) returns one complete packet
    at a time, or ``None`` when more bytes are needed.  The packet length is
    checked as soon as its 3-byte prefix is there, so the reader never waits
    for (or keeps) more than one packet of at most ``max_packet`` bytes:
    after the caller has drained every complete packet, fewer than
    ``max_packet`` bytes stay buffered.

    A framing error (length below 3 or above ``max_packet``) is fatal: the
    reader drops its buffer, ignores later input and raises the same error
    on every later :meth:`next_frame`.  A content error found by
    ``next_request``/``next_response`` consumes the bad packet and is not
    fatal.
    """

    def __init__(self, max_packet: int = MAX_PACKET_SIZE) -> None:
        """Create a reader accepting packets of up to ``max_packet`` bytes (255..65535)."""
        if not MIN_PACKET_SIZE <= max_packet <= MAX_PACKET_SIZE:
            raise ObexUsageError(f"max_packet must be {MIN_PACKET_SIZE}..{MAX_PACKET_SIZE}")
        self.max_packet = max_packet
        self._buffer = bytearray()
        self._error: ObexProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Number of bytes held that do not yet form a complete packet (or not drained yet)."""
        return len(self._buffer)

    @property
    def failed(self) -> bool:
        """``True`` once a fatal framing error was found."""
        return self._error is not None

    def feed(self, data: bytes) -> None:
        """Append received bytes (ignored once the reader has failed)."""
        if self._error is None:
            self._buffer += data

    def next_frame(self) -> bytes | None:
        """Return the next complete, length-checked packet, or ``None`` if incomplete.

        Raises:
            ObexProtocolError: fatal framing error (``BAD_REQUEST`` for a
                length below 3, ``REQUEST_ENTITY_TOO_LARGE`` above
                ``max_packet``).
        """
        if self._error is not None:
            raise self._error
        buf = self._buffer
        if len(buf) < _PREFIX:
            return None
        length = int.from_bytes(buf[1:3], "big")
        if length < _PREFIX:
            self._fail(ResponseCode.BAD_REQUEST, f"packet length {length} is below 3")
        if length > self.max_packet:
            self._fail(
                ResponseCode.REQUEST_ENTITY_TOO_LARGE,
                f"packet length {length} exceeds the maximum {self.max_packet}",
            )
        if len(buf) < length:
            return None
        frame = bytes(buf[:length])
        del buf[:length]
        return frame

    def next_request(self) -> Request | None:
        """Like :meth:`next_frame`, decoded with :func:`decode_request`."""
        frame = self.next_frame()
        return None if frame is None else decode_request(frame)

    def next_response(self, *, to_connect: bool = False) -> Response | None:
        """Like :meth:`next_frame`, decoded with :func:`decode_response`."""
        frame = self.next_frame()
        return None if frame is None else decode_response(frame, to_connect=to_connect)

    def _fail(self, code: ResponseCode, reason: str) -> NoReturn:
        self._error = ObexProtocolError(code, reason, fatal=True)
        self._buffer.clear()
        raise self._error
