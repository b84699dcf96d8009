"""What the engine remembers between sessions, as plain data.

The state layer (:mod:`syncmld.state`) loads a :class:`PeerState` before a
session and stores the new one the session hands back, in one transaction,
only when the session completed; the engine itself never touches a
database.  Everything here is immutable: a session builds new values.

Vocabulary: *local* is our side (the desktop store), *remote* the peer.  In
the server role the remote id of an item is the client's LUID; in the client
role it is the server's GUID.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from syncmld.protocol.devinf import DevInf


@dataclass(frozen=True, slots=True)
class ItemState:
    """One item as both sides last agreed on it.

    Attributes:
        local_id: the item's id in the local store.
        remote_id: the peer's id for it (``None`` until the peer mapped it).
        etag: the local store's etag after the last sync.
        digest: the normalized content hash after the last sync.
    """

    local_id: str
    remote_id: str | None
    etag: str
    digest: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PairState:
    """One local datastore paired with one remote database of one peer.

    Attributes:
        local_uri: our datastore's name (what the peer addresses).
        remote_uri: the peer's database name.
        local_anchor: the ``Next`` anchor we sent in the last successful
            session (sent as ``Last`` next time), ``None`` before the first.
        remote_anchor: the peer's ``Next`` from the last successful session;
            compared with the peer's ``Last`` by exact string equality.
        items: item states by local id.
        last_mode: the alert code of the last successful session.
        pending_maps: client role: LUID -> GUID mappings sent but not yet
            acknowledged by the server (sent again next session).
        resume_mode: the alert code of a session that was suspended (Alert
            224) or cut off while items were being exchanged, ``None`` when
            there is nothing to resume.  ``items`` then holds the rows of the
            items that session already exchanged, so a resumed session (Alert
            225) sends only the rest.
        resume_anchor: with ``resume_mode``: the client's ``Next`` anchor of
            that session, which names it (every session sends a new one).
            The client's Alert 225 sends it as ``Last``; the server resumes
            only when it is the one it kept.
    """

    local_uri: str
    remote_uri: str
    local_anchor: str | None = None
    remote_anchor: str | None = None
    items: Mapping[str, ItemState] = field(default_factory=dict)
    last_mode: int | None = None
    pending_maps: Mapping[str, str] = field(default_factory=dict)
    resume_mode: int | None = None
    resume_anchor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerState:
    """Everything remembered about one peer (a phone, a client, a server).

    Attributes:
        dev_id: the peer's device id (its ``Source/LocURI`` as a client, or
            the server URL in the client role).
        devinf: the DevInf it last sent.
        nonce: the MD5 nonce for the next session: in the server role the one
            we issued to the peer, in the client role the one the server
            issued to us (base64, as on the wire).
        pairs: datastore pairs by local datastore name.
    """

    dev_id: str
    devinf: DevInf | None = None
    nonce: str | None = None
    pairs: Mapping[str, PairState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreCounts:
    """What one session did to one datastore pair.

    ``local_*`` count writes to our store, ``remote_*`` changes sent to the
    peer; ``status`` is the SyncML status the pair ended with (200 = synced).
    """

    local_uri: str
    remote_uri: str = ""
    mode: int | None = None
    local_added: int = 0
    local_replaced: int = 0
    local_deleted: int = 0
    remote_added: int = 0
    remote_replaced: int = 0
    remote_deleted: int = 0
    conflicts: int = 0
    status: int = 200
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One sync session for the history.

    Times are seconds since the epoch, given by the caller (the engine reads
    no clock).  ``status`` is 200 when every store synced; ``message`` says
    what went wrong otherwise.
    """

    dev_id: str
    role: str  # "server" or "client"
    started: float
    finished: float | None = None
    status: int = 200
    message: str = ""
    stores: tuple[StoreCounts, ...] = ()
