"""Packing outgoing commands into messages that fit the peer's ``MaxMsgSize``.

Theory of operation
-------------------
A SyncML side answers every message it receives with exactly one message.
What it has to say — Statuses for the message just received, then the
commands of its current package — may not fit: a Sony Ericsson K700i takes
at most 2,700 bytes per message.  The :class:`Outbox` keeps the commands still
to send and, each time a message is due, fills it:

1. Statuses first (the protocol wants them before anything else);
2. then queued commands in order; item changes are grouped in one ``Sync``
   wrapper per datastore, and a datastore whose changes do not all fit is
   continued, in a new ``Sync`` wrapper, in the next message;
3. an item too large for any message is sent as a *large object* when the
   peer supports them: chunks carrying ``MoreData``, the first with
   ``Meta/Size``; each chunk ends its message, and the next message opens
   with the continuation;
4. ``Final`` is set only when the queue is empty and the caller says the
   package ends.

Sizes are estimated from the data (cheap), the message is then encoded for
real and, in the rare case the estimate was too low, the last command is put
back and the message encoded again.  ``headroom`` bytes stay free (Buteo and
libsynthesis keep about 10 %), because phones count differently.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import SupportsIndex

from syncmld.protocol.codec import Encoding, encode_message
from syncmld.protocol.model import (
    Add,
    Command,
    Delete,
    Item,
    Location,
    Map,
    Message,
    Meta,
    Replace,
    Status,
    Sync,
    SyncHdr,
)

_FIELDS: dict[type, tuple[str, ...]] = {}


def _numbered(cmd: Command, cmd_id: int) -> Command:
    """``cmd`` with another CmdID (``dataclasses.replace`` without re-validation:
    numbering thousands of Statuses per message is on the hot path)."""
    cls = type(cmd)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    clone = object.__new__(cls)
    put = object.__setattr__
    for name in names:
        put(clone, name, getattr(cmd, name))
    put(clone, "cmd_id", cmd_id)
    return clone


#: What a peer that names no MaxMsgSize gets (Buteo's default).
DEFAULT_MAX_MSG_SIZE = 16 * 1024
_MIN_MESSAGE = 1024


@dataclass(slots=True)
class OutChange:
    """One item change to send inside a ``Sync``.

    ``kind`` is "Add", "Replace" or "Delete"; ``target`` the peer's id for the
    item (Replace/Delete), ``source`` ours (Add, Replace).  ``tag`` is the
    caller's handle, reported back when the command is sent.
    """

    kind: str
    tag: object
    target: str | None = None
    source: str | None = None
    data: str | None = None
    content_type: str | None = None
    #: Characters of ``data`` already sent as large-object chunks.
    sent: int = 0
    #: ``data`` is base64 (``Meta/Format b64`` on the item); chunks are cut
    #: at multiples of four characters, so each one decodes on its own.
    b64: bool = False


@dataclass(slots=True)
class OutSync:
    """The changes for one datastore pair (``target`` = the peer's database)."""

    target: str
    source: str
    changes: deque[OutChange] = field(default_factory=deque)
    number_of_changes: int | None = None
    #: Set once the Sync command itself was sent at least once.
    opened: bool = False


@dataclass(frozen=True, slots=True)
class SentCommand:
    """What went out under one CmdID (for matching the peer's Status later)."""

    cmd_id: int
    cmd: str
    tag: object = None
    chunk: bool = False
    last_chunk: bool = True


class _SentList(list[SentCommand]):
    """The commands of one message being filled, counting those the peer answers.

    Every command but a Status gets a Status back; keeping that count here
    saves recounting the whole list for each item added (thousands per message).
    """

    answered: int = 0

    def append(self, entry: SentCommand) -> None:
        if entry.cmd != "Status":
            self.answered += 1
        super().append(entry)

    def pop(self, index: SupportsIndex = -1) -> SentCommand:
        entry = super().pop(index)
        if entry.cmd != "Status":
            self.answered -= 1
        return entry


@dataclass(slots=True)
class Outbox:
    """The commands still to send, and the packing rules for this peer."""

    encoding: Encoding
    max_msg_size: int = DEFAULT_MAX_MSG_SIZE
    large_objects: bool = False
    max_obj_size: int | None = None
    #: Our own MaxMsgSize: the peer answers every command we send with a
    #: Status, and that answer must fit this (``None``: no limit).
    answer_limit: int | None = None
    queue: deque[Command | OutSync] = field(default_factory=deque)

    @property
    def empty(self) -> bool:
        """True when nothing waits to be sent."""
        return not self.queue

    def put(self, item: Command | OutSync) -> None:
        """Queue a command (its CmdID is assigned when it is sent) or a Sync batch."""
        self.queue.append(item)

    # -- size estimates --------------------------------------------------------
    def _text_size(self, text: str) -> int:
        n = len(text.encode("utf-8"))
        if self.encoding is Encoding.XML:
            n += 4 * text.count("&") + 3 * (text.count("<") + text.count(">"))
            n += 4 * text.count("\r")
        return n

    def _overhead(self) -> int:
        return 180 if self.encoding is Encoding.XML else 40

    def _estimate(self, cmd: Command) -> int:
        if isinstance(cmd, Status):
            refs = sum(len(r) for r in cmd.target_refs + cmd.source_refs)
            extra = sum(self._item_size(i) for i in cmd.items)
            return self._overhead() + refs + extra + (150 if cmd.chal is not None else 0)
        if isinstance(cmd, Map):
            return self._overhead() + sum(
                self._overhead() + len(m.target) + len(m.source) for m in cmd.items
            )
        items = getattr(cmd, "items", ())
        return self._overhead() + sum(self._item_size(i) for i in items) + 40

    def _item_size(self, item: Item) -> int:
        n = self._overhead()
        for loc in (item.target, item.source):
            if loc is not None:
                n += len(loc.uri) + 20
        if isinstance(item.data, str):
            n += self._text_size(item.data)
        elif item.data is not None:
            n += 2000  # DevInf, anchors: generous
        return n

    # -- building ----------------------------------------------------------------
    def build(
        self,
        header: SyncHdr,
        statuses: Sequence[Status],
        *,
        package_ends: bool,
    ) -> tuple[Message, bytes, list[SentCommand]]:
        """Fill one message; returns it, its encoding and what was sent.

        ``statuses`` must all be sent in this message (they are small; a peer
        whose MaxMsgSize cannot hold them is not served).  ``package_ends``
        says whether ``Final`` may be set once the queue is empty.
        """
        limit = max(self.max_msg_size - max(self.max_msg_size // 10, 256), _MIN_MESSAGE)
        while True:
            snapshot = self._snapshot()
            msg, sent = self._fill(header, statuses, limit, package_ends)
            data = encode_message(msg, self.encoding)
            if len(data) <= self.max_msg_size or len(sent) <= len(statuses):
                return msg, data, sent
            # The estimate was too low: undo and retry with a smaller budget.
            # Once the budget is used up the message goes as it is; its
            # commands must then stay out of the queue (restoring them sent
            # them twice, the second copy after the package had ended).
            smaller = limit - (max(len(data) - self.max_msg_size, 64) + 64)
            if smaller < _MIN_MESSAGE // 2:
                return msg, data, sent
            self._restore(snapshot)
            limit = smaller

    def _snapshot(self) -> list[object]:
        snap: list[object] = []
        for q in self.queue:
            if isinstance(q, OutSync):
                snap.append((q, q.opened, [(c, c.sent) for c in q.changes]))
            else:
                snap.append(q)
        return snap

    def _restore(self, snap: list[object]) -> None:
        self.queue.clear()
        for entry in snap:
            if isinstance(entry, tuple):
                q, opened, changes = entry
                q.opened = opened
                q.changes = deque()
                for c, sent in changes:
                    c.sent = sent
                    q.changes.append(c)
                self.queue.append(q)
            else:
                self.queue.append(entry)  # type: ignore[arg-type]

    def _fill(
        self,
        header: SyncHdr,
        statuses: Sequence[Status],
        limit: int,
        package_ends: bool,
    ) -> tuple[Message, list[SentCommand]]:
        next_id = iter(range(1, 1_000_000)).__next__
        commands: list[Command] = []
        sent = _SentList()
        used = 600 if self.encoding is Encoding.XML else 150  # header
        for st in statuses:
            numbered = _numbered(st, next_id())
            commands.append(numbered)
            sent.append(SentCommand(numbered.cmd_id, "Status"))
            used += self._estimate(numbered)
        chunk_open = False
        while self.queue and not chunk_open:
            head = self.queue[0]
            if isinstance(head, OutSync):
                used, chunk_open, done = self._fill_sync(head, commands, sent, next_id, used, limit)
                if not done:
                    break
                self.queue.popleft()
                continue
            size = self._estimate(head)
            if len(commands) > len(statuses) and (used + size > limit or self._answer_full(sent)):
                break
            if used + size > limit and isinstance(head, Map) and len(head.items) > 1:
                # Our answer to a long package (Statuses, then the Map of every
                # item the peer added) may exceed a small MaxMsgSize: the Map
                # is split, the rest goes in the next message.
                first, rest = self._split_map(head, limit - used)
                self.queue[0] = rest
                cmd = _numbered(first, next_id())
                commands.append(cmd)
                sent.append(SentCommand(cmd.cmd_id, "Map"))
                break
            cmd = _numbered(head, next_id())
            commands.append(cmd)
            sent.append(SentCommand(cmd.cmd_id, type(cmd).__name__))
            used += size
            self.queue.popleft()
        final = package_ends and not self.queue
        return Message(header=header, commands=tuple(commands), final=final), sent

    def _split_map(self, cmd: Map, budget: int) -> tuple[Map, Map]:
        """The first items of ``cmd`` that fit ``budget`` bytes (at least one), and the rest."""
        used = self._overhead()
        n = 0
        for item in cmd.items[:-1]:
            used += self._overhead() + len(item.target) + len(item.source)
            if n and used > budget:
                break
            n += 1
        n = max(n, 1)
        return (
            dataclasses.replace(cmd, items=cmd.items[:n]),
            dataclasses.replace(cmd, items=cmd.items[n:]),
        )

    def _answer_full(self, sent: Sequence[SentCommand]) -> bool:
        """Whether the peer's Statuses for one more command would exceed :attr:`answer_limit`."""
        if self.answer_limit is None:
            return False
        budget = max(self.answer_limit - max(self.answer_limit // 10, 256), _MIN_MESSAGE)
        header = 600 if self.encoding is Encoding.XML else 150
        per_status = self._overhead() + 40
        if isinstance(sent, _SentList):
            answered = 2 + sent.answered  # the SyncHdr's, and the next one
        else:
            answered = 2 + sum(s.cmd != "Status" for s in sent)
        return header + per_status * answered > budget

    def _fill_sync(  # noqa: PLR0917 - internal helper of _fill
        self,
        out: OutSync,
        commands: list[Command],
        sent: list[SentCommand],
        next_id: Callable[[], int],
        used: int,
        limit: int,
    ) -> tuple[int, bool, bool]:
        """Add one Sync wrapper with as many changes as fit.

        Returns (bytes used, a chunk was opened, the OutSync is exhausted).
        """
        base = self._overhead() + len(out.target) + len(out.source) + 60
        if used + base > limit and len(commands) > 0 and out.changes:
            return used, False, False
        sync_id = next_id()
        sent.append(SentCommand(sync_id, "Sync"))
        used += base
        subs: list[Command] = []
        chunk_open = False
        while out.changes:
            ch = out.changes[0]
            remaining = ch.data[ch.sent :] if ch.data is not None else None
            size = self._overhead() * 2 + len(ch.target or "") + len(ch.source or "")
            if remaining is not None:
                size += self._text_size(remaining)
            if self._answer_full(sent) and (
                subs or any(not isinstance(c, Status) for c in commands)
            ):
                break  # the peer's Statuses for more would not fit our own MaxMsgSize
            if used + size <= limit:
                cmd = self._change_command(ch, next_id(), remaining, more=False)
                subs.append(cmd)
                sent.append(SentCommand(cmd.cmd_id, ch.kind, ch.tag, chunk=ch.sent > 0))
                used += size
                out.changes.popleft()
                continue
            # Does not fit.  A large object may be cut when nothing else can go first.
            free = limit - used - self._overhead() * 2 - len(ch.target or "") - len(ch.source or "")
            alone = not subs and not any(not isinstance(c, Status) for c in commands)
            # Statuses beyond the two plain ones every answer carries (SyncHdr,
            # Alert 222) may leave no room for a chunk here; a peer that takes
            # large objects then gets the item in chunks from the next message
            # on instead of whole, beyond its MaxMsgSize.
            statuses = sum(self._estimate(c) for c in commands if isinstance(c, Status))
            extra = max(statuses - 2 * (self._overhead() + 40), 0)
            crowded = remaining is not None and self.large_objects and free + extra >= 256
            if remaining is None or not self.large_objects or free < 256:
                if alone and not crowded:
                    # Nothing else is in this message and the peer takes no
                    # large objects: send it whole rather than never (the peer
                    # may answer 413, which is reported for this item).
                    cmd = self._change_command(ch, next_id(), remaining, more=False)
                    subs.append(cmd)
                    sent.append(SentCommand(cmd.cmd_id, ch.kind, ch.tag, chunk=ch.sent > 0))
                    used += size
                    out.changes.popleft()
                    continue
                break
            # Only chunk a change that would not fit an otherwise empty message.
            if (subs or commands) and self._text_size(
                remaining
            ) + self._overhead() * 3 <= limit // 2:
                break
            piece = self._cut(remaining, free)
            if ch.b64 and len(piece) < len(remaining):
                piece = piece[: len(piece) - len(piece) % 4]
            if not piece:
                break
            cmd = self._change_command(ch, next_id(), piece, more=True)
            subs.append(cmd)
            sent.append(SentCommand(cmd.cmd_id, ch.kind, ch.tag, chunk=True, last_chunk=False))
            ch.sent += len(piece)
            used = limit
            chunk_open = True
            break
        if not subs and out.opened and out.changes:
            sent.pop()  # nothing fitted: do not send an empty continuation wrapper
            return used - base, False, False
        commands.append(
            Sync(
                cmd_id=sync_id,
                target=Location(uri=out.target),
                source=Location(uri=out.source),
                commands=tuple(subs),
                number_of_changes=None if out.opened else out.number_of_changes,
            )
        )
        out.opened = True
        return used, chunk_open, not out.changes

    def _cut(self, text: str, budget: int) -> str:
        """The longest prefix of ``text`` whose encoded size fits ``budget`` bytes."""
        lo, hi = 0, min(len(text), budget)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._text_size(text[:mid]) <= budget:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo]

    def _change_command(
        self, ch: OutChange, cmd_id: int, data: str | None, *, more: bool
    ) -> Command:
        first_chunk = ch.sent == 0
        fmt = "b64" if ch.b64 and data is not None else None
        item_meta = Meta(format=fmt) if fmt else None
        if more and first_chunk and ch.data is not None:
            item_meta = Meta(size=len(ch.data.encode("utf-8")), format=fmt)
        item = Item(
            target=Location(uri=ch.target) if ch.target is not None else None,
            source=Location(uri=ch.source) if ch.source is not None else None,
            meta=item_meta,
            data=data,
            more_data=more,
        )
        meta = Meta(type=ch.content_type) if ch.content_type else None
        if ch.kind == "Add":
            return Add(cmd_id=cmd_id, meta=meta, items=(item,))
        if ch.kind == "Replace":
            return Replace(cmd_id=cmd_id, meta=meta, items=(item,))
        return Delete(cmd_id=cmd_id, items=(dataclasses.replace(item, data=None),))
