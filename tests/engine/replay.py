"""Replaying recorded sessions of real SyncML clients against our server.

Theory of operation
-------------------
A recording holds what a real client sent and what *another* server (Horde,
SyncEvolution's) answered.  The client's messages were written against that
server's answers, so fed verbatim to :class:`~syncmld.engine.server.ServerSession`
they refer to commands we never sent.  :class:`Replayer` keeps what the
client *meant* -- its own commands (Alert, Put, Get, Results, Sync with its
Adds, Replaces and Deletes, Map) and its answers (the status codes it gave)
-- and rewrites the protocol bookkeeping so that the dialogue is coherent
with *our* answers.  Every rewrite is one of these (and is written to
:attr:`SyncReplay.notes`):

* **Statuses** are rebuilt for exactly the commands of our previous reply,
  in their order, with our MsgID/CmdID.  For each of our commands the
  *counterpart* in the recorded server messages is looked up (the sync Alert
  for the same database, the Results, the Sync for the same database, the
  Add with the same content, the Replace/Delete of the same client id) and
  the code the client recorded for it is used, with its refs rewritten to
  ours (Add: our server id instead of the recorded one; Alert: our ``Next``
  anchor in the echo), whichever recorded message it was in (Funambol
  answers Horde's Adds one message later than ours arrive).  Statuses for
  recorded commands we did not send (Horde's Get for the DevInf) are
  dropped; our commands without a recorded counterpart (our Alert 222, a
  chunk of a large object) get a made-up status
  (:attr:`SyncReplay.synthesized`) -- the code a client gives them; an Add
  of ours the recorded client never saw is also mapped to a made-up id
  (``replay-N``), as the client would have done.  Items are "the same" when
  their texts are equal up to line ends and folding, or share a UID.
* **Map** items name the recorded server's ids; they are translated to the
  ids *we* sent in the matching Adds (by content), which for a peer with a
  small MaxGUIDSize are the temporary ``#1``...  An item whose Add we have
  not sent yet is held back to a later message.
* **Message flow**: when our package needs more messages than the recorded
  server's did, the client would have asked for the rest: a "pull" message
  (statuses plus Alert 222) is inserted.  Recorded pulls (Funambol sends
  Alert 222 after its Sync) are fed as they are.
* **Header**: MsgIDs are renumbered; after the first message the Target is
  our RespURI (or the first message's Target), not the recorded server's;
  an MD5 ``Cred`` is recomputed with the nonce *we* issued (the recorded
  one was made with the other server's nonce; the first session of a device
  uses the empty nonce, so its digest is unchanged).
* CmdIDs are renumbered after statuses were inserted or dropped.

A recorded client message whose CmdRefs do not name the recorded server's
commands (the Synthesis client in Horde's logs counts one short) is matched
by command name and item ids instead.  A folder where the client started a
new session (a new SessionID, as SyncEvolution does after a 401) is cut in
two by :func:`split_sessions`.

The client's own Alert anchors need no rewriting: ``Last`` is the client's
anchor (its ``Next`` of the previous session), which our server stored when
that session completed; only the server's anchors differ, and those only
appear in the client's Alert status echo, which is rewritten.

Before each recorded session, the *desktop side* is made to match what the
recorded server sent (:meth:`Replayer.seed`): items it Added that our store
lacks are added (by content), items it Replaced or Deleted (by the client's
id) are edited or removed -- the user's edits on the server between syncs.
Our server then sends the same changes, and the client's recorded answers
fit.  A per-device model of the client's items (:meth:`Replayer.client_items`)
follows both sides' commands (a slow sync or refresh from the client starts
it over from what the client sends, a refresh from the server from empty),
so a test can check that the store ends up holding what the client holds.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from syncmld.engine.common import item_text
from syncmld.engine.items import PlainCodec
from syncmld.engine.server import ServerConfig, ServerSession
from syncmld.engine.session import Event, SessionFinished
from syncmld.engine.state import PeerState
from syncmld.engine.store import TEXT_PLAIN, MemoryStore, ReadOnlyStore
from syncmld.protocol import auth
from syncmld.protocol.codec import Encoding, decode_message, encode_message, sniff
from syncmld.protocol.model import (
    Add,
    Alert,
    Anchor,
    Atomic,
    Command,
    Cred,
    Delete,
    Item,
    Location,
    Map,
    MapItem,
    Message,
    Replace,
    Results,
    Status,
    Sync,
    SyncHdr,
    command_name,
)
from syncmld.protocol.model import (
    Sequence as SequenceCmd,
)

NEXT_MESSAGE = 222
_UIDS = PlainCodec(TEXT_PLAIN)
_SYNC_ALERTS = range(200, 211)


# --- recordings ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedSync:
    """One recorded session: the client's messages and the recorded server's, in order."""

    name: str
    client: tuple[bytes, ...]
    server: tuple[bytes, ...]


_HORDE_FILE = re.compile(r"syncml_(client|server)_(\d)(\d+)\.xml$")


def load_horde(case: Path) -> list[RecordedSync]:
    """The sessions of a Horde test case (``syncml_client_NM.xml``: message M of sync N)."""
    found: dict[int, dict[str, dict[int, bytes]]] = {}
    for path in case.iterdir():
        m = _HORDE_FILE.match(path.name)
        if m is None:
            continue
        side, sync, msg = m.group(1), int(m.group(2)), int(m.group(3))
        found.setdefault(sync, {"client": {}, "server": {}})[side][msg] = path.read_bytes()
    return [
        RecordedSync(
            name=f"{case.name} sync {n}",
            client=tuple(v for _, v in sorted(found[n]["client"].items())),
            server=tuple(v for _, v in sorted(found[n]["server"].items())),
        )
        for n in sorted(found)
    ]


def split_sessions(recording: RecordedSync) -> list[RecordedSync]:
    """A recording cut where the client started a new session (a new SessionID).

    SyncEvolution starts over with a new SessionID after a 401, so one
    recorded folder can hold two server sessions.  The recorded server
    messages are assigned by their SessionID too.
    """

    def sid(raw: bytes) -> str:
        return decode_message(raw).header.session_id

    order: list[str] = []
    for raw in recording.client:
        if sid(raw) not in order:
            order.append(sid(raw))
    return [
        RecordedSync(
            name=f"{recording.name} session {s}",
            client=tuple(r for r in recording.client if sid(r) == s),
            server=tuple(r for r in recording.server if sid(r) == s),
        )
        for s in order
    ]


def load_folder(folder: Path) -> RecordedSync:
    """A SyncEvolution session folder (``NN-c2s.xml`` or ``NN-c2s.wbxml``, ``NN-s2c.*``)."""

    def side(tag: str) -> tuple[bytes, ...]:
        out: dict[int, bytes] = {}
        for path in sorted(folder.iterdir()):
            m = re.fullmatch(rf"(\d+)-{tag}\.(xml|wbxml)", path.name)
            if m is None:
                continue
            n = int(m.group(1))
            # The raw WBXML is what went over the wire; the .xml next to it
            # (if any) is a translation.
            if n not in out or m.group(2) == "wbxml":
                out[n] = path.read_bytes()
        return tuple(v for _, v in sorted(out.items()))

    return RecordedSync(name=folder.name, client=side("c2s"), server=side("s2c"))


# --- results ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exchange:
    """One message we were fed and our answer."""

    sent: Message
    data: bytes
    reply: Message
    reply_data: bytes
    #: ``Reply.done``: the session was over after this answer.
    done: bool
    inserted: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """Our status for one client command: ``alert`` is the Alert code, ``ref`` the item id."""

    cmd: str
    codes: tuple[int, ...]
    alert: int | None = None
    ref: str | None = None
    #: The item was a chunk of a large object with more to come (answered 213).
    more: bool = False


@dataclass
class SyncReplay:
    """What replaying one recorded session did."""

    name: str
    dev_id: str
    exchanges: list[Exchange] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    synthesized: list[str] = field(default_factory=list)
    unsent: int = 0
    finished: SessionFinished | None = None
    done: bool = False

    def answers(self) -> list[Answer]:
        """Our status codes for every command the client sent (the header as ``SyncHdr``)."""
        out: list[Answer] = []
        for ex in self.exchanges:
            ours = [c for c in ex.reply.commands if isinstance(c, Status)]
            msg_id = ex.sent.header.msg_id

            def codes(
                cmd_ref: int, ours: list[Status] = ours, msg_id: int = msg_id
            ) -> tuple[int, ...]:
                return tuple(
                    s.data for s in ours if s.cmd_ref == cmd_ref and s.msg_ref in (msg_id, None)
                )

            out.append(Answer("SyncHdr", codes(0)))
            for cmd in walk(ex.sent.commands):
                if isinstance(cmd, Status):
                    continue
                alert = cmd.data if isinstance(cmd, Alert) else None
                more = any(getattr(i, "more_data", False) for i in getattr(cmd, "items", ()))
                out.append(Answer(command_name(cmd), codes(cmd.cmd_id), alert, _ref(cmd), more))
        return out

    def sent_by_us(self, kind: type[Command]) -> list[Command]:
        """Every command of a type in our replies (nested ones included)."""
        return [c for ex in self.exchanges for c in walk(ex.reply.commands) if isinstance(c, kind)]

    @property
    def modes(self) -> dict[str, int]:
        """The sync mode (alert code) we alerted per client database."""
        out: dict[str, int] = {}
        for alert in self.sent_by_us(Alert):
            assert isinstance(alert, Alert)
            if alert.data is not None and alert.data in _SYNC_ALERTS and alert.items:
                target = alert.items[0].target
                if target is not None:
                    out[target.uri] = alert.data
        return out


# --- helpers ---------------------------------------------------------------------


def walk(commands: Iterable[Command]) -> Iterator[Command]:
    """Commands and the commands nested in Sync, Atomic and Sequence, parents first."""
    for c in commands:
        yield c
        if isinstance(c, Sync | Atomic | SequenceCmd):
            yield from walk(c.commands)


def norm(text: str) -> str:
    """Item text compared across transports and servers.

    XML folds CRLF to LF; servers re-fold long vCard lines (SyncEvolution's
    folds a PHOTO it received unfolded), so folding is undone too.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\n ", "").replace("\n\t", "").strip()


