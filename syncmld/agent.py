"""The Agent plug-in API: sync any data source by writing one small class.

An :class:`Agent` is the bridge between syncmld and a program's own data: a
folder of notes, a table in a database, a web service.  The author subclasses
it and implements five operations on *items*, which can be any Python
objects the agent likes (a string, a dataclass, a database row):

* :meth:`Agent.list` - the ids of all items;
* :meth:`Agent.get` - one item by id;
* :meth:`Agent.add` - store a new item, return its new id;
* :meth:`Agent.replace` - overwrite an item;
* :meth:`Agent.delete` - remove an item.

:meth:`Agent.dump` and :meth:`Agent.load` turn an item into the text that
travels in SyncML (in the agent's first :attr:`Agent.content_types` entry)
and back; the defaults handle items that already are strings.

:meth:`Agent.flush` is optional: syncmld calls it once per session, after
the last write and before the session's state is committed.  An agent that
buffers its writes (a database transaction, a file written on close) makes
them durable there; when it raises, the session fails and its state is not
committed, so the next sync repeats its changes.  The default does nothing.

An agent never reports changes.  syncmld finds them itself: it keeps each
item's etag and a hash of its normalized content in the state database and
compares them with what :meth:`Agent.list` shows at the next sync.  An agent
that can tell cheaply whether an item changed (a modification time, a
revision counter) returns a version string from :meth:`Agent.etag`; one that
cannot leaves the default, and the etag is computed from the item's content
(every item is then read at every sync).

Missing items are reported by raising :class:`KeyError` (any
:class:`LookupError`), :class:`FileNotFoundError` or
:class:`~syncmld.engine.store.ItemNotFound`.  Any other exception of an
agent fails that one operation with a store error (status 510), never the
whole process.

:class:`AgentStore` adapts an agent to the engine's
:class:`~syncmld.engine.store.Store` interface, adding optimistic concurrency
(a write naming a stale etag raises
:class:`~syncmld.engine.store.PreconditionFailed`) and serializing calls into
the agent with a lock, so an agent need not be thread-safe.

A configuration file loads an agent by import path::

    [stores.notes]
    type = "agent"
    agent = "mynotes.sync:NotesAgent"
    options = { folder = "~/notes" }

``options`` become keyword arguments of the agent's constructor.  A program
using syncmld as a library passes its agent instance to
:class:`syncmld.library.SyncClient` directly.

A minimal agent keeping strings in a dict::

    class DictAgent(Agent[str]):
        content_types = (ContentType("text/plain", "1.0"),)

        def __init__(self) -> None:
            self.items: dict[str, str] = {}

        def list(self) -> Iterable[str]:
            return list(self.items)

        def get(self, item_id: str) -> str:
            return self.items[item_id]

        def add(self, item: str) -> str:
            item_id = uuid.uuid4().hex
            self.items[item_id] = item
            return item_id

        def replace(self, item_id: str, item: str) -> None:
            if item_id not in self.items:
                raise KeyError(item_id)
            self.items[item_id] = item

        def delete(self, item_id: str) -> None:
            del self.items[item_id]
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, cast

from syncmld.engine.store import (
    ICAL_20,
    TEXT_PLAIN,
    VCAL_10,
    VCARD_21,
    VCARD_30,
    ContentType,
    ItemNotFound,
    PreconditionFailed,
    ReadOnlyStore,
    Store,
    StoreError,
)

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")

#: Prefix of etags computed from content (agents without :meth:`Agent.etag`).
CONTENT_ETAG_PREFIX = "sha256:"


class Agent(ABC, Generic[ItemT]):
    """The base class of a plug-in data source; see the module documentation.

    Class attributes a subclass sets:

    * :attr:`content_types` - the formats :meth:`dump` produces and
      :meth:`load` accepts, preferred first, each a MIME type with its version
      (``ContentType("text/plain", "1.0")``, ``ContentType("text/vcard",
      "3.0")``).  syncmld converts what peers send to the first one when it
      can (vCard 2.1 to 3.0, vCalendar 1.0 to iCalendar 2.0).
    * :attr:`read_only` - refuse every write (a one-way export).
    """

    #: The formats of the agent's items on the wire, preferred first.
    content_types: tuple[ContentType, ...] = (TEXT_PLAIN,)
    #: When true, :class:`AgentStore` refuses writes without calling the agent.
    read_only: bool = False

    @abstractmethod
    def list(self) -> Iterable[str]:
        """The ids of all items (strings unique within this agent)."""

    @abstractmethod
    def get(self, item_id: str) -> ItemT:
        """One item.

        Raises:
            KeyError: no such item (or another error named in the module docs).
        """

    @abstractmethod
    def add(self, item: ItemT) -> str:
        """Store a new item; returns its id."""

    @abstractmethod
    def replace(self, item_id: str, item: ItemT) -> None:
        """Overwrite an item.

        Raises:
            KeyError: no such item.
        """

    @abstractmethod
    def delete(self, item_id: str) -> None:
        """Remove an item.

        Raises:
            KeyError: no such item.
        """

    def etag(self, item_id: str) -> str | None:
        """A string that changes whenever the item changes, or ``None`` (the default).

        With ``None`` the etag is a hash of the item's serialized content.

        Raises:
            KeyError: no such item.
        """
        return None

    def flush(self) -> None:
        """Make every write so far durable (the default does nothing).

        Called once per session, before its state is committed; raising
        fails the session (see the module documentation).
        """

    def dump(self, item: ItemT, content_type: ContentType) -> str:
        """The item as text in ``content_type`` (the default accepts strings only)."""
        if isinstance(item, str):
            return item
        raise TypeError(
            f"{type(self).__name__} keeps {type(item).__name__} items: override Agent.dump"
        )

    def load(self, data: str, content_type: ContentType) -> ItemT:
        """An item from text in ``content_type`` (the default returns the string)."""
        return cast(ItemT, data)


def content_etag(data: str) -> str:
    """The etag of an item without an agent etag: a SHA-256 of its text."""
    return CONTENT_ETAG_PREFIX + hashlib.sha256(data.encode("utf-8")).hexdigest()[:32]


class AgentStore(Store):
    """An :class:`Agent` as a :class:`~syncmld.engine.store.Store`.

    Args:
        agent: the agent.
        name: used in error messages (default: the agent's class name).

    Etags are the agent's own (:meth:`Agent.etag`) prefixed with ``agent:``,
    else :func:`content_etag` of the dumped item.  ``replace`` and ``delete``
    compare the caller's etag with the current one first.
    """

    def __init__(self, agent: Agent[Any], *, name: str | None = None) -> None:
        if not agent.content_types:
            raise ValueError(f"{type(agent).__name__}.content_types is empty")
        self.agent = agent
        self.name = name or type(agent).__name__
        self.content_types = tuple(agent.content_types)
        self.read_only = bool(agent.read_only)
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"AgentStore({self.agent!r})"

    @property
    def _wire(self) -> ContentType:
        return self.content_types[0]

    # ------------------------------------------------------------ helpers
    def _call(self, what: str, item_id: str | None, fn: Callable[[], Any]) -> Any:
        """Run one agent call, turning its exceptions into store errors."""
        try:
            with self._lock:
                return fn()
        except StoreError:
            raise
        except (LookupError, FileNotFoundError):
            raise ItemNotFound(item_id or "") from None
        except Exception as exc:
            log.error(
                "%s: %s%s failed: %s",
                self.name,
                what,
                f" {item_id!r}" if item_id is not None else "",
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(f"{self.name}: {what} failed: {reason}") from exc

    def _agent_etag(self, item_id: str) -> str | None:
        tag = self._call("etag", item_id, lambda: self.agent.etag(item_id))
        return None if tag is None else f"agent:{tag}"

    def _text(self, item_id: str) -> str:
        item = self._call("get", item_id, lambda: self.agent.get(item_id))
        text = self._call("dump", item_id, lambda: self.agent.dump(item, self._wire))
        if not isinstance(text, str):
            raise StoreError(f"{self.name}: dump returned {type(text).__name__}, not str")
        return text

    def _etag_and_text(self, item_id: str) -> tuple[str, str | None]:
        tag = self._agent_etag(item_id)
        if tag is not None:
            return tag, None
        text = self._text(item_id)
        return content_etag(text), text

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStore(f"{self.name} is read-only")

    def _check(self, item_id: str, etag: str | None) -> None:
        current, _ = self._etag_and_text(item_id)
        if etag is not None and etag != current:
            raise PreconditionFailed(f"{self.name}: {item_id} changed since it was read")

    def _ids(self) -> builtins.list[str]:
        ids = self._call("list", None, lambda: [str(i) for i in self.agent.list()])
        return cast(builtins.list[str], ids)

    # ------------------------------------------------------------ the ABC
    def list(self) -> Iterable[tuple[str, str]]:
        """Every item as ``(id, etag)``; items gone while listing are left out."""
        out: builtins.list[tuple[str, str]] = []
        for item_id in self._ids():
            try:
                etag, _ = self._etag_and_text(item_id)
            except ItemNotFound:
                continue
            out.append((item_id, etag))
        return out

    def get(self, item_id: str) -> tuple[str, str]:
        """``(text, etag)`` of one item."""
        with self._lock:
            tag = self._agent_etag(item_id)
            text = self._text(item_id)
        return text, tag if tag is not None else content_etag(text)

    def get_many(self, item_ids: Iterable[str]) -> Iterator[tuple[str, str, str]]:
        """``(id, text, etag)`` for each id that exists."""
        for item_id in item_ids:
            try:
                text, etag = self.get(item_id)
            except ItemNotFound:
                continue
            yield item_id, text, etag

    def _after_write(self, item_id: str, data: str) -> str:
        tag = self._agent_etag(item_id)
        if tag is not None:
            return tag
        # The agent may normalize what it stores: the etag is that of what it holds now.
        try:
            return content_etag(self._text(item_id))
        except ItemNotFound:
            return content_etag(data)

    def add(self, data: str) -> tuple[str, str]:
        """Load ``data`` into a new item; returns ``(id, etag)``."""
        self._writable()
        with self._lock:
            item = self._call("load", None, lambda: self.agent.load(data, self._wire))
            item_id = self._call("add", None, lambda: self.agent.add(item))
            if not isinstance(item_id, str) or not item_id:
                raise StoreError(f"{self.name}: add returned {item_id!r}, not an id")
            return item_id, self._after_write(item_id, data)

    def replace(self, item_id: str, data: str, *, etag: str | None) -> str:
        """Overwrite an item after checking ``etag``; returns the new etag."""
        self._writable()
        with self._lock:
            self._check(item_id, etag)
            item = self._call("load", item_id, lambda: self.agent.load(data, self._wire))
            self._call("replace", item_id, lambda: self.agent.replace(item_id, item))
            return self._after_write(item_id, data)

    def delete(self, item_id: str, *, etag: str | None) -> None:
        """Remove an item after checking ``etag``."""
        self._writable()
        with self._lock:
            self._check(item_id, etag)
            self._call("delete", item_id, lambda: self.agent.delete(item_id))

    def flush(self) -> None:
        """Forward to :meth:`Agent.flush`, if the agent has one.

        Raises:
            StoreError: the agent's flush raised (its message names the agent).
        """
        flush = getattr(self.agent, "flush", None)
        if flush is None:
            return
        try:
            with self._lock:
                flush()
        except StoreError:
            raise
        except Exception as exc:
            log.error("%s: flush failed: %s", self.name, exc)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(f"{self.name}: flush failed: {reason}") from exc


# ---------------------------------------------------------------- loading


class AgentLoadError(ValueError):
    """An agent import path or its options are wrong (the message says how)."""


def resolve_agent(spec: str) -> type[Agent[Any]]:
    """The class named by ``"package.module:ClassName"``.

    Raises:
        AgentLoadError: the path is malformed, the module cannot be imported,
            the name is missing, or it is not an :class:`Agent` subclass.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AgentLoadError(f"{spec!r} is not of the form 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentLoadError(f"cannot import {module_name!r}: {exc}") from None
    except Exception as exc:
        raise AgentLoadError(
            f"importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AgentLoadError(f"{module_name!r} has no {attr!r}") from None
    if not (isinstance(obj, type) and issubclass(obj, Agent)):
        raise AgentLoadError(f"{spec!r} is not a subclass of syncmld.agent.Agent")
    return obj


def load_agent(spec: str, options: Mapping[str, Any] | None = None) -> Agent[Any]:
    """An instance of the agent class ``spec`` names, built with ``options``.

    Raises:
        AgentLoadError: see :func:`resolve_agent`; or the constructor refused
            the options (wrong names or values).
    """
    cls = resolve_agent(spec)
    try:
        return cls(**dict(options or {}))
    except Exception as exc:
        raise AgentLoadError(
            f"{spec}: cannot create the agent with these options: {type(exc).__name__}: {exc}"
        ) from None


__all__ = [
    "ICAL_20",
    "TEXT_PLAIN",
    "VCAL_10",
    "VCARD_21",
    "VCARD_30",
    "Agent",
    "AgentLoadError",
    "AgentStore",
    "ContentType",
    "ItemNotFound",
    "content_etag",
    "load_agent",
    "resolve_agent",
]
