"""The SyncML client role: we start a session with a SyncML server.

Theory of operation
-------------------
The mirror image of :mod:`syncmld.engine.server`.  :meth:`ClientSession.start`
returns our first message (pkg1: Alerts, DevInf Put/Get, credentials);
:meth:`ClientSession.receive` takes each server answer and returns our next
message, or ``None`` once the session is over.  The transport posts each
message to :attr:`ClientSession.url` (the server URL, then the ``RespURI``
the server gave).

====== ============================================ ==========
 pkg    content                                      sender
====== ============================================ ==========
 1      Alerts with anchors, DevInf, Cred            us
 2      Statuses (auth, 508?), Alerts, DevInf        server
 3      Sync with our changes (all, in slow sync)    us
 4      Statuses, Sync with the server's changes     server
 5      Statuses, Map (our LUIDs for its Adds)       us
 6      Statuses                                     server
====== ============================================ ==========

Phases move when the server's message carries ``Final`` and our own package
has gone out completely: ``INIT`` -> ``SEND_SYNC`` -> ``RECEIVE_SYNC`` ->
``MAPS`` -> ``DONE``.  A server message without ``Final`` is answered with
our Statuses and Alert 222 (or the next part of our package).

Authentication: credentials go in the first message when we have them (MD5
with the nonce the server gave last time).  A 401/407 header status with a
challenge makes us resend pkg1 with new credentials, up to three times.

Anchors: a two-way sync needs the server's ``Last`` to equal the ``Next`` it
sent in our last successful session (exact string compare); otherwise we
answer 508 and switch that datastore to a slow sync.  A 508 on our own Alert
does the same.  The server resolves conflicts; we apply what it sends.

Suspend and resume (SyncML 1.2): :meth:`ClientSession.suspend` ends the
session with Alert 224; like a session that breaks off while items are
exchanged, it keeps the rows of what was exchanged and, per datastore, the
mode then in force and our ``Next`` anchor, which names the session.  The
next session alerts 225 for such a datastore, with that anchor as ``Last``
(to a 1.2 server, when the caller asks for a two-way or the same sync); a
server that accepts the 225 (Status 200, its own Alert naming the saved
mode, or 225 as older builds of syncmld send) continues from the saved rows;
anything else (508, 509, 406, another mode) is a normal sync decided by the
anchors as usual.

Robustness: an Add from the server whose content equals a local item that
the server does not know yet (the item came from the server in a session
that broke off before the Map was confirmed) is matched, not added twice.
The new state arrives in :class:`~syncmld.engine.session.SessionFinished`,
after every store is flushed (:meth:`~syncmld.engine.store.Store.flush`); a
failed flush keeps nothing (a complete session then ends with status 510).
Anchors only move when the session completes; a session that breaks off
keeps only the rows of items written or acknowledged in it and the pending
maps (and drops the anchors after a refresh's wipe, so that a slow sync
follows).
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from syncmld.engine.common import (
    Chunk,
    gc_paused,
    item_text,
    package_open,
    read_items,
    set_aside,
    size_matches,
    status_for,
    to_read,
    unreadable_message,
)
from syncmld.engine.decide import detect_local_changes
from syncmld.engine.items import ItemCodec, bind_codec, content_types
from syncmld.engine.outbox import DEFAULT_MAX_MSG_SIZE, Outbox, OutChange, OutSync
from syncmld.engine.session import (
    MANUFACTURER,
    MODEL,
    SOFTWARE_VERSION,
    AuthFailed,
    Datastore,
    Event,
    GuardTripped,
    Progress,
    SessionFinished,
    StoreStarted,
    anchor_for,
)
from syncmld.engine.state import ItemState, PairState, PeerState, RunRecord, StoreCounts
from syncmld.engine.store import (
    ContentType,
    ItemNotFound,
    ItemUnreadable,
    PreconditionFailed,
    Store,
    StoreError,
    flush_stores,
)
from syncmld.protocol import auth
from syncmld.protocol.codec import Encoding, decode_message, encode_message, sniff
from syncmld.protocol.codes import (
    AlertCode,
    StatusCode,
    SyncMode,
    client_to_server_alerted_alert,
)
from syncmld.protocol.devinf import ContentTypeRef, DataStore, DevInf
from syncmld.protocol.errors import RemoteProtocolError
from syncmld.protocol.limits import DEFAULT_LIMITS, Limits
from syncmld.protocol.model import (
    Add,
    Alert,
    Anchor,
    Command,
    Cred,
    Delete,
    Get,
    Item,
    Location,
    Map,
    MapItem,
    Message,
    Meta,
    Put,
    Replace,
    Results,
    Status,
    Sync,
    SyncHdr,
)

VERSIONS = {"1.0": "SyncML/1.0", "1.1": "SyncML/1.1", "1.2": "SyncML/1.2"}
DEVINF_URIS = {"1.0": "./devinf10", "1.1": "./devinf11", "1.2": "./devinf12"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientStore:
    """One local datastore to sync with a remote database."""

    datastore: Datastore
    remote_uri: str
    mode: SyncMode = SyncMode.TWO_WAY


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """How a client session behaves.

    Attributes:
        url: the server URL (the first message goes there; SyncHdr Target).
        dev_id: our device id (SyncHdr Source).
        stores: what to sync.
        user, password: credentials (``None``: send none unless challenged).
        auth: ``"basic"`` or ``"md5"``: what to send before being challenged.
        version: SyncML version to speak.
        encoding: XML (what most servers prefer) or WBXML.
        max_msg_size, max_obj_size: what we accept.
    """

    url: str
    dev_id: str
    stores: tuple[ClientStore, ...]
    user: str | None = None
    password: str | None = None
    auth: str = "basic"
    version: str = "1.2"
    encoding: Encoding = Encoding.XML
    max_msg_size: int = 1_000_000
    max_obj_size: int = 4_000_000
    max_auth_attempts: int = 3
    #: The session answers a Server Alerted Notification (alerts 206-210).
    server_alerted: bool = False
    limits: Limits = DEFAULT_LIMITS


class Phase(enum.Enum):
    """Where the client session stands."""

    INIT = "init"
    SEND_SYNC = "send-sync"
    RECEIVE_SYNC = "receive-sync"
    MAPS = "maps"
    DONE = "done"


class SessionFailed(StoreError):
    """The session ended without success (the message says why)."""

    status = 512


class _Store:
    def __init__(
        self, cs: ClientStore, pair: PairState | None, anchor: str, *, resume: bool = False
    ) -> None:
        self.cs = cs
        self.ds = cs.datastore
        self.codec: ItemCodec = self.ds.item_codec()
        self.pair = pair
        self.items: dict[str, ItemState] = dict(pair.items) if pair else {}
        self.pending_maps: dict[str, str] = dict(pair.pending_maps) if pair else {}
        self.requested = cs.mode.to_alert()
        if self.requested == AlertCode.TWO_WAY and (pair is None or pair.local_anchor is None):
            self.requested = AlertCode.SLOW_SYNC
        if self.requested in (AlertCode.ONE_WAY_FROM_CLIENT, AlertCode.ONE_WAY_FROM_SERVER) and (
            pair is None or pair.local_anchor is None
        ):
            self.requested = AlertCode.SLOW_SYNC
        #: The alert code of the suspended session this one asks to resume.
        self.resume_of: int | None = None
        if (
            resume
            and pair is not None
            and pair.resume_mode in _RESUMED_MODES
            and pair.resume_anchor
            and cs.mode.to_alert() in (AlertCode.TWO_WAY, pair.resume_mode)
        ):
            self.resume_of = pair.resume_mode
            self.requested = AlertCode.RESUME
        self.mode: int = self.requested
        self.anchor = anchor
        self.server_next: str | None = None
        self.status = 200
        self.message = ""
        #: Which items the store could not read (see ItemUnreadable), for the run.
        self.unreadable = ""
        self.tally: dict[str, int] = {}
        self.remote_uri = cs.remote_uri
        self.maps: list[MapItem] = []
        self.chunk: Chunk | None = None
        self.alerted = False
        self.sent_sync = False
        #: Set once a refresh from the server deleted the local items.
        self.wiped = False
        self.received = 0

    def count(self, **delta: int) -> None:
        for key, value in delta.items():
            self.tally[key] = self.tally.get(key, 0) + value

    @property
    def counts(self) -> StoreCounts:
        """This datastore's figures for the history."""
        return StoreCounts(
            local_uri=self.ds.name,
            remote_uri=self.remote_uri,
            mode=self.mode,
            status=self.status,
            message="; ".join(m for m in (self.unreadable, self.message) if m),
            **self.tally,
        )


