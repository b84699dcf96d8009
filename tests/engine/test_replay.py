"""Recorded sessions of real SyncML clients replayed against our server.

The client messages come from real devices and programs (a Sony Ericsson
P900, the Funambol Outlook plug-in, Sync4j on a PocketPC, a Synthesis client
in Horde's test cases; SyncEvolution 2.0 against its own server); the
dialogue is adapted to our answers by :mod:`tests.engine.replay`, which
documents every rewrite.  Each case runs with the messages in XML and in
WBXML.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncmld.engine.decide import Guard
from syncmld.engine.server import ServerConfig
from syncmld.engine.session import AuthFailed, AuthMode, Datastore
from syncmld.engine.store import TEXT_PLAIN, VCAL_10, VCARD_30, ContentType, MemoryStore
from syncmld.protocol.codec import Encoding, sniff
from syncmld.protocol.model import Add, Alert, Map, Replace, Status

from .replay import (
    DesktopStore,
    Replayer,
    SyncReplay,
    load_folder,
    load_horde,
    norm,
    split_sessions,
)

VECTORS = Path(__file__).resolve().parents[1] / "data" / "vectors"
HORDE = VECTORS / "horde" / "sessions"
SYNCEVOLUTION = VECTORS / "syncevolution"

ENCODINGS = [pytest.param(Encoding.XML, id="xml"), pytest.param(Encoding.WBXML, id="wbxml")]

#: The statuses a client command may get from us (Alert and chunks are checked apart).
ALLOWED = {
    "SyncHdr": {200, 212},
    "Put": {200},
    "Get": {200},
    "Results": {200},
    "Sync": {200},
    "Add": {201},
    "Replace": {200, 201},
    "Delete": {200, 211},
    "Map": {200},
}


def check_session(res: SyncReplay, encoding: Encoding | None = None) -> None:
    """Every client command got the right status, every reply fits, the session completed."""
    assert res.done, (res.name, res.notes)
    assert res.exchanges[-1].done, res.name  # Reply.done
    assert res.finished is not None, res.name
    assert res.finished.peer is not None, (res.name, res.finished.run)
    assert res.finished.run.status == 200, (res.name, res.finished.run)
    assert res.unsent == 0, (res.name, res.notes)
    alerted = res.modes
    for a in res.answers():
        assert a.codes, f"{res.name}: no status for {a}"
        if a.cmd == "Alert" and a.alert == 222:
            assert a.codes == (200,), (res.name, a)
        elif a.cmd == "Alert":
            # Anchors that do not match: 508, and our Alert 201 for that database.
            assert a.codes in ((200,), (508,)), (res.name, a)
            if a.codes == (508,):
                assert alerted[a.ref or ""] == 201, (res.name, a, alerted)
        elif a.more:
            assert a.codes == (213,), (res.name, a)
        else:
            assert set(a.codes) <= ALLOWED[a.cmd], (res.name, a)
    for ex in res.exchanges:
        meta = ex.sent.header.meta
        assert meta is not None and meta.max_msg_size is not None
        assert len(ex.reply_data) <= meta.max_msg_size, (res.name, len(ex.reply_data))
        assert ex.reply.header.session_id == ex.sent.header.session_id
        if encoding is not None:
            assert sniff(ex.data) is encoding
            assert sniff(ex.reply_data) is encoding


def assert_store_holds(store: MemoryStore, client: dict[str, str]) -> None:
    """The desktop store holds exactly the client's items (as received: identity codec)."""
    assert sorted(norm(v) for v in store.values()) == sorted(norm(v) for v in client.values())


# --- Horde's recorded sessions ------------------------------------------------------


@dataclass(frozen=True)
class HordeCase:
    folder: str
    datastore: str
    content_type: ContentType
    client_db: str
    #: Items in our store after each sync.
    counts: tuple[int, ...]
    #: Texts the final store holds.
    spot: tuple[str, ...]


SIF_EVENT = ContentType("text/x-s4j-sife", "1.0")

