"""The SyncML server role: a phone or client starts a session, we answer.

Theory of operation
-------------------
A session is a strict alternation: the client sends a message, we answer
with exactly one.  :meth:`ServerSession.receive` takes the client's bytes and
returns the answer (:class:`~syncmld.engine.session.Reply`).  The SyncML
*packages* ride on these messages:

====== =========================================== =================
 pkg    content                                     sender
====== =========================================== =================
 1      Alert per datastore, DevInf Put/Get, Cred   client
 2      Statuses, our Alerts, DevInf Results        server (us)
 3      Sync per datastore with the client changes  client
 4      Statuses, Sync with our changes             server
 5      Statuses, Map (client ids for our Adds)     client
 6      Statuses                                    server
====== =========================================== =================

A package may span several messages: a message without ``Final`` says "more
of this package follows"; we answer it with the Statuses we owe (and, when
we have nothing else to say, Alert 222 "send the next message").  Our own
packages are split by the :class:`~syncmld.engine.outbox.Outbox` to the
client's MaxMsgSize; the client answers each part and we send the next.
The machine's phase only moves on a client message carrying ``Final`` once
our own outgoing package has been sent completely:

``INIT`` --Final--> ``CLIENT_SYNC`` --Final--> ``MAPS`` --Final--> ``DONE``

Commands are handled as they come, in order, whatever the phase (real
clients interleave: Funambol sends Alert 222 after its Sync, libsynthesis
starts Maps before our package ends).  Each datastore has its own
:class:`_Store` with the sync decisions (:class:`~syncmld.engine.decide.Planner`):
client changes are decided and written to the local store as they arrive,
so every item gets its real status at once; deletions are held back until
the client's package is complete, when the mass-deletion guard can see them
all.

Nothing is committed here: when pkg6 has been built the session emits
:class:`~syncmld.engine.session.SessionFinished` with the new
:class:`~syncmld.engine.state.PeerState`; a session that ends any other way
emits it with ``peer=None``, or, when items were already written or
acknowledged, with only those items' rows updated (the anchors stay as they
were).  Before either, every store is flushed
(:meth:`~syncmld.engine.store.Store.flush`); when a flush fails, ``peer`` is
``None`` (and a complete session's status 510), so that nothing is committed
for writes that may not survive a crash.  Anchors therefore only move after
a complete session; a client whose last session broke off finds its
``Last`` anchor unknown and gets a slow sync, which matches items instead of
duplicating them.

Suspend and resume (SyncML 1.2): a session the client suspends (Alert 224,
answered with Statuses only, 514 for whatever followed it) or that breaks
off once the client's package has begun keeps, per datastore, the rows of
the items already exchanged (a slow sync only the rows it wrote itself) and
the alert code in force and the client's ``Next`` anchor, which names the
session (:attr:`~syncmld.engine.state.PairState.resume_mode`).  An Alert 225
whose ``Last`` names that session (our client) or the committed anchor it
started from (SyncEvolution) is answered 200, and our own Alert carries
the saved mode (200, 201 or the one-way code: SyncEvolution refuses a 225
from the server); the datastore then
runs as a two-way (or the same one-way) sync relative to those rows, so only
what was not exchanged goes either way, and unrowed items are matched as in
a slow sync.  A 225 with nothing to resume gets 508 and a slow sync (406
before SyncML 1.2).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import enum
import hmac
import itertools
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from syncmld.engine.common import (
    Chunk,
    asks_next_message,
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
from syncmld.engine.decide import (
    ChangeKind,
    Direction,
    LocalAdd,
    LocalDelete,
    LocalItem,
    LocalReplace,
    Planner,
    RemoteAdd,
    RemoteChange,
    RemoteDelete,
    RemoteReplace,
    UpdateEtag,
    detect_local_changes,
)
from syncmld.engine.decide import (
    Conflict as ConflictAction,
)
from syncmld.engine.decide import (
    Forget as ForgetAction,
)
from syncmld.engine.decide import (
    Link as LinkAction,
)
from syncmld.engine.items import ItemCodec, PlainCodec, bind_codec, content_types
from syncmld.engine.outbox import DEFAULT_MAX_MSG_SIZE, Outbox, OutChange, OutSync, SentCommand
from syncmld.engine.session import (
    MANUFACTURER,
    MODEL,
    SOFTWARE_VERSION,
    AuthFailed,
    AuthMode,
    ConflictResolved,
    Datastore,
    Event,
    GuardTripped,
    PeerIdentified,
    PeerLoader,
    Progress,
    Reply,
    SessionFinished,
    StoreStarted,
    anchor_for,
)
from syncmld.engine.state import ItemState, PairState, PeerState, RunRecord, StoreCounts
from syncmld.engine.store import (
    ContentType,
    ItemNotFound,
    PreconditionFailed,
    StoreError,
    flush_stores,
)
from syncmld.protocol import auth
from syncmld.protocol.codec import Encoding, decode_message, encode_message, sniff
from syncmld.protocol.codes import (
    AlertCode,
    StatusCode,
    SyncMode,
    server_alerted_to_client_alert,
)
from syncmld.protocol.devinf import ContentTypeRef, DataStore, DevInf
from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.limits import DEFAULT_LIMITS, Limits
from syncmld.protocol.model import (
    Add,
    Alert,
    Anchor,
    Chal,
    Command,
    Cred,
    Delete,
    Get,
    Item,
    Location,
    Map,
    Message,
    Meta,
    Put,
    Replace,
    Results,
    Status,
    Sync,
    SyncHdr,
)
from syncmld.protocol.san import San, SanAlert, build_san, content_type_number, san_to_message

VERSIONS = {"1.0": "SyncML/1.0", "1.1": "SyncML/1.1", "1.2": "SyncML/1.2"}
DEVINF_URIS = {"1.0": "./devinf10", "1.1": "./devinf11", "1.2": "./devinf12"}

#: Alert code -> direction, seen from the server (the client is "remote").
#: The alert code of a suspended session -> the mode its resumption runs in.
#: Whatever was exchanged has rows on both sides, so the rest is a two-way
#: (or one-way) exchange relative to them; a refresh is not resumed.
_RESUMED_MODES = {200: 200, 201: 200, 202: 202, 204: 204}

_DIRECTIONS = {
    200: Direction.TWO_WAY,
    201: Direction.SLOW,
    202: Direction.FROM_REMOTE,
    203: Direction.REFRESH_FROM_REMOTE,
    204: Direction.FROM_LOCAL,
    205: Direction.REFRESH_FROM_LOCAL,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """How a server session behaves.

    Attributes:
        datastores: what we offer.
        auth: what we demand; ``passwords`` maps user names to passwords.
        max_msg_size: the largest message we accept (announced to clients).
        max_obj_size: the largest item we accept.
        max_auth_failures: failed attempts before the session is ended.
        send_next_message_alert: answer a non-final client message with
            Alert 222 when we have nothing else to say (the standard's way;
            libsynthesis servers do without).
    """

    datastores: tuple[Datastore, ...]
    auth: AuthMode = AuthMode.NONE
    passwords: dict[str, str] = field(default_factory=dict)
    max_msg_size: int = 1_000_000
    max_obj_size: int = 4_000_000
    max_auth_failures: int = 3
    send_next_message_alert: bool = True
    limits: Limits = DEFAULT_LIMITS

    def datastore(self, uri: str) -> Datastore | None:
        """The datastore a LocURI names, or ``None``."""
        for ds in self.datastores:
            if ds.answers_to(uri):
                return ds
        return None


class Phase(enum.Enum):
    """Where the session stands (see the module docstring)."""

    INIT = "init"
    CLIENT_SYNC = "client-sync"
    MAPS = "maps"
    DONE = "done"


class _Store:
    """One datastore's part of the session."""

    def __init__(
        self,
        ds: Datastore,
        *,
        remote_uri: str,
        requested: int,
        mode: int,
        pair: PairState | None,
        local_anchor: str,
        remote_next: str,
        peer_store: DataStore | None,
    ) -> None:
        self.ds = ds
        self.codec: ItemCodec = ds.item_codec()
        self.remote_uri = remote_uri
        self.requested = requested
        self.mode = mode
        self.pair = pair
        self.local_anchor = local_anchor
        self.remote_next = remote_next
        self.peer_store = peer_store
        self.items: dict[str, ItemState] = dict(pair.items) if pair else {}
        #: The rows as the session started them (a row not found here, by
        #: identity, was written by this session).
        self.start_items: dict[str, ItemState] = {}
        #: The alert code of the suspended session this one resumes, if any.
        self.resume_of: int | None = None
        #: Set once the client's Sync for this datastore arrived: the client
        #: got our Alert and keeps what it exchanged if the session breaks.
        self.synced = False
        self.planner: Planner | None = None
        self.tally: dict[str, int] = {}
        self.status = 200
        self.message = ""
        #: Which items the store could not read (see ItemUnreadable), for the run.
        self.unreadable = ""
        #: The client sent an item with ``Meta/Format b64``: ours go so too.
        self.peer_b64 = False
        self.chunk: Chunk | None = None
        self.received = 0
        self.expected: int | None = None
        self.finished = False
        #: Our GUID sent in an Add -> local id (GUIDs may be temporary short ids).
        self.guids: dict[str, str] = {}
        self._temp = itertools.count(1)
        #: (etag, digest) of local items written in this session.
        self.fresh: dict[str, tuple[str, str]] = {}
        #: Remote id -> digest of the peer's version received in this session.
        self.incoming: dict[str, str | None] = {}
        #: Remote id -> (text, digest) of the batch being applied: a local
        #: write of exactly that text needs no second hash.
        self.batch: dict[str, tuple[str | None, str | None]] = {}
        #: Local ids whose row records content the peer may not hold yet (a
        #: merge written here, an Add not mapped yet): a broken session keeps
        #: their old rows (see :meth:`ServerSession._partial_state`).
        self.unsettled: set[str] = set()
        #: Our changes for the peer, sent as pkg4.
        self.out = OutSync(target=remote_uri, source=ds.name)

    @property
    def direction(self) -> Direction:
        return _DIRECTIONS[self.mode]

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

    def guid_for(self, local_id: str) -> str:
        """The id we send for a local item, short enough for the peer (MaxGUIDSize)."""
        limit = self.peer_store.max_guid_size if self.peer_store else None
        if limit is None:  # a device quirk may know the limit its DevInf leaves out
            limit = getattr(self.codec, "max_guid_size", None)
        guid = local_id
        if limit is not None and 0 < limit < len(local_id.encode("utf-8")):
            # Sony Ericsson P900 keeps at most 4 bytes of a server id: send a
            # temporary one and translate it back when the Map arrives.
            guid = _temp_guid(next(self._temp))
        self.guids[guid] = local_id
        return guid


