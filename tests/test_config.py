"""The configuration file: the shipped example, defaults, and every kind of error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from syncmld.config import (
    Config,
    ConfigError,
    client_config,
    default_config_path,
    default_device_id,
    load,
)
from syncmld.engine.session import AuthMode
from syncmld.engine.store import ICAL_20, VCARD_30, MemoryStore
from syncmld.protocol.codec import Encoding
from syncmld.protocol.codes import SyncMode
from syncmld.stores.vdir import VdirStore

EXAMPLE = Path(__file__).parent.parent / "config" / "syncmld.toml"


@pytest.fixture(autouse=True)
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    return home


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncmld.toml"
    path.write_text(text, encoding="utf-8")
    return path


SERVER = """
[stores.contacts]
kind = "contacts"

[servers.work]
url = "https://sync.example.org/sync"
user = "me"
password = "pw"

[[servers.work.sync]]
local = "contacts"
remote = "card"
"""


def test_example_config_loads_and_works_as_is(xdg: Path, tmp_path: Path) -> None:
    config = load(EXAMPLE)
    data = xdg / ".local" / "share" / "syncmld"
    assert list(config.stores) == ["contacts", "calendar"]
    contacts, calendar = config.stores["contacts"], config.stores["calendar"]
    assert (contacts.type, contacts.kind, contacts.path) == ("vdir", "contacts", data / "contacts")
    assert (calendar.type, calendar.kind, calendar.path) == ("vdir", "calendar", data / "calendar")
    assert "card" in contacts.aliases
    assert config.state_url == f"sqlite:///{xdg / '.local' / 'state' / 'syncmld' / 'state.db'}"
    assert (config.http.host, config.http.port, config.http.auth) == ("127.0.0.1", 8080, "basic")
    assert config.accounts == {"phone": "change-me"}
    assert config.servers == {}

    stores = {name: sc.open() for name, sc in config.stores.items()}
    assert isinstance(stores["contacts"], VdirStore)
    assert stores["contacts"].content_types == (VCARD_30,)
    assert stores["calendar"].content_types == (ICAL_20,)
    assert (data / "contacts" / "displayname").read_text(encoding="utf-8") == "Contacts\n"
    server = config.server_config(stores)
    assert server.auth is AuthMode.BASIC
    assert server.passwords == {"phone": "change-me"}
    assert server.datastore("Contacts") is not None and server.datastore("card") is not None


def test_example_commented_server_is_valid(tmp_path: Path) -> None:
    """The commented-out [servers.funambol] works once uncommented."""
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("# [servers.funambol]")
    block = "\n".join(re.sub(r"^# ?", "", line) for line in text[start:].splitlines())
    path = write(tmp_path, text[:start] + block)
    config = load(path)
    server = config.server("funambol")
    assert server.url == "https://my.funambol.com/sync"
    assert server.password_file == Path.home() / ".config" / "syncmld" / "funambol.password"
    assert [(p.local, p.remote, p.mode) for p in server.sync] == [
        ("contacts", "card", SyncMode.TWO_WAY),
        ("calendar", "event", SyncMode.TWO_WAY),
    ]


def test_server_table_and_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, SERVER))
    server = config.server("work")
    assert server.auth == "basic"
    assert server.encoding is Encoding.XML
    assert server.version == "1.2"
    assert server.device_id == default_device_id()
    assert re.fullmatch(r"syncmld-[0-9a-f]{16}", server.device_id)
    assert server.read_password() == "pw"
    assert config.http.auth == "none"  # no accounts

    stores = {"contacts": MemoryStore(content_types=(VCARD_30,))}
    engine = client_config(server, stores, config, password="pw", mode=SyncMode.SLOW)
    assert engine.url == server.url
    assert engine.dev_id == server.device_id
    assert [(s.datastore.name, s.remote_uri, s.mode) for s in engine.stores] == [
        ("contacts", "card", SyncMode.SLOW)
    ]


def test_paths_are_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("MYDIR", str(tmp_path / "mine"))
    config = load(
        write(
            tmp_path,
            """
