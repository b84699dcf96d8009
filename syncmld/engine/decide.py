"""Sync decisions for one datastore pair, as pure functions of plain values.

Theory of operation
===================

The engine remembers, per datastore pair, one :class:`~syncmld.engine.state.ItemState`
row per item: the local id, the peer's id for it (``remote_id``, ``None`` until
the peer mapped it), and the local etag and content digest both sides last
agreed on (the *base*).  A session then works in three steps, and this module
is the middle one:

1. **Detect.**  :func:`detect_local_changes` compares the store's listing with
   the rows.  An item counts as changed only when its etag differs *and* its
   normalized content digest differs (a touched file or a re-serialized
   calendar is not a change); the digest is computed only for items whose
   etag moved, so the cost is one listing plus one load per edited item.  The
   peer reports its own changes (or, in a slow sync or a refresh, all of its
   items) as :class:`RemoteChange` values.

2. **Decide.**  :func:`decide` turns the rows, the local changes and the
   remote changes into a :class:`Decision`: an ordered tuple of small action
   objects plus the SyncML status for every remote command.  It reads no
   store, no clock and no randomness; everything it needs comes in as values,
   so the same inputs always give the same decision.  A server whose client
   sends its changes over several messages uses :class:`Planner`, the same
   decisions taken batch by batch (:meth:`Planner.receive` per message, whose
   statuses go into the reply to that message, then :meth:`Planner.finish`).

3. **Apply.**  The caller (the session machine) executes the actions and
   writes the new rows, then commits them with the anchors in one transaction
   (see :mod:`syncmld.engine.state`).

Content identity
----------------
Two items hold "the same content" when their digests are equal (the caller
hashes a normalized form that ignores volatile properties).  An item's UID is
used only to *pair* items that have no mapping yet; two non-empty UIDs that
differ never pair, whatever the digests say.

Three-way comparison
--------------------
Wherever a pair (local item, remote item) has a base digest, each side's
digest is compared with it: only one side differs -> that side's version goes
to the other side; both differ but agree with each other -> nothing to write,
the row is refreshed (:class:`Link`); both differ from the base and from each
other -> a **conflict**, resolved by the :class:`Policy`:

==============  =============================================  ======
policy          both sides changed the item                    status
==============  =============================================  ======
MERGE           ``merge(local, remote)`` written locally if it  207
                differs from the local text and sent to the
                peer if it differs from what the peer sent
                (without a merge function the peer's text is
                taken, still reported as a merge)
PHONE_WINS      the peer's version is written locally          208
DESKTOP_WINS    the local version is sent to the peer          419
KEEP_BOTH       the peer's version is added locally as a new   209
                item mapped to the peer's id, the local
                version is sent to the peer as a new item
                (its row loses the old remote id until the
                peer maps the new one): each side ends with
                exactly the two versions
==============  =============================================  ======

Changed against deleted: a modification wins under MERGE and KEEP_BOTH (the
item is re-created on the side that deleted it: :class:`RemoteAdd` with 419,
or :class:`Forget` + :class:`LocalAdd` with 208); under PHONE_WINS and
DESKTOP_WINS the named side wins, so a deletion may win (208 / 419).

Pairs *without* a base (a slow sync, or an Add that pairs with an item the
peer never mapped) have no "both changed": the two versions are just
different.  X_WINS picks X; MERGE merges; KEEP_BOTH merges too, because
duplicating every item a phone stores with fewer fields after a first sync is
exactly the duplicate storm users complain about.  These pairings are
recorded as :class:`Conflict` with ``kind=MATCHED`` and answered 201 (Add) /
200 (Replace), as SyncML servers answer slow-sync matches.

Modes (:class:`Direction`, relative to us)
------------------------------------------
``TWO_WAY``
    Remote changes are applied, local changes are sent.  A remote Add whose
    id is known is a Replace; a Replace of an unknown id is an Add; a Delete
    of an unknown id is answered 211.  An Add or Replace of an unknown id is
    first paired with a local item the peer has not mapped (one added since
    the last sync, or one we sent whose Map never came back): equal content
    -> :class:`Link` and 201, no new item.  This makes a retried Add
    idempotent; no session can duplicate an item by being repeated.
``SLOW``
    The peer sends every item; deletions are never inferred.  Each remote
    item is paired with a not yet paired local item: first exact copies
    (equal digest, compatible UID, the mapped item preferred) across all
    remote items, then the item the existing mapping names (the row with
    that remote id, compatible UID), then equal
    non-empty UID, then "the peer's item still holds exactly what we agreed
    on with this remote id" (the base), so an item edited on the desktop
    since an interrupted session is not duplicated.  Paired -> Link, plus the
    content resolution above when the contents differ; unpaired remote items
    -> :class:`LocalAdd`; unpaired local items -> :class:`RemoteAdd`; rows of
    vanished local items -> :class:`Forget`.  Identical data on both sides
    gives only Links.
``FROM_REMOTE`` (one-way from the peer)
    Decided as ``TWO_WAY`` without the local changes; any write meant for the
    peer is *deferred*, not dropped: the row is left so that the next two-way
    sync sees the local side as changed (a :class:`Link` with
    ``remote_digest`` records what the peer holds; a planned
    :class:`RemoteAdd` becomes :class:`Forget`, so the item is sent as new).
``REFRESH_FROM_REMOTE``
    The peer sends every item and its data replaces ours: remote items are
    paired by the remote id of the rows, then exact content, then UID;
    differing pairs get the peer's version; unpaired local items are
    deleted (guarded, see below).
``FROM_LOCAL`` (one-way to the peer)
    Local changes are sent; remote changes are refused with 403 (they stay
    pending on the peer, as SyncML clients refuse a mode that would write
    them).
``REFRESH_FROM_LOCAL``
    The peer wiped its side: every local item is sent as :class:`RemoteAdd`
    and every old mapping is dropped; remote changes are refused with 403.

Statuses
--------
One status per remote id (several commands on one id within a batch collapse
into the last): 201 for an Add, or for a Replace or Add that created or
paired an item (slow-sync matches included; never 418); 200 for a Replace or
Delete carried out (or found already true); 211 for a Delete of an unknown
item, and for any Delete in a slow sync or refresh; 207/208/209/419 for the
conflicts above; 403 (:data:`STATUS_REFUSED`) in the modes that only send;
514 (:data:`STATUS_WITHHELD`) for what the guard withheld; 409 for a second
change of one item in a later batch of a :class:`Planner` session.

Mass-deletion guard (:class:`Guard`)
------------------------------------
The guard counts the deletions each side would suffer and trips when the
local store went from N>0 synced items to empty (in the modes that would
propagate that: vdirsyncer's ``StorageEmpty``), when a side would lose every
item, when a side with at least ``min_items`` items would lose more than
``max_delete_share`` of them, or when a refresh from the peer would delete
local items the user did not ask it to.  Every rule only grows with the
number of deletions, so a running count can trip early and never un-trips.

A tripped guard withholds **every** item decision that contains a deletion
(the whole item: its conflict record and all) and reports a
:class:`GuardTrip`; the peer's withheld commands are answered 514.  Adds,
replaces and links still go ahead: they lose no data, and a caller that
prefers to stop everything can drop the decision.  Withheld deletions stay
pending (the row is kept), so the guard trips again next time until the user
confirms.  Two exceptions keep the rows truthful: local items a refresh did
not send lose their row (their remote ids are gone), and so do items whose
deletion :meth:`Planner.receive` had already answered with success before
:meth:`Planner.finish` tripped (the peer dropped them): both go back to the
peer as new items at the next sync.

Applying a decision: the state rows
-----------------------------------
Rows are keyed by local id.  Executing the actions in order, the new rows are
(``etag``/``digest`` = the local item's *current* ones, i.e. after this
decision's own local writes):

* :class:`LocalAdd` -> a row ``(new id, remote_id, new etag, digest of the stored text)``;
* :class:`LocalReplace` -> ``(local_id, remote_id, new etag, digest)``;
* :class:`LocalDelete`, :class:`RemoteDelete`, :class:`Forget` -> the row is removed;
* :class:`RemoteAdd` -> ``(local_id, None, etag, digest)``; the remote id is
  filled in when the peer maps the item (server role: the client's Map);
* :class:`RemoteReplace`, :class:`Link` -> ``(local_id, remote_id, etag, digest)``,
  except a Link with ``remote_digest`` -> ``(local_id, remote_id, "", remote_digest)``:
  an empty etag makes :func:`detect_local_changes` re-hash the item;
* :class:`UpdateEtag` -> the row's etag is replaced;
* :class:`Conflict` -> no row change (a record for the history).

Items without an action keep their row.  The caller converts formats and may
keep fields the peer cannot store when it writes (the written text is what
gets hashed); a write that fails with :class:`~syncmld.engine.store.PreconditionFailed`
leaves the row alone, so the desktop edit travels with the next sync.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Final, TypeAlias

from syncmld.engine.state import ItemState
from syncmld.errors import SyncmlError
from syncmld.protocol.codes import StatusCode

#: The status for a remote command whose effect the mass-deletion guard
#: withheld: "Operation cancelled" (514), the code SyncML servers use for
#: commands left unexecuted when they cancel or suspend a session.  A 4xx/5xx
#: keeps the change pending on the peer, which sends it again next time;
#: 215 "Not executed" would be a success (2xx) and make the peer forget it.
STATUS_WITHHELD: Final = StatusCode.SESSION_CANCELLED
#: The status for a remote change in a mode that only sends our side.
STATUS_REFUSED: Final = StatusCode.FORBIDDEN


class DecisionError(SyncmlError, ValueError):
    """The inputs of :func:`decide` contradict each other (a bug in the caller)."""


class Policy(Enum):
    """How to resolve an item both sides changed.  *Phone* is the peer, *desktop* us."""

    MERGE = "merge"
    PHONE_WINS = "phone-wins"
    DESKTOP_WINS = "desktop-wins"
    KEEP_BOTH = "keep-both"


class Direction(Enum):
    """The sync mode relative to us; the caller maps SyncML alert codes (and roles) onto it."""

    TWO_WAY = "two-way"
    SLOW = "slow"
    FROM_REMOTE = "one-way-from-remote"
    REFRESH_FROM_REMOTE = "refresh-from-remote"
    FROM_LOCAL = "one-way-from-local"
    REFRESH_FROM_LOCAL = "refresh-from-local"


class ChangeKind(Enum):
    """The SyncML command a remote change arrived as."""

    ADD = "add"
    REPLACE = "replace"
    DELETE = "delete"


class ConflictKind(Enum):
    """What collided in a :class:`Conflict`."""

    #: Both sides changed the item since the last sync.
    BOTH_CHANGED = "both-changed"
    #: We deleted the item, the peer changed it.
    LOCAL_DELETED = "local-deleted"
    #: The peer deleted the item, we changed it.
    REMOTE_DELETED = "remote-deleted"
    #: Two items without a common base were paired (slow sync, retried Add)
    #: and their contents differ.
    MATCHED = "matched"


class Resolution(StrEnum):
    """Which version survived a :class:`Conflict`."""

    MERGED = "merged"
    REMOTE_WON = "remote-won"
    LOCAL_WON = "local-won"
    KEPT_BOTH = "kept-both"


# -- inputs -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalItem:
    """One item of the local store as it is now.

    Attributes:
        local_id: the store's id.
        etag: the store's current etag.
        digest: the normalized content hash (same function as the state rows).
        uid: the item's UID, ``None`` (or empty) when it has none.
        data: the item's text in the desktop format.
    """

    local_id: str
    etag: str
    digest: str
    uid: str | None
    data: str


@dataclass(frozen=True, slots=True)
class RemoteChange:
    """One Add, Replace or Delete the peer sent.

    Attributes:
        kind: the command.
        remote_id: the peer's id (the client's LUID in the server role).
        data: the item converted to the desktop format (required for Add and
            Replace, ignored for Delete).
        digest: its normalized content hash; ``None`` when it could not be
            computed (the item then never counts as equal to anything).
        uid: its UID, if any.

    Raises:
        DecisionError: an Add or Replace without data.
    """

    kind: ChangeKind
    remote_id: str
    data: str | None = None
    digest: str | None = None
    uid: str | None = None

    def __post_init__(self) -> None:
        if self.kind is not ChangeKind.DELETE and self.data is None:
            raise DecisionError(f"{self.kind.value} of {self.remote_id!r} carries no data")


@dataclass(frozen=True, slots=True)
class LocalChanges:
    """What changed in the local store since the last sync (see :func:`detect_local_changes`).

    Attributes:
        added: ids of items without a state row.
        modified: ids whose etag and content digest both differ from their row.
        deleted: ids with a row but no item.
        refreshed: id -> new etag for items whose etag changed but whose
            content did not.
    """

    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    refreshed: Mapping[str, str] = field(default_factory=dict)


def detect_local_changes(
    known: Mapping[str, ItemState],
    listing: Mapping[str, str],
    digest_of: Callable[[str], str],
) -> LocalChanges:
    """Compare the store's listing with the state rows.

    An item is unchanged when its etag equals the row's; otherwise
    ``digest_of(local_id)`` (the caller loads and hashes the item) decides
    between *refreshed* (same digest: only the etag is new) and *modified*.
    An empty etag in a row means "unknown" and always leads to the digest.
    Ids without a row are *added*, rows without an item *deleted*.  The cost
    is O(len(known) + len(listing)) with one ``digest_of`` call per item whose
    etag moved; the order of each tuple follows the inputs.

    Args:
        known: the state rows by local id.
        listing: the store's current ``local_id -> etag``.
        digest_of: loads one item and returns its normalized content hash;
            whatever it raises propagates.
    """
    added: list[str] = []
    modified: list[str] = []
    refreshed: dict[str, str] = {}
    for local_id, etag in listing.items():
        row = known.get(local_id)
        if row is None:
            added.append(local_id)
        elif row.etag and row.etag == etag:
            continue
        elif digest_of(local_id) == row.digest:
            refreshed[local_id] = etag
        else:
            modified.append(local_id)
    deleted = tuple(local_id for local_id in known if local_id not in listing)
    return LocalChanges(tuple(added), tuple(modified), deleted, refreshed)


@dataclass(frozen=True)
class Guard:
    """Limits on deletions; a decision beyond them is a :class:`GuardTrip`.

    Attributes:
        max_delete_share: a side with at least ``min_items`` items may lose at
            most this share of them in one session (1.0 disables the rule).
        min_items: below this many items the share rule does not apply.
        allow_refresh_deletes: the user asked for this refresh from the peer,
            so its deletions are expected (they are then also exempt from the
            share rule, not from the "empties a side" rule).
        allow_empty: the user confirmed that emptying a side is intended
            (disables the "N items to none" rules).

    Raises:
        ValueError: a share outside 0..1 or a negative ``min_items``.
    """

    max_delete_share: float = 0.5
    min_items: int = 10
    allow_refresh_deletes: bool = False
    allow_empty: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_delete_share <= 1.0:
            raise ValueError(f"max_delete_share {self.max_delete_share} is not within 0..1")
        if self.min_items < 0:
            raise ValueError(f"min_items {self.min_items} is negative")


@dataclass(frozen=True, slots=True)
class GuardTrip:
    """Why the guard withheld the deletions.

    The caller should end the store's sync with a clear status and tell the
    user (``AttentionNeeded``); ``str(trip)`` is the reason.

    Attributes:
        reason: what tripped, for a person.
        local_deletes: deletions of local items the session asked for.
        remote_deletes: deletions on the peer the session asked for.
        acknowledged: remote ids whose deletion had already been answered
            with success (by :meth:`Planner.receive`) when :meth:`Planner.finish`
            withheld it; their rows are forgotten, so the items go back to the
            peer as new ones at the next sync.
    """

    reason: str
    local_deletes: int
    remote_deletes: int
    acknowledged: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.reason


# -- actions ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalAdd:
    """Store ``data`` as a new local item, mapped to ``remote_id``."""

    remote_id: str
    data: str


@dataclass(frozen=True, slots=True)
class LocalReplace:
    """Overwrite a local item; ``etag`` is the one the decision saw (optimistic concurrency)."""

    local_id: str
    remote_id: str
    data: str
    etag: str


@dataclass(frozen=True, slots=True)
class LocalDelete:
    """Delete a local item if its etag is still ``etag``."""

    local_id: str
    etag: str


@dataclass(frozen=True, slots=True)
class RemoteAdd:
    """Send the local item to the peer as a new item (it maps it to a new remote id)."""

    local_id: str


@dataclass(frozen=True, slots=True)
class RemoteReplace:
    """Send a Replace for ``remote_id``: the local item as it is (``data`` None) or ``data``."""

    local_id: str
    remote_id: str
    data: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteDelete:
    """Send a Delete for ``remote_id`` (the local item is gone or lost a conflict)."""

    local_id: str
    remote_id: str


@dataclass(frozen=True, slots=True)
class Link:
    """Record that ``local_id`` and ``remote_id`` are one item; write nothing.

    With ``remote_digest`` the two sides hold *different* content (a one-way
    session deferred the write to the peer): the row gets an empty etag and
    this digest ("" when unknown), so the next sync sees the local item as
    changed and sends it.
    """

    local_id: str
    remote_id: str
    remote_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Forget:
    """Drop the state row of ``local_id``; nothing is written to either side."""

    local_id: str


@dataclass(frozen=True, slots=True)
class UpdateEtag:
    """The item's content is unchanged but its etag is new: update the row only."""

    local_id: str
    etag: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """A record of one conflict and its resolution, for the history and D-Bus.

    ``local_id`` may name an item that no longer exists (``kind`` LOCAL_DELETED);
    ``policy`` is the policy actually applied (KEEP_BOTH acts as MERGE on
    pairs without a base).
    """

    local_id: str
    remote_id: str
    policy: Policy
    resolution: Resolution
    kind: ConflictKind = ConflictKind.BOTH_CHANGED


