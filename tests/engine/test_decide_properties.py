"""Hypothesis properties of :mod:`syncmld.engine.decide`, checked on a model of both sides.

:class:`World` is a small simulator: a local dict store with etags, a remote
dict store with the phone's change log, and the state rows.  It detects local
changes, builds the inputs the session machine would build, decides (in one
go with :func:`decide`, or batch by batch with :class:`Planner` as the server
does) and applies the actions following the row rules of the module
docstring.  The properties:

1. after any sync, a second two-way sync without changes is empty
   (convergence, no churn, no echo);
2. after a two-way or slow sync both sides hold the same multiset of texts,
   whatever the policy, and the rows pair them one to one; one-way syncs
   converge at the next two-way sync;
3. a slow sync of two sides holding the same items never writes, whatever
   the (possibly stale or lost) state rows say;
4. a tripped guard never leaves a deletion in a decision.

Item texts look like ``UID:a\\nBODY:x,y``; the digest is the text itself
(prefixed), the merge takes the union of the body tokens.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from hypothesis import given
from hypothesis import strategies as st

from syncmld.engine.decide import (
    ChangeKind,
    Conflict,
    Decision,
    Direction,
    Forget,
    Guard,
    Link,
    LocalAdd,
    LocalChanges,
    LocalDelete,
    LocalItem,
    LocalReplace,
    Planner,
    Policy,
    RemoteAdd,
    RemoteChange,
    RemoteDelete,
    RemoteReplace,
    UpdateEtag,
    decide,
    detect_local_changes,
)
from syncmld.engine.state import ItemState

PERMISSIVE = Guard(max_delete_share=1.0, allow_refresh_deletes=True, allow_empty=True)
FULL = (Direction.SLOW, Direction.REFRESH_FROM_REMOTE, Direction.REFRESH_FROM_LOCAL)


# -- item texts -----------------------------------------------------------------


def text(uid: str | None, *tokens: str) -> str:
    """An item text with an optional UID and a set of body tokens."""
    return f"UID:{uid or ''}\nBODY:{','.join(sorted(set(tokens)))}"


def uid_of(data: str) -> str | None:
    return data.split("\n", 1)[0].removeprefix("UID:") or None


def tokens_of(data: str) -> set[str]:
    body = data.split("\n", 1)[1].removeprefix("BODY:")
    return set(body.split(",")) - {""}


def digest(data: str) -> str:
    return "#" + data


def merge(local: str, remote: str) -> str:
    """Field-preserving merge: the peer's UID (else ours), the union of the tokens."""
    return text(uid_of(remote) or uid_of(local), *(tokens_of(local) | tokens_of(remote)))


def local_item(local_id: str, data: str, etag: str) -> LocalItem:
    return LocalItem(local_id, etag, digest(data), uid_of(data), data)


def change(kind: ChangeKind, remote_id: str, data: str | None = None) -> RemoteChange:
    if data is None:
        return RemoteChange(kind, remote_id)
    return RemoteChange(kind, remote_id, data, digest(data), uid_of(data))


# -- the model ------------------------------------------------------------------


