"""Our client against our server, in one process, for every feature of both roles."""

from __future__ import annotations

import pytest

from syncmld.engine.session import AuthFailed, AuthMode, ConflictResolved, GuardTripped
from syncmld.protocol.codec import Encoding, decode_message
from syncmld.protocol.codes import StatusCode, SyncMode
from syncmld.protocol.model import Alert, Sync

from .pair import Pair, vcard

FLAVOURS = [
    pytest.param((Encoding.XML, "1.2"), id="xml-1.2"),
    pytest.param((Encoding.WBXML, "1.2"), id="wbxml-1.2"),
    pytest.param((Encoding.XML, "1.1"), id="xml-1.1"),
    pytest.param((Encoding.WBXML, "1.1"), id="wbxml-1.1"),
]


@pytest.fixture(params=FLAVOURS)
def pair(request: pytest.FixtureRequest) -> Pair:
    encoding, version = request.param
    return Pair(encoding=encoding, version=version)


def fill(store_items: list[str], store: object) -> None:
    for text in store_items:
        store.add(text)  # type: ignore[attr-defined]


def test_first_sync_is_slow_and_merges_both_sides(pair: Pair) -> None:
    fill([vcard(1), vcard(2)], pair.client_store)
    fill([vcard(3)], pair.server_store)
    out = pair.sync()
    assert out.ok, (out.client.run, out.server)
    server, client = pair.normalized()
    assert server == client
    assert len(server) == 3
    assert out.client.run.stores[0].mode == 201


def test_slow_sync_of_identical_data_creates_nothing(pair: Pair) -> None:
    fill([vcard(1), vcard(2)], pair.client_store)
    fill([vcard(1), vcard(2)], pair.server_store)
    out = pair.sync()
    assert out.ok
    assert len(pair.server_store) == 2
    assert len(pair.client_store) == 2
    counts = out.server.run.stores[0]  # type: ignore[union-attr]
    assert counts.local_added == counts.remote_added == 0


def test_no_change_sync_writes_nothing(pair: Pair) -> None:
    fill([vcard(i) for i in range(5)], pair.client_store)
    assert pair.sync().ok
    before = (pair.server_store.list(), pair.client_store.list())
    out = pair.sync()
    assert out.ok
    assert out.client.run.stores[0].mode == 200
    assert (pair.server_store.list(), pair.client_store.list()) == before


def test_changes_travel_both_ways(pair: Pair) -> None:
    fill([vcard(i) for i in range(4)], pair.client_store)
    assert pair.sync().ok
    cid = next(i for i, _ in pair.client_store.list())
    pair.client_store.edit(cid, vcard(100, "Edited"))
    sid = next(i for i, _ in pair.server_store.list() if "Person3" in pair.server_store.get(i)[0])
    pair.server_store.edit(sid, vcard(3, "ServerEdit"))
    pair.client_store.add(vcard(50))
    pair.server_store.add(vcard(60))
    out = pair.sync()
    assert out.ok
    server, client = pair.normalized()
    assert server == client
    assert any("Edited" in s for s in server)
    assert any("ServerEdit" in s for s in server)
    assert len(server) == 6
    # and deletions
    pair.client_store.delete(cid, etag=None)
    out = pair.sync()
    assert out.ok
    server, client = pair.normalized()
    assert server == client
    assert len(server) == 5


def test_received_changes_are_not_echoed(pair: Pair) -> None:
    fill([vcard(1)], pair.client_store)
    assert pair.sync().ok
    pair.client_store.add(vcard(2))
    out = pair.sync()
    assert out.ok
    counts = out.server.run.stores[0]  # type: ignore[union-attr]
    assert counts.local_added == 1
    assert counts.remote_added == counts.remote_replaced == 0
    out = pair.sync()
    assert out.server.run.stores[0].local_added == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("mode", "server_after", "client_after"),
    [
        (SyncMode.ONE_WAY_FROM_CLIENT, 3, 2),
        (SyncMode.ONE_WAY_FROM_SERVER, 2, 3),
    ],
)
def test_one_way_modes(mode: SyncMode, server_after: int, client_after: int) -> None:
    p = Pair()
    fill([vcard(1)], p.client_store)
    assert p.sync().ok
    p.client_store.add(vcard(2))
    p.server_store.add(vcard(3))
    out = p.sync(mode)
    assert out.ok, out.client.run
    assert len(p.server_store) == server_after
    assert len(p.client_store) == client_after


def test_refresh_from_server_replaces_client_data() -> None:
    p = Pair()
    fill([vcard(1), vcard(2)], p.server_store)
    fill([vcard(7)], p.client_store)
    out = p.sync(SyncMode.REFRESH_FROM_SERVER)
    assert out.ok, out.client.run
    server, client = p.normalized()
    assert server == client
    assert len(client) == 2


def test_refresh_from_client_replaces_server_data_when_allowed() -> None:
    p = Pair()
    fill([vcard(1)], p.client_store)
    fill([vcard(8), vcard(9)], p.server_store)
    out = p.sync(SyncMode.REFRESH_FROM_CLIENT)
    # Deleting the desktop's items on a refresh needs the user's consent:
    # the guard stops it and nothing is deleted.
    assert any(isinstance(e, GuardTripped) for e in out.server_events)
    assert len(p.server_store) >= 2


def test_conflict_is_merged_by_default(pair: Pair) -> None:
    fill([vcard(1)], pair.client_store)
    assert pair.sync().ok
    cid = next(i for i, _ in pair.client_store.list())
    sid = next(i for i, _ in pair.server_store.list())
    pair.client_store.edit(cid, vcard(1, "Phone"))
    pair.server_store.edit(sid, vcard(1, "Desk"))
    out = pair.sync()
    assert out.ok
    assert any(isinstance(e, ConflictResolved) for e in out.server_events)
    server, client = pair.normalized()
    assert server == client
    assert len(server) == 1


