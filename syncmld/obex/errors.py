"""Typed OBEX errors.

Two kinds, in the style of h11's local/remote split:

* :class:`ObexProtocolError` - the *peer* sent something that is not valid
  OBEX (a bad length, a truncated header, a packet above the negotiated
  maximum, an unknown opcode).  It carries the response code a server
  answers with (:attr:`ObexProtocolError.code`) and whether the byte stream
  can still be trusted (:attr:`ObexProtocolError.fatal`): a header error
  inside a correctly framed packet leaves the framing intact, a bad packet
  length does not.
* :class:`ObexUsageError` - *we* were asked to do something the protocol or
  the current state does not allow (a header value the wire format cannot
  carry, ``put()`` before ``connect()``, ...).

Both derive from :class:`ObexError`, itself a :class:`~syncmld.errors.SyncmlError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncmld.errors import SyncmlError

if TYPE_CHECKING:
    from syncmld.obex.packets import ResponseCode


class ObexError(SyncmlError):
    """Base class of every OBEX error syncmld raises."""


class ObexProtocolError(ObexError):
    """The peer broke the OBEX protocol.

    Attributes:
        code: the response code a server answers the offending request with
            (``BAD_REQUEST`` unless something more specific fits).
        reason: a human-readable explanation (also ``str(error)``).
        fatal: ``True`` when the packet framing is lost (bad packet length,
            packet above the maximum): no further byte from this peer can be
            interpreted and the connection must be closed.  ``False`` when
            only the content of one correctly framed packet was bad.
    """

    code: ResponseCode
    reason: str
    fatal: bool

    def __init__(self, code: ResponseCode, reason: str, *, fatal: bool = False) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.fatal = fatal

    def __repr__(self) -> str:
        return f"ObexProtocolError({self.code!r}, {self.reason!r}, fatal={self.fatal})"


class ObexUsageError(ObexError):
    """The local application asked for something OBEX or the current state forbids."""
