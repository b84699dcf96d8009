"""The SyncML message model: immutable, slotted, keyword-only dataclasses.

One class per SyncML element that carries meaning (SyncML 1.0, 1.1 and 1.2
representation protocol).  Repeated elements are tuples, optional ones
``None``, empty flag elements (``<NoResp/>``, ``<Final/>``, ``<MoreData/>``)
are booleans.  Numbers the protocol defines as numbers (CmdID, MsgID,
status and alert codes, sizes) are ``int``; identifiers that are opaque
strings on the wire (SessionID, anchors, LocURIs) stay ``str``.

The classes validate only what an encoder needs to produce a valid document
(a Status needs a code, an Item list may not be empty where the DTD says
``Item+``); the tolerant reading of real devices' messages happens in
:mod:`syncmld.protocol.mapping`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from syncmld.protocol.devinf import DevInf
from syncmld.protocol.errors import LocalProtocolError
from syncmld.protocol.tree import Node

# --- MetInf ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Anchor:
    """Sync anchors: ``last`` from the previous successful sync, ``next`` for this one."""

    last: str | None = None
    next: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Mem:
    """Free memory of a datastore (``Meta/Mem``)."""

    shared_mem: bool = False
    free_mem: int | None = None
    free_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Meta:
    """Meta information (the MetInf vocabulary) of a header, command, item or challenge."""

    type: str | None = None
    format: str | None = None
    size: int | None = None
    version: str | None = None
    mark: str | None = None
    anchor: Anchor | None = None
    max_msg_size: int | None = None
    max_obj_size: int | None = None
    #: Base64 text as in XML (a WBXML OPAQUE nonce arrives base64-encoded too).
    next_nonce: str | None = None
    emi: tuple[str, ...] = ()
    mem: Mem | None = None
    field_level: bool = False


# --- Addressing and credentials --------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Filter:
    """A DS 1.2 filter on an Alert target."""

    meta: Meta | None = None
    field: Item | None = None
    record: Item | None = None
    filter_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """A ``Target`` or ``Source``: a URI, an optional display name, a 1.2 filter."""

    uri: str
    name: str | None = None
    filter: Filter | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cred:
    """Credentials: ``meta.type`` is ``syncml:auth-basic`` or ``syncml:auth-md5``."""

    meta: Meta | None = None
    data: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Chal:
    """An authentication challenge (inside a Status)."""

    meta: Meta


#: What ``Item/Data`` can hold: text, raw bytes (WBXML OPAQUE that is not
#: text), a DevInf document, an anchor (Status for an Alert) or a foreign
#: element tree kept as it came.
ItemData: TypeAlias = str | bytes | DevInf | Anchor | Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One ``Item``: addressing, meta, data and the large-object ``MoreData`` flag."""

    target: Location | None = None
    source: Location | None = None
    source_parent: str | None = None
    target_parent: str | None = None
    meta: Meta | None = None
    data: ItemData | None = None
    more_data: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MapItem:
    """One LUID <-> GUID pair of a ``Map``: target = server id, source = client id."""

    target: str
    source: str


# --- Header -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncHdr:
    """The message header."""

    ver_dtd: str
    ver_proto: str
    session_id: str
    msg_id: int
    target: Location
    source: Location
    resp_uri: str | None = None
    no_resp: bool = False
    cred: Cred | None = None
    meta: Meta | None = None