Action: TypeAlias = (
    LocalAdd
    | LocalReplace
    | LocalDelete
    | RemoteAdd
    | RemoteReplace
    | RemoteDelete
    | Link
    | Forget
    | UpdateEtag
    | Conflict
)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of :func:`decide`, :meth:`Planner.receive` or :meth:`Planner.finish`.

    Attributes:
        actions: what to do, in order.  The actions of one item are adjacent
            and in execution order (a :class:`Conflict` record precedes its
            resolution); items whose actions delete come first, which frees
            names and device memory before anything is added.
        statuses: remote id -> the SyncML status for the peer's command(s)
            on it (one status per remote id; see the module docstring).
        guard: set when the mass-deletion guard withheld deletions; the
            actions then contain no :class:`LocalDelete` or :class:`RemoteDelete`.
    """

    actions: tuple[Action, ...]
    statuses: Mapping[str, int]
    guard: GuardTrip | None = None

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to do and nothing to answer."""
        return not self.actions and not self.statuses

    @property
    def conflicts(self) -> tuple[Conflict, ...]:
        """The conflict records, in order."""
        return tuple(a for a in self.actions if isinstance(a, Conflict))

    @property
    def writes(self) -> tuple[Action, ...]:
        """The actions that write data to either side (adds, replaces, deletes)."""
        return tuple(a for a in self.actions if isinstance(a, _WRITES))


