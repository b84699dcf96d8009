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
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from syncmld.state.models import Base

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# alembic is imported only when a migration actually runs: opening a database
# that is already current costs one query and no alembic import (~12 MB and a
# noticeable share of the daemon's start-up time).

#: The alembic script directory shipped inside the package.
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: The newest revision (a test checks it is alembic's head of MIGRATIONS).
HEAD = "0002"


def alembic_config(*, connection: Connection | None = None, url: str | None = None) -> Config:
    """An alembic :class:`~alembic.config.Config` for the state schema.

    Args:
        connection: migrate through this connection (and its transaction).
        url: otherwise, a database URL env.py connects to itself.
    """
    from alembic.config import Config  # noqa: PLC0415 - see the note at the imports

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
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    return ScriptDirectory.from_config(alembic_config())


def alembic_head() -> str:
    """The newest revision as alembic computes it from the shipped scripts."""
    rev = _scripts().get_current_head()
    if rev is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError(f"no alembic revisions in {MIGRATIONS}")
    return rev


def head() -> str:
    """The revision id of the newest schema version."""
    return HEAD


def known(revision: str) -> bool:
    """Whether ``revision`` is one of the shipped migrations."""
    if revision == HEAD:
        return True
    from alembic.util import CommandError  # noqa: PLC0415

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def current(connection: Connection) -> str | None:
    """The schema revision of the database behind ``connection`` (``None``: empty)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def create(connection: Connection) -> None:
    """Create the newest schema in an empty database and record it as :data:`HEAD`.

    The same tables the migrations build (a test compares the migrated
    schema with the models), without loading alembic: a new database
    costs no migration run.
    """
    Base.metadata.create_all(connection)
    connection.execute(
        text(
            "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
    )
    connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD})


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database to ``revision`` inside the connection's transaction.

    Raises:
        alembic.util.CommandError: ``revision``, or the database's current
            revision, is not a shipped one.
    """
    from alembic import command  # noqa: PLC0415

    command.upgrade(alembic_config(connection=connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    """Migrate the database down to ``revision`` (``"base"``: drop everything)."""
    from alembic import command  # noqa: PLC0415

    command.downgrade(alembic_config(connection=connection), revision)


__all__ = [
    "HEAD",
    "MIGRATIONS",
    "alembic_config",
    "alembic_head",
    "create",
    "current",
    "downgrade",
    "head",
    "known",
    "upgrade",
]
