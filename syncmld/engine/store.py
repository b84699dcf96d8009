"""The local store interface the engine syncs, and an in-memory store.

A store holds the desktop side of one datastore (contacts, a calendar, ...)
as text items in the desktop format (vCard 3.0, iCalendar 2.0, text/plain).
It needs no change log: the engine detects changes itself by comparing each
item's etag, then its normalized content hash, with the state of the last
sync.

Concurrency is optimistic, as in vdirsyncer: every write names the etag the
engine last saw, and a store whose item changed in between refuses with
:class:`PreconditionFailed` — the desktop edit is kept and travels with the
next sync.
"""

from __future__ import annotations

import builtins
import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from syncmld.errors import SyncmlError


@dataclass(frozen=True, slots=True)
class ContentType:
    """A MIME type and its version, e.g. ``ContentType("text/vcard", "3.0")``."""

    mime: str
    version: str

    def __str__(self) -> str:
        return f"{self.mime} {self.version}"


VCARD_30 = ContentType("text/vcard", "3.0")
VCARD_21 = ContentType("text/x-vcard", "2.1")
ICAL_20 = ContentType("text/calendar", "2.0")
VCAL_10 = ContentType("text/x-vcalendar", "1.0")
TEXT_PLAIN = ContentType("text/plain", "1.0")


class StoreError(SyncmlError):
    """A store could not do what it was asked; the SyncML status to report is ``status``."""

    status = 510


class ItemNotFound(StoreError):
    """The item does not exist (any more)."""

    status = 404


class ItemUnreadable(StoreError):
    """The item exists but cannot be read as one (a file damaged by hand).

    The engine leaves such an item alone for the session: it is neither a
    deletion nor a change, its state row stays as it was, and the run's
    message names it.  The exception's text names the item for the user
    (``contacts/x.vcf: line 3: not a property line``).
    """

    status = 500


class PreconditionFailed(StoreError):
    """The item changed since the etag the caller gave: the write was not done."""

    status = 409


class ReadOnlyStore(StoreError):
    """The store refuses writes."""

    status = 403


class Store(ABC):
    """A local datastore.

    Subclasses implement the five operations; item ids and etags are opaque
    strings chosen by the store.  ``content_types`` lists what the store
    holds, preferred first (the engine converts peers' formats to the first).
    """

    #: The formats the store holds, preferred first.
    content_types: tuple[ContentType, ...] = (TEXT_PLAIN,)
    #: A read-only store refuses add, replace and delete with :class:`ReadOnlyStore`.
    read_only: bool = False

    @abstractmethod
    def list(self) -> Iterable[tuple[str, str]]:
        """Every item as ``(item_id, etag)``."""

    @abstractmethod
    def get(self, item_id: str) -> tuple[str, str]:
        """``(data, etag)`` of one item.

        Raises:
            ItemNotFound: no such item.
            ItemUnreadable: the item exists but cannot be read.
        """

    def get_many(self, item_ids: Iterable[str]) -> Iterator[tuple[str, str, str]]:
        """``(item_id, data, etag)`` for each id that exists (missing ids are skipped)."""
        for item_id in item_ids:
            try:
                data, etag = self.get(item_id)
            except ItemNotFound:
                continue
            yield item_id, data, etag

    @abstractmethod
    def add(self, data: str) -> tuple[str, str]:
        """Store a new item; returns ``(item_id, etag)``."""

    @abstractmethod
    def replace(self, item_id: str, data: str, *, etag: str | None) -> str:
        """Overwrite an item; returns the new etag.

        Raises:
            ItemNotFound: no such item.
            PreconditionFailed: ``etag`` is given and the item's etag differs.
        """

    @abstractmethod
    def delete(self, item_id: str, *, etag: str | None) -> None:
        """Remove an item.

        Raises:
            ItemNotFound: no such item.
            PreconditionFailed: ``etag`` is given and the item's etag differs.
        """

    def flush(self) -> None:
        """Make every change so far durable (the default does nothing).

        The engine calls it once per session, before the session's outcome
        is handed over for commit: a store may then skip per-write syncing
        and make its writes durable here, all at once.  When it raises, the
        session fails and none of its state is committed.

        Raises:
            StoreError: the changes could not be made durable.
            OSError: likewise (the engine treats both alike).
        """
        return  # nothing is buffered by default


def flush_stores(stores: Iterable[tuple[str, Store]]) -> str | None:
    """Call :meth:`Store.flush` on each ``(datastore name, store)``, each store once.

    Every store is flushed even when one fails.  Returns ``None`` when all
    succeeded, else one line naming each failure (``contacts: changes not
    saved: cannot sync /home/u/contacts: Input/output error``), for the
    run's message; the session then commits nothing.
    """
    done: set[int] = set()
    failures: builtins.list[str] = []
    for name, store in stores:
        if id(store) in done:
            continue
        done.add(id(store))
        try:
            store.flush()
        except (OSError, StoreError) as exc:
            reason = str(exc)
            if isinstance(exc, OSError) and exc.strerror:
                reason = exc.strerror + (f": {exc.filename}" if exc.filename else "")
            failures.append(f"{name}: changes not saved: {reason or type(exc).__name__}")
    return "; ".join(failures) if failures else None


class MemoryStore(Store):
    """A store in a dict, for tests and for programs that keep their data in memory."""

    def __init__(
        self,
        items: Iterable[str] = (),
        *,
        content_types: tuple[ContentType, ...] = (TEXT_PLAIN,),
        read_only: bool = False,
    ) -> None:
        self.content_types = content_types
        self._items: dict[str, tuple[str, str]] = {}
        self._ids = itertools.count(1)
        self._etags = itertools.count(1)
        for data in items:
            self._put(str(next(self._ids)), data)
        self.read_only = read_only

    def _put(self, item_id: str, data: str) -> str:
        etag = str(next(self._etags))
        self._items[item_id] = (data, etag)
        return etag

    def _check(self, item_id: str, etag: str | None) -> None:
        if self.read_only:
            raise ReadOnlyStore("store is read-only")
        current = self._items.get(item_id)
        if current is None:
            raise ItemNotFound(item_id)
        if etag is not None and etag != current[1]:
            raise PreconditionFailed(item_id)

    def list(self) -> Iterable[tuple[str, str]]:
        """Every item as ``(item_id, etag)``."""
        return [(k, v[1]) for k, v in self._items.items()]

    def get(self, item_id: str) -> tuple[str, str]:
        """``(data, etag)`` of one item."""
        try:
            return self._items[item_id]
        except KeyError:
            raise ItemNotFound(item_id) from None

    def add(self, data: str) -> tuple[str, str]:
        """Store a new item."""
        if self.read_only:
            raise ReadOnlyStore("store is read-only")
        item_id = str(next(self._ids))
        return item_id, self._put(item_id, data)

    def replace(self, item_id: str, data: str, *, etag: str | None) -> str:
        """Overwrite an item."""
        self._check(item_id, etag)
        return self._put(item_id, data)

    def delete(self, item_id: str, *, etag: str | None) -> None:
        """Remove an item."""
        self._check(item_id, etag)
        del self._items[item_id]

    # Convenience for tests and programs -------------------------------------
    def edit(self, item_id: str, data: str) -> None:
        """Change an item as a desktop program would (new etag, no precondition)."""
        if item_id not in self._items:
            raise ItemNotFound(item_id)
        self._put(item_id, data)

    def values(self) -> builtins.list[str]:
        """All item data."""
        return [v[0] for v in self._items.values()]

    def __len__(self) -> int:
        return len(self._items)
