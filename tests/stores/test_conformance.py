"""Every built-in store, and the Agent adapter, passes the conformance suite."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from pathlib import Path

from syncmld.agent import Agent, AgentStore
from syncmld.engine.store import TEXT_PLAIN, VCARD_30, MemoryStore, Store
from syncmld.stores.vdir import VdirStore
from tests.stores.conformance import StoreConformance


def escape(text: str) -> str:
    """RFC 6350 / 5545 text escaping."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace(";", "\\;").replace(",", "\\,")


def fold(line: str) -> str:
    """Fold a content line at 75 octets without splitting a UTF-8 sequence."""
    out: list[str] = []
    chunk = ""
    for ch in line:
        if len((chunk + ch).encode()) > 75:
            out.append(chunk)
            chunk = " "
        chunk += ch
    out.append(chunk)
    return "\r\n".join(out)


class TestMemoryStore(StoreConformance):
    def new_store(self, folder: Path) -> Store:
        return MemoryStore()

    def make_item(self, uid: str, text: str) -> str:
        return f"{uid}\n{text}"

    def edit_behind(self, store: Store, item_id: str, data: str) -> None:
        assert isinstance(store, MemoryStore)
        store.edit(item_id, data)


class VdirConformance(StoreConformance):
    kind = "contacts"

    def new_store(self, folder: Path) -> Store:
        return VdirStore.of_kind(folder / self.kind, self.kind)

    def edit_behind(self, store: Store, item_id: str, data: str) -> None:
        """Rewrite the file in place, as an editor without atomic saves would."""
        assert isinstance(store, VdirStore)
        path = store.path / item_id
        before = path.stat().st_mtime_ns
        path.write_bytes(data.encode("utf-8"))
        after = max(path.stat().st_mtime_ns, before + 1_000_000_000)
        os.utime(path, ns=(after, after))


class TestVdirContacts(VdirConformance):
    kind = "contacts"

    def make_item(self, uid: str, text: str) -> str:
        return (
            "BEGIN:VCARD\r\nVERSION:3.0\r\n"
            f"UID:{uid}\r\n{fold('FN:' + escape(text))}\r\nN:{escape(text)};;;;\r\n"
            "END:VCARD\r\n"
        )


class IcsConformance(VdirConformance):
    component = "VEVENT"
    extra = "DTSTART:20260329T010000Z\r\nDTEND:20260329T020000Z\r\n"

    def make_item(self, uid: str, text: str) -> str:
        c = self.component
        return (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//syncmld//tests//EN\r\n"
            f"BEGIN:{c}\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n{self.extra}"
            f"{fold('SUMMARY:' + escape(text))}\r\nEND:{c}\r\nEND:VCALENDAR\r\n"
        )


class TestVdirEvents(IcsConformance):
    kind = "events"


class TestVdirTasks(IcsConformance):
    kind = "tasks"
    component = "VTODO"
    extra = "DUE:20260401T120000Z\r\nSTATUS:NEEDS-ACTION\r\n"


class TestVdirNotes(IcsConformance):
    kind = "notes"
    component = "VJOURNAL"
    extra = "DTSTART;VALUE=DATE:20260101\r\n"


class TestVdirPlainText(StoreConformance):
    """A folder of ``.txt`` notes: any text is an item."""

    def new_store(self, folder: Path) -> Store:
        return VdirStore(folder / "notes", content_types=(TEXT_PLAIN,), suffix=".txt")

    def make_item(self, uid: str, text: str) -> str:
        return f"{text}\n\n{uid}\n"

    edit_behind = VdirConformance.edit_behind


# ---------------------------------------------------------------- agents


class DictAgent(Agent[str]):
    """Strings in a dict; no etags of its own (the adapter hashes the content)."""

    content_types = (TEXT_PLAIN,)

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self._ids = itertools.count(1)

    def list(self) -> Iterable[str]:
        return list(self.items)

    def get(self, item_id: str) -> str:
        return self.items[item_id]

    def add(self, item: str) -> str:
        item_id = f"note-{next(self._ids)}"
        self.items[item_id] = item
        return item_id

    def replace(self, item_id: str, item: str) -> None:
        if item_id not in self.items:
            raise KeyError(item_id)
        self.items[item_id] = item

    def delete(self, item_id: str) -> None:
        del self.items[item_id]


class Card:
    """A structured item: the agent keeps objects, not text."""

    def __init__(self, uid: str, name: str) -> None:
        self.uid = uid
        self.name = name


class RevisionAgent(Agent[Card]):
    """Objects with a revision counter as etag, and dump/load of its own."""

    content_types = (VCARD_30,)

    def __init__(self) -> None:
        self.cards: dict[str, tuple[Card, int]] = {}
        self._ids = itertools.count(1)
        self._revisions = itertools.count(1)

    def list(self) -> Iterable[str]:
        return list(self.cards)

    def get(self, item_id: str) -> Card:
        return self.cards[item_id][0]

    def etag(self, item_id: str) -> str | None:
        return str(self.cards[item_id][1])

    def add(self, item: Card) -> str:
        item_id = str(next(self._ids))
        self.cards[item_id] = (item, next(self._revisions))
        return item_id

    def replace(self, item_id: str, item: Card) -> None:
        if item_id not in self.cards:
            raise KeyError(item_id)
        self.cards[item_id] = (item, next(self._revisions))

    def delete(self, item_id: str) -> None:
        del self.cards[item_id]

    def dump(self, item: Card, content_type: object) -> str:
        return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{item.uid}\r\nFN:{item.name}\r\nEND:VCARD\r\n"

    def load(self, data: str, content_type: object) -> Card:
        fields = dict(
            line.split(":", 1) for line in data.replace("\r\n ", "").splitlines() if ":" in line
        )
        return Card(fields.get("UID", ""), fields.get("FN", ""))


class TestAgentWithContentEtags(StoreConformance):
    def new_store(self, folder: Path) -> Store:
        return AgentStore(DictAgent())

    def make_item(self, uid: str, text: str) -> str:
        return f"{uid}: {text}"

    def edit_behind(self, store: Store, item_id: str, data: str) -> None:
        assert isinstance(store, AgentStore) and isinstance(store.agent, DictAgent)
        store.agent.items[item_id] = data


class TestAgentWithOwnEtags(StoreConformance):
    def new_store(self, folder: Path) -> Store:
        return AgentStore(RevisionAgent())

    def make_item(self, uid: str, text: str) -> str:
        # What RevisionAgent.dump writes: FN holds the text with line breaks removed.
        name = escape(text)
        return f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nEND:VCARD\r\n"

    def edit_behind(self, store: Store, item_id: str, data: str) -> None:
        assert isinstance(store, AgentStore) and isinstance(store.agent, RevisionAgent)
        store.agent.replace(item_id, store.agent.load(data, VCARD_30))