[stores.a]
kind = "contacts"
path = "$XDG_DATA_HOME/a"
[stores.b]
kind = "contacts"
path = "${XDG_DATA_HOME}/b"
[stores.c]
kind = "calendar"
path = "~/c"
[stores.d]
kind = "calendar"
path = "relative/d"
[stores.e]
kind = "calendar"
path = "$MYDIR/e"
[stores.f]
kind = "contacts"
[stores.m]
type = "memory"
kind = "contacts"
""",
        )
    )
    paths = {name: s.path for name, s in config.stores.items()}
    assert paths == {
        "a": tmp_path / "data" / "a",
        "b": tmp_path / "data" / "b",
        "c": Path.home() / "c",
        "d": tmp_path / "relative" / "d",
        "e": tmp_path / "mine" / "e",
        "f": tmp_path / "data" / "syncmld" / "f",
        "m": None,
    }
    assert isinstance(config.stores["m"].open(), MemoryStore)


def test_password_file(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n", encoding="utf-8")
    text = SERVER.replace('password = "pw"', 'password_file = "pw"')
    server = load(write(tmp_path, text)).server("work")
    assert server.read_password() == "s3cret"
    (tmp_path / "pw").unlink()
    with pytest.raises(ConfigError) as err:
        server.read_password()
    assert str(err.value) == (
        f"{tmp_path / 'syncmld.toml'}: servers.work.password_file: "
        f"cannot read {tmp_path / 'pw'}: No such file or directory"
    )


def test_default_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_config_path() == Path.home() / ".config" / "syncmld" / "syncmld.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_config_path() == tmp_path / "syncmld" / "syncmld.toml"


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    config = load(write(tmp_path, ""))
    assert isinstance(config, Config)
    assert config.stores == {} and config.servers == {}
    assert config.http.port == 8080


# ------------------------------------------------------------------ errors

ERRORS = [
    pytest.param(
        SERVER + "\n[stores.contacts2]\nkind = 'contacts'\npth = 'x'\n",
        "stores.contacts2.pth: unknown key (known: type, kind, path, display_name, aliases, color, "
        "agent, options)",
        id="unknown-key",
    ),
    pytest.param("colour = 'red'\n", "colour: unknown key", id="unknown-top-level-key"),
    pytest.param(
        "[http]\nport = '8080'\n", "http.port: expected an integer, got a string", id="wrong-type"
    ),
    pytest.param(
        "[http]\nport = 70000\n", "http.port: 70000 is not between 0 and 65535", id="out-of-range"
    ),
    pytest.param("stores = 3\n", "stores: expected a table, got an integer", id="not-a-table"),
    pytest.param(
        SERVER.replace('url = "https://sync.example.org/sync"\n', ""),
        "servers.work.url: missing",
        id="missing-url",
    ),
    pytest.param(
        SERVER.replace("https://sync.example.org/sync", "ftp://x"),
        "servers.work.url: 'ftp://x' is not an http:// or https:// URL",
        id="bad-url",
    ),
    pytest.param(
        SERVER.replace('local = "contacts"', 'local = "kontakte"'),
        "servers.work.sync[0].local: no store named 'kontakte' (defined: contacts)",
        id="unknown-store",
    ),
    pytest.param(
        SERVER + 'mode = "twoway"\n',
        "servers.work.sync[0].mode: 'twoway' is not one of two-way, slow, one-way-from-client, "
        "refresh-from-client, one-way-from-server, refresh-from-server",
        id="bad-mode",
    ),
    pytest.param(
        SERVER + '[[servers.work.sync]]\nlocal = "contacts"\nremote = "x"\n',
        "servers.work.sync[1].local: store 'contacts' is already synced with this server",
        id="store-twice",
    ),
    pytest.param(
        SERVER.replace('[[servers.work.sync]]\nlocal = "contacts"\nremote = "card"\n', ""),
        "servers.work.sync: missing",
        id="no-sync",
    ),
    pytest.param(
        SERVER.replace('remote = "card"', ""),
        "servers.work.sync[0].remote: missing",
        id="missing-remote",
    ),
    pytest.param(
        SERVER.replace('user = "me"', 'user = "me"\nauth = "digest"'),
        "servers.work.auth: 'digest' is not one of basic, md5",
        id="bad-auth",
    ),
    pytest.param(
        SERVER.replace('user = "me"\n', ""),
        "servers.work.user: missing (a password is given)",
        id="password-without-user",
    ),
    pytest.param(
        SERVER.replace('password = "pw"', 'password = "pw"\npassword_file = "f"'),
        "servers.work.password_file: give either password or password_file, not both",
        id="both-passwords",
    ),
    pytest.param(
        SERVER.replace('user = "me"', 'user = "me"\nversion = 1.2'),
        "servers.work.version: expected a string, got a number",
        id="version-as-number",
    ),
    pytest.param("[stores.x]\ntype = 'vdir'\n", "stores.x.kind: missing", id="missing-kind"),
    pytest.param(
        "[stores.x]\nkind = 'memos'\n",
        "stores.x.kind: 'memos' is not one of contacts, calendar, events, tasks, notes",
        id="bad-kind",
    ),
    pytest.param(
        "[stores.x]\nkind = 'contacts'\ntype = 'caldav'\n",
        "stores.x.type: 'caldav' is not one of vdir, memory",
        id="bad-store-type",
    ),
    pytest.param(
        "[stores.x]\nkind = 'contacts'\naliases = 'card'\n",
        "stores.x.aliases: expected an array of strings, got a string",
        id="aliases-not-a-list",
    ),
    pytest.param(
        "[http]\nauth = 'md5'\n",
        "http.auth: 'md5' needs at least one user in [accounts]",
        id="auth-without-accounts",
    ),
    pytest.param(
        "[accounts]\nphone = 1234\n",
        "accounts.phone: expected a string, got an integer",
        id="numeric-password",
    ),
    pytest.param(
        '[stores."my store"]\nkind = "contacts"\ncolour = 1\n',
        'stores."my store".colour: unknown key',
        id="quoted-key",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: {message}")
    assert "\n" not in str(err.value)


def test_unknown_server(tmp_path: Path) -> None:
    path = write(tmp_path, SERVER)
    with pytest.raises(ConfigError, match=r"no server named 'home' \(defined: work\)"):
        load(path).server("home")


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[stores.contacts\nkind = 'contacts'\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: not valid TOML: ")
    assert "line 1" in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value) == f"{path}: cannot read: No such file or directory"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# K\xf6ln\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(path)
