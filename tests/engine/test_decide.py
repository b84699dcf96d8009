"""Named edge cases of :mod:`syncmld.engine.decide`: one test per rule.

Precise expectations are checked on :func:`decide` directly; scenarios that
span sessions (a retried Add, a deferred one-way merge, a guard trip and its
confirmation) run on the :class:`World` model of the property tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import pytest

from syncmld.engine.decide import (
    STATUS_REFUSED,
    STATUS_WITHHELD,
    ChangeKind,
    Conflict,
    ConflictKind,
    Decision,
    DecisionError,
    Direction,
    Forget,
    Guard,
    GuardTrip,
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
    Resolution,
    UpdateEtag,
    decide,
    detect_local_changes,
)
from syncmld.engine.state import ItemState

from .test_decide_properties import World, change, digest, local_item, merge, text

A = text("a", "x")
A2 = text("a", "x", "y")  # A edited on one side
A3 = text("a", "x", "z")  # A edited on the other side
B = text("b", "x")
C = text("c", "x")
NOUID = text(None, "n")
NOUID2 = text(None, "n", "m")

#: An untouched item, so that deleting the item under test does not empty a side
#: (which the guard refuses: see the guard tests).
BYSTANDER = ItemState("L9", "R9", "e0", digest(text("z")))

DEFAULT_GUARD = Guard()

ADD, REPLACE, DELETE = ChangeKind.ADD, ChangeKind.REPLACE, ChangeKind.DELETE
TWO_WAY, SLOW = Direction.TWO_WAY, Direction.SLOW


def row(local_id: str, remote_id: str | None, data: str, etag: str = "e0") -> ItemState:
    return ItemState(local_id, remote_id, etag, digest(data))


def run(
    direction: Direction = TWO_WAY,
    *,
    known: Sequence[ItemState] = (),
    local: Sequence[LocalItem] = (),
    changes: LocalChanges | None = None,
    local_count: int | None = None,
    remote: Sequence[RemoteChange] = (),
    policy: Policy = Policy.MERGE,
    with_merge: bool = True,
    guard: Guard = DEFAULT_GUARD,
) -> Decision:
    """decide() with rows and items given as lists; local_count defaults to a guess."""
    rows = {r.local_id: r for r in known}
    items = {i.local_id: i for i in local}
    changes = changes or LocalChanges()
    if local_count is None:
        if direction in (SLOW, Direction.REFRESH_FROM_REMOTE, Direction.REFRESH_FROM_LOCAL):
            local_count = len(items)
        else:
            local_count = len(rows) - len(changes.deleted) + len(changes.added)
    return decide(
        direction=direction,
        policy=policy,
        known=rows,
        local=items,
        local_changes=changes,
        local_count=local_count,
        remote_changes=remote,
        merge=merge if with_merge else None,
        guard=guard,
    )


def kinds(decision: Decision) -> list[str]:
    return [type(a).__name__ for a in decision.actions]


# -- detecting local changes ------------------------------------------------------


def test_detect_local_changes_hashes_only_items_whose_etag_moved() -> None:
    known = {
        "L1": row("L1", "R1", A, "e1"),  # unchanged
        "L2": row("L2", "R2", B, "e1"),  # touched: new etag, same content
        "L3": row("L3", "R3", C, "e1"),  # edited
        "L4": row("L4", "R4", NOUID, "e1"),  # deleted
    }
    listing = {"L1": "e1", "L2": "e2", "L3": "e2", "L5": "e1"}
    contents = {"L2": B, "L3": text("c", "edited")}
    asked: list[str] = []

    def digest_of(local_id: str) -> str:
        asked.append(local_id)
        return digest(contents[local_id])

    changes = detect_local_changes(known, listing, digest_of)
    assert changes == LocalChanges(("L5",), ("L3",), ("L4",), {"L2": "e2"})
    assert sorted(asked) == ["L2", "L3"]


def test_an_empty_etag_in_a_row_means_unknown() -> None:
    known = {"L1": row("L1", "R1", A, "")}
    assert detect_local_changes(known, {"L1": ""}, lambda _: digest(A2)).modified == ("L1",)
    assert detect_local_changes(known, {"L1": "e5"}, lambda _: digest(A)).refreshed == {"L1": "e5"}


# -- fast two-way: the peer's changes ------------------------------------------------


def test_a_new_remote_item_is_added_locally() -> None:
    decision = run(remote=[change(ADD, "R9", A)])
    assert decision.actions == (LocalAdd("R9", A),)
    assert decision.statuses == {"R9": 201}


def test_a_remote_replace_uses_the_etag_the_decision_saw() -> None:
    decision = run(
        known=[row("L1", "R1", A, "e1")],
        changes=LocalChanges(refreshed={"L1": "e2"}),
        remote=[change(REPLACE, "R1", A2)],
    )
    assert decision.actions == (LocalReplace("L1", "R1", A2, "e2"),)
    assert decision.statuses == {"R1": 200}


def test_a_remote_replace_with_the_agreed_content_writes_nothing() -> None:
    decision = run(known=[row("L1", "R1", A)], remote=[change(REPLACE, "R1", A)])
    assert decision.actions == ()
    assert decision.statuses == {"R1": 200}


def test_a_remote_add_of_a_known_id_is_a_replace() -> None:
    decision = run(known=[row("L1", "R1", A)], remote=[change(ADD, "R1", A2)])
    assert decision.actions == (LocalReplace("L1", "R1", A2, "e0"),)
    assert decision.statuses == {"R1": 201}


def test_a_remote_replace_of_an_unknown_id_is_an_add() -> None:
    decision = run(remote=[change(REPLACE, "R9", A)])
    assert decision.actions == (LocalAdd("R9", A),)
    assert decision.statuses == {"R9": 201}


def test_a_remote_delete_deletes_locally() -> None:
    decision = run(known=[row("L1", "R1", A, "e1"), BYSTANDER], remote=[change(DELETE, "R1")])
    assert decision.actions == (LocalDelete("L1", "e1"),)
    assert decision.statuses == {"R1": 200}


def test_a_remote_delete_of_an_unknown_item_is_211() -> None:
    decision = run(known=[row("L1", "R1", A)], remote=[change(DELETE, "R9")])
    assert decision.actions == ()
    assert decision.statuses == {"R9": 211}


def test_commands_on_one_remote_id_collapse_to_the_last() -> None:
    decision = run(
        remote=[
            change(ADD, "R5", A),
            change(REPLACE, "R5", A2),
            change(ADD, "R6", B),
            change(DELETE, "R6"),
        ]
    )
    assert decision.actions == (LocalAdd("R5", A2),)
    assert decision.statuses == {"R5": 201, "R6": 211}


# -- fast two-way: our changes ---------------------------------------------------------


def test_local_changes_go_out() -> None:
    decision = run(
        known=[row("L1", "R1", A), row("L2", "R2", B), row("L3", "R3", C)],
        local=[local_item("L1", A2, "e1"), local_item("L9", NOUID, "e1")],
        changes=LocalChanges(
            added=("L9",), modified=("L1",), deleted=("L2",), refreshed={"L3": "e7"}
        ),
    )
    assert decision.actions == (
        RemoteDelete("L2", "R2"),
        RemoteReplace("L1", "R1", None),
        RemoteAdd("L9"),
        UpdateEtag("L3", "e7"),
    )
    assert decision.statuses == {}


def test_an_item_the_peer_never_mapped_is_sent_again_and_forgotten_when_gone() -> None:
    decision = run(
        known=[row("L1", None, A), row("L2", None, B)],
        local=[local_item("L1", A, "e0")],
        changes=LocalChanges(deleted=("L2",)),
    )
    assert decision.actions == (Forget("L2"), RemoteAdd("L1"))


# -- idempotent adds: no duplicates after a retried session ----------------------------


def test_a_retried_add_links_instead_of_duplicating() -> None:
    world = World.synced([B])
    world.remote_add(A)
    rows, log = dict(world.rows), dict(world.log)
    world.sync()  # the Add is written locally, but the session breaks off:
    world.rows, world.log = rows, log  # nothing committed, the phone heard nothing
    decision = world.sync()
    assert [type(a) for a in decision.actions] == [Link]
    assert list(decision.statuses.values()) == [201]
    world.assert_converged()
    assert sorted(d for d, _ in world.local.values()) == sorted([A, B])


def test_an_item_whose_map_was_lost_pairs_with_its_copy() -> None:
    decision = run(
        known=[row("L1", None, A)],
        local=[local_item("L1", A, "e0")],
        remote=[change(ADD, "R7", A)],
    )
    assert decision.actions == (Link("L1", "R7"),)
    assert decision.statuses == {"R7": 201}


def test_an_unmapped_item_pairs_even_when_the_caller_did_not_load_it() -> None:
    decision = run(known=[row("L1", None, A, "e3")], remote=[change(ADD, "R7", A)])
    assert decision.actions == (Link("L1", "R7"),)


def test_a_retried_add_with_other_content_pairs_by_uid_and_merges() -> None:
    decision = run(
        local=[local_item("L1", A2, "e1")],
        changes=LocalChanges(added=("L1",)),
        remote=[change(ADD, "R7", A3)],
    )
    merged = merge(A2, A3)
    assert decision.actions == (
        Conflict("L1", "R7", Policy.MERGE, Resolution.MERGED, ConflictKind.MATCHED),
        LocalReplace("L1", "R7", merged, "e1"),
        RemoteReplace("L1", "R7", merged),
    )
    assert decision.statuses == {"R7": 201}


def test_an_add_never_takes_an_item_mapped_to_another_remote_id() -> None:
    decision = run(known=[row("L1", "R1", A)], remote=[change(ADD, "R2", A)])
    assert decision.actions == (LocalAdd("R2", A),)


def test_items_with_different_uids_never_pair() -> None:
    item = LocalItem("L1", "e1", "#same", "a", A)
    decision = run(
        local=[item],
        changes=LocalChanges(added=("L1",)),
        remote=[RemoteChange(ADD, "R7", B, "#same", "b")],
    )
    assert decision.actions == (LocalAdd("R7", B), RemoteAdd("L1"))


def test_what_comes_from_the_phone_is_never_sent_back() -> None:
    world = World.synced([A, B])
    world.remote_add(C)
    world.remote_edit(sorted(world.remote)[0], A2)
    decision = world.sync()
    assert not [a for a in decision.actions if isinstance(a, RemoteAdd | RemoteReplace)]
    world.assert_converged()
    assert world.sync().is_empty


# -- conflicts ----------------------------------------------------------------------------


def both_changed(policy: Policy, *, with_merge: bool = True) -> Decision:
    return run(
        known=[row("L1", "R1", A)],
        local=[local_item("L1", A2, "e1")],
        changes=LocalChanges(modified=("L1",)),
        remote=[change(REPLACE, "R1", A3)],
        policy=policy,
        with_merge=with_merge,
    )


@pytest.mark.parametrize(
    ("policy", "status", "expected"),
    [
        (
            Policy.MERGE,
            207,
            (
                Conflict("L1", "R1", Policy.MERGE, Resolution.MERGED),
                LocalReplace("L1", "R1", merge(A2, A3), "e1"),
                RemoteReplace("L1", "R1", merge(A2, A3)),
            ),
        ),
        (
            Policy.PHONE_WINS,
            208,
            (
                Conflict("L1", "R1", Policy.PHONE_WINS, Resolution.REMOTE_WON),
                LocalReplace("L1", "R1", A3, "e1"),
            ),
        ),
        (
            Policy.DESKTOP_WINS,
            419,
            (
                Conflict("L1", "R1", Policy.DESKTOP_WINS, Resolution.LOCAL_WON),
                RemoteReplace("L1", "R1", None),
            ),
        ),
        (
            Policy.KEEP_BOTH,
            209,
            (
                Conflict("L1", "R1", Policy.KEEP_BOTH, Resolution.KEPT_BOTH),
                LocalAdd("R1", A3),
                RemoteAdd("L1"),
            ),
        ),
    ],
)
def test_both_sides_changed(policy: Policy, status: int, expected: tuple[object, ...]) -> None:
    decision = both_changed(policy)
    assert decision.actions == expected
    assert decision.statuses == {"R1": status}
    assert decision.conflicts == (expected[0],)


def test_merge_without_a_merge_function_takes_the_phone_version() -> None:
    decision = both_changed(Policy.MERGE, with_merge=False)
    assert decision.actions == (
        Conflict("L1", "R1", Policy.MERGE, Resolution.MERGED),
        LocalReplace("L1", "R1", A3, "e1"),
    )
    assert decision.statuses == {"R1": 207}


def test_a_merge_equal_to_the_phone_version_is_not_sent_back() -> None:
    superset = text("a", "x", "y", "z")
    decision = run(
        known=[row("L1", "R1", A)],
        local=[local_item("L1", A2, "e1")],
        changes=LocalChanges(modified=("L1",)),
        remote=[change(REPLACE, "R1", superset)],
    )
    assert [type(a) for a in decision.actions] == [Conflict, LocalReplace]


def test_the_same_change_on_both_sides_is_no_conflict() -> None:
    decision = run(
        known=[row("L1", "R1", A)],
        local=[local_item("L1", A2, "e1")],
        changes=LocalChanges(modified=("L1",)),
        remote=[change(REPLACE, "R1", A2)],
    )
    assert decision.actions == (Link("L1", "R1"),)
    assert decision.statuses == {"R1": 200}


def test_a_phone_resending_the_agreed_version_loses_quietly() -> None:
    decision = run(
        known=[row("L1", "R1", A)],
        local=[local_item("L1", A2, "e1")],
        changes=LocalChanges(modified=("L1",)),
        remote=[change(REPLACE, "R1", A)],
    )
    assert decision.actions == (RemoteReplace("L1", "R1", None),)
    assert decision.statuses == {"R1": 200}


@pytest.mark.parametrize("policy", list(Policy))
def test_changed_here_deleted_there(policy: Policy) -> None:
    decision = run(
        known=[row("L1", "R1", A), BYSTANDER],
        local=[local_item("L1", A2, "e1")],
        changes=LocalChanges(modified=("L1",)),
        remote=[change(DELETE, "R1")],
        policy=policy,
    )
    kind = ConflictKind.REMOTE_DELETED
    if policy is Policy.PHONE_WINS:
        expected: tuple[object, ...] = (
            Conflict("L1", "R1", policy, Resolution.REMOTE_WON, kind),
            LocalDelete("L1", "e1"),
        )
        status = 208
    else:  # the modification wins: the item goes back to the phone
        expected = (Conflict("L1", "R1", policy, Resolution.LOCAL_WON, kind), RemoteAdd("L1"))
        status = 419
    assert decision.actions == expected
    assert decision.statuses == {"R1": status}


@pytest.mark.parametrize("policy", list(Policy))
def test_deleted_here_changed_there(policy: Policy) -> None:
    decision = run(
        known=[row("L1", "R1", A), BYSTANDER],
        changes=LocalChanges(deleted=("L1",)),
        remote=[change(REPLACE, "R1", A3)],
        policy=policy,
    )
    kind = ConflictKind.LOCAL_DELETED
    if policy is Policy.DESKTOP_WINS:
        expected: tuple[object, ...] = (
            Conflict("L1", "R1", policy, Resolution.LOCAL_WON, kind),
            RemoteDelete("L1", "R1"),
        )
        status = 419
    else:  # the modification wins: the item comes back here
        expected = (
            Conflict("L1", "R1", policy, Resolution.REMOTE_WON, kind),
            Forget("L1"),
            LocalAdd("R1", A3),
        )
        status = 208
    assert decision.actions == expected
    assert decision.statuses == {"R1": status}


def test_a_phone_resending_the_agreed_version_does_not_undo_our_deletion() -> None:
    decision = run(
        known=[row("L1", "R1", A), BYSTANDER],
        changes=LocalChanges(deleted=("L1",)),
        remote=[change(ADD, "R1", A)],  # a retried Add whose status was lost
    )
    assert decision.actions == (RemoteDelete("L1", "R1"),)
    assert decision.statuses == {"R1": 201}
    assert decision.conflicts == ()


def test_deleted_on_both_sides_is_forgotten() -> None:
    decision = run(
        known=[row("L1", "R1", A)],
        changes=LocalChanges(deleted=("L1",)),
        remote=[change(DELETE, "R1")],
    )
    assert decision.actions == (Forget("L1"),)
    assert decision.statuses == {"R1": 200}


@pytest.mark.parametrize("policy", list(Policy))
@pytest.mark.parametrize("case", ["both-changed", "changed-deleted", "deleted-changed"])
def test_every_conflict_resolution_converges(policy: Policy, case: str) -> None:
    world = World.synced([A, B])
    local_id = next(i for i, (d, _) in world.local.items() if d == A)
    remote_id = world.rows[local_id].remote_id
    assert remote_id is not None
    if case == "deleted-changed":
        world.local_delete(local_id)
    else:
        world.local_edit(local_id, A2)
    if case == "changed-deleted":
        world.remote_delete(remote_id)
    else:
        world.remote_edit(remote_id, A3)
    decision = world.sync(TWO_WAY, policy)
    assert len(decision.conflicts) == 1
    world.assert_converged()
    assert world.sync(TWO_WAY, policy).is_empty
    texts = sorted(d for d, _ in world.local.values())
    if case == "both-changed" and policy is Policy.KEEP_BOTH:
        assert texts == sorted([A2, A3, B])  # both versions, nothing more
    elif case == "both-changed" and policy is Policy.MERGE:
        assert texts == sorted([merge(A2, A3), B])


# -- slow sync ------------------------------------------------------------------------


def test_a_slow_sync_of_identical_data_only_links() -> None:
    decision = run(
        SLOW,
        local=[local_item("L1", A, "e1"), local_item("L2", B, "e1"), local_item("L3", NOUID, "e")],
        remote=[change(ADD, "R3", NOUID), change(ADD, "R1", A), change(REPLACE, "R2", B)],
    )
    assert decision.actions == (Link("L3", "R3"), Link("L1", "R1"), Link("L2", "R2"))
    assert decision.writes == ()
    assert decision.statuses == {"R3": 201, "R1": 201, "R2": 200}


def test_a_slow_sync_pairs_by_uid_and_merges_the_difference() -> None:
    decision = run(SLOW, local=[local_item("L1", A2, "e1")], remote=[change(ADD, "R1", A3)])
    merged = merge(A2, A3)
    assert decision.actions == (
        Conflict("L1", "R1", Policy.MERGE, Resolution.MERGED, ConflictKind.MATCHED),
        LocalReplace("L1", "R1", merged, "e1"),
        RemoteReplace("L1", "R1", merged),
    )
    assert decision.statuses == {"R1": 201}


def test_a_slow_sync_pairs_items_without_uid_by_content() -> None:
    decision = run(
        SLOW,
        local=[local_item("L1", NOUID2, "e1"), local_item("L2", NOUID, "e1")],
        remote=[change(ADD, "R1", NOUID)],
    )
    assert decision.actions == (Link("L2", "R1"), RemoteAdd("L1"))


@pytest.mark.parametrize(
    ("policy", "write"),
    [
        (Policy.PHONE_WINS, LocalReplace("L1", "R1", A3, "e1")),
        (Policy.DESKTOP_WINS, RemoteReplace("L1", "R1", None)),
    ],
)
def test_a_slow_sync_resolves_paired_differences_by_policy(policy: Policy, write: object) -> None:
    decision = run(
        SLOW, local=[local_item("L1", A2, "e1")], remote=[change(ADD, "R1", A3)], policy=policy
    )
    assert decision.writes == (write,)
    assert decision.statuses == {"R1": 201}


def test_a_slow_sync_does_not_duplicate_under_keep_both() -> None:
    decision = run(
        SLOW,
        local=[local_item("L1", A2, "e1")],
        remote=[change(ADD, "R1", A3)],
        policy=Policy.KEEP_BOTH,
    )
    assert decision.conflicts[0].policy is Policy.MERGE
    assert not [a for a in decision.actions if isinstance(a, LocalAdd | RemoteAdd)]


def test_a_slow_sync_adds_what_is_missing_and_never_deletes() -> None:
    decision = run(
        SLOW,
        known=[row("L1", "R1", A), row("L2", "R2", B)],
        local=[local_item("L1", A, "e0"), local_item("L2", B, "e0")],
        remote=[change(ADD, "R2", B), change(ADD, "R3", C)],  # the phone lost R1
    )
    assert decision.actions == (Link("L2", "R2"), LocalAdd("R3", C), RemoteAdd("L1"))


def test_a_slow_sync_keeps_a_desktop_edit_made_after_a_broken_session() -> None:
    """No UID, edited on the desktop: the row shows the phone still holds the agreed text."""
    decision = run(
        SLOW,
        known=[row("L1", "R1", NOUID)],
        local=[local_item("L1", NOUID2, "e1")],
        remote=[change(ADD, "R1", NOUID)],
    )
    assert decision.actions == (RemoteReplace("L1", "R1", None),)


def test_a_slow_sync_answers_deletes_with_211_and_forgets_vanished_rows() -> None:
    decision = run(
        SLOW,
        known=[row("L1", "R1", A), row("L2", "R2", B)],
        local=[local_item("L1", A, "e0")],
        remote=[change(DELETE, "R1"), change(ADD, "R1x", A)],
    )
    assert decision.statuses == {"R1": 211, "R1x": 201}
    assert decision.actions == (Link("L1", "R1x"), Forget("L2"))


@pytest.mark.parametrize("policy", list(Policy))
def test_a_slow_sync_with_overlaps_converges(policy: Policy) -> None:
    world = World()
    for data in (A, B, NOUID):
        world.local_add(data)
    for data in (A3, B, C, NOUID):
        world.remote_add(data)
    world.sync(SLOW, policy)
    world.assert_converged()
    assert len(world.local) == 4  # A/A3 paired by UID, B and NOUID by content, C added
    assert world.sync(TWO_WAY, policy).is_empty


# -- refreshes ------------------------------------------------------------------------


def refresh_case(guard: Guard) -> Decision:
    return run(
        Direction.REFRESH_FROM_REMOTE,
        known=[row("L1", "R1", A), row("L2", "R2", B)],
        local=[
            local_item("L1", A2, "e1"),
            local_item("L2", B, "e0"),
            local_item("L3", NOUID, "e0"),
            local_item("L4", C, "e0"),
        ],
        remote=[change(ADD, "R1", A3), change(ADD, "R5", NOUID), change(ADD, "R6", text(None))],
        guard=guard,
    )


def test_a_refresh_from_the_phone_replaces_our_data() -> None:
    decision = refresh_case(Guard(allow_refresh_deletes=True))
    assert decision.guard is None
    assert decision.actions == (
        LocalDelete("L2", "e0"),
        LocalDelete("L4", "e0"),
        LocalReplace("L1", "R1", A3, "e1"),  # by the row's remote id, the phone's text
        Link("L3", "R5"),  # by content
        LocalAdd("R6", text(None)),
    )
    assert decision.statuses == {"R1": 201, "R5": 201, "R6": 201}


def test_a_refresh_nobody_asked_for_deletes_nothing() -> None:
    decision = refresh_case(Guard())
    assert decision.guard is not None
    assert "refresh" in decision.guard.reason
    assert not [a for a in decision.actions if isinstance(a, LocalDelete)]
    # The mapping of L2 pointed at an id the phone no longer has.
    assert Forget("L2") in decision.actions
    assert LocalReplace("L1", "R1", A3, "e1") in decision.actions


def test_a_refresh_from_here_sends_everything_and_refuses_phone_changes() -> None:
    decision = run(
        Direction.REFRESH_FROM_LOCAL,
        known=[row("L1", "R1", A), row("L2", "R2", B)],
        local=[local_item("L1", A, "e0"), local_item("L3", C, "e0")],
        remote=[change(ADD, "R9", NOUID)],
    )
    assert decision.actions == (Forget("L2"), RemoteAdd("L1"), RemoteAdd("L3"))
    assert decision.statuses == {"R9": STATUS_REFUSED}


# -- one-way modes ----------------------------------------------------------------------


def test_one_way_from_the_phone_sends_nothing() -> None:
    decision = run(
        Direction.FROM_REMOTE,
        known=[row("L1", "R1", A), row("L2", "R2", B)],
        local=[local_item("L1", A2, "e1"), local_item("L9", C, "e1")],
        changes=LocalChanges(added=("L9",), modified=("L1",)),
        remote=[change(REPLACE, "R2", text("b", "y")), change(ADD, "R7", NOUID)],
    )
    assert decision.actions == (
        LocalReplace("L2", "R2", text("b", "y"), "e0"),
        LocalAdd("R7", NOUID),
    )


def test_one_way_from_the_phone_defers_the_merge_for_the_phone() -> None:
    decision = run(
        Direction.FROM_REMOTE,
        known=[row("L1", "R1", A)],
        local=[local_item("L1", A2, "e1")],
        changes=LocalChanges(modified=("L1",)),
        remote=[change(REPLACE, "R1", A3)],
    )
    assert decision.actions == (
        Conflict("L1", "R1", Policy.MERGE, Resolution.MERGED),
        LocalReplace("L1", "R1", merge(A2, A3), "e1"),
        Link("L1", "R1", digest(A3)),
    )
    world = World.synced([A])
    local_id, remote_id = next(iter(world.rows.items()))[0], next(iter(world.remote))
    world.local_edit(local_id, A2)
    world.remote_edit(remote_id, A3)
    world.sync(Direction.FROM_REMOTE)
    assert world.remote[remote_id] == A3
    follow_up = world.sync(TWO_WAY)
    assert follow_up.actions == (RemoteReplace(local_id, remote_id, None),)
    assert world.remote[remote_id] == merge(A2, A3)
    world.assert_converged()


def test_one_way_from_the_phone_keeping_both_sends_ours_later() -> None:
    decision = run(
        Direction.FROM_REMOTE,
        known=[row("L1", "R1", A)],
        local=[local_item("L1", A2, "e1")],
        changes=LocalChanges(modified=("L1",)),
        remote=[change(REPLACE, "R1", A3)],
        policy=Policy.KEEP_BOTH,
    )
    assert decision.actions == (
        Conflict("L1", "R1", Policy.KEEP_BOTH, Resolution.KEPT_BOTH),
        LocalAdd("R1", A3),
        Forget("L1"),
    )


def test_one_way_to_the_phone_refuses_its_changes() -> None:
    decision = run(
        Direction.FROM_LOCAL,
        known=[row("L1", "R1", A)],
        local=[local_item("L1", A2, "e1")],
        changes=LocalChanges(modified=("L1",)),
        remote=[change(REPLACE, "R1", A3), change(DELETE, "R8")],
    )
    assert decision.actions == (RemoteReplace("L1", "R1", None),)
    assert decision.statuses == {"R1": 403, "R8": 403}


# -- the mass-deletion guard --------------------------------------------------------------


def ten_synced() -> list[ItemState]:
    return [row(f"L{i}", f"R{i}", text(str(i))) for i in range(10)]


def test_an_emptied_local_store_deletes_nothing_on_the_phone() -> None:
    known = ten_synced()[:3]
    changes = LocalChanges(deleted=tuple(r.local_id for r in known))
    decision = run(known=known, changes=changes, local_count=0, remote=[change(ADD, "R9", A)])
    assert decision.guard is not None
    assert "empty" in str(decision.guard)
    assert decision.actions == (LocalAdd("R9", A),)  # the rest of the sync goes ahead
    confirmed = run(known=known, changes=changes, local_count=0, guard=Guard(allow_empty=True))
    assert confirmed.guard is None
    assert kinds(confirmed) == ["RemoteDelete"] * 3


def test_the_phone_deleting_most_items_is_withheld_with_514() -> None:
    decision = run(
        known=ten_synced(),
        remote=[change(DELETE, f"R{i}") for i in range(6)] + [change(ADD, "R99", A)],
    )
    assert decision.guard == GuardTrip(
        "6 of 10 local items would be deleted (limit 50%)", local_deletes=6, remote_deletes=0
    )
    assert decision.actions == (LocalAdd("R99", A),)
    assert decision.statuses == {**{f"R{i}": STATUS_WITHHELD for i in range(6)}, "R99": 201}


def test_half_of_the_items_is_still_allowed() -> None:
    decision = run(known=ten_synced(), remote=[change(DELETE, f"R{i}") for i in range(5)])
    assert decision.guard is None
    assert kinds(decision) == ["LocalDelete"] * 5


def test_the_share_rule_ignores_small_stores_but_not_emptying_them() -> None:
    known = ten_synced()[:4]
    assert run(known=known, remote=[change(DELETE, f"R{i}") for i in range(3)]).guard is None
    emptied = run(known=known, remote=[change(DELETE, f"R{i}") for i in range(4)])
    assert emptied.guard is not None
    assert "all 4 local items" in emptied.guard.reason
    assert emptied.actions == ()


def test_deleting_most_items_here_does_not_reach_the_phone() -> None:
    known = ten_synced()
    changes = LocalChanges(deleted=tuple(r.local_id for r in known[:6]))
    decision = run(known=known, changes=changes)
    assert decision.guard is not None
    assert "on the peer" in decision.guard.reason
    assert decision.guard.remote_deletes == 6
    assert decision.actions == ()


def test_emptying_the_phone_is_refused_even_for_a_small_store() -> None:
    known = ten_synced()[:2]
    decision = run(
        known=known,
        local=[local_item("L5", A, "e1")],
        changes=LocalChanges(added=("L5",), deleted=("L0", "L1")),
    )
    assert decision.guard is not None
    assert "all 2 items on the peer" in decision.guard.reason
    assert decision.actions == (RemoteAdd("L5"),)


def test_a_withheld_deletion_stays_pending_until_confirmed() -> None:
    world = World.synced([text(str(i)) for i in range(10)])
    for remote_id in sorted(world.remote)[:6]:
        world.remote_delete(remote_id)
    tripped = world.sync(guard=Guard())
    assert tripped.guard is not None
    assert len(world.local) == 10
    assert len(world.log) == 6  # the phone keeps what was answered 514
    world.sync(guard=Guard(max_delete_share=1.0))  # the user confirmed
    world.assert_converged()
    assert len(world.local) == 4


def test_guard_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="share"):
        Guard(max_delete_share=1.5)
    with pytest.raises(ValueError, match="negative"):
        Guard(min_items=-1)


# -- the Planner: batch by batch ----------------------------------------------------------


def planner(known: Sequence[ItemState], **kwargs: object) -> Planner:
    return Planner(
        direction=kwargs.pop("direction", TWO_WAY),  # type: ignore[arg-type]
        known={r.local_id: r for r in known},
        local=kwargs.pop("local", {}),  # type: ignore[arg-type]
        local_changes=kwargs.pop("local_changes", LocalChanges()),  # type: ignore[arg-type]
        local_count=kwargs.pop("local_count", len(known)),  # type: ignore[arg-type]
        merge=merge,
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_planner_holds_deletions_until_the_package_is_complete() -> None:
    p = planner(ten_synced())
    first = p.receive([change(DELETE, "R1"), change(ADD, "R99", A)])
    assert first.actions == (LocalAdd("R99", A),)
    assert first.statuses == {"R1": 200, "R99": 201}
    last = p.finish()
    assert last.actions == (LocalDelete("L1", "e0"),)
    assert last.guard is None


def test_the_planner_answers_deletions_past_the_limit_with_514() -> None:
    p = planner(ten_synced())
    first = p.receive([change(DELETE, f"R{i}") for i in range(4)])
    assert set(first.statuses.values()) == {200}
    assert first.guard is None
    second = p.receive([change(DELETE, f"R{i}") for i in range(4, 7)])
    assert set(second.statuses.values()) == {STATUS_WITHHELD}
    assert second.guard is not None
    last = p.finish()
    assert last.guard is not None
    # R0-R3 were answered 200: the phone dropped them, ours go back as new items.
    assert last.guard.acknowledged == ("R0", "R1", "R2", "R3")
    assert last.actions == tuple(Forget(f"L{i}") for i in range(4))
    assert last.statuses == {f"R{i}": STATUS_WITHHELD for i in range(4)}


def test_the_planner_guard_sees_our_deletions_too() -> None:
    known = ten_synced()
    p = planner(
        known,
        local_changes=LocalChanges(deleted=tuple(f"L{i}" for i in range(1, 7))),
        local_count=4,
    )
    assert p.receive([change(DELETE, "R0")]).statuses == {"R0": 200}
    last = p.finish()
    assert last.guard is not None
    assert last.guard.acknowledged == ("R0",)
    assert last.actions == (Forget("L0"),)


def test_the_planner_answers_a_second_change_of_one_item_with_409() -> None:
    p = planner(ten_synced())
    assert p.receive([change(REPLACE, "R1", A)]).statuses == {"R1": 200}
    again = p.receive([change(REPLACE, "R1", A2)])
    assert again.actions == ()
    assert again.statuses == {"R1": 409}


def test_a_later_change_replaces_a_held_deletion() -> None:
    p = planner(ten_synced())
    p.receive([change(DELETE, "R1")])
    second = p.receive([change(REPLACE, "R1", A)])
    assert second.actions == (LocalReplace("L1", "R1", A, "e0"),)
    assert second.statuses == {"R1": 200}
    assert p.finish().actions == ()


def test_a_slow_sync_in_batches_pairs_across_batches() -> None:
    items = {i.local_id: i for i in (local_item("L1", A, "e1"), local_item("L2", B, "e1"))}
    p = planner([], direction=SLOW, local=items, local_count=2)
    assert p.receive([change(ADD, "R2", B)]).actions == (Link("L2", "R2"),)
    assert p.receive([change(ADD, "R1", A3)]).writes != ()
    assert p.finish().actions == ()
    assert p.local is items


def test_the_planner_refuses_misuse() -> None:
    p = planner([])
    p.finish()
    with pytest.raises(DecisionError, match="after finish"):
        p.receive([])
    with pytest.raises(DecisionError, match="twice"):
        p.finish()


# -- output shape and input checks ---------------------------------------------------------


def test_deleting_items_come_first() -> None:
    decision = run(
        known=[row("L1", "R1", A), row("L2", "R2", B)],
        local=[local_item("L9", C, "e1")],
        changes=LocalChanges(added=("L9",), deleted=("L2",)),
        remote=[change(ADD, "R7", NOUID), change(DELETE, "R1")],
    )
    assert kinds(decision) == ["LocalDelete", "RemoteDelete", "LocalAdd", "RemoteAdd"]


def test_decision_helpers() -> None:
    decision = both_changed(Policy.KEEP_BOTH)
    assert len(decision.writes) == 2
    assert not decision.is_empty
    assert Decision((), {}).is_empty
    assert str(GuardTrip("why", 1, 2)) == "why"


def rows_of(*states: ItemState) -> Mapping[str, ItemState]:
    return {s.local_id: s for s in states}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"known": {"L1": row("L2", "R1", A)}}, "names local id"),
        ({"known": rows_of(row("L1", "R1", A), row("L2", "R1", B))}, "mapped to both"),
        ({"local": {"L1": local_item("L2", A, "e")}}, "names local id"),
        ({"local_count": -1}, "negative"),
        (
            {"known": rows_of(row("L1", "R1", A)), "local_changes": LocalChanges(added=("L1",))},
            "already has a state row",
        ),
        ({"local_changes": LocalChanges(modified=("L1",))}, "no state row"),
        (
            {
                "known": rows_of(row("L1", "R1", A)),
                "local_changes": LocalChanges(modified=("L1",), deleted=("L1",)),
            },
            "two kinds",
        ),
        ({"local_changes": LocalChanges(added=("L5",))}, "needed but not given"),
    ],
)
def test_contradictory_inputs_are_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "direction": TWO_WAY,
        "known": {},
        "local": {},
        "local_changes": LocalChanges(),
        "local_count": 0,
        "remote_changes": [],
    }
    args.update(kwargs)
    with pytest.raises(DecisionError, match=message):
        decide(**args)  # type: ignore[arg-type]


def test_an_add_without_data_is_refused() -> None:
    with pytest.raises(DecisionError, match="no data"):
        RemoteChange(ADD, "R1")
    assert RemoteChange(DELETE, "R1").data is None


def test_the_world_model_keeps_both_sides_equal() -> None:
    world = World.synced([A, B])
    assert Counter(world.remote.values()) == Counter([A, B])
    world.assert_converged()
