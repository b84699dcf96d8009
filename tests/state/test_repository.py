"""StateRepository against real SQLite files: round trips, diffing, atomicity,
history, isolation between peers, SQLite settings and error reporting."""

from __future__ import annotations

import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from syncmld.engine.state import ItemState, PeerState
from syncmld.errors import UserError
from syncmld.state import StateRepository, default_url
from syncmld.state.models import DatastorePair, Device
from tests.state.helpers import (
    DEV,
    all_rows,
    counts,
    full_peer,
    items,
    many_items,
    pair,
    peer,
    row_counts,
    run,
    statement_log,
)
from tests.strategies import model_diff


def assert_same(got: object, want: object) -> None:
    assert got == want, model_diff(want, got)


# --- round trips ------------------------------------------------------------------


def test_round_trip(repo: StateRepository) -> None:
    state = full_peer()
    repo.save_session(state, run(stores=(counts("contacts"), counts("calendar"))))
    assert_same(repo.load_peer(DEV), state)


def test_round_trip_survives_reopening(db_path: Path) -> None:
    state = full_peer()
    with StateRepository(f"sqlite:///{db_path}") as repo:
        repo.save_session(state, run())
    with StateRepository(f"sqlite:///{db_path}") as repo:
        assert_same(repo.load_peer(DEV), state)
        assert len(repo.history()) == 1


def test_unknown_peer_is_none(repo: StateRepository) -> None:
    assert repo.load_peer(DEV) is None
    assert repo.devices() == []


def test_bare_peer_round_trip(repo: StateRepository) -> None:
    """A peer with nothing but its id is stored (it is known now)."""
    repo.save_session(PeerState(dev_id=DEV), run())
    assert repo.load_peer(DEV) == PeerState(dev_id=DEV)
    assert repo.devices() == [DEV]


def test_in_memory_database() -> None:
    with StateRepository("sqlite://") as repo:
        repo.save_session(full_peer(), run())
        assert_same(repo.load_peer(DEV), full_peer())


def test_device_times(repo: StateRepository) -> None:
    """created: the first saved run's time; updated: the last one's."""
    repo.save_session(full_peer(), run(started=100.0, finished=105.5))
    repo.save_session(full_peer(), run(started=200.0, finished=None))
    with Session(repo.engine) as session:
        device = session.scalars(select(Device)).one()
        assert (device.created, device.updated) == (105.5, 200.0)


def test_devinf_is_stored_as_xml(repo: StateRepository) -> None:
    repo.save_session(full_peer(), run())
    with Session(repo.engine) as session:
        xml = session.scalars(select(Device.devinf)).one()
    assert xml is not None
    assert xml.startswith(b"<?xml")
    assert b"<DevID>IMEI:355884000217404</DevID>" in xml


def test_unreadable_devinf_is_dropped(repo: StateRepository, caplog: Any) -> None:
    """A stored DevInf that no longer decodes does not make the peer unusable."""
    repo.save_session(full_peer(), run())
    with repo.engine.begin() as conn:
        conn.execute(update(Device).values(devinf=b"<garbage"))
    loaded = repo.load_peer(DEV)
    assert loaded is not None
    assert loaded.devinf is None
    assert loaded.pairs == full_peer().pairs
    assert "unreadable stored DevInf" in caplog.text


# --- replacing and diffing --------------------------------------------------------


def test_save_replaces_everything(repo: StateRepository) -> None:
    repo.save_session(full_peer(), run())
    second = peer(
        DEV,
        pair(
            "contacts",
            remote_uri="./Contacts2",
            local_anchor="2",
            remote_anchor="3",
            last_mode=201,
            items={
                "a.vcf": ItemState("a.vcf", "1", "e2", "d2"),  # changed
                "c.vcf": ItemState("c.vcf", "3", "e1:c.vcf", "digest:c.vcf"),  # mapped now
                "d.vcf": ItemState("d.vcf", None, "e", "d"),  # new
            },
            pending_maps={"5": "d.vcf"},
        ),
        pair("notes", items=items(("n1", "100"))),  # "calendar" is gone
        devinf=None,
        nonce=None,
    )
    repo.save_session(second, run(started=2000.0))
    assert_same(repo.load_peer(DEV), second)
    # No orphans: the calendar pair's items and pending maps are gone too.
    rows = row_counts(repo.engine)
    assert rows["datastore_pairs"] == 2
    assert rows["item_mappings"] == 4
    assert rows["pending_maps"] == 1


