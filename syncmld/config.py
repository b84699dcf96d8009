"""The configuration file: what to sync, with whom, and where the state lives.

The file is TOML (read with :mod:`tomllib`), by default
``$XDG_CONFIG_HOME/syncmld/syncmld.toml``; ``config/syncmld.toml`` in the
source tree is a documented example.  Tables:

``[state]``
    ``url``: the state database, any SQLAlchemy URL (default:
    ``sqlite:///$XDG_STATE_HOME/syncmld/state.db``).
``[stores.<name>]``
    A local datastore, offered to peers under ``<name>`` (plus ``aliases``).
    ``type = "vdir"`` (default) with ``kind = "contacts" | "calendar" |
    "events" | "tasks" | "notes"``, ``path`` (default
    ``$XDG_DATA_HOME/syncmld/<name>``) and ``color`` (``#RRGGBB``, written to
    a folder syncmld creates); ``type = "memory"`` keeps items in memory
    (tests); ``type = "agent"`` loads a plug-in (:mod:`syncmld.agent`) from
    ``agent = "package.module:ClassName"``, built with the ``options`` table
    as keyword arguments (no ``kind``: the agent declares its content types).
    Optional ``display_name``, ``aliases``.
``[servers.<name>]``
    A SyncML server to sync with (client role, ``syncmld sync <name>``):
    ``url``, ``user``, ``password`` or ``password_file``, ``auth``
    (``"basic"``/``"md5"``), ``encoding`` (``"xml"``/``"wbxml"``), ``version``
    (``"1.1"``/``"1.2"``), ``device_id``, ``timeout``, ``ca_file``, and one
    ``[[servers.<name>.sync]]`` table per datastore pair with ``local`` (a
    store name), ``remote`` (the server's database URI) and ``mode``.
``[http]``
    The HTTP listener of the server role: ``enabled`` (default true; false:
    ``syncmld run`` does not listen on HTTP), ``host`` (default 127.0.0.1),
    ``port`` (8080), ``auth`` (``"none"``/``"basic"``/``"md5"``; default
    ``"basic"`` when ``[accounts]`` has users, else ``"none"``),
    ``session_timeout`` (seconds), ``max_request_size`` (bytes),
    ``public_url`` (the URL clients reach us by, when behind a proxy).
``[obex]``
    The OBEX over TCP listener of the server role (phones and SyncML
    clients that speak OBEX over a network): ``enabled`` (default false),
    ``host`` (127.0.0.1), ``port`` (6500), ``idle_timeout`` (seconds without
    a byte from the peer before the connection is dropped, 120).
``[bluetooth]``
    The SyncML Server service phones connect to over Bluetooth (through
    BlueZ): ``enabled`` (default true; without BlueZ the daemon says so once
    and registers when it appears), ``channel`` (the RFCOMM channel in our SDP
    record, 1-30, default 26), ``require_authorization`` (ask BlueZ's agent
    before accepting a paired phone that is not trusted, default true).
``[accounts]``
    ``<user> = "<password>"``: who may sync with our server role.
``[devices.<name>]``
    A phone the daemon (``syncmld run``) syncs with: ``address`` (its
    Bluetooth address) and/or ``dev_id`` (the SyncML device id it sends),
    ``transport`` (``"bluetooth"``, default with an address, or
    ``"obex-tcp"`` with ``host`` and ``port``), ``stores`` (a table: local
    store name -> the phone's database name), ``mode`` (default
    ``"two-way"``), ``auto_sync`` (sync when it connects, default true),
    ``settle_delay`` (seconds to wait after it connects, default 5),
    ``min_interval`` (seconds between automatic syncs, default 300),
    ``conflict_policy`` (``"merge"``, ``"phone-wins"``, ``"desktop-wins"``,
    ``"keep-both"``), ``max_delete_share`` (the mass-deletion threshold,
    0..1, default 0.5).

Paths may use ``~``, ``$XDG_DATA_HOME``, ``$XDG_CONFIG_HOME``,
``$XDG_STATE_HOME`` (each with its XDG default when unset) and other
environment variables; relative paths are relative to the file's folder.

Every problem raises :class:`ConfigError` naming the file, the key and what
is wrong, e.g. ``syncmld.toml: servers.work.sync[0].mode: 'twoway' is not
one of two-way, slow, ...``.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from syncmld.agent import AgentLoadError, AgentStore, load_agent, resolve_agent
from syncmld.engine.client import ClientConfig, ClientStore
from syncmld.engine.decide import Guard, Policy
from syncmld.engine.server import ServerConfig
from syncmld.engine.session import AuthMode, Datastore
from syncmld.engine.store import MemoryStore, Store
from syncmld.errors import UserError
from syncmld.protocol.codec import Encoding
from syncmld.protocol.codes import SyncMode
from syncmld.stores.vdir import KINDS, VdirStore
from syncmld.transports.bluetooth import DEFAULT_CHANNEL
from syncmld.transports.http import (
    DEFAULT_CLIENT_TIMEOUT,
    DEFAULT_HTTP_PORT,
    DEFAULT_MAX_REQUEST_SIZE,
    DEFAULT_SESSION_TIMEOUT,
)
from syncmld.transports.obex import DEFAULT_IDLE_TIMEOUT, DEFAULT_OBEX_PORT

if TYPE_CHECKING:
    from syncmld.engine.items import ItemCodec
    from syncmld.engine.store import ContentType
    from syncmld.formats.codec import FormatCodec
    from syncmld.protocol.devinf import DevInf

STORE_TYPES = ("vdir", "memory", "agent")
STORE_KINDS = tuple(KINDS)
CLIENT_AUTH = ("basic", "md5")
SERVER_AUTH = ("none", "basic", "md5")
ENCODINGS = {"xml": Encoding.XML, "wbxml": Encoding.WBXML}
VERSIONS = ("1.1", "1.2")
MODES = tuple(m.value for m in SyncMode)


def default_url() -> str:
    """The default state database (see :func:`syncmld.state.repository.default_url`)."""
    from syncmld.state.repository import default_url as url  # noqa: PLC0415 (SQLAlchemy)

    return url()


class _DeferredCodec:
    """A :class:`~syncmld.formats.codec.FormatCodec` made when a session first uses it.

    The format converters (icalendar, timezone data, ...) are imported then,
    not when the configuration is turned into a server: a daemon waiting for
    its first peer starts faster and smaller.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._codec: FormatCodec | None = None

    @property
    def codec(self) -> FormatCodec:
        """The codec itself."""
        if self._codec is None:
            from syncmld.formats.codec import FormatCodec  # noqa: PLC0415

            self._codec = FormatCodec(self.kind)
        return self._codec

    @property
    def content_types(self) -> tuple[ContentType, ...]:
        """See :attr:`FormatCodec.content_types`."""
        return self.codec.content_types

    def for_peer(self, devinf: DevInf | None, remote_uri: str) -> FormatCodec:
        """See :meth:`FormatCodec.for_peer`."""
        return self.codec.for_peer(devinf, remote_uri)

    def to_local(self, data: str, content_type: str | None) -> str:
        """See :meth:`FormatCodec.to_local`."""
        return self.codec.to_local(data, content_type)

    def to_remote(self, data: str, accepted: tuple[ContentType, ...]) -> tuple[str, ContentType]:
        """See :meth:`FormatCodec.to_remote`."""
        return self.codec.to_remote(data, accepted)

    def digest(self, data: str) -> str:
        """See :meth:`FormatCodec.digest`."""
        return self.codec.digest(data)

    def uid(self, data: str) -> str | None:
        """See :meth:`FormatCodec.uid`."""
        return self.codec.uid(data)

    def merge(self, local: str, remote: str) -> str:
        """See :meth:`FormatCodec.merge`."""
        return self.codec.merge(local, remote)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.codec, name)