# --- Commands ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """``Alert``: a sync request (200-210), 222 next message, 224/225, ..."""

    cmd_id: int
    data: int | None = None
    items: tuple[Item, ...] = ()
    no_resp: bool = False
    cred: Cred | None = None
    correlator: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _ItemCommand:
    cmd_id: int
    items: tuple[Item, ...] = ()
    no_resp: bool = False
    cred: Cred | None = None
    meta: Meta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Add(_ItemCommand):
    """``Add`` one or more items."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Replace(_ItemCommand):
    """``Replace`` one or more items (or add them, when the recipient lacks them)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy(_ItemCommand):
    """``Copy`` items (rare)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Move(_ItemCommand):
    """``Move`` items to another parent (SyncML 1.2)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete(_ItemCommand):
    """``Delete`` items; ``archive`` and ``sft_del`` are the Archive and SftDel flags."""

    archive: bool = False
    sft_del: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Get(_ItemCommand):
    """``Get`` (DevInf in DS)."""

    lang: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Put(_ItemCommand):
    """``Put`` (the sender's DevInf in DS)."""

    lang: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Results:
    """``Results``: the answer to a Get."""

    cmd_id: int
    cmd_ref: int
    msg_ref: int | None = None
    meta: Meta | None = None
    target_refs: tuple[str, ...] = ()
    source_refs: tuple[str, ...] = ()
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """``Status``: the result code (``data``) of the command ``cmd`` / ``cmd_ref``."""

    cmd_id: int
    cmd_ref: int
    cmd: str
    data: int
    msg_ref: int | None = None
    target_refs: tuple[str, ...] = ()
    source_refs: tuple[str, ...] = ()
    cred: Cred | None = None
    chal: Chal | None = None
    items: tuple[Item, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Map:
    """``Map``: the client tells the server which LUID it gave each server-added item."""

    cmd_id: int
    target: Location
    source: Location
    items: tuple[MapItem, ...] = ()
    cred: Cred | None = None
    meta: Meta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Exec:
    """``Exec`` (device management; parsed, answered 406 by a DS engine)."""

    cmd_id: int
    item: Item
    no_resp: bool = False
    cred: Cred | None = None
    meta: Meta | None = None
    correlator: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Search:
    """``Search`` (deprecated in practice; parsed, answered 406)."""

    cmd_id: int
    sources: tuple[Location, ...]
    meta: Meta
    data: str
    no_resp: bool = False
    no_results: bool = False
    cred: Cred | None = None
    target: Location | None = None
    lang: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Atomic:
    """``Atomic``: all-or-nothing container."""

    cmd_id: int
    commands: tuple[Command, ...] = ()
    no_resp: bool = False
    meta: Meta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sequence:
    """``Sequence``: ordered container."""

    cmd_id: int
    commands: tuple[Command, ...] = ()
    no_resp: bool = False
    meta: Meta | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sync:
    """``Sync``: the changes for one datastore pair (target = recipient's database)."""

    cmd_id: int
    target: Location | None = None
    source: Location | None = None
    commands: tuple[Command, ...] = ()
    no_resp: bool = False
    cred: Cred | None = None
    meta: Meta | None = None
    number_of_changes: int | None = None


Command: TypeAlias = (
    Alert
    | Add
    | Replace
    | Copy
    | Move
    | Delete
    | Get
    | Put
    | Results
    | Status
    | Map
    | Exec
    | Search
    | Atomic
    | Sequence
    | Sync
)

#: Element name of each command class.
COMMAND_NAMES: dict[type, str] = {
    cls: cls.__name__
    for cls in (
        Alert, Add, Replace, Copy, Move, Delete, Get, Put, Results, Status, Map,
        Exec, Search, Atomic, Sequence, Sync,
    )
}  # fmt: skip


def command_name(cmd: Command) -> str:
    """The SyncML element name of ``cmd`` (``"Alert"``, ``"Sync"``, ...)."""
    return COMMAND_NAMES[type(cmd)]


# --- Message ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One SyncML message: header, body commands, and the ``Final`` flag."""

    header: SyncHdr
    commands: tuple[Command, ...] = ()
    final: bool = False

    def __post_init__(self) -> None:
        if not self.header.ver_dtd:
            raise LocalProtocolError("a message needs a VerDTD")

    @property
    def version(self) -> str:
        """The SyncML version, ``"1.0"``, ``"1.1"`` or ``"1.2"``."""
        return self.header.ver_dtd