def test_save_writes_only_what_changed(repo: StateRepository) -> None:
    base = many_items(500)
    repo.save_session(peer(DEV, pair(items=base)), run())

    with statement_log(repo.engine) as log:
        repo.save_session(peer(DEV, pair(items=base)), run())
    assert log.writes("item_mappings") == []
    assert log.writes("datastore_pairs") == []

    changed = dict(base)
    changed["000001.vcf"] = ItemState("000001.vcf", "1", "new etag", "1")
    changed["000002.vcf"] = ItemState("000002.vcf", None, base["000002.vcf"].etag, "2")
    del changed["000003.vcf"]
    del changed["000004.vcf"]
    for name in ("new1", "new2", "new3"):
        changed[name] = ItemState(name, None, "e", "d")
    with statement_log(repo.engine) as log:
        repo.save_session(peer(DEV, pair(items=changed, local_anchor="x")), run())
    # One executemany per kind of change, binding exactly the changed rows.
    assert sorted(log.writes("item_mappings")) == [("DELETE", 2), ("INSERT", 3), ("UPDATE", 2)]
    assert log.writes("datastore_pairs") == [("UPDATE", 1)]
    assert_same(repo.load_peer(DEV), peer(DEV, pair(items=changed, local_anchor="x")))


def test_emptying_a_pair_deletes_its_items_at_once(repo: StateRepository) -> None:
    repo.save_session(peer(DEV, pair(items=many_items(300), pending_maps={"1": "a"})), run())
    with statement_log(repo.engine) as log:
        repo.save_session(peer(DEV, pair()), run())
    assert log.writes("item_mappings") == [("DELETE", 1)]
    assert log.writes("pending_maps") == [("DELETE", 1)]
    assert repo.load_peer(DEV) == peer(DEV, pair())


def test_pending_maps_diff(repo: StateRepository) -> None:
    repo.save_session(peer(DEV, pair(pending_maps={"1": "a", "2": "b", "3": "c"})), run())
    new = peer(DEV, pair(pending_maps={"1": "a", "2": "B", "4": "d"}))
    with statement_log(repo.engine) as log:
        repo.save_session(new, run())
    assert sorted(log.writes("pending_maps")) == [("DELETE", 1), ("INSERT", 1), ("UPDATE", 1)]
    assert repo.load_peer(DEV) == new


def test_items_may_swap_remote_ids(repo: StateRepository) -> None:
    """Remote ids are indexed, not unique: two items may trade them in one save."""
    repo.save_session(peer(DEV, pair(items=items(("a", "1"), ("b", "2")))), run())
    swapped = peer(DEV, pair(items=items(("a", "2"), ("b", "1"))))
    repo.save_session(swapped, run())
    assert repo.load_peer(DEV) == swapped


def test_mismatched_keys_are_refused(repo: StateRepository) -> None:
    repo.save_session(full_peer(), run())
    before = all_rows(repo.engine)
    wrong_item = peer(DEV, pair(items={"a.vcf": ItemState("b.vcf", None, "e", "d")}))
    with pytest.raises(ValueError, match="filed under"):
        repo.save_session(wrong_item, run())
    wrong_pair = PeerState(dev_id=DEV, pairs={"contacts": pair("calendar")})
    with pytest.raises(ValueError, match="filed under"):
        repo.save_session(wrong_pair, run())
    with pytest.raises(ValueError, match="run for"):
        repo.save_session(full_peer(), run("someone else"))
    assert all_rows(repo.engine) == before


# --- atomicity ----------------------------------------------------------------------


class Boom(Exception):
    """The injected failure."""


