"""Pull PIM items out of the recorded SyncML sessions in ``tests/data/vectors``.

Items sit in ``<Data>`` of Add/Replace commands. XML parsing loses CR, so items come
back with LF line ends; the codecs accept both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lxml import etree

VECTORS = Path(__file__).resolve().parent.parent / "data" / "vectors"


@dataclass(frozen=True)
class Item:
    """One item found in a recorded message."""

    path: Path
    content_type: str
    data: str

    @property
    def label(self) -> str:
        """Short name for test ids."""
        return f"{self.path.parent.name}/{self.path.name}"


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def _meta_type(element: etree._Element) -> str:
    for node in element.iter():
        if _local(node) == "Type" and node.text:
            return node.text.strip()
    return ""


def items(pattern: str, content_type: str | None = None) -> list[Item]:
    """Add/Replace item payloads in the XML files matching ``pattern``: those of
    ``content_type`` if given, else every vCard/vCalendar-like one."""
    found: list[Item] = []
    for path in sorted(VECTORS.glob(pattern)):
        tree = etree.parse(str(path), etree.XMLParser(recover=True, resolve_entities=False))
        for command in tree.iter():
            if _local(command) not in ("Add", "Replace"):
                continue
            command_type = ""
            for child in command:
                if _local(child) == "Meta":
                    command_type = _meta_type(child)
            for item in command:
                if _local(item) != "Item":
                    continue
                item_type = command_type
                data = None
                for child in item:
                    if _local(child) == "Meta":
                        item_type = _meta_type(child) or item_type
                    elif _local(child) == "Data":
                        data = child.text
                if data is None:
                    continue
                if (content_type is None and "BEGIN:" in data) or item_type == content_type:
                    found.append(Item(path, item_type, data))
    return found


def crlf(text: str) -> str:
    """``text`` stripped, with CRLF line ends and a final CRLF."""
    lines = text.strip().replace("\r\n", "\n").split("\n")
    return "\r\n".join(lines) + "\r\n"
