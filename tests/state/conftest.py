"""Fixtures: a real SQLite state database in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncmld.state import StateRepository


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's database file goes (the directory does not exist yet)."""
    return tmp_path / "state" / "state.db"


@pytest.fixture
def repo(db_path: Path) -> Iterator[StateRepository]:
    """An open repository on a fresh database file."""
    with StateRepository(f"sqlite:///{db_path}") as r:
        yield r
