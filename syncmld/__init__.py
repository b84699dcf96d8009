"""syncmld: a SyncML daemon that keeps phones and the Linux desktop in sync.

The package is layered: :mod:`syncmld.protocol`, :mod:`syncmld.engine` and
:mod:`syncmld.obex` are sans-IO (bytes and objects in, bytes and objects out);
:mod:`syncmld.transports`, :mod:`syncmld.dbus`, :mod:`syncmld.daemon` and
:mod:`syncmld.cli` are the only modules that perform I/O.
"""

__version__ = "0.1.0"
