"""A vdir folder as a store: one item per file, as khal, khard and vdirsyncer keep them.

The vdir conventions (vdirsyncer's ``docs/vdir.rst``, summarized in
``docs/pim.md`` section 2) and how this store follows them:

* A collection is one folder; one item per file.  Contacts end in ``.vcf``,
  calendar items (events, tasks, memos) in ``.ics``.  Only regular files with
  the store's suffix are items: hidden files, ``.tmp`` files, files without
  extension (``displayname``, ``color``) and files with another suffix are
  ignored.
* Item ids are file names.  A new item is named after its UID when the UID is
  made of safe characters (letters, digits, ``@ _ . - +``), does not start
  with a dot and is at most :data:`MAX_UID_NAME` characters long; otherwise,
  or when that name is taken, after a random UUID.  An update keeps the
  file's name, whatever the new content's UID.
* Writes are atomic: the content goes to a hidden ``.tmp`` file in the same
  folder and is renamed over the item (``os.replace``), so a reader sees
  either the old or the new file, never a partial one.  A new item is
  published with a hard link, which fails instead of overwriting a file of
  the same name created meanwhile.
* Writes are made durable per session, not per item: :meth:`VdirStore.flush`
  (called by the engine before a session's state is committed) syncs every
  file written since the last flush and then the folder once.  An ``fsync``
  per item made a large first sync spend nearly all its time waiting for the
  disk; a crash before the flush loses at most that session's writes, whose
  state was never committed either, so the next sync repeats them.
* The etag is ``"<mtime in ns>:<inode>"``, taken from the written file itself.
  ``replace`` and ``delete`` with an etag that no longer matches raise
  :class:`~syncmld.engine.store.PreconditionFailed`: a desktop program (khal,
  khard) edited the file since the engine looked, and its edit wins until the
  next sync.  (The check and the write are two steps; an edit landing between
  them is the one race this cannot see - vdirsyncer has the same window.)
* The folder is created when missing, with a ``displayname`` file and a
  ``color`` file (``#RRGGBB``), which khal shows.

Kinds (:data:`KINDS`): what a folder holds and how the items look on disk.

============ ========== ================================================
 kind         suffix     items
============ ========== ================================================
 contacts     ``.vcf``   one vCard 3.0 each (khard)
 calendar     ``.ics``   a VCALENDAR with VEVENTs or VTODOs (khal + todoman)
 events       ``.ics``   a VCALENDAR with VEVENTs (khal)
 tasks        ``.ics``   a VCALENDAR with VTODOs (todoman)
 notes        ``.ics``   a VCALENDAR with one VJOURNAL (memos)
============ ========== ================================================

Memos and notes are kept as iCalendar ``VJOURNAL`` items, the representation
:mod:`syncmld.formats.notes` produces from a phone's ``text/plain`` or
``text/x-vnote`` memo (``DESCRIPTION`` holds the whole text, ``SUMMARY`` its
first line).  That keeps a notes collection a valid vdir that vdirsyncer can
push to a CalDAV server (Evolution and Nextcloud keep memos as VJOURNAL).  A
program that prefers a folder of plain ``.txt`` files can have one with
``VdirStore(path, content_types=(TEXT_PLAIN,), suffix=".txt")``, or sync its
own data through an :class:`~syncmld.agent.Agent` (see ``examples/sync_notes.py``).

An ``.ics`` folder is often shared between tools: a store of kind ``events``
leaves files holding only VTODOs alone (they are todoman's), and so on.
A file that cannot be parsed as an item of its kind (not a single
``BEGIN``/``END`` object, a line that is not a property) stays listed (its
etag from ``stat``), but :meth:`VdirStore.get` raises
:class:`~syncmld.engine.store.ItemUnreadable`: the engine then leaves the
item alone for the session - no Delete or Replace goes to the peer, its state
row is kept, and the run's message names the file.  One warning per version
of the file goes to the log; it is read again once it changes.

Files are read as UTF-8 (a byte-order mark is dropped); a file that is not
valid UTF-8 is read as ISO-8859-1, the usual encoding of old vCard tools,
with a warning in the log, rather than failing the whole sync.  Written
files are always UTF-8.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import os
import re
import secrets
import stat
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

from syncmld.engine.store import (
    ICAL_20,
    VCARD_30,
    ContentType,
    ItemNotFound,
    ItemUnreadable,
    PreconditionFailed,
    ReadOnlyStore,
    Store,
    StoreError,
)

log = logging.getLogger(__name__)

#: What a UID may consist of to become a file name (vdirsyncer's rule plus ``@``).
_SAFE_UID = re.compile(r"[A-Za-z0-9@_.+-]+")
#: Longest UID used as a file name (leaves room for the suffix and temp names).
MAX_UID_NAME = 200
_UID_LINE = re.compile(r"^UID(?:;[^:\r\n]*)?:([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_FOLD = re.compile(r"\r?\n[ \t]")
#: A content line: an optionally grouped name, optional parameters, a colon.
_PROPERTY = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)?(?:;[^:]*)?:")
_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")

#: Store kinds: the content types held and the file suffix.
KINDS: dict[str, tuple[tuple[ContentType, ...], str]] = {
    "contacts": ((VCARD_30,), ".vcf"),
    "calendar": ((ICAL_20,), ".ics"),
    "events": ((ICAL_20,), ".ics"),
    "tasks": ((ICAL_20,), ".ics"),
    "notes": ((ICAL_20,), ".ics"),
}
#: The iCalendar components an ``.ics`` item of each kind holds.
COMPONENTS: dict[str, frozenset[str]] = {
    "calendar": frozenset({"VEVENT", "VTODO"}),
    "events": frozenset({"VEVENT"}),
    "tasks": frozenset({"VTODO"}),
    "notes": frozenset({"VJOURNAL"}),
}
#: The ``color`` written into a folder the store creates, by kind.
DEFAULT_COLORS: dict[str, str] = {
    "contacts": "#75507b",
    "calendar": "#3465a4",
    "events": "#3465a4",
    "tasks": "#73d216",
    "notes": "#c4a000",
}
_ANY_COMPONENT = frozenset({"VEVENT", "VTODO", "VJOURNAL"})


class _Verdict(enum.Enum):
    """What :func:`check_item` thinks of a file."""

    ITEM = "item"
    FOREIGN = "foreign"  # a valid item of another kind sharing the folder
    INVALID = "invalid"


def etag_of(st: os.stat_result) -> str:
    """The etag of a file: ``"<mtime_ns>:<inode>"``."""
    return f"{st.st_mtime_ns}:{st.st_ino}"


def uid_of(data: str) -> str | None:
    """The value of the first ``UID`` property of an item (folded lines joined)."""
    m = _UID_LINE.search(_FOLD.sub("", data))
    if m is None:
        return None
    return m.group(1).strip() or None


def check_item(text: str, suffix: str, components: frozenset[str] | None = None) -> str | None:
    """Why ``text`` is not a well-formed item for a file ending in ``suffix``, or ``None``.

    ``.vcf``: exactly one ``BEGIN:VCARD`` ... ``END:VCARD``; ``.ics``: exactly
    one ``VCALENDAR`` holding at least one of ``components`` (default: VEVENT,
    VTODO or VJOURNAL); other suffixes: any text.  Every unfolded line must be
    a property (``NAME;PARAMS:value``) and ``BEGIN``/``END`` must nest.  The
    check is structural only; property values are not validated.
    """
    verdict, reason = _judge(text, suffix, components or _ANY_COMPONENT)
    if verdict is _Verdict.ITEM:
        return None
    return reason


def _judge(text: str, suffix: str, components: frozenset[str]) -> tuple[_Verdict, str]:
    suffix = suffix.lower()
    if suffix == ".vcf":
        top = "VCARD"
    elif suffix == ".ics":
        top = "VCALENDAR"
    else:
        return _Verdict.ITEM, ""
    lines = [ln for ln in _FOLD.sub("", text).replace("\r", "").split("\n") if ln.strip()]
    if not lines:
        return _Verdict.INVALID, "empty file"
    stack: list[str] = []
    found: set[str] = set()
    closed = False
    for number, line in enumerate(lines, 1):
        if closed:
            return _Verdict.INVALID, f"line {number}: more than one item in the file"
        if _PROPERTY.match(line) is None:
            return _Verdict.INVALID, f"line {number}: not a property line"
        name, _, value = line.partition(":")
        name = name.split(";", 1)[0].upper()
        value = value.strip().upper()
        if name == "BEGIN":
            if not stack and value != top:
                return _Verdict.INVALID, f"line {number}: expected BEGIN:{top}"
            if len(stack) == 1:
                found.add(value)
            stack.append(value)
        elif name == "END":
            if not stack or stack[-1] != value:
                return _Verdict.INVALID, f"line {number}: END:{value} does not close a BEGIN"
            stack.pop()
            closed = not stack
        elif not stack:
            return _Verdict.INVALID, f"line {number}: a property outside BEGIN:{top}"
    if stack:
        return _Verdict.INVALID, f"END:{stack[-1]} is missing"
    if top == "VCALENDAR" and not found & components:
        if found & _ANY_COMPONENT:
            return _Verdict.FOREIGN, "holds " + ", ".join(sorted(found & _ANY_COMPONENT))
        return _Verdict.INVALID, "no VEVENT, VTODO or VJOURNAL in the VCALENDAR"
    return _Verdict.ITEM, ""


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning("%s is not UTF-8; reading it as ISO-8859-1", path)
        return raw.decode("iso-8859-1")


class VdirStore(Store):
    """A vdir collection (one folder) as a :class:`~syncmld.engine.store.Store`.

    Args:
        path: the collection's folder; created (with parents) when missing.
        content_types: what the items are, preferred first (``(VCARD_30,)``).
        suffix: the item file suffix, with the dot (``".vcf"``).
        components: for ``.ics`` items, the iCalendar components an item of
            this store holds (default: VEVENT, VTODO and VJOURNAL); files
            holding only others are left to the tools they belong to.
        display_name: written to the ``displayname`` file of a folder this
            store creates (default: the folder's name).
        color: written to the ``color`` file of a folder this store creates
            (``#RRGGBB``; default: none).
        read_only: refuse writes with :class:`~syncmld.engine.store.ReadOnlyStore`.

    Raises:
        StoreError: the folder cannot be created, or ``path`` is not a folder.
        ValueError: ``suffix`` does not start with a dot, or ``color`` is not
            ``#RRGGBB``.

    The only state kept in memory is which file versions (by etag) were
    found well-formed, so that :meth:`list` reads each version once, and
    which files were written since the last :meth:`flush`; the store is safe
    to use from several threads.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        content_types: tuple[ContentType, ...],
        suffix: str,
        components: frozenset[str] | None = None,
        display_name: str | None = None,
        color: str | None = None,
        read_only: bool = False,
    ) -> None:
        if not suffix.startswith(".") or len(suffix) < 2 or "/" in suffix:
            raise ValueError(f"a vdir suffix looks like '.vcf', not {suffix!r}")
        if not content_types:
            raise ValueError("a store needs at least one content type")
        if color is not None and not _COLOR.fullmatch(color):
            raise ValueError(f"a vdir color looks like '#3465a4', not {color!r}")
        self.path = Path(path)
        self.content_types = content_types
        self.suffix = suffix.lower()
        self.components = frozenset(c.upper() for c in components or _ANY_COMPONENT)
        self.read_only = read_only
        #: The :data:`KINDS` entry this store was made for (:meth:`of_kind`), else ``None``.
        self.kind: str | None = None
        #: file name -> (etag, verdict, why) of the versions list() has looked at.
        self._seen: dict[str, tuple[str, _Verdict, str]] = {}
        #: Files written, and whether the folder changed, since the last flush().
        self._unsynced: set[str] = set()
        self._folder_unsynced = False
        self._pending_lock = threading.Lock()
        self._create(display_name, color)

    @classmethod
    def of_kind(
        cls,
        path: str | os.PathLike[str],
        kind: str,
        *,
        display_name: str | None = None,
        color: str | None = None,
        read_only: bool = False,
    ) -> VdirStore:
        """A store for one of :data:`KINDS` (``"contacts"``: vCard 3.0 in ``.vcf`` files,
        ``"events"``: iCalendar 2.0 VEVENTs in ``.ics`` files, ...).

        A folder it creates gets the kind's :data:`DEFAULT_COLORS` entry
        unless ``color`` is given.

        Raises:
            ValueError: an unknown kind or a bad color.
            StoreError: see the class.
        """
        try:
            content_types, suffix = KINDS[kind]
        except KeyError:
            raise ValueError(f"unknown vdir kind {kind!r}") from None
        store = cls(
            path,
            content_types=content_types,
            suffix=suffix,
            components=COMPONENTS.get(kind),
            display_name=display_name,
            color=color or DEFAULT_COLORS.get(kind),
            read_only=read_only,
        )
        store.kind = kind
        return store

    def __repr__(self) -> str:
        return f"VdirStore({str(self.path)!r}, suffix={self.suffix!r})"

    # ------------------------------------------------------------ helpers
    def _create(self, display_name: str | None, color: str | None) -> None:
        if self.path.is_dir():
            return
        if self.path.exists():
            raise StoreError(f"{self.path} is not a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            name = display_name if display_name is not None else self.path.name
            (self.path / "displayname").write_text(name + "\n", encoding="utf-8")
            if color is not None:
                (self.path / "color").write_text(color + "\n", encoding="ascii")
        except OSError as exc:
            raise StoreError(f"cannot create {self.path}: {exc.strerror or exc}") from exc

    def _is_item_name(self, name: str) -> bool:
        return (
            not name.startswith(".")
            and "/" not in name
            and "\0" not in name
            and len(name) > len(self.suffix)
            and name.lower().endswith(self.suffix)
        )

    def _file(self, item_id: str) -> Path:
        """The path of an item; ids that cannot be ours are simply not found."""
        if not self._is_item_name(item_id):
            raise ItemNotFound(item_id)
        return self.path / item_id

    def _writable(self) -> None:
        if self.read_only:
            raise ReadOnlyStore(f"{self.path} is read-only")

    def _current_etag(self, item_id: str, path: Path) -> tuple[str, os.stat_result]:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ItemNotFound(item_id) from None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise ItemNotFound(item_id)
        return etag_of(st), st

    def _new_name(self, data: str) -> str:
        uid = uid_of(data)
        if (
            uid is not None
            and len(uid) <= MAX_UID_NAME
            and _SAFE_UID.fullmatch(uid)
            and not uid.startswith(".")
        ):
            return uid + self.suffix
        return self._random_name()

    def _random_name(self) -> str:
        return str(uuid.uuid4()) + self.suffix

    def _write(self, name: str, data: str, *, mode: int | None, overwrite: bool) -> str:
        """Write ``data`` to ``name`` atomically; returns the new etag.

        With ``overwrite`` false an existing file of that name is left alone
        and :class:`FileExistsError` is raised.
        """
        payload = data.encode("utf-8")
        final = self.path / name
        tmp = self.path / f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise StoreError(f"cannot write in {self.path}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                if mode is not None:
                    os.fchmod(f.fileno(), mode)
                # The written file's own mtime and inode: renaming keeps both.
                etag = etag_of(os.fstat(f.fileno()))
            if overwrite:
                os.replace(tmp, final)
            else:
                self._publish_new(tmp, final)
        except FileExistsError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StoreError(f"cannot write {final}: {exc.strerror or exc}") from exc
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        with self._pending_lock:
            self._unsynced.add(name)
            self._folder_unsynced = True
        return etag

    @staticmethod
    def _publish_new(tmp: Path, final: Path) -> None:
        """Rename ``tmp`` to ``final`` unless ``final`` exists (then FileExistsError)."""
        try:
            os.link(tmp, final)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # A file system without hard links: check, then rename.
            if final.exists():
                raise FileExistsError(errno.EEXIST, "file exists", str(final)) from None
            os.replace(tmp, final)
            return
        tmp.unlink()

    def _sync_file(self, name: str) -> None:
        """``fsync`` one item file; a file gone meanwhile needs none."""
        path = self.path / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except (FileNotFoundError, IsADirectoryError):
            return  # deleted (or replaced by a folder) since: nothing of ours to sync
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return  # a desktop program put a link there: not our file
            raise StoreError(f"cannot sync {path}: {exc.strerror or exc}") from exc
        try:
            os.fsync(fd)
        except OSError as exc:
            raise StoreError(f"cannot sync {path}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)

    def _start_writeback(self, names: Iterable[str]) -> None:
        """Have the kernel start writing all the files out before they are synced.

        With the writes in flight together, the ``fsync`` calls that follow
        mostly find them done instead of each waiting for its own (on ext4,
        a measured 2 to 3 times faster flush of 2,000 files).
        ``POSIX_FADV_DONTNEED`` starts writeback on Linux; it is only a
        hint, so failures are ignored and other systems skip it.
        """
        fadvise = getattr(os, "posix_fadvise", None)
        if fadvise is None:
            return
        for name in names:
            try:
                fd = os.open(self.path / name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                continue  # _sync_file reports what matters
            try:
                fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            except OSError:
                pass
            finally:
                os.close(fd)

    def _sync_folder(self) -> None:
        """Make the renames and removals durable.

        File systems that cannot sync a folder (``EINVAL``, ``ENOTSUP``)
        are let be; any other failure raises :class:`StoreError`.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StoreError(f"cannot sync {self.path}: {exc.strerror or exc}") from exc
        try:
            os.fsync(fd)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise StoreError(f"cannot sync {self.path}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)

    def flush(self) -> None:
        """Make every write since the last flush durable.

        Syncs each file written since (once, however often it was written)
        and then the folder, once.  Files that fail stay pending for the
        next flush.

        Raises:
            StoreError: a file or the folder could not be synced.
        """
        with self._pending_lock:
            names = sorted(self._unsynced)
            folder = self._folder_unsynced
            self._unsynced.clear()
            self._folder_unsynced = False
        if len(names) > 1:
            self._start_writeback(names)
        try:
            while names:
                self._sync_file(names[-1])
                names.pop()
            if folder:
                self._sync_folder()
                folder = False
        except BaseException:
            with self._pending_lock:
                self._unsynced.update(names)
                self._folder_unsynced = self._folder_unsynced or folder
            raise

    # ------------------------------------------------------------ the ABC
    def list(self) -> Iterable[tuple[str, str]]:
        """Every item as ``(file name, etag)``.

        Raises:
            StoreError: the folder cannot be read.
        """
        out: list[tuple[str, str]] = []
        try:
            with os.scandir(self.path) as entries:
                for entry in entries:
                    if not self._is_item_name(entry.name):
                        continue
                    try:
                        st = entry.stat()
                    except OSError:
                        continue  # gone meanwhile, or a dangling link
                    if stat.S_ISREG(st.st_mode):
                        out.append((entry.name, etag_of(st)))
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        out.sort()
        listed = {name for name, _ in out}
        for name in list(self._seen):  # a copy: other threads may list too
            if name not in listed:
                self._seen.pop(name, None)
        # Damaged files stay listed: get() says ItemUnreadable, so that the
        # engine leaves them alone instead of taking them for deletions.
        return [
            (name, etag)
            for name, etag in out
            if self._verdict(name, etag)[0] is not _Verdict.FOREIGN
        ]

    def _verdict(
        self, name: str, etag: str, raw: bytes | None = None
    ) -> tuple[_Verdict | None, str]:
        """Whether the file version ``etag`` of ``name`` is one of our items, and why not.

        Cached per file version; ``(None, why)`` when the file is gone.
        """
        seen = self._seen.get(name)
        if seen is not None and seen[0] == etag:
            return seen[1], seen[2]
        path = self.path / name
        if raw is None:
            try:
                raw = path.read_bytes()
            except OSError as exc:
                return None, exc.strerror or str(exc)  # gone meanwhile; not cached
        verdict, reason = _judge(_decode(raw, path), self.suffix, self.components)
        if verdict is _Verdict.INVALID:
            log.warning("%s is left alone: not a valid item (%s)", path, reason)
        elif verdict is _Verdict.FOREIGN:
            log.debug("%s is left alone: it %s", path, reason)
        self._seen[name] = (etag, verdict, reason)
        return verdict, reason

    def get(self, item_id: str) -> tuple[str, str]:
        """``(text, etag)`` of one item.

        Raises:
            ItemNotFound: no such item.
            ItemUnreadable: the file is not a valid item (see the module docstring).
            StoreError: the file cannot be read.
        """
        path = self._file(item_id)
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise ItemNotFound(item_id)
                raw = f.read()
        except (FileNotFoundError, IsADirectoryError):
            raise ItemNotFound(item_id) from None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        etag = etag_of(st)
        verdict, reason = self._verdict(item_id, etag, raw)
        if verdict is _Verdict.INVALID:
            raise ItemUnreadable(f"{self.path.name}/{item_id}: {reason}")
        return _decode(raw, path), etag

    def add(self, data: str) -> tuple[str, str]:
        """Store a new item in a new file; returns ``(file name, etag)``.

        Raises:
            ReadOnlyStore: the store is read-only.
            StoreError: the file cannot be written.
        """
        self._writable()
        name = self._new_name(data)
        for _ in range(5):
            try:
                return name, self._write(name, data, mode=None, overwrite=False)
            except FileExistsError:
                name = self._random_name()
        raise StoreError(f"cannot find a free file name in {self.path}")

    def replace(self, item_id: str, data: str, *, etag: str | None) -> str:
        """Overwrite an item, keeping its file name and mode; returns the new etag.

        Raises:
            ItemNotFound: no such item.
            PreconditionFailed: ``etag`` is given and the file changed since.
            ReadOnlyStore: the store is read-only.
            StoreError: the file cannot be written.
        """
        self._writable()
        path = self._file(item_id)
        current, st = self._current_etag(item_id, path)
        if etag is not None and etag != current:
            raise PreconditionFailed(f"{path} changed since it was read")
        return self._write(item_id, data, mode=stat.S_IMODE(st.st_mode), overwrite=True)

    def delete(self, item_id: str, *, etag: str | None) -> None:
        """Remove an item's file.

        Raises:
            ItemNotFound: no such item.
            PreconditionFailed: ``etag`` is given and the file changed since.
            ReadOnlyStore: the store is read-only.
            StoreError: the file cannot be removed.
        """
        self._writable()
        path = self._file(item_id)
        current, _ = self._current_etag(item_id, path)
        if etag is not None and etag != current:
            raise PreconditionFailed(f"{path} changed since it was read")
        try:
            path.unlink()
        except FileNotFoundError:
            raise ItemNotFound(item_id) from None
        except OSError as exc:
            raise StoreError(f"cannot delete {path}: {exc.strerror or exc}") from exc
        with self._pending_lock:
            self._folder_unsynced = True


__all__ = [
    "COMPONENTS",
    "DEFAULT_COLORS",
    "KINDS",
    "MAX_UID_NAME",
    "VdirStore",
    "check_item",
    "etag_of",
    "uid_of",
]