_WRITES: Final = (LocalAdd, LocalReplace, LocalDelete, RemoteAdd, RemoteReplace, RemoteDelete)
_DELETES: Final = (LocalDelete, RemoteDelete)
_ROW_SETTERS: Final = (LocalReplace, RemoteReplace, RemoteAdd, Link)

_DEFAULT_GUARD: Final = Guard()


# -- the decision ---------------------------------------------------------------


def decide(
    *,
    direction: Direction,
    policy: Policy = Policy.MERGE,
    known: Mapping[str, ItemState],
    local: Mapping[str, LocalItem],
    local_changes: LocalChanges,
    local_count: int,
    remote_changes: Sequence[RemoteChange],
    merge: Callable[[str, str], str] | None = None,
    guard: Guard = _DEFAULT_GUARD,
) -> Decision:
    """Decide what a session does to both sides of one datastore pair, in one go.

    The same decisions as a :class:`Planner` given all remote changes in one
    batch, except that nothing has been answered yet: deletions the guard
    withholds are simply answered :data:`STATUS_WITHHELD` and keep their rows.

    Args:
        direction: the sync mode, relative to us.
        policy: how conflicts are resolved.
        known: the state rows by local id (empty after a state loss).
        local: current local items.  ``TWO_WAY``/``FROM_REMOTE``/``FROM_LOCAL``
            need those in ``local_changes.added`` and ``.modified`` (items
            whose row has no remote id yet are used when given); ``SLOW`` and
            both refreshes need every local item.  Extra items are harmless.
        local_changes: from :func:`detect_local_changes` (only the fast
            modes use it).
        local_count: how many items the local store holds now.
        remote_changes: the peer's commands in arrival order; in ``SLOW`` and
            ``REFRESH_FROM_REMOTE`` all of its items.  Several commands on one
            remote id collapse into the last (the peer's final state counts).
        merge: ``merge(local_text, remote_text)`` -> merged text, keeping
            every field either side has; used by :attr:`Policy.MERGE`.
        guard: the mass-deletion limits.

    Returns:
        The :class:`Decision`; every remote id of ``remote_changes`` has a status.

    Raises:
        DecisionError: the inputs contradict each other (an id both added
            and known, a needed local item missing, two rows with one remote
            id, ...).
    """
    planner = Planner(
        direction=direction,
        policy=policy,
        known=known,
        local=local,
        local_changes=local_changes,
        local_count=local_count,
        merge=merge,
        guard=guard,
    )
    outcomes = planner._plan_batch(_collapse(remote_changes))
    outcomes += planner._plan_finish()
    planner._count(outcomes)
    trip = planner._trip()
    if trip is not None:
        planner._withhold(outcomes, acknowledged=False)
    outcomes += planner._etag_updates()
    return Decision(_ordered(outcomes), _statuses(outcomes), trip)


