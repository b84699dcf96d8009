"""syncmld: a SyncML daemon that keeps phones and the Linux desktop in sync.

The package is layered: :mod:`syncmld.protocol`, :mod:`syncmld.engine` and
:mod:`syncmld.obex` are sans-IO (bytes and objects in, bytes and objects out);
:mod:`syncmld.transports`, :mod:`syncmld.dbus`, :mod:`syncmld.daemon` and
:mod:`syncmld.cli` are the only modules that perform I/O.

A program syncs its own data with :class:`syncmld.SyncClient` (see
:mod:`syncmld.library`) and plugs other data sources in with
:class:`syncmld.Agent` (see :mod:`syncmld.agent`).
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncmld.agent import Agent, AgentStore
    from syncmld.engine.store import ContentType
    from syncmld.library import StoreResult, SyncClient, SyncResult

# The library API, imported on first use so that ``import syncmld`` stays cheap.
_LAZY = {
    "Agent": "syncmld.agent",
    "AgentStore": "syncmld.agent",
    "ContentType": "syncmld.engine.store",
    "StoreResult": "syncmld.library",
    "SyncClient": "syncmld.library",
    "SyncResult": "syncmld.library",
}

__all__ = ["Agent", "AgentStore", "ContentType", "StoreResult", "SyncClient", "SyncResult"]


def __getattr__(name: str) -> Any:
    """Import the library API (:mod:`syncmld.library`, :mod:`syncmld.agent`) lazily."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'syncmld' has no attribute {name!r}")
    import importlib  # noqa: PLC0415

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