@dataclass
class World:
    """Both sides of one datastore pair and the engine's rows for it."""

    local: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (data, etag)
    remote: dict[str, str] = field(default_factory=dict)  # LUID -> data
    rows: dict[str, ItemState] = field(default_factory=dict)
    #: The phone's change log since the last sync it completed.
    log: dict[str, ChangeKind] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # construction and edits ---------------------------------------------------
    @classmethod
    def synced(cls, texts: Sequence[str]) -> World:
        """Both sides hold ``texts``, the rows pair them."""
        world = cls()
        for data in texts:
            local_id, etag = world._new("L"), world._new("e")
            remote_id = world._new("R")
            world.local[local_id] = (data, etag)
            world.remote[remote_id] = data
            world.rows[local_id] = ItemState(local_id, remote_id, etag, digest(data))
        return world

    def _new(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def local_add(self, data: str) -> str:
        local_id = self._new("L")
        self.local[local_id] = (data, self._new("e"))
        return local_id

    def local_edit(self, local_id: str, data: str) -> None:
        self.local[local_id] = (data, self._new("e"))

    def local_touch(self, local_id: str) -> None:
        self.local[local_id] = (self.local[local_id][0], self._new("e"))

    def local_delete(self, local_id: str) -> None:
        del self.local[local_id]

    def remote_add(self, data: str) -> str:
        remote_id = self._new("R")
        self.remote[remote_id] = data
        self.log[remote_id] = ChangeKind.ADD
        return remote_id

    def remote_edit(self, remote_id: str, data: str) -> None:
        self.remote[remote_id] = data
        if self.log.get(remote_id) is not ChangeKind.ADD:
            self.log[remote_id] = ChangeKind.REPLACE

    def remote_delete(self, remote_id: str) -> None:
        del self.remote[remote_id]
        if self.log.pop(remote_id, None) is not ChangeKind.ADD:
            self.log[remote_id] = ChangeKind.DELETE

    # a session ------------------------------------------------------------------
    def inputs(self, direction: Direction) -> dict[str, object]:
        """What the session machine hands to the engine."""
        listing = {i: etag for i, (_, etag) in self.local.items()}
        changes = detect_local_changes(self.rows, listing, lambda i: digest(self.local[i][0]))
        wanted = list(self.local) if direction in FULL else [*changes.added, *changes.modified]
        local = {i: local_item(i, *self.local[i]) for i in wanted}
        if direction in (Direction.TWO_WAY, Direction.FROM_REMOTE):
            remote = [
                change(kind, rid, self.remote.get(rid) if kind is not ChangeKind.DELETE else None)
                for rid, kind in self.log.items()
            ]
        elif direction in (Direction.SLOW, Direction.REFRESH_FROM_REMOTE):
            remote = [change(ChangeKind.ADD, rid, data) for rid, data in self.remote.items()]
        else:
            remote = []
        return {
            "direction": direction,
            "known": dict(self.rows),
            "local": local,
            "local_changes": changes,
            "local_count": len(listing),
            "remote_changes": remote,
        }

    def sync(
        self,
        direction: Direction = Direction.TWO_WAY,
        policy: Policy = Policy.MERGE,
        *,
        with_merge: bool = True,
        guard: Guard = PERMISSIVE,
        batches: int = 0,
    ) -> Decision:
        """One session; ``batches`` > 0 feeds the remote changes to a Planner in that many parts."""
        if direction is Direction.REFRESH_FROM_LOCAL:
            self.remote.clear()  # the phone wipes its side before the sync
            self.log.clear()
        args = self.inputs(direction)
        remote_changes: list[RemoteChange] = args.pop("remote_changes")  # type: ignore[assignment]
        merger = merge if with_merge else None
        if not batches:
            decision = decide(
                **args,  # type: ignore[arg-type]
                policy=policy,
                merge=merger,
                guard=guard,
                remote_changes=remote_changes,
            )
            self.apply(decision.actions, direction)
            told = dict(decision.statuses)
        else:
            planner = Planner(**args, policy=policy, merge=merger, guard=guard)  # type: ignore[arg-type]
            statuses: dict[str, int] = {}
            size = max(1, -(-len(remote_changes) // batches))
            for start in range(0, len(remote_changes), size):
                part = planner.receive(remote_changes[start : start + size])
                assert not any(isinstance(a, LocalDelete | RemoteDelete) for a in part.actions)
                self.apply(part.actions, direction)
                statuses.update(part.statuses)
            last = planner.finish()
            self.apply(last.actions, direction)
            statuses.update(last.statuses)
            told = dict(statuses)  # what the phone heard, message by message
            statuses.update(last.statuses)
            decision = Decision(last.actions, statuses, last.guard)
        # The phone forgets what was answered with success or resolved (419: the
        # desktop's version wins and comes in our package); 403/409/514 stay pending.
        for rid in [r for r in self.log if r in told and (200 <= told[r] < 300 or told[r] == 419)]:
            del self.log[rid]
        if direction in (Direction.SLOW, Direction.REFRESH_FROM_REMOTE):
            self.log.clear()
        return decision

    def apply(self, actions: Sequence[object], direction: Direction) -> None:
        """Execute actions the way the session machine does, writing the rows."""
        for a in actions:
            if isinstance(a, LocalAdd):
                local_id = self._new("L")
                etag = self._new("e")
                self.local[local_id] = (a.data, etag)
                self.rows[local_id] = ItemState(local_id, a.remote_id, etag, digest(a.data))
            elif isinstance(a, LocalReplace):
                assert self.local[a.local_id][1] == a.etag, "stale etag"
                etag = self._new("e")
                self.local[a.local_id] = (a.data, etag)
                self.rows[a.local_id] = ItemState(a.local_id, a.remote_id, etag, digest(a.data))
            elif isinstance(a, LocalDelete):
                assert self.local[a.local_id][1] == a.etag, "stale etag"
                del self.local[a.local_id]
                self.rows.pop(a.local_id, None)
            elif isinstance(a, RemoteAdd):
                assert direction not in (Direction.FROM_REMOTE, Direction.REFRESH_FROM_REMOTE)
                data, etag = self.local[a.local_id]
                remote_id = self._new("R")
                self.remote[remote_id] = data
                self.rows[a.local_id] = ItemState(a.local_id, remote_id, etag, digest(data))
            elif isinstance(a, RemoteReplace):
                assert direction not in (Direction.FROM_REMOTE, Direction.REFRESH_FROM_REMOTE)
                if a.remote_id not in self.remote:
                    # The phone deleted it meanwhile (a one-way session refused the
                    # delete): it answers 404 and the row stays as it was.
                    assert direction is Direction.FROM_LOCAL, "replace of an item the peer lacks"
                    continue
                data, etag = self.local[a.local_id]
                self.remote[a.remote_id] = a.data if a.data is not None else data
                self.rows[a.local_id] = ItemState(a.local_id, a.remote_id, etag, digest(data))
            elif isinstance(a, RemoteDelete):
                assert direction not in (Direction.FROM_REMOTE, Direction.REFRESH_FROM_REMOTE)
                if a.remote_id in self.remote or direction is not Direction.FROM_LOCAL:
                    del self.remote[a.remote_id]
                self.log.pop(a.remote_id, None)  # the phone's pending change goes with it
                self.rows.pop(a.local_id, None)
            elif isinstance(a, Link):
                data, etag = self.local[a.local_id]
                if a.remote_digest is None:
                    self.rows[a.local_id] = ItemState(a.local_id, a.remote_id, etag, digest(data))
                else:
                    self.rows[a.local_id] = ItemState(a.local_id, a.remote_id, "", a.remote_digest)
            elif isinstance(a, Forget):
                self.rows.pop(a.local_id, None)
            elif isinstance(a, UpdateEtag):
                self.rows[a.local_id] = replace(self.rows[a.local_id], etag=a.etag)
            elif isinstance(a, Conflict):
                self.conflicts.append(a)
            else:  # pragma: no cover
                raise AssertionError(f"unknown action {a!r}")

    # checks ---------------------------------------------------------------------
    def assert_converged(self) -> None:
        """Both sides equal, the rows pair every item one to one, nothing pending."""
        assert Counter(d for d, _ in self.local.values()) == Counter(self.remote.values())
        assert set(self.rows) == set(self.local)
        assert sorted(r.remote_id or "" for r in self.rows.values()) == sorted(self.remote)
        for local_id, row in self.rows.items():
            data, etag = self.local[local_id]
            assert row.remote_id is not None
            assert self.remote[row.remote_id] == data
            assert row.digest == digest(data)
            assert row.etag == etag
        assert not self.log


# -- strategies -----------------------------------------------------------------

TEXTS = st.builds(
    lambda uid, tokens: text(uid, *tokens),
    st.sampled_from([None, "a", "b", "c"]),
    st.frozensets(st.sampled_from("xyz"), max_size=3),
)
POLICIES = st.sampled_from(list(Policy))

# An edit: (side, operation, index into that side's ids, text).
EDITS = st.lists(
    st.tuples(
        st.sampled_from(["local", "remote"]),
        st.sampled_from(["add", "edit", "delete", "touch"]),
        st.integers(0, 20),
        TEXTS,
    ),
    max_size=8,
)


def edit(world: World, edits: Sequence[tuple[str, str, int, str]]) -> None:
    for side, op, index, data in edits:
        ids = sorted(world.local) if side == "local" else sorted(world.remote)
        target = ids[index % len(ids)] if ids else None
        if op == "add" or target is None:
            (world.local_add if side == "local" else world.remote_add)(data)
        elif op == "edit":
            if side == "local":
                world.local_edit(target, data)
            else:
                world.remote_edit(target, data)
        elif op == "delete":
            (world.local_delete if side == "local" else world.remote_delete)(target)
        elif side == "local":
            world.local_touch(target)


def deletes(decision: Decision) -> list[object]:
    return [a for a in decision.actions if isinstance(a, LocalDelete | RemoteDelete)]


# -- properties -----------------------------------------------------------------


@given(
    start=st.lists(TEXTS, max_size=6),
    rounds=st.lists(
        st.tuples(EDITS, POLICIES, st.sampled_from([Direction.TWO_WAY, Direction.SLOW])),
        min_size=1,
        max_size=3,
    ),
    with_merge=st.booleans(),
    batches=st.integers(0, 3),
)
def test_two_way_and_slow_converge_without_churn(
    start: list[str],
    rounds: list[tuple[list[tuple[str, str, int, str]], Policy, Direction]],
    with_merge: bool,
    batches: int,
) -> None:
    """Properties 1 and 2 over several sessions, each mode, policy and batching."""
    world = World.synced(start)
    for edits, policy, direction in rounds:
        edit(world, edits)
        world.sync(direction, policy, with_merge=with_merge, batches=batches)
        world.assert_converged()
        again = world.sync(Direction.TWO_WAY, policy)
        assert again.is_empty, again


@given(
    start=st.lists(TEXTS, max_size=6),
    edits=EDITS,
    policy=POLICIES,
    direction=st.sampled_from([Direction.FROM_REMOTE, Direction.FROM_LOCAL]),
    batches=st.integers(0, 2),
)
def test_one_way_defers_and_the_next_two_way_converges(
    start: list[str],
    edits: list[tuple[str, str, int, str]],
    policy: Policy,
    direction: Direction,
    batches: int,
) -> None:
    world = World.synced(start)
    edit(world, edits)
    before_remote = dict(world.remote)
    world.sync(direction, policy, batches=batches)
    if direction is Direction.FROM_REMOTE:
        assert world.remote == before_remote  # nothing was sent
    world.sync(Direction.TWO_WAY, policy)
    world.assert_converged()
    assert world.sync(Direction.TWO_WAY, policy).is_empty


@given(
    start=st.lists(TEXTS, max_size=6),
    edits=EDITS,
    direction=st.sampled_from([Direction.REFRESH_FROM_REMOTE, Direction.REFRESH_FROM_LOCAL]),
)
def test_refreshes_make_one_side_a_copy_of_the_other(
    start: list[str], edits: list[tuple[str, str, int, str]], direction: Direction
) -> None:
    world = World.synced(start)
    edit(world, edits)
    source = (
        Counter(world.remote.values())
        if direction is Direction.REFRESH_FROM_REMOTE
        else Counter(d for d, _ in world.local.values())
    )
    world.sync(direction)
    world.assert_converged()
    assert Counter(world.remote.values()) == source
    assert world.sync(Direction.TWO_WAY).is_empty


@dataclass(frozen=True)
class _StaleRow:
    local_index: int
    remote_index: int | None
    digest_from: int


@given(
    texts=st.lists(TEXTS, max_size=8),
    stale=st.lists(
        st.builds(
            _StaleRow, st.integers(0, 20), st.none() | st.integers(0, 20), st.integers(0, 20)
        ),
        max_size=8,
    ),
    shuffle=st.randoms(use_true_random=False),
    policy=POLICIES,
)
def test_slow_sync_of_equal_sides_writes_nothing(
    texts: list[str], stale: list[_StaleRow], shuffle: object, policy: Policy
) -> None:
    """Property 3: equal items on both sides -> only Links, whatever the rows say."""
    world = World()
    for data in texts:
        world.local_add(data)
    remote_texts = list(texts)
    shuffle.shuffle(remote_texts)  # type: ignore[attr-defined]
    for data in remote_texts:
        world.remote_add(data)
    local_ids, remote_ids = sorted(world.local), sorted(world.remote)
    used: set[str] = set()
    for row in stale:  # rows from some earlier life: wrong pairs, wrong digests
        if not local_ids:
            break
        local_id = local_ids[row.local_index % len(local_ids)]
        rid = None if row.remote_index is None else remote_ids[row.remote_index % len(remote_ids)]
        if rid in used:
            continue
        used.add(rid or "")
        data = texts[row.digest_from % len(texts)]
        world.rows[local_id] = ItemState(local_id, rid, "old", digest(data))
    decision = world.sync(Direction.SLOW, policy)
    assert not decision.writes, decision
    assert all(isinstance(a, Link | Forget) for a in decision.actions)
    assert len(world.local) == len(texts) == len(world.remote)
    world.assert_converged()


@given(
    start=st.lists(TEXTS, max_size=12),
    edits=EDITS,
    mass_delete=st.sampled_from(["none", "local", "remote", "local-all"]),
    direction=st.sampled_from(list(Direction)),
    policy=POLICIES,
    guard=st.builds(
        Guard,
        max_delete_share=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
        min_items=st.integers(0, 4),
        allow_refresh_deletes=st.booleans(),
        allow_empty=st.booleans(),
    ),
    batches=st.integers(0, 2),
)
def test_a_tripped_guard_deletes_nothing(
    *,
    start: list[str],
    edits: list[tuple[str, str, int, str]],
    mass_delete: str,
    direction: Direction,
    policy: Policy,
    guard: Guard,
    batches: int,
) -> None:
    """Property 4, for one-go decisions and for the Planner's batches."""
    world = World.synced(start)
    edit(world, edits)
    if mass_delete == "local":
        for local_id in sorted(world.local)[: len(world.local) * 2 // 3]:
            world.local_delete(local_id)
    elif mass_delete == "local-all":
        for local_id in list(world.local):
            world.local_delete(local_id)
    elif mass_delete == "remote":
        for remote_id in sorted(world.remote)[: len(world.remote) * 2 // 3]:
            world.remote_delete(remote_id)
    local_before, remote_before = dict(world.local), dict(world.remote)
    decision = world.sync(direction, policy, guard=guard, batches=batches)
    if decision.guard is None:
        return
    assert deletes(decision) == []
    assert decision.guard.reason
    # Nothing that existed before is gone (a refresh from local wipes the phone itself).
    assert set(local_before) <= set(world.local)
    if direction is not Direction.REFRESH_FROM_LOCAL:
        assert set(remote_before) <= set(world.remote)


@given(start=st.lists(TEXTS, min_size=1, max_size=6), policy=POLICIES)
def test_an_emptied_local_store_never_empties_the_phone(start: list[str], policy: Policy) -> None:
    world = World.synced(start)
    for local_id in list(world.local):
        world.local_delete(local_id)
    decision = world.sync(Direction.TWO_WAY, policy, guard=Guard())
    assert decision.guard is not None
    assert "empty" in decision.guard.reason
    assert Counter(world.remote.values()) == Counter(start)


@given(start=st.lists(TEXTS, max_size=6), edits=EDITS, direction=st.sampled_from(list(Direction)))
def test_decide_is_pure(
    start: list[str], edits: list[tuple[str, str, int, str]], direction: Direction
) -> None:
    """Same inputs, same decision; the inputs are left as they were."""
    world = World.synced(start)
    edit(world, edits)
    args = world.inputs(direction)
    snapshot = repr(args)
    first = decide(**args, merge=merge)  # type: ignore[arg-type]
    second = decide(**args, merge=merge)  # type: ignore[arg-type]
    assert first == second
    assert repr(args) == snapshot
    assert set(first.statuses) == {c.remote_id for c in args["remote_changes"]}  # type: ignore[attr-defined]


def test_world_helpers_roundtrip() -> None:
    data = text("a", "y", "x")
    assert uid_of(data) == "a"
    assert tokens_of(data) == {"x", "y"}
    assert merge(text(None, "x"), text("b", "z")) == text("b", "x", "z")
    assert LocalChanges() == LocalChanges((), (), (), {})