def test_failure_at_any_statement_rolls_back_everything(repo: StateRepository) -> None:
    """Fail the n-th statement of a save, for every n: the stored state and the
    history stay exactly what they were."""
    first = full_peer()
    repo.save_session(first, run(stores=(counts(),)))
    before = all_rows(repo.engine)
    second = peer(
        DEV,
        pair("contacts", items={**many_items(50), **items(("a.vcf", "9"))}, last_mode=201),
        pair("tasks", items=many_items(5, prefix="t"), pending_maps={"7": "t000001.vcf"}),
        nonce="new",
    )
    failures = 0
    for n in range(1, 100):
        seen = 0

        def fail_nth(*_: object, n: int = n) -> None:
            nonlocal seen
            seen += 1
            if seen == n:
                raise Boom(n)

        event.listen(repo.engine, "before_cursor_execute", fail_nth)
        try:
            repo.save_session(second, run(started=5000.0, stores=(counts(), counts("tasks"))))
        except Boom:
            failures += 1
            assert all_rows(repo.engine) == before, f"statement {n} left changes behind"
            assert repo.load_peer(DEV) == first
            continue
        finally:
            event.remove(repo.engine, "before_cursor_execute", fail_nth)
        break
    else:
        pytest.fail("the save never succeeded")
    assert failures >= 10  # device, pairs, items, pending maps, run, run stores ...
    assert_same(repo.load_peer(DEV), second)
    assert [r.started for r in repo.history()] == [5000.0, 1000.0]


def test_constraint_violation_mid_executemany_rolls_back(repo: StateRepository) -> None:
    """A NOT NULL violation in the middle of the item inserts, after the device,
    the pairs and other items were written: nothing of it stays."""
    first = full_peer()
    repo.save_session(first, run())
    before = all_rows(repo.engine)
    bad_items = many_items(100)
    bad_items["000050.vcf"] = ItemState("000050.vcf", None, None, "d")  # type: ignore[arg-type]
    bad = peer(
        DEV,
        pair("calendar", items=many_items(10, prefix="c")),
        pair("contacts", items={**many_items(100, prefix="new"), **bad_items}),
        nonce="changed",
    )
    with pytest.raises(IntegrityError):
        repo.save_session(bad, run(started=9999.0))
    assert all_rows(repo.engine) == before
    assert_same(repo.load_peer(DEV), first)
    assert len(repo.history()) == 1


def test_failed_session_records_history_only(repo: StateRepository) -> None:
    first = full_peer()
    repo.save_session(first, run(started=1.0))
    failed = run(started=2.0, status=500, message="connection lost")
    repo.record_run(failed)
    assert_same(repo.load_peer(DEV), first)
    assert repo.history() == [failed, run(started=1.0)]


def test_record_run_for_an_unknown_peer_creates_no_state(repo: StateRepository) -> None:
    repo.record_run(run("stranger", status=401, message="bad credentials"))
    assert repo.load_peer("stranger") is None
    assert repo.devices() == []
    assert [r.dev_id for r in repo.history()] == ["stranger"]


# --- history ---------------------------------------------------------------------------


def test_history_newest_first_and_paged(repo: StateRepository) -> None:
    # Recorded out of order; two runs share a start time (later insert first).
    starts = [50.0, 10.0, 30.0, 30.0, 70.0, 20.0, 60.0, 40.0]
    recorded = []
    for n, started in enumerate(starts):
        dev = "a" if n % 2 else "b"
        r = run(
            dev,
            started=started,
            finished=None if n == 3 else started + 1,
            role="client" if n % 3 else "server",
            status=200 if n % 4 else 508,
            message=f"run {n}",
            stores=tuple(
                counts(f"store{k}", mode=200 + k, local_added=n, conflicts=k) for k in range(n % 3)
            ),
        )
        recorded.append(r)
        repo.record_run(r)
    order = sorted(range(len(starts)), key=lambda n: (-starts[n], -n))
    everything = repo.history(limit=None)
    assert everything == [recorded[n] for n in order]
    assert repo.history() == everything  # fewer than 50
    pages = [repo.history(offset=o, limit=3) for o in range(0, 9, 3)]
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [r for p in pages for r in p] == everything
    assert repo.history(offset=100) == []
    assert repo.history(limit=0) == []
    only_a = repo.history("a", limit=None)
    assert only_a == [r for r in everything if r.dev_id == "a"]
    assert repo.history("a", offset=1, limit=2) == only_a[1:3]
    assert repo.history("nobody") == []


