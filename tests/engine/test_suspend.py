"""Suspend and resume (SyncML 1.2 alerts 224/225): our client against our server.

A session is suspended (the client sends Alert 224) or cut off while items
are being exchanged; the next session alerts 225 and continues: what was
already exchanged is not sent again, and both sides end equal, without
duplicates and without losing items.
"""

from __future__ import annotations

import dataclasses

import pytest

from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.server import ServerConfig, ServerSession
from syncmld.engine.session import Datastore, Event, SessionFinished, StoreStarted
from syncmld.engine.state import StoreCounts
from syncmld.protocol.codec import Encoding, decode_message, encode_message
from syncmld.protocol.codes import AlertCode, SyncMode
from syncmld.protocol.model import Alert, Status, Sync
from tests.engine.pair import URL, Pair, vcard

ENCODINGS = [Encoding.XML, Encoding.WBXML]


def _sessions(pair: Pair, mode: SyncMode) -> tuple[ServerSession, ClientSession]:
    """A server and a client session configured as :meth:`Pair.sync` does."""
    pair.now += 60
    server = ServerSession(
        ServerConfig(
            datastores=(Datastore(name="contacts", store=pair.server_store),),
            max_msg_size=pair.server_max_msg,
        ),
        load_peer=pair.server_states.get,
        now=pair.now,
    )
    client = ClientSession(
        ClientConfig(
            url=URL,
            dev_id="device-1",
            stores=(
                ClientStore(
                    datastore=Datastore(name="card", store=pair.client_store),
                    remote_uri="contacts",
                    mode=mode,
                ),
            ),
            version=pair.version,
            encoding=pair.encoding,
            max_msg_size=pair.client_max_msg,
        ),
        peer=pair.client_state,
        now=pair.now,
        session_id=str(int(pair.now) % 10000),
    )
    return server, client


def _keep(pair: Pair, server: ServerSession, client: ClientSession) -> None:
    """Store what each side hands over, as the state database would."""
    assert client.result is not None
    if client.result.peer is not None:
        pair.client_state = client.result.peer
    if server.result is not None and server.result.peer is not None:
        pair.server_states[server.result.peer.dev_id] = server.result.peer


def suspended_sync(
    pair: Pair, mode: SyncMode, *, after: int, phases: list[str] | None = None
) -> tuple[bytes, bytes]:
    """A session whose client suspends after ``after`` answers from the server.

    Returns the suspending message and the server's answer to it; the
    client's phase at that point is appended to ``phases``.
    """
    phases = [] if phases is None else phases
    server, client = _sessions(pair, mode)
    data: bytes | None = client.start()
    answers = 0
    while data is not None:
        reply = server.receive(data)
        answers += 1
        result = client.receive(reply.data)
        data = result.data
        if answers == after:
            break
    assert data is not None, "the session ended before it could be suspended"
    phases.append(client.phase.value)
    suspend = client.suspend()
    assert suspend is not None and client.done
    last = server.receive(suspend)
    assert server.done and last.done
    _keep(pair, server, client)
    return suspend, last.data


def _counts(events: list[Event]) -> StoreCounts:
    finished = [e for e in events if isinstance(e, SessionFinished)]
    assert len(finished) == 1
    return finished[0].run.stores[0]


def _modes(events: list[Event]) -> list[int]:
    return [e.mode for e in events if isinstance(e, StoreStarted)]


def _equal_without_duplicates(pair: Pair, total: int) -> None:
    server, client = pair.normalized()
    assert server == client
    assert len(server) == total
    assert len(set(server)) == total


def _pair(encoding: Encoding, server_items: int = 0, client_items: int = 0) -> Pair:
    # Small messages: pkg3 and pkg4 each span several messages.
    pair = Pair(encoding=encoding, server_max_msg=4000, client_max_msg=4000)
    for n in range(server_items):
        pair.server_store.add(vcard(n, f"Server{n}"))
    for n in range(client_items):
        pair.client_store.add(vcard(1000 + n, f"Client{n}"))
    return pair


