"""The state database's place on disk, checked without loading SQLAlchemy.

The daemon checks a SQLite file's directory at start-up (so an unwritable
directory is a clear error at once) but opens the database only when the
first session needs it; the repository runs the same check when it opens.
"""

from __future__ import annotations

import os
from pathlib import Path

from syncmld.errors import UserError


def prepare_database_directory(path: Path) -> None:
    """Create the database file's directory; say clearly when that cannot work.

    Raises:
        UserError: the directory cannot be made or written, or the file is not
            writable (one line naming the path).
    """
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(
            f"cannot create the directory {directory} for the state database {path}: {reason}"
        ) from exc
    if not directory.is_dir():
        raise UserError(f"cannot use the state database {path}: {directory} is not a directory")
    # SQLite writes the database and its -wal/-shm files next to each other.
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UserError(
            f"cannot use the state database {path}: the directory {directory} is not writable"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise UserError(f"cannot use the state database {path}: the file is not writable")