def test_md5_authentication_and_nonce_for_next_session() -> None:
    p = Pair(auth=AuthMode.MD5, client_auth="md5")
    fill([vcard(1)], p.client_store)
    out = p.sync()
    assert out.ok, out.client.run
    # The first attempt used an empty nonce, which the server does not know
    # for a new device: it challenged, and the client answered.
    assert p.client_state is not None and p.client_state.nonce
    out = p.sync()
    assert out.ok
    assert not any(isinstance(e, AuthFailed) for e in out.client_events)


def test_basic_authentication() -> None:
    p = Pair(auth=AuthMode.BASIC)
    fill([vcard(1)], p.client_store)
    assert p.sync().ok


def test_wrong_password_fails_cleanly_and_changes_nothing() -> None:
    p = Pair(auth=AuthMode.MD5, client_auth="md5", password="wrong")
    fill([vcard(1)], p.client_store)
    fill([vcard(2)], p.server_store)
    out = p.sync()
    assert out.client.run.status == StatusCode.INVALID_CREDENTIALS
    assert "authentication failed" in out.client.run.message
    assert out.client.peer is None
    assert out.server is not None and out.server.peer is None
    assert len(p.server_store) == 1 and len(p.client_store) == 1
    assert p.server_states == {}


def test_multi_message_packages_and_large_objects(pair: Pair) -> None:
    pair.client_max_msg = 4000
    pair.server_max_msg = 4000
    photo = "PHOTO;ENCODING=b;TYPE=JPEG:" + "QUJD" * 5000 + "\r\n"
    fill([vcard(i) for i in range(30)] + [vcard(99, extra=photo)], pair.client_store)
    out = pair.sync()
    assert out.ok, (out.client.run, out.server)
    assert out.messages > 10
    server, client = pair.normalized()
    assert server == client
    assert any("QUJD" * 100 in s for s in server)
    # and the other way round
    pair.server_store.add(vcard(200, extra=photo))
    out = pair.sync()
    assert out.ok
    server, client = pair.normalized()
    assert server == client


def test_messages_never_exceed_the_peer_limit() -> None:
    p = Pair(client_max_msg=3000, server_max_msg=3000, encoding=Encoding.WBXML)
    fill([vcard(i, extra="NOTE:" + "x" * 300 + "\r\n") for i in range(40)], p.server_store)
    sizes: list[int] = []

    def watch(n: int, data: bytes) -> bytes:
        sizes.append(len(data))
        return data

    assert p.sync(tamper=watch).ok
    assert max(sizes) <= 3000


def test_cut_sessions_leave_state_and_converge_without_duplicates() -> None:
    for cut in range(1, 12):
        p = Pair()
        fill([vcard(i) for i in range(3)], p.client_store)
        fill([vcard(i) for i in range(10, 13)], p.server_store)
        p.sync(cut_after=cut)
        out = p.sync()
        assert out.ok, (cut, out.client.run)
        server, client = p.normalized()
        assert server == client, cut
        assert len(server) == 6, cut


def test_pkg1_alert_and_anchors_on_the_wire() -> None:
    p = Pair()
    seen: list[bytes] = []

    def keep(n: int, data: bytes) -> bytes:
        seen.append(data)
        return data

    fill([vcard(1)], p.client_store)
    assert p.sync(tamper=keep).ok
    first = decode_message(seen[0])
    alert = next(c for c in first.commands if isinstance(c, Alert))
    assert alert.data == 201
    assert alert.items[0].meta is not None and alert.items[0].meta.anchor is not None
    third = decode_message(seen[1])
    assert any(isinstance(c, Sync) for c in third.commands)


def test_server_alerted_sync_from_a_notification() -> None:
    from syncmld.engine.server import SAN_CONTENT_TYPE, notification
    from syncmld.engine.session import Datastore
    from syncmld.protocol.san import parse_san

    p = Pair()
    fill([vcard(1)], p.server_store)
    data, ctype = notification(
        [(Datastore(name="contacts", store=p.server_store), SyncMode.TWO_WAY)],
        server_id="PC Suite",
        session_id=42,
    )
    assert ctype == SAN_CONTENT_TYPE
    san = parse_san(data)
    assert san.server_id == "PC Suite"
    assert [a.sync_type for a in san.alerts] == [206]
    assert [a.server_uri for a in san.alerts] == ["contacts"]
    # The phone answers with a client session; its first sync is slow (201),
    # later ones alert 206, which the server takes as two-way.
    assert p.sync().ok
    p.client_store.add(vcard(2))
    out = p.sync(server_alerted=True)
    assert out.ok, out.client.run
    assert out.server is not None and out.server.run.stores[0].mode == 200
    server, client = p.normalized()
    assert server == client and len(server) == 2


def test_package_zero_notification_for_older_phones() -> None:
    from syncmld.engine.server import notification
    from syncmld.engine.session import Datastore
    from syncmld.protocol.san import message_to_san

    store = Pair().server_store
    data, ctype = notification(
        [(Datastore(name="Contacts", store=store), SyncMode.ONE_WAY_FROM_SERVER)],
        server_id="PC Suite",
        session_id=7,
        version="1.1",
    )
    assert ctype == Encoding.WBXML.content_type
    san = message_to_san(decode_message(data))
    assert [a.sync_type for a in san.alerts] == [209]
