"""The Agent plug-in API: loading from the configuration, and the adapter's error handling."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from syncmld.agent import (
    Agent,
    AgentLoadError,
    AgentStore,
    content_etag,
    load_agent,
    resolve_agent,
)
from syncmld.config import ConfigError, load
from syncmld.engine.store import (
    TEXT_PLAIN,
    VCARD_30,
    ContentType,
    ItemNotFound,
    ReadOnlyStore,
    StoreError,
)
from syncmld.library import SyncClient


class FolderAgent(Agent[str]):
    """One ``.note`` file per item, in a folder given as an option."""

    content_types = (ContentType("text/x-vnote", "1.1"), TEXT_PLAIN)

    def __init__(self, folder: str, greeting: str = "hello") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.greeting = greeting

    def list(self) -> Iterable[str]:
        return sorted(p.name for p in self.folder.glob("*.note"))

    def get(self, item_id: str) -> str:
        return (self.folder / item_id).read_text(encoding="utf-8")

    def add(self, item: str) -> str:
        name = f"{len(list(self.list())) + 1}.note"
        (self.folder / name).write_text(item, encoding="utf-8")
        return name

    def replace(self, item_id: str, item: str) -> None:
        path = self.folder / item_id
        if not path.exists():
            raise FileNotFoundError(path)
        path.write_text(item, encoding="utf-8")

    def delete(self, item_id: str) -> None:
        (self.folder / item_id).unlink()


class BrokenAgent(FolderAgent):
    """An agent with bugs: every read fails, dump returns bytes."""

    def get(self, item_id: str) -> str:
        raise RuntimeError("database is locked\nsecond line")


class BytesAgent(FolderAgent):
    def dump(self, item: str, content_type: ContentType) -> str:
        return item.encode()  # type: ignore[return-value]


class ReadOnlyAgent(FolderAgent):
    read_only = True


class NotAnAgent:
    pass


def write_config(tmp_path: Path, store_table: str) -> Path:
    path = tmp_path / "syncmld.toml"
    path.write_text(f"[stores.notes]\n{store_table}\n", encoding="utf-8")
    return path


def test_agent_from_config(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        'type = "agent"\nagent = "tests.stores.test_agent:FolderAgent"\n'
        f'options = {{ folder = "{tmp_path / "notes"}", greeting = "hi" }}\n',
    )
    config = load(path)
    store = config.stores["notes"].open()
    assert isinstance(store, AgentStore)
    assert isinstance(store.agent, FolderAgent) and store.agent.greeting == "hi"
    assert store.content_types[0] == ContentType("text/x-vnote", "1.1")
    item_id, etag = store.add("BEGIN:VNOTE\r\nBODY:x\r\nEND:VNOTE\r\n")
    assert (tmp_path / "notes" / item_id).exists()
    # The etag is that of what the agent holds (read_text folded the CRLFs).
    assert store.get(item_id) == ("BEGIN:VNOTE\nBODY:x\nEND:VNOTE\n", etag)
    assert etag == content_etag("BEGIN:VNOTE\nBODY:x\nEND:VNOTE\n")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            'type = "agent"\nagent = "no.such.module:Agent"',
            "stores.notes.agent: cannot import 'no.such.module'",
        ),
        (
            'type = "agent"\nagent = "tests.stores.test_agent"',
            "stores.notes.agent: 'tests.stores.test_agent' is not of the form",
        ),
        (
            'type = "agent"\nagent = "tests.stores.test_agent:Missing"',
            "stores.notes.agent: 'tests.stores.test_agent' has no 'Missing'",
        ),
        (
            'type = "agent"\nagent = "tests.stores.test_agent:NotAnAgent"',
            "stores.notes.agent: 'tests.stores.test_agent:NotAnAgent' is not a subclass",
        ),
        ('type = "agent"', "stores.notes.agent: missing"),
        (
            'type = "agent"\nagent = "tests.stores.test_agent:FolderAgent"\nkind = "contacts"',
            "stores.notes.kind: an agent store declares its own content types",
        ),
        (
            'type = "agent"\nagent = "tests.stores.test_agent:FolderAgent"\noptions = 3',
            "stores.notes.options: expected a table, got an integer",
        ),
        (
            'kind = "contacts"\nagent = "tests.stores.test_agent:FolderAgent"',
            'stores.notes.agent: only a store of type = "agent" has this key',
        ),
        ('kind = "events"\ncolor = "red"', "stores.notes.color: 'red' is not a color"),
    ],
)
def test_bad_agent_configuration(tmp_path: Path, table: str, message: str) -> None:
    path = write_config(tmp_path, table)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == f"{path}: {message}" or str(info.value).startswith(
        f"{path}: {message}"
    )


def test_options_the_agent_refuses(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        'type = "agent"\nagent = "tests.stores.test_agent:FolderAgent"\n'
        'options = { colour = "blue" }\n',
    )
    config = load(path)  # the class is found; the options are checked when it is built
    with pytest.raises(ConfigError) as info:
        config.stores["notes"].open()
    assert str(info.value).startswith(f"{path}: stores.notes: tests.stores.test_agent:FolderAgent")
    assert "colour" in str(info.value)


def test_resolve_and_load() -> None:
    assert resolve_agent("tests.stores.test_agent:FolderAgent") is FolderAgent
    with pytest.raises(AgentLoadError):
        load_agent("tests.stores.test_agent:FolderAgent", {})  # folder is required


def test_agent_errors_become_store_errors(tmp_path: Path) -> None:
    store = AgentStore(BrokenAgent(str(tmp_path)))
    (tmp_path / "1.note").write_text("x", encoding="utf-8")
    with pytest.raises(StoreError) as info:
        store.get("1.note")
    assert str(info.value) == "BrokenAgent: get failed: database is locked"
    assert info.value.status == 510


class BufferingAgent(FolderAgent):
    """Keeps new items in memory until flushed; flush fails when told to."""

    def __init__(self, folder: str) -> None:
        super().__init__(folder)
        self.buffer: dict[str, str] = {}
        self.fail: Exception | None = None

    def add(self, item: str) -> str:
        name = f"b{len(self.buffer) + 1}.note"
        self.buffer[name] = item
        return name

    def flush(self) -> None:
        if self.fail is not None:
            raise self.fail
        for name, item in self.buffer.items():
            (self.folder / name).write_text(item, encoding="utf-8")
        self.buffer.clear()


def test_flush_is_forwarded_to_the_agent(tmp_path: Path) -> None:
    agent = BufferingAgent(str(tmp_path))
    store = AgentStore(agent)
    store.add("one")
    assert list(tmp_path.iterdir()) == []
    store.flush()
    assert (tmp_path / "b1.note").read_text(encoding="utf-8") == "one"
    agent.fail = KeyError("journal")
    store.add("two")
    with pytest.raises(StoreError) as info:
        store.flush()
    assert str(info.value) == "BufferingAgent: flush failed: 'journal'"
    assert not (tmp_path / "b2.note").exists()
    # An agent without its own flush: the default does nothing, and says so by not failing.
    plain = AgentStore(FolderAgent(str(tmp_path / "plain")))
    plain.add("x")
    plain.flush()
    assert [p.name for p in (tmp_path / "plain").iterdir()] == ["1.note"]


def test_missing_items_from_file_agents(tmp_path: Path) -> None:
    store = AgentStore(FolderAgent(str(tmp_path)))
    with pytest.raises(ItemNotFound):
        store.get("nope.note")
    with pytest.raises(ItemNotFound):
        store.replace("nope.note", "x", etag=None)
    assert list(store.list()) == []


def test_dump_must_return_text(tmp_path: Path) -> None:
    store = AgentStore(BytesAgent(str(tmp_path)))
    (tmp_path / "1.note").write_text("text", encoding="utf-8")
    with pytest.raises(StoreError, match="dump returned bytes"):
        store.get("1.note")
    with pytest.raises(StoreError, match="dump returned bytes"):
        list(store.list())


def test_default_dump_refuses_objects() -> None:
    agent = FolderAgent.__new__(FolderAgent)
    with pytest.raises(TypeError, match=r"override Agent\.dump"):
        Agent.dump(agent, 42, TEXT_PLAIN)  # type: ignore[arg-type]


def test_read_only_agent_is_never_written(tmp_path: Path) -> None:
    (tmp_path / "1.note").write_text("kept", encoding="utf-8")
    store = AgentStore(ReadOnlyAgent(str(tmp_path)))
    assert store.read_only
    for write in (
        lambda: store.add("new"),
        lambda: store.replace("1.note", "changed", etag=None),
        lambda: store.delete("1.note", etag=None),
    ):
        with pytest.raises(ReadOnlyStore):
            write()
    assert [p.name for p in tmp_path.iterdir()] == ["1.note"]
    assert store.get("1.note")[0] == "kept"


def test_agent_without_content_types() -> None:
    class Empty(FolderAgent):
        content_types = ()

    with pytest.raises(ValueError, match="content_types is empty"):
        AgentStore(Empty.__new__(Empty))


def test_sync_client_misuse(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 's.db'}"
    with pytest.raises(ValueError, match="not an http"):
        SyncClient("ftp://x", state_url=state)
    with pytest.raises(ValueError, match="auth"):
        SyncClient("http://x", state_url=state, auth="digest")
    client = SyncClient("http://127.0.0.1:1/", state_url=state)
    with pytest.raises(ValueError, match="add at least one store"):
        client.sync()
    client.add_store("notes", FolderAgent(str(tmp_path / "n")), mode="slow")
    with pytest.raises(ValueError, match="already used"):
        client.add_store("notes", FolderAgent(str(tmp_path / "n")))
    with pytest.raises(ValueError):
        client.config("sideways")
    assert client.stores == ["notes"]
    assert client.device_id.startswith("syncmld-")
    assert client.device_id != SyncClient("http://x", state_url=state + "2").device_id
    cfg = client.config()
    assert cfg.stores[0].remote_uri == "notes" and cfg.stores[0].mode.value == "slow"
    assert cfg.stores[0].datastore.store.content_types[0] != VCARD_30


def test_unreachable_server_is_a_result_not_an_exception(tmp_path: Path) -> None:
    client = SyncClient("http://127.0.0.1:1/", state_url=f"sqlite:///{tmp_path / 's.db'}")
    client.add_store("notes", FolderAgent(str(tmp_path / "n")))
    result = client.sync()
    assert not result.ok and not result.completed
    assert result.message
    assert result.status != 200


def test_vdir_kind_and_color_from_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'kind = "tasks"\npath = "todo"\ncolor = "#aabbcc"')
    store = load(path).stores["notes"].open()
    assert (tmp_path / "todo" / "color").read_text(encoding="ascii") == "#aabbcc\n"
    assert (tmp_path / "todo" / "displayname").read_text(encoding="utf-8") == "notes\n"
    assert store.content_types[0].mime == "text/calendar"