def test_history_keeps_every_count(repo: StateRepository) -> None:
    stores = (
        counts(
            "contacts",
            remote_uri="./C",
            mode=201,
            local_added=1,
            local_replaced=2,
            local_deleted=3,
            remote_added=4,
            remote_replaced=5,
            remote_deleted=6,
            conflicts=7,
            status=514,
            message="cancelled",
        ),
        counts("calendar"),
    )
    r = run(started=1717243200.123456, finished=1717243260.654321, stores=stores, role="client")
    repo.save_session(full_peer(), r)
    assert repo.history() == [r]


def test_history_rejects_negative_paging(repo: StateRepository) -> None:
    with pytest.raises(ValueError, match="negative"):
        repo.history(offset=-1)
    with pytest.raises(ValueError, match="negative"):
        repo.history(limit=-1)


# --- several peers ---------------------------------------------------------------------


def test_two_peers_do_not_interfere(repo: StateRepository) -> None:
    """Same datastore names, same local ids: each peer keeps its own."""
    one = peer("one", pair(items=items(("a", "1"), ("b", "2"))), nonce="n1")
    two = peer("two", pair(items=items(("a", "X"), ("c", "Y"))), nonce="n2")
    repo.save_session(one, run("one", started=1.0))
    repo.save_session(two, run("two", started=2.0))
    one_changed = peer("one", pair(items=items(("b", "3"), ("d", "4"))), nonce="n3")
    repo.save_session(one_changed, run("one", started=3.0))
    assert repo.load_peer("one") == one_changed
    assert repo.load_peer("two") == two
    assert repo.devices() == ["one", "two"]
    assert [r.dev_id for r in repo.history("two")] == ["two"]
    assert repo.forget("one") is True
    assert repo.load_peer("two") == two
    assert repo.devices() == ["two"]


def test_forget(repo: StateRepository) -> None:
    repo.save_session(full_peer(), run())
    repo.record_run(run(started=5.0, status=500))
    assert repo.forget(DEV) is True
    assert repo.load_peer(DEV) is None
    assert repo.history() == []
    assert set(row_counts(repo.engine).values()) == {0}
    assert repo.forget(DEV) is False


def test_forget_history_only(repo: StateRepository) -> None:
    repo.record_run(run("stranger"))
    assert repo.forget("stranger") is True
    assert repo.history() == []


def test_deleting_a_device_cascades(repo: StateRepository) -> None:
    """Through the ORM and through a plain DELETE (foreign_keys=ON)."""
    repo.save_session(full_peer("one"), run("one"))
    repo.save_session(full_peer("two"), run("two"))
    with Session(repo.engine) as session, session.begin():
        session.delete(session.scalars(select(Device).where(Device.dev_id == "one")).one())
    with repo.engine.begin() as conn:
        conn.execute(delete(Device).where(Device.dev_id == "two"))
    rows = row_counts(repo.engine)
    assert rows["devices"] == rows["datastore_pairs"] == 0
    assert rows["item_mappings"] == rows["pending_maps"] == 0
    assert rows["sync_runs"] == 2  # the history is kept by dev_id


def test_orm_models_navigate(repo: StateRepository) -> None:
    repo.save_session(full_peer(), run())
    with Session(repo.engine) as session:
        device = session.scalars(select(Device)).one()
        by_uri = {p.local_uri: p for p in device.pairs}
        assert {i.local_id for i in by_uri["contacts"].items} == {"a.vcf", "b.vcf", "c.vcf"}
        assert {(m.luid, m.guid) for m in by_uri["calendar"].pending_maps} == {
            ("10", "x.ics"),
            ("11", "y.ics"),
        }
        assert session.scalars(select(DatastorePair.device_id)).all() == [device.id] * 2


# --- SQLite settings ------------------------------------------------------------------


def test_sqlite_settings(repo: StateRepository, db_path: Path) -> None:
    with repo.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    # WAL is a property of the file: another program sees it too.
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


