"""The root of syncmld's exception hierarchy.

Every exception syncmld raises on purpose derives from :class:`SyncmlError`.
:class:`UserError` carries a message meant for a person (a CLI line, a log
line); it is shown without a traceback.
"""

from __future__ import annotations


class SyncmlError(Exception):
    """Base class of every error syncmld raises deliberately."""


class UserError(SyncmlError):
    """An error whose message is complete for a user: no traceback is shown."""
