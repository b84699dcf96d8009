"""Bytes <-> model for whole SyncML and DevInf documents, in either encoding.

This is the entry point the engine and the transports use::

    msg = decode_message(body)                      # XML or WBXML, sniffed
    out = encode_message(reply, Encoding.WBXML)     # answer in the peer's encoding

A message is sniffed as WBXML when it starts with a WBXML version byte
(0x01-0x03) and as XML when it starts with ``<``; the transport's content type
is only a hint because real peers mislabel (an OBEX GET response carries no
Type at all).  When a message is encoded, a DevInf ``Meta/Type`` naming the
other encoding (``application/vnd.syncml-devinf+xml`` in a WBXML message, say)
is rewritten to match, as the DevInf embedding rules require.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from syncmld.protocol.devinf import DevInf, devinf_from_node, devinf_to_node
from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.limits import DEFAULT_LIMITS, Limits
from syncmld.protocol.mapping import message_from_node, message_to_node
from syncmld.protocol.model import Command, Get, Item, Message, Meta, Put, Results
from syncmld.protocol.tree import DEVINF, METINF, SYNCML, Node
from syncmld.protocol.wbxml import command_fragment, decode_wbxml, encode_wbxml, is_wbxml
from syncmld.protocol.xml import decode_xml, encode_xml, is_xml

UNSUPPORTED_MEDIA_TYPE = 415
VERSIONS = ("1.0", "1.1", "1.2")


class Encoding(enum.Enum):
    """The two SyncML representations, valued by their MIME type."""

    XML = "application/vnd.syncml+xml"
    WBXML = "application/vnd.syncml+wbxml"

    @property
    def content_type(self) -> str:
        """The MIME type of a SyncML message in this encoding."""
        return self.value

    @property
    def devinf_type(self) -> str:
        """The MIME type of a DevInf document in this encoding."""
        return DEVINF_TYPES[self]

    @classmethod
    def from_content_type(cls, content_type: str) -> Encoding:
        """The encoding a MIME type names (parameters and case ignored).

        Raises:
            RemoteProtocolError: status 415 for any other type.
        """
        base = content_type.split(";", 1)[0].strip().strip("\x00").lower()
        for enc in cls:
            if base in (enc.value, DEVINF_TYPES[enc]):
                return enc
        raise RemoteProtocolError(
            f"unsupported content type {content_type!r}", status=UNSUPPORTED_MEDIA_TYPE
        )


DEVINF_TYPES = {
    Encoding.XML: "application/vnd.syncml-devinf+xml",
    Encoding.WBXML: "application/vnd.syncml-devinf+wbxml",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """A decoded document at tree level.

    Attributes:
        root: the element tree.
        kind: ``SYNCML``, ``DEVINF`` or ``METINF`` (see :mod:`~syncmld.protocol.tree`).
        version: "1.0", "1.1", "1.2", or ``None`` when the document does not say.
        encoding: the representation it came in.
    """

    root: Node
    kind: str
    version: str | None
    encoding: Encoding


def sniff(data: bytes) -> Encoding:
    """Tell WBXML from XML by the first bytes.

    Raises:
        RemoteProtocolError: status 415 when the data is neither.
    """
    if is_wbxml(data):
        return Encoding.WBXML
    if is_xml(data):
        return Encoding.XML
    raise RemoteProtocolError("neither XML nor WBXML", status=UNSUPPORTED_MEDIA_TYPE, offset=0)


def decode_document(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Document:
    """Decode any SyncML-family document (message, DevInf, MetInf) to a tree."""
    enc = sniff(data)
    if enc is Encoding.WBXML:
        w = decode_wbxml(data, limits=limits)
        return Document(root=w.root, kind=w.kind, version=w.version, encoding=enc)
    x = decode_xml(data, limits=limits)
    return Document(root=x.root, kind=x.kind, version=x.version, encoding=enc)


def validate_document(doc: Document) -> Message | DevInf | None:
    """Build the model of a decoded document, which checks it.

    Returns the :class:`Message` or :class:`DevInf`, or ``None`` for a
    document of another vocabulary (a standalone MetInf document).

    Raises:
        RemoteProtocolError: the tree is not a valid message or DevInf.
    """
    if doc.root.ns == SYNCML:
        return message_from_node(doc.root)
    if doc.root.ns == DEVINF:
        return devinf_from_node(doc.root, ver_dtd=doc.version)
    if doc.root.ns == METINF:
        return None
    raise RemoteProtocolError(
        f"<{doc.root.tag}> is not a SyncML, DevInf or MetInf document",
        status=UNSUPPORTED_MEDIA_TYPE,
        offset=doc.root.pos,
    )


def decode_message(data: bytes, *, limits: Limits = DEFAULT_LIMITS, fast: bool = True) -> Message:
    """Decode one SyncML message (XML or WBXML).

    In WBXML the common commands are read straight into the model (see
    :func:`~syncmld.protocol.wbxml.decode_wbxml`'s ``commands``); ``fast=False``
    builds the whole element tree first.  The result is the same.

    Raises:
        RemoteProtocolError: malformed input; ``status`` is the SyncML status
            to answer with and ``offset`` the byte where it was found.
    """
    if fast and sniff(data) is Encoding.WBXML:
        return message_from_node(decode_wbxml(data, limits=limits, commands=True).root)
    doc = decode_document(data, limits=limits)
    return message_from_node(doc.root)


def encode_document(
    root: Node,
    encoding: Encoding,
    *,
    version: str,
    textual_public_id: bool = True,
    pretty: bool = False,
) -> bytes:
    """Encode a tree in ``encoding`` (``pretty`` applies to XML only)."""
    if version not in VERSIONS:
        raise LocalProtocolError(f"unsupported SyncML version {version!r}", status=505)
    if encoding is Encoding.WBXML:
        return encode_wbxml(root, version=version, textual_public_id=textual_public_id)
    return encode_xml(root, version=version, pretty=pretty)


def _retype(meta: Meta | None, encoding: Encoding) -> Meta | None:
    if meta is not None and meta.type is not None:
        t = meta.type.strip().lower()
        if t in DEVINF_TYPES.values() and t != encoding.devinf_type:
            return dataclasses.replace(meta, type=encoding.devinf_type)
    return meta


def _retype_command(cmd: Command, encoding: Encoding) -> Command:
    if not isinstance(cmd, Put | Get | Results):
        return cmd
    items = tuple(
        dataclasses.replace(i, meta=_retype(i.meta, encoding)) if i.meta is not None else i
        for i in cmd.items
    )
    return dataclasses.replace(cmd, meta=_retype(cmd.meta, encoding), items=items)


def encode_message(
    msg: Message,
    encoding: Encoding,
    *,
    textual_public_id: bool = True,
    pretty: bool = False,
) -> bytes:
    """Encode one SyncML message.

    Args:
        msg: the message; its ``VerDTD`` picks the public identifier and namespace.
        encoding: XML or WBXML.
        textual_public_id: WBXML only: name the DTD by its string (what Sony
            Ericsson phones send) rather than the registered number.
        pretty: XML only: indent.

    Raises:
        LocalProtocolError: the message cannot be represented (binary data in
            XML, an unknown version, ...).
    """
    commands = tuple(_retype_command(c, encoding) for c in msg.commands)
    if commands != msg.commands:
        msg = dataclasses.replace(msg, commands=commands)
    # In WBXML the common commands are written straight to bytes.
    fast = command_fragment if encoding is Encoding.WBXML else None
    return encode_document(
        message_to_node(msg, fast),
        encoding,
        version=msg.header.ver_dtd,
        textual_public_id=textual_public_id,
        pretty=pretty,
    )


def decode_devinf(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> DevInf:
    """Decode a standalone DevInf document (XML or WBXML)."""
    doc = decode_document(data, limits=limits)
    if doc.root.ns != DEVINF:
        raise RemoteProtocolError(
            f"expected a DevInf document, found <{doc.root.tag}>",
            status=UNSUPPORTED_MEDIA_TYPE,
            offset=doc.root.pos,
        )
    return devinf_from_node(doc.root, ver_dtd=doc.version)


def encode_devinf(devinf: DevInf, encoding: Encoding, *, pretty: bool = False) -> bytes:
    """Encode a standalone DevInf document."""
    version = devinf.ver_dtd if devinf.ver_dtd in VERSIONS else "1.2"
    return encode_document(devinf_to_node(devinf), encoding, version=version, pretty=pretty)


__all__ = [
    "DEVINF_TYPES",
    "Document",
    "Encoding",
    "Item",
    "decode_devinf",
    "decode_document",
    "decode_message",
    "encode_devinf",
    "encode_document",
    "encode_message",
    "sniff",
    "validate_document",
]