def same_item(a: str, b: str) -> bool:
    """Whether two texts are the same item: equal content, or the same UID.

    SyncEvolution's server re-encodes iCalendar items it stores (adds
    LAST-MODIFIED, a new DTSTAMP), so a UID is the identity across servers.
    """
    if norm(a) == norm(b):
        return True
    uid = _UIDS.uid(a)
    return uid is not None and uid == _UIDS.uid(b)


def _ref(cmd: Command) -> str | None:
    items = getattr(cmd, "items", ())
    if not items:
        return None
    it = items[0]
    if isinstance(it, MapItem):
        return it.source
    loc = it.source or it.target
    return loc.uri if loc else None


def _text(cmd: Add | Replace, item: Item) -> str:
    return item_text(item, cmd.meta)


def full_texts(messages: Sequence[Message]) -> dict[tuple[int, int], str]:
    """The data of every Add/Replace item, by (``id`` of the command, item index).

    Large objects are reassembled: the text is given for the command that
    carries the last chunk; the chunks before it are left out.
    """
    out: dict[tuple[int, int], str] = {}
    chunks: dict[tuple[str, str], list[str]] = {}
    for m in messages:
        for cmd in walk(m.commands):
            if not isinstance(cmd, Add | Replace):
                continue
            for n, item in enumerate(cmd.items):
                loc = item.source or item.target
                key = (command_name(cmd), loc.uri if loc else "")
                part = _text(cmd, item)
                if item.more_data:
                    chunks.setdefault(key, []).append(part)
                else:
                    out[(id(cmd), n)] = "".join([*chunks.pop(key, []), part])
    return out


