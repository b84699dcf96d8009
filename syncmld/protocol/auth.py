"""SyncML authentication: ``syncml:auth-basic`` and ``syncml:auth-md5``.

Basic credentials are ``b64("user:password")``.  MD5 digests are::

    SyncML 1.1, 1.2:  b64(MD5(b64(MD5("user:password")) + ":" + nonce))
    SyncML 1.0:       b64(MD5("user:password:" + nonce))

where ``nonce`` is the raw bytes of the base64 ``NextNonce`` the other side
sent in its last challenge (empty when there was none).  Because the 1.1
formula only needs ``b64(MD5("user:password"))``, a server can store that
(:func:`md5_user_hash`) instead of the password and still verify 1.1/1.2
digests (:func:`md5_digest_from_hash`); 1.0 digests and basic credentials
need the password itself.

Names and passwords are encoded as UTF-8.  Everything here is pure: only
:func:`new_nonce` uses randomness (from :mod:`secrets`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import string
from typing import Final

from syncmld.protocol.errors import RemoteProtocolError

#: ``Meta/Type`` of basic credentials.
AUTH_BASIC: Final = "syncml:auth-basic"
#: ``Meta/Type`` of MD5 digest credentials.
AUTH_MD5: Final = "syncml:auth-md5"

#: Status for credentials that cannot be decoded: they are wrong credentials,
#: answered with a challenge so the client may try again.
INVALID_CREDENTIALS: Final = 401

_BLANKS: Final = re.compile(rb"\s+")
_B64_ALPHABET: Final = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_NONCE_CHARS: Final = string.ascii_letters + string.digits


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _md5_b64(data: bytes) -> bytes:
    return base64.b64encode(hashlib.md5(data).digest())


def _lenient_b64decode(text: str | bytes) -> bytes | None:
    """Decode base64 with blanks anywhere and padding missing; ``None`` if it is not base64."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    raw = _BLANKS.sub(b"", raw)
    if not _B64_ALPHABET.fullmatch(raw):
        return None
    raw = raw.rstrip(b"=")
    if len(raw) % 4 == 1:
        return None  # no base64 text has this length
    raw += b"=" * (-len(raw) % 4)
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:  # pragma: no cover - excluded by the checks above
        return None


# --- basic --------------------------------------------------------------------


def basic_credentials(user: str, password: str) -> str:
    """The ``Cred/Data`` of ``syncml:auth-basic``: ``b64("user:password")``."""
    return _b64(f"{user}:{password}".encode())


def parse_basic(data: str) -> tuple[str, str]:
    """Split basic credentials into (user, password).

    Blanks and missing padding are tolerated.  A name or password that is not
    UTF-8 is read as ISO-8859-1 (older phones encode in their local charset).

    Raises:
        RemoteProtocolError: status 401: not base64, or no ``:``.
    """
    raw = _lenient_b64decode(data)
    if raw is None:
        raise RemoteProtocolError("basic credentials are not base64", status=INVALID_CREDENTIALS)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    user, sep, password = text.partition(":")
    if not sep:
        raise RemoteProtocolError(
            "basic credentials lack the ':' between name and password",
            status=INVALID_CREDENTIALS,
        )
    return user, password


# --- MD5 ----------------------------------------------------------------------


def md5_user_hash(user: str, password: str) -> str:
    """``b64(MD5("user:password"))``: what a server may store instead of the password."""
    return _md5_b64(f"{user}:{password}".encode()).decode("ascii")


def md5_digest_from_hash(user_hash: str, nonce: bytes) -> str:
    """The SyncML 1.1/1.2 digest from a stored :func:`md5_user_hash` and a raw nonce."""
    return _md5_b64(user_hash.strip().encode("ascii") + b":" + nonce).decode("ascii")


def md5_digest(user: str, password: str, nonce: bytes, *, version: str) -> str:
    """The ``Cred/Data`` of ``syncml:auth-md5`` for SyncML ``version``.

    Args:
        nonce: the raw nonce (:func:`decode_nonce` of the peer's NextNonce);
            ``b""`` when the peer never sent one.
        version: "1.0" uses the 1.0 formula; "1.1" and "1.2" the later one.

    Raises:
        ValueError: an unknown version.
    """
    v = version.strip()
    if v == "1.0":
        return _md5_b64(f"{user}:{password}:".encode() + nonce).decode("ascii")
    if v in ("1.1", "1.2"):
        return md5_digest_from_hash(md5_user_hash(user, password), nonce)
    raise ValueError(f"unknown SyncML version {version!r}")


def verify_md5(
    received: str,
    *,
    nonce: bytes,
    version: str,
    user: str,
    password: str | None = None,
    user_hash: str | None = None,
) -> bool:
    """Check an MD5 ``Cred/Data`` in constant time.

    Give either the ``password`` or, for SyncML 1.1/1.2, the stored
    ``user_hash`` (:func:`md5_user_hash`; ``user`` is then only informative).
    The received digest may have blanks or lack its padding; one that is not
    base64 simply does not verify.

    Raises:
        ValueError: neither password nor hash, a hash with SyncML 1.0, or an
            unknown version.
    """
    if password is not None:
        expected = md5_digest(user, password, nonce, version=version)
    elif user_hash is not None:
        if version.strip() not in ("1.1", "1.2"):
            raise ValueError("a stored MD5 hash can only verify SyncML 1.1/1.2 digests")
        expected = md5_digest_from_hash(user_hash, nonce)
    else:
        raise ValueError("verify_md5 needs the password or the stored hash")
    got = _lenient_b64decode(received)
    want = base64.b64decode(expected)
    if got is None:
        # Compare anyway so that garbage takes as long as a wrong digest.
        hmac.compare_digest(want, want)
        return False
    return hmac.compare_digest(got, want)


# --- nonces -------------------------------------------------------------------


def decode_nonce(next_nonce_b64: str | bytes) -> bytes:
    """The raw nonce of a ``NextNonce`` value.

    NextNonce is base64 of the raw nonce; blanks and missing padding are
    tolerated.  A value that is not base64 at all is taken to be the raw
    nonce itself and returned as its UTF-8 bytes: some peers send the nonce
    unencoded, and a WBXML OPAQUE NextNonce may carry the raw bytes (which
    are returned unchanged when they are not ASCII).  A raw nonce that
    happens to look like base64 cannot be told apart and is decoded.
    """
    decoded = _lenient_b64decode(next_nonce_b64)
    if decoded is not None:
        return decoded
    if isinstance(next_nonce_b64, bytes):
        return next_nonce_b64
    return next_nonce_b64.encode()


def new_nonce() -> str:
    """A fresh nonce for a challenge, as the base64 text for ``NextNonce``.

    Eight random letters and digits (printable nonces are what libsynthesis
    sends; some clients mishandle other bytes).
    """
    raw = "".join(secrets.choice(_NONCE_CHARS) for _ in range(8))
    return _b64(raw.encode("ascii"))