@pytest.mark.parametrize("encoding", ENCODINGS, ids=["xml", "wbxml"])
def test_suspend_mid_package_then_resume(encoding: Encoding) -> None:
    pair = _pair(encoding, server_items=30, client_items=60)
    suspend, answer = suspended_sync(pair, SyncMode.TWO_WAY, after=5)

    # The suspending message carries Alert 224, the answer Statuses only.
    alerts = [c for c in decode_message(suspend).commands if isinstance(c, Alert)]
    assert [a.data for a in alerts] == [AlertCode.SUSPEND]
    reply = decode_message(answer)
    assert reply.final and all(isinstance(c, Status) for c in reply.commands)

    # Both sides kept what the suspended session exchanged, and how.
    assert pair.client_state is not None
    kept = pair.client_state.pairs["card"]
    assert kept.resume_mode == AlertCode.SLOW_SYNC
    exchanged = len(kept.items)
    assert 0 < exchanged < 60
    server_kept = pair.server_states["device-1"].pairs["contacts"]
    assert server_kept.resume_mode == AlertCode.SLOW_SYNC
    assert server_kept.local_anchor is None  # anchors do not move

    outcome = pair.sync()
    assert outcome.ok, outcome.client.run
    assert _modes(outcome.client_events) == [200]  # resumed, as a two-way exchange
    assert any(
        isinstance(e, StoreStarted) and e.requested == AlertCode.RESUME
        for e in outcome.server_events
    )
    # Items the server already had are not sent again.
    sent = _counts(outcome.client_events)
    assert sent.remote_added + sent.remote_replaced <= 60 - exchanged
    _equal_without_duplicates(pair, 90)
    # The resume state is gone once the session completed.
    assert pair.client_state.pairs["card"].resume_mode is None
    assert pair.server_states["device-1"].pairs["contacts"].resume_mode is None
    # And the next sync has nothing to do.
    again = pair.sync()
    assert again.ok and _modes(again.client_events) == [200]
    counts = _counts(again.client_events)
    assert counts.remote_added == counts.local_added == 0
    _equal_without_duplicates(pair, 90)


@pytest.mark.parametrize("encoding", ENCODINGS, ids=["xml", "wbxml"])
def test_suspend_while_receiving_the_server_package_then_resume(encoding: Encoding) -> None:
    pair = _pair(encoding, server_items=5, client_items=5)
    assert pair.sync().ok
    for n in range(60):
        pair.server_store.add(vcard(400 + n, f"Bulk{n}"))
    phases: list[str] = []
    suspended_sync(pair, SyncMode.TWO_WAY, after=4, phases=phases)
    assert phases == ["receive-sync"]
    held = len(pair.client_store)
    assert 10 < held < 70

    outcome = pair.sync()
    assert outcome.ok, outcome.client.run
    assert _modes(outcome.client_events) == [200]
    # What the client already holds is not sent again.
    server_sent = outcome.server.run.stores[0] if outcome.server is not None else None
    assert server_sent is not None
    assert server_sent.remote_added <= 70 - held
    _equal_without_duplicates(pair, 70)


@pytest.mark.parametrize("encoding", ENCODINGS, ids=["xml", "wbxml"])
def test_cut_off_in_a_two_way_sync_then_resume(encoding: Encoding) -> None:
    pair = _pair(encoding, server_items=10, client_items=10)
    assert pair.sync().ok
    for n in range(25):
        pair.server_store.add(vcard(2000 + n, f"NewServer{n}"))
        pair.client_store.add(vcard(3000 + n, f"NewClient{n}"))
    cut = pair.sync(cut_after=10)
    assert not cut.ok
    assert pair.client_state is not None
    assert pair.client_state.pairs["card"].resume_mode == AlertCode.TWO_WAY
    assert pair.server_states["device-1"].pairs["contacts"].resume_mode == AlertCode.TWO_WAY

    outcome = pair.sync()
    assert outcome.ok, outcome.client.run
    assert _modes(outcome.client_events) == [200]
    assert any(
        isinstance(e, StoreStarted) and e.requested == AlertCode.RESUME
        for e in outcome.server_events
    )
    # Only what the cut-off session had not confirmed is sent again.
    sent = _counts(outcome.client_events)
    assert sent.remote_added < 25
    _equal_without_duplicates(pair, 70)


