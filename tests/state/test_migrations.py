"""The alembic migrations: the migrated schema is exactly the models' schema."""

from __future__ import annotations

import dataclasses
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
    db_path.parent.mkdir(parents=True)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            schema.upgrade(conn)
    finally:
        engine.dispose()
    assert _diff(url) == []


def test_a_new_database_is_created_at_the_head_without_migrating(db_path: Path) -> None:
    """A new database gets the models' tables directly, recorded as the head,
    and migrates like a migrated one."""
    url = f"sqlite:///{db_path}"
    with StateRepository(url) as repo:
        with repo.engine.connect() as conn:
            assert schema.current(conn) == schema.head()
        repo.save_session(full_peer(), run())
    assert _diff(url) == []
    with StateRepository(url) as repo, repo.engine.begin() as conn:
        schema.downgrade(conn, "0001")
        schema.upgrade(conn)
    with StateRepository(url) as repo:
        assert repo.load_peer(full_peer().dev_id) == full_peer()


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
        assert schema.current(conn) == schema.head() == "0002"
    assert schema.known("0001")
    assert schema.known("0002")
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


def test_a_0001_database_upgrades_with_its_data(db_path: Path) -> None:
    """A database written by the first schema keeps its pairs and items and
    gains the resume columns, empty (nothing to resume)."""
    url = f"sqlite:///{db_path}"
    peer = full_peer()
    with StateRepository(url) as repo:
        with repo.engine.begin() as conn:
            schema.downgrade(conn, "0001")
        cols = {c["name"] for c in inspect(repo.engine).get_columns("datastore_pairs")}
        assert "resume_mode" not in cols
        # What a 0001 build wrote: pairs without resume columns.
        with repo.engine.begin() as conn:
            schema.downgrade(conn, "base")
            schema.upgrade(conn, "0001")
            conn.exec_driver_sql(
                "INSERT INTO devices (dev_id, created, updated) VALUES ('old-phone', 1, 1)"
            )
            conn.exec_driver_sql(
                "INSERT INTO datastore_pairs (device_id, local_uri, remote_uri, local_anchor,"
                " remote_anchor, last_mode) VALUES (1, 'contacts', './card', 'a1', 'b1', 200)"
            )
            conn.exec_driver_sql(
                "INSERT INTO item_mappings (pair_id, local_id, remote_id, etag, digest)"
                " VALUES (1, 'x.vcf', '7', 'e1', 'd1')"
            )
    with StateRepository(url) as repo:  # opening upgrades to the head
        with repo.engine.connect() as conn:
            assert schema.current(conn) == "0002"
        old = repo.load_peer("old-phone")
        assert old is not None
        pair = old.pairs["contacts"]
        assert (pair.local_anchor, pair.remote_anchor, pair.last_mode) == ("a1", "b1", 200)
        assert pair.items["x.vcf"].remote_id == "7"
        assert pair.resume_mode is None and pair.resume_anchor is None
        # The new columns round-trip.
        suspended = dataclasses.replace(pair, resume_mode=201, resume_anchor="")
        repo.save_session(
            dataclasses.replace(old, pairs={"contacts": suspended}), run(dev_id="old-phone")
        )
        again = repo.load_peer("old-phone")
        assert again is not None
        assert again.pairs["contacts"].resume_mode == 201
        assert again.pairs["contacts"].resume_anchor == ""
        repo.save_session(peer, run())
    assert _diff(url) == []