HORDE_CASES = [
    HordeCase(
        "P900_tasksandcalendar",
        "calendar",
        VCAL_10,
        "c:\\Documents\\agenda\\agenda",
        (6, 6, 6, 6, 2, 2),
        ("SUMMARY:cIient1s1 christmas all day", "SUMMARY:server1alldayc1 new year"),
    ),
    HordeCase(
        "funambol_outlook3015_calendar",
        "calendar",
        SIF_EVENT,
        "calendar",
        (4, 6, 6, 4, 4),
        # base64 SIF in the recording: we hold the decoded XML text.
        ("<Body>Test Aumlaut: Ä</Body>", "<Body>test uumlaut: ü</Body>"),
    ),
    HordeCase(
        "sync4j_pocketpc_contacts",
        "contacts",
        ContentType("text/x-s4j-sifc", "1.0"),
        "contact",
        (2, 4, 4, 1),
        ("<FirstName>Server1c1</FirstName>",),
    ),
    HordeCase(
        "sync4j_pocketpc_calendar",
        "calendar",
        SIF_EVENT,
        "calendar",
        (2, 4, 4, 2),
        ("<Subject>server1c1</Subject>", "<Subject>client1s1</Subject>"),
    ),
    HordeCase(
        "sync4j_pocketpc_notes",
        "notes",
        ContentType("text/x-s4j-sifn", "1.0"),
        "note",
        (2, 4, 4, 2),
        ("<Subject>client1s1</Subject>", "<Subject>server1c1</Subject>"),
    ),
    HordeCase(
        "synthesis_tasks",
        "tasks",
        VCAL_10,
        "./tasks",
        (2, 4, 4, 2),
        ("SUMMARY:server1c1", "SUMMARY:client1s1"),
    ),
]


def horde_replayer(
    case: HordeCase, encoding: Encoding, store: MemoryStore | None = None
) -> Replayer:
    store = store or DesktopStore(content_types=(case.content_type,))
    config = ServerConfig(
        datastores=(Datastore(name=case.datastore, store=store),),
        auth=AuthMode.BASIC,
        passwords={"syncmltest": "syncmltest"},  # what the recorded clients send
    )
    return Replayer(config, encoding=encoding)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("case", HORDE_CASES, ids=lambda c: c.folder)
def test_horde_sessions(case: HordeCase, encoding: Encoding) -> None:
    replayer = horde_replayer(case, encoding)
    store = replayer.store(case.datastore)
    recordings = load_horde(HORDE / case.folder)
    assert len(recordings) == len(case.counts)
    for n, (rec, count) in enumerate(zip(recordings, case.counts, strict=True)):
        res = replayer.run(rec)
        check_session(res, encoding)
        # The recorded client answered every command we sent: nothing made up.
        assert res.synthesized == [], (rec.name, res.synthesized)
        # The first sync is slow (asked for, or our 508); then the client's Last
        # anchor (its Next of the session before) matches what we committed.
        assert res.modes == {case.client_db: 201 if n == 0 else 200}, rec.name
        assert len(store) == count, rec.name
        assert_store_holds(store, replayer.client_items(res.dev_id, case.client_db))
    for text in case.spot:
        assert any(text in v for v in store.values()), text


def p900() -> HordeCase:
    return HORDE_CASES[0]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_p900_gets_short_server_ids_and_its_map_translates_them_back(encoding: Encoding) -> None:
    case = p900()
    replayer = horde_replayer(case, encoding)
    store = replayer.store(case.datastore)
    first, second, *_ = load_horde(HORDE / case.folder)
    res = replayer.run(first)
    adds = [c for c in res.sent_by_us(Add) if isinstance(c, Add)]
    ids = [c.items[0].source.uri for c in adds if c.items[0].source]
    assert len(ids) == 3
    assert all(len(i.encode()) <= 4 for i in ids), ids  # the P900's MaxGUIDSize
    assert all(len(k) > 4 for k, _ in store.list())  # our own ids are longer
    # The Map of the temporary ids reached the state under our real ids.
    pair = replayer.states[res.dev_id].pairs[case.datastore]
    by_luid = {s.remote_id: s.local_id for s in pair.items.values()}
    assert "SUMMARY:server1allday new year" in store.get(by_luid["680"])[0]
    assert "SUMMARY:server2 6-7" in store.get(by_luid["681"])[0]
    assert "SUMMARY:servertask1" in store.get(by_luid["682"])[0]

    res = replayer.run(second)
    check_session(res, encoding)
    # The P900's edits of 680-682 changed those very items, no new ones.
    assert len(store) == 6
    assert "SUMMARY:server1alldayc1 new year" in store.get(by_luid["680"])[0]
    assert "SUMMARY:servertask1c1" in store.get(by_luid["682"])[0]
    # Our desktop edits went to the P900 addressed by its own ids, with short sources.
    replaces = [c for c in res.sent_by_us(Replace) if isinstance(c, Replace)]
    assert sorted(c.items[0].target.uri for c in replaces if c.items[0].target) == [
        "667",
        "678",
        "679",
    ]
    assert all(len(c.items[0].source.uri.encode()) <= 4 for c in replaces if c.items[0].source)


