#!/usr/bin/env python3
"""Sync a folder of plain-text notes with a SyncML server.

Each note is one ``.txt`` file in the folder; its text travels as
``text/plain``.  Notes added on the server arrive as new files named after
their first line.  A second run sends only what changed: syncmld remembers
what it last saw in a small SQLite database (by default ``.sync-notes.db``
inside the folder).

Usage::

    python3 examples/sync_notes.py ~/notes https://sync.example.org/sync \\
        --user anna --password secret

The whole program is the :class:`NotesAgent` (five methods over the files)
and the few lines of :func:`main` that hand it to :class:`syncmld.SyncClient`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from syncmld import Agent, SyncClient

SUFFIX = ".txt"


class NotesAgent(Agent[str]):
    """A folder of ``.txt`` files, one note each; the items are the notes' text."""

    # content_types defaults to text/plain 1.0, which is what a note is.

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, item_id: str) -> Path:
        # Ids are file names we listed; anything else is not one of our notes.
        if "/" in item_id or item_id.startswith(".") or not item_id.endswith(SUFFIX):
            raise KeyError(item_id)
        return self.folder / item_id

    def list(self) -> Iterable[str]:
        """The file names of all notes."""
        return sorted(
            p.name for p in self.folder.glob("*" + SUFFIX) if p.is_file() and p.name[0] != "."
        )

    def get(self, item_id: str) -> str:
        """A note's text (a missing file raises FileNotFoundError: no such item)."""
        return self._path(item_id).read_text(encoding="utf-8")

    def etag(self, item_id: str) -> str | None:
        """Modification time and inode: a cheap way to see that a note changed."""
        st = self._path(item_id).stat()
        return f"{st.st_mtime_ns}:{st.st_ino}"

    def add(self, item: str) -> str:
        """Save a new note in a file named after its first line."""
        first = item.strip().splitlines()[0] if item.strip() else "note"
        stem = re.sub(r"[^\w-]+", "-", first).strip("-")[:40] or "note"
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(item)
        try:
            for n in range(1, 10_000):
                name = f"{stem}{SUFFIX}" if n == 1 else f"{stem}-{n}{SUFFIX}"
                try:
                    os.link(tmp, self.folder / name)  # never overwrites an existing note
                except FileExistsError:
                    continue
                return name
        finally:
            os.unlink(tmp)
        raise RuntimeError(f"no free file name for {stem!r}")

    def replace(self, item_id: str, item: str) -> None:
        """Overwrite a note (atomically: a temporary file, then a rename)."""
        path = self._path(item_id)
        if not path.exists():
            raise KeyError(item_id)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(item)
        os.replace(tmp, path)

    def delete(self, item_id: str) -> None:
        """Remove a note's file."""
        self._path(item_id).unlink()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, sync once, print what happened."""
    parser = argparse.ArgumentParser(description="Sync a folder of .txt notes over SyncML.")
    parser.add_argument("folder", help="the folder of .txt notes")
    parser.add_argument("url", help="the SyncML server URL")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--remote", default="notes", help="the server's notes database")
    parser.add_argument("--state", help="state database URL (default: in the folder)")
    parser.add_argument("--mode", help="two-way (default), slow, refresh-from-server, ...")
    args = parser.parse_args(argv)

    agent = NotesAgent(args.folder)
    state = args.state or f"sqlite:///{agent.folder.resolve() / '.sync-notes.db'}"
    client = SyncClient(args.url, state_url=state, user=args.user, password=args.password)
    client.add_store("notes", agent, remote=args.remote)
    result = client.sync(args.mode)

    for store in result.stores:
        print(
            f"{store.name}: {store.local_added} added, {store.local_replaced} changed, "
            f"{store.local_deleted} deleted here; {store.remote_added} added, "
            f"{store.remote_replaced} changed, {store.remote_deleted} deleted on the server"
        )
    if not result.ok:
        print(f"sync failed: {result.message or 'see above'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
