"""The SyncML representation layer, sans-IO: bytes in, objects out.

Modules:

* :mod:`~syncmld.protocol.codec` — decode and encode whole messages and DevInf
  documents in XML or WBXML (start here);
* :mod:`~syncmld.protocol.model` — the message model (frozen dataclasses);
* :mod:`~syncmld.protocol.devinf` — the DevInf model;
* :mod:`~syncmld.protocol.xml`, :mod:`~syncmld.protocol.wbxml` — the two byte
  codecs, between bytes and :class:`~syncmld.protocol.tree.Node` trees;
* :mod:`~syncmld.protocol.mapping` — trees to model and back;
* :mod:`~syncmld.protocol.auth` — basic and MD5 credentials;
* :mod:`~syncmld.protocol.san` — Server Alerted Notifications;
* :mod:`~syncmld.protocol.codes` — status and alert codes;
* :mod:`~syncmld.protocol.errors` — the typed errors every decoder raises.

Nothing here opens a socket, starts a task or reads a clock.
"""
