"""How the engine looks at item content: conversion, identity, hashing, merging.

The engine moves items between a peer's format (vCard 2.1 on a phone, say)
and the local store's format (vCard 3.0 on the desktop).  It does so through
an :class:`ItemCodec`, chosen per datastore.  :class:`PlainCodec` is the
identity: it serves stores and peers that speak the same format (and the
engine's own tests); the format layer (:mod:`syncmld.formats`) provides the
converting ones.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Protocol

from syncmld.engine.store import ContentType, Store

if TYPE_CHECKING:
    from syncmld.protocol.devinf import DevInf

_UID = re.compile(r"^UID[;:](?:[^:\r\n]*:)?([^\r\n]*)", re.MULTILINE | re.IGNORECASE)


class ItemCodec(Protocol):
    """Per-datastore content handling."""

    def to_local(self, data: str, content_type: str | None) -> str:
        """Convert an item received from the peer (in ``content_type``) to the store's format."""
        ...

    def to_remote(self, data: str, accepted: tuple[ContentType, ...]) -> tuple[str, ContentType]:
        """Convert a store item for the peer, which accepts ``accepted`` (preferred first)."""
        ...

    def digest(self, data: str) -> str:
        """A hash of the item's normalized content (equal for cosmetic differences)."""
        ...

    def uid(self, data: str) -> str | None:
        """The item's UID, if it has one."""
        ...

    def merge(self, local: str, remote: str) -> str:
        """Merge a peer's update into the local item, keeping fields the peer cannot store."""
        ...


def content_types(codec: ItemCodec, store: Store) -> tuple[ContentType, ...]:
    """The formats a datastore takes from peers, preferred first (for our DevInf).

    A converting codec names them in ``content_types`` (the store's format
    first, then those it converts from); otherwise the store's own.
    """
    offered: tuple[ContentType, ...] | None = getattr(codec, "content_types", None)
    return offered or store.content_types


def bind_codec(codec: ItemCodec, devinf: DevInf | None, remote_uri: str) -> ItemCodec:
    """The codec to use with one peer datastore.

    A codec whose output depends on the peer (formats, CTCap, device quirks)
    offers ``for_peer(devinf, remote_uri) -> ItemCodec``; the engine calls it
    once the peer's DevInf is known (``None`` when the peer sent none) and
    again if the DevInf arrives later in the session.  ``digest`` and ``uid``
    must not depend on the peer, so binding late changes no recorded state.
    Codecs without ``for_peer`` (:class:`PlainCodec`) are used as they are.
    """
    bind = getattr(codec, "for_peer", None)
    if bind is None:
        return codec
    bound: ItemCodec = bind(devinf, remote_uri)
    return bound


class PlainCodec:
    """The identity codec: the store's format is what the peer speaks.

    ``digest`` ignores line-ending differences and trailing blank space (XML
    transports lose carriage returns); ``merge`` takes the peer's version.
    """

    def __init__(self, content_type: ContentType) -> None:
        self.content_type = content_type

    def to_local(self, data: str, content_type: str | None) -> str:
        """Return ``data`` unchanged."""
        return data

    def to_remote(self, data: str, accepted: tuple[ContentType, ...]) -> tuple[str, ContentType]:
        """Return ``data`` unchanged, labelled with the store's content type."""
        return data, self.content_type

    def digest(self, data: str) -> str:
        """SHA-1 of the text with CRLF folded to LF and trailing blanks removed."""
        norm = data.replace("\r\n", "\n").rstrip()
        return hashlib.sha1(norm.encode("utf-8"), usedforsecurity=False).hexdigest()

    def uid(self, data: str) -> str | None:
        """The value of a ``UID`` property line, if any."""
        m = _UID.search(data)
        return m.group(1).strip() or None if m else None

    def merge(self, local: str, remote: str) -> str:
        """The peer's version."""
        return remote