class ServerSession:
    """One server-role SyncML session (see the module docstring).

    Args:
        config: datastores, authentication, limits.
        load_peer: returns the stored state of a device id, or ``None``.
        now: the session's start time (seconds since the epoch): anchors.
        resp_uri: the URI the client must send its next message to (HTTP);
            ``None`` over OBEX.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        load_peer: PeerLoader,
        now: float,
        resp_uri: str | None = None,
    ) -> None:
        self.config = config
        self._load_peer = load_peer
        self.now = now
        self.resp_uri = resp_uri
        self.phase = Phase.INIT
        self.peer: PeerState | None = None
        self.dev_id: str | None = None
        self.session_id: str | None = None
        self.version = "1.2"
        self.encoding = Encoding.XML
        self.our_uri = ""
        self.authenticated = config.auth is AuthMode.NONE
        self.auth_failures = 0
        self.user: str | None = None
        self._nonce: str | None = None  # the nonce we issued in this session
        self._msg_ids = itertools.count(1)
        self._stores: dict[str, _Store] = {}
        self._outbox: Outbox | None = None
        #: The quirk table's message size cap for the bound device, if any.
        self._msg_cap: int | None = None
        self._sent: dict[tuple[int, int], SentCommand] = {}
        self._last_request: bytes | None = None
        self._last_reply: Reply | None = None
        self._peer_devinf: DevInf | None = None
        self._events: list[Event] = []
        self._anchor = anchor_for(now)
        self.result: SessionFinished | None = None

    # ---------------------------------------------------------------- public
    @property
    def done(self) -> bool:
        """True once the session is over."""
        return self.phase is Phase.DONE

    def receive(self, data: bytes) -> Reply:
        """Handle one client message and return our answer.

        Raises:
            RemoteProtocolError: the message cannot be decoded at all (no
                header to answer); the transport answers at its own level
                (HTTP 400, OBEX Bad Request) and the session is over.
        """
        if self._last_request is not None and data == self._last_request:
            # A resent request (the client lost our answer): same answer again.
            assert self._last_reply is not None
            return self._last_reply
        if self.done:
            raise RemoteProtocolError("the session is already over", status=400)
        with gc_paused():
            try:
                msg = decode_message(data, limits=self.config.limits)
            except RemoteProtocolError:
                self._fail(400, "undecodable message")
                raise
            self.encoding = sniff(data)
            reply = self._handle(msg)
        self._last_request = data
        self._last_reply = reply
        return reply

    def abort(self, reason: str, *, status: int = 514) -> SessionFinished:
        """End the session (connection lost, cancelled, timeout); anchors are not moved."""
        if self.result is None:
            self._fail(status, reason)
        assert self.result is not None
        return self.result

    # ------------------------------------------------------------ internals
    def _fail(self, status: int, message: str) -> None:
        self.phase = Phase.DONE
        peer = self._partial_state()
        unsaved = self._flush()
        if unsaved is not None:
            peer, message = None, "; ".join(filter(None, (message, unsaved)))
        run = self._run_record(status=status, message=message)
        self.result = SessionFinished(peer, run)
        self._events.append(self.result)

    def _flush(self) -> str | None:
        """Make the session's writes durable (:meth:`Store.flush`); why not, or ``None``."""
        return flush_stores((st.ds.name, st.ds.store) for st in self._stores.values())

    def _partial_state(self) -> PeerState | None:
        """What a broken session keeps: the rows of items both sides now hold alike.

        An item written here with the client's version (or deleted, or sent
        and acknowledged) is agreed on even if the session breaks off.  With
        its old row, the client's resend of that change next time looked like
        a change the client made, and as a conflict it beat a desktop edit
        made in between: the edit was lost.  Rows whose content the client
        may not hold (:attr:`_Store.unsettled`) stay as they were, and so do
        the anchors: the next session repeats whatever is unconfirmed.
        Slow syncs and refreshes keep nothing: they rebuild the rows as a
        whole (a row they dropped half way was never sent back again).
        """
        if self.peer is None:
            return None
        pairs = dict(self.peer.pairs)
        kept = False
        for st in self._stores.values():
            if st.planner is None or st.status != 200 or st.mode in (203, 205):
                continue
            # The client keeps resume markers as soon as it has our Alert, so
            # we keep them from the moment the Alert exists: a client that
            # alerts 225 for a session we cannot resume gets a slow sync,
            # which brings back items deleted since.  A slow sync that never
            # got the client's Sync keeps nothing (its rows are rebuilt).
            resumable = self.version == "1.2" and (st.synced or st.mode != 201)
            old = dict(st.pair.items) if st.pair is not None else {}
            if st.mode == 201:
                if not resumable:
                    continue
                # A suspended slow sync keeps the rows it wrote and the old
                # rows of items the client sent in it (both sides know those
                # pairs); the resumed session pairs the rest as a two-way
                # sync relative to them, matching unrowed items like a slow
                # sync.  A row of an item the client did not send may name
                # one it no longer has.
                seen = st.incoming
                old = {
                    k: v
                    for k, v in st.start_items.items()
                    if v.remote_id is not None and v.remote_id in seen
                }
                items = {
                    k: v
                    for k, v in st.items.items()
                    if v.remote_id is not None
                    and k not in st.unsettled
                    and (st.start_items.get(k) is not v or v.remote_id in seen)
                }
            else:
                items = {
                    k: v
                    for k, v in st.items.items()
                    if v.remote_id is not None and k not in st.unsettled
                }
            taken = {v.remote_id for v in items.values()}
            for k in st.unsettled:
                row = old.get(k)
                if row is not None and row.remote_id not in taken:
                    items[k] = row
            pair = (
                dataclasses.replace(st.pair, items=items)
                if st.pair is not None
                else PairState(local_uri=st.ds.name, remote_uri=st.remote_uri, items=items)
            )
            if resumable:
                pair = dataclasses.replace(
                    pair,
                    resume_mode=st.resume_of if st.resume_of is not None else st.mode,
                    # The client's Next names this session: its Alert 225
                    # sends it as Last (see PairState.resume_anchor).
                    resume_anchor=st.remote_next,
                )
            if pair == st.pair or (st.pair is None and not items and not resumable):
                continue
            pairs[st.ds.name] = pair
            kept = True
        return dataclasses.replace(self.peer, pairs=pairs) if kept else None

    def _run_record(self, *, status: int, message: str) -> RunRecord:
        stores = tuple(s.counts for s in self._stores.values())
        return RunRecord(
            dev_id=self.dev_id or "",
            role="server",
            started=self.now,
            status=status,
            message=message,
            stores=stores,
        )

    def _header(self, incoming: SyncHdr) -> SyncHdr:
        meta = Meta(max_msg_size=self.config.max_msg_size)
        if self.version != "1.0":
            meta = dataclasses.replace(meta, max_obj_size=self.config.max_obj_size)
        return SyncHdr(
            ver_dtd=self.version,
            ver_proto=VERSIONS[self.version],
            session_id=incoming.session_id,
            msg_id=next(self._msg_ids),
            target=Location(uri=incoming.source.uri),
            source=Location(uri=self.our_uri),
            resp_uri=self.resp_uri,
            meta=meta,
        )

    def _status(
        self,
        msg: Message,
        cmd: Command | None,
        code: int,
        *,
        target: str | None = None,
        source: str | None = None,
        items: tuple[Item, ...] = (),
        chal: Chal | None = None,
    ) -> Status:
        return status_for(msg, cmd, code, target=target, source=source, items=items, chal=chal)

    def _handle(self, msg: Message) -> Reply:
        self._events = []
        hdr = msg.header
        statuses: list[Status] = []
        if self.session_id is None:
            # First message: who is it, which version, which encoding.
            if hdr.ver_dtd not in VERSIONS:
                return self._refuse(msg, StatusCode.DTD_VERSION_NOT_SUPPORTED, "unsupported VerDTD")
            if hdr.ver_proto and hdr.ver_proto.upper() != VERSIONS[hdr.ver_dtd].upper():
                return self._refuse(
                    msg, StatusCode.PROTOCOL_VERSION_NOT_SUPPORTED, "unsupported VerProto"
                )
            self.version = hdr.ver_dtd
            self.session_id = hdr.session_id
            self.dev_id = hdr.source.uri
            self.our_uri = hdr.target.uri
            self.peer = self._load_peer(self.dev_id) or PeerState(dev_id=self.dev_id)
            self._events.append(PeerIdentified(self.dev_id))
        elif hdr.session_id != self.session_id or hdr.source.uri != self.dev_id:
            return self._refuse(msg, StatusCode.BAD_REQUEST, "message of another session")
        if self._outbox is None:
            peer_max = hdr.meta.max_msg_size if hdr.meta and hdr.meta.max_msg_size else None
            self._outbox = Outbox(
                encoding=self.encoding,
                max_msg_size=peer_max or DEFAULT_MAX_MSG_SIZE,
                answer_limit=self.config.max_msg_size,
            )
            known = self.peer.devinf if self.peer else None
            if known is not None:
                self._outbox.large_objects = _takes_large_objects(known, self.version)
        elif hdr.meta and hdr.meta.max_msg_size:
            self._outbox.max_msg_size = min(hdr.meta.max_msg_size, self._msg_cap or sys.maxsize)
        self._outbox.encoding = self.encoding

        # --- authentication ---
        if not self.authenticated:
            code, chal = self._authenticate(msg)
            if code not in (StatusCode.OK, StatusCode.AUTHENTICATION_ACCEPTED):
                return self._auth_refused(msg, code, chal)
            statuses.append(self._status(msg, None, code, chal=chal))
        else:
            statuses.append(self._status(msg, None, StatusCode.OK))

        # --- commands ---
        for cmd in msg.commands:
            if self.done:
                # Suspended (Alert 224): what follows is not carried out.
                statuses.append(self._status(msg, cmd, StatusCode.SESSION_CANCELLED))
                continue
            statuses.extend(self._command(msg, cmd))
        if self.done:
            return self._statuses_only(msg, statuses)
        return self._answer(msg, statuses)

    def _statuses_only(self, msg: Message, statuses: list[Status]) -> Reply:
        """The last answer of a suspended session: our Statuses and nothing else."""
        assert self._outbox is not None
        only = Outbox(encoding=self.encoding, max_msg_size=self._outbox.max_msg_size)
        _, data, _ = only.build(self._header(msg.header), statuses, package_ends=True)
        return Reply(data, self.encoding, tuple(self._events), done=True)

    # --------------------------------------------------------------- auth
    def _authenticate(self, msg: Message) -> tuple[int, Chal | None]:
        # Sony Ericsson K500i/K700i/Z600 put Cred inside the Alert, not the header.
        cred = msg.header.cred or next(
            (c.cred for c in msg.commands if getattr(c, "cred", None) is not None),  # type: ignore[union-attr]
            None,
        )
        mode = self.config.auth
        if cred is None:
            return StatusCode.MISSING_CREDENTIALS, self._challenge()
        ctype = (cred.meta.type if cred.meta and cred.meta.type else "syncml:auth-basic").lower()
        ok = False
        if ctype == auth.AUTH_BASIC and mode is AuthMode.BASIC:
            ok = self._check_basic(cred)
        elif ctype == auth.AUTH_MD5 and mode in (AuthMode.MD5, AuthMode.BASIC):
            ok = self._check_md5(cred, msg.header)
        if ok:
            self.authenticated = True
            return StatusCode.AUTHENTICATION_ACCEPTED, (
                self._challenge() if mode is AuthMode.MD5 else None
            )
        return StatusCode.INVALID_CREDENTIALS, self._challenge()

    def _check_basic(self, cred: Cred) -> bool:
        try:
            user, password = auth.parse_basic(cred.data)
        except RemoteProtocolError:
            return False
        self.user = user
        known = self.config.passwords.get(user)
        return known is not None and hmac.compare_digest(known.encode(), password.encode())

    def _check_md5(self, cred: Cred, hdr: SyncHdr) -> bool:
        user = hdr.source.name
        if not user:
            return False
        self.user = user
        password = self.config.passwords.get(user)
        if password is None:
            return False
        nonce_b64 = (
            self._nonce if self._nonce is not None else (self.peer.nonce if self.peer else None)
        )
        nonce = auth.decode_nonce(nonce_b64) if nonce_b64 else b""
        return auth.verify_md5(
            cred.data, nonce=nonce, version=self.version, user=user, password=password
        )

    def _challenge(self) -> Chal:
        if self.config.auth is AuthMode.MD5:
            self._nonce = auth.new_nonce()
            return Chal(meta=Meta(type=auth.AUTH_MD5, format="b64", next_nonce=self._nonce))
        return Chal(meta=Meta(type=auth.AUTH_BASIC, format="b64"))

    def _auth_refused(self, msg: Message, code: int, chal: Chal | None) -> Reply:
        self.auth_failures += 1
        final = self.auth_failures >= self.config.max_auth_failures
        statuses = [self._status(msg, None, code, chal=chal)]
        statuses.extend(
            self._status(msg, c, code) for c in msg.commands if not isinstance(c, Status)
        )
        self._events.append(AuthFailed(self.user, code, final))
        # No RespURI after failed authentication (libsynthesis does the same).
        header = dataclasses.replace(self._header(msg.header), resp_uri=None)
        if final:
            self._fail(code, "authentication failed")
        assert self._outbox is not None
        only_statuses = Outbox(encoding=self.encoding, max_msg_size=self._outbox.max_msg_size)
        _, data, _ = only_statuses.build(header, statuses, package_ends=True)
        return Reply(data, self.encoding, tuple(self._events), done=final)

    def _refuse(self, msg: Message, code: int, reason: str) -> Reply:
        """Answer with only a header status and end the session."""
        if self.session_id is None:
            self.version = msg.header.ver_dtd if msg.header.ver_dtd in VERSIONS else "1.2"
            self.our_uri = msg.header.target.uri
        self._fail(code, reason)
        header = self._header(msg.header)
        status = self._status(msg, None, code)
        out = Message(header=header, commands=(dataclasses.replace(status, cmd_id=1),), final=True)
        try:
            data = encode_message(out, self.encoding)
        except LocalProtocolError:
            data = encode_message(
                dataclasses.replace(
                    out, header=dataclasses.replace(header, ver_dtd="1.2", ver_proto="SyncML/1.2")
                ),
                self.encoding,
            )
        return Reply(data, self.encoding, tuple(self._events), done=True)

    # ----------------------------------------------------------- commands
    def _command(self, msg: Message, cmd: Command) -> list[Status]:
        if isinstance(cmd, Status):
            self._peer_status(cmd)
            return []
        if getattr(cmd, "no_resp", False):
            self._dispatch(msg, cmd)
            return []
        return self._dispatch(msg, cmd)

    def _dispatch(self, msg: Message, cmd: Command) -> list[Status]:
        if isinstance(cmd, Alert):
            return self._alert(msg, cmd)
        if isinstance(cmd, Put):
            return [self._put(msg, cmd)]
        if isinstance(cmd, Get):
            return [self._get(msg, cmd)]
        if isinstance(cmd, Results):
            self._store_devinf(cmd.items)
            return [self._status(msg, cmd, StatusCode.OK)]
        if isinstance(cmd, Sync):
            return self._sync(msg, cmd)
        if isinstance(cmd, Map):
            return [self._map(msg, cmd)]
        # Bare Add/Replace/Delete/Copy are a DM pattern; Atomic, Sequence,
        # Exec, Search, Copy and Move are optional features we do not offer.
        return [self._status(msg, cmd, StatusCode.OPTIONAL_FEATURE_NOT_SUPPORTED)]

    # --- DevInf ---
    def _store_devinf(self, items: Iterable[Item]) -> bool:
        for it in items:
            if isinstance(it.data, DevInf):
                self._peer_devinf = it.data
                for st in self._stores.values():  # a DevInf that came after the Alerts
                    st.codec = bind_codec(st.ds.item_codec(), it.data, st.remote_uri)
                    self._cap_messages(st.codec)
                if self._outbox is not None:
                    self._outbox.large_objects = _takes_large_objects(it.data, self.version)
                return True
        return False

    def _put(self, msg: Message, cmd: Put) -> Status:
        ok = self._store_devinf(cmd.items)
        code = StatusCode.OK if ok else StatusCode.UNSUPPORTED_MEDIA_TYPE
        src = cmd.items[0].source.uri if cmd.items and cmd.items[0].source else None
        return self._status(msg, cmd, code, source=src)

    def _get(self, msg: Message, cmd: Get) -> Status:
        target = cmd.items[0].target.uri if cmd.items and cmd.items[0].target else ""
        if not target.lower().startswith("./devinf"):
            return self._status(msg, cmd, StatusCode.NOT_FOUND, target=target)
        uri = DEVINF_URIS[self.version]
        assert self._outbox is not None
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
        return self._status(msg, cmd, StatusCode.OK, target=target)

    def devinf(self) -> DevInf:
        """Our DevInf for this session's version."""
        stores = []
        for ds in self.config.datastores:
            cts = [
                ContentTypeRef(ct_type=ct.mime, ver_ct=ct.version)
                for ct in content_types(ds.item_codec(), ds.store)
            ]
            stores.append(
                DataStore(
                    source_ref=ds.name,
                    display_name=ds.display_name,
                    rx_pref=cts[0],
                    rx=tuple(cts[1:]),
                    tx_pref=cts[0],
                    tx=tuple(cts[1:]),
                    sync_caps=(1, 2, 3, 4, 5, 6, 7),
                )
            )
        modern = self.version != "1.0"
        return DevInf(
            ver_dtd=self.version,
            man=MANUFACTURER,
            mod=MODEL,
            sw_v=SOFTWARE_VERSION,
            dev_id=self.our_uri or "syncmld",
            dev_typ="server",
            utc=modern,
            support_large_objs=modern,
            support_number_of_changes=modern,
            datastores=tuple(stores),
        )

    # --- Alert ---
    def _alert(self, msg: Message, cmd: Alert) -> list[Status]:
        code = cmd.data
        if code is None:
            return [self._status(msg, cmd, StatusCode.INCOMPLETE_COMMAND)]
        if code == AlertCode.NEXT_MESSAGE:
            return [self._status(msg, cmd, StatusCode.OK)]
        if code == AlertCode.DISPLAY:
            return [self._status(msg, cmd, StatusCode.OK)]
        if code == AlertCode.SUSPEND:
            # What was exchanged so far is kept with the mode and anchors in
            # force (see _partial_state): an Alert 225 continues from there.
            self._fail(StatusCode.SESSION_CANCELLED, "suspended by the client")
            return [self._status(msg, cmd, StatusCode.OK)]
        if not (200 <= code <= 210 or code == AlertCode.RESUME):
            return [self._status(msg, cmd, StatusCode.OPTIONAL_FEATURE_NOT_SUPPORTED)]
        return [self._sync_alert(msg, cmd, code, item) for item in cmd.items] or [
            self._status(msg, cmd, StatusCode.INCOMPLETE_COMMAND)
        ]

    def _sync_alert(self, msg: Message, cmd: Alert, code: int, item: Item) -> Status:
        our_uri = item.target.uri if item.target else ""
        their_uri = item.source.uri if item.source else ""
        ds = self.config.datastore(our_uri)
        if ds is None:
            return self._status(msg, cmd, StatusCode.NOT_FOUND, target=our_uri, source=their_uri)
        anchor = item.meta.anchor if item.meta and item.meta.anchor else None
        if anchor is None or not anchor.next or not their_uri:
            return self._status(
                msg, cmd, StatusCode.INCOMPLETE_COMMAND, target=our_uri, source=their_uri
            )
        assert self.peer is not None
        requested = code
        pair = self.peer.pairs.get(ds.name)
        resume_of = (
            self._resumable(pair, their_uri, anchor.last) if code == AlertCode.RESUME else None
        )
        # A resume with nothing (or another session) to resume falls back to
        # a normal sync whose anchors decide; a session a notification
        # started alerts 206-210.
        base = 200 if code == AlertCode.RESUME else int(server_alerted_to_client_alert(code))
        status_code = StatusCode.OK
        mode = base
        if resume_of is not None:
            mode = _RESUMED_MODES[resume_of]
        elif code == AlertCode.RESUME:
            # Nothing (or another session) to resume.  The client's Last
            # names its broken session, not a committed one, and its rows are
            # only partly what ours are (we may have committed that very
            # session): a slow sync pairs both sides afresh.
            status_code = StatusCode.REFRESH_REQUIRED
            mode = 201
        elif base in (200, 202, 204):
            anchors_ok = (
                pair is not None
                and pair.remote_uri == their_uri
                and pair.remote_anchor is not None
                and pair.remote_anchor == (anchor.last or "")
                and pair.local_anchor is not None
            )
            if not anchors_ok:
                status_code = StatusCode.REFRESH_REQUIRED
                mode = 201
        if code == AlertCode.RESUME and self.version != "1.2":
            status_code = StatusCode.OPTIONAL_FEATURE_NOT_SUPPORTED
        peer_ds = self._peer_datastore(their_uri)
        st = _Store(
            ds,
            remote_uri=their_uri,
            requested=requested,
            mode=mode,
            pair=pair if pair is not None and pair.remote_uri == their_uri else None,
            local_anchor=self._anchor,
            remote_next=anchor.next,
            peer_store=peer_ds,
        )
        st.resume_of = resume_of
        self._stores[ds.name] = st
        self._start_store(st)
        st.start_items = dict(st.items)
        self._events.append(StoreStarted(ds.name, their_uri, mode, requested))
        assert self._outbox is not None
        last = st.pair.local_anchor if st.pair is not None and mode not in (201, 203, 205) else None
        self._outbox.put(
            Alert(
                cmd_id=0,
                # A resumed datastore is alerted with the mode of the
                # suspended session, not 225: libsynthesis (SyncEvolution)
                # answers an Alert 225 from the server with 400 "sync type
                # not supported" and aborts.  The 200 on its Alert 225 tells
                # the client that the session is resumed.
                data=resume_of if resume_of is not None else mode,
                items=(
                    Item(
                        target=Location(uri=their_uri),
                        source=Location(uri=ds.name),
                        meta=Meta(
                            anchor=Anchor(last=last, next=self._anchor),
                            max_obj_size=self.config.max_obj_size
                            if self.version != "1.0"
                            else None,
                        ),
                    ),
                ),
            )
        )
        return self._status(
            msg,
            cmd,
            status_code,
            target=our_uri,
            source=their_uri,
            items=(Item(data=Anchor(next=anchor.next)),),
        )

    def _resumable(self, pair: PairState | None, their_uri: str, last: str | None) -> int | None:
        """The suspended session's alert code if an Alert 225 can continue it."""
        if (
            self.version != "1.2"
            or pair is None
            or pair.remote_uri != their_uri
            or pair.resume_mode not in _RESUMED_MODES
            or not pair.resume_anchor
            # Our client sends the suspended session's Next as Last;
            # SyncEvolution (libsynthesis) sends its last committed anchor,
            # the one the suspended session started from.
            or (last or "") not in (pair.resume_anchor, pair.remote_anchor or pair.resume_anchor)
        ):
            return None
        return pair.resume_mode

    def _cap_messages(self, codec: object) -> None:
        """Cap our messages at the device's size from the quirk table, if any.

        Sony Ericsson phones (T610, K700i) announce no MaxMsgSize, or a larger
        one than they handle, and drop the connection on a bigger message;
        the codec knows their real limit (:attr:`FormatCodec.max_msg_size`).
        """
        cap = getattr(codec, "max_msg_size", None)
        if not isinstance(cap, int) or cap <= 0:
            return
        self._msg_cap = min(cap, self._msg_cap or cap)
        if self._outbox is not None:
            self._outbox.max_msg_size = min(self._outbox.max_msg_size, self._msg_cap)

    def _peer_datastore(self, uri: str) -> DataStore | None:
        devinf = self._peer_devinf or (self.peer.devinf if self.peer else None)
        return devinf.datastore(uri) if devinf is not None else None

    def _start_store(self, st: _Store) -> None:
        """Detect local changes and set up the planner for one datastore."""
        store = st.ds.store
        devinf = self._peer_devinf or (self.peer.devinf if self.peer else None)
        st.codec = bind_codec(st.ds.item_codec(), devinf, st.remote_uri)
        self._cap_messages(st.codec)
        listing = dict(store.list())
        known = st.items
        needs_all = st.direction in (
            Direction.SLOW,
            Direction.REFRESH_FROM_REMOTE,
            Direction.REFRESH_FROM_LOCAL,
        )
        # Everything change detection and planning read, at once; an item
        # the store cannot read is left alone this session (set_aside).
        texts, unreadable = read_items(store, to_read(listing, known, everything=needs_all))
        set_aside(listing, known, unreadable)
        if unreadable:
            st.unreadable = unreadable_message(unreadable)
        cache: dict[str, str] = {}
        for item_id, (data, etag) in texts.items():
            cache[item_id] = data
            if item_id in listing:
                listing[item_id] = etag

        def digest_of(local_id: str) -> str:
            if local_id in unreadable:
                return known[local_id].digest
            if local_id not in cache:
                cache[local_id], _ = store.get(local_id)
            return st.codec.digest(cache[local_id])

        changes = detect_local_changes(known, listing, digest_of)
        wanted = list(listing) if needs_all else [*changes.added, *changes.modified]
        local: dict[str, LocalItem] = {}
        missing = [i for i in wanted if i not in cache and i not in unreadable]
        for item_id, (data, etag) in read_items(store, missing)[0].items():
            cache[item_id] = data
            listing[item_id] = etag
        for item_id in wanted:
            text = cache.get(item_id)
            if text is None:
                continue
            local[item_id] = LocalItem(
                local_id=item_id,
                etag=listing[item_id],
                digest=st.codec.digest(text),
                uid=st.codec.uid(text),
                data=text,
            )
        for local_id, etag in changes.refreshed.items():
            if local_id in st.items:
                st.items[local_id] = dataclasses.replace(st.items[local_id], etag=etag)
        st.planner = Planner(
            direction=st.direction,
            policy=st.ds.policy,
            known=st.items,
            local=local,
            local_changes=changes,
            local_count=len(listing),
            # Late-bound: a DevInf arriving after the Alert rebinds st.codec.
            merge=lambda local, remote: st.codec.merge(local, remote),  # noqa: PLW0108
            guard=st.ds.guard,
        )

    # --- Sync ---
    def _sync(self, msg: Message, cmd: Sync) -> list[Status]:
        our_uri = cmd.target.uri if cmd.target else ""
        their_uri = cmd.source.uri if cmd.source else ""
        ds = self.config.datastore(our_uri)
        st = self._stores.get(ds.name) if ds is not None else None
        if st is None or st.planner is None:
            out = [self._status(msg, cmd, StatusCode.NOT_FOUND, target=our_uri, source=their_uri)]
            out.extend(self._status(msg, c, StatusCode.NOT_EXECUTED) for c in cmd.commands)
            return out
        statuses = [self._status(msg, cmd, StatusCode.OK, target=our_uri, source=their_uri)]
        st.synced = True
        if cmd.number_of_changes is not None:
            st.expected = cmd.number_of_changes
        if st.status != 200:
            statuses.extend(self._status(msg, c, st.status) for c in cmd.commands)
            return statuses
        batch: list[tuple[Command, RemoteChange]] = []
        pending: list[Status] = []
        for sub in cmd.commands:
            if not isinstance(sub, Add | Replace | Delete):
                pending.append(self._status(msg, sub, StatusCode.OPTIONAL_FEATURE_NOT_SUPPORTED))
                continue
            for item in sub.items:
                change, status = self._change(msg, st, sub, item)
                if status is not None:
                    pending.append(status)
                if change is not None:
                    batch.append((sub, change))
        statuses.extend(self._apply_batch(msg, st, batch))
        statuses.extend(pending)
        st.received += len(batch)
        self._events.append(Progress(st.ds.name, "receiving", st.received, st.expected))
        return statuses

    def _change(
        self, msg: Message, st: _Store, sub: Add | Replace | Delete, item: Item
    ) -> tuple[RemoteChange | None, Status | None]:
        kind = {Add: ChangeKind.ADD, Replace: ChangeKind.REPLACE, Delete: ChangeKind.DELETE}[
            type(sub)
        ]
        remote_id = item.source.uri if item.source else (item.target.uri if item.target else "")
        if kind is ChangeKind.DELETE:
            # Our id in Target, the client's in Source (either may be missing).
            remote_id = item.source.uri if item.source else ""
            if not remote_id and item.target:
                local_id = st.guids.get(item.target.uri, item.target.uri)
                state = st.items.get(local_id)
                remote_id = state.remote_id or "" if state else ""
            return RemoteChange(
                kind=kind, remote_id=remote_id, data=None, digest=None, uid=None
            ), None
        ctype = (item.meta.type if item.meta and item.meta.type else None) or (
            sub.meta.type if sub.meta and sub.meta.type else None
        )
        try:
            text = item_text(item, sub.meta)
        except RemoteProtocolError as exc:
            return None, self._status(msg, sub, exc.status, source=remote_id)
        if not st.peer_b64 and _is_b64(item, sub.meta):
            # Funambol clients send SIF items base64-encoded and expect ours so.
            st.peer_b64 = True
        # Large objects: collect chunks until the last one.
        if item.more_data or st.chunk is not None:
            if st.chunk is None:
                size = item.meta.size if item.meta else None
                if size is None and sub.meta is not None:
                    size = sub.meta.size
                if size is None:
                    return None, self._status(msg, sub, StatusCode.SIZE_REQUIRED, source=remote_id)
                if size > self.config.max_obj_size:
                    return None, self._status(
                        msg, sub, StatusCode.REQUEST_ENTITY_TOO_LARGE, source=remote_id
                    )
                st.chunk = Chunk(type(sub).__name__, remote_id, ctype, size)
            elif st.chunk.remote_id != remote_id or st.chunk.kind != type(sub).__name__:
                st.chunk = None
                return None, self._status(msg, sub, StatusCode.BAD_REQUEST, source=remote_id)
            st.chunk.parts.append(text)
            if item.more_data:
                return None, self._status(
                    msg, sub, StatusCode.CHUNKED_ITEM_ACCEPTED, source=remote_id
                )
            chunk, st.chunk = st.chunk, None
            text = "".join(chunk.parts)
            if chunk.size is not None and not size_matches(text, chunk.size):
                return None, self._status(msg, sub, StatusCode.SIZE_MISMATCH, source=remote_id)
        elif len(text.encode("utf-8")) > self.config.max_obj_size:
            return None, self._status(
                msg, sub, StatusCode.REQUEST_ENTITY_TOO_LARGE, source=remote_id
            )
        try:
            local_text = st.codec.to_local(text, ctype)
        except (ValueError, RemoteProtocolError) as exc:
            st.message = f"item {remote_id}: {exc}"
            return None, self._status(msg, sub, StatusCode.UNSUPPORTED_MEDIA_TYPE, source=remote_id)
        return (
            RemoteChange(
                kind=kind,
                remote_id=remote_id,
                data=local_text,
                digest=st.codec.digest(local_text),
                uid=st.codec.uid(local_text),
            ),
            None,
        )

    def _apply_batch(
        self, msg: Message, st: _Store, batch: Sequence[tuple[Command, RemoteChange]]
    ) -> list[Status]:
        if not batch:
            return []
        assert st.planner is not None
        decision = st.planner.receive([c for _, c in batch])
        st.incoming.update((c.remote_id, c.digest) for _, c in batch)
        codes = dict(decision.statuses)
        st.batch = {c.remote_id: (c.data, c.digest) for _, c in batch}
        try:
            for action in decision.actions:
                failed = self._apply_local(st, action)
                if failed is not None:
                    remote_id, code = failed
                    codes[remote_id] = code
        finally:
            st.batch = {}
        out = []
        for sub, change in batch:
            code = codes.get(change.remote_id, StatusCode.OK)
            out.append(self._status(msg, sub, code, source=change.remote_id or None))
        return out

    def _apply_local(self, st: _Store, action: object) -> tuple[str, int] | None:
        """Carry out one decided action locally; returns (remote id, status) on failure."""
        store = st.ds.store
        try:
            if isinstance(action, LocalAdd):
                local_id, etag = store.add(action.data)
                digest = self._digest(st, action.remote_id, action.data)
                st.items[local_id] = ItemState(local_id, action.remote_id, etag, digest)
                st.fresh[local_id] = (etag, digest)
                st.count(local_added=1)
            elif isinstance(action, LocalReplace):
                data = self._merged(st, action)
                etag = store.replace(action.local_id, data, etag=action.etag)
                digest = self._digest(st, action.remote_id, data)
                st.items[action.local_id] = ItemState(
                    action.local_id, action.remote_id, etag, digest
                )
                st.fresh[action.local_id] = (etag, digest)
                if digest != st.incoming.get(action.remote_id):
                    st.unsettled.add(action.local_id)  # a merge: the peer has it once acked
                st.count(local_replaced=1)
            elif isinstance(action, LocalDelete):
                with contextlib.suppress(ItemNotFound):
                    store.delete(action.local_id, etag=action.etag)
                st.items.pop(action.local_id, None)
                st.count(local_deleted=1)
            elif isinstance(action, LinkAction):
                if action.remote_digest is not None:
                    # The peer holds other content (a one-way session deferred
                    # our write): an empty etag makes the next sync re-hash it.
                    etag, digest = "", action.remote_digest
                else:
                    etag, digest = self._current(st, action.local_id)
                st.items[action.local_id] = ItemState(
                    action.local_id, action.remote_id, etag, digest
                )
            elif isinstance(action, UpdateEtag):
                old = st.items.get(action.local_id)
                if old is not None:
                    st.items[action.local_id] = dataclasses.replace(old, etag=action.etag)
            elif isinstance(action, ForgetAction):
                st.items.pop(action.local_id, None)
            elif isinstance(action, ConflictAction):
                st.count(conflicts=1)
                self._events.append(
                    ConflictResolved(
                        st.ds.name, action.local_id, action.remote_id, str(action.resolution)
                    )
                )
            elif isinstance(action, RemoteAdd | RemoteReplace | RemoteDelete):
                self._queue_remote(st, action)
        except PreconditionFailed:
            # The item changed on the desktop during the sync: the desktop edit
            # stays; 409 makes the client keep its change for the next sync.
            rid = getattr(action, "remote_id", None)
            return (rid, StatusCode.CONFLICT) if rid else None
        except StoreError as exc:
            st.message = str(exc) or type(exc).__name__
            rid = getattr(action, "remote_id", None)
            return (rid, exc.status) if rid else None
        return None

    def _merged(self, st: _Store, action: LocalReplace) -> str:
        """The peer's version merged into the stored item: fields it cannot hold stay."""
        if isinstance(st.codec, PlainCodec):
            return action.data
        current = st.planner.local.get(action.local_id) if st.planner else None
        if current is not None and current.data is not None:
            return st.codec.merge(current.data, action.data)
        try:
            text, _ = st.ds.store.get(action.local_id)
        except StoreError:
            return action.data
        return st.codec.merge(text, action.data)

    @staticmethod
    def _digest(st: _Store, remote_id: str, data: str) -> str:
        """The digest of ``data``, reusing the one taken when it arrived."""
        seen = st.batch.get(remote_id)
        if seen is not None and seen[0] is data and seen[1] is not None:
            return seen[1]
        return st.codec.digest(data)

    def _queue_remote(self, st: _Store, action: RemoteAdd | RemoteReplace | RemoteDelete) -> None:
        out = st.out
        tag = (st.ds.name, action)
        if isinstance(action, RemoteDelete):
            out.changes.append(OutChange("Delete", tag, target=action.remote_id))
            return
        current = st.planner.local.get(action.local_id) if st.planner else None
        data = getattr(action, "data", None)
        if data is None:
            if current is not None:
                data = current.data
            else:
                try:
                    data, _ = st.ds.store.get(action.local_id)
                except StoreError:
                    return
        accepted = self._accepted_types(st)
        try:
            text, ctype = st.codec.to_remote(data, accepted)
        except ValueError as exc:  # the item cannot be put in a format the peer takes
            st.message = f"item {action.local_id} not sent: {exc}"
            return
        guid = st.guid_for(action.local_id)
        b64 = st.peer_b64
        if b64:
            text = base64.b64encode(text.encode("utf-8")).decode("ascii")
        if isinstance(action, RemoteAdd):
            out.changes.append(
                OutChange("Add", tag, source=guid, data=text, content_type=ctype.mime, b64=b64)
            )
        else:
            out.changes.append(
                OutChange(
                    "Replace",
                    tag,
                    target=action.remote_id,
                    source=guid,
                    data=text,
                    content_type=ctype.mime,
                    b64=b64,
                )
            )

    def _accepted_types(self, st: _Store) -> tuple[ContentType, ...]:
        if st.peer_store is None:
            return ()
        refs = [st.peer_store.rx_pref, *st.peer_store.rx]
        return tuple(ContentType(r.ct_type, r.ver_ct or "") for r in refs)

    def _chunk_pending(self) -> bool:
        return any(s.chunk is not None for s in self._stores.values())

    # --- Map ---
    def _map(self, msg: Message, cmd: Map) -> Status:
        ds = self.config.datastore(cmd.target.uri)
        st = self._stores.get(ds.name) if ds is not None else None
        if st is None:
            return self._status(msg, cmd, StatusCode.NOT_FOUND, target=cmd.target.uri)
        for mi in cmd.items:
            local_id = st.guids.get(mi.target, mi.target)
            state = st.items.get(local_id)
            if state is None:
                # The Map came before (or without) the Status for our Add.
                etag, digest = self._current(st, local_id)
                state = ItemState(local_id, None, etag, digest)
            st.items[local_id] = dataclasses.replace(state, remote_id=mi.source)
            st.unsettled.discard(local_id)
        return self._status(msg, cmd, StatusCode.OK, target=cmd.target.uri, source=cmd.source.uri)

    # --- the client's statuses for our commands ---
    def _peer_status(self, status: Status) -> None:
        if status.msg_ref is None:
            return
        sent = self._sent.get((status.msg_ref, status.cmd_ref))
        if sent is None or not isinstance(sent.tag, tuple):
            return
        name, action = sent.tag
        st = self._stores.get(name)
        if st is None or (sent.chunk and not sent.last_chunk):
            return
        ok = 200 <= status.data < 300 or status.data in (
            StatusCode.ITEM_NOT_DELETED,
            StatusCode.ALREADY_EXISTS,
        )
        if isinstance(action, RemoteDelete) and status.data == StatusCode.NOT_FOUND:
            ok = True
        if not ok:
            # The item keeps its old state and goes out again next time.
            st.message = f"the peer refused an item with status {status.data}"
            return
        if isinstance(action, RemoteAdd):
            etag, digest = self._current(st, action.local_id)
            old = st.items.get(action.local_id)
            st.items[action.local_id] = ItemState(
                action.local_id, old.remote_id if old else None, etag, digest
            )
            st.unsettled.add(action.local_id)  # until the Map names the peer's id
            st.count(remote_added=1)
        elif isinstance(action, RemoteReplace):
            etag, digest = self._current(st, action.local_id)
            st.items[action.local_id] = ItemState(action.local_id, action.remote_id, etag, digest)
            st.unsettled.discard(action.local_id)
            st.count(remote_replaced=1)
        elif isinstance(action, RemoteDelete):
            st.items.pop(action.local_id, None)
            st.count(remote_deleted=1)

    def _current(self, st: _Store, local_id: str) -> tuple[str, str]:
        """The local item's etag and digest now: after this session's writes, if any."""
        if local_id in st.fresh:
            return st.fresh[local_id]
        local = st.planner.local.get(local_id) if st.planner else None
        if local is not None:
            return local.etag, local.digest
        old = st.items.get(local_id)
        if old is not None:
            return old.etag, old.digest
        return "", ""

    # ----------------------------------------------------------- answering
    def _answer(self, msg: Message, statuses: list[Status]) -> Reply:
        assert self._outbox is not None
        outbox = self._outbox
        if msg.final and not self._chunk_pending():
            if self.phase is Phase.INIT:
                self.phase = Phase.CLIENT_SYNC
            elif self.phase is Phase.CLIENT_SYNC and outbox.empty:
                self._finish_client_sync()
                self.phase = Phase.MAPS
            elif self.phase is Phase.MAPS and outbox.empty and not asks_next_message(msg):
                # Funambol Outlook 3.0 asks for our changes with Alert 222 +
                # Final after its Sync, even when they came with the answer to
                # it: answer the 222; its Map (pkg5) follows.
                return self._complete(msg, statuses)
        header = self._header(msg.header)
        # Our package may only end once the client's is complete; while it
        # goes on and we have nothing to say, Alert 222 asks for more.
        peer_open = package_open(msg)
        package_ends = not peer_open
        if peer_open and outbox.empty and self.config.send_next_message_alert:
            outbox.put(
                Alert(
                    cmd_id=0,
                    data=AlertCode.NEXT_MESSAGE,
                    items=(
                        Item(
                            target=Location(uri=msg.header.source.uri),
                            source=Location(uri=self.our_uri),
                        ),
                    ),
                )
            )
        _, data, sent = outbox.build(header, statuses, package_ends=package_ends)
        for s in sent:
            self._sent[(header.msg_id, s.cmd_id)] = s
        return Reply(data, self.encoding, tuple(self._events), done=self.done)

    def _finish_client_sync(self) -> None:
        """The client's changes are all in: decide our side and queue pkg4."""
        assert self._outbox is not None
        for st in self._stores.values():
            if st.planner is None:
                continue
            decision = st.planner.finish()
            if decision.guard is not None:
                st.status = StatusCode.SESSION_CANCELLED
                st.message = str(decision.guard)
                self._events.append(GuardTripped(st.ds.name, st.message))
            for action in decision.actions:
                self._apply_local(st, action)
            out = st.out
            if st.direction in (
                Direction.FROM_REMOTE,
                Direction.REFRESH_FROM_REMOTE,
            ):
                # The client asked us to send nothing: an empty Sync says so.
                # Without it pkg4 holds only Statuses, which libsynthesis
                # clients (SyncEvolution) leave unanswered - no pkg5, so the
                # session would never complete here and the next sync of the
                # pair would fall back to slow.
                out = OutSync(target=out.target, source=out.source)
            if self.version != "1.0":
                out.number_of_changes = len(out.changes)
            self._outbox.put(out)

    def _complete(self, msg: Message, statuses: list[Status]) -> Reply:
        """pkg5 is in: answer with pkg6 and hand the new state over."""
        assert self._outbox is not None and self.peer is not None
        header = self._header(msg.header)
        _, data, _ = self._outbox.build(header, statuses, package_ends=True)
        pairs = dict(self.peer.pairs)
        failed = []
        for st in self._stores.values():
            if st.status != 200:
                failed.append(f"{st.ds.name}: {st.message or st.status}")
                continue
            items = {k: v for k, v in st.items.items() if v.remote_id is not None}
            pairs[st.ds.name] = PairState(
                local_uri=st.ds.name,
                remote_uri=st.remote_uri,
                local_anchor=st.local_anchor,
                remote_anchor=st.remote_next,
                items=items,
                last_mode=st.mode,
            )
        devinf = self._peer_devinf or self.peer.devinf
        peer = PeerState(
            dev_id=self.peer.dev_id,
            devinf=devinf,
            nonce=self._nonce if self._nonce is not None else self.peer.nonce,
            pairs=pairs,
        )
        status = 200 if not failed else StatusCode.SYNCHRONIZATION_FAILED
        unsaved = self._flush()
        if unsaved is not None:
            # The writes may not survive a crash: commit nothing, so the
            # next session repeats them.
            failed.append(unsaved)
            status = StatusCode.DATA_STORE_FAILURE
        run = self._run_record(status=status, message="; ".join(failed))
        self.phase = Phase.DONE
        self.result = SessionFinished(None if unsaved is not None else peer, run)
        self._events.append(self.result)
        return Reply(data, self.encoding, tuple(self._events), done=True)


