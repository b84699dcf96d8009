"""Engine bugs found by the state machine (``test_machine.py``), one test each.

Each test is the shortest story that showed the bug, on the in-process pair
(our client against our server, states kept in dicts).
"""

from __future__ import annotations

from typing import ClassVar
from unittest import mock

from syncmld.engine.outbox import Outbox, OutChange, OutSync
from syncmld.engine.server import ServerSession
from syncmld.engine.session import Reply
from syncmld.engine.store import MemoryStore
from syncmld.protocol.codec import Encoding
from syncmld.protocol.codes import SyncMode
from syncmld.protocol.model import Add, Location, Status, Sync, SyncHdr

from . import pair as pair_module
from .pair import Pair, vcard


def local_id(store: MemoryStore, uid: str) -> str:
    """The id of the item holding ``uid``."""
    return next(i for i, _ in store.list() if f"UID:{uid}\r\n" in store.get(i)[0])


def texts(store: MemoryStore) -> list[str]:
    return sorted(t.replace("\r\n", "\n").strip() for t in store.values())


# -- outbox ---------------------------------------------------------------------

BIG = vcard(1, extra="NOTE:" + "ж😀nx" * 400 + "\r\n")


def test_large_object_after_many_statuses_is_chunked_once_within_the_limit() -> None:
    """Outbox: a large item behind many Statuses went out whole, then again.

    The Statuses left no room for a chunk, so the item was sent whole (twice
    the peer's MaxMsgSize); the message was still too big, and giving up
    restored the queue *after* building the message: the item went out a
    second time, in chunks, after the package had ended, and the client
    finished the session while the server waited for its answer.
    """
    outbox = Outbox(encoding=Encoding.XML, max_msg_size=2500, large_objects=True)
    out = OutSync(target="card", source="contacts")
    out.changes.append(OutChange("Add", "big", source="1", data=BIG, content_type="text/vcard"))
    outbox.put(out)
    header = SyncHdr(
        ver_dtd="1.2",
        ver_proto="SyncML/1.2",
        session_id="1",
        msg_id=1,
        target=Location(uri="device-1"),
        source=Location(uri="http://127.0.0.1/sync"),
    )
    statuses = [
        Status(cmd_id=0, msg_ref=1, cmd_ref=n, cmd="Replace", data=200, source_refs=(str(n),))
        for n in range(6)
    ]
    parts: list[str] = []
    for n in range(20):
        msg, data, _ = outbox.build(header, statuses if n == 0 else [], package_ends=True)
        assert len(data) <= 2500
        for cmd in msg.commands:
            if isinstance(cmd, Sync):
                parts += [str(c.items[0].data) for c in cmd.commands if isinstance(c, Add)]
        if outbox.empty:
            assert msg.final
            break
    assert "".join(parts) == BIG


class _Recording(ServerSession):
    sizes: ClassVar[list[int]] = []

    def receive(self, data: bytes) -> Reply:
        reply = super().receive(data)
        _Recording.sizes.append(len(reply.data))
        return reply


def test_large_object_in_a_slow_sync_to_a_small_client() -> None:
    """The same bug in a session: the client's limit held and the session completed."""
    p = Pair(client_max_msg=2500)
    for n in (2, 3, 4):
        p.client_store.add(vcard(n))
        p.server_store.add(vcard(n))
    p.server_store.add(BIG)
    _Recording.sizes = []
    with mock.patch.object(pair_module, "ServerSession", _Recording):
        out = p.sync()
    assert out.ok, (out.client.run, out.server)
    assert max(_Recording.sizes) <= 2500
    server, client = p.normalized()
    assert server == client
    assert len(client) == 4


def test_large_object_behind_an_anchor_status_is_chunked() -> None:
    """Outbox: a large item sent whole because one Status looked big.

    The first message of pkg3 carries the Status for the server's Alert with
    its Anchor, which the estimate counts generously; no room was left for a
    chunk, the item went whole (5,272 bytes to a server taking 3,000), and
    the retry loop gave up at once.  The item now waits for the next message.
    """
    p = Pair(server_max_msg=3000, client_max_msg=2500, encoding=Encoding.WBXML)
    p.client_store.add(vcard(1, extra="NOTE:" + "<<<ÄÄÄ漢" * 400 + "\r\n"))
    sizes: list[int] = []

    def record(_n: int, data: bytes) -> bytes:
        sizes.append(len(data))
        return data

    out = p.sync(tamper=record)
    assert out.ok, (out.client.run, out.server)
    assert max(sizes) <= 3000
    server, client = p.normalized()
    assert server == client


