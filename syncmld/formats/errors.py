"""Errors raised by the format codecs in :mod:`syncmld.formats`."""

from __future__ import annotations

from syncmld.errors import SyncmlError


class FormatError(SyncmlError, ValueError):
    """An item could not be parsed or converted.

    The engine quarantines the item and reports it; one bad item never aborts a
    sync session (reliability goal 4 in ``docs/pim.md``). ``line`` is the
    1-based physical line number where the problem was found, when known.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line
