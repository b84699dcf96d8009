"""Pieces both session roles use: Status building, item text, large objects."""

from __future__ import annotations

import base64
import binascii
import contextlib
import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from syncmld.engine.state import ItemState
from syncmld.engine.store import ItemNotFound, ItemUnreadable, Store
from syncmld.protocol.errors import RemoteProtocolError
from syncmld.protocol.model import (
    Alert,
    Chal,
    Command,
    Item,
    Message,
    Meta,
    Status,
    command_name,
)

NEXT_MESSAGE = 222


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while one message is handled.

    Decoding and answering a message of thousands of items allocates
    hundreds of thousands of small acyclic objects (tree nodes, commands,
    Statuses); each allocation burst triggers full collections that walk
    every live object of the process again, which made a large sync's cost
    grow faster than its size.  Reference counting frees all of them anyway;
    the collector runs as usual once the message is done.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def package_open(msg: Message) -> bool:
    """Whether the sender's package goes on after ``msg``.

    A message without ``Final`` that carries real commands is part of a
    package with more to come.  One that carries only Statuses and Alert 222
    is not: its sender is waiting for the rest of *our* package.
    """
    if msg.final:
        return False
    return any(
        not isinstance(c, Status) and not (isinstance(c, Alert) and c.data == NEXT_MESSAGE)
        for c in msg.commands
    )


def asks_next_message(msg: Message) -> bool:
    """Whether ``msg`` carries Alert 222: its sender waits for another message from us.

    Such a message never ends the session, even with ``Final``: the
    Funambol Outlook client 3.0 sends Alert 222 *with* Final after its Sync
    package to fetch the server's changes, and sends its Map only after the
    answer.
    """
    return any(isinstance(c, Alert) and c.data == NEXT_MESSAGE for c in msg.commands)


def status_for(
    msg: Message,
    cmd: Command | None,
    code: int,
    *,
    target: str | None = None,
    source: str | None = None,
    items: tuple[Item, ...] = (),
    chal: Chal | None = None,
) -> Status:
    """The Status answering ``cmd`` of ``msg`` (``cmd=None``: the SyncHdr).

    The CmdID is assigned when the Status is packed into a message.
    """
    hdr = msg.header
    if cmd is None:
        return Status(
            cmd_id=0,
            msg_ref=hdr.msg_id,
            cmd_ref=0,
            cmd="SyncHdr",
            data=code,
            target_refs=(hdr.target.uri,),
            source_refs=(hdr.source.uri,),
            chal=chal,
        )
    return Status(
        cmd_id=0,
        msg_ref=hdr.msg_id,
        cmd_ref=cmd.cmd_id,
        cmd=command_name(cmd),
        data=code,
        target_refs=(target,) if target else (),
        source_refs=(source,) if source else (),
        items=items,
        chal=chal,
    )


def item_text(item: Item, meta: Meta | None) -> str:
    """An item's data as text: base64 (``Format b64``) and binary data decoded.

    Raises:
        RemoteProtocolError: status 415 for data that is not text.
    """
    data = item.data
    fmt = (item.meta.format if item.meta and item.meta.format else None) or (
        meta.format if meta and meta.format else None
    )
    raw: bytes
    if isinstance(data, bytes):
        raw = data
    elif isinstance(data, str):
        if not fmt or fmt.lower() != "b64":
            return data
        try:
            raw = base64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            raise RemoteProtocolError("item data is not base64", status=415) from None
    elif data is None:
        return ""
    else:
        raise RemoteProtocolError("item data is not text", status=415)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Sony Ericsson phones send ISO-8859-1 text inside UTF-8 documents.
        return raw.decode("latin-1")


@dataclass(slots=True)
class Chunk:
    """A large object being received (``MoreData`` chunks)."""

    kind: str
    remote_id: str
    content_type: str | None
    size: int | None
    parts: list[str] = field(default_factory=list)


def size_matches(text: str, size: int) -> bool:
    """Whether reassembled data has the declared ``Size``.

    XML transports lose the CR of CRLF (SyncEvolution declares the size of
    its CRLF data but sends it in CDATA, where the parser folds line ends),
    so a size that matches once LFs count as CRLF is accepted too.
    """
    n = len(text.encode("utf-8"))
    if n == size:
        return True
    bare_lf = text.count("\n") - text.count("\r\n")
    return n + bare_lf == size


def read_items(
    store: Store, ids: Sequence[str]
) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Read ``ids``: ``({id: (text, etag)}, {id: why it is unreadable})``.

    Missing ids are left out.  The items are read in one ``get_many``; when
    one of them is unreadable (:class:`~syncmld.engine.store.ItemUnreadable`)
    they are read again one by one, so that only that one is set aside.
    """
    texts: dict[str, tuple[str, str]] = {}
    unreadable: dict[str, str] = {}
    try:
        for item_id, text, etag in store.get_many(ids):
            texts[item_id] = (text, etag)
    except ItemUnreadable:
        texts.clear()
        for item_id in ids:
            try:
                texts[item_id] = store.get(item_id)
            except ItemNotFound:
                continue
            except ItemUnreadable as exc:
                unreadable[item_id] = str(exc) or item_id
    return texts, unreadable


def set_aside(
    listing: dict[str, str], known: Mapping[str, ItemState], unreadable: Iterable[str]
) -> None:
    """Take unreadable items out of this session's view of the store.

    An item with a row looks unchanged (its listing etag becomes the row's),
    so it is neither sent as changed nor as deleted and its row stays; an
    item never synced is not listed at all.
    """
    for item_id in unreadable:
        row = known.get(item_id)
        if row is None:
            listing.pop(item_id, None)
        else:
            listing[item_id] = row.etag


def unreadable_message(unreadable: Mapping[str, str]) -> str:
    """``"1 item could not be read: contacts/x.vcf: ..."`` for the run's counts."""
    n = len(unreadable)
    what = "1 item" if n == 1 else f"{n} items"
    return f"{what} could not be read: " + "; ".join(sorted(unreadable.values()))


def to_read(
    listing: Mapping[str, str], known: Mapping[str, ItemState], *, everything: bool
) -> list[str]:
    """The ids a change detection reads: all, or those new or with a new (or unknown) etag."""
    if everything:
        return list(listing)
    out = []
    for item_id, etag in listing.items():
        row = known.get(item_id)
        if row is None or not row.etag or row.etag != etag:
            out.append(item_id)
    return out