def _temp_guid(n: int) -> str:
    """The ``n``-th temporary server id: ``#`` and ``n`` in base 36.

    Decimal ``#1000`` would already be 5 bytes, too long for the 4 bytes a
    Sony Ericsson P900 keeps (its MaxGUIDSize) once a slow sync sends it a
    thousand items; base 36 keeps 46,655 ids within 4 bytes.
    """
    digits = ""
    while True:
        n, r = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[r] + digits
        if n == 0:
            return "#" + digits


def _takes_large_objects(devinf: DevInf, version: str) -> bool:
    """Whether a peer can receive items split with MoreData (DS 1.1 and later)."""
    return version != "1.0" and devinf.support_large_objs


def notification(
    alerts: Sequence[tuple[Datastore, SyncMode]],
    *,
    server_id: str,
    session_id: int,
    version: str = "1.2",
    password: str | None = None,
    nonce: bytes = b"",
    user_interaction: bool = False,
) -> tuple[bytes, str]:
    """The Server Alerted Notification that asks a phone to start a session.

    This is the engine's entry point for a PC-initiated sync: the transport
    puts the returned bytes (with the returned MIME type) to the phone's
    SyncML Client service; the phone then runs an ordinary client session
    against a :class:`ServerSession`, alerting the 206-210 codes (or 200-205).

    Args:
        alerts: our datastores and the mode for each.
        server_id: our identifier as the phone knows it (``PC Suite`` for
            Nokia and Sony Ericsson phones).
        session_id: the session id (0-65535) the phone should use.
        version: "1.2" gives the binary DS 1.2 notification; "1.1"/"1.0" the
            WBXML "package 0" message older phones expect.
        password, nonce: for the digest; ``None`` gives the all-zero digest
            phones accept for local PC sync.
        user_interaction: ask the phone to show a dialog first.

    Returns:
        ``(data, content_type)``.
    """
    san = San(
        version=version,
        ui_mode=3 if user_interaction else 0,
        initiator_server=True,
        session_id=session_id,
        server_id=server_id,
        alerts=tuple(
            SanAlert(
                sync_type=int(mode.to_alert(server_alerted=True)),
                content_type=content_type_number(ds.store.content_types[0].mime),
                server_uri=ds.name,
            )
            for ds, mode in alerts
        ),
    )
    if version == "1.2":
        return build_san(san, password=password, nonce=nonce), SAN_CONTENT_TYPE
    message = san_to_message(san)
    return encode_message(message, Encoding.WBXML), Encoding.WBXML.content_type


#: MIME type of a DS 1.2 notification.
SAN_CONTENT_TYPE = "application/vnd.syncml.ds.notification"


def _is_b64(item: Item, meta: Meta | None) -> bool:
    """Whether an incoming item's data is base64 (``Meta/Format b64`` on it or its command)."""
    fmt = (item.meta.format if item.meta and item.meta.format else None) or (
        meta.format if meta and meta.format else None
    )
    return fmt is not None and fmt.lower() == "b64"