def _renumber(commands: Sequence[Command], ids: Iterator[int]) -> tuple[Command, ...]:
    out: list[Command] = []
    for c in commands:
        cid = next(ids)
        if isinstance(c, Sync | Atomic | SequenceCmd):
            out.append(dataclasses.replace(c, cmd_id=cid, commands=_renumber(c.commands, ids)))
        else:
            out.append(dataclasses.replace(c, cmd_id=cid))
    return tuple(out)


def _is_pull(msg: Message) -> bool:
    """A message that only answers and asks for more (statuses, Alert 222, Map items)."""
    asks = any(isinstance(c, Alert) and c.data == NEXT_MESSAGE for c in msg.commands)
    only = all(
        isinstance(c, Status | Map) or (isinstance(c, Alert) and c.data == NEXT_MESSAGE)
        for c in msg.commands
    )
    return only and (asks or not msg.final)


def _streaming(reply: Message) -> bool:
    """Our reply is part of a package of ours that goes on (not just "send me more")."""
    if reply.final:
        return False
    return any(
        not isinstance(c, Status) and not (isinstance(c, Alert) and c.data == NEXT_MESSAGE)
        for c in reply.commands
    )


class DesktopStore(MemoryStore):
    """A :class:`MemoryStore` with long item ids, as a desktop PIM has (``0001.syncmld@desktop``).

    Long ids make a peer's small MaxGUIDSize matter (the P900 takes 4 bytes).
    """

    def add(self, data: str) -> tuple[str, str]:
        """Store a new item under a long id."""
        if self.read_only:
            raise ReadOnlyStore("store is read-only")
        item_id = f"{next(self._ids):04d}.syncmld@desktop"
        return item_id, self._put(item_id, data)


# --- the replayer ----------------------------------------------------------------


@dataclass
class _Ours:
    """One command of ours that the client has to answer."""

    msg_id: int
    cmd: Command
    parent: Sync | None