@pytest.mark.parametrize("encoding", ENCODINGS, ids=["xml", "wbxml"])
def test_resume_refused_is_a_slow_sync(encoding: Encoding) -> None:
    """The server lost its side of the suspended session: it answers 225 with
    508 and the client falls back to a slow sync."""
    pair = _pair(encoding, server_items=20, client_items=20)
    suspended_sync(pair, SyncMode.TWO_WAY, after=4)
    pair.server_states.clear()
    outcome = pair.sync()
    assert outcome.ok, outcome.client.run
    assert _modes(outcome.client_events) == [AlertCode.SLOW_SYNC]
    _equal_without_duplicates(pair, 40)


@pytest.mark.parametrize("encoding", ENCODINGS, ids=["xml", "wbxml"])
def test_resume_of_a_session_the_server_completed_is_a_slow_sync(encoding: Encoding) -> None:
    """The server committed the session but its last answer never reached
    the client: nothing to resume, 508, and a slow sync that ends with both
    sides equal."""
    pair = _pair(encoding, server_items=5, client_items=5)
    assert pair.sync().ok
    for n in range(6):
        pair.server_store.add(vcard(100 + n, f"LaterServer{n}"))
        pair.client_store.add(vcard(200 + n, f"LaterClient{n}"))
    server, client = _sessions(pair, SyncMode.TWO_WAY)
    data: bytes | None = client.start()
    while data is not None:
        reply = server.receive(data)
        if reply.done:
            break  # the server's last answer is lost
        data = client.receive(reply.data).data
    assert server.done and server.result is not None and server.result.run.status == 200
    client.abort("connection lost")
    _keep(pair, server, client)
    assert pair.client_state is not None
    assert pair.client_state.pairs["card"].resume_mode == AlertCode.TWO_WAY
    assert pair.server_states["device-1"].pairs["contacts"].resume_mode is None

    server, client = _sessions(pair, SyncMode.TWO_WAY)
    first = client.start()
    alerts = [c for c in decode_message(first).commands if isinstance(c, Alert)]
    assert [a.data for a in alerts] == [AlertCode.RESUME]
    reply = server.receive(first)
    answer = decode_message(reply.data)
    codes = [c.data for c in answer.commands if isinstance(c, Status) and c.cmd == "Alert"]
    assert codes == [508]
    started = [e for e in reply.events if isinstance(e, StoreStarted)]
    assert [(e.mode, e.requested) for e in started] == [(201, AlertCode.RESUME)]
    server.abort("test over")
    client.abort("test over")

    outcome = pair.sync()
    assert outcome.ok, outcome.client.run
    _equal_without_duplicates(pair, 22)


def test_no_resume_before_syncml_1_2() -> None:
    pair = _pair(Encoding.XML, server_items=5, client_items=5)
    pair.version = "1.1"
    server, client = _sessions(pair, SyncMode.TWO_WAY)
    data = client.start()
    result = client.receive(server.receive(data).data)
    assert result.data is not None
    assert client.suspend() is None and client.done
    server.abort("connection lost")
    _keep(pair, server, client)
    assert pair.client_state is None or all(
        p.resume_mode is None for p in pair.client_state.pairs.values()
    )
    outcome = pair.sync()
    assert outcome.ok
    _equal_without_duplicates(pair, 10)


def _cut_two_way(pair: Pair) -> None:
    """A two-way session with changes on both sides, cut off in the middle."""
    assert pair.sync().ok
    for n in range(25):
        pair.server_store.add(vcard(2000 + n, f"NewServer{n}"))
        pair.client_store.add(vcard(3000 + n, f"NewClient{n}"))
    assert not pair.sync(cut_after=10).ok
    assert pair.client_state is not None
    assert pair.client_state.pairs["card"].resume_mode == AlertCode.TWO_WAY


