"""XML codec: bytes <-> :class:`~syncmld.protocol.tree.Node` trees, on lxml.

Reading is tolerant of what real senders do and strict about what could hurt
us:

* Namespaces are not trusted.  Stacks write ``SYNCML:SYNCML1.1``,
  ``syncml:syncml1.1`` or nothing at all (Funambol's Outlook client), and put
  MetInf elements in or out of ``syncml:metinf``.  The vocabulary of an
  element is therefore decided by its name and place: everything under
  ``DevInf`` is DevInf, MetInf names are MetInf, the rest is SyncML.  Only an
  element in a namespace outside the SyncML family (an OMA DM DDF tree inside
  ``Data``, say) keeps its namespace.
* Carriage returns survive: XML parsers turn CRLF into LF, so item data with
  CR must be written as ``&#13;`` (lxml does that for us) and is read back
  with its CR; data that arrives with bare LF is left alone.
* The parser never loads a DTD, never touches the network, refuses entity
  declarations outright (no billion laughs, no external entities) and bounds
  size, depth and element count (:class:`~syncmld.protocol.limits.Limits`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from lxml import etree

from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.limits import DEFAULT_LIMITS, Limits
from syncmld.protocol.tables import METINF_TAGS
from syncmld.protocol.tree import DEVINF, METINF, SYNCML, XML_NAMESPACES, Node, syncml_namespace

# Node's frozen-dataclass __init__ costs as much as the rest of the work per
# element; the WBXML codec's constructor sets the slots directly.
from syncmld.protocol.wbxml import _new_node

#: Namespace URIs (lower case) that name one of the three SyncML vocabularies.
_SYNCML_FAMILY: Final = frozenset(
    {"syncml:syncml1.0", "syncml:syncml1.1", "syncml:syncml1.2", "syncml:metinf", "syncml:devinf"}
)


def _parser() -> etree.XMLParser:
    """A parser that loads no DTD, resolves no entity and touches no network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class XmlDocument:
    """A decoded XML document.

    Attributes:
        root: the element tree.
        kind: :data:`~syncmld.protocol.tree.SYNCML`, ``DEVINF`` or ``METINF``
            (from the root element), or the root's foreign namespace.
        version: "1.0", "1.1" or "1.2" when the document says (SyncML
            namespace or a ``VerDTD`` child of the root or its header), else
            ``None``.
    """

    root: Node
    kind: str
    version: str | None


def is_xml(data: bytes) -> bool:
    """True when ``data`` looks like an XML document (after an optional BOM and blanks)."""
    head = data[:64].lstrip(b"\xef\xbb\xbf").lstrip()
    return head.startswith(b"<")


_PLUS_ONE: Final = (1).__add__

#: ``<!ENTITY`` in the encodings an XML parser detects from the first bytes.
_ENTITY_DECLS: Final = tuple("<!ENTITY".encode(c) for c in ("ascii", "utf-16-le", "utf-16-be"))


def _find_entity_declaration(data: bytes) -> int:
    """Offset of an entity declaration in ``data``, or -1."""
    for pattern in _ENTITY_DECLS:
        at = data.find(pattern)
        if at >= 0:
            return at
    return -1


def _entity_reference(node: object, tag: str, offset: int) -> RemoteProtocolError:
    # Comments and PIs are removed while parsing; a child that is not an
    # element is an entity reference (to an undeclared entity, which a DOCTYPE
    # naming an external DTD makes legal).  Its text would be lost together
    # with the text after it.
    return RemoteProtocolError(f"entity reference {node} in {tag} is not accepted", offset=offset)


def _offset_of(data: bytes, line: int, column: int) -> int:
    """Byte offset of a 1-based (line, column) position as libxml2 reports it."""
    pos = 0
    for _ in range(max(line - 1, 0)):
        nl = data.find(b"\n", pos)
        if nl < 0:
            return len(data)
        pos = nl + 1
    return min(pos + max(column - 1, 0), len(data))


