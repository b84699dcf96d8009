"""Store.flush: the engine makes a session's writes durable before handing its state over."""

from __future__ import annotations

import errno
import os

import pytest

from syncmld.engine.store import VCARD_30, MemoryStore, StoreError
from syncmld.protocol.codes import StatusCode

from .pair import Pair, vcard


class FlushingStore(MemoryStore):
    """A memory store that counts flushes, and fails them when told to."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__(content_types=(VCARD_30,))
        self.error = error
        self.flushes = 0
        #: How many items the store held at each flush.
        self.held: list[int] = []

    def flush(self) -> None:
        self.flushes += 1
        self.held.append(len(self))
        if self.error is not None:
            raise self.error


def test_each_role_flushes_once_after_its_writes() -> None:
    pair = Pair(server_store=FlushingStore(), client_store=FlushingStore())
    for n in range(3):
        pair.client_store.add(vcard(n))
    pair.server_store.add(vcard(9))
    out = pair.sync()
    assert out.ok
    server, client = pair.server_store, pair.client_store
    assert isinstance(server, FlushingStore) and isinstance(client, FlushingStore)
    # Flushed once per session, after every item arrived.
    assert (server.flushes, server.held) == (1, [4])
    assert (client.flushes, client.held) == (1, [4])
    assert pair.server_states and pair.client_state is not None


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(OSError(errno.EIO, os.strerror(errno.EIO), "/x/contacts"), id="oserror"),
        pytest.param(StoreError("cannot sync /x/contacts: Input/output error"), id="storeerror"),
    ],
)
def test_failed_server_flush_fails_the_session_and_commits_nothing(error: Exception) -> None:
    pair = Pair(server_store=FlushingStore(error))
    for n in range(3):
        pair.client_store.add(vcard(n))
    out = pair.sync()
    assert out.server is not None
    assert out.server.peer is None
    assert out.server.run.status == StatusCode.DATA_STORE_FAILURE
    assert "contacts: changes not saved:" in out.server.run.message
    assert "Input/output error" in out.server.run.message
    assert pair.server_states == {}
    # The client's side went through; the next session is a slow sync again,
    # because the server kept no anchors, and it settles without duplicates.
    assert pair.server_store.error is not None  # type: ignore[attr-defined]
    pair.server_store.error = None  # type: ignore[attr-defined]
    again = pair.sync()
    assert again.ok
    assert again.server is not None and again.server.run.stores[0].mode == 201
    server, client = pair.normalized()
    assert server == client and len(server) == 3


def test_failed_client_flush_fails_the_session_and_commits_nothing() -> None:
    pair = Pair(client_store=FlushingStore(StoreError("disk gone")))
    for n in range(2):
        pair.server_store.add(vcard(n))
    out = pair.sync()
    assert out.client.peer is None
    assert out.client.run.status == StatusCode.DATA_STORE_FAILURE
    assert out.client.run.message == "card: changes not saved: disk gone"
    assert pair.client_state is None


def test_broken_session_flushes_before_keeping_partial_state() -> None:
    # Cut after the server's answer to the client's changes: the server has
    # written them and keeps their rows (partial state) once they are durable.
    kept = Pair(server_store=FlushingStore())
    for n in range(3):
        kept.client_store.add(vcard(n))
    assert kept.sync().ok
    for n in range(3, 6):
        kept.client_store.add(vcard(n))
    cut = kept.sync(cut_after=3)
    assert cut.server is not None and cut.server.peer is not None  # partial rows kept
    assert cut.server.run.status == StatusCode.SESSION_CANCELLED
    assert kept.server_store.flushes == 2  # type: ignore[attr-defined]
    assert kept.server_store.held[-1] == 6  # type: ignore[attr-defined]

    lost = Pair(server_store=FlushingStore())
    for n in range(3):
        lost.client_store.add(vcard(n))
    assert lost.sync().ok
    before = dict(lost.server_states)
    for n in range(3, 6):
        lost.client_store.add(vcard(n))
    lost.server_store.error = StoreError("disk gone")  # type: ignore[attr-defined]
    out = lost.sync(cut_after=3)
    assert out.server is not None and out.server.peer is None
    assert out.server.run.message.endswith("; contacts: changes not saved: disk gone")
    assert lost.server_states == before
