"""Schema versioning: running the alembic migrations from code.

The migration scripts live in the package (``syncmld/state/migrations``) and
are found through :data:`MIGRATIONS`; no ``alembic.ini`` is read.  The state
repository upgrades the database to :func:`head` when it opens it.

To write a new revision, change :mod:`syncmld.state.models`, then::

    from alembic import command
    from syncmld.state.schema import alembic_config
    command.revision(alembic_config(url="sqlite:////tmp/scratch.db"),
                     message="what changed", autogenerate=True, rev_id="0002")

against a scratch database upgraded to the current head, and review the
generated file (name the constraints per ``NAMING_CONVENTION``).
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection

#: The alembic script directory shipped inside the package.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(*, connection: Connection | None = None, url: str | None = None) -> Config:
    """An alembic :class:`~alembic.config.Config` for the state schema.

    Args:
        connection: migrate through this connection (and its transaction).
        url: otherwise, a database URL env.py connects to itself.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        # ConfigParser interpolation: a literal "%" must be doubled.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _scripts() -> ScriptDirectory:
    # The shipped scripts do not change while the process runs.
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The revision id of the newest schema version."""
    rev = _scripts().get_current_head()
    if rev is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError(f"no alembic revisions in {MIGRATIONS}")
    return rev


def known(revision: str) -> bool:
    """Whether ``revision`` is one of the shipped migrations."""
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def current(connection: Connection) -> str | None:
    """The schema revision of the database behind ``connection`` (``None``: empty)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database to ``revision`` inside the connection's transaction.

    Raises:
        alembic.util.CommandError: ``revision``, or the database's current
            revision, is not a shipped one.
    """
    command.upgrade(alembic_config(connection=connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    """Migrate the database down to ``revision`` (``"base"``: drop everything)."""
    command.downgrade(alembic_config(connection=connection), revision)


__all__ = ["MIGRATIONS", "alembic_config", "current", "downgrade", "head", "known", "upgrade"]