class Replayer:
    """Feeds recorded sessions, one after the other, to fresh :class:`ServerSession` objects.

    Args:
        config: our server's configuration; the datastores' stores must be
            :class:`MemoryStore` objects (they are seeded).
        encoding: re-encode every client message in this encoding; ``None``
            keeps each recording's own.
        user, password: recompute MD5 credentials with these.
        resp_uri: the RespURI our server announces (``None``: none).
        start: the first session's start time; each session starts a minute later.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        encoding: Encoding | None = None,
        user: str | None = None,
        password: str | None = None,
        resp_uri: str | None = None,
        start: float = 1_700_000_000.0,
    ) -> None:
        self.config = config
        self.encoding = encoding
        self.user = user
        self.password = password
        self.resp_uri = resp_uri
        self.now = start
        self.states: dict[str, PeerState] = {}
        #: (datastore, recorded server id) -> our local id, for seeded items.
        self.seeded: dict[tuple[str, str], str] = {}
        #: (device, client database) -> client id -> item text: what the client holds.
        self.model: dict[tuple[str, str], dict[str, str]] = {}
        self._luid_counter = itertools.count(1)

    # -- public -------------------------------------------------------------------
    def client_items(self, dev_id: str, client_db: str) -> dict[str, str]:
        """What the client holds in a database, as far as the replay knows."""
        return self.model.setdefault((dev_id, client_db), {})

    def store(self, name: str) -> MemoryStore:
        """One of our datastores' stores."""
        ds = self.config.datastore(name)
        assert ds is not None, name
        assert isinstance(ds.store, MemoryStore)
        return ds.store

    def local_id(self, dev_id: str, datastore: str, luid: str) -> str | None:
        """Our local id for a client's item, from the committed state."""
        peer = self.states.get(dev_id)
        pair = peer.pairs.get(datastore) if peer else None
        if pair is None:
            return None
        return next((k for k, v in pair.items.items() if v.remote_id == luid), None)

    def run(self, recording: RecordedSync) -> SyncReplay:
        """Seed the desktop side, then replay one session with a fresh server session."""
        self.now += 60
        run = _Run(self, recording)
        self.seed(recording, run.result)
        run.play()
        if run.result.finished is not None and run.result.finished.peer is not None:
            peer = run.result.finished.peer
            self.states[peer.dev_id] = peer
        return run.result

    def seed(self, recording: RecordedSync, result: SyncReplay) -> None:
        """Make the desktop side hold what the recorded server sent in this session."""
        dev = decode_message(recording.client[0]).header.source.uri
        messages = [decode_message(raw) for raw in recording.server]
        texts = full_texts(messages)
        for m in messages:
            for cmd in walk(m.commands):
                if not isinstance(cmd, Sync) or cmd.source is None:
                    continue
                ds = self.config.datastore(cmd.source.uri)
                if ds is None:
                    continue
                store = self.store(ds.name)
                for sub in cmd.commands:
                    for n, item in enumerate(getattr(sub, "items", ())):
                        if isinstance(sub, Add | Replace) and (id(sub), n) not in texts:
                            continue  # a chunk of a large object: seeded when complete
                        text = texts.get((id(sub), n), "")
                        self._seed_item(
                            dev,
                            ds=ds.name,
                            store=store,
                            sub=sub,
                            item=item,
                            text=text,
                            result=result,
                        )

    def _seed_item(
        self,
        dev: str,
        *,
        ds: str,
        store: MemoryStore,
        sub: Command,
        item: Item,
        text: str,
        result: SyncReplay,
    ) -> None:
        if isinstance(sub, Add) and item.source is not None:
            key = (ds, item.source.uri)
            known = self.seeded.get(key)
            if known is not None and any(k == known for k, _ in store.list()):
                return
            same = next((k for k, _ in store.list() if same_item(store.get(k)[0], text)), None)
            if same is not None:
                self.seeded[key] = same
                return
            self.seeded[key], _ = store.add(text)
            result.notes.append(f"seed: desktop item added (recorded server id {item.source.uri})")
        elif isinstance(sub, Replace) and item.target is not None:
            local = self.local_id(dev, ds, item.target.uri)
            if local is None:
                result.notes.append(f"seed: no local item for client id {item.target.uri}")
            elif norm(store.get(local)[0]) != norm(text):
                store.edit(local, text)
                result.notes.append(
                    f"seed: desktop edit of the item of client id {item.target.uri}"
                )
        elif isinstance(sub, Delete) and item.target is not None:
            local = self.local_id(dev, ds, item.target.uri)
            if local is not None and any(k == local for k, _ in store.list()):
                store.delete(local, etag=None)
                result.notes.append(
                    f"seed: desktop deletion of the item of client id {item.target.uri}"
                )

    def new_luid(self) -> str:
        """A client id for an item of ours the recorded client never saw."""
        return f"replay-{next(self._luid_counter)}"


