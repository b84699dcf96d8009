"""The alembic migrations: the migrated schema is exactly the models' schema."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, create_engine, inspect

from syncmld.errors import UserError
from syncmld.state import StateRepository, schema
from syncmld.state.models import Base
from tests.state.helpers import full_peer, run


def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_migrated_schema_equals_the_models(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    with StateRepository(url):
        pass
    assert _diff(url) == []


def test_compare_sees_the_schema(db_path: Path) -> None:
    """Guard for the test above: the comparison does look at the tables."""
    url = f"sqlite:///{db_path}"
    with StateRepository(url):
        pass
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn)
            removed = compare_metadata(context, MetaData())
    finally:
        engine.dispose()
    assert {d[1].name for d in removed if d[0] == "remove_table"} == set(Base.metadata.tables)


def test_foreign_keys_cascade(db_path: Path) -> None:
    """alembic does not compare ON DELETE on SQLite: check it directly."""
    with StateRepository(f"sqlite:///{db_path}"):
        pass
    raw = sqlite3.connect(db_path)
    try:
        for table in ("datastore_pairs", "item_mappings", "pending_maps", "sync_run_stores"):
            actions = {row[6] for row in raw.execute(f"PRAGMA foreign_key_list({table})")}
            assert actions == {"CASCADE"}, table
    finally:
        raw.close()


def test_database_is_at_head(repo: StateRepository) -> None:
    with repo.engine.connect() as conn:
        assert schema.current(conn) == schema.head() == "0001"
    assert schema.known("0001")
    assert not schema.known("9999")


def test_downgrade_and_upgrade_again(repo: StateRepository) -> None:
    repo.save_session(full_peer(), run())
    with repo.engine.begin() as conn:
        schema.downgrade(conn, "base")
    assert set(inspect(repo.engine).get_table_names()) == {"alembic_version"}
    with repo.engine.begin() as conn:
        assert schema.current(conn) is None
        schema.upgrade(conn)
    assert set(inspect(repo.engine).get_table_names()) == {
        "alembic_version",
        *Base.metadata.tables,
    }
    assert repo.load_peer(full_peer().dev_id) is None


def test_newer_schema_is_refused(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    with StateRepository(url) as repo, repo.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(UserError, match=r"'9999'.*newer"):
        StateRepository(url).open()


def test_alembic_commands_with_a_url(tmp_path: Path) -> None:
    """env.py without a handed-over connection: online with its own engine,
    and offline (--sql)."""
    path = tmp_path / "dev.db"
    command.upgrade(schema.alembic_config(url=f"sqlite:///{path}"), "head")
    assert _diff(f"sqlite:///{path}") == []

    cfg = schema.alembic_config(url="postgresql://user:p%40ss@host/db")
    cfg.output_buffer = io.StringIO()
    command.upgrade(cfg, "head", sql=True)
    sql = cfg.output_buffer.getvalue()
    assert "CREATE TABLE item_mappings" in sql
    assert "ON DELETE CASCADE" in sql


def test_the_head_constant_is_alembics_head() -> None:
    from syncmld.state import schema

    assert schema.head() == schema.alembic_head()