def test_p900_slow_sync_of_a_thousand_items_keeps_ids_within_4_bytes() -> None:
    # More than 999 temporary ids: "#1000" would be 5 bytes.
    case = p900()
    store = DesktopStore(content_types=(VCAL_10,))
    for i in range(1100):
        store.add(f"BEGIN:VCALENDAR\nVERSION:1.0\nBEGIN:VEVENT\nSUMMARY:desk {i}\nEND:VEVENT\n")
    replayer = horde_replayer(case, Encoding.WBXML, store)
    first, second, *_ = load_horde(HORDE / case.folder)
    res = replayer.run(first)
    check_session(res, Encoding.WBXML)
    ids = [
        c.items[0].source.uri
        for c in res.sent_by_us(Add)
        if isinstance(c, Add) and c.items[0].source
    ]
    assert len(ids) == len(set(ids)) == 1103
    assert max(len(i.encode()) for i in ids) <= 4
    assert_store_holds(store, replayer.client_items(res.dev_id, case.client_db))
    res = replayer.run(second)
    check_session(res, Encoding.WBXML)
    assert res.sent_by_us(Add) == []  # every item was mapped back: nothing goes out twice
    assert_store_holds(store, replayer.client_items(res.dev_id, case.client_db))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_funambol_alert_222_with_final_does_not_end_the_session(encoding: Encoding) -> None:
    # Funambol Outlook 3.0.15 sends Alert 222 *with* Final after its Sync
    # and its Map only in the message after that.
    case = HORDE_CASES[1]
    replayer = horde_replayer(case, encoding)
    res = replayer.run(load_horde(HORDE / case.folder)[0])
    check_session(res, encoding)
    pull, last = res.exchanges[-2:]
    assert pull.sent.final
    assert [c.data for c in pull.sent.commands if isinstance(c, Alert)] == [222]
    assert not pull.done
    assert any(isinstance(c, Map) for c in last.sent.commands)
    assert last.done
    pair = replayer.states[res.dev_id].pairs[case.datastore]
    remote = {s.remote_id for s in pair.items.values()}
    assert {
        "000000004FCBE97B738E984EAF085560B1DD2D50449C2000",
        "000000004FCBE97B738E984EAF085560B1DD2D50649C2000",
    } <= remote
    # Its items came base64-encoded (Format b64); the store holds the SIF text.
    assert all(v.lstrip().startswith("<") for v in replayer.store(case.datastore).values())


# --- SyncEvolution's recorded sessions ----------------------------------------------

#: Every recorded session in the order they ran against one SyncEvolution
#: server (which shares one data set among all clients), and the mode each
#: database must be synced in.
SYNCEVOLUTION_CHAIN: list[tuple[str, dict[str, int]]] = [
    ("http-xml-1.2/01-first-sync-client-uploads-3-contacts", {"./addressbook": 201}),
    ("http-xml-1.2/02-first-sync-client-downloads-3-contacts-map", {"./addressbook": 201}),
    ("http-xml-1.2/03-two-way-client-sends-replace-delete-add", {"./addressbook": 200}),
    ("http-xml-1.2/04-two-way-server-sends-replace-delete-add", {"./addressbook": 200}),
    ("http-xml-1.2/05-two-way-no-changes", {"./addressbook": 200}),
    ("http-wbxml-1.2/01-first-sync-4-stores-upload", dict.fromkeys(
        ("./addressbook", "./calendar", "./memo", "./todo"), 201)),
    ("http-wbxml-1.2/02-first-sync-4-stores-download-map", dict.fromkeys(
        ("./addressbook", "./calendar", "./memo", "./todo"), 201)),
    ("http-xml-1.1/01-first-sync-vcard21-vcal10-text", dict.fromkeys(
        ("./addressbook", "./calendar", "./memo", "./todo"), 201)),
    ("sync-modes/slow", {"./addressbook": 201}),
    ("sync-modes/refresh-from-client", {"./addressbook": 203}),
    ("sync-modes/refresh-from-server", {"./addressbook": 205}),
    ("sync-modes/one-way-from-client", {"./addressbook": 202}),
    ("sync-modes/one-way-from-server", {"./addressbook": 204}),
    ("sync-modes/two-way", {"./addressbook": 200}),
    ("auth/basic-auth-first-sync", {"./addressbook": 201}),
    ("http-xml-1.2/06-multi-message-package-and-large-object-moredata-upload",
     {"./addressbook": 201}),
    ("http-xml-1.2/07-multi-message-package-and-large-object-moredata-download",
     {"./addressbook": 201}),
    ("obex-tcp-wbxml/syncml", {"./addressbook": 201}),
]  # fmt: skip