@pytest.mark.parametrize("encoding", ENCODINGS, ids=["xml", "wbxml"])
def test_accepted_resume_is_alerted_with_the_saved_mode(encoding: Encoding) -> None:
    """Regression: the server alerted 225 back, which SyncEvolution refuses with 400.

    The Status 200 on the client's Alert 225 says "resumed"; our own Alert
    names the mode of the suspended session.
    """
    pair = _pair(encoding, server_items=10, client_items=10)
    _cut_two_way(pair)
    server, client = _sessions(pair, SyncMode.TWO_WAY)
    data: bytes | None = client.start()
    statuses: list[int] = []
    alerts: list[int | None] = []
    while data is not None:
        reply = server.receive(data).data
        answer = decode_message(reply)
        statuses += [c.data for c in answer.commands if isinstance(c, Status) and c.cmd == "Alert"]
        alerts += [c.data for c in answer.commands if isinstance(c, Alert) and c.data != 222]
        data = client.receive(reply).data
    assert statuses[0] == 200 and set(statuses) == {200}  # the 225, then Alerts 222
    assert alerts == [AlertCode.TWO_WAY]
    _keep(pair, server, client)
    assert client.result is not None and client.result.run.status == 200
    (counts,) = client.result.run.stores
    assert counts.mode == 200 and counts.remote_added < 25  # resumed: not all sent again
    _equal_without_duplicates(pair, 70)
    assert pair.client_state is not None
    assert pair.client_state.pairs["card"].resume_mode is None


@pytest.mark.parametrize("encoding", ENCODINGS, ids=["xml", "wbxml"])
def test_client_still_takes_an_alert_225_as_resumed(encoding: Encoding) -> None:
    """Servers of older syncmld builds alert 225 back: that too continues the session."""
    pair = _pair(encoding, server_items=10, client_items=10)
    _cut_two_way(pair)
    server, client = _sessions(pair, SyncMode.TWO_WAY)
    data: bytes | None = client.start()
    while data is not None:
        reply = decode_message(server.receive(data).data)
        old_style = dataclasses.replace(
            reply,
            commands=tuple(
                dataclasses.replace(c, data=AlertCode.RESUME)
                if isinstance(c, Alert) and c.data == AlertCode.TWO_WAY
                else c
                for c in reply.commands
            ),
        )
        data = client.receive(encode_message(old_style, encoding)).data
    _keep(pair, server, client)
    assert client.result is not None and client.result.run.status == 200
    (counts,) = client.result.run.stores
    assert counts.mode == 200 and counts.remote_added < 25
    _equal_without_duplicates(pair, 70)


@pytest.mark.parametrize("encoding", ENCODINGS, ids=["xml", "wbxml"])
def test_cut_before_the_server_got_the_sync_resumes_without_losing_deletions(
    encoding: Encoding,
) -> None:
    """Regression: the client kept resume markers once it had the server's Alert, the
    server only once the client's Sync arrived; the client's 225 then met
    nothing to resume, a slow sync followed and deleted items came back."""
    pair = _pair(encoding, server_items=6, client_items=6)
    assert pair.sync().ok
    gone = next(i for i, _ in pair.client_store.list())
    pair.client_store.delete(gone, etag=None)
    pair.server_store.add(vcard(77, "Later"))
    server, client = _sessions(pair, SyncMode.TWO_WAY)
    data = client.start()
    while not any(isinstance(c, Sync) for c in decode_message(data).commands):
        next_data = client.receive(server.receive(data).data).data
        assert next_data is not None
        data = next_data
    # The message with the client's Sync never arrives.
    client.abort("connection lost")
    server.abort("connection lost")
    _keep(pair, server, client)
    assert pair.client_state is not None
    assert pair.client_state.pairs["card"].resume_mode == AlertCode.TWO_WAY
    assert pair.server_states["device-1"].pairs["contacts"].resume_mode == AlertCode.TWO_WAY

    outcome = pair.sync()
    assert outcome.ok, outcome.client.run
    assert _modes(outcome.client_events) == [200]
    _equal_without_duplicates(pair, 12)  # 6 + 6 - 1 deleted + 1 added
