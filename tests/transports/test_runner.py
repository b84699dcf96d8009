"""SessionRunner: driving server sessions, persisting outcomes, the observer, cancelling.

No transport here: our engine client's messages go straight to the runner;
the state database is real SQLite.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from syncmld.config import ConfigError, ObexConfig, parse
from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.server import ServerConfig
from syncmld.engine.session import Datastore, Event, PeerIdentified, SessionFinished
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.state import StateRepository
from syncmld.transports.http import HANDLER_KEY, HttpServer, make_app, run_client_session
from syncmld.transports.runner import ExchangeFailed, RunningSession, SessionRunner

from .test_obex_tcp import contents, vcard


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[StateRepository]:
    with StateRepository(f"sqlite:///{tmp_path / 'state.db'}") as r:
        yield r


class Phone:
    """Our engine client with a memory store; keeps its state between sessions."""

    def __init__(self, dev_id: str = "phone-1") -> None:
        self.store = MemoryStore(content_types=(VCARD_30,))
        self.dev_id = dev_id
        self.state = None
        self.now = 1_700_000_000.0

    def session(self) -> ClientSession:
        self.now += 60
        config = ClientConfig(
            url="syncmld",
            dev_id=self.dev_id,
            stores=(
                ClientStore(
                    datastore=Datastore(name="card", store=self.store), remote_uri="contacts"
                ),
            ),
        )
        return ClientSession(config, peer=self.state, now=self.now, session_id=str(int(self.now)))

    def keep(self, cs: ClientSession) -> None:
        if cs.result is not None and cs.result.peer is not None:
            self.state = cs.result.peer  # type: ignore[assignment]


async def run_session(runner: SessionRunner, phone: Phone) -> tuple[RunningSession, ClientSession]:
    sess = runner.open(transport="test")
    cs = phone.session()
    msg = cs.start()
    while msg is not None:
        async with sess.lock:
            reply = await runner.exchange(sess, msg)
        msg = cs.receive(reply.data).data
    phone.keep(cs)
    return sess, cs


class Recorder:
    """An observer that checks, at each SessionFinished, that the run is already stored."""

    def __init__(self, repo: StateRepository) -> None:
        self.repo = repo
        self.events: list[tuple[str, Event]] = []
        self.stored_when_finished: list[bool] = []

    def __call__(self, key: str, event: Event) -> None:
        self.events.append((key, event))
        if isinstance(event, SessionFinished):
            runs = self.repo.history(event.run.dev_id or None, limit=1)
            self.stored_when_finished.append(bool(runs) and runs[0].message == event.run.message)

    def finished(self) -> list[SessionFinished]:
        return [e for _, e in self.events if isinstance(e, SessionFinished)]


def make_runner(repo: StateRepository, store: MemoryStore, **kw: object) -> SessionRunner:
    config = ServerConfig(datastores=(Datastore(name="contacts", store=store),))
    return SessionRunner(config, repo, **kw)  # type: ignore[arg-type]


async def test_events_in_order_and_finished_once_after_saving(repo: StateRepository) -> None:
    store = MemoryStore(content_types=(VCARD_30,))
    rec = Recorder(repo)
    runner = make_runner(repo, store, observer=rec)
    phone = Phone()
    phone.store.add(vcard(1))
    sess, cs = await run_session(runner, phone)
    assert cs.result is not None and cs.result.run.status == 200
    assert {k for k, _ in rec.events} == {sess.key} and sess.key.startswith("test-")
    assert isinstance(rec.events[0][1], PeerIdentified)
    assert [type(e) for _, e in rec.events].count(SessionFinished) == 1
    assert isinstance(rec.events[-1][1], SessionFinished)
    assert rec.stored_when_finished == [True]
    assert repo.load_peer(phone.dev_id) is not None
    assert runner.sessions == {}
    assert contents(store) == contents(phone.store)


async def test_a_resent_message_does_not_repeat_events(repo: StateRepository) -> None:
    rec = Recorder(repo)
    runner = make_runner(repo, MemoryStore(content_types=(VCARD_30,)), observer=rec)
    sess = runner.open(transport="test")
    first = Phone().session().start()
    async with sess.lock:
        a = await runner.exchange(sess, first)
        b = await runner.exchange(sess, first)
    assert a is b
    assert [type(e) for _, e in rec.events].count(PeerIdentified) == 1


async def test_a_failing_observer_is_logged_and_ignored(
    repo: StateRepository, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(key: str, event: Event) -> None:
        raise RuntimeError("observer bug")

    runner = make_runner(repo, MemoryStore(content_types=(VCARD_30,)), observer=broken)
    _, cs = await run_session(runner, Phone())
    assert cs.result is not None and cs.result.run.status == 200
    assert "the observer failed" in caplog.text and "observer bug" in caplog.text


async def test_undecodable_message_is_400_and_recorded(repo: StateRepository) -> None:
    rec = Recorder(repo)
    runner = make_runner(repo, MemoryStore(content_types=(VCARD_30,)), observer=rec)
    sess = runner.open(transport="test")
    with pytest.raises(ExchangeFailed) as err:
        async with sess.lock:
            await runner.exchange(sess, b"<SyncML><nonsense")
    assert err.value.status == 400 and "cannot decode" in err.value.message
    assert len(rec.finished()) == 1 and rec.finished()[0].run.status == 400
    assert repo.history(limit=1)[0].status == 400
    assert runner.sessions == {}


class BrokenStore(MemoryStore):
    def list(self) -> list[tuple[str, str]]:
        raise RuntimeError("disk on fire")


async def test_internal_error_aborts_with_500(
    repo: StateRepository, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="syncmld.transports.runner")
    rec = Recorder(repo)
    runner = make_runner(repo, BrokenStore(content_types=(VCARD_30,)), observer=rec)
    phone = Phone()
    sess = runner.open(transport="test")
    cs = phone.session()
    msg = cs.start()
    with pytest.raises(ExchangeFailed) as err:
        while msg is not None:
            async with sess.lock:
                reply = await runner.exchange(sess, msg)
            msg = cs.receive(reply.data).data
    assert err.value.status == 500
    (finished,) = rec.finished()
    assert finished.run.status == 500 and "disk on fire" in finished.run.message
    assert repo.history(phone.dev_id, limit=1)[0].status == 500


async def test_abort_by_key(repo: StateRepository) -> None:
    rec = Recorder(repo)
    runner = make_runner(repo, MemoryStore(content_types=(VCARD_30,)), observer=rec)
    dropped: list[str] = []
    sess = runner.open(transport="test")
    sess.on_abort = lambda: dropped.append(sess.key)
    async with sess.lock:
        await runner.exchange(sess, Phone().session().start())
    assert list(runner.sessions) == [sess.key]
    assert await runner.abort(sess.key, "cancelled by the user")
    assert dropped == [sess.key]
    assert not await runner.abort(sess.key)
    assert not await runner.abort("no-such-session")
    (finished,) = rec.finished()
    assert finished.run.message == "cancelled by the user" and finished.run.status != 200
    assert repo.history(limit=1)[0].message == "cancelled by the user"


async def test_a_new_session_of_the_device_ends_its_earlier_one(repo: StateRepository) -> None:
    store = MemoryStore(content_types=(VCARD_30,))
    rec = Recorder(repo)
    runner = make_runner(repo, store, observer=rec)
    phone = Phone()
    phone.store.add(vcard(1))
    stale = runner.open(transport="test")
    async with stale.lock:
        await runner.exchange(stale, phone.session().start())
    other = Phone("another-phone")
    _, cs = await run_session(runner, other)  # another device: no effect
    assert cs.result is not None and stale.key in runner.sessions
    fresh, cs = await run_session(runner, phone)
    assert cs.result is not None and cs.result.run.status == 200
    assert stale.engine.done and stale.key not in runner.sessions
    # The stale session was settled before the new one loaded the state.
    order = [(k, type(e)) for k, e in rec.events]
    assert order.index((stale.key, SessionFinished)) < order.index((fresh.key, PeerIdentified))
    assert rec.finished()[1].run.message == "the device started another session"


async def test_a_stale_partial_state_does_not_replace_a_newer_sync(repo: StateRepository) -> None:
    store = MemoryStore(content_types=(VCARD_30,))
    rec = Recorder(repo)
    runner = make_runner(repo, store, observer=rec)
    phone = Phone()
    phone.store.add(vcard(1))
    stale = runner.open(transport="test")
    async with stale.lock:
        await runner.exchange(stale, phone.session().start())
        # Still being worked on, so the next session cannot end it.
        _, cs = await run_session(runner, phone)
        assert cs.result is not None and cs.result.run.status == 200
        assert not stale.engine.done
    newer = repo.load_peer(phone.dev_id)
    async with stale.lock:
        assert await runner.finish(stale, "the connection was closed")
    assert repo.load_peer(phone.dev_id) == newer
    last = rec.finished()[-1]
    assert last.peer is None and "a later session has synced since" in last.run.message
    runs = repo.history(phone.dev_id)
    assert [r.status for r in runs] == [200, last.run.status]  # newest (by start) first
    assert runs[1].message == last.run.message


async def test_http_server_reports_to_the_observer(repo: StateRepository) -> None:
    store = MemoryStore(content_types=(VCARD_30,))
    rec = Recorder(repo)
    config = ServerConfig(datastores=(Datastore(name="contacts", store=store),))
    app = make_app(config, repo)
    async with HttpServer(app, port=0, observer=rec) as server, aiohttp.ClientSession() as http:
        phone = Phone()
        phone.store.add(vcard(1))
        cs = phone.session()
        cs.url = server.url
        out = await run_client_session(cs, http=http)
    assert out.run.status == 200, out.run
    assert app[HANDLER_KEY].runner.observer is rec
    assert {k.split("-")[0] for k, _ in rec.events} == {"http"}
    assert len(rec.finished()) == 1 and rec.stored_when_finished == [True]
    assert contents(store) == contents(phone.store)


def test_obex_config_table() -> None:
    assert parse({}).obex == ObexConfig(enabled=False, host="127.0.0.1", port=6500)
    table = {"enabled": True, "host": "0.0.0.0", "port": 0, "idle_timeout": 30}
    assert parse({"obex": table}).obex == ObexConfig(
        enabled=True, host="0.0.0.0", port=0, idle_timeout=30.0
    )
    for bad, where in [
        ({"enabled": "yes"}, "obex.enabled"),
        ({"port": 70000}, "obex.port"),
        ({"idle_timeout": 0}, "obex.idle_timeout"),
        ({"channel": 3}, "channel"),
    ]:
        with pytest.raises(ConfigError, match=where):
            parse({"obex": bad})
