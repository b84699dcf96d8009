"""Server Alerted Notification (SAN): how a server asks a client to sync.

Two forms exist:

* DS 1.2 binary notification (MIME ``application/vnd.syncml.ds.notification``),
  built by :func:`build_san` and read by :func:`parse_san`.  Layout, bit
  fields most significant bit first::

      16 bytes  digest = MD5(B64(MD5(server-id ":" password)) ":" nonce ":"
                             B64(MD5(notification)))
                (notification = every byte after the digest; all zero
                when there are no credentials)
      10 bits   version (12 = 1.2)     2 bits ui-mode   1 bit initiator
      27 bits   future use (0)         16 bits session id
      8 bits    server-id length N     N bytes server id
      4 bits    number of syncs (0 = all datastores)     4 bits future use
      per sync: 4 bits sync type (alert code - 200, 6..10)   4 bits future use
                24 bits content type   8 bits URI length M   M bytes server URI
      the rest: vendor-specific bytes

* DS 1.0/1.1 "package 0": an ordinary SyncML message with one Alert 206-210
  per datastore whose Item names the server database (Source LocURI) and its
  MIME type (Meta Type): :func:`san_to_message` and :func:`message_to_san`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.model import Alert, Cred, Item, Location, Message, Meta, SyncHdr

#: MIME type of a DS 1.2 binary notification.
SAN_CONTENT_TYPE: Final = "application/vnd.syncml.ds.notification"

BAD_REQUEST: Final = 400
VERSION_NOT_SUPPORTED: Final = 513

DIGEST_SIZE: Final = 16
#: Digest, 5 bytes of version/ui/initiator/future, session id, server-id length.
_HEADER_SIZE: Final = DIGEST_SIZE + 5 + 2 + 1

_VERSIONS: Final[dict[str, int]] = {"1.0": 10, "1.1": 11, "1.2": 12}
_VERSION_NAMES: Final[dict[int, str]] = {v: k for k, v in _VERSIONS.items()}

#: Content type numbers of the notification (WSP / OMNA well-known values).
#: 0x0305 and 0x0309 come from SyncEvolution only; it sends the older 0x06 /
#: 0x07 unless told otherwise, because most phones know only those.
CONTENT_TYPES: Final[dict[str, int]] = {
    "text/plain": 0x03,
    "text/x-vcalendar": 0x06,
    "text/x-vcard": 0x07,
    "text/calendar": 0x0305,
    "text/vcard": 0x0309,
}
_CONTENT_TYPE_NAMES: Final[dict[int, str]] = {v: k for k, v in CONTENT_TYPES.items()}


def content_type_number(mime: str | None) -> int:
    """The notification number of a MIME type; 0 (unspecified) when unknown."""
    if mime is None:
        return 0
    return CONTENT_TYPES.get(mime.split(";", 1)[0].strip().lower(), 0)


def content_type_name(number: int) -> str | None:
    """The MIME type of a notification content type number, or ``None``."""
    return _CONTENT_TYPE_NAMES.get(number)


@dataclass(frozen=True, slots=True, kw_only=True)
class SanAlert:
    """One datastore to sync.

    Attributes:
        sync_type: the server-alerted alert code, 206-210.
        content_type: the notification content type number (0 unspecified),
            see :data:`CONTENT_TYPES`.
        server_uri: the server's database URI (what the client alerts as Target).
    """

    sync_type: int
    content_type: int = 0
    server_uri: str


@dataclass(frozen=True, slots=True, kw_only=True)
class San:
    """A server alerted notification.

    Attributes:
        version: "1.2", "1.1" or "1.0".
        ui_mode: 0 not specified, 1 background, 2 informative, 3 user interaction.
        initiator_server: True when the server started it, False for the user.
        session_id: 0-65535; the client uses it for the session it starts.
        server_id: the server identifier (``PC Suite`` for phones' PC sync).
        alerts: the datastores to sync; empty means all of them.
        vendor: vendor-specific bytes after the body.
    """

    version: str = "1.2"
    ui_mode: int = 0
    initiator_server: bool = True
    session_id: int
    server_id: str
    alerts: tuple[SanAlert, ...] = ()
    vendor: bytes = b""


# --- binary form --------------------------------------------------------------


def _md5_b64(data: bytes) -> bytes:
    return base64.b64encode(hashlib.md5(data).digest())


def san_digest(notification: bytes, *, server_id: str, password: str | None, nonce: bytes) -> bytes:
    """The 16-byte digest of a notification (the bytes after the digest).

    All zero when ``password`` is ``None`` (no credentials, as libsynthesis does).
    """
    if password is None:
        return bytes(DIGEST_SIZE)
    secret = _md5_b64(f"{server_id}:{password}".encode())
    return hashlib.md5(secret + b":" + nonce + b":" + _md5_b64(notification)).digest()


def _encode_text(text: str, what: str) -> bytes:
    raw = text.encode()
    if len(raw) > 255:
        raise LocalProtocolError(f"SAN {what} longer than 255 bytes")
    return raw


def build_san(san: San, *, password: str | None, nonce: bytes) -> bytes:
    """The DS 1.2 binary notification for ``san``.

    Args:
        password: the password the client knows the server by, or ``None``
            for an all-zero digest.
        nonce: the nonce the client gave the server last (SyncEvolution uses
            ``b"SyncEvolution"`` when it has none).

    Raises:
        LocalProtocolError: a value does not fit its field.
    """
    version = _VERSIONS.get(san.version)
    if version is None:
        raise LocalProtocolError(f"unknown SAN version {san.version!r}")
    if not 0 <= san.ui_mode <= 3:
        raise LocalProtocolError(f"SAN ui-mode {san.ui_mode} is not 0-3")
    if not 0 <= san.session_id <= 0xFFFF:
        raise LocalProtocolError(f"SAN session id {san.session_id} is not 0-65535")
    if len(san.alerts) > 15:
        raise LocalProtocolError("a SAN names at most 15 datastores")
    server_id = _encode_text(san.server_id, "server id")
    # 10 bits version, 2 bits ui-mode, 1 bit initiator, 27 bits zero.
    flags = (version << 30) | (san.ui_mode << 28) | (int(san.initiator_server) << 27)
    out = bytearray(flags.to_bytes(5, "big"))
    out += san.session_id.to_bytes(2, "big")
    out.append(len(server_id))
    out += server_id
    out.append(len(san.alerts) << 4)
    for a in san.alerts:
        if not 206 <= a.sync_type <= 210:
            raise LocalProtocolError(f"SAN sync type {a.sync_type} is not 206-210")
        if not 0 <= a.content_type <= 0xFFFFFF:
            raise LocalProtocolError(f"SAN content type {a.content_type} does not fit 24 bits")
        uri = _encode_text(a.server_uri, "server URI")
        out.append((a.sync_type - 200) << 4)
        out += a.content_type.to_bytes(3, "big")
        out.append(len(uri))
        out += uri
    out += san.vendor
    notification = bytes(out)
    digest = san_digest(notification, server_id=san.server_id, password=password, nonce=nonce)
    return digest + notification


def _bad(message: str, offset: int, status: int = BAD_REQUEST) -> RemoteProtocolError:
    return RemoteProtocolError(f"SAN: {message}", status=status, offset=offset)


def _decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def is_san(data: bytes) -> bool:
    """True when ``data`` looks like a binary notification: the version field
    (bytes 16-17 shifted right by 6, as the Nokia framework tests it) is
    10, 11 or 12.  A WBXML package 0 does not pass."""
    if len(data) < _HEADER_SIZE + 1:
        return False
    return (int.from_bytes(data[16:18], "big") >> 6) in _VERSION_NAMES


def parse_san(data: bytes) -> San:
    """Read a binary notification (the digest is not checked, see
    :func:`verify_san_digest`).

    Future-use bits are ignored.  Text that is not UTF-8 is read as ISO-8859-1.

    Raises:
        RemoteProtocolError: truncated data, a sync type outside 206-210
            (status 400) or an unknown version (513); ``offset`` is where.
    """
    if len(data) < _HEADER_SIZE:
        raise _bad(f"{len(data)} bytes are too short for a notification header", len(data))
    flags = int.from_bytes(data[DIGEST_SIZE : DIGEST_SIZE + 5], "big")
    version = _VERSION_NAMES.get(flags >> 30)
    if version is None:
        raise _bad(f"unknown version {flags >> 30}", DIGEST_SIZE, VERSION_NOT_SUPPORTED)
    ui_mode = (flags >> 28) & 0x3
    initiator_server = bool((flags >> 27) & 0x1)
    pos = DIGEST_SIZE + 5
    session_id = int.from_bytes(data[pos : pos + 2], "big")
    pos += 2
    n = data[pos]
    pos += 1
    if pos + n > len(data):
        raise _bad(f"server id of {n} bytes runs past the end", pos - 1)
    server_id = _decode_text(data[pos : pos + n])
    pos += n
    if pos >= len(data):
        raise _bad("no notification body", pos)
    count = data[pos] >> 4
    pos += 1
    alerts = []
    for i in range(count):
        if pos + 5 > len(data):
            raise _bad(f"sync {i + 1} of {count} is truncated", pos)
        sync_type = 200 + (data[pos] >> 4)
        if not 206 <= sync_type <= 210:
            raise _bad(f"sync type {sync_type - 200} is not 6-10", pos)
        content_type = int.from_bytes(data[pos + 1 : pos + 4], "big")
        m = data[pos + 4]
        pos += 5
        if pos + m > len(data):
            raise _bad(f"server URI of {m} bytes runs past the end", pos - 1)
        uri = _decode_text(data[pos : pos + m])
        pos += m
        alerts.append(SanAlert(sync_type=sync_type, content_type=content_type, server_uri=uri))
    return San(
        version=version,
        ui_mode=ui_mode,
        initiator_server=initiator_server,
        session_id=session_id,
        server_id=server_id,
        alerts=tuple(alerts),
        vendor=bytes(data[pos:]),
    )


def verify_san_digest(data: bytes, server_id: str, password: str | None, nonce: bytes) -> bool:
    """True when the notification's digest matches (constant time).

    With ``password`` ``None`` the digest must be all zero.  Data shorter
    than a digest does not verify.
    """
    if len(data) < DIGEST_SIZE:
        return False
    expected = san_digest(data[DIGEST_SIZE:], server_id=server_id, password=password, nonce=nonce)
    return hmac.compare_digest(bytes(data[:DIGEST_SIZE]), expected)


# --- DS 1.0/1.1 package 0 -----------------------------------------------------


def san_to_message(san: San, *, target: str = "/", cred: Cred | None = None) -> Message:
    """The DS 1.0/1.1 "package 0" form of a notification.

    A SyncML message (VerDTD = ``san.version``, MsgID 1, SessionID the
    notification's, Source = the server id, Target = ``target``, the client
    or ``/``) with one Alert per datastore whose Item carries the server URI
    as Source LocURI and the MIME type as Meta Type, then Final.  UI mode,
    initiator and vendor bytes have no place in it and are dropped; a content
    type number without a MIME type (:data:`CONTENT_TYPES`) gives no Meta.

    Raises:
        LocalProtocolError: no datastores (package 0 cannot say "all"), a
            sync type outside 206-210 or an unknown version.
    """
    if san.version not in _VERSIONS:
        raise LocalProtocolError(f"unknown SAN version {san.version!r}")
    if not san.alerts:
        raise LocalProtocolError("a package 0 must name the datastores to sync")
    commands = []
    for i, a in enumerate(san.alerts, start=1):
        if not 206 <= a.sync_type <= 210:
            raise LocalProtocolError(f"SAN sync type {a.sync_type} is not 206-210")
        mime = content_type_name(a.content_type)
        item = Item(
            source=Location(uri=a.server_uri),
            meta=None if mime is None else Meta(type=mime),
        )
        commands.append(Alert(cmd_id=i, data=a.sync_type, items=(item,)))
    header = SyncHdr(
        ver_dtd=san.version,
        ver_proto=f"SyncML/{san.version}",
        session_id=str(san.session_id),
        msg_id=1,
        target=Location(uri=target),
        source=Location(uri=san.server_id),
        cred=cred,
    )
    return Message(header=header, commands=tuple(commands), final=True)


def message_to_san(msg: Message) -> San:
    """Read a DS 1.0/1.1 "package 0" message as a notification.

    Every Alert 206-210 contributes one :class:`SanAlert` per Item (the
    server URI from Source LocURI, else Target LocURI; the content type from
    the Item's Meta Type).  Other commands are ignored.

    Raises:
        RemoteProtocolError: no server-alerted Alert, an Alert with another
            sync code, an Item without a URI (412), or a SessionID that is
            not a number 0-65535 (400).
    """
    sid = msg.header.session_id.strip()
    if not (sid.isascii() and sid.isdigit() and int(sid) <= 0xFFFF):
        raise RemoteProtocolError(
            f"package 0 SessionID {sid[:20]!r} is not a number 0-65535", status=BAD_REQUEST
        )
    alerts = []
    for cmd in msg.commands:
        if not isinstance(cmd, Alert) or cmd.data is None or not 200 <= cmd.data <= 210:
            continue  # not a sync alert (222 next message, 224 suspend ...)
        if cmd.data < 206:
            raise RemoteProtocolError(
                f"package 0 Alert {cmd.data} is not a server-alerted sync (206-210)",
                status=BAD_REQUEST,
            )
        for item in cmd.items:
            loc = item.source or item.target
            if loc is None or not loc.uri:
                raise RemoteProtocolError("package 0 Alert Item without a database URI", status=412)
            mime = item.meta.type if item.meta is not None else None
            alerts.append(
                SanAlert(
                    sync_type=cmd.data,
                    content_type=content_type_number(mime),
                    server_uri=loc.uri,
                )
            )
    if not alerts:
        raise RemoteProtocolError("package 0 without a server-alerted Alert", status=412)
    return San(
        version=msg.header.ver_dtd,
        session_id=int(sid),
        server_id=msg.header.source.uri,
        alerts=tuple(alerts),
    )
