"""Engine behaviour SyncEvolution depends on, pinned down without SyncEvolution (sans-IO).

libsynthesis (SyncEvolution's engine) does not send a message that would only
carry the Status for the other side's SyncHdr:

* as a client, when our pkg4 holds nothing but Statuses it ends the session
  without pkg5, and a server waiting for pkg5 never commits - the next sync
  of the pair then falls back to slow (found with the one-way-from-client
  rows of ``test_se_client.py``);
* as a server, in one-way and refresh from client it sends a pkg4 of only
  Statuses and ends its session; a pkg5 from us then gets HTTP 500 (found with
  ``test_se_server.py``).
"""

from __future__ import annotations

import dataclasses

import pytest

from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.server import ServerConfig, ServerSession
from syncmld.engine.session import Datastore
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.protocol.codec import decode_message, encode_message, sniff
from syncmld.protocol.codes import SyncMode
from syncmld.protocol.model import Status, Sync


def _client(store: MemoryStore, mode: SyncMode) -> ClientSession:
    return ClientSession(
        ClientConfig(
            url="http://127.0.0.1/sync",
            dev_id="device-1",
            stores=(
                ClientStore(
                    datastore=Datastore(name="card", store=store), remote_uri="contacts", mode=mode
                ),
            ),
        ),
        peer=None,
        now=1_700_000_000.0,
        session_id="1",
    )


def _vcard(n: int) -> str:
    return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:u{n}\r\nN:P{n};A;;;\r\nFN:A P{n}\r\nEND:VCARD\r\n"


@pytest.mark.parametrize("mode", [SyncMode.ONE_WAY_FROM_CLIENT, SyncMode.REFRESH_FROM_CLIENT])
def test_pkg4_of_a_from_client_mode_carries_an_empty_sync(mode: SyncMode) -> None:
    server_store = MemoryStore(content_types=(VCARD_30,))
    client_store = MemoryStore([_vcard(2), _vcard(3)], content_types=(VCARD_30,))
    server = ServerSession(
        ServerConfig(datastores=(Datastore(name="contacts", store=server_store),)),
        load_peer=lambda dev_id: None,
        now=1_700_000_000.0,
    )
    client = _client(client_store, mode)
    replies = []
    data: bytes | None = client.start()
    while data is not None:
        reply = server.receive(data)
        replies.append(decode_message(reply.data))
        data = client.receive(reply.data).data
    assert server.done and server.result is not None and server.result.run.status == 200
    assert client.done and client.result is not None and client.result.run.status == 200
    # pkg4: the answer to the client's Sync holds an empty Sync of ours, so
    # the client has a Status to send back (pkg5) and the session completes.
    pkg4 = replies[1]
    syncs = [c for c in pkg4.commands if isinstance(c, Sync)]
    assert len(syncs) == 1 and syncs[0].commands == ()
    assert syncs[0].target is not None and syncs[0].target.uri == "card"
    assert any(not isinstance(c, Status) for c in pkg4.commands)
    # The client's items arrived, nothing went to the client.
    assert sorted(server_store.values()) == sorted(client_store.values())
    assert len(client_store) == 2


@pytest.mark.parametrize("mode", [SyncMode.ONE_WAY_FROM_CLIENT, SyncMode.REFRESH_FROM_CLIENT])
def test_client_completes_on_a_pkg4_of_only_statuses(mode: SyncMode) -> None:
    server_store = MemoryStore(content_types=(VCARD_30,))
    client_store = MemoryStore([_vcard(2), _vcard(3)], content_types=(VCARD_30,))
    server = ServerSession(
        ServerConfig(datastores=(Datastore(name="contacts", store=server_store),)),
        load_peer=lambda dev_id: None,
        now=1_700_000_000.0,
    )
    client = _client(client_store, mode)
    data: bytes | None = client.start()
    sent = 0
    while data is not None:
        sent += 1
        reply = server.receive(data).data
        if sent == 2:
            # pkg4 the way SyncEvolution's server sends it: no Sync of its own.
            msg = decode_message(reply)
            msg = dataclasses.replace(
                msg, commands=tuple(c for c in msg.commands if not isinstance(c, Sync))
            )
            reply = encode_message(msg, sniff(reply))
        data = client.receive(reply).data
    assert sent == 2  # no pkg5
    assert client.result is not None and client.result.run.status == 200
    assert client.result.peer is not None
    pair = client.result.peer.pairs["card"]
    assert pair.remote_anchor and len(pair.items) == 2  # committed: the next sync is fast
    assert sorted(server_store.values()) == sorted(client_store.values())
