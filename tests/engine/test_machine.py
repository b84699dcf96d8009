"""A Hypothesis state machine over the whole engine: our client and our server.

vdirsyncer's ``SyncMachine`` pattern on the in-process :class:`~tests.engine.pair.Pair`:
random edits on both stores, random sessions (every mode, connections cut
after any message, lost state databases, XML and WBXML, SyncML 1.1 and 1.2,
small MaxMsgSize on either side), and after every session the properties
users care about (``docs/pim.md`` section 4): no duplicates, no lost edit, no
deletion nobody asked for, convergence, no churn, and a tripped mass-deletion
guard deletes nothing.

The model
---------
Items are vCards with a UID; one UID is one item.  Texts are compared
normalized (CRLF folded, outer blanks stripped).  For every UID the machine
keeps its *heads*: the versions users wrote that nobody has superseded yet,
plus a :class:`Tomb` for each deletion nobody has superseded.  An edit on one
side replaces, in the heads, the version that side held; a deletion replaces
it with a tomb.  Two heads mean "both sides changed the item since they last
agreed" (a conflict: either version may win under ``Policy.MERGE``); a head
and a tomb mean "edited on one side, deleted on the other" (the edit must
win).  The same item entered on both sides with different content gives two
*twin* heads: once paired they are one item, and deleting it may take both.

The plain codec never invents content (its merge is "the peer's version"),
so every session is checked item by item against the heads:

* every message fits the receiver's MaxMsgSize; no side holds one UID twice;
  no text appears that no side held before the session;
* a side loses an item only if somebody deleted it and its version there is
  not an edit (a twin may go);
* a side gains an item only as a head, or, where a deletion may be undone
  ("soft": a slow sync or refresh ran, the guard tripped, or the deletion
  hit an item the two states had not paired yet), as any version;
* a head is overwritten only by another head, and some live head of every
  UID survives a session;
* a tripped guard deleted nothing on the side it protects;
* a session that was not cut and tripped no guard succeeds, and both sides
  then report the same mode.

After a complete two-way, slow or refresh session without a guard trip,
both stores hold the same texts, each UID's text is one of its heads (absent
when only tombs are left), and a second two-way sync right away changes no
etag; the heads then collapse to that value.

Exemptions, each what a user asked for or what no SyncML engine can know:
a refresh replaces the target side's data; when the server's state does not
pair its item with the client's (first sync, lost server state, a session
cut before anything was committed), a differing item is a conflict to the
server and the client's version wins even over a newer server edit; and in
a slow sync the server cannot tell the echo of its own change (which reached
the client in a session cut before the client's answer) from a client edit.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar
from unittest import mock

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from syncmld.engine.items import PlainCodec
from syncmld.engine.server import ServerSession
from syncmld.engine.session import Event, GuardTripped, Reply, StoreStarted
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.protocol.codec import Encoding
from syncmld.protocol.codes import SyncMode

from . import pair as pair_module
from .pair import Outcome, Pair

SIDES = ("client", "server")
#: Alert codes of the modes in which every item travels (slow sync, refreshes).
FULL_MODES = frozenset({201, 203, 205})
#: Modes after which both sides hold the same items: two-way, slow, refreshes.
CONVERGING_MODES = frozenset({200, 201, 203, 205})
#: The stores' content hash (the plain codec's).
DIGEST = PlainCodec(VCARD_30).digest

# Two-way most of the time; sampled_from shrinks towards the first entry.
MODES = st.sampled_from(
    [
        SyncMode.TWO_WAY,
        SyncMode.TWO_WAY,
        SyncMode.TWO_WAY,
        SyncMode.TWO_WAY,
        SyncMode.SLOW,
        SyncMode.ONE_WAY_FROM_CLIENT,
        SyncMode.ONE_WAY_FROM_SERVER,
        SyncMode.REFRESH_FROM_CLIENT,
        SyncMode.REFRESH_FROM_SERVER,
    ]
)
# Letters, a few non-ASCII ones (2-, 3- and 4-byte UTF-8) and XML's special characters.
NAMES = st.text(alphabet="abcdeklmnoxyzÄöüßéжЖ漢😀 &<>'", min_size=1, max_size=8).map(
    lambda s: s.strip() or "x"
)
PHONES = st.integers(0, 99_999).map(lambda n: f"+49151{n:05d}")
FIELDS = st.one_of(
    st.tuples(st.just("N"), NAMES),
    st.tuples(st.just("TEL;TYPE=CELL"), PHONES),
    st.tuples(st.just("EMAIL"), NAMES.map(lambda s: f"{s}@example.org")),
    # Now and then a note long enough to travel as a large object.
    st.tuples(st.just("NOTE"), st.builds(lambda s, n: s * n, NAMES, st.sampled_from([1, 400]))),
)


@dataclass(frozen=True)
class Tomb:
    """A deletion by a user (unique, so that two deletions are two heads)."""

    serial: int


Version = str | Tomb


def card(uid: str, name: str, phone: str) -> str:
    """A small vCard 3.0."""
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:{uid}\r\nN:{name};;;;\r\nFN:{name}\r\nTEL;TYPE=CELL:{phone}\r\nEND:VCARD\r\n"
    )


def with_field(text: str, prop: str, value: str) -> str:
    """``text`` with property ``prop`` set to ``value`` (``N`` also sets ``FN``)."""
    lines = text.replace("\r\n", "\n").strip().split("\n")
    sets = {prop: value} if prop != "N" else {"N": f"{value};;;;", "FN": value}
    for key, val in sets.items():
        new = f"{key}:{val}"
        for i, line in enumerate(lines):
            if line.startswith((key + ":", key + ";")) and line.split(":", 1)[0] == key:
                lines[i] = new
                break
        else:
            lines.insert(len(lines) - 1, new)
    return "\r\n".join(lines) + "\r\n"


def norm(text: str) -> str:
    """The text as compared: CRLF folded, outer blanks stripped."""
    return text.replace("\r\n", "\n").strip()


def uid_of(text: str) -> str:
    for line in norm(text).split("\n"):
        if line.startswith("UID:"):
            return line[4:]
    raise AssertionError(f"an item without UID: {text!r}")


def events_of(out: Outcome) -> tuple[list[Event], list[Event]]:
    return out.client_events, out.server_events


class RecordingServer(ServerSession):
    """A server session that keeps the size of every answer."""

    sizes: ClassVar[list[int]] = []

    def receive(self, data: bytes) -> Reply:
        reply = super().receive(data)
        RecordingServer.sizes.append(len(reply.data))
        return reply


class EngineMachine(RuleBasedStateMachine):
    """Two stores, our client and our server, and a model of what users did."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair()
        #: UID -> the versions nobody has superseded (see the module docstring).
        self.heads: dict[str, set[Version]] = {}
        #: UIDs whose tombs a slow sync, a refresh or the guard may undo.
        self.soft: set[str] = set()
        #: UID -> the two versions of an item entered on both sides at once:
        #: once the engine paired them they are one item, and deleting it
        #: on one side may delete the other version (it was never edited).
        self.twins: dict[str, set[str]] = {}
        #: UID -> head text -> the sides whose users wrote it (not a sync):
        #: a text both wrote independently stays the other side's head when
        #: one of them edits it.
        self.writers: dict[str, dict[str, set[str]]] = {}
        self._uids = itertools.count(1)
        self._tombs = itertools.count(1)

    # -- looking at the stores -------------------------------------------------
    def store(self, side: str) -> MemoryStore:
        return self.pair.client_store if side == "client" else self.pair.server_store

    def holdings(self, side: str) -> dict[str, str]:
        """UID -> normalized text; fails on two items with one UID."""
        out: dict[str, str] = {}
        for text in self.store(side).values():
            uid = uid_of(text)
            assert uid not in out, f"duplicate UID {uid} on the {side} side: {out[uid]!r} {text!r}"
            out[uid] = norm(text)
        return out

    def item(self, side: str, pick: int) -> tuple[str, str] | None:
        """The local id and text of some item of ``side``, or None when it is empty."""
        ids = sorted(i for i, _ in self.store(side).list())
        if not ids:
            return None
        item_id = ids[pick % len(ids)]
        return item_id, self.store(side).get(item_id)[0]

    # -- user actions ----------------------------------------------------------
    @rule(side=st.sampled_from(SIDES), name=NAMES, phone=PHONES)
    def add(self, side: str, name: str, phone: str) -> None:
        uid = f"m{next(self._uids)}"
        text = card(uid, name, phone)
        self.store(side).add(text)
        self.heads[uid] = set()
        self.wrote(uid, side, norm(text))

    @rule(name=NAMES, phone=PHONES, other=st.one_of(st.none(), NAMES))
    def add_on_both_sides(self, name: str, phone: str, other: str | None) -> None:
        """The same item entered on the phone and on the desktop (other: a different name)."""
        uid = f"m{next(self._uids)}"
        first = card(uid, name, phone)
        second = card(uid, other, phone) if other is not None else first
        self.pair.client_store.add(first)
        self.pair.server_store.add(second)
        self.heads[uid] = set()
        self.wrote(uid, "client", norm(first))
        self.wrote(uid, "server", norm(second))
        self.twins[uid] = {norm(first), norm(second)}

    @rule(side=st.sampled_from(SIDES), pick=st.integers(0, 1000), change=FIELDS)
    def edit(self, side: str, pick: int, change: tuple[str, str]) -> None:
        found = self.item(side, pick)
        if found is None:
            return
        item_id, old = found
        new = with_field(old, *change)
        self.store(side).edit(item_id, new)
        self.supersede(uid_of(old), side, norm(old))
        self.wrote(uid_of(old), side, norm(new))

    @rule(side=st.sampled_from(SIDES), pick=st.integers(0, 1000))
    def delete(self, side: str, pick: int) -> None:
        found = self.item(side, pick)
        if found is None:
            return
        item_id, old = found
        uid = uid_of(old)
        if uid not in self.paired():
            # The two sides never both recorded the item: this deletion is
            # news to nobody, and a copy the other side holds may come back.
            self.soft.add(uid)
        self.store(side).delete(item_id, etag=None)
        self.supersede(uid, side, norm(old))
        self.heads[uid].add(Tomb(next(self._tombs)))

    def wrote(self, uid: str, side: str, text: str) -> None:
        self.heads.setdefault(uid, set()).add(text)
        self.writers.setdefault(uid, {}).setdefault(text, set()).add(side)

    def supersede(self, uid: str, side: str, old: str) -> None:
        """The user of ``side`` replaced ``old``: it is no head, unless the other wrote it too."""
        writers = self.writers.setdefault(uid, {}).get(old, set())
        if side in writers and writers - {side}:
            writers.discard(side)
            return
        self.heads.setdefault(uid, set()).discard(old)
        self.writers[uid].pop(old, None)

    # -- the environment -------------------------------------------------------
    @rule(side=st.sampled_from(SIDES))
    def lose_state(self, side: str) -> None:
        """The state database is gone (deleted, restored from an old backup, ...)."""
        if side == "client":
            self.pair.client_state = None
        else:
            self.pair.server_states.clear()

    @rule(encoding=st.sampled_from(Encoding), version=st.sampled_from(["1.2", "1.1"]))
    def flavour(self, encoding: Encoding, version: str) -> None:
        self.pair.encoding = encoding
        self.pair.version = version

    @rule(
        client=st.sampled_from([1_000_000, 2500, 4000]),
        server=st.sampled_from([1_000_000, 3000]),
    )
    def max_msg_size(self, client: int, server: int) -> None:
        self.pair.client_max_msg = client
        self.pair.server_max_msg = server

    # -- sessions --------------------------------------------------------------
    @rule(mode=MODES)
    def sync(self, mode: SyncMode) -> None:
        self.session(mode, None)

    @rule(mode=MODES, cut=st.integers(1, 14))
    def sync_cut_off(self, mode: SyncMode, cut: int) -> None:
        """The connection drops after ``cut`` messages (the next sync must repair)."""
        self.session(mode, cut)

    def session(self, mode: SyncMode, cut: int | None) -> None:
        pre = {side: self.holdings(side) for side in SIDES}
        based = self.server_bases()
        sent: list[int] = []

        def record(_n: int, data: bytes) -> bytes:
            sent.append(len(data))
            return data

        RecordingServer.sizes = []
        with mock.patch.object(pair_module, "ServerSession", RecordingServer):
            out = self.pair.sync(mode, cut_after=cut, tamper=record)
        # Every message fits the receiver's MaxMsgSize.
        assert max(sent) <= self.pair.server_max_msg, sent
        assert max(RecordingServer.sizes, default=0) <= self.pair.client_max_msg, (
            RecordingServer.sizes
        )
        post = {side: self.holdings(side) for side in SIDES}  # no duplicates
        cevents, sevents = events_of(out)
        modes = {e.mode for e in (*cevents, *sevents) if isinstance(e, StoreStarted)}
        ctrip = any(isinstance(e, GuardTripped) for e in cevents)
        strip = any(isinstance(e, GuardTripped) for e in sevents)
        if cut is None and not (ctrip or strip):
            assert out.ok, (out.client.run, out.server and out.server.run)
        if out.ok:
            cmode = out.client.run.stores[0].mode
            assert out.server is not None
            assert cmode == out.server.run.stores[0].mode, (out.client.run, out.server.run)

        # A tripped guard deletes nothing (the client's wipe for a refresh it
        # asked for is not the guard's business).
        refresh_client = 205 in modes
        if ctrip or strip:
            for side in ("client", "server") if strip else ("client",):
                if side == "client" and refresh_client:
                    continue
                lost = set(pre[side]) - set(post[side])
                assert not lost, f"guard tripped but {side} lost {sorted(lost)}"

        # A refresh replaces the target side's data: the user asked for it.
        consent = {"client": refresh_client, "server": 203 in modes}
        if modes & FULL_MODES or ctrip or strip:
            self.soft |= {u for u, h in self.heads.items() if any(isinstance(v, Tomb) for v in h)}
        for uid in sorted(set(self.heads) | set(pre["client"]) | set(pre["server"])):
            self.check_item(uid, pre, post, consent=consent, based=based, slow=201 in modes)

        event(f"session {'complete' if out.ok else 'broken'}, modes {sorted(modes)}")
        if ctrip or strip:
            event(f"guard tripped on the {'server' if strip else 'client'}")
        if out.messages > 8:
            event("multi-message package")
        if out.ok and modes <= CONVERGING_MODES and not (ctrip or strip):
            event("converged and churn checked")
            self.check_converged(post)

    def rows(self, side: str) -> dict[str, str | None]:
        """The committed state of ``side``: local id -> the peer's id."""
        if side == "client":
            peer = self.pair.client_state
            name = "card"
        else:
            peer = self.pair.server_states.get("device-1")
            name = "contacts"
        pair = peer.pairs.get(name) if peer is not None else None
        return {k: v.remote_id for k, v in pair.items.items()} if pair is not None else {}

    def server_bases(self) -> dict[str, str]:
        """UID -> digest of the server's row, where it pairs its item with the client's.

        Only for those can the server tell which side changed an item that
        differs; for the others both versions are new to it, and the plain
        codec's merge keeps the client's.
        """
        ids: dict[str, dict[str, str]] = {}
        for side in SIDES:
            store = self.store(side)
            ids[side] = {uid_of(store.get(i)[0]): i for i, _ in store.list()}
        peer = self.pair.server_states.get("device-1")
        pair = peer.pairs.get("contacts") if peer is not None else None
        rows = pair.items if pair is not None else {}
        return {
            uid: rows[sid].digest
            for uid, sid in ids["server"].items()
            if uid in ids["client"] and sid in rows and rows[sid].remote_id == ids["client"][uid]
        }

    def paired(self) -> set[str]:
        """UIDs both sides' states record as one item (server row -> client row)."""
        client_rows = self.rows("client")
        return {uid for uid in self.server_bases() if self.client_id(uid) in client_rows}

    def client_id(self, uid: str) -> str | None:
        store = self.pair.client_store
        return next((i for i, _ in store.list() if uid_of(store.get(i)[0]) == uid), None)

    def check_item(
        self,
        uid: str,
        pre: dict[str, dict[str, str]],
        post: dict[str, dict[str, str]],
        *,
        consent: dict[str, bool],
        based: dict[str, str],
        slow: bool,
    ) -> None:
        heads = self.heads.get(uid, set())
        live = {v for v in heads if isinstance(v, str)}
        tombs = heads - live
        before = {pre[s][uid] for s in SIDES if uid in pre[s]}
        after = {post[s][uid] for s in SIDES if uid in post[s]}
        assert after <= before, f"{uid}: content nobody wrote: {after - before}"
        resurrected: set[str] = set()
        overruled = False
        for side in SIDES:
            x, y = pre[side].get(uid), post[side].get(uid)
            if x == y:
                continue
            if x is None:
                assert y is not None
                if y in live:
                    continue
                if tombs and uid in self.soft:
                    resurrected.add(y)
                    continue
                assert consent[side], f"{uid} came back on the {side} side: {y!r}"
            elif consent[side]:
                overruled = True
            elif y is None:
                assert tombs, f"{uid} deleted on the {side} side, nobody deleted it"
                edited = x in live and x not in self.twins.get(uid, set())
                assert not edited, f"{uid} deleted on the {side} side over an edit: {x!r}"
            elif x in live and y not in live:
                # Without the server's base, or in a slow sync whose client
                # version differs from it (the echo of a change the client got
                # in a session that broke off before acknowledging it), the
                # server sees a conflict, and the client's version wins.
                no_base = (
                    side == "server"
                    and y == pre["client"].get(uid)
                    and (uid not in based or (slow and DIGEST(y) != based[uid]))
                )
                assert no_base, f"{uid}: edit {x!r} overwritten by old {y!r}"
                overruled = True
        kept = (live & after) | resurrected
        deleted = tombs and not live - self.twins.get(uid, set())
        if live and not kept and not deleted:
            assert overruled, f"{uid}: every edit lost: {live}, left: {after}"
            kept = set(after)
        if resurrected:
            tombs = set()
        elif live and not kept:
            tombs = {Tomb(next(self._tombs))}  # a refresh removed it everywhere
        self.heads[uid] = set[Version](kept) | tombs
        writers = self.writers.setdefault(uid, {})
        for text in set(writers) - kept:
            del writers[text]
        if not self.heads[uid]:
            del self.heads[uid]

    def check_converged(self, post: dict[str, dict[str, str]]) -> None:
        """A complete two-way session: one truth on both sides, and no churn."""
        assert post["client"] == post["server"], "the two sides differ after a complete sync"
        for uid in sorted(set(self.heads) | set(post["client"])):
            heads = self.heads.get(uid, set())
            live = {v for v in heads if isinstance(v, str)}
            final = post["client"].get(uid)
            if final is None:
                assert not live, f"{uid} is gone though {live} were never deleted"
                self.heads.pop(uid, None)
                self.soft.discard(uid)
                self.twins.pop(uid, None)
                self.writers.pop(uid, None)
                continue
            assert final in live, f"{uid}: {final!r} is not one of {heads}"
            self.heads[uid] = {final}
            self.soft.discard(uid)
            self.twins.pop(uid, None)
            self.writers.pop(uid, None)  # agreed: whoever edits it next supersedes it
        listings = (self.pair.client_store.list(), self.pair.server_store.list())
        again = self.pair.sync(SyncMode.TWO_WAY)
        assert again.ok, (again.client.run, again.server and again.server.run)
        assert again.client.run.stores[0].mode == 200, "a slow sync after a complete one"
        assert (self.pair.client_store.list(), self.pair.server_store.list()) == listings, (
            "a second sync changed items"
        )


# A machine example runs a few dozen sessions (5-15 ms each, a second sync
# after every complete one): half the profile's examples, 50 steps each, is
# about 20 s on ``ci`` (150 examples) and 3 s on ``dev`` (25).
EngineMachine.TestCase.settings = settings(
    max_examples=max(settings().max_examples // 2, 5),
    stateful_step_count=50,
    suppress_health_check=[HealthCheck.too_slow],
)
test_engine_machine = EngineMachine.TestCase