def syncevolution_config(auth: AuthMode) -> ServerConfig:
    # The user asked for the refresh-from-client session: its deletions are expected.
    guard = Guard(allow_refresh_deletes=True)
    return ServerConfig(
        datastores=(
            Datastore(
                name="addressbook", store=DesktopStore(content_types=(VCARD_30,)), guard=guard
            ),
            Datastore(name="calendar", store=DesktopStore(content_types=(VCAL_10,)), guard=guard),
            Datastore(name="todo", store=DesktopStore(content_types=(VCAL_10,)), guard=guard),
            Datastore(name="memo", store=DesktopStore(content_types=(TEXT_PLAIN,)), guard=guard),
        ),
        auth=auth,
        passwords={"test": "secret"},
    )


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_syncevolution_sessions_against_one_shared_server(encoding: Encoding) -> None:
    # BASIC accepts MD5 digests too: the MD5 sessions are verified (their
    # digests recomputed with our nonces), the basic-auth session as well.
    config = syncevolution_config(AuthMode.BASIC)
    replayer = Replayer(
        config,
        encoding=encoding,
        user="test",
        password="secret",
        resp_uri="http://127.0.0.1:9300/sync?sessionid=syncmld",
    )
    for folder, modes in SYNCEVOLUTION_CHAIN:
        if folder.startswith("obex"):
            # No credentials check over OBEX (the recorded client sends no
            # user name, which MD5 needs): what the recorded server did too.
            replayer.config = dataclasses.replace(config, auth=AuthMode.NONE)
        res = replayer.run(load_folder(SYNCEVOLUTION / folder))
        check_session(res, encoding)
        assert res.modes == modes, folder
        for client_db in modes:
            store = replayer.store(client_db.removeprefix("./"))
            assert_store_holds(store, replayer.client_items(res.dev_id, client_db))
        if folder.startswith("http-xml-1.2/0") and folder < "http-xml-1.2/06":
            assert res.synthesized == [], (folder, res.synthesized)
        if folder.endswith("03-two-way-client-sends-replace-delete-add"):
            assert "header: MD5 Cred recomputed with our nonce" in res.notes
            assert [
                (a.cmd, a.codes) for a in res.answers() if a.cmd in ("Add", "Replace", "Delete")
            ] == [
                ("Replace", (200,)),
                ("Delete", (200,)),
                ("Add", (201,)),
            ]
        if folder.endswith("06-multi-message-package-and-large-object-moredata-upload"):
            # The client's package spans messages and its photo is a large object.
            assert sum(not ex.sent.final for ex in res.exchanges) >= 3
            photo = [a.codes for a in res.answers() if a.ref == "photo.vcf"]
            assert photo[0] == (213,) and photo[-1] == (201,)
        if folder.endswith("07-multi-message-package-and-large-object-moredata-download"):
            # Our package spans messages of at most 10240 bytes, the photo in chunks.
            assert any(isinstance(c, Add) and c.items[0].more_data for c in res.sent_by_us(Add))
            assert max(len(ex.reply_data) for ex in res.exchanges) <= 10240
            assert any(
                "PHOTO" in v for v in replayer.client_items(res.dev_id, "./addressbook").values()
            )


def test_syncevolution_wrong_password_is_refused_three_times() -> None:
    replayer = Replayer(
        syncevolution_config(AuthMode.MD5), user="test", password="not-the-password"
    )
    recording = load_folder(SYNCEVOLUTION / "auth/md5-wrong-password-401")
    first, second = split_sessions(recording)  # the client starts over after a 401
    res = replayer.run(first)
    assert [a.codes for a in res.answers() if a.cmd == "SyncHdr"] == [(401,)]
    assert not res.done  # the client gave up this session, we did not end it
    res = replayer.run(second)
    assert [a.codes for a in res.answers() if a.cmd == "SyncHdr"] == [(401,)] * 3
    assert res.done and res.exchanges[-1].done
    assert res.finished is not None and res.finished.peer is None
    assert res.finished.run.status == 401
    failures = [e for e in res.events if isinstance(e, AuthFailed)]
    assert [e.final for e in failures] == [False, False, True]
    for ex in res.exchanges:
        hdr = next(c for c in ex.reply.commands if isinstance(c, Status) and c.cmd_ref == 0)
        assert hdr.chal is not None and hdr.chal.meta.next_nonce  # a fresh challenge each time
    assert replayer.states == {}
    assert all(len(replayer.store(n)) == 0 for n in ("addressbook", "calendar", "todo", "memo"))
