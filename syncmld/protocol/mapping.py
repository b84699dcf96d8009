"""Mapping between :class:`~syncmld.protocol.tree.Node` trees and the message model.

Reading (:func:`message_from_node`) is tolerant in the ways real devices need:

* element order is free and unknown elements are ignored (vendor extensions,
  DM-only elements in a DS message);
* values are whitespace-stripped, except item ``Data``, which is kept byte
  for byte (vCards need their CRLF);
* ``Meta`` content may or may not be wrapped in a ``MetInf`` element;
* a WBXML OPAQUE value is text like any other (Sony Ericsson phones send every
  value as OPAQUE), see :mod:`syncmld.protocol.wbxml`.

It is strict where the engine could otherwise be misled: a missing required
element (CmdID, a Status code, the header's VerDTD/SessionID/MsgID/Target/
Source) or a number that is not a number raises
:class:`~syncmld.protocol.errors.RemoteProtocolError` with status 400 (412 for
a missing element) and the element's byte offset.

Writing (:func:`message_to_node`) produces elements in the order of the
SyncML DTDs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import cast

from syncmld.protocol.devinf import DevInf, devinf_from_node, devinf_to_node
from syncmld.protocol.errors import RemoteProtocolError
from syncmld.protocol.model import (
    Add,
    Alert,
    Anchor,
    Atomic,
    Chal,
    Command,
    Copy,
    Cred,
    Delete,
    Exec,
    Filter,
    Get,
    Item,
    ItemData,
    Location,
    Map,
    MapItem,
    Mem,
    Message,
    Meta,
    Move,
    Put,
    Replace,
    Results,
    Search,
    Sequence,
    Status,
    Sync,
    SyncHdr,
    command_name,
)
from syncmld.protocol.tree import DEVINF, METINF, SYNCML, Decoded, Node

# The tree codecs' fast Node constructor: a message of 2,000 vCards has some
# 16,000 elements, and Node's frozen-dataclass __init__ is a third of the time
# it takes to write one (see syncmld.protocol.wbxml._node_factory).
from syncmld.protocol.wbxml import _new_node as _node

INCOMPLETE_COMMAND = 412

#: VerDTD of the message being read: the version of an embedded DevInf that
#: names none (libwbxml's SyncML 1.1 examples embed DevInf without VerDTD).
_MESSAGE_VERSION: ContextVar[str | None] = ContextVar("syncml_message_version", default=None)

# --- reading helpers --------------------------------------------------------


def _text(node: Node) -> str:
    """The stripped text of a value element ('' when empty)."""
    t = node.text
    if type(t) is str:
        return t.strip()
    if t is None:
        return ""
    if isinstance(t, bytes):
        try:
            t = t.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError(
                f"{node.tag} holds binary data where text is required", offset=node.pos
            ) from None
    return t.strip()


#: A SyncML number: unsigned decimal, ASCII digits (``int()`` alone would also
#: take "-1", "+1", "1_000" and non-ASCII digits such as "١٢").
_NUMBER = re.compile(r"[0-9]{1,18}")


def _int(node: Node) -> int:
    t = node.text
    if type(t) is str:
        t = t.strip()
        if t.isascii() and t.isdigit() and len(t) <= 18:  # what _NUMBER takes
            return int(t)
    t = _text(node)
    if _NUMBER.fullmatch(t) is None:
        raise RemoteProtocolError(f"{node.tag} is not a number: {t[:40]!r}", offset=node.pos)
    return int(t)


def _missing(parent: Node, tag: str) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"{parent.tag} has no {tag}", status=INCOMPLETE_COMMAND, offset=parent.pos
    )


def _need(parent: Node, tag: str) -> Node:
    c = parent.child(tag)
    if c is None:
        raise _missing(parent, tag)
    return c


def _opt_text(parent: Node, tag: str) -> str | None:
    c = parent.child(tag)
    return None if c is None else _text(c)


def _opt_int(parent: Node, tag: str) -> int | None:
    c = parent.child(tag)
    return None if c is None else _int(c)


def _flag(parent: Node, tag: str) -> bool:
    return parent.child(tag) is not None


def _index(node: Node) -> dict[str, Node]:
    """The first child of each name (one pass, for readers that look up several)."""
    return {c.tag: c for c in reversed(node.children)}


def _need_in(parent: Node, kids: dict[str, Node], tag: str) -> Node:
    c = kids.get(tag)
    if c is None:
        raise _missing(parent, tag)
    return c


def _text_in(kids: dict[str, Node], tag: str) -> str | None:
    c = kids.get(tag)
    return None if c is None else _text(c)


def _meta_in(kids: dict[str, Node]) -> Meta | None:
    c = kids.get("Meta")
    return None if c is None else meta_from_node(c)


def _cred_in(kids: dict[str, Node]) -> Cred | None:
    c = kids.get("Cred")
    return None if c is None else _cred(c)


def _anchor(node: Node) -> Anchor:
    return Anchor(last=_opt_text(node, "Last"), next=_opt_text(node, "Next"))


def _mem(node: Node) -> Mem:
    return Mem(
        shared_mem=_flag(node, "SharedMem"),
        free_mem=_opt_int(node, "FreeMem"),
        free_id=_opt_int(node, "FreeID"),
    )


def _meta_fields(node: Node) -> Iterable[Node]:
    for c in node.children:
        if c.tag == "MetInf":  # some stacks wrap MetInf content in a MetInf element
            yield from c.children
        else:
            yield c


def meta_from_node(node: Node) -> Meta:
    """Read a ``Meta`` (or ``Chal/Meta``) element."""
    kw: dict[str, object] = {}
    emi: list[str] = []
    for c in _meta_fields(node):
        t = c.tag
        if t == "Type":
            kw["type"] = _text(c)
        elif t == "Format":
            kw["format"] = _text(c)
        elif t == "Size":
            kw["size"] = _int(c)
        elif t == "Version":
            kw["version"] = _text(c)
        elif t == "Mark":
            kw["mark"] = _text(c)
        elif t == "Anchor":
            kw["anchor"] = _anchor(c)
        elif t == "MaxMsgSize":
            kw["max_msg_size"] = _int(c)
        elif t == "MaxObjSize":
            kw["max_obj_size"] = _int(c)
        elif t == "NextNonce":
            kw["next_nonce"] = _text(c)
        elif t == "EMI":
            emi.append(_text(c))
        elif t == "Mem":
            kw["mem"] = _mem(c)
        elif t == "FieldLevel":
            kw["field_level"] = True
    if emi:
        kw["emi"] = tuple(emi)
    return Meta(**kw)  # type: ignore[arg-type]


def _opt_meta(parent: Node) -> Meta | None:
    c = parent.child("Meta")
    return None if c is None else meta_from_node(c)


def _location(node: Node) -> Location:
    only = node.children
    if len(only) == 1 and only[0].tag == "LocURI":  # the usual Target/Source
        text = only[0].text
        return Location(uri=text.strip() if type(text) is str else _text(only[0]))
    kids = _index(node)
    flt = kids.get("Filter")
    return Location(
        uri=_text_in(kids, "LocURI") or "",
        name=_text_in(kids, "LocName"),
        filter=None if flt is None else _filter(flt),
    )


def _opt_location(parent: Node, tag: str) -> Location | None:
    c = parent.child(tag)
    return None if c is None else _location(c)


def _filter(node: Node) -> Filter:
    fld = node.child("Field")
    rec = node.child("Record")
    fitem = fld.child("Item") if fld is not None else None
    ritem = rec.child("Item") if rec is not None else None
    return Filter(
        meta=_opt_meta(node),
        field=None if fitem is None else _item(fitem),
        record=None if ritem is None else _item(ritem),
        filter_type=_opt_text(node, "FilterType"),
    )


def _cred(node: Node) -> Cred:
    kids = _index(node)
    return Cred(meta=_meta_in(kids), data=_text_in(kids, "Data") or "")


def _opt_cred(parent: Node) -> Cred | None:
    c = parent.child("Cred")
    return None if c is None else _cred(c)


def _data(node: Node) -> ItemData:
    kids = node.children
    if not kids:
        t = node.text
        return "" if t is None else t
    if len(kids) == 1:
        c = kids[0]
        if c.ns == DEVINF and c.tag == "DevInf":
            return devinf_from_node(c, ver_dtd=_MESSAGE_VERSION.get())
        if c.ns == METINF and c.tag == "Anchor":
            return _anchor(c)
        return c
    return node  # several foreign elements: keep the Data element itself


def _parent_uri(node: Node) -> str:
    return _opt_text(node, "LocURI") or ""


def _item(node: Node) -> Item:
    target = source = None
    source_parent = target_parent = None
    meta = None
    data: ItemData | None = None
    more = False
    for c in node.children:
        t = c.tag
        if t == "Target":
            target = _location(c)
        elif t == "Source":
            source = _location(c)
        elif t == "Meta":
            meta = meta_from_node(c)
        elif t == "Data":
            data = _data(c)
        elif t == "MoreData":
            more = True
        elif t == "SourceParent":
            source_parent = _parent_uri(c)
        elif t == "TargetParent":
            target_parent = _parent_uri(c)
    return Item(
        target=target,
        source=source,
        source_parent=source_parent,
        target_parent=target_parent,
        meta=meta,
        data=data,
        more_data=more,
    )


def _items(parent: Node) -> tuple[Item, ...]:
    return tuple([_item(c) for c in parent.children if c.tag == "Item"])


def _cmd_id(node: Node) -> int:
    return _int(_need(node, "CmdID"))


def _refs(parent: Node, tag: str) -> tuple[str, ...]:
    return tuple([_text(c) for c in parent.children if c.tag == tag])


# --- reading commands -------------------------------------------------------


def _alert(n: Node) -> Alert:
    return Alert(
        cmd_id=_cmd_id(n),
        data=_opt_int(n, "Data"),
        items=_items(n),
        no_resp=_flag(n, "NoResp"),
        cred=_opt_cred(n),
        correlator=_opt_text(n, "Correlator"),
    )


def _item_command(
    cls: type[Add] | type[Replace] | type[Copy] | type[Move],
) -> Callable[[Node], Command]:
    def read(n: Node) -> Command:
        kids, items = _split_items(n)
        return cls(
            cmd_id=_int(_need_in(n, kids, "CmdID")),
            items=tuple([_item(c) for c in items]),
            no_resp="NoResp" in kids,
            cred=_cred_in(kids),
            meta=_meta_in(kids),
        )

    return read


def _split_items(n: Node) -> tuple[dict[str, Node], list[Node]]:
    """One pass for an item command: the first child of each other name, and the Items."""
    first: dict[str, Node] = {}
    items: list[Node] = []
    for c in n.children:
        t = c.tag
        if t == "Item":
            items.append(c)
        elif t not in first:
            first[t] = c
    return first, items


def _delete(n: Node) -> Delete:
    kids, items = _split_items(n)
    return Delete(
        cmd_id=_int(_need_in(n, kids, "CmdID")),
        items=tuple([_item(c) for c in items]),
        no_resp="NoResp" in kids,
        cred=_cred_in(kids),
        meta=_meta_in(kids),
        archive="Archive" in kids,
        sft_del="SftDel" in kids,
    )


def _get_put(cls: type[Get] | type[Put]) -> Callable[[Node], Command]:
    def read(n: Node) -> Command:
        kids = _index(n)
        return cls(
            cmd_id=_int(_need_in(n, kids, "CmdID")),
            items=_items(n),
            no_resp="NoResp" in kids,
            cred=_cred_in(kids),
            meta=_meta_in(kids),
            lang=_text_in(kids, "Lang"),
        )

    return read


def _results(n: Node) -> Results:
    return Results(
        cmd_id=_cmd_id(n),
        cmd_ref=_int(_need(n, "CmdRef")),
        msg_ref=_opt_int(n, "MsgRef"),
        meta=_opt_meta(n),
        target_refs=_refs(n, "TargetRef"),
        source_refs=_refs(n, "SourceRef"),
        items=_items(n),
    )


def _status(n: Node) -> Status:
    # One pass over the children (a large sync's answer is thousands of
    # Statuses); the first of each single element counts, as in _index.
    first: dict[str, Node] = {}
    targets: list[Node] = []
    sources: list[Node] = []
    items: list[Node] = []
    for c in n.children:
        t = c.tag
        if t == "TargetRef":
            targets.append(c)
        elif t == "SourceRef":
            sources.append(c)
        elif t == "Item":
            items.append(c)
        elif t not in first:
            first[t] = c
    chal = first.get("Chal")
    chal_meta = chal.child("Meta") if chal is not None else None
    msg_ref = first.get("MsgRef")
    return Status(
        cmd_id=_int(_need_in(n, first, "CmdID")),
        cmd_ref=_int(_need_in(n, first, "CmdRef")),
        cmd=_text(_need_in(n, first, "Cmd")),
        data=_int(_need_in(n, first, "Data")),
        msg_ref=None if msg_ref is None else _int(msg_ref),
        target_refs=tuple([_text(c) for c in targets]),
        source_refs=tuple([_text(c) for c in sources]),
        cred=_cred_in(first),
        chal=None
        if chal is None
        else Chal(meta=meta_from_node(chal_meta) if chal_meta else Meta()),
        items=tuple([_item(c) for c in items]),
    )


def _map(n: Node) -> Map:
    items = []
    for c in n.children:
        if c.tag == "MapItem":
            tgt, src = c.child("Target"), c.child("Source")
            items.append(
                MapItem(
                    target=_location(tgt).uri if tgt is not None else "",
                    source=_location(src).uri if src is not None else "",
                )
            )
    return Map(
        cmd_id=_cmd_id(n),
        target=_location(_need(n, "Target")),
        source=_location(_need(n, "Source")),
        items=tuple(items),
        cred=_opt_cred(n),
        meta=_opt_meta(n),
    )


def _exec(n: Node) -> Exec:
    item = n.child("Item")
    return Exec(
        cmd_id=_cmd_id(n),
        item=_item(item) if item is not None else Item(),
        no_resp=_flag(n, "NoResp"),
        cred=_opt_cred(n),
        meta=_opt_meta(n),
        correlator=_opt_text(n, "Correlator"),
    )


def _search(n: Node) -> Search:
    return Search(
        cmd_id=_cmd_id(n),
        sources=tuple(_location(c) for c in n.children if c.tag == "Source"),
        meta=_opt_meta(n) or Meta(),
        data=_opt_text(n, "Data") or "",
        no_resp=_flag(n, "NoResp"),
        no_results=_flag(n, "NoResults"),
        cred=_opt_cred(n),
        target=_opt_location(n, "Target"),
        lang=_opt_text(n, "Lang"),
    )


def _container(cls: type[Atomic] | type[Sequence]) -> Callable[[Node], Command]:
    def read(n: Node) -> Command:
        return cls(
            cmd_id=_cmd_id(n),
            commands=_commands(n),
            no_resp=_flag(n, "NoResp"),
            meta=_opt_meta(n),
        )

    return read


def _sync(n: Node) -> Sync:
    return Sync(
        cmd_id=_cmd_id(n),
        target=_opt_location(n, "Target"),
        source=_opt_location(n, "Source"),
        commands=_commands(n),
        no_resp=_flag(n, "NoResp"),
        cred=_opt_cred(n),
        meta=_opt_meta(n),
        number_of_changes=_opt_int(n, "NumberOfChanges"),
    )


_READERS: dict[str, Callable[[Node], Command]] = {
    "Alert": _alert,
    "Add": _item_command(Add),
    "Replace": _item_command(Replace),
    "Copy": _item_command(Copy),
    "Move": _item_command(Move),
    "Delete": _delete,
    "Get": _get_put(Get),
    "Put": _get_put(Put),
    "Results": _results,
    "Status": _status,
    "Map": _map,
    "Exec": _exec,
    "Search": _search,
    "Atomic": _container(Atomic),
    "Sequence": _container(Sequence),
    "Sync": _sync,
}


def _commands(parent: Node) -> tuple[Command, ...]:
    out = []
    for c in parent.children:
        if type(c) is Decoded:  # read by the WBXML decoder already
            out.append(cast("Command", c.value))
            continue
        reader = _READERS.get(c.tag)
        if reader is not None and c.ns == SYNCML:
            out.append(reader(c))
    return tuple(out)


def _header(n: Node) -> SyncHdr:
    ver = _need(n, "VerDTD")
    ver_dtd = _text(ver)
    if not ver_dtd:  # the model refuses an empty VerDTD (LocalProtocolError)
        raise RemoteProtocolError("SyncHdr has an empty VerDTD", status=412, offset=ver.pos)
    return SyncHdr(
        ver_dtd=ver_dtd,
        ver_proto=_opt_text(n, "VerProto") or "",
        session_id=_text(_need(n, "SessionID")),
        msg_id=_int(_need(n, "MsgID")),
        target=_location(_need(n, "Target")),
        source=_location(_need(n, "Source")),
        resp_uri=_opt_text(n, "RespURI"),
        no_resp=_flag(n, "NoResp"),
        cred=_opt_cred(n),
        meta=_opt_meta(n),
    )


def message_from_node(root: Node) -> Message:
    """Build a :class:`Message` from a ``SyncML`` element tree.

    Raises:
        RemoteProtocolError: not a SyncML message, or a required element is
            missing or malformed.
    """
    if root.tag != "SyncML" or root.ns != SYNCML:
        raise RemoteProtocolError(f"expected a SyncML message, found <{root.tag}>", offset=root.pos)
    body = root.child("SyncBody")
    if body is None:
        raise _missing(root, "SyncBody")
    header = _header(_need(root, "SyncHdr"))
    token = _MESSAGE_VERSION.set(header.ver_dtd)
    try:
        commands = _commands(body)
    finally:
        _MESSAGE_VERSION.reset(token)
    return Message(header=header, commands=commands, final=_flag(body, "Final"))


# --- writing ----------------------------------------------------------------


def _leaf(tag: str, value: object, ns: str = SYNCML) -> Node:
    text = value if type(value) is str else str(value)
    return _node(tag, ns, (), text or None, -1)


def _flag_node(tag: str, ns: str = SYNCML) -> Node:
    return _node(tag, ns, (), None, -1)


def _anchor_node(a: Anchor) -> Node:
    kids = []
    if a.last is not None:
        kids.append(_leaf("Last", a.last, METINF))
    if a.next is not None:
        kids.append(_leaf("Next", a.next, METINF))
    return _node("Anchor", METINF, tuple(kids), None, -1)


def meta_children(m: Meta) -> tuple[Node, ...]:
    """MetInf elements of ``m`` in MetInf DTD order."""
    k: list[Node] = []
    if m.field_level:
        k.append(_flag_node("FieldLevel", METINF))
    if m.format is not None:
        k.append(_leaf("Format", m.format, METINF))
    if m.type is not None:
        k.append(_leaf("Type", m.type, METINF))
    if m.mark is not None:
        k.append(_leaf("Mark", m.mark, METINF))
    if m.size is not None:
        k.append(_leaf("Size", m.size, METINF))
    if m.anchor is not None:
        k.append(_anchor_node(m.anchor))
    if m.version is not None:
        k.append(_leaf("Version", m.version, METINF))
    if m.next_nonce is not None:
        k.append(_leaf("NextNonce", m.next_nonce, METINF))
    if m.max_msg_size is not None:
        k.append(_leaf("MaxMsgSize", m.max_msg_size, METINF))
    if m.max_obj_size is not None:
        k.append(_leaf("MaxObjSize", m.max_obj_size, METINF))
    k.extend(_leaf("EMI", e, METINF) for e in m.emi)
    if m.mem is not None:
        mk = []
        if m.mem.shared_mem:
            mk.append(_flag_node("SharedMem", METINF))
        if m.mem.free_mem is not None:
            mk.append(_leaf("FreeMem", m.mem.free_mem, METINF))
        if m.mem.free_id is not None:
            mk.append(_leaf("FreeID", m.mem.free_id, METINF))
        k.append(_node("Mem", METINF, tuple(mk), None, -1))
    return tuple(k)


def _meta_node(m: Meta) -> Node:
    return _node("Meta", SYNCML, meta_children(m), None, -1)


def _location_node(tag: str, loc: Location) -> Node:
    kids = [_leaf("LocURI", loc.uri)]
    if loc.name is not None:
        kids.append(_leaf("LocName", loc.name))
    if loc.filter is not None:
        kids.append(_filter_node(loc.filter))
    return _node(tag, SYNCML, tuple(kids), None, -1)


def _filter_node(f: Filter) -> Node:
    kids = []
    if f.meta is not None:
        kids.append(_meta_node(f.meta))
    if f.field is not None:
        kids.append(Node("Field", SYNCML, (_item_node(f.field),)))
    if f.record is not None:
        kids.append(Node("Record", SYNCML, (_item_node(f.record),)))
    if f.filter_type is not None:
        kids.append(_leaf("FilterType", f.filter_type))
    return Node("Filter", SYNCML, tuple(kids))


def _cred_node(c: Cred) -> Node:
    kids = []
    if c.meta is not None:
        kids.append(_meta_node(c.meta))
    kids.append(_leaf("Data", c.data))
    return _node("Cred", SYNCML, tuple(kids), None, -1)


def _data_node(d: ItemData) -> Node:
    if isinstance(d, str | bytes):
        return _node("Data", SYNCML, (), d if d else None, -1)
    if isinstance(d, DevInf):
        return _node("Data", SYNCML, (devinf_to_node(d),), None, -1)
    if isinstance(d, Anchor):
        return _node("Data", SYNCML, (_anchor_node(d),), None, -1)
    if d.tag == "Data" and d.ns == SYNCML:
        return d
    return _node("Data", SYNCML, (d,), None, -1)


def _item_node(it: Item) -> Node:
    k: list[Node] = []
    if it.target is not None:
        k.append(_location_node("Target", it.target))
    if it.source is not None:
        k.append(_location_node("Source", it.source))
    if it.source_parent is not None:
        k.append(Node("SourceParent", SYNCML, (_leaf("LocURI", it.source_parent),)))
    if it.target_parent is not None:
        k.append(Node("TargetParent", SYNCML, (_leaf("LocURI", it.target_parent),)))
    if it.meta is not None:
        k.append(_meta_node(it.meta))
    if it.data is not None:
        k.append(_data_node(it.data))
    if it.more_data:
        k.append(_flag_node("MoreData"))
    return _node("Item", SYNCML, tuple(k), None, -1)


def _common(
    cmd_id: int,
    *,
    no_resp: bool = False,
    cred: Cred | None = None,
) -> list[Node]:
    k = [_leaf("CmdID", cmd_id)]
    if no_resp:
        k.append(_flag_node("NoResp"))
    if cred is not None:
        k.append(_cred_node(cred))
    return k


_ITEM_COMMANDS: frozenset[type] = frozenset({Add, Replace, Copy, Move, Delete, Get, Put})


def _item_command_children(cmd: Add | Replace | Copy | Move | Delete | Get | Put) -> list[Node]:
    """Children of Add, Replace, Copy, Move, Delete, Get, Put (most commands of a Sync)."""
    k = [_leaf("CmdID", cmd.cmd_id)]
    if cmd.no_resp:
        k.append(_flag_node("NoResp"))
    if isinstance(cmd, Delete):
        if cmd.archive:
            k.append(_flag_node("Archive"))
        if cmd.sft_del:
            k.append(_flag_node("SftDel"))
    if isinstance(cmd, Get | Put) and cmd.lang is not None:
        k.append(_leaf("Lang", cmd.lang))
    if cmd.cred is not None:
        k.append(_cred_node(cmd.cred))
    if cmd.meta is not None:
        k.append(_meta_node(cmd.meta))
    k.extend([_item_node(i) for i in cmd.items])
    return k


#: Builds a command's :class:`Node` some other way, or returns ``None``.
CommandWriter = Callable[[Command], Node | None]


def command_to_node(cmd: Command, fast: CommandWriter | None = None) -> Node:
    """The element tree of one command (DTD element order).

    ``fast`` is tried first for this command and the ones nested in it (the
    WBXML encoder writes the common ones straight to bytes).
    """
    if fast is not None:
        done = fast(cmd)
        if done is not None:
            return done
    name = command_name(cmd)
    k: list[Node]
    if type(cmd) in _ITEM_COMMANDS:
        k = _item_command_children(cmd)  # type: ignore[arg-type]
    elif isinstance(cmd, Alert):
        k = _common(cmd.cmd_id, no_resp=cmd.no_resp, cred=cmd.cred)
        if cmd.data is not None:
            k.append(_leaf("Data", cmd.data))
        if cmd.correlator is not None:
            k.append(_leaf("Correlator", cmd.correlator))
        k.extend(_item_node(i) for i in cmd.items)
    elif isinstance(cmd, Status):
        k = [_leaf("CmdID", cmd.cmd_id)]
        if cmd.msg_ref is not None:
            k.append(_leaf("MsgRef", cmd.msg_ref))
        k.append(_leaf("CmdRef", cmd.cmd_ref))
        k.append(_leaf("Cmd", cmd.cmd))
        k.extend(_leaf("TargetRef", r) for r in cmd.target_refs)
        k.extend(_leaf("SourceRef", r) for r in cmd.source_refs)
        if cmd.cred is not None:
            k.append(_cred_node(cmd.cred))
        if cmd.chal is not None:
            k.append(Node("Chal", SYNCML, (_meta_node(cmd.chal.meta),)))
        k.append(_leaf("Data", cmd.data))
        k.extend(_item_node(i) for i in cmd.items)
    elif isinstance(cmd, Results):
        k = [_leaf("CmdID", cmd.cmd_id)]
        if cmd.msg_ref is not None:
            k.append(_leaf("MsgRef", cmd.msg_ref))
        k.append(_leaf("CmdRef", cmd.cmd_ref))
        if cmd.meta is not None:
            k.append(_meta_node(cmd.meta))
        k.extend(_leaf("TargetRef", r) for r in cmd.target_refs)
        k.extend(_leaf("SourceRef", r) for r in cmd.source_refs)
        k.extend(_item_node(i) for i in cmd.items)
    elif isinstance(cmd, Sync):
        k = _common(cmd.cmd_id, no_resp=cmd.no_resp, cred=cmd.cred)
        if cmd.target is not None:
            k.append(_location_node("Target", cmd.target))
        if cmd.source is not None:
            k.append(_location_node("Source", cmd.source))
        if cmd.meta is not None:
            k.append(_meta_node(cmd.meta))
        if cmd.number_of_changes is not None:
            k.append(_leaf("NumberOfChanges", cmd.number_of_changes))
        k.extend(command_to_node(c, fast) for c in cmd.commands)
    elif isinstance(cmd, Map):
        k = [
            _leaf("CmdID", cmd.cmd_id),
            _location_node("Target", cmd.target),
            _location_node("Source", cmd.source),
        ]
        if cmd.cred is not None:
            k.append(_cred_node(cmd.cred))
        if cmd.meta is not None:
            k.append(_meta_node(cmd.meta))
        k.extend(
            Node(
                "MapItem",
                SYNCML,
                (
                    Node("Target", SYNCML, (_leaf("LocURI", mi.target),)),
                    Node("Source", SYNCML, (_leaf("LocURI", mi.source),)),
                ),
            )
            for mi in cmd.items
        )
    elif isinstance(cmd, Atomic | Sequence):
        k = _common(cmd.cmd_id, no_resp=cmd.no_resp)
        if cmd.meta is not None:
            k.append(_meta_node(cmd.meta))
        k.extend(command_to_node(c, fast) for c in cmd.commands)
    elif isinstance(cmd, Exec):
        k = _common(cmd.cmd_id, no_resp=cmd.no_resp, cred=cmd.cred)
        if cmd.meta is not None:
            k.append(_meta_node(cmd.meta))
        if cmd.correlator is not None:
            k.append(_leaf("Correlator", cmd.correlator))
        k.append(_item_node(cmd.item))
    elif isinstance(cmd, Search):
        k = _common(cmd.cmd_id, no_resp=cmd.no_resp)
        if cmd.no_results:
            k.append(_flag_node("NoResults"))
        if cmd.cred is not None:
            k.append(_cred_node(cmd.cred))
        if cmd.target is not None:
            k.append(_location_node("Target", cmd.target))
        k.extend(_location_node("Source", s) for s in cmd.sources)
        if cmd.lang is not None:
            k.append(_leaf("Lang", cmd.lang))
        k.append(_meta_node(cmd.meta))
        k.append(_leaf("Data", cmd.data))
    else:  # a subclass of Add, Replace, Copy, Move, Delete, Get or Put
        k = _item_command_children(cmd)
    return _node(name, SYNCML, tuple(k), None, -1)


def header_to_node(h: SyncHdr) -> Node:
    """The ``SyncHdr`` element tree."""
    k = [
        _leaf("VerDTD", h.ver_dtd),
        _leaf("VerProto", h.ver_proto),
        _leaf("SessionID", h.session_id),
        _leaf("MsgID", h.msg_id),
        _location_node("Target", h.target),
        _location_node("Source", h.source),
    ]
    if h.resp_uri is not None:
        k.append(_leaf("RespURI", h.resp_uri))
    if h.no_resp:
        k.append(_flag_node("NoResp"))
    if h.cred is not None:
        k.append(_cred_node(h.cred))
    if h.meta is not None:
        k.append(_meta_node(h.meta))
    return Node("SyncHdr", SYNCML, tuple(k))


def message_to_node(msg: Message, fast: CommandWriter | None = None) -> Node:
    """The ``SyncML`` element tree of a message (``fast``: see :func:`command_to_node`)."""
    body = [command_to_node(c, fast) for c in msg.commands]
    if msg.final:
        body.append(_flag_node("Final"))
    return Node(
        "SyncML",
        SYNCML,
        (header_to_node(msg.header), Node("SyncBody", SYNCML, tuple(body))),
    )
