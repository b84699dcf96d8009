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

from dataclasses import dataclass
from typing import Final

from lxml import etree

from syncmld.protocol.errors import LocalProtocolError, RemoteProtocolError
from syncmld.protocol.limits import DEFAULT_LIMITS, Limits
from syncmld.protocol.tables import METINF_TAGS
from syncmld.protocol.tree import DEVINF, METINF, SYNCML, XML_NAMESPACES, Node, syncml_namespace

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
    ent = data.find(b"<!ENTITY")
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

    lines: list[int] = []  # byte offsets of line starts, computed lazily

    def pos_of(el: etree._Element) -> int:
        line = el.sourceline
        if line is None:
            return -1
        if not lines:
            lines.append(0)
            i = data.find(b"\n")
            while i >= 0:
                lines.append(i + 1)
                i = data.find(b"\n", i + 1)
        return start + lines[min(line, len(lines)) - 1]

    count = 0

    def convert(el: etree._Element, parent_vocab: str | None, depth: int) -> Node:
        nonlocal count
        count += 1
        if count > limits.max_elements:
            raise RemoteProtocolError(
                f"more than {limits.max_elements} elements", status=413, offset=pos_of(el)
            )
        if depth > limits.max_depth:
            raise RemoteProtocolError(
                f"elements nested deeper than {limits.max_depth}", offset=pos_of(el)
            )
        qname = etree.QName(el)
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
        kids = [c for c in el if isinstance(c.tag, str)]
        if kids:
            text = el.text
            if (text and not text.isspace()) or any(c.tail and not c.tail.isspace() for c in kids):
                raise RemoteProtocolError(
                    f"element {tag} mixes text and elements", offset=pos_of(el)
                )
            children = tuple(convert(c, vocab, depth + 1) for c in kids)
            return Node(tag, vocab, children, None, pos_of(el))
        return Node(tag, vocab, (), el.text or None, pos_of(el))

    try:
        root = convert(element, None, 1)
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


def encode_xml(
    root: Node,
    *,
    version: str | None = None,
    pretty: bool = False,
    syncml_namespace_decl: bool | None = None,
) -> bytes:
    """Serialize a :class:`Node` tree as a UTF-8 XML document.

    Args:
        root: the tree; ``bytes`` text cannot be written as XML.
        version: SyncML version for the root namespace (default: the
            ``VerDTD`` found in the tree, else 1.2).
        pretty: indent elements (text content is never altered).
        syncml_namespace_decl: write ``xmlns="SYNCML:SYNCML1.x"`` on a
            SyncML root.  Default: yes, except for SyncML 1.0, whose Sony
            Ericsson and Funambol 1.0 clients reject a namespace.

    Raises:
        LocalProtocolError: binary text, or characters XML cannot carry.
    """
    if version is None:
        hdr = root.child("SyncHdr")
        ver = (hdr or root).child("VerDTD")
        version = ver.text.strip() if ver is not None and isinstance(ver.text, str) else "1.2"
    if syncml_namespace_decl is None:
        syncml_namespace_decl = version != "1.0"
    uris = dict(XML_NAMESPACES)
    uris[SYNCML] = syncml_namespace(version) if syncml_namespace_decl else ""
    qnames: dict[tuple[str, str], str] = {}

    def qname(vocab: str, tag: str) -> str:
        key = (vocab, tag)
        name = qnames.get(key)
        if name is None:
            uri = uris.get(vocab, vocab)
            name = f"{{{uri}}}{tag}" if uri else tag
            qnames[key] = name
        return name

    def nsmap(vocab: str) -> dict[str | None, str] | None:
        uri = uris.get(vocab, vocab)
        return {None: uri} if uri else None

    def fill(el: etree._Element, node: Node) -> None:
        text = node.text
        if text is not None:
            if isinstance(text, bytes):
                raise LocalProtocolError(
                    f"element {node.tag} holds binary data, which XML cannot carry "
                    "(send it with Format b64 or use WBXML)",
                    status=415,
                )
            try:
                el.text = text
            except ValueError:
                raise LocalProtocolError(
                    f"element {node.tag} holds characters XML cannot carry", status=415
                ) from None
        sub = etree.SubElement
        for c in node.children:
            if c.ns == node.ns:
                child = sub(el, qname(c.ns, c.tag))
            else:
                child = sub(el, qname(c.ns, c.tag), nsmap=nsmap(c.ns))
            fill(child, c)

    top = etree.Element(qname(root.ns, root.tag), nsmap=nsmap(root.ns))
    fill(top, root)
    out: bytes = etree.tostring(top, xml_declaration=True, encoding="UTF-8", pretty_print=pretty)
    return out
