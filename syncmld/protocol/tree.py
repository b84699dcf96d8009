"""A small, immutable element tree shared by the XML and WBXML codecs.

Both byte codecs turn a document into a :class:`Node` tree and back; the typed
model (:mod:`syncmld.protocol.model`, :mod:`syncmld.protocol.devinf`) is built
from that tree.  A node knows its element name, its *vocabulary* (``ns``) and
either text or children:

* ``ns`` is :data:`SYNCML`, :data:`METINF` or :data:`DEVINF` for the three
  SyncML vocabularies, whatever namespace (upper case, lower case or none) the
  sender declared; an element of any other vocabulary (an OMA DM DDF tree
  inside ``Data``, say) keeps its namespace URI.
* ``text`` is a ``str``, or ``bytes`` when a WBXML OPAQUE value is not text in
  the document's character set.  XML can carry only ``str``.
* ``pos`` is the byte offset where the element started in the input (``-1``
  when unknown); it is not part of equality.

A :class:`Decoded` node stands for a command element that the WBXML decoder
already turned into its model object (see
:func:`syncmld.protocol.wbxml.decode_wbxml`'s ``commands``); only
:func:`syncmld.protocol.mapping.message_from_node` reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

#: The SyncML vocabulary (WBXML code page 0 of a SyncML document).
SYNCML = "syncml"
#: The MetInf vocabulary (WBXML code page 1 of a SyncML document).
METINF = "metinf"
#: The DevInf vocabulary (its own WBXML document, code page 0).
DEVINF = "devinf"

#: XML namespace URIs as syncmld writes them (readers compare case-insensitively).
XML_NAMESPACES = {
    METINF: "syncml:metinf",
    DEVINF: "syncml:devinf",
}


def syncml_namespace(ver_dtd: str) -> str:
    """The SyncML XML namespace for a ``VerDTD`` value, e.g. ``SYNCML:SYNCML1.2``."""
    return f"SYNCML:SYNCML{ver_dtd}"


@dataclass(frozen=True, slots=True)
class Node:
    """One element: name, vocabulary, text or children, and where it was read."""

    tag: str
    ns: str = SYNCML
    children: tuple[Node, ...] = ()
    text: str | bytes | None = None
    pos: int = field(default=-1, compare=False, repr=False)

    def child(self, tag: str) -> Node | None:
        """The first child called ``tag``, or ``None``."""
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def all(self, tag: str) -> Iterator[Node]:
        """Every child called ``tag``, in document order."""
        return (c for c in self.children if c.tag == tag)

    def iter(self) -> Iterator[Node]:
        """This node and all its descendants, depth first."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def without_pos(self) -> Node:
        """A copy whose positions are all -1 (for debugging output and hashing)."""
        return Node(self.tag, self.ns, tuple(c.without_pos() for c in self.children), self.text)


@dataclass(frozen=True, slots=True)
class Decoded(Node):
    """A command element already read into its model object (``value``).

    The WBXML decoder builds one of these in place of the element's subtree
    when it was asked for commands and the element has the common shape; the
    subtree is not kept.  ``children`` is empty.
    """

    value: object = field(default=None, compare=False, repr=False)