def decode_xml(data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> XmlDocument:
    """Parse one XML document into a :class:`Node` tree.

    Raises:
        RemoteProtocolError: the document is not well-formed, declares
            entities, is too large (status 413), too deep or has too many
            elements.
    """
    if len(data) > limits.max_size:
        raise RemoteProtocolError(
            f"document of {len(data)} bytes exceeds the limit of {limits.max_size}",
            status=413,
            offset=limits.max_size,
        )
    ent = _find_entity_declaration(data)
    if ent >= 0:
        raise RemoteProtocolError("entity declarations are not accepted", offset=ent)
    # Some clients put blank lines before the XML declaration, which XML forbids.
    start = len(data) - len(data.lstrip())
    if start and data.startswith(b"<?xml", start):
        data = data[start:]
    else:
        start = 0
    parser = _parser()
    try:
        element = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        raise RemoteProtocolError(
            f"malformed XML: {exc.msg}", offset=start + _offset_of(data, line, column)
        ) from None
    except (ValueError, TypeError) as exc:  # e.g. an unsupported encoding declaration
        raise RemoteProtocolError(f"malformed XML: {exc}", offset=0) from None
    if element is None:
        raise RemoteProtocolError("empty XML document", offset=0)
    # The byte search above cannot see a declaration in an encoding it does not
    # know; the parsed internal subset can.
    dtd = element.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise RemoteProtocolError("entity declarations are not accepted", offset=start)

    # Byte offset of the start of each line, for Node.pos (C-speed: no Python
    # loop over the lines of a large message).
    lines = [0, *accumulate(map(_PLUS_ONE, map(len, data.split(b"\n"))))]
    nlines = len(lines) - 1

    def pos_of(el: etree._Element) -> int:
        line = el.sourceline
        return -1 if line is None else start + lines[min(line, nlines) - 1]

    count = 1
    new_node = _new_node
    max_elements = limits.max_elements
    max_depth = limits.max_depth
    # parent vocabulary -> {lxml tag: (local name, vocabulary)}
    names: dict[str | None, dict[str, tuple[str, str]]] = {}

    def name_of(qtag: str, parent_vocab: str | None) -> tuple[str, str]:
        qname = etree.QName(qtag)
        tag = qname.localname
        uri = qname.namespace
        if parent_vocab == DEVINF or tag == "DevInf":
            vocab = DEVINF
        elif uri is not None and uri.lower() not in _SYNCML_FAMILY:
            vocab = uri
        elif parent_vocab not in (None, SYNCML, METINF) and uri is None:
            vocab = parent_vocab  # inside a foreign subtree
        elif tag in METINF_TAGS:
            vocab = METINF
        else:
            vocab = SYNCML
        names.setdefault(parent_vocab, {})[qtag] = tag, vocab
        return tag, vocab

    def convert(el: etree._Element, tag: str, vocab: str, depth: int) -> Node:
        """The Node of ``el``, which has children (leaves are built inline below:
        they are most elements, and a call each would double the cost)."""
        nonlocal count
        kids = list(el)
        count += len(kids)
        if count > max_elements:
            raise RemoteProtocolError(
                f"more than {max_elements} elements", status=413, offset=pos_of(kids[0])
            )
        depth += 1
        if depth > max_depth:
            raise RemoteProtocolError(
                f"elements nested deeper than {max_depth}", offset=pos_of(kids[0])
            )
        text = el.text
        if text and not text.isspace():
            for c in kids:
                if type(c.tag) is not str:
                    raise _entity_reference(c, tag, pos_of(el))
            raise RemoteProtocolError(f"element {tag} mixes text and elements", offset=pos_of(el))
        known = names.get(vocab)
        if known is None:
            known = names[vocab] = {}
        out = []
        for c in kids:
            qtag = c.tag
            if type(qtag) is not str:
                raise _entity_reference(c, tag, pos_of(el))
            tail = c.tail
            if tail and not tail.isspace():
                raise RemoteProtocolError(
                    f"element {tag} mixes text and elements", offset=pos_of(el)
                )
            ctag, cvocab = known.get(qtag) or name_of(qtag, vocab)
            if len(c):
                out.append(convert(c, ctag, cvocab, depth))
            else:
                line = c.sourceline
                pos = -1 if line is None else start + lines[min(line, nlines) - 1]
                out.append(new_node(ctag, cvocab, (), c.text or None, pos))
        return new_node(tag, vocab, tuple(out), None, pos_of(el))

    root_tag, root_vocab = name_of(str(element.tag), None)
    try:
        if len(element):
            root = convert(element, root_tag, root_vocab, 1)
        else:
            root = Node(root_tag, root_vocab, (), element.text or None, pos_of(element))
    except RecursionError:  # pragma: no cover - max_depth is far below the recursion limit
        raise RemoteProtocolError("elements nested too deeply", offset=0) from None
    return XmlDocument(root=root, kind=root.ns, version=_version_of(root, element))


def _version_of(root: Node, element: etree._Element) -> str | None:
    uri = etree.QName(element).namespace
    if uri and uri.lower().startswith("syncml:syncml"):
        return uri[len("syncml:syncml") :]
    ver = root.child("VerDTD")
    if ver is None:
        hdr = root.child("SyncHdr")
        ver = hdr.child("VerDTD") if hdr is not None else None
    if ver is not None and isinstance(ver.text, str) and ver.text.strip() in ("1.0", "1.1", "1.2"):
        return ver.text.strip()
    return None


#: Characters XML 1.0 cannot carry (C0 controls but TAB, LF and CR; lone
#: surrogates; U+FFFE and U+FFFF).
_NOT_XML_CHAR: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: An XML name as the SyncML-family and foreign vocabularies use them.
_NAME: Final = re.compile(r"[A-Za-z_][\w.\-]*\Z")
_DECLARATION: Final = "<?xml version='1.0' encoding='UTF-8'?>\n"


def _attribute(value: str) -> str:
    """``value`` as a double-quoted attribute value."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _escape(text: str, tag: str) -> str:
    """``text`` as XML character data; CR as ``&#13;`` so that it survives."""
    if _NOT_XML_CHAR.search(text):
        raise LocalProtocolError(f"element {tag} holds characters XML cannot carry", status=415)
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def encode_xml(
    root: Node,
    *,
    version: str | None = None,
    pretty: bool = False,
    syncml_namespace_decl: bool | None = None,
) -> bytes:
    """Serialize a :class:`Node` tree as a UTF-8 XML document.

    The document is written directly (no intermediate lxml tree): each
    vocabulary's namespace is declared as the default namespace where the
    vocabulary starts, text is escaped (``&``, ``<``, ``>``, and CR as
    ``&#13;`` so that vCards keep their CRLF).

    Args:
        root: the tree; ``bytes`` text cannot be written as XML.
        version: SyncML version for the root namespace (default: the
            ``VerDTD`` found in the tree, else 1.2).
        pretty: indent elements (text content is never altered).
        syncml_namespace_decl: write ``xmlns="SYNCML:SYNCML1.x"`` on a
            SyncML root.  Default: yes, except for SyncML 1.0, whose Sony
            Ericsson and Funambol 1.0 clients reject a namespace.

    Raises:
        LocalProtocolError: binary text, characters XML cannot carry, or an
            element name that is not an XML name.
    """
    if version is None:
        hdr = root.child("SyncHdr")
        ver = (hdr or root).child("VerDTD")
        version = ver.text.strip() if ver is not None and isinstance(ver.text, str) else "1.2"
    if syncml_namespace_decl is None:
        syncml_namespace_decl = version != "1.0"
    uris = dict(XML_NAMESPACES)
    uris[SYNCML] = syncml_namespace(version) if syncml_namespace_decl else ""
    # (tag, namespace to declare or None) -> (start tag without ">", end tag)
    tags: dict[tuple[str, str | None], tuple[str, str]] = {}
    parts: list[str] = [_DECLARATION]
    out = parts.append

    def tags_of(tag: str, declare: str | None) -> tuple[str, str]:
        found = tags.get((tag, declare))
        if found is None:
            if not _NAME.match(tag):
                raise LocalProtocolError(f"{tag!r} is not an XML element name", status=415)
            start = f"<{tag}" if declare is None else f'<{tag} xmlns="{_attribute(declare)}"'
            found = tags[tag, declare] = (start, f"</{tag}>")
        return found

    def text_of(node: Node) -> str | None:
        """The escaped text, ``None`` for none (written ``<x/>``; ``""`` gives ``<x></x>``)."""
        text = node.text
        if text is None:
            return None
        if type(text) is not str:
            raise LocalProtocolError(
                f"element {node.tag} holds binary data, which XML cannot carry "
                "(send it with Format b64 or use WBXML)",
                status=415,
            )
        return _escape(text, node.tag) if text else ""

    def write(node: Node, scope: str, indent: str) -> None:
        """Write ``node`` where ``scope`` is the default namespace."""
        uri = uris.get(node.ns, node.ns)
        start, end = tags_of(node.tag, None if uri == scope else uri)
        kids = node.children
        text = text_of(node)
        if not kids:
            out(f"{start}/>" if text is None else f"{start}>{text}{end}")
            return
        out(f"{start}>{text or ''}")
        inner = indent + "  " if pretty else indent
        for c in kids:
            if pretty:
                out(inner)
            if not c.children and uris.get(c.ns, c.ns) == uri:
                # Most elements: a leaf in the namespace in scope, written inline.
                cstart, cend = tags_of(c.tag, None)
                ctext = text_of(c)
                out(f"{cstart}/>" if ctext is None else f"{cstart}>{ctext}{cend}")
            else:
                write(c, uri, inner)
        if pretty:
            out(indent)
        out(end)

    write(root, "", "\n" if pretty else "")
    if pretty:
        out("\n")
    return "".join(parts).encode("utf-8")