class _Run:
    """The replay of one recorded session."""

    def __init__(self, replayer: Replayer, recording: RecordedSync) -> None:
        self.r = replayer
        self.recording = recording
        self.client = [decode_message(b) for b in recording.client]
        self.server = [decode_message(b) for b in recording.server]
        first = self.client[0]
        self.dev = first.header.source.uri
        self.result = SyncReplay(recording.name, self.dev)
        self.encodings = [sniff(b) for b in recording.client]
        # Recorded server commands by (MsgID, CmdID), and the client's statuses for them.
        self.rec_texts = full_texts(self.server)
        self.rec_cmds: list[tuple[int, Command, Sync | None]] = []
        for m in self.server:
            for cmd, parent in _with_parents(m.commands):
                self.rec_cmds.append((m.header.msg_id, cmd, parent))
        self.acks: dict[tuple[int, int], list[Status]] = {}
        self.acks_by_msg: dict[int, list[Status]] = {}
        for k, m in enumerate(self.client):
            default = self.server[k - 1].header.msg_id if 0 < k <= len(self.server) else None
            for c in m.commands:
                if isinstance(c, Status) and c.cmd_ref != 0:
                    ref = c.msg_ref if c.msg_ref is not None else default
                    if ref is not None:
                        self.acks.setdefault((ref, c.cmd_ref), []).append(c)
                        self.acks_by_msg.setdefault(ref, []).append(c)
        # The mode of the recorded dialogue per client database: in a slow sync
        # or a refresh from the client, its Sync holds all its items; in a
        # refresh from the server, it wiped them.
        self.recorded_modes = {
            _target(c) or "": c.data or 0
            for m in self.server
            for c in m.commands
            if isinstance(c, Alert) and c.data in _SYNC_ALERTS
        }
        for db, mode in self.recorded_modes.items():
            if mode in (205, 210):
                replayer.client_items(self.dev, db).clear()
        self.dumped: set[str] = set()
        self.client_chunks: dict[str, list[str]] = {}
        self.used: set[int] = set()  # ids of recorded Adds already matched
        #: (client database, recorded server id) -> our id for the same item.
        self.guids: dict[tuple[str, str], str] = {}
        #: (client database, our id) -> text of an Add of ours waiting for its Map.
        self.pending_adds: dict[tuple[str, str], str] = {}
        self.deferred: list[tuple[Map, MapItem]] = []
        self.synthetic_maps: list[tuple[Map, MapItem]] = []
        self.chunks: dict[tuple[str, str], list[str]] = {}
        self.msg_ids = itertools.count(1)
        self.first_target = first.header.target.uri
        self.prev: Message | None = None
        self.last: Message = first  # the last client message sent
        self.nonce: str | None = (
            self.r.states[self.dev].nonce if self.dev in self.r.states else None
        )
        self.session = ServerSession(
            replayer.config,
            load_peer=replayer.states.get,
            now=replayer.now,
            resp_uri=replayer.resp_uri,
        )

    # -- the loop -----------------------------------------------------------------
    def play(self) -> None:
        queue = deque(range(len(self.client)))
        waiting = False
        while not self.session.done:
            need_pull = self.prev is not None and _streaming(self.prev) and waiting
            if queue and (not need_pull or _is_pull(self.client[queue[0]])):
                k = queue.popleft()
                msg = self.build(self.client[k], k)
                raw = self.recording.client[k]
                encoding = self.r.encoding or self.encodings[k]
                unchanged = msg == self.client[k] and encoding is self.encodings[k]
                data = raw if unchanged else encode_message(msg, encoding)
                inserted = False
            elif need_pull:
                msg = self.build(None, None)
                data = encode_message(msg, self.r.encoding or self.encodings[0])
                inserted = True
                self.result.notes.append(
                    "flow: inserted a pull (statuses + Alert 222): our package needs more "
                    "messages than the recorded server's"
                )
            else:
                break
            reply = self.session.receive(data)
            self.result.events.extend(reply.events)
            decoded = decode_message(reply.data)
            limit = msg.header.meta.max_msg_size if msg.header.meta else None
            if limit is not None:
                assert len(reply.data) <= limit, (self.recording.name, len(reply.data), limit)
            self.result.exchanges.append(
                Exchange(msg, data, decoded, reply.data, reply.done, inserted)
            )
            self.learn(decoded)
            waiting = msg.final or _is_pull(msg)
            self.last = msg
            self.prev = decoded
        self.result.unsent = len(queue)
        if queue:
            self.result.notes.append(f"flow: {len(queue)} recorded client message(s) not needed")
        self.result.done = self.session.done
        self.result.finished = next(
            (e for e in self.result.events if isinstance(e, SessionFinished)), None
        )

    def learn(self, reply: Message) -> None:
        """Remember what our reply said that the next client message depends on."""
        for st in reply.commands:
            if isinstance(st, Status) and st.cmd_ref == 0 and st.chal and st.chal.meta.next_nonce:
                self.nonce = st.chal.meta.next_nonce

    # -- building a client message --------------------------------------------------
    def build(self, rec: Message | None, index: int | None) -> Message:
        statuses: list[Command] = []
        if self.prev is not None:
            statuses.extend(self.statuses_for(self.prev, rec))
        commands: list[Command] = []
        for c in rec.commands if rec is not None else ():
            if isinstance(c, Status):
                continue
            if isinstance(c, Map):
                mapped = self.rewrite_map(c)
                if mapped is not None:
                    commands.append(mapped)
                continue
            commands.append(c)
            self.follow_client(c)
        commands.extend(self.flush_maps(final=rec is not None and rec.final))
        if rec is None:
            # An inserted pull: the header of the last message sent, without
            # Cred, and Alert 222 after the statuses.
            header = dataclasses.replace(self.last.header, msg_id=next(self.msg_ids), cred=None)
            commands.append(
                Alert(
                    cmd_id=0,
                    data=NEXT_MESSAGE,
                    items=(
                        Item(
                            target=Location(uri=self.first_target),
                            source=Location(uri=self.dev),
                        ),
                    ),
                )
            )
        else:
            header = self.header(rec, first=index == 0)
        body = _renumber([*statuses, *commands], itertools.count(1))
        return Message(header=header, commands=body, final=rec.final if rec is not None else False)

    def header(self, template: Message, *, first: bool) -> SyncHdr:
        hdr = template.header
        msg_id = next(self.msg_ids)
        if msg_id != hdr.msg_id:
            self.result.notes.append(f"header: MsgID {hdr.msg_id} -> {msg_id}")
        target = hdr.target
        if not first:
            ours = (self.prev.header.resp_uri if self.prev else None) or self.first_target
            if target.uri != ours:
                self.result.notes.append(f"header: Target {target.uri} -> {ours} (our RespURI)")
                target = dataclasses.replace(target, uri=ours)
        cred = hdr.cred
        if cred is not None and rec_is_md5(cred) and self.r.user and self.r.password:
            nonce = auth.decode_nonce(self.nonce) if self.nonce else b""
            digest = auth.md5_digest(self.r.user, self.r.password, nonce, version=hdr.ver_dtd)
            if digest != cred.data:
                self.result.notes.append("header: MD5 Cred recomputed with our nonce")
                cred = dataclasses.replace(cred, data=digest)
        return dataclasses.replace(hdr, msg_id=msg_id, target=target, cred=cred)

    # -- statuses -------------------------------------------------------------------
    def statuses_for(self, prev: Message, rec: Message | None) -> list[Status]:
        """The client's statuses for every command of our previous reply."""
        out: list[Status] = []
        hdr_ack = (
            next((c for c in rec.commands if isinstance(c, Status) and c.cmd_ref == 0), None)
            if rec is not None
            else None
        )
        out.append(
            Status(
                cmd_id=0,
                msg_ref=prev.header.msg_id,
                cmd_ref=0,
                cmd="SyncHdr",
                data=hdr_ack.data if hdr_ack is not None else 200,
                target_refs=(prev.header.target.uri,),
                source_refs=(prev.header.source.uri,),
            )
        )
        for cmd, parent in _with_parents(prev.commands):
            if isinstance(cmd, Status):
                continue
            out.append(self.status_for(_Ours(prev.header.msg_id, cmd, parent)))
        return out

    def status_for(self, ours: _Ours) -> Status:
        cmd = ours.cmd
        item = cmd.items[0] if isinstance(cmd, Add | Replace | Delete) and cmd.items else None
        more = item is not None and item.more_data
        text: str | None = None
        if isinstance(cmd, Add | Replace) and item is not None:
            key = (
                ours.parent.target.uri if ours.parent and ours.parent.target else "",
                _ref(cmd) or "",
            )
            part = _text(cmd, item)
            if more:
                self.chunks.setdefault(key, []).append(part)
            else:
                text = "".join([*self.chunks.pop(key, []), part])
        counterpart = None if more else self.counterpart(ours, text)
        if counterpart is not None:
            _, rec_cmd, ack = counterpart
            status = self.rewrite_ack(ack, rec_cmd, ours)
        else:
            status = self.synthesize(ours, more=more)
        if 200 <= status.data < 300 and not more:
            self.follow_ours(ours, text, status.data)
        return status

    def counterpart(self, ours: _Ours, text: str | None) -> tuple[int, Command, Status] | None:
        """The recorded server command that did what ``ours`` does, with the client's answer."""
        cmd = ours.cmd
        db = _target(ours.parent) if ours.parent else None
        for msg_id, rec, rec_parent in self.rec_cmds:
            if type(rec) is not type(cmd):
                continue
            acks = self.acks_for(msg_id, rec)
            if not acks:
                continue
            if isinstance(cmd, Alert):
                assert isinstance(rec, Alert)
                if cmd.data not in _SYNC_ALERTS or rec.data not in _SYNC_ALERTS:
                    continue
                if _target(cmd) != _target(rec):
                    continue
                return msg_id, rec, acks[0]
            if isinstance(cmd, Results):
                return msg_id, rec, acks[0]
            if isinstance(cmd, Sync):
                assert isinstance(rec, Sync)
                if (cmd.target and cmd.target.uri) != (rec.target and rec.target.uri):
                    continue
                return msg_id, rec, acks[0]
            if isinstance(cmd, Add):
                assert isinstance(rec, Add)
                if id(rec) in self.used or text is None or db is None:
                    continue
                if rec_parent is None or _target(rec_parent) != db:
                    continue
                rec_text = self.rec_texts.get((id(rec), 0))
                if rec_text is None or not same_item(rec_text, text):
                    continue
                self.used.add(id(rec))
                rec_id = _ref(rec)
                if rec_id is not None and _ref(cmd) is not None:
                    self.guids[(db, rec_id)] = _ref(cmd) or ""
                return msg_id, rec, _pick(acks, rec_id)
            if isinstance(cmd, Replace | Delete):
                if _target(cmd) is None or _target(cmd) != _target(rec):
                    continue
                return msg_id, rec, _pick(acks, _target(rec))
        return None

    def acks_for(self, msg_id: int, rec: Command) -> list[Status]:
        """The recorded client's statuses for a recorded server command."""
        name = command_name(rec)
        exact = [s for s in self.acks.get((msg_id, rec.cmd_id), []) if s.cmd == name]
        if exact:
            return exact
        # The Synthesis client in Horde's logs refers to CmdIDs one short of
        # the ones Horde logged: match by command name and item refs instead.
        ref = _ref(rec) if isinstance(rec, Add) else _target(rec)
        return [
            s
            for s in self.acks_by_msg.get(msg_id, [])
            if s.cmd == name and (ref is None or ref in _refs(s))
        ]

    def rewrite_ack(self, ack: Status, rec: Command, ours: _Ours) -> Status:
        cmd = ours.cmd
        status = dataclasses.replace(
            ack, msg_ref=ours.msg_id, cmd_ref=cmd.cmd_id, cmd=command_name(cmd)
        )
        if isinstance(cmd, Add):
            old, new = _ref(rec), _ref(cmd)
            if old is not None and new is not None and old != new:
                status = dataclasses.replace(
                    status,
                    source_refs=tuple(new if r == old else r for r in status.source_refs),
                    items=tuple(_relocate(i, old, new) for i in status.items),
                )
                self.result.notes.append(f"status: Add {old} -> our id {new}")
        if isinstance(cmd, Alert) and cmd.items and cmd.items[0].meta:
            anchor = cmd.items[0].meta.anchor
            if anchor is not None:
                status = dataclasses.replace(
                    status,
                    items=tuple(
                        dataclasses.replace(i, data=Anchor(next=anchor.next))
                        if isinstance(i.data, Anchor)
                        else i
                        for i in status.items
                    ),
                )
        return status

    def synthesize(self, ours: _Ours, *, more: bool) -> Status:
        cmd = ours.cmd
        code = 200
        if more:
            code = 213
        elif isinstance(cmd, Add):
            code = 201
        target = source = None
        if isinstance(cmd, Add):
            source = _ref(cmd)
            if not more and source is not None:
                # The recorded client never saw this Add: it maps it to a new id of its own.
                luid = self.r.new_luid()
                db = ours.parent.target.uri if ours.parent and ours.parent.target else ""
                sync_src = ours.parent.source.uri if ours.parent and ours.parent.source else ""
                template = Map(cmd_id=0, target=Location(uri=sync_src), source=Location(uri=db))
                self.synthetic_maps.append((template, MapItem(target=source, source=luid)))
        elif isinstance(cmd, Replace | Delete | Alert | Sync):
            target = _target(cmd)
        name = command_name(cmd)
        self.result.synthesized.append(
            f"{name} {code}" + (f" {target or source}" if (target or source) else "")
        )
        return Status(
            cmd_id=0,
            msg_ref=ours.msg_id,
            cmd_ref=cmd.cmd_id,
            cmd=name,
            data=code,
            target_refs=(target,) if target else (),
            source_refs=(source,) if source else (),
        )

    # -- maps -----------------------------------------------------------------------
    def rewrite_map(self, cmd: Map) -> Map | None:
        items: list[MapItem] = []
        for mi in cmd.items:
            ours = self.guids.get((cmd.source.uri, mi.target))
            if ours is None:
                self.deferred.append((cmd, mi))
                continue
            items.append(self.mapped(cmd, mi, ours))
        if not items:
            return None
        return dataclasses.replace(cmd, items=tuple(items))

    def mapped(self, cmd: Map, mi: MapItem, ours: str) -> MapItem:
        if ours != mi.target:
            self.result.notes.append(f"map: {mi.target} -> our id {ours} (client id {mi.source})")
        text = self.pending_adds.pop((cmd.source.uri, ours), None)
        if text is not None:
            self.r.client_items(self.dev, cmd.source.uri)[mi.source] = text
        return dataclasses.replace(mi, target=ours)

    def flush_maps(self, *, final: bool) -> list[Map]:
        out: list[Map] = []
        still: list[tuple[Map, MapItem]] = []
        ready: dict[tuple[str, str], list[MapItem]] = {}
        templates: dict[tuple[str, str], Map] = {}
        for cmd, mi in self.deferred:
            ours = self.guids.get((cmd.source.uri, mi.target))
            if ours is None:
                still.append((cmd, mi))
                continue
            key = (cmd.target.uri, cmd.source.uri)
            templates[key] = cmd
            ready.setdefault(key, []).append(self.mapped(cmd, mi, ours))
        for cmd, mi in self.synthetic_maps:
            key = (cmd.target.uri, cmd.source.uri)
            templates[key] = cmd
            ready.setdefault(key, []).append(self.mapped(cmd, mi, mi.target))
        self.synthetic_maps = []
        self.deferred = still
        if final and still:
            for _, mi in still:
                self.result.notes.append(f"map: dropped {mi.target} (we sent no such item)")
            self.deferred = []
        for key, items in ready.items():
            out.append(dataclasses.replace(templates[key], items=tuple(items)))
        return out

    # -- the client's model ---------------------------------------------------------
    def follow_client(self, cmd: Command) -> None:
        if not isinstance(cmd, Sync) or cmd.source is None:
            return
        items = self.r.client_items(self.dev, cmd.source.uri)
        full = self.recorded_modes.get(cmd.source.uri) in (201, 203, 208)
        if full and cmd.source.uri not in self.dumped:
            items.clear()  # what it sends in this session is all it has
            self.dumped.add(cmd.source.uri)
        for sub in cmd.commands:
            for item in getattr(sub, "items", ()):
                luid = item.source.uri if item.source else None
                if luid is None:
                    continue
                if isinstance(sub, Delete):
                    items.pop(luid, None)
                elif isinstance(sub, Add | Replace):
                    parts = self.client_chunks.setdefault(luid, [])
                    parts.append(_text(sub, item))
                    if not item.more_data:
                        items[luid] = "".join(self.client_chunks.pop(luid))

    def follow_ours(self, ours: _Ours, text: str | None, code: int) -> None:
        cmd = ours.cmd
        db = ours.parent.target.uri if ours.parent and ours.parent.target else ""
        if not db:
            return
        items = self.r.client_items(self.dev, db)
        if isinstance(cmd, Add) and text is not None:
            guid = _ref(cmd)
            if guid is not None:
                self.pending_adds[(db, guid)] = text
        elif isinstance(cmd, Replace) and text is not None:
            luid = _target(cmd)
            if luid is not None:
                items[luid] = text
        elif isinstance(cmd, Delete):
            luid = _target(cmd)
            if luid is not None:
                items.pop(luid, None)


