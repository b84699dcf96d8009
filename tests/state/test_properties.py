"""Hypothesis: random peer states round-trip exactly, save after save.

Each example gets its own database file, copied from a migrated template
(migrating for every example would dominate the run time).  Successive
states of one peer draw their datastores and item ids from small pools and
their values from a few common strings, so that saves keep, change, add and
remove rows: the diffing path, not just the first insert.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncmld.engine.state import ItemState, PairState, PeerState, RunRecord, StoreCounts
from syncmld.protocol.devinf import DevInf
from syncmld.state import StateRepository
from tests.state.helpers import all_rows
from tests.strategies import devinfs, model_diff

# Any text (hypothesis leaves out surrogates, which no str from the wire has).
names = st.text(max_size=10)
# Values repeat often between successive states, so items stay unchanged too.
values = st.sampled_from(["", "1", "a", "Ä", "🙂"]) | st.text(max_size=10)
anchors = st.none() | values
sqlite_ints = st.integers(-(2**63), 2**63 - 1)
modes = st.none() | st.integers(200, 210) | sqlite_ints
times = st.floats(allow_nan=False)


@dataclass(frozen=True)
class Save:
    """One completed session: the state it leaves and its run."""

    state: PeerState
    run: RunRecord


@dataclass(frozen=True)
class Fail:
    """A failed session: history only."""

    run: RunRecord


def store_counts() -> st.SearchStrategy[StoreCounts]:
    return st.builds(
        StoreCounts,
        local_uri=names,
        remote_uri=names,
        mode=modes,
        local_added=sqlite_ints,
        local_replaced=sqlite_ints,
        local_deleted=sqlite_ints,
        remote_added=sqlite_ints,
        remote_replaced=sqlite_ints,
        remote_deleted=sqlite_ints,
        conflicts=sqlite_ints,
        status=sqlite_ints,
        message=st.text(max_size=20),
    )


def runs(dev_id: str, started: float) -> st.SearchStrategy[RunRecord]:
    return st.builds(
        RunRecord,
        dev_id=st.just(dev_id),
        role=st.sampled_from(["server", "client"]) | names,
        started=st.just(started),
        finished=st.none() | times,
        status=sqlite_ints,
        message=st.text(max_size=20),
        stores=st.lists(store_counts(), max_size=3).map(tuple),
    )


@st.composite
def sessions(draw: st.DrawFn, dev_id: str) -> list[Save | Fail]:
    """Successive sessions of one peer; ``started`` increases."""
    uris = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    ids = draw(st.lists(names, min_size=1, max_size=12, unique=True))
    devinf_pool: list[DevInf | None] = [None, *draw(st.lists(devinfs(), max_size=2))]
    steps: list[Save | Fail] = []
    for n in range(draw(st.integers(1, 4))):
        run = draw(runs(dev_id, float(n)))
        if draw(st.integers(0, 4)) == 0:
            steps.append(Fail(run))
            continue
        pairs = {}
        for uri in draw(st.lists(st.sampled_from(uris), unique=True)):
            chosen = draw(st.lists(st.sampled_from(ids), unique=True))
            pairs[uri] = PairState(
                local_uri=uri,
                remote_uri=draw(values),
                local_anchor=draw(anchors),
                remote_anchor=draw(anchors),
                items={
                    lid: ItemState(lid, draw(st.none() | values), draw(values), draw(values))
                    for lid in chosen
                },
                last_mode=draw(modes),
                pending_maps=draw(st.dictionaries(st.sampled_from(ids), values, max_size=4)),
            )
        state = PeerState(
            dev_id=dev_id,
            devinf=draw(st.sampled_from(devinf_pool)),
            nonce=draw(st.none() | values),
            pairs=pairs,
        )
        steps.append(Save(state, run))
    return steps


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Iterator[str]]:
    """Fresh database URLs, each a copy of one migrated template."""
    root = tmp_path_factory.mktemp("state-properties")
    template = root / "template.db"
    with StateRepository(f"sqlite:///{template}"):
        pass  # closing checkpoints the WAL into the file

    def fresh() -> Iterator[str]:
        for n in itertools.count():
            path = root / f"db{n}.db"
            shutil.copyfile(template, path)
            yield f"sqlite:///{path}"

    yield fresh()


def assert_same(got: object, want: object) -> None:
    assert got == want, model_diff(want, got)


@given(data=st.data())
def test_states_round_trip_save_after_save(databases: Iterator[str], data: st.DataObject) -> None:
    """After every completed session load_peer returns exactly the saved state;
    failed sessions change nothing but the history; another peer is never
    touched; the history lists every run, newest first."""
    dev_id, other_id = data.draw(st.lists(names, min_size=2, max_size=2, unique=True), label="ids")
    other = data.draw(sessions(other_id), label="other sessions")
    steps = data.draw(sessions(dev_id), label="sessions")
    with StateRepository(next(databases)) as repo:
        for step in other:
            if isinstance(step, Save):
                repo.save_session(step.state, step.run)
            else:
                repo.record_run(step.run)
        other_state = repo.load_peer(other_id)
        other_rows = all_rows(repo.engine)

        stored: PeerState | None = None
        for step in steps:
            if isinstance(step, Save):
                repo.save_session(step.state, step.run)
                stored = step.state
            else:
                repo.record_run(step.run)
            assert_same(repo.load_peer(dev_id), stored)

        assert repo.load_peer(other_id) == other_state
        assert repo.history(dev_id, limit=None) == [step.run for step in reversed(steps)]
        assert len(repo.history(limit=None)) == len(steps) + len(other)
        assert repo.forget(dev_id)
        assert all_rows(repo.engine) == other_rows


@given(state=st.builds(PeerState, dev_id=names, devinf=st.none() | devinfs(), nonce=anchors))
def test_devinf_and_nonce_round_trip(databases: Iterator[str], state: PeerState) -> None:
    with StateRepository(next(databases)) as repo:
        repo.save_session(state, RunRecord(dev_id=state.dev_id, role="server", started=0.0))
        assert_same(repo.load_peer(state.dev_id), state)
