"""Transports: the places where syncmld touches the network.

Each transport moves bytes between a connection and a sans-IO engine session
(:class:`~syncmld.engine.server.ServerSession`,
:class:`~syncmld.engine.client.ClientSession`).  Engine calls block (they
read and write the local stores and the state database), so transports run
them in worker threads.

* :mod:`syncmld.transports.runner` - drives server sessions and persists
  their outcome for every transport; the observer hook and cancelling by key.
* :mod:`syncmld.transports.http` - SyncML over HTTP, server and client role.
* :mod:`syncmld.transports.obex` - SyncML over OBEX on any byte stream: the
  phone-initiated server side, the PC-initiated (server-alerted) side, and
  the OBEX/TCP listener and connector.
"""
