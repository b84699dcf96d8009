"""Persistent state: what syncmld remembers about its peers between sessions.

:class:`~syncmld.state.repository.StateRepository` loads a peer's
:class:`~syncmld.engine.state.PeerState` before a session and stores the one
the session hands back, with the history entry, in one transaction.  The
schema (:mod:`syncmld.state.models`) is versioned with alembic migrations
(:mod:`syncmld.state.schema`) that run when the repository opens.
"""

from syncmld.state.repository import DEFAULT_BUSY_TIMEOUT, StateRepository, default_url

__all__ = ["DEFAULT_BUSY_TIMEOUT", "StateRepository", "default_url"]