def test_readers_are_not_blocked_and_writers_wait(db_path: Path) -> None:
    """Another process holding the write lock: loads still work (WAL), a save
    waits for the busy timeout, then fails without changing anything."""
    with StateRepository(f"sqlite:///{db_path}", busy_timeout=0.2) as repo:
        repo.save_session(full_peer(), run())
        other = sqlite3.connect(db_path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("DELETE FROM item_mappings")
            assert repo.load_peer(DEV) == full_peer()  # the committed snapshot
            start = time.monotonic()
            with pytest.raises(OperationalError, match="locked"):
                repo.save_session(peer(DEV), run(started=2.0))
            assert time.monotonic() - start >= 0.15
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert repo.load_peer(DEV) == full_peer()
        repo.save_session(peer(DEV), run(started=3.0))
        assert repo.load_peer(DEV) == peer(DEV)


def test_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "state.db"
    with StateRepository(f"sqlite:///{path}"):
        pass
    assert path.is_file()


# --- errors ------------------------------------------------------------------------------


def test_directory_below_a_file_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    path = blocker / "sub" / "state.db"
    with pytest.raises(UserError, match=re.escape(str(blocker / "sub"))):
        StateRepository(f"sqlite:///{path}").open()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_directory_is_a_user_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(UserError, match=re.escape(str(locked))):
            StateRepository(f"sqlite:///{locked / 'state.db'}").open()
        with pytest.raises(UserError, match=re.escape(str(locked / "sub"))):
            StateRepository(f"sqlite:///{locked / 'sub' / 'state.db'}").open()
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("denied", ["directory", "file"])
def test_permission_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, denied: str) -> None:
    """The permission checks, also where root runs the tests: the access the
    process lacks is faked (root ignores mode bits)."""
    path = tmp_path / "state.db"
    with StateRepository(f"sqlite:///{path}"):
        pass
    target = tmp_path if denied == "directory" else path
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if Path(p) == target else real_access(p, mode)
    )
    with pytest.raises(UserError, match=re.escape(str(path)) + ".*not writable"):
        StateRepository(f"sqlite:///{path}").open()


def test_database_path_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "state.db").mkdir()
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "state.db"))):
        StateRepository(f"sqlite:///{tmp_path / 'state.db'}").open()


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not an SQLite database, just some text" * 100)
    with pytest.raises(UserError, match=re.escape(str(path))):
        StateRepository(f"sqlite:///{path}").open()


def test_bad_urls() -> None:
    with pytest.raises(UserError, match="not a database URL"):
        StateRepository("::nonsense").open()
    with pytest.raises(UserError, match="cannot use the state database"):
        StateRepository("nosuchdb://user:secret@host/db").open()
    with pytest.raises(UserError) as info:
        StateRepository("postgresql+nosuchdriver://user:secret@host/db").open()
    assert "secret" not in str(info.value)


def test_closed_repository(db_path: Path) -> None:
    repo = StateRepository(f"sqlite:///{db_path}")
    with pytest.raises(RuntimeError, match="not open"):
        repo.load_peer(DEV)
    with pytest.raises(RuntimeError, match="not open"):
        repo.record_run(run())
    repo.open()
    repo.open()  # idempotent
    repo.close()
    repo.close()
    with pytest.raises(RuntimeError, match="not open"):
        repo.history()


def test_default_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path}/syncmld/state.db"
    assert StateRepository().url == default_url()
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_url() == f"sqlite:///{Path.home()}/.local/state/syncmld/state.db"


# --- size -------------------------------------------------------------------------------


@pytest.mark.slow
def test_twenty_thousand_items(repo: StateRepository) -> None:
    """Generous bounds (the benchmark has the real numbers): catches a save or
    load that went quadratic or per-row."""
    big = peer(DEV, pair(items=many_items(20_000)), pair("calendar", items=many_items(100)))
    start = time.perf_counter()
    repo.save_session(big, run())
    first_save = time.perf_counter() - start

    changed = dict(big.pairs["contacts"].items)
    for n in range(0, 20_000, 100):
        key = f"{n:06d}.vcf"
        changed[key] = ItemState(key, str(n), "changed", "x")
    new = peer(DEV, pair(items=changed), pair("calendar", items=many_items(100)))
    start = time.perf_counter()
    repo.save_session(new, run())
    second_save = time.perf_counter() - start

    start = time.perf_counter()
    loaded = repo.load_peer(DEV)
    load = time.perf_counter() - start
    assert loaded == new
    assert first_save < 3.0, first_save
    assert second_save < 3.0, second_save
    assert load < 1.5, load