def test_many_items_to_a_peer_with_a_large_limit_keep_our_answer_small() -> None:
    """Outbox: the answer to a big message did not fit the small side's MaxMsgSize.

    With 2,500 bytes for the client and a megabyte for the server, the client
    sent 15 items in one message, and the server's 17 Statuses for it came
    to 2,708 bytes.  A side now sends no more commands than the peer can
    acknowledge within the sender's own MaxMsgSize.
    """
    p = Pair(client_max_msg=2500)
    for n in range(15):
        p.client_store.add(vcard(n))
    _Recording.sizes = []
    with mock.patch.object(pair_module, "ServerSession", _Recording):
        out = p.sync()
    assert out.ok, (out.client.run, out.server)
    assert max(_Recording.sizes) <= 2500
    assert len(p.server_store) == 15


def test_map_for_many_items_is_split_to_fit_the_server_limit() -> None:
    """Outbox: the client's Map for every item the server added came in one piece.

    The server (3,000 bytes) sent ten items in one message to a client with a
    large limit; the client's answer, ten Statuses and a Map of ten items,
    came to 3,016 bytes.  The Map is now split over messages.
    """
    p = Pair(server_max_msg=3000)
    for n in range(10):
        p.server_store.add(vcard(n))
    sizes: list[int] = []

    def record(_n: int, data: bytes) -> bytes:
        sizes.append(len(data))
        return data

    out = p.sync(SyncMode.REFRESH_FROM_SERVER, tamper=record)
    assert out.ok, (out.client.run, out.server)
    assert max(sizes) <= 3000
    server, client = p.normalized()
    assert server == client
    assert p.sync().ok  # every item was mapped: nothing is sent again
    assert len(p.client_store) == 10


# -- client ---------------------------------------------------------------------


def test_stale_pending_map_does_not_refuse_the_server_add() -> None:
    """Client: a pending map naming an item the user deleted answered 404 forever.

    The server committed the session (it built pkg6) but the client never got
    pkg6, so the client kept a pending map for the item it had added.  The
    user deleted that item; the next (slow) sync sent it again and the client
    matched the Add to the deleted item: 404, and the two sides never agreed.
    """
    p = Pair()
    assert p.sync().ok
    p.server_store.add(vcard(1))
    p.sync(cut_after=5)
    assert p.client_state is not None
    assert p.client_state.pairs["card"].pending_maps
    p.client_store.delete(local_id(p.client_store, "uid-1"), etag=None)
    out = p.sync()
    assert out.ok, (out.client.run, out.server)
    server, client = p.normalized()
    assert server == client == texts(p.server_store)
    assert len(server) == 1


def test_slow_sync_forgets_rows_of_items_gone_on_the_client() -> None:
    """Client: a slow sync kept the rows of items it no longer had.

    Both sides deleted the item, a slow sync ran (and succeeded); the client
    still remembered the item, saw it as deleted at the next two-way sync,
    and its guard tripped on the empty store at every sync from then on.
    """
    p = Pair()
    p.client_store.add(vcard(1))
    assert p.sync().ok
    p.client_store.delete(local_id(p.client_store, "uid-1"), etag=None)
    p.server_store.delete(local_id(p.server_store, "uid-1"), etag=None)
    assert p.sync(SyncMode.SLOW).ok
    out = p.sync()
    assert out.ok, (out.client.run, out.server)
    assert out.client.run.stores[0].mode == 200
    assert len(p.client_store) == len(p.server_store) == 0


def test_item_matched_by_uid_with_other_content_is_sent_later() -> None:
    """Client: an Add matched to a local item with other content hid that content.

    Both sides got the same contact with different names; a one-way sync from
    the server matched the server's Add to the local item by UID (no
    duplicate, right), but recorded the local etag with the server's digest,
    so the local version never counted as a change: the two sides kept their
    different versions forever.
    """
    p = Pair()
    assert p.sync().ok
    p.client_store.add(vcard(1, "Phone"))
    p.server_store.add(vcard(1, "Desk"))
    assert p.sync(SyncMode.ONE_WAY_FROM_SERVER).ok
    assert len(p.client_store) == 1
    assert p.sync().ok
    server, client = p.normalized()
    assert server == client
    assert len(server) == 1


def test_one_way_from_server_does_not_delete_a_local_edit() -> None:
    """Client: a one-way sync from the server deleted an item edited on the phone.

    That mode sends none of the phone's changes, so the server could not see
    the edit; the client deleted the edited item as told.  The edit now wins
    (as Policy.MERGE resolves edit against delete), and the next two-way sync
    brings it back to the server.
    """
    p = Pair()
    p.client_store.add(vcard(1))
    p.client_store.add(vcard(2))
    assert p.sync().ok
    p.client_store.edit(local_id(p.client_store, "uid-1"), vcard(1, "Edited"))
    p.server_store.delete(local_id(p.server_store, "uid-1"), etag=None)
    assert p.sync(SyncMode.ONE_WAY_FROM_SERVER).ok
    assert any("Edited" in t for t in texts(p.client_store))
    assert p.sync().ok
    server, client = p.normalized()
    assert server == client
    assert any("Edited" in t for t in server)


# -- both roles: sessions that break off ----------------------------------------