def rec_is_md5(cred: Cred) -> bool:
    """Whether credentials are an MD5 digest."""
    return bool(cred.meta and cred.meta.type and cred.meta.type.lower() == auth.AUTH_MD5)


def _with_parents(commands: Iterable[Command]) -> Iterator[tuple[Command, Sync | None]]:
    for c in commands:
        yield c, None
        if isinstance(c, Sync):
            for sub in c.commands:
                yield sub, c


def _target(cmd: Command) -> str | None:
    items = getattr(cmd, "items", ())
    if isinstance(cmd, Sync):
        return cmd.target.uri if cmd.target else None
    if not items or isinstance(items[0], MapItem):
        return None
    loc = items[0].target
    return loc.uri if loc else None


def _refs(status: Status) -> tuple[str, ...]:
    """Every id a status names (refs, or item Source/Target as Funambol sends them)."""
    items = tuple(loc.uri for i in status.items for loc in (i.source, i.target) if loc is not None)
    return (*status.source_refs, *status.target_refs, *items)


def _pick(acks: list[Status], ref: str | None) -> Status:
    """The status for one item of a command (clients answer per item)."""
    return next((s for s in acks if ref is not None and ref in _refs(s)), acks[0])


def _relocate(item: Item, old: str, new: str) -> Item:
    if item.source is not None and item.source.uri == old:
        item = dataclasses.replace(item, source=dataclasses.replace(item.source, uri=new))
    if item.target is not None and item.target.uri == old:
        item = dataclasses.replace(item, target=dataclasses.replace(item.target, uri=new))
    return item
