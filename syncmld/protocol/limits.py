"""Resource limits applied by every decoder in :mod:`syncmld.protocol`.

Decoders refuse input that would make them use unbounded time or memory: a
document larger than ``max_size`` is refused before it is looked at, nesting
deeper than ``max_depth`` and more than ``max_elements`` elements are refused
while parsing.  Every refusal is a :class:`~syncmld.protocol.errors.RemoteProtocolError`
with status 413 (too large) or 400.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Bounds for one decode call."""

    #: Largest encoded document accepted, in bytes.
    max_size: int = 8 * 1024 * 1024
    #: Deepest element nesting accepted (SyncML itself needs about 12; DevInf inside Data 20).
    max_depth: int = 64
    #: Most elements accepted in one document (nested DevInf documents included).
    max_elements: int = 300_000


DEFAULT_LIMITS = Limits()
