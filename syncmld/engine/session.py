"""What the server and client sessions share: events, replies, configuration types.

Both session machines are sans-IO.  They are fed one received message at a
time (bytes, as the transport got them) and hand back the message to send
in answer plus :class:`Event` objects the daemon turns into D-Bus signals,
history and commits.  They read no clock: the caller gives the session's
start time, from which the anchors are made.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from syncmld.engine.decide import Guard, Policy
from syncmld.engine.items import ItemCodec, PlainCodec
from syncmld.engine.state import PeerState, RunRecord
from syncmld.engine.store import Store
from syncmld.protocol.codec import Encoding

#: The engine's identity in DevInf.
MANUFACTURER = "syncmld"
MODEL = "syncmld"
SOFTWARE_VERSION = "0.1"


class AuthMode(Enum):
    """What a server demands from its clients."""

    NONE = "none"
    BASIC = "basic"
    MD5 = "md5"


@dataclass(frozen=True, slots=True, kw_only=True)
class Datastore:
    """One local datastore offered to peers.

    Attributes:
        name: the URI peers address it by (``contacts``); ``aliases`` are
            other names accepted for it (``Contacts``, ``./contacts``, ``card``).
        store: the local store.
        codec: content conversion between the peer's format and the store's.
        policy: conflict resolution.
        guard: the mass-deletion guard.
    """

    name: str
    store: Store
    codec: ItemCodec | None = None
    aliases: tuple[str, ...] = ()
    display_name: str | None = None
    policy: Policy = Policy.MERGE
    guard: Guard = field(default_factory=Guard)

    def item_codec(self) -> ItemCodec:
        """The codec, defaulting to the identity on the store's preferred type."""
        return self.codec or PlainCodec(self.store.content_types[0])

    def answers_to(self, uri: str) -> bool:
        """True when a peer's LocURI names this datastore (case and ``./`` ignored)."""
        want = _plain(uri)
        return any(_plain(n) == want for n in (self.name, *self.aliases))


def _plain(uri: str) -> str:
    u = uri.strip()
    while u.startswith("./"):
        u = u[2:]
    return u.strip("/").lower()


def anchor_for(now: float) -> str:
    """An anchor from a time stamp: ``YYYYMMDDTHHMMSSZ`` (UTC)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


# --- events -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of session events."""


@dataclass(frozen=True, slots=True)
class PeerIdentified(Event):
    """The peer said who it is (first message)."""

    dev_id: str


@dataclass(frozen=True, slots=True)
class AuthFailed(Event):
    """The peer's credentials were missing or wrong (``status`` 401/407)."""

    user: str | None
    status: int
    final: bool


@dataclass(frozen=True, slots=True)
class StoreStarted(Event):
    """A datastore's sync was agreed: ``mode`` is the alert code in force."""

    local_uri: str
    remote_uri: str
    mode: int
    requested: int


@dataclass(frozen=True, slots=True)
class Progress(Event):
    """Items done so far for one datastore (``total`` is ``None`` when unknown)."""

    local_uri: str
    phase: str
    done: int
    total: int | None


@dataclass(frozen=True, slots=True)
class ConflictResolved(Event):
    """Both sides changed an item; ``resolution`` says what was done."""

    local_uri: str
    local_id: str
    remote_id: str | None
    resolution: str


@dataclass(frozen=True, slots=True)
class GuardTripped(Event):
    """The mass-deletion guard stopped a datastore's sync; nothing was deleted."""

    local_uri: str
    reason: str


@dataclass(frozen=True, slots=True)
class SessionFinished(Event):
    """The session ended.

    ``peer`` is the state to commit (``None`` when the session failed and
    nothing may be committed); ``run`` goes to the history either way.
    """

    peer: PeerState | None
    run: RunRecord


@dataclass(frozen=True, slots=True)
class Reply:
    """What to send back for one received message."""

    data: bytes
    encoding: Encoding
    events: tuple[Event, ...] = ()
    #: True when the session is over after this reply.
    done: bool = False

    @property
    def content_type(self) -> str:
        """MIME type of ``data``."""
        return self.encoding.content_type


PeerLoader = Callable[[str], PeerState | None]

__all__ = ["Guard", "Policy"]
