"""Persistent state: what syncmld remembers about its peers between sessions.

:class:`~syncmld.state.repository.StateRepository` loads a peer's
:class:`~syncmld.engine.state.PeerState` before a session and stores the one
the session hands back, with the history entry, in one transaction.  The
schema (:mod:`syncmld.state.models`) is versioned with alembic migrations
(:mod:`syncmld.state.schema`) that run when the repository opens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncmld.state.repository import DEFAULT_BUSY_TIMEOUT, StateRepository, default_url

__all__ = ["DEFAULT_BUSY_TIMEOUT", "StateRepository", "default_url"]


def __getattr__(name: str) -> Any:
    # The repository pulls in SQLAlchemy; importing the package (for
    # ``syncmld.state.files``) must not.
    if name in __all__:
        from syncmld.state import repository  # noqa: PLC0415

        return getattr(repository, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