class Planner:
    """The decisions of one session, taken batch by batch as the peer's commands arrive.

    A SyncML client's package may span several messages, and the Status of
    every command goes into our reply to *its* message.  So the server feeds
    each message's changes to :meth:`receive`, executes the returned actions
    and answers with the returned statuses; when the client's package is
    complete it calls :meth:`finish` for the rest: our own changes, the items
    a slow sync or refresh left unpaired, and the deletions.

    Deletions are held back until :meth:`finish`, where the guard sees the
    whole session.  :meth:`receive` answers a held deletion with the status
    it will have when executed, unless the deletions so far already trip the
    guard (its rules only grow with the number of deletions): then that and
    every later deletion is answered :data:`STATUS_WITHHELD` and kept
    pending.  If :meth:`finish` then withholds deletions that were already
    answered with success, the peer has dropped those items while we keep
    them: their rows are forgotten, so the next sync sends them back to the
    peer as new items (listed in :attr:`GuardTrip.acknowledged`).

    ``known`` is copied; ``local`` is kept as given (the caller may read the
    current items from :attr:`local`).  A remote id changed again in a later
    batch of the same session is answered 409 (the peer sends it again next
    time), unless its earlier change was a held deletion, which the new
    change then replaces.  The arguments are those of :func:`decide`.

    Raises:
        DecisionError: the inputs contradict each other.
    """

    def __init__(
        self,
        *,
        direction: Direction,
        policy: Policy = Policy.MERGE,
        known: Mapping[str, ItemState],
        local: Mapping[str, LocalItem],
        local_changes: LocalChanges,
        local_count: int,
        merge: Callable[[str, str], str] | None = None,
        guard: Guard = _DEFAULT_GUARD,
    ) -> None:
        self.direction = direction
        self.policy = policy
        self.guard = guard
        #: The local items given to the planner, by id.
        self.local = local
        self._known = dict(known)
        self._changes = local_changes
        self._local_count = local_count
        self._merge = merge
        self._modified = frozenset(local_changes.modified)
        self._deleted = frozenset(local_changes.deleted)
        self._by_remote: dict[str, str] = {}
        self._check()
        self._matcher = _Matcher(self._candidates(), self._known)
        #: Local ids any outcome of this session touched.
        self._touched: set[str] = set()
        #: Remote id -> its outcome in this session.
        self._session: dict[str, _Outcome] = {}
        self._held: list[_Outcome] = []
        self._local_deletes = 0
        self._remote_deletes = 0
        self._orphan_deletes = 0
        self._finished = False

    # -- public API --------------------------------------------------------------

    def receive(self, changes: Sequence[RemoteChange]) -> Decision:
        """Decide one batch of the peer's commands (one message's worth).

        Returns the actions to execute now (never a deletion: those are held
        for :meth:`finish`) and a status for every remote id in ``changes``;
        ``guard`` is set once the deletions so far trip the guard.

        Raises:
            DecisionError: called after :meth:`finish`.
        """
        if self._finished:
            raise DecisionError("receive() after finish()")
        outcomes = self._plan_batch(_collapse(changes))
        deleting = [o for o in outcomes if o.deletes()]
        if deleting:
            self._count(deleting)
            if self._trip() is not None:
                self._withhold(deleting, acknowledged=False)
            else:
                self._held += deleting
        now = [o for o in outcomes if not o.deletes()]
        return Decision(_ordered(now), _statuses(outcomes), self._trip())

    def finish(self) -> Decision:
        """Decide the rest of the session once the peer's package is complete.

        Returns the held deletions (or, when the guard trips, what replaces
        them), our own changes for the peer, and the final statuses of the
        remote commands whose deletion was held (for the history: they were
        already answered).

        Raises:
            DecisionError: called twice.
        """
        if self._finished:
            raise DecisionError("finish() called twice")
        self._finished = True
        held, self._held = self._held, []
        rest = self._plan_finish()
        self._count(rest)
        outcomes = held + rest
        trip = self._trip()
        if trip is not None:
            acknowledged = self._withhold(outcomes, acknowledged=True)
            trip = GuardTrip(trip.reason, trip.local_deletes, trip.remote_deletes, acknowledged)
        outcomes += self._etag_updates()
        return Decision(_ordered(outcomes), _statuses(held), trip)

    # -- input checks ------------------------------------------------------------

    def _check(self) -> None:
        for local_id, row in self._known.items():
            if row.local_id != local_id:
                raise DecisionError(f"state row {local_id!r} names local id {row.local_id!r}")
            if row.remote_id is not None:
                other = self._by_remote.setdefault(row.remote_id, local_id)
                if other != local_id:
                    raise DecisionError(
                        f"remote id {row.remote_id!r} is mapped to both {other!r} and {local_id!r}"
                    )
        for local_id, item in self.local.items():
            if item.local_id != local_id:
                raise DecisionError(f"local item {local_id!r} names local id {item.local_id!r}")
        if self._local_count < 0:
            raise DecisionError(f"local_count {self._local_count} is negative")
        if self.direction in _FULL_MODES:
            return
        c = self._changes
        seen: set[str] = set()
        for group in (c.added, c.modified, c.deleted, tuple(c.refreshed)):
            for local_id in group:
                if local_id in seen:
                    raise DecisionError(f"local id {local_id!r} is listed as two kinds of change")
                seen.add(local_id)
        for local_id in c.added:
            if local_id in self._known:
                raise DecisionError(f"added item {local_id!r} already has a state row")
        for group in (c.modified, c.deleted, tuple(c.refreshed)):
            for local_id in group:
                if local_id not in self._known:
                    raise DecisionError(f"changed item {local_id!r} has no state row")
        for local_id in (*c.added, *c.modified):
            if local_id not in self.local:
                raise DecisionError(f"local item {local_id!r} is needed but not given")

    def _candidates(self) -> list[_Candidate]:
        """The local items a remote item may pair with (not yet mapped ones in fast modes)."""
        if self.direction in _FULL_MODES:
            return [_Candidate.of(item) for item in self.local.values()]
        ids = [*self._changes.added]
        ids += [
            i for i, row in self._known.items() if row.remote_id is None and i not in self._deleted
        ]
        out: list[_Candidate] = []
        for local_id in ids:
            item = self.local.get(local_id)
            if item is not None:
                out.append(_Candidate.of(item))
            else:
                # Not loaded: unchanged since the row, so its digest is the row's.
                # Without its UID and text it can still pair with an exact copy.
                row = self._known[local_id]
                etag = self._changes.refreshed.get(local_id, row.etag)
                out.append(_Candidate(local_id, etag, row.digest, None, None))
        return out

    # -- helpers -----------------------------------------------------------------

    def _view(self, local_id: str) -> _Candidate:
        item = self.local.get(local_id)
        if item is not None:
            return _Candidate.of(item)
        row = self._known[local_id]
        etag = self._changes.refreshed.get(local_id, row.etag)
        return _Candidate(local_id, etag, row.digest, None, None)

    def _resolve(
        self, view: _Candidate, change: RemoteChange, kind: ConflictKind, genuine: bool
    ) -> tuple[list[Action], int]:
        """Apply the policy to two different versions of one item."""
        local_id, rid, rdata = view.local_id, change.remote_id, _data(change)
        policy = self.policy
        if policy is Policy.KEEP_BOTH and not genuine:
            policy = Policy.MERGE
        if policy is Policy.MERGE:
            if view.data is None:  # pragma: no cover - unloaded items only pair when equal
                raise DecisionError(f"local item {local_id!r} is needed but not given")
            merged = self._merge(view.data, rdata) if self._merge is not None else rdata
            actions: list[Action] = [Conflict(local_id, rid, policy, Resolution.MERGED, kind)]
            if merged != view.data:
                actions.append(LocalReplace(local_id, rid, merged, view.etag))
            if merged != rdata:
                data = None if merged == view.data else merged
                actions.append(RemoteReplace(local_id, rid, data))
            return actions, StatusCode.CONFLICT_RESOLVED_WITH_MERGE
        if policy is Policy.PHONE_WINS:
            return [
                Conflict(local_id, rid, policy, Resolution.REMOTE_WON, kind),
                LocalReplace(local_id, rid, rdata, view.etag),
            ], StatusCode.CONFLICT_RESOLVED_WITH_CLIENT_WINNING
        if policy is Policy.DESKTOP_WINS:
            return [
                Conflict(local_id, rid, policy, Resolution.LOCAL_WON, kind),
                RemoteReplace(local_id, rid, None),
            ], StatusCode.CONFLICT_RESOLVED_WITH_SERVER_DATA
        return [
            Conflict(local_id, rid, policy, Resolution.KEPT_BOTH, kind),
            LocalAdd(rid, rdata),
            RemoteAdd(local_id),
        ], StatusCode.CONFLICT_RESOLVED_WITH_DUPLICATE

    def _pair(
        self, view: _Candidate, base: str | None, change: RemoteChange, *, matched: bool
    ) -> tuple[list[Action], int | None]:
        """Three-way compare one pair; returns the actions and a conflict status (or None)."""
        local_id, rid = view.local_id, change.remote_id
        status: int | None = None
        if _same(change.digest, view.digest):
            actions: list[Action] = []
        elif base is not None and _same(change.digest, base):
            actions = [RemoteReplace(local_id, rid, None)]
        elif base is not None and view.digest == base:
            actions = [LocalReplace(local_id, rid, _data(change), view.etag)]
        else:
            kind = ConflictKind.MATCHED if matched else ConflictKind.BOTH_CHANGED
            actions, status = self._resolve(view, change, kind, genuine=base is not None)
        if not any(_sets_row(a, local_id) for a in actions) and (matched or view.digest != base):
            actions.append(Link(local_id, rid))
        return actions, status

    def _pair_matched(self, view: _Candidate, change: RemoteChange) -> list[Action]:
        """A pairing without a trusted mapping (slow sync, retried Add)."""
        row = self._known.get(view.local_id)
        base = None
        if row is not None and row.remote_id in (None, change.remote_id):
            base = row.digest
        actions, _status = self._pair(view, base, change, matched=True)
        return actions

    def _match(self, changes: Iterable[RemoteChange]) -> dict[str, _Candidate]:
        """Pair remote items with free local ones, one key after the other over all items."""
        m = self._matcher
        passes: tuple[Callable[[RemoteChange], str | None], ...]
        if self.direction is Direction.REFRESH_FROM_REMOTE:
            passes = (m.known_id, m.exact, m.uid)
        elif self.direction is Direction.SLOW:
            # Exact copies first (equal sides never write, whatever stale
            # rows say), then the existing mapping, before UID and base: a
            # peer that drops UIDs on the wire (SyncEvolution's vCard
            # profile) and sends a slightly different copy would otherwise
            # get a duplicate.
            passes = (m.exact, m.known_id, m.uid, m.base)
        else:
            passes = (m.exact, m.uid, m.base)
        todo = list(changes)
        pairs: dict[str, _Candidate] = {}
        for find in passes:
            rest: list[RemoteChange] = []
            for change in todo:
                found = find(change)
                if found is None:
                    rest.append(change)
                else:
                    pairs[change.remote_id] = m.take(found)
            todo = rest
        return pairs

    # -- planning ----------------------------------------------------------------

    def _plan_batch(self, changes: Mapping[str, RemoteChange]) -> list[_Outcome]:
        """The outcomes of one batch of remote changes (collapsed by remote id)."""
        outcomes: list[_Outcome] = []
        fresh: dict[str, RemoteChange] = {}
        for rid, change in changes.items():
            earlier = self._session.get(rid)
            if earlier is None:
                fresh[rid] = change
            elif any(o is earlier for o in self._held):
                self._held = [o for o in self._held if o is not earlier]
                self._local_deletes -= sum(isinstance(a, LocalDelete) for a in earlier.actions)
                self._remote_deletes -= sum(isinstance(a, RemoteDelete) for a in earlier.actions)
                fresh[rid] = change
            else:
                outcomes.append(_Outcome([], change, StatusCode.CONFLICT))
        if self.direction in (Direction.FROM_LOCAL, Direction.REFRESH_FROM_LOCAL):
            outcomes += [_Outcome([], c, STATUS_REFUSED) for c in fresh.values()]
        elif self.direction in _FULL_MODES:
            outcomes += self._plan_full(fresh)
        else:
            outcomes += self._plan_fast(fresh)
            if self.direction is Direction.FROM_REMOTE:
                for outcome in outcomes:
                    self._defer_remote_writes(outcome)
        for outcome in outcomes:
            if outcome.change is not None:
                self._session[outcome.change.remote_id] = outcome
            self._touched.update(_row_ids(outcome.actions))
        return outcomes

    def _plan_fast(self, changes: Mapping[str, RemoteChange]) -> list[_Outcome]:
        """TWO_WAY / FROM_REMOTE: remote changes."""
        unknown = [
            c
            for c in changes.values()
            if c.remote_id not in self._by_remote and c.kind is not ChangeKind.DELETE
        ]
        pairs = self._match(unknown)
        outcomes: list[_Outcome] = []
        for change in changes.values():
            local_id = self._by_remote.get(change.remote_id)
            if local_id is not None:
                outcomes.append(self._known_pair(local_id, change))
            elif change.kind is ChangeKind.DELETE:
                outcomes.append(_Outcome([], change, StatusCode.ITEM_NOT_DELETED))
            elif change.remote_id in pairs:
                actions = self._pair_matched(pairs[change.remote_id], change)
                outcomes.append(_Outcome(actions, change, StatusCode.ITEM_ADDED))
            else:
                add: list[Action] = [LocalAdd(change.remote_id, _data(change))]
                outcomes.append(_Outcome(add, change, StatusCode.ITEM_ADDED))
        return outcomes

    def _known_pair(self, local_id: str, change: RemoteChange) -> _Outcome:
        """A remote change of an item both sides know (fast modes)."""
        row = self._known[local_id]
        rid = change.remote_id
        policy = self.policy
        if change.kind is ChangeKind.DELETE:
            if local_id in self._deleted:
                return _Outcome([Forget(local_id)], change, StatusCode.OK)
            view = self._view(local_id)
            if view.digest == row.digest:
                return _Outcome([LocalDelete(local_id, view.etag)], change, StatusCode.OK)
            kind = ConflictKind.REMOTE_DELETED
            if policy is Policy.PHONE_WINS:
                return _Outcome(
                    [
                        Conflict(local_id, rid, policy, Resolution.REMOTE_WON, kind),
                        LocalDelete(local_id, view.etag),
                    ],
                    change,
                    StatusCode.CONFLICT_RESOLVED_WITH_CLIENT_WINNING,
                )
            return _Outcome(
                [Conflict(local_id, rid, policy, Resolution.LOCAL_WON, kind), RemoteAdd(local_id)],
                change,
                StatusCode.CONFLICT_RESOLVED_WITH_SERVER_DATA,
            )
        if local_id in self._deleted:
            kind = ConflictKind.LOCAL_DELETED
            if _same(change.digest, row.digest):
                # The peer re-sent what we agreed on (a retried command): our deletion stands.
                return _Outcome([RemoteDelete(local_id, rid)], change, _plain_status(change))
            if policy is Policy.DESKTOP_WINS:
                return _Outcome(
                    [
                        Conflict(local_id, rid, policy, Resolution.LOCAL_WON, kind),
                        RemoteDelete(local_id, rid),
                    ],
                    change,
                    StatusCode.CONFLICT_RESOLVED_WITH_SERVER_DATA,
                )
            return _Outcome(
                [
                    Conflict(local_id, rid, policy, Resolution.REMOTE_WON, kind),
                    Forget(local_id),
                    LocalAdd(rid, _data(change)),
                ],
                change,
                StatusCode.CONFLICT_RESOLVED_WITH_CLIENT_WINNING,
            )
        actions, status = self._pair(self._view(local_id), row.digest, change, matched=False)
        return _Outcome(actions, change, status if status is not None else _plain_status(change))

    def _defer_remote_writes(self, outcome: _Outcome) -> None:
        """FROM_REMOTE: keep the local half of an outcome, defer the peer's half."""
        kept: list[Action] = []
        for action in outcome.actions:
            if isinstance(action, RemoteReplace):
                # Record what the peer holds: the next sync sees our side as changed.
                digest = outcome.change.digest if outcome.change is not None else None
                kept.append(Link(action.local_id, action.remote_id, digest or ""))
            elif isinstance(action, RemoteAdd):
                # Sent as a new item by the next two-way sync.
                if action.local_id in self._known:
                    kept.append(Forget(action.local_id))
            elif not isinstance(action, RemoteDelete):
                # A dropped RemoteDelete keeps the row: the deletion is sent next time.
                kept.append(action)
        outcome.actions = kept

    def _plan_full(self, changes: Mapping[str, RemoteChange]) -> list[_Outcome]:
        """SLOW / REFRESH_FROM_REMOTE: the peer sends all of its items."""
        items = [c for c in changes.values() if c.kind is not ChangeKind.DELETE]
        pairs = self._match(items)
        refresh = self.direction is Direction.REFRESH_FROM_REMOTE
        outcomes: list[_Outcome] = []
        for change in changes.values():
            if change.kind is ChangeKind.DELETE:
                # Neither mode infers or accepts deletions: what is not sent is what is gone.
                outcomes.append(_Outcome([], change, StatusCode.ITEM_NOT_DELETED))
                continue
            view = pairs.get(change.remote_id)
            actions: list[Action]
            if view is None:
                actions = [LocalAdd(change.remote_id, _data(change))]
                outcomes.append(_Outcome(actions, change, StatusCode.ITEM_ADDED))
                continue
            if not refresh:
                actions = self._pair_matched(view, change)
            elif _same(change.digest, view.digest):
                actions = [Link(view.local_id, change.remote_id)]
            else:
                actions = [LocalReplace(view.local_id, change.remote_id, _data(change), view.etag)]
            outcomes.append(_Outcome(actions, change, _plain_status(change)))
        return outcomes

    def _plan_finish(self) -> list[_Outcome]:
        """Our side's changes, once all remote changes are in."""
        outcomes: list[_Outcome] = []
        direction = self.direction
        if direction is Direction.FROM_REMOTE:
            pass
        elif direction is Direction.REFRESH_FROM_LOCAL:
            outcomes += self._forget_vanished()
            outcomes += [_Outcome([RemoteAdd(local_id)]) for local_id in self.local]
        elif direction is Direction.SLOW:
            outcomes += [_Outcome([RemoteAdd(local_id)]) for local_id in self._matcher.free]
            outcomes += self._forget_vanished()
        elif direction is Direction.REFRESH_FROM_REMOTE:
            for local_id, view in self._matcher.free.items():
                delete: list[Action] = [LocalDelete(local_id, view.etag)]
                outcomes.append(_Outcome(delete, orphan=local_id))
            outcomes += self._forget_vanished()
        else:
            for local_id in self._changes.deleted:
                if local_id in self._touched:
                    continue
                rid = self._known[local_id].remote_id
                gone: Action = Forget(local_id) if rid is None else RemoteDelete(local_id, rid)
                outcomes.append(_Outcome([gone]))
            for local_id in self._changes.modified:
                rid = self._known[local_id].remote_id
                if local_id not in self._touched and rid is not None:
                    outcomes.append(_Outcome([RemoteReplace(local_id, rid, None)]))
            outcomes += [_Outcome([RemoteAdd(local_id)]) for local_id in self._matcher.free]
        for outcome in outcomes:
            self._touched.update(_row_ids(outcome.actions))
        return outcomes

    def _forget_vanished(self) -> list[_Outcome]:
        return [_Outcome([Forget(i)]) for i in self._known if i not in self.local]

    def _etag_updates(self) -> list[_Outcome]:
        """Refresh the etag of rows no action of the session rewrites."""
        if self.direction in _FULL_MODES:
            return []
        return [
            _Outcome([UpdateEtag(local_id, etag)])
            for local_id, etag in self._changes.refreshed.items()
            if local_id not in self._touched
        ]

    # -- the guard -----------------------------------------------------------------

    def _count(self, outcomes: Iterable[_Outcome]) -> None:
        for outcome in outcomes:
            for action in outcome.actions:
                if isinstance(action, LocalDelete):
                    self._local_deletes += 1
                    self._orphan_deletes += outcome.orphan is not None
                elif isinstance(action, RemoteDelete):
                    self._remote_deletes += 1

    def _trip(self) -> GuardTrip | None:
        """Check the deletions counted so far; every rule only grows with them."""
        guard = self.guard
        local_count = self._local_count
        local_deletes, remote_deletes = self._local_deletes, self._remote_deletes
        remote_size = len(self._by_remote)
        reasons: list[str] = []
        if not guard.allow_empty:
            if local_count == 0 and self._known and self.direction in _SENDING_MODES:
                # vdirsyncer's StorageEmpty: an unmounted or wiped store looks
                # exactly like "the user deleted everything".
                reasons.append(
                    f"the local store is empty but {len(self._known)} items were synced before"
                )
            else:
                if local_deletes and local_deletes >= local_count:
                    reasons.append(f"all {local_count} local items would be deleted")
                if remote_deletes and remote_deletes >= remote_size:
                    reasons.append(f"all {remote_size} items on the peer would be deleted")
        share = guard.max_delete_share
        counted = local_deletes - (self._orphan_deletes if guard.allow_refresh_deletes else 0)
        if local_count >= guard.min_items and counted > share * local_count:
            reasons.append(
                f"{counted} of {local_count} local items would be deleted (limit {share:.0%})"
            )
        if remote_size >= guard.min_items and remote_deletes > share * remote_size:
            reasons.append(
                f"{remote_deletes} of {remote_size} items on the peer would be deleted "
                f"(limit {share:.0%})"
            )
        if self._orphan_deletes and not guard.allow_refresh_deletes:
            reasons.append(
                f"a refresh from the peer would delete {self._orphan_deletes} local items "
                "it did not send"
            )
        if not reasons:
            return None
        return GuardTrip("; ".join(reasons), local_deletes, remote_deletes)

    def _withhold(self, outcomes: Iterable[_Outcome], *, acknowledged: bool) -> tuple[str, ...]:
        """Strip every outcome with a deletion; returns the remote ids answered before."""
        answered: list[str] = []
        for outcome in outcomes:
            if not outcome.deletes():
                continue
            if outcome.orphan is not None:
                # Its remote id is gone with the refresh: the item goes back as new.
                row_kept = outcome.orphan in self._known
                outcome.actions = [Forget(outcome.orphan)] if row_kept else []
            elif outcome.change is not None and acknowledged:
                # The peer was told it worked and dropped its copy: ours goes back as new.
                outcome.actions = [
                    Forget(a.local_id) for a in outcome.actions if isinstance(a, LocalDelete)
                ]
                outcome.status = STATUS_WITHHELD
                answered.append(outcome.change.remote_id)
            else:
                outcome.actions = []
                if outcome.change is not None:
                    outcome.status = STATUS_WITHHELD
        return tuple(answered)


