"""Typed protocol errors.

Malformed input never escapes the protocol layer as anything but a
:class:`RemoteProtocolError`; trying to encode something the wire format
cannot carry raises :class:`LocalProtocolError`.  Both carry the SyncML status
code the engine should answer with (``status``) and, when known, the byte
offset in the input where the problem was found (``offset``).
"""

from __future__ import annotations

from syncmld.errors import SyncmlError

#: Status 400 "Bad request": the generic answer to a malformed message.
BAD_REQUEST = 400


class ProtocolError(SyncmlError):
    """A SyncML representation error.

    Attributes:
        status: the SyncML status code to answer with (400 unless more
            specific: 413 too large, 415 unsupported type, 505/513 version).
        offset: byte offset into the decoded input, or ``None``.
    """

    status: int
    offset: int | None

    def __init__(self, message: str, *, status: int = BAD_REQUEST, offset: int | None = None):
        if type(self) is ProtocolError:
            raise TypeError("raise RemoteProtocolError or LocalProtocolError, not ProtocolError")
        super().__init__(message)
        self.message = message
        self.status = status
        self.offset = offset

    def __str__(self) -> str:
        if self.offset is None:
            return self.message
        return f"{self.message} (at byte {self.offset})"


class RemoteProtocolError(ProtocolError):
    """The peer sent something that is not valid SyncML, WBXML, XML or DevInf."""


class LocalProtocolError(ProtocolError):
    """We were asked to encode something the wire format cannot represent."""
