"""Local datastores: the desktop side of a sync.

Every store implements the engine's :class:`~syncmld.engine.store.Store` ABC.

* :mod:`syncmld.stores.vdir` - a vdir folder (one item per file), as used by
  khal, khard, todoman and vdirsyncer: contacts, events, tasks and memos.
* :class:`~syncmld.agent.AgentStore` (in :mod:`syncmld.agent`) - any data
  source a plug-in :class:`~syncmld.agent.Agent` reaches.
* :class:`~syncmld.engine.store.MemoryStore` (in the engine) - items in a dict,
  for tests.

Stores block (they read and write files); asyncio code calls them through
``asyncio.to_thread``, as the transports do with the whole engine.
"""