_FULL_MODES: Final = frozenset(
    {Direction.SLOW, Direction.REFRESH_FROM_REMOTE, Direction.REFRESH_FROM_LOCAL}
)
#: The modes in which an emptied local store would propagate to the peer.
_SENDING_MODES: Final = frozenset(
    {Direction.TWO_WAY, Direction.FROM_LOCAL, Direction.REFRESH_FROM_LOCAL}
)


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A local item as a decision sees it; ``data``/``uid`` are None when not loaded."""

    local_id: str
    etag: str
    digest: str
    uid: str | None
    data: str | None

    @staticmethod
    def of(item: LocalItem) -> _Candidate:
        return _Candidate(item.local_id, item.etag, item.digest, _uid(item.uid), item.data)


@dataclass(slots=True, eq=False)
class _Outcome:
    """The actions for one item, and the status of the remote command behind them."""

    actions: list[Action]
    change: RemoteChange | None = None
    status: int | None = None
    #: Set for a LocalDelete that only a refresh from the peer asked for.
    orphan: str | None = None

    def deletes(self) -> bool:
        return any(isinstance(a, _DELETES) for a in self.actions)


def _collapse(changes: Iterable[RemoteChange]) -> dict[str, RemoteChange]:
    """One change per remote id, the last one, in the order of the last ones."""
    out: dict[str, RemoteChange] = {}
    for change in changes:
        out.pop(change.remote_id, None)
        out[change.remote_id] = change
    return out


def _ordered(outcomes: Iterable[_Outcome]) -> tuple[Action, ...]:
    """Flatten, items with a deletion first (frees names and device memory)."""
    items = list(outcomes)
    first = [o for o in items if o.deletes()]
    rest = [o for o in items if not o.deletes()]
    return tuple(a for o in (*first, *rest) for a in o.actions)


def _statuses(outcomes: Iterable[_Outcome]) -> dict[str, int]:
    return {
        o.change.remote_id: int(o.status)
        for o in outcomes
        if o.change is not None and o.status is not None
    }


def _row_ids(actions: Iterable[Action]) -> set[str]:
    return {a.local_id for a in actions if not isinstance(a, LocalAdd | Conflict)}


def _plain_status(change: RemoteChange) -> int:
    return StatusCode.ITEM_ADDED if change.kind is ChangeKind.ADD else StatusCode.OK


def _data(change: RemoteChange) -> str:
    if change.data is None:  # pragma: no cover - RemoteChange refuses this
        raise DecisionError(f"{change.kind.value} of {change.remote_id!r} carries no data")
    return change.data


def _uid(value: str | None) -> str | None:
    return value or None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and a == b


def _uids_compatible(candidate: _Candidate, change: RemoteChange) -> bool:
    theirs = _uid(change.uid)
    return candidate.uid is None or theirs is None or candidate.uid == theirs


def _sets_row(action: Action, local_id: str) -> bool:
    return isinstance(action, _ROW_SETTERS) and action.local_id == local_id


class _Matcher:
    """Pairs remote items with local items not yet paired, by several keys, in O(n).

    Buckets hold local ids in input order; paired ids are skipped (and
    dropped from the front of a bucket) when met.
    """

    def __init__(self, candidates: Iterable[_Candidate], known: Mapping[str, ItemState]) -> None:
        self.free: dict[str, _Candidate] = {}
        self._digest: dict[str, deque[str]] = {}
        self._uid: dict[str, deque[str]] = {}
        self._base: dict[str, deque[str]] = {}
        self._rid: dict[str, str] = {}
        self._known = known
        for c in candidates:
            self.free[c.local_id] = c
            self._digest.setdefault(c.digest, deque()).append(c.local_id)
            if c.uid is not None:
                self._uid.setdefault(c.uid, deque()).append(c.local_id)
            row = known.get(c.local_id)
            if row is not None:
                self._base.setdefault(row.digest, deque()).append(c.local_id)
                if row.remote_id is not None:
                    self._rid[row.remote_id] = c.local_id

    def take(self, local_id: str) -> _Candidate:
        return self.free.pop(local_id)

    def _pick(
        self,
        bucket: deque[str] | None,
        change: RemoteChange,
        accept: Callable[[str], bool],
        prefer: Callable[[_Candidate], bool],
    ) -> str | None:
        if not bucket:
            return None
        while bucket and bucket[0] not in self.free:
            bucket.popleft()
        fallback: str | None = None
        for local_id in bucket:
            c = self.free.get(local_id)
            if c is None or not _uids_compatible(c, change) or not accept(local_id):
                continue
            if prefer(c):
                return local_id
            if fallback is None:
                fallback = local_id
        return fallback

    def _mapped_to(self, local_id: str, change: RemoteChange) -> bool:
        row = self._known.get(local_id)
        return row is not None and row.remote_id == change.remote_id

    def exact(self, change: RemoteChange) -> str | None:
        """A free item with equal content (same UID, then the same row, preferred)."""
        if change.digest is None:
            return None
        uid = _uid(change.uid)
        return self._pick(
            self._digest.get(change.digest),
            change,
            lambda _i: True,
            lambda c: (uid is not None and c.uid == uid) or self._mapped_to(c.local_id, change),
        )

    def uid(self, change: RemoteChange) -> str | None:
        """A free item with the same non-empty UID (its own row preferred)."""
        uid = _uid(change.uid)
        if uid is None:
            return None
        return self._pick(
            self._uid.get(uid),
            change,
            lambda _i: True,
            lambda c: self._mapped_to(c.local_id, change),
        )

    def base(self, change: RemoteChange) -> str | None:
        """A free item whose row says the peer's item still holds what we agreed on."""
        if change.digest is None:
            return None

        def unmapped_or_same(local_id: str) -> bool:
            rid = self._known[local_id].remote_id
            return rid is None or rid == change.remote_id

        return self._pick(
            self._base.get(change.digest),
            change,
            unmapped_or_same,
            lambda c: self._mapped_to(c.local_id, change),
        )

    def known_id(self, change: RemoteChange) -> str | None:
        """The free item whose row carries the change's remote id (compatible UID)."""
        local_id = self._rid.get(change.remote_id)
        if local_id is None:
            return None
        c = self.free.get(local_id)
        if c is None or not _uids_compatible(c, change):
            return None
        return local_id