@dataclass(slots=True)
class ClientResult:
    """What :meth:`ClientSession.receive` hands back."""

    data: bytes | None
    events: list[Event] = field(default_factory=list)
    done: bool = False


class ClientSession:
    """One client-role session (see the module docstring).

    Args:
        config: server, credentials, stores.
        peer: the stored state for this server (``None`` the first time).
        now: the session's start time: our anchors.
        session_id: the SessionID to use (the caller picks it; a SAN may name one).
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        peer: PeerState | None,
        now: float,
        session_id: str = "1",
    ) -> None:
        self.config = config
        self.peer = peer or PeerState(dev_id=config.url)
        self.now = now
        self.session_id = session_id
        self.url = config.url
        self.phase = Phase.INIT
        self.encoding = config.encoding
        self._anchor = anchor_for(now)
        self._msg_ids = itertools.count(1)
        self._stores = {
            cs.datastore.name: _Store(
                cs,
                self.peer.pairs.get(cs.datastore.name),
                self._anchor,
                resume=config.version == "1.2",
            )
            for cs in config.stores
        }
        for st in self._stores.values():
            st.codec = bind_codec(st.ds.item_codec(), self.peer.devinf, st.remote_uri)
        self._outbox = Outbox(
            encoding=self.encoding,
            max_msg_size=DEFAULT_MAX_MSG_SIZE,
            answer_limit=config.max_msg_size,
        )
        self._sent: dict[tuple[int, int], object] = {}
        self._nonce = self.peer.nonce
        self._auth_attempts = 0
        self._send_cred = config.user is not None and config.password is not None
        self._cred_type = auth.AUTH_MD5 if config.auth == "md5" else auth.AUTH_BASIC
        self._server_devinf: DevInf | None = None
        self._last_sent: bytes | None = None
        self._events: list[Event] = []
        self._pkg1: list[Command] = []
        self.result: SessionFinished | None = None

    @property
    def done(self) -> bool:
        """True once the session is over."""
        return self.phase is Phase.DONE

    # ------------------------------------------------------------- messages
    def _header(self) -> SyncHdr:
        meta = Meta(max_msg_size=self.config.max_msg_size)
        if self.config.version != "1.0":
            meta = dataclasses.replace(meta, max_obj_size=self.config.max_obj_size)
        return SyncHdr(
            ver_dtd=self.config.version,
            ver_proto=VERSIONS[self.config.version],
            session_id=self.session_id,
            msg_id=next(self._msg_ids),
            target=Location(uri=self.config.url),
            source=Location(uri=self.config.dev_id, name=self.config.user),
            cred=self._credentials() if self._send_cred else None,
            meta=meta,
        )

    def _credentials(self) -> Cred | None:
        user, password = self.config.user, self.config.password
        if user is None or password is None:
            return None
        if self._cred_type == auth.AUTH_MD5:
            nonce = auth.decode_nonce(self._nonce) if self._nonce else b""
            digest = auth.md5_digest(user, password, nonce, version=self.config.version)
            return Cred(meta=Meta(type=auth.AUTH_MD5, format="b64"), data=digest)
        return Cred(
            meta=Meta(type=auth.AUTH_BASIC, format="b64"),
            data=auth.basic_credentials(user, password),
        )

    def devinf(self) -> DevInf:
        """Our DevInf."""
        stores = []
        for st in self._stores.values():
            cts = [
                ContentTypeRef(ct_type=ct.mime, ver_ct=ct.version)
                for ct in content_types(st.codec, st.ds.store)
            ]
            stores.append(
                DataStore(
                    source_ref=st.ds.name,
                    display_name=st.ds.display_name,
                    rx_pref=cts[0],
                    rx=tuple(cts[1:]),
                    tx_pref=cts[0],
                    tx=tuple(cts[1:]),
                    sync_caps=(1, 2, 3, 4, 5, 6, 7),
                )
            )
        modern = self.config.version != "1.0"
        return DevInf(
            ver_dtd=self.config.version,
            man=MANUFACTURER,
            mod=MODEL,
            sw_v=SOFTWARE_VERSION,
            dev_id=self.config.dev_id,
            dev_typ="workstation",
            utc=modern,
            support_large_objs=modern,
            support_number_of_changes=modern,
            datastores=tuple(stores),
        )

    def start(self) -> bytes:
        """Our first message (pkg1)."""
        uri = DEVINF_URIS[self.config.version]
        dtype = self.encoding.devinf_type
        cmds: list[Command] = [
            Put(
                cmd_id=0,
                meta=Meta(type=dtype),
                items=(Item(source=Location(uri=uri), data=self.devinf()),),
            ),
            Get(cmd_id=0, meta=Meta(type=dtype), items=(Item(target=Location(uri=uri)),)),
        ]
        for st in self._stores.values():
            last = st.pair.local_anchor if st.pair and st.requested != AlertCode.SLOW_SYNC else None
            if st.requested == AlertCode.RESUME and st.pair is not None:
                # The Next of the suspended session names it (its anchors
                # never became the committed ones).
                last = st.pair.resume_anchor
            cmds.append(
                Alert(
                    cmd_id=0,
                    # A session a notification started alerts 206-210.
                    data=int(client_to_server_alerted_alert(st.requested))
                    if self.config.server_alerted
                    and st.requested not in (AlertCode.SLOW_SYNC, AlertCode.RESUME)
                    else int(st.requested),
                    items=(
                        Item(
                            target=Location(uri=st.cs.remote_uri),
                            source=Location(uri=st.ds.name),
                            meta=Meta(
                                anchor=Anchor(last=last, next=self._anchor),
                                max_obj_size=self.config.max_obj_size
                                if self.config.version != "1.0"
                                else None,
                            ),
                        ),
                    ),
                )
            )
        self._pkg1 = cmds
        return self._send([], list(cmds), package_ends=True)

    def _send(
        self, statuses: Sequence[Status], commands: list[Command], *, package_ends: bool
    ) -> bytes:
        for c in commands:
            self._outbox.put(c)
        header = self._header()
        _, data, sent = self._outbox.build(header, list(statuses), package_ends=package_ends)
        for s in sent:
            self._sent[(header.msg_id, s.cmd_id)] = s.tag if s.tag is not None else s.cmd
        self._last_sent = data
        return data

    # -------------------------------------------------------------- receive
    def receive(self, data: bytes) -> ClientResult:
        """Handle one server answer; returns our next message (``None`` when done).

        Raises:
            RemoteProtocolError: the answer cannot be decoded; the session is
                over (``result`` says so).
        """
        with gc_paused():
            return self._receive(data)

    def _receive(self, data: bytes) -> ClientResult:
        self._events = []
        if self.done:
            return ClientResult(None, [], True)
        try:
            msg = decode_message(data, limits=self.config.limits)
        except RemoteProtocolError as exc:
            self._fail(400, f"undecodable answer from the server: {exc}")
            raise
        self.encoding = sniff(data)
        self._outbox.encoding = self.encoding
        hdr = msg.header
        if hdr.resp_uri:
            self.url = hdr.resp_uri
        if hdr.meta and hdr.meta.max_msg_size:
            self._outbox.max_msg_size = hdr.meta.max_msg_size
        statuses: list[Status] = [status_for(msg, None, StatusCode.OK)]
        retry = False
        for cmd in msg.commands:
            if isinstance(cmd, Status):
                outcome = self._status(cmd)
                if outcome == "retry":
                    # The other statuses echo the refusal (401/407 for every
                    # command): they say nothing about the datastores.
                    retry = True
                    break
                if outcome == "fail":
                    return ClientResult(None, list(self._events), True)
                continue
            statuses.extend(self._command(msg, cmd))
        if retry:
            return self._retry_auth()
        if self.done:
            return ClientResult(None, list(self._events), True)
        return self._next(msg, statuses)

    def _status(self, st: Status) -> str | None:
        """Handle a server Status; returns "retry"/"fail" for auth outcomes."""
        if st.cmd == "SyncHdr":
            if st.data in (StatusCode.INVALID_CREDENTIALS, StatusCode.MISSING_CREDENTIALS):
                if st.chal is not None and st.chal.meta.next_nonce:
                    self._nonce = st.chal.meta.next_nonce
                if st.chal is not None and st.chal.meta.type:
                    self._cred_type = st.chal.meta.type.lower()
                self._auth_attempts += 1
                final = (
                    self._auth_attempts >= self.config.max_auth_attempts
                    or self.config.user is None
                    or self.config.password is None
                )
                self._events.append(AuthFailed(self.config.user, st.data, final))
                if final:
                    self._fail(st.data, "authentication failed: check the user name and password")
                    return "fail"
                self._send_cred = True
                return "retry"
            if st.chal is not None and st.chal.meta.next_nonce:
                self._nonce = st.chal.meta.next_nonce
            if st.data in (StatusCode.AUTHENTICATION_ACCEPTED, StatusCode.OK):
                self._send_cred = False
                return None
            self._fail(st.data, f"the server refused the session with status {st.data}")
            return "fail"
        if st.msg_ref is None:
            return None
        tag = self._sent.get((st.msg_ref, st.cmd_ref))
        if st.cmd == "Alert" and isinstance(tag, str):
            self._alert_status(st)
        elif isinstance(tag, tuple):
            name, local_id, kind, sent = tag
            store = self._stores.get(name)
            if store is not None:
                self._change_status(store, local_id, kind, sent, st.data)
        return None

    def _alert_status(self, st: Status) -> None:
        target = st.target_refs[0] if st.target_refs else None
        for store in self._stores.values():
            if target is not None and store.cs.remote_uri != target:
                continue
            if st.data == StatusCode.REFRESH_REQUIRED:
                store.mode = AlertCode.SLOW_SYNC
                store.resume_of = None
            elif store.requested == AlertCode.RESUME and st.data != StatusCode.OK:
                # The server cannot resume (509 from libsynthesis, 406 before
                # 1.2): its Alert names the mode of a normal sync instead,
                # which our anchors check as usual.
                store.resume_of = None
            elif not 200 <= st.data < 300:
                store.status = st.data
                store.message = f"the server refused {store.cs.remote_uri} with status {st.data}"
            if target is not None:
                break

    def _change_status(
        self, store: _Store, local_id: str, kind: str, sent: ItemState | None, code: int
    ) -> None:
        if code == StatusCode.CHUNKED_ITEM_ACCEPTED:
            return
        ok = 200 <= code < 300 or code in (
            StatusCode.ALREADY_EXISTS,
            StatusCode.ITEM_NOT_DELETED,
            # 419: the server keeps its version and sends it in its Sync.
            StatusCode.CONFLICT_RESOLVED_WITH_SERVER_DATA,
            StatusCode.NOT_FOUND,
        )
        if not ok:
            # The change stays pending: the item keeps its old state (a new
            # item none), so the next session sends it again.
            store.message = f"the server refused item {local_id} with status {code}"
            if kind == "Add":
                store.items.pop(local_id, None)
            return
        if kind == "Delete" or sent is None:
            store.items.pop(local_id, None)
            store.count(remote_deleted=1)
            return
        if code != StatusCode.CONFLICT_RESOLVED_WITH_SERVER_DATA:
            store.items[local_id] = sent
        # A slow sync sends every item as Replace; 201 says the server added it.
        added = kind == "Add" or code == StatusCode.ITEM_ADDED
        store.count(**{"remote_added" if added else "remote_replaced": 1})

    def _retry_auth(self) -> ClientResult:
        """Send pkg1 again, with credentials built from the challenge."""
        self._outbox.queue.clear()
        data = self._send([], list(self._pkg1), package_ends=True)
        return ClientResult(data, list(self._events), False)

    def _command(self, msg: Message, cmd: Command) -> list[Status]:
        if isinstance(cmd, Alert):
            return self._server_alert(msg, cmd)
        if isinstance(cmd, Results | Put):
            for it in cmd.items:
                if isinstance(it.data, DevInf):
                    self._server_devinf = it.data
                    for st in self._stores.values():
                        st.codec = bind_codec(st.ds.item_codec(), it.data, st.remote_uri)
                    self._outbox.large_objects = (
                        self.config.version != "1.0" and it.data.support_large_objs
                    )
            return [status_for(msg, cmd, StatusCode.OK)]
        if isinstance(cmd, Get):
            uri = DEVINF_URIS[self.config.version]
            self._outbox.put(
                Results(
                    cmd_id=0,
                    msg_ref=msg.header.msg_id,
                    cmd_ref=cmd.cmd_id,
                    meta=Meta(type=self.encoding.devinf_type),
                    source_refs=(uri,),
                    items=(Item(source=Location(uri=uri), data=self.devinf()),),
                )
            )
            return [status_for(msg, cmd, StatusCode.OK)]
        if isinstance(cmd, Sync):
            return self._server_sync(msg, cmd)
        return [status_for(msg, cmd, StatusCode.OPTIONAL_FEATURE_NOT_SUPPORTED)]

    def _server_alert(self, msg: Message, cmd: Alert) -> list[Status]:
        code = cmd.data or 0
        if code in (AlertCode.NEXT_MESSAGE, AlertCode.DISPLAY):
            return [status_for(msg, cmd, StatusCode.OK)]
        out = []
        for it in cmd.items:
            ours = it.target.uri if it.target else ""
            store = next((s for s in self._stores.values() if s.ds.answers_to(ours)), None)
            if store is None:
                out.append(status_for(msg, cmd, StatusCode.NOT_FOUND, target=ours))
                continue
            anchor = it.meta.anchor if it.meta and it.meta.anchor else Anchor()
            store.server_next = anchor.next
            base = (
                code - 6 if 206 <= code <= 210 and code != 206 else (200 if code == 206 else code)
            )
            status = StatusCode.OK
            if store.resume_of is not None and code in (
                AlertCode.RESUME,
                store.resume_of,
                _RESUMED_MODES[store.resume_of],
            ):
                # The server accepted our 225 (a refusal's status came first
                # and cleared resume_of) and alerts the saved mode, or 225
                # (older syncmld): it continues the suspended session from
                # the saved rows.
                base = _RESUMED_MODES[store.resume_of]
            elif base in (200, 202, 204):
                store.resume_of = None
                known = store.pair.remote_anchor if store.pair else None
                if (
                    store.mode == AlertCode.SLOW_SYNC
                    or known is None
                    or known != (anchor.last or "")
                ):
                    status = StatusCode.REFRESH_REQUIRED
                    base = AlertCode.SLOW_SYNC
            # A from-client mode must not be turned into one that writes to us.
            if store.requested in (202, 203) and base not in (202, 203, 201):
                status = StatusCode.FORBIDDEN
                store.status = status
                store.message = f"the server wanted mode {base} instead of {store.requested}"
            store.mode = base
            store.alerted = True
            self._events.append(
                StoreStarted(store.ds.name, store.cs.remote_uri, base, store.requested)
            )
            out.append(
                status_for(
                    msg,
                    cmd,
                    status,
                    target=ours,
                    source=it.source.uri if it.source else None,
                    items=(Item(data=Anchor(next=anchor.next)),) if anchor.next else (),
                )
            )
        return out

    def _server_sync(self, msg: Message, cmd: Sync) -> list[Status]:
        ours = cmd.target.uri if cmd.target else ""
        store = next((s for s in self._stores.values() if s.ds.answers_to(ours)), None)
        if store is None or store.status != 200:
            code = StatusCode.NOT_FOUND if store is None else store.status
            return [status_for(msg, cmd, code, target=ours)] + [
                status_for(msg, c, StatusCode.NOT_EXECUTED) for c in cmd.commands
            ]
        out = [status_for(msg, cmd, StatusCode.OK, target=ours)]
        for sub in cmd.commands:
            if not isinstance(sub, Add | Replace | Delete):
                out.append(status_for(msg, sub, StatusCode.OPTIONAL_FEATURE_NOT_SUPPORTED))
                continue
            for item in sub.items:
                out.append(self._server_change(msg, store, sub, item))
        self._events.append(Progress(store.ds.name, "receiving", store.received, None))
        return out

    def _server_change(
        self, msg: Message, store: _Store, sub: Add | Replace | Delete, item: Item
    ) -> Status:
        src = item.source.uri if item.source else None
        tgt = item.target.uri if item.target else None
        is_add = isinstance(sub, Add)

        def answer(code: int) -> Status:
            return status_for(
                msg, sub, code, source=src if is_add else None, target=None if is_add else tgt
            )

        local = store.ds.store
        if store.mode in (AlertCode.ONE_WAY_FROM_CLIENT, AlertCode.REFRESH_FROM_CLIENT):
            return answer(StatusCode.FORBIDDEN)
        if isinstance(sub, Delete):
            local_id = tgt or ""
            if store.mode == AlertCode.ONE_WAY_FROM_SERVER and self._edited(store, local_id):
                # This mode sends none of our changes, so the server deleted an
                # item it does not know we edited: the edit wins (as under
                # Policy.MERGE), and 409 keeps the deletion pending on the
                # server, which resolves the two at the next two-way sync.
                return answer(StatusCode.CONFLICT)
            try:
                local.delete(local_id, etag=None)
            except ItemNotFound:
                store.items.pop(local_id, None)
                return answer(StatusCode.ITEM_NOT_DELETED)
            except StoreError as exc:
                return answer(exc.status)
            store.items.pop(local_id, None)
            store.count(local_deleted=1)
            store.received += 1
            return answer(StatusCode.OK)
        try:
            text = item_text(item, sub.meta)
        except RemoteProtocolError as exc:
            return answer(exc.status)
        if item.more_data or store.chunk is not None:
            rid = src or tgt or ""
            if store.chunk is None:
                size = item.meta.size if item.meta else None
                if size is None:
                    return answer(StatusCode.SIZE_REQUIRED)
                store.chunk = Chunk(type(sub).__name__, rid, None, size)
            elif store.chunk.remote_id != rid:
                store.chunk = None
                return answer(StatusCode.BAD_REQUEST)
            store.chunk.parts.append(text)
            if item.more_data:
                return answer(StatusCode.CHUNKED_ITEM_ACCEPTED)
            chunk, store.chunk = store.chunk, None
            text = "".join(chunk.parts)
            if chunk.size is not None and not size_matches(text, chunk.size):
                return answer(StatusCode.SIZE_MISMATCH)
        ctype = (item.meta.type if item.meta and item.meta.type else None) or (
            sub.meta.type if sub.meta and sub.meta.type else None
        )
        try:
            data = store.codec.to_local(text, ctype)
        except (ValueError, RemoteProtocolError):
            return answer(StatusCode.UNSUPPORTED_MEDIA_TYPE)
        digest = store.codec.digest(data)
        store.received += 1
        try:
            if isinstance(sub, Replace) and tgt and tgt in store.items:
                current, _ = local.get(tgt)
                merged = store.codec.merge(current, data)
                etag = local.replace(tgt, merged, etag=None)
                store.items[tgt] = ItemState(tgt, tgt, etag, store.codec.digest(merged))
                store.count(local_replaced=1)
                return answer(StatusCode.OK)
            if isinstance(sub, Replace) and tgt:
                try:
                    etag = local.replace(tgt, data, etag=None)
                    store.items[tgt] = ItemState(tgt, tgt, etag, digest)
                    store.count(local_replaced=1)
                    return answer(StatusCode.OK)
                except ItemNotFound:
                    pass
            guid = src or tgt or ""
            # Idempotent add: an item that already came from this server in a
            # session that broke off (pending map) or has the same content.
            match = store.pending_maps.get(guid) if guid else None
            if match is not None and not _exists(local, match):
                # The user deleted the item since: a stale pending map made
                # this Add fail with 404 forever.  The item is added again.
                del store.pending_maps[guid]
                match = None
            if match is None:
                match = self._unmapped_match(store, data, digest)
            if match is not None:
                current, etag = local.get(match)
                if store.codec.digest(current) != digest:
                    # Our copy differs (same UID, other content): the row keeps
                    # the server's digest and an empty etag, so the next sync
                    # re-hashes ours and sends it.  With our etag the change
                    # was never seen and the two sides stayed different.
                    etag = ""
                store.items[match] = ItemState(match, match, etag, digest)
                if guid:
                    store.maps.append(MapItem(target=guid, source=match))
                    store.pending_maps[guid] = match
                return answer(StatusCode.ALREADY_EXISTS)
            local_id, etag = local.add(data)
            store.items[local_id] = ItemState(local_id, local_id, etag, digest)
            store.count(local_added=1)
            if guid:
                store.maps.append(MapItem(target=guid, source=local_id))
                store.pending_maps[guid] = local_id
            return answer(StatusCode.ITEM_ADDED)
        except PreconditionFailed:
            return answer(StatusCode.CONFLICT)
        except StoreError as exc:
            store.message = str(exc) or type(exc).__name__
            return answer(exc.status)

    def _edited(self, store: _Store, local_id: str) -> bool:
        """Whether a local item changed since both sides last agreed on it."""
        row = store.items.get(local_id)
        if row is None:
            return False
        try:
            text, etag = store.ds.store.get(local_id)
        except ItemNotFound:
            return False
        except ItemUnreadable:
            return True  # a damaged item is not overwritten
        return not (row.etag and row.etag == etag) and store.codec.digest(text) != row.digest

    def _unmapped_match(self, store: _Store, data: str, digest: str) -> str | None:
        """A local item the server does not know yet whose content equals ``data``."""
        if not hasattr(store, "_unmapped"):
            listing = dict(store.ds.store.list())
            unmapped: dict[str, str] = {}
            fresh = read_items(store.ds.store, [i for i in listing if i not in store.items])[0]
            for item_id, (text, _) in fresh.items():
                unmapped.setdefault(store.codec.digest(text), item_id)
                uid = store.codec.uid(text)
                if uid:
                    unmapped.setdefault("uid:" + uid, item_id)
            store._unmapped = unmapped  # type: ignore[attr-defined]
        table: dict[str, str] = store._unmapped  # type: ignore[attr-defined]
        uid = store.codec.uid(data)
        hit = table.get("uid:" + uid) if uid else None
        return hit or table.get(digest)

    # ---------------------------------------------------------------- next
    def _next(self, msg: Message, statuses: list[Status]) -> ClientResult:
        events = self._events
        if package_open(msg):
            # The server's package goes on: answer and ask for the next message.
            alert = Alert(
                cmd_id=0,
                data=AlertCode.NEXT_MESSAGE,
                items=(
                    Item(
                        target=Location(uri=self.config.url),
                        source=Location(uri=self.config.dev_id),
                    ),
                ),
            )
            extra: list[Command] = [alert] if self._outbox.empty else []
            return ClientResult(self._send(statuses, extra, package_ends=False), list(events))
        if msg.final and self._outbox.empty and not self._chunk_pending():
            if self.phase is Phase.INIT:
                self.phase = Phase.SEND_SYNC
                self._queue_sync()
            elif self.phase in (Phase.SEND_SYNC, Phase.RECEIVE_SYNC):
                maps = self._maps()
                if not maps and all(isinstance(c, Status) for c in msg.commands):
                    # A pkg4 of nothing but Statuses needs no answer, and
                    # libsynthesis servers (SyncEvolution, one-way and refresh
                    # from client) end their session right after sending it:
                    # a pkg5 would only meet "lost connection" (HTTP 500).
                    self._complete()
                    return ClientResult(None, list(self._events), True)
                self.phase = Phase.MAPS
                return ClientResult(self._send(statuses, maps, package_ends=True), list(events))
            elif self.phase is Phase.MAPS:
                self._complete()
                return ClientResult(None, list(self._events), True)
        # Send (the next part of) our package.
        data = self._send(statuses, [], package_ends=True)
        if self._outbox.empty and self.phase is Phase.SEND_SYNC:
            self.phase = Phase.RECEIVE_SYNC
        return ClientResult(data, list(events))

    def _chunk_pending(self) -> bool:
        return any(s.chunk is not None for s in self._stores.values())

    def _queue_sync(self) -> None:
        for store in self._stores.values():
            if store.status != 200:
                continue
            out = OutSync(target=store.cs.remote_uri, source=store.ds.name)
            if store.mode not in (
                AlertCode.ONE_WAY_FROM_SERVER,
                AlertCode.REFRESH_FROM_SERVER,
            ):
                self._local_changes(store, out)
            elif store.mode == AlertCode.REFRESH_FROM_SERVER:
                self._wipe(store)
            if self.config.version != "1.0":
                out.number_of_changes = len(out.changes)
            self._outbox.put(out)

    def _wipe(self, store: _Store) -> None:
        """Refresh from server: the local data is replaced by the server's."""
        listing = list(store.ds.store.list())
        guard = store.ds.guard
        explicit = store.cs.mode is SyncMode.REFRESH_FROM_SERVER
        if listing and not explicit and not guard.allow_refresh_deletes:
            reason = f"the server asked to replace all {len(listing)} local items; nothing deleted"
            store.status = StatusCode.SESSION_CANCELLED
            store.message = reason
            self._events.append(GuardTripped(store.ds.name, reason))
            return
        for item_id, etag in listing:
            try:
                store.ds.store.delete(item_id, etag=etag)
                store.count(local_deleted=1)
            except StoreError:
                continue
        store.items.clear()
        store.wiped = True

    def _local_changes(self, store: _Store, out: OutSync) -> None:
        local = store.ds.store
        listing = dict(local.list())
        accepted = self._accepted(store)
        slow = store.mode in (AlertCode.SLOW_SYNC, AlertCode.REFRESH_FROM_CLIENT)
        # Everything read below, at once; an item the store cannot read is
        # left alone this session (set_aside): not sent, not deleted.
        texts, unreadable = read_items(local, to_read(listing, store.items, everything=slow))
        set_aside(listing, store.items, unreadable)
        if unreadable:
            store.unreadable = unreadable_message(unreadable)
        if slow:
            adds, replaces, deletes = [], [i for i in listing if i not in unreadable], []
            # A slow sync pairs everything afresh and never deletes: rows of
            # items gone since would outlive it and send a Delete (or trip
            # the guard on an empty store) at every later sync.
            for item_id in [i for i in store.items if i not in listing]:
                del store.items[item_id]
        else:

            def digest_of(item_id: str) -> str:
                if item_id in unreadable:
                    return store.items[item_id].digest
                if item_id not in texts:
                    texts[item_id] = local.get(item_id)
                return store.codec.digest(texts[item_id][0])

            ch = detect_local_changes(store.items, listing, digest_of)
            for item_id, etag in ch.refreshed.items():
                store.items[item_id] = dataclasses.replace(store.items[item_id], etag=etag)
            adds, replaces, deletes = list(ch.added), list(ch.modified), list(ch.deleted)
            # A mass-deletion guard on our side: the store went empty.
            guard = store.ds.guard
            if deletes and (
                not listing
                or (
                    len(store.items) >= guard.min_items
                    and len(deletes) > guard.max_delete_share * len(store.items)
                )
            ):
                reason = (
                    f"{len(deletes)} of {len(store.items)} local items are gone; "
                    "not deleting them on the server"
                )
                self._events.append(GuardTripped(store.ds.name, reason))
                store.status = StatusCode.SESSION_CANCELLED
                store.message = reason
                return
        missing = [i for i in (*adds, *replaces) if i not in texts]
        texts.update(read_items(local, missing)[0])
        for kind, ids in (("Add", adds), ("Replace", replaces)):
            for item_id in ids:
                found = texts.get(item_id)
                if found is None:
                    continue
                text, etag = found
                try:
                    data, ctype = store.codec.to_remote(text, accepted)
                except ValueError as exc:  # not convertible to a format the server takes
                    store.message = f"item {item_id} not sent: {exc}"
                    continue
                # The state recorded when the server confirms is that of the
                # version sent: an edit made meanwhile still counts as a change.
                sent = ItemState(item_id, item_id, etag, store.codec.digest(text))
                out.changes.append(
                    OutChange(
                        kind,
                        (store.ds.name, item_id, kind, sent),
                        source=item_id,
                        data=data,
                        content_type=ctype.mime,
                    )
                )
        for item_id in deletes:
            out.changes.append(
                OutChange("Delete", (store.ds.name, item_id, "Delete", None), source=item_id)
            )
        store.sent_sync = True

    def _accepted(self, store: _Store) -> tuple[ContentType, ...]:
        ds = self._server_devinf.datastore(store.cs.remote_uri) if self._server_devinf else None
        if ds is None:
            return ()
        return tuple(ContentType(r.ct_type, r.ver_ct or "") for r in (ds.rx_pref, *ds.rx))

    def _maps(self) -> list[Command]:
        out: list[Command] = []
        for store in self._stores.values():
            if store.maps:
                out.append(
                    Map(
                        cmd_id=0,
                        target=Location(uri=store.cs.remote_uri),
                        source=Location(uri=store.ds.name),
                        items=tuple(store.maps),
                    )
                )
        return out

    # ------------------------------------------------------------- the end
    def _run(self, status: int, message: str) -> RunRecord:
        return RunRecord(
            dev_id=self.peer.dev_id,
            role="client",
            started=self.now,
            status=status,
            message=message,
            stores=tuple(s.counts for s in self._stores.values()),
        )

    def _flush(self) -> str | None:
        """Make the session's writes durable (:meth:`Store.flush`); why not, or ``None``."""
        return flush_stores((s.ds.name, s.ds.store) for s in self._stores.values())

    def _fail(self, status: int, message: str) -> None:
        self.phase = Phase.DONE
        # Nothing of the session is kept but the maps the server has not
        # confirmed (they stop the next session from adding those items
        # twice) and the rows of items written or acknowledged here: both
        # sides hold them alike now.  With the old row, an item received here
        # looked like our own change next time and, as a conflict, beat an
        # edit made on the server in between.  The anchors stay, so the next
        # session repeats what is unconfirmed; after a refresh's wipe they go,
        # and the next session is a slow sync that matches what is left.
        pairs = dict(self.peer.pairs)
        keep = False
        for store in self._stores.values():
            resumable = (
                self.config.version == "1.2"
                and store.status == 200
                and store.alerted
                and store.mode in (*_FAST_MODES, AlertCode.SLOW_SYNC)
            )
            if store.pair is None and not resumable:
                continue
            kept = (
                dataclasses.replace(store.pair, pending_maps=dict(store.pending_maps))
                if store.pair is not None
                else PairState(
                    local_uri=store.ds.name,
                    remote_uri=store.cs.remote_uri,
                    pending_maps=dict(store.pending_maps),
                )
            )
            if resumable:
                # Kept for an Alert 225 next time (see the module docstring).
                kept = dataclasses.replace(
                    kept,
                    resume_mode=store.resume_of if store.resume_of is not None else store.mode,
                    resume_anchor=store.anchor,
                )
            if resumable and store.mode == AlertCode.SLOW_SYNC:
                # A slow sync keeps only the rows it wrote: the resumed
                # session pairs the rest, matching unrowed items.
                before = store.pair.items if store.pair is not None else {}
                unmapped = set(store.pending_maps.values()) - set(before)
                rows = {
                    k: v
                    for k, v in store.items.items()
                    if before.get(k) is not v and k not in unmapped
                }
                kept = dataclasses.replace(kept, items=rows)
            elif store.status == 200 and store.mode in _FAST_MODES:
                # (A slow sync or refresh rebuilds the rows as a whole.)  An
                # item added here whose Map the server never got keeps no row:
                # unrowed, it is matched when the server sends it again (or
                # sent as new); with a row it was added a second time.
                old_rows = store.pair.items if store.pair is not None else {}
                unmapped = set(store.pending_maps.values()) - set(old_rows)
                rows = {k: v for k, v in store.items.items() if k not in unmapped}
                kept = dataclasses.replace(kept, items=rows)
            if store.wiped:
                kept = dataclasses.replace(kept, local_anchor=None, remote_anchor=None)
            if kept != store.pair:
                pairs[store.ds.name] = kept
                keep = True
        peer = dataclasses.replace(self.peer, pairs=pairs) if keep else None
        unsaved = self._flush()
        if unsaved is not None:
            peer, message = None, "; ".join(filter(None, (message, unsaved)))
        self.result = SessionFinished(peer, self._run(status, message))
        self._events.append(self.result)

    def suspend(self) -> bytes | None:
        """Suspend the session: our last message, carrying Alert 224 (SyncML 1.2).

        Instead of the message :meth:`receive` returned last, the caller
        sends this one; the session is over (``result`` holds what is kept
        for resuming it) and the server's answer needs no handling.  Returns
        ``None`` when there is nothing to suspend (the session is over, or
        speaks SyncML before 1.2, where the caller just drops it).
        """
        if self.done or self.config.version != "1.2":
            if not self.done:
                self._fail(StatusCode.SESSION_CANCELLED, "suspended")
            return None
        self._outbox.queue.clear()
        alert = Alert(
            cmd_id=0,
            data=AlertCode.SUSPEND,
            items=tuple(
                Item(target=Location(uri=s.cs.remote_uri), source=Location(uri=s.ds.name))
                for s in self._stores.values()
            ),
        )
        data = self._send([], [alert], package_ends=True)
        self._fail(StatusCode.SESSION_CANCELLED, "suspended")
        return data

    def abort(self, reason: str, *, status: int = 514) -> SessionFinished:
        """End the session (connection lost, cancelled); anchors are not moved."""
        if self.result is None:
            self._fail(status, reason)
        assert self.result is not None
        return self.result

    def _complete(self) -> None:
        pairs = dict(self.peer.pairs)
        failed = []
        for store in self._stores.values():
            if store.status != 200 or store.server_next is None:
                failed.append(f"{store.ds.name}: {store.message or store.status}")
                continue
            pairs[store.ds.name] = PairState(
                local_uri=store.ds.name,
                remote_uri=store.cs.remote_uri,
                local_anchor=store.anchor,
                remote_anchor=store.server_next,
                items=store.items,
                last_mode=store.mode,
            )
        peer = PeerState(
            dev_id=self.peer.dev_id,
            devinf=self._server_devinf or self.peer.devinf,
            nonce=self._nonce,
            pairs=pairs,
        )
        status = 200 if not failed else StatusCode.SYNCHRONIZATION_FAILED
        unsaved = self._flush()
        if unsaved is not None:
            # The writes may not survive a crash: commit nothing, so the
            # next session repeats them.
            failed.append(unsaved)
            status = StatusCode.DATA_STORE_FAILURE
        self.phase = Phase.DONE
        self.result = SessionFinished(
            None if unsaved is not None else peer, self._run(status, "; ".join(failed))
        )
        self._events.append(self.result)


#: The modes that keep the rows and only exchange changes.
_FAST_MODES = (AlertCode.TWO_WAY, AlertCode.ONE_WAY_FROM_CLIENT, AlertCode.ONE_WAY_FROM_SERVER)

#: The alert code of a suspended session -> the mode its resumption runs in
#: (the server's table: what was exchanged has rows on both sides).
_RESUMED_MODES = {200: 200, 201: 200, 202: 202, 204: 204}


def _exists(store: Store, item_id: str) -> bool:
    try:
        store.get(item_id)
    except ItemNotFound:
        return False
    return True


__all__ = [
    "ClientConfig",
    "ClientResult",
    "ClientSession",
    "ClientStore",
    "SessionFailed",
    "encode_message",
]