class ConfigError(UserError):
    """The configuration file is missing, unreadable or wrong (the message says where)."""


# --------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreConfig:
    """One ``[stores.<name>]`` table.

    Attributes:
        name: the datastore's name (what peers address).
        type: ``"vdir"``, ``"memory"`` or ``"agent"``.
        kind: one of :data:`syncmld.stores.vdir.KINDS` (``""`` for an agent).
        path: the vdir folder (``None`` for other stores).
        color: the ``color`` of a vdir folder syncmld creates.
        agent, options: the agent's import path and constructor arguments.
        display_name: shown to peers and written to a new vdir's ``displayname``.
        aliases: other names peers may use for it (``Contacts``, ``card``...).
    """

    name: str
    type: str
    kind: str
    path: Path | None = None
    display_name: str | None = None
    aliases: tuple[str, ...] = ()
    color: str | None = None
    agent: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The file this came from (for error messages).
    source: str = "<config>"

    def open(self) -> Store:
        """The store itself (a vdir folder is created when missing).

        Raises:
            StoreError: the folder cannot be created.
            ConfigError: the agent cannot be loaded or refuses its options.
        """
        if self.type == "agent":
            assert self.agent is not None
            try:
                return AgentStore(load_agent(self.agent, self.options), name=self.name)
            except (AgentLoadError, ValueError) as exc:
                raise ConfigError(f"{self.source}: {_key('stores', self.name)}: {exc}") from None
        content_types, _ = KINDS[self.kind]
        if self.type == "memory":
            return MemoryStore(content_types=content_types)
        assert self.path is not None
        return VdirStore.of_kind(
            self.path, self.kind, display_name=self.display_name or self.name, color=self.color
        )

    def datastore(self, store: Store, *, defer_codec: bool = False) -> Datastore:
        """The engine's view of this store.

        ``defer_codec``: make the format codec when a session first uses it
        (the converters are not imported before).
        """
        # Built-in stores hold desktop formats: convert what peers speak.
        codec: ItemCodec | None = None
        if self.type in ("vdir", "memory"):
            if defer_codec:
                codec = _DeferredCodec(self.kind)
            else:
                from syncmld.formats.codec import FormatCodec  # noqa: PLC0415

                codec = FormatCodec(self.kind)
        return Datastore(
            name=self.name,
            store=store,
            codec=codec,
            aliases=self.aliases,
            display_name=self.display_name,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncPairConfig:
    """One ``[[servers.<name>.sync]]`` table: a local store and a remote database."""

    local: str
    remote: str
    mode: SyncMode = SyncMode.TWO_WAY


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteServerConfig:
    """One ``[servers.<name>]`` table: a SyncML server we sync with (client role).

    Attributes:
        name: the table's name (``syncmld sync <name>``).
        url: where the first message goes.
        user, password, password_file: credentials; the password is read
            from ``password_file`` when the session starts (:meth:`read_password`).
        auth: ``"basic"`` or ``"md5"``.
        encoding, version: what we speak.
        device_id: our SyncML device id towards this server.
        timeout: seconds to wait for each HTTP answer.
        ca_file: extra CA certificates (PEM) to trust for this server.
        sync: the datastore pairs.
    """

    name: str
    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    auth: str = "basic"
    encoding: Encoding = Encoding.XML
    version: str = "1.2"
    device_id: str
    timeout: float = DEFAULT_CLIENT_TIMEOUT
    ca_file: Path | None = None
    sync: tuple[SyncPairConfig, ...] = ()
    #: The file this came from (for error messages).
    source: str = "<config>"

    def read_password(self) -> str | None:
        """The password: ``password``, else the first line of ``password_file``.

        Raises:
            ConfigError: the password file cannot be read.
        """
        if self.password is not None or self.password_file is None:
            return self.password
        try:
            text = self.password_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{self.source}: {_key('servers', self.name, 'password_file')}: "
                f"cannot read {self.password_file}: {exc.strerror or exc}"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(
                f"{self.source}: {_key('servers', self.name, 'password_file')}: "
                f"{self.password_file} is not UTF-8 text"
            ) from None
        lines = text.splitlines()
        return lines[0] if lines else ""


#: Transports a PC-started sync with a phone can use.
DEVICE_TRANSPORTS = ("bluetooth", "obex-tcp")
CONFLICT_POLICIES = tuple(p.value for p in Policy)
_BT_ADDRESS = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceConfig:
    """One ``[devices.<name>]`` table: a phone the daemon syncs with.

    Attributes:
        name: the table's name (the D-Bus device object's name).
        address: the Bluetooth address (upper case), if any.
        dev_id: the SyncML device id the phone identifies with, if known.
        transport: how a PC-started sync reaches it: ``"bluetooth"``,
            ``"obex-tcp"``, or ``None`` (the phone only syncs by itself).
        host, port: the phone's OBEX/TCP address (``"obex-tcp"``).
        stores: local store name -> the phone's database name.
        mode: the sync mode of a sync nobody asked a mode for.
        auto_sync: sync when the phone connects over Bluetooth.
        settle_delay: seconds to wait after it connects.
        min_interval: seconds that must pass between two automatic syncs.
        conflict_policy: how an item both sides changed is resolved.
        max_delete_share: the mass-deletion guard's threshold.
    """

    name: str
    address: str | None = None
    dev_id: str | None = None
    transport: str | None = None
    host: str | None = None
    port: int | None = None
    stores: Mapping[str, str] = field(default_factory=dict)
    mode: SyncMode = SyncMode.TWO_WAY
    auto_sync: bool = True
    settle_delay: float = 5.0
    min_interval: float = 300.0
    conflict_policy: Policy = Policy.MERGE
    max_delete_share: float = 0.5

    @property
    def guard(self) -> Guard:
        """The mass-deletion guard for this phone's sessions."""
        return Guard(max_delete_share=self.max_delete_share)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    """The ``[http]`` table: the server role's HTTP listener."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = DEFAULT_HTTP_PORT
    auth: str = "none"
    session_timeout: float = DEFAULT_SESSION_TIMEOUT
    max_request_size: int = DEFAULT_MAX_REQUEST_SIZE
    public_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ObexConfig:
    """The ``[obex]`` table: the server role's OBEX over TCP listener."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = DEFAULT_OBEX_PORT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class BluetoothConfig:
    """The ``[bluetooth]`` table: the SyncML Server service registered with BlueZ."""

    enabled: bool = True
    channel: int = DEFAULT_CHANNEL
    require_authorization: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """A whole configuration file.

    Attributes:
        path: the file it was read from (``None``: built in code).
        state_url: the state database URL.
        stores: ``[stores.*]`` by name, in file order.
        servers: ``[servers.*]`` by name.
        http: the ``[http]`` table.
        obex: the ``[obex]`` table.
        bluetooth: the ``[bluetooth]`` table.
        accounts: user name -> password for the server role.
        devices: ``[devices.*]`` by name, in file order.
    """

    path: Path | None = None
    state_url: str = field(default_factory=default_url)
    stores: Mapping[str, StoreConfig] = field(default_factory=dict)
    servers: Mapping[str, RemoteServerConfig] = field(default_factory=dict)
    http: HttpConfig = field(default_factory=HttpConfig)
    obex: ObexConfig = field(default_factory=ObexConfig)
    bluetooth: BluetoothConfig = field(default_factory=BluetoothConfig)
    accounts: Mapping[str, str] = field(default_factory=dict, repr=False)
    devices: Mapping[str, DeviceConfig] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The file name for messages."""
        return str(self.path) if self.path is not None else "<config>"

    def server(self, name: str) -> RemoteServerConfig:
        """The ``[servers.<name>]`` table.

        Raises:
            ConfigError: there is none of that name.
        """
        try:
            return self.servers[name]
        except KeyError:
            known = ", ".join(self.servers) or "none"
            raise ConfigError(
                f"{self.source}: no server named {name!r} (defined: {known})"
            ) from None

    def server_config(
        self, stores: Mapping[str, Store], *, defer_codecs: bool = False
    ) -> ServerConfig:
        """The engine configuration of the server role, offering ``stores`` (by name).

        ``defer_codecs``: see :meth:`StoreConfig.datastore`.
        """
        return ServerConfig(
            datastores=tuple(
                self.stores[name].datastore(s, defer_codec=defer_codecs)
                for name, s in stores.items()
            ),
            auth=AuthMode(self.http.auth),
            passwords=dict(self.accounts),
        )


def client_config(
    server: RemoteServerConfig,
    stores: Mapping[str, Store],
    config: Config,
    *,
    password: str | None,
    mode: SyncMode | None = None,
) -> ClientConfig:
    """The engine configuration of one client session with ``server``.

    Args:
        server: the server table.
        stores: the opened local stores, by name; only pairs whose local store
            is among them are synced.
        config: the whole configuration (for the store tables).
        password: the password (from :meth:`RemoteServerConfig.read_password`).
        mode: overrides every pair's mode.
    """
    pairs = tuple(
        ClientStore(
            datastore=config.stores[p.local].datastore(stores[p.local]),
            remote_uri=p.remote,
            mode=mode or p.mode,
        )
        for p in server.sync
        if p.local in stores
    )
    return ClientConfig(
        url=server.url,
        dev_id=server.device_id,
        stores=pairs,
        user=server.user,
        password=password,
        auth=server.auth,
        version=server.version,
        encoding=server.encoding,
    )


# --------------------------------------------------------------------------- paths


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/syncmld/syncmld.toml`` (``~/.config`` by default)."""
    return Path(_xdg("XDG_CONFIG_HOME")) / "syncmld" / "syncmld.toml"


_XDG_DEFAULTS = {
    "XDG_DATA_HOME": (".local", "share"),
    "XDG_CONFIG_HOME": (".config",),
    "XDG_STATE_HOME": (".local", "state"),
}


def _xdg(var: str) -> str:
    value = os.environ.get(var)
    if value and os.path.isabs(value):
        return value
    return str(Path.home().joinpath(*_XDG_DEFAULTS[var]))


def expand(text: str) -> str:
    """Expand ``$XDG_*_HOME`` (with their defaults), other variables and ``~``."""
    for var in _XDG_DEFAULTS:
        if var in text:
            pattern = r"\$(?:\{" + var + r"\}|" + var + r"(?![A-Za-z0-9_]))"
            text = re.sub(pattern, _xdg(var).replace("\\", "\\\\"), text)
    return os.path.expanduser(os.path.expandvars(text))


def default_device_id() -> str:
    """A stable device id for this machine: ``syncmld-`` and 16 hex digits.

    Derived from ``/etc/machine-id`` (hashed, as systemd asks applications
    to do), else from the host name.
    """
    seed = ""
    for candidate in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            seed = Path(candidate).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if seed:
            break
    if not seed:
        seed = socket.gethostname()
    return "syncmld-" + hashlib.sha256(f"syncmld:{seed}".encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- loading

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    list: "an array",
    dict: "a table",
}


def _key(*parts: str) -> str:
    return ".".join(
        p if _BARE_KEY.fullmatch(p) else '"' + p.replace('"', '\\"') + '"' for p in parts
    )


def _type_name(value: object) -> str:
    for t, name in _TYPE_NAMES.items():
        if type(value) is t:
            return name
    return "a date/time" if value is not None else "nothing"


class _Reader:
    """Type-checked access to the parsed TOML, with errors naming file and key."""

    def __init__(self, source: str, base: Path | None) -> None:
        self.source = source
        self.base = base

    def fail(self, key: str, what: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {key}: {what}")

    def table(self, value: object, key: str, known: Sequence[str] | None) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, f"expected a table, got {_type_name(value)}")
        if known is not None:
            for k in value:
                if k not in known:
                    self.fail(
                        f"{key}.{_key(k)}" if key else _key(k),
                        f"unknown key (known: {', '.join(known)})",
                    )
        return value

    def string(
        self,
        table: Mapping[str, Any],
        key: str,
        name: str,
        *,
        required: bool = False,
        choices: Sequence[str] | None = None,
    ) -> str | None:
        if name not in table:
            if required:
                self.fail(f"{key}.{name}" if key else name, "missing")
            return None
        value = table[name]
        where = f"{key}.{name}" if key else name
        if not isinstance(value, str):
            self.fail(where, f"expected a string, got {_type_name(value)}")
        if choices is not None and value not in choices:
            self.fail(where, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def number(
        self,
        table: Mapping[str, Any],
        key: str,
        name: str,
        *,
        integer: bool,
        low: float,
        high: float | None = None,
    ) -> float | None:
        if name not in table:
            return None
        value = table[name]
        where = f"{key}.{name}"
        ok = type(value) is int or (not integer and type(value) is float)
        if not ok:
            want = "an integer" if integer else "a number"
            self.fail(where, f"expected {want}, got {_type_name(value)}")
        if value < low or (high is not None and value > high):
            limits = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
            self.fail(where, f"{value} is not {limits}")
        return float(value)

    def strings(self, table: Mapping[str, Any], key: str, name: str) -> tuple[str, ...]:
        if name not in table:
            return ()
        value = table[name]
        where = f"{key}.{name}"
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(where, f"expected an array of strings, got {_type_name(value)}")
        return tuple(value)

    def path(self, text: str) -> Path:
        p = Path(expand(text))
        if not p.is_absolute() and self.base is not None:
            p = self.base / p
        return p


_TOP = ("state", "stores", "servers", "http", "obex", "bluetooth", "accounts", "devices")
_STATE = ("url",)
_STORE = ("type", "kind", "path", "display_name", "aliases", "color", "agent", "options")
_SERVER = (
    "url",
    "user",
    "password",
    "password_file",
    "auth",
    "encoding",
    "version",
    "device_id",
    "timeout",
    "ca_file",
    "sync",
)
_SYNC = ("local", "remote", "mode")
_HTTP = ("enabled", "host", "port", "auth", "session_timeout", "max_request_size", "public_url")
_BLUETOOTH = ("enabled", "channel", "require_authorization")
_OBEX = ("enabled", "host", "port", "idle_timeout")
_DEVICE = (
    "address",
    "dev_id",
    "transport",
    "host",
    "port",
    "stores",
    "mode",
    "auto_sync",
    "settle_delay",
    "min_interval",
    "conflict_policy",
    "max_delete_share",
)


def load(path: str | os.PathLike[str]) -> Config:
    """Read and check a configuration file.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or a key is
            unknown, of the wrong type, missing or inconsistent.
    """
    file = Path(path)
    source = str(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    return parse(data, source=source, base=file.resolve().parent, path=file)


def parse(
    data: Mapping[str, Any],
    *,
    source: str = "<config>",
    base: Path | None = None,
    path: Path | None = None,
) -> Config:
    """Check parsed TOML data (what :func:`load` does after reading the file).

    Raises:
        ConfigError: see :func:`load`.
    """
    r = _Reader(source, base)
    top = r.table(dict(data), "", _TOP)

    state = r.table(top.get("state", {}), "state", _STATE)
    url = r.string(state, "state", "url")
    state_url = expand(url) if url is not None else default_url()

    stores: dict[str, StoreConfig] = {}
    for name, value in r.table(top.get("stores", {}), "stores", None).items():
        stores[name] = _store(r, name, value)

    servers: dict[str, RemoteServerConfig] = {}
    for name, value in r.table(top.get("servers", {}), "servers", None).items():
        servers[name] = _server(r, name, value, stores)

    accounts: dict[str, str] = {}
    for user, password in r.table(top.get("accounts", {}), "accounts", None).items():
        if not isinstance(password, str):
            r.fail(_key("accounts", user), f"expected a string, got {_type_name(password)}")
        accounts[user] = password

    http = _http(r, r.table(top.get("http", {}), "http", _HTTP), accounts)
    obex = _obex(r, r.table(top.get("obex", {}), "obex", _OBEX))
    bluetooth = _bluetooth(r, r.table(top.get("bluetooth", {}), "bluetooth", _BLUETOOTH))

    devices: dict[str, DeviceConfig] = {}
    for name, value in r.table(top.get("devices", {}), "devices", None).items():
        devices[name] = _device(r, name, value, stores)
    return Config(
        path=path,
        state_url=state_url,
        stores=stores,
        servers=servers,
        http=http,
        obex=obex,
        bluetooth=bluetooth,
        accounts=accounts,
        devices=devices,
    )


def _device(
    r: _Reader, name: str, value: object, stores: Mapping[str, StoreConfig]
) -> DeviceConfig:
    key = _key("devices", name)
    t = r.table(value, key, _DEVICE)
    if not name.strip():
        r.fail(key, "a device name must not be empty")
    address = r.string(t, key, "address")
    if address is not None and not _BT_ADDRESS.fullmatch(address):
        r.fail(f"{key}.address", f"{address!r} is not a Bluetooth address (AA:BB:CC:DD:EE:FF)")
    host = r.string(t, key, "host")
    port = r.number(t, key, "port", integer=True, low=1, high=65535)
    default_transport = "bluetooth" if address else "obex-tcp" if host else None
    transport = r.string(t, key, "transport", choices=DEVICE_TRANSPORTS) or default_transport
    if transport == "bluetooth" and address is None:
        r.fail(f"{key}.address", "missing (transport is bluetooth)")
    if transport == "obex-tcp" and (host is None or port is None):
        r.fail(f"{key}.{'host' if host is None else 'port'}", "missing (transport is obex-tcp)")
    dev_id = r.string(t, key, "dev_id")
    if address is None and dev_id is None and host is None:
        r.fail(key, "give an address, a dev_id or a host to recognise the phone by")
    pairs: dict[str, str] = {}
    stores_key = f"{key}.stores"
    for local, remote in r.table(t.get("stores", {}), stores_key, None).items():
        if local not in stores:
            known = ", ".join(stores) or "none"
            r.fail(f"{stores_key}.{_key(local)}", f"no store named {local!r} (defined: {known})")
        if not isinstance(remote, str) or not remote.strip():
            r.fail(f"{stores_key}.{_key(local)}", "expected the phone's database name (a string)")
        pairs[local] = remote
    if not pairs and transport is not None:
        r.fail(stores_key, "missing: name the phone's database for each local store")
    auto = t.get("auto_sync", True)
    if type(auto) is not bool:
        r.fail(f"{key}.auto_sync", f"expected a boolean, got {_type_name(auto)}")
    settle = r.number(t, key, "settle_delay", integer=False, low=0, high=3600)
    interval = r.number(t, key, "min_interval", integer=False, low=0)
    share = r.number(t, key, "max_delete_share", integer=False, low=0, high=1)
    policy = r.string(t, key, "conflict_policy", choices=CONFLICT_POLICIES) or "merge"
    mode = r.string(t, key, "mode", choices=MODES) or SyncMode.TWO_WAY.value
    return DeviceConfig(
        name=name,
        address=address.upper() if address is not None else None,
        dev_id=dev_id,
        transport=transport,
        host=host,
        port=int(port) if port is not None else None,
        stores=pairs,
        mode=SyncMode(mode),
        auto_sync=auto,
        settle_delay=settle if settle is not None else 5.0,
        min_interval=interval if interval is not None else 300.0,
        conflict_policy=Policy(policy),
        max_delete_share=share if share is not None else 0.5,
    )


def _store(r: _Reader, name: str, value: object) -> StoreConfig:
    key = _key("stores", name)
    t = r.table(value, key, _STORE)
    if not name.strip() or "/" in name:
        r.fail(key, "a store name must not be empty or contain '/'")
    stype = r.string(t, key, "type", choices=STORE_TYPES) or "vdir"
    agent = r.string(t, key, "agent", required=stype == "agent")
    options: dict[str, Any] = {}
    if stype == "agent":
        assert agent is not None
        for other in ("kind", "color"):
            if other in t:
                r.fail(f"{key}.{other}", "an agent store declares its own content types")
        try:
            resolve_agent(agent)
        except AgentLoadError as exc:
            r.fail(f"{key}.agent", str(exc))
        options = r.table(t.get("options", {}), f"{key}.options", None)
        kind = ""
    else:
        for other in ("agent", "options"):
            if other in t:
                r.fail(f"{key}.{other}", 'only a store of type = "agent" has this key')
        kind = r.string(t, key, "kind", required=True, choices=STORE_KINDS) or ""
    color = r.string(t, key, "color")
    if color is not None and not re.fullmatch(r"#[0-9A-Fa-f]{6}", color):
        r.fail(f"{key}.color", f"{color!r} is not a color like '#3465a4'")
    path_text = r.string(t, key, "path")
    path: Path | None = None
    if stype == "vdir":
        path = (
            r.path(path_text)
            if path_text is not None
            else Path(_xdg("XDG_DATA_HOME")) / "syncmld" / name
        )
    elif path_text is not None:
        r.fail(f"{key}.path", "only a vdir store has a path")
    return StoreConfig(
        name=name,
        type=stype,
        kind=kind,
        path=path,
        display_name=r.string(t, key, "display_name"),
        aliases=r.strings(t, key, "aliases"),
        color=color,
        agent=agent,
        options=options,
        source=r.source,
    )


def _server(
    r: _Reader, name: str, value: object, stores: Mapping[str, StoreConfig]
) -> RemoteServerConfig:
    key = _key("servers", name)
    t = r.table(value, key, _SERVER)
    url = r.string(t, key, "url", required=True)
    assert url is not None
    if not re.match(r"https?://[^/\s]+", url, re.IGNORECASE):
        r.fail(f"{key}.url", f"{url!r} is not an http:// or https:// URL")
    user = r.string(t, key, "user")
    password = r.string(t, key, "password")
    password_file = r.string(t, key, "password_file")
    if password is not None and password_file is not None:
        r.fail(f"{key}.password_file", "give either password or password_file, not both")
    if (password is not None or password_file is not None) and user is None:
        r.fail(f"{key}.user", "missing (a password is given)")
    timeout = r.number(t, key, "timeout", integer=False, low=1)
    ca_file = r.string(t, key, "ca_file")

    sync_value = t.get("sync")
    if sync_value is None:
        r.fail(f"{key}.sync", "missing: add a [[" + f"{key}.sync" + "]] table per datastore")
    if not isinstance(sync_value, list) or not sync_value:
        r.fail(f"{key}.sync", "expected one or more [[" + f"{key}.sync" + "]] tables")
    pairs: list[SyncPairConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(sync_value):
        where = f"{key}.sync[{i}]"
        st = r.table(item, where, _SYNC)
        local = r.string(st, where, "local", required=True)
        remote = r.string(st, where, "remote", required=True)
        mode = r.string(st, where, "mode", choices=MODES) or SyncMode.TWO_WAY.value
        assert local is not None and remote is not None
        if local not in stores:
            known = ", ".join(stores) or "none"
            r.fail(f"{where}.local", f"no store named {local!r} (defined: {known})")
        if local in seen:
            r.fail(f"{where}.local", f"store {local!r} is already synced with this server")
        seen.add(local)
        pairs.append(SyncPairConfig(local=local, remote=remote, mode=SyncMode(mode)))

    return RemoteServerConfig(
        name=name,
        url=url,
        user=user,
        password=password,
        password_file=r.path(password_file) if password_file is not None else None,
        auth=r.string(t, key, "auth", choices=CLIENT_AUTH) or "basic",
        encoding=ENCODINGS[r.string(t, key, "encoding", choices=tuple(ENCODINGS)) or "xml"],
        version=r.string(t, key, "version", choices=VERSIONS) or "1.2",
        device_id=r.string(t, key, "device_id") or default_device_id(),
        timeout=timeout if timeout is not None else DEFAULT_CLIENT_TIMEOUT,
        ca_file=r.path(ca_file) if ca_file is not None else None,
        sync=tuple(pairs),
        source=r.source,
    )


def _http(r: _Reader, t: Mapping[str, Any], accounts: Mapping[str, str]) -> HttpConfig:
    auth = r.string(t, "http", "auth", choices=SERVER_AUTH) or ("basic" if accounts else "none")
    if auth != "none" and not accounts:
        r.fail("http.auth", f"{auth!r} needs at least one user in [accounts]")
    port = r.number(t, "http", "port", integer=True, low=0, high=65535)
    timeout = r.number(t, "http", "session_timeout", integer=False, low=1)
    size = r.number(t, "http", "max_request_size", integer=True, low=1024)
    public_url = r.string(t, "http", "public_url")
    if public_url is not None and not re.match(r"https?://[^/\s]+", public_url, re.IGNORECASE):
        r.fail("http.public_url", f"{public_url!r} is not an http:// or https:// URL")
    enabled = t.get("enabled", True)
    if not isinstance(enabled, bool):
        r.fail("http.enabled", f"expected true or false, got {_type_name(enabled)}")
    return HttpConfig(
        enabled=enabled,
        host=r.string(t, "http", "host") or "127.0.0.1",
        port=int(port) if port is not None else DEFAULT_HTTP_PORT,
        auth=auth,
        session_timeout=timeout if timeout is not None else DEFAULT_SESSION_TIMEOUT,
        max_request_size=int(size) if size is not None else DEFAULT_MAX_REQUEST_SIZE,
        public_url=public_url,
    )


def _obex(r: _Reader, t: Mapping[str, Any]) -> ObexConfig:
    enabled = t.get("enabled", False)
    if not isinstance(enabled, bool):
        r.fail("obex.enabled", f"expected true or false, got {_type_name(enabled)}")
    port = r.number(t, "obex", "port", integer=True, low=0, high=65535)
    timeout = r.number(t, "obex", "idle_timeout", integer=False, low=1)
    return ObexConfig(
        enabled=enabled,
        host=r.string(t, "obex", "host") or "127.0.0.1",
        port=int(port) if port is not None else DEFAULT_OBEX_PORT,
        idle_timeout=timeout if timeout is not None else DEFAULT_IDLE_TIMEOUT,
    )


def _bluetooth(r: _Reader, t: Mapping[str, Any]) -> BluetoothConfig:
    flags = {}
    for name, default in (("enabled", True), ("require_authorization", True)):
        value = t.get(name, default)
        if not isinstance(value, bool):
            r.fail(f"bluetooth.{name}", f"expected true or false, got {_type_name(value)}")
        flags[name] = value
    channel = r.number(t, "bluetooth", "channel", integer=True, low=1, high=30)
    return BluetoothConfig(
        enabled=flags["enabled"],
        channel=int(channel) if channel is not None else DEFAULT_CHANNEL,
        require_authorization=flags["require_authorization"],
    )


__all__ = [
    "BluetoothConfig",
    "Config",
    "ConfigError",
    "DeviceConfig",
    "HttpConfig",
    "ObexConfig",
    "RemoteServerConfig",
    "StoreConfig",
    "SyncPairConfig",
    "client_config",
    "default_config_path",
    "default_device_id",
    "expand",
    "load",
    "parse",
]
