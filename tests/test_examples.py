"""The programs in ``examples/`` run, as real processes, against our own HTTP server."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncmld.engine.server import ServerConfig
from syncmld.engine.session import AuthMode, Datastore
from syncmld.engine.store import MemoryStore
from syncmld.state.repository import StateRepository
from syncmld.transports.http import HttpServer, make_app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 60

pytestmark = pytest.mark.slow


@dataclass
class NotesServer:
    url: str
    store: MemoryStore

    def notes(self) -> dict[str, str]:
        """Server item id -> text."""
        return {i: self.store.get(i)[0] for i, _ in self.store.list()}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[NotesServer]:
    store = MemoryStore(["Shopping\nmilk, bread\n"])
    config = ServerConfig(
        datastores=(Datastore(name="notes", store=store),),
        auth=AuthMode.BASIC,
        passwords={"anna": "secret"},
    )
    with StateRepository(f"sqlite:///{tmp_path / 'server.db'}") as repo:
        async with HttpServer(make_app(config, repo), port=0) as http:
            yield NotesServer(http.url, store)


async def sync_notes(folder: Path, url: str, *extra: str) -> str:
    """Run examples/sync_notes.py; returns its output (fails the test on exit status != 0)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "sync_notes.py"),
        str(folder),
        url,
        "--user",
        "anna",
        "--password",
        "secret",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 0, (out + err).decode()
    return out.decode()


def texts(folder: Path) -> dict[str, str]:
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(folder.glob("*.txt"))
        if not p.name.startswith(".")
    }


async def test_sync_notes_both_ways(server: NotesServer, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "ideas.txt").write_text("Ideas\nsync everything\n", encoding="utf-8")
    (folder / "кириллица.txt").write_text("Заметка 🎉\nтекст\n", encoding="utf-8")
    (folder / ".hidden.txt").write_text("not a note\n", encoding="utf-8")

    # First run: a slow sync; our notes go up, the server's comes down.
    out = await sync_notes(folder, server.url)
    assert "notes: 1 added" in out
    assert sorted(server.notes().values()) == sorted(
        ["Shopping\nmilk, bread\n", "Ideas\nsync everything\n", "Заметка 🎉\nтекст\n"]
    )
    local = texts(folder)
    assert local["Shopping.txt"] == "Shopping\nmilk, bread\n"
    assert len(local) == 3

    # A change on the server side comes back; an edit here goes up.
    shopping = next(i for i, t in server.notes().items() if t.startswith("Shopping"))
    server.store.edit(shopping, "Shopping\nmilk, bread, coffee\n")
    (folder / "ideas.txt").write_text("Ideas\nsync everything, twice\n", encoding="utf-8")
    out = await sync_notes(folder, server.url)
    assert "notes: 0 added, 1 changed, 0 deleted here; 0 added, 1 changed" in out
    assert texts(folder)["Shopping.txt"] == "Shopping\nmilk, bread, coffee\n"
    assert "Ideas\nsync everything, twice\n" in server.notes().values()

    # A note deleted here is deleted there; nothing else moves.
    (folder / "ideas.txt").unlink()
    out = await sync_notes(folder, server.url)
    assert "0 deleted here; 0 added, 0 changed, 1 deleted on the server" in out
    assert len(server.notes()) == 2
    assert (folder / ".hidden.txt").exists()


async def test_sync_notes_reports_a_wrong_password(server: NotesServer, tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "sync_notes.py"),
        str(tmp_path / "notes"),
        server.url,
        "--user",
        "anna",
        "--password",
        "wrong",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 1
    assert err.decode().startswith("sync failed:")
    assert "Traceback" not in err.decode()
    assert len(server.notes()) == 1
