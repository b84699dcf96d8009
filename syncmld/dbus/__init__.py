"""syncmld's D-Bus service on the session bus (``org.syncmld.Syncmld1``).

:mod:`syncmld.dbus.names` holds the names, paths, enumerations and error
names; :mod:`syncmld.dbus.service` the exported objects.  The interfaces are
described by the XML files in ``interfaces/``, which are the reference for
clients (``syncmlctl`` and desktop widgets).
"""