def test_change_received_before_a_break_does_not_beat_a_later_edit() -> None:
    """Client: a change received in a broken session came back as the client's own.

    The server's edit reached the client, which answered, but the connection
    dropped before the server got the answer.  Nothing was kept, so at the
    next sync the client's copy differed from its old row: a "client change"
    that, against a second server edit made meanwhile, was a conflict the
    client's version won.  The second edit was lost.
    """
    p = Pair()
    p.client_store.add(vcard(1))
    p.client_store.add(vcard(2))
    assert p.sync().ok
    sid = local_id(p.server_store, "uid-1")
    p.server_store.edit(sid, vcard(1, extra="EMAIL:first@example.org\r\n"))
    p.sync(cut_after=4)  # the client applied the edit; its answer never arrived
    assert any("first@" in t for t in texts(p.client_store))
    p.server_store.edit(sid, vcard(1, extra="EMAIL:first@example.org\r\nNOTE:second\r\n"))
    assert p.sync().ok
    server, client = p.normalized()
    assert server == client
    assert any("NOTE:second" in t for t in server)


def test_change_applied_before_a_break_does_not_beat_a_later_edit() -> None:
    """Server: the mirror image; the server applied the client's change, then the break.

    The client sent its edit and the server wrote it, but the client never
    got the status.  It sent the edit again next time, and the server, whose
    row still held the old version, took it for a conflict with the desktop
    edit made in between; the client's version won and the desktop edit was
    lost.
    """
    p = Pair()
    p.client_store.add(vcard(1))
    p.client_store.add(vcard(2))
    assert p.sync().ok
    p.client_store.edit(local_id(p.client_store, "uid-1"), vcard(1, "Phone"))
    p.sync(cut_after=3)  # the server applied the edit; its answer never arrived
    sid = local_id(p.server_store, "uid-1")
    assert "Phone" in p.server_store.get(sid)[0]
    p.server_store.edit(sid, vcard(1, "Phone", extra="NOTE:desk\r\n"))
    assert p.sync().ok
    server, client = p.normalized()
    assert server == client
    assert any("NOTE:desk" in t for t in server)


def test_item_added_before_a_break_is_not_added_twice() -> None:
    """Client: the row kept for an item added in a broken session made a duplicate.

    (Found after the fix above.)  The client added the server's item and sent
    its Map, which never arrived.  Keeping a row for that item hid it from the
    matching of a later Add: a complete one-way session dropped the pending
    map, and the server, which still had no mapping, sent the item again.
    Items whose Map is unconfirmed keep no row now.
    """
    p = Pair()
    assert p.sync().ok
    p.server_store.add(vcard(1))
    p.sync(cut_after=4)  # the client added the item; its Map never arrived
    assert len(p.client_store) == 1
    assert p.sync(SyncMode.ONE_WAY_FROM_CLIENT).ok
    assert p.sync().ok
    assert len(p.client_store) == len(p.server_store) == 1


def test_broken_refresh_from_server_ends_in_a_slow_sync() -> None:
    """Client: a refresh from the server that broke off after the wipe.

    The client had deleted its items for the refresh, but kept its rows and
    anchors: the next two-way sync saw every item as deleted by the user (the
    guard tripped at every sync), or, when some of the server's items had
    arrived, sent those back as new ones: the server held every item twice.
    Now the rows and anchors go with the wipe and a slow sync follows, which
    matches what the client holds and restores the rest.
    """
    for cut in (2, 3, 4):  # after the wipe, before / after the server's items came
        p = Pair()
        for n in range(3):
            p.client_store.add(vcard(n))
        assert p.sync().ok
        p.sync(SyncMode.REFRESH_FROM_SERVER, cut_after=cut)
        out = p.sync()
        assert out.ok, (cut, out.client.run, out.server)
        assert out.client.run.stores[0].mode == 201
        server, client = p.normalized()
        assert server == client, cut
        assert len(server) == 3, cut


def _no_uid(n: int, extra: str = "") -> str:
    return vcard(n, extra=extra).replace(f"UID:uid-{n}\r\n", "")


def test_slow_sync_pairs_by_the_existing_mapping_first() -> None:
    """Server: a slow sync of a client that sends no UID duplicated every edited item.

    The server matched the client's items by UID (none) and by content (the
    client's copy had changed a little), never by the LUID its own mapping
    still names: each such item was added a second time.  Now the mapping
    pairs them, and the differing content is a merge per the policy.
    """
    p = Pair()
    for n in range(4):
        p.client_store.add(_no_uid(n))
    assert p.sync().ok
    assert len(p.server_store) == 4
    for item_id, _ in p.client_store.list():
        text, _ = p.client_store.get(item_id)
        p.client_store.edit(item_id, text.replace("END:VCARD", "NOTE:edited\r\nEND:VCARD"))
    out = p.sync(SyncMode.SLOW)
    assert out.ok, out.client.run
    assert out.client.run.stores[0].mode == 201
    server, client = p.normalized()
    assert len(server) == len(client) == 4
    assert server == client
    assert all("NOTE:edited" in text for text in server)
