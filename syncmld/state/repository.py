"""The state repository: the one place in syncmld that commits.

The engine is sans-IO: it works on :class:`~syncmld.engine.state.PeerState`
values.  The daemon loads the peer's state here before a session
(:meth:`StateRepository.load_peer`) and, when the session completed, stores
the state it hands back together with the history entry in one transaction
(:meth:`StateRepository.save_session`).  A failed or cancelled session only
adds to the history (:meth:`StateRepository.record_run`): the state stays
what the last completed session left, so the next session resumes from
anchors both sides agreed on.

Theory of operation of :meth:`~StateRepository.save_session`:

* Everything happens in one transaction; any exception rolls all of it back
  (the vdirsyncer status DB's ``new_status`` swap, done by the database).
  On SQLite the transaction is ``BEGIN IMMEDIATE``: the write lock is taken
  *before* the stored state is read, so two writers cannot both diff against
  the same old state; other processes keep reading (WAL) and a second
  writer waits up to the busy timeout.  Elsewhere the device row is read
  ``FOR UPDATE``.
* The given state *replaces* the stored one, but rows are only touched where
  they differ: the stored items of each pair are read (columns, not ORM
  objects), compared with the new ones by local id, and the differences are
  written with three ``executemany`` statements (delete, insert, update).
  A session that changed five items of 20,000 writes five rows.
* Children are deleted explicitly before their parents, so the result does
  not depend on the database enforcing ``ON DELETE CASCADE``.

Reads (:meth:`~StateRepository.load_peer`, :meth:`~StateRepository.history`)
run in one read transaction each, so they see one consistent snapshot (on
SQLite; other databases give what their default isolation level gives).

SQLite specifics: the directory of the database file is created if
missing; every connection runs with ``foreign_keys=ON``, a busy timeout and
the WAL journal (readers never block the writer).  The pysqlite driver's own
transaction emulation is switched off and SQLAlchemy's ``begin`` emits the
``BEGIN`` (the recipe in SQLAlchemy's SQLite dialect documentation), so that
reads are inside the transaction too.

The repository is thread-safe (each call uses its own pooled connection);
its methods block, so asyncio code calls them through ``asyncio.to_thread``.

The DevInf is stored as an XML document: what :meth:`load_peer` returns is
what XML carries of it (:func:`~syncmld.protocol.devinf.convert_devinf`
lists what that drops, e.g. a DevInf-level ``SupportHierarchicalSync``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

from sqlalchemy import (
    Connection,
    Engine,
    Insert,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

from syncmld.engine.common import gc_paused
from syncmld.engine.state import ItemState, PairState, PeerState, RunRecord, StoreCounts
from syncmld.errors import SyncmlError, UserError
from syncmld.protocol.codec import Encoding, decode_devinf, encode_devinf
from syncmld.state import schema
from syncmld.state.files import prepare_database_directory
from syncmld.state.models import (
    DatastorePair,
    Device,
    ItemMapping,
    PendingMap,
    SyncRun,
    SyncRunStore,
)

log = logging.getLogger(__name__)

#: Seconds a writer waits for another process's write lock (SQLite).
DEFAULT_BUSY_TIMEOUT = 30.0

_DEVICES = cast(Table, Device.__table__)
_PAIRS = cast(Table, DatastorePair.__table__)
_ITEMS = cast(Table, ItemMapping.__table__)
_PENDING = cast(Table, PendingMap.__table__)
_RUNS = cast(Table, SyncRun.__table__)
_RUN_STORES = cast(Table, SyncRunStore.__table__)

#: Execution option read by the SQLite ``begin`` hook: the BEGIN flavour.
_BEGIN = "syncmld_sqlite_begin"

#: StoreCounts fields stored as sync_run_stores columns, in one place.
_COUNT_FIELDS = (
    "local_uri",
    "remote_uri",
    "mode",
    "local_added",
    "local_replaced",
    "local_deleted",
    "remote_added",
    "remote_replaced",
    "remote_deleted",
    "conflicts",
    "status",
    "message",
)


def default_url() -> str:
    """``sqlite:///$XDG_STATE_HOME/syncmld/state.db`` (``~/.local/state`` by default)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return f"sqlite:///{Path(base) / 'syncmld' / 'state.db'}"


class StateRepository:
    """Persistent peer state and sync history behind one SQLAlchemy URL.

    Use as a context manager, or call :meth:`open` and :meth:`close`::

        with StateRepository("sqlite:////var/lib/syncmld/state.db") as repo:
            peer = repo.load_peer(dev_id) or PeerState(dev_id=dev_id)
            ...
            repo.save_session(new_peer, run)

    Args:
        url: any SQLAlchemy database URL; default :func:`default_url`.
        busy_timeout: seconds SQLite waits for a lock held by another process.
    """

    def __init__(self, url: str | None = None, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT):
        self._url_text = default_url() if url is None else url
        self._busy_timeout = busy_timeout
        self._engine: Engine | None = None
        self._writer: Engine | None = None

    # --- lifecycle ------------------------------------------------------------

    @property
    def url(self) -> str:
        """The database URL as given (password included)."""
        return self._url_text

    @property
    def engine(self) -> Engine:
        """The open SQLAlchemy engine (for tools and tests).

        Raises:
            RuntimeError: the repository is not open.
        """
        if self._engine is None:
            raise RuntimeError("the state repository is not open")
        return self._engine

    def open(self) -> None:
        """Connect and upgrade the schema to the newest version.  Idempotent.

        Raises:
            UserError: the URL is invalid or names a missing driver; the
                database (or its directory) cannot be created, opened or
                written; it is not a database; or a newer syncmld wrote it.
        """
        if self._engine is not None:
            return
        try:
            url = make_url(self._url_text)
        except ArgumentError as exc:
            raise UserError(f"not a database URL: {self._url_text!r}") from exc
        where = _describe(url)
        engine = self._create_engine(url, where)
        try:
            with _begin_immediate(engine).begin() as conn:
                stored = schema.current(conn)
                if stored is not None and not schema.known(stored):
                    raise UserError(
                        f"the state database {where} has schema revision {stored!r}, "
                        "which this syncmld does not know (written by a newer version?)"
                    )
                if stored is None and not inspect(conn).get_table_names():
                    log.info("creating the state database %s", where)
                    schema.create(conn)
                elif stored != schema.head():
                    log.info("migrating the state database %s from %s", where, stored or "empty")
                    schema.upgrade(conn)
        except DBAPIError as exc:
            engine.dispose()
            raise UserError(f"cannot use the state database {where}: {exc.orig}") from exc
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        self._writer = _begin_immediate(engine)
        log.debug("state database %s open", where)

    def close(self) -> None:
        """Release every connection.  Idempotent; :meth:`open` may follow."""
        if self._engine is not None:
            self._engine.dispose()
        self._engine = self._writer = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _create_engine(self, url: URL, where: str) -> Engine:
        kwargs: dict[str, Any] = {}
        sqlite = url.get_backend_name() == "sqlite"
        memory = False
        if sqlite:
            database = url.database or ""
            memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
            if memory:
                # One connection, or every checkout would see a new empty
                # database; shared by the threads calling the repository.
                kwargs["poolclass"] = StaticPool
                kwargs["connect_args"] = {"check_same_thread": False}
            elif not url.query.get("uri"):
                prepare_database_directory(Path(database))
        try:
            engine = create_engine(url, **kwargs)
        except (NoSuchModuleError, ImportError) as exc:
            raise UserError(f"cannot use the state database {where}: {exc}") from exc
        if sqlite and engine.dialect.driver == "pysqlite":
            _install_sqlite_hooks(engine, self._busy_timeout, wal=not memory)
        return engine

    # --- peers ------------------------------------------------------------------

    def load_peer(self, dev_id: str) -> PeerState | None:
        """The stored state of ``dev_id``, or ``None`` if nothing is stored.

        Raises:
            RuntimeError: the repository is not open.
        """
        with self.engine.connect() as conn:
            device = conn.execute(
                select(_DEVICES.c.id, _DEVICES.c.devinf, _DEVICES.c.nonce).where(
                    _DEVICES.c.dev_id == dev_id
                )
            ).one_or_none()
            if device is None:
                return None
            device_pk, devinf_xml, nonce = device
            pairs: dict[str, PairState] = {}
            pair_rows = conn.execute(
                select(
                    _PAIRS.c.id,
                    _PAIRS.c.local_uri,
                    _PAIRS.c.remote_uri,
                    _PAIRS.c.local_anchor,
                    _PAIRS.c.remote_anchor,
                    _PAIRS.c.last_mode,
                    _PAIRS.c.resume_mode,
                    _PAIRS.c.resume_anchor,
                )
                .where(_PAIRS.c.device_id == device_pk)
                .order_by(_PAIRS.c.local_uri)
            ).all()
            for (
                pair_pk,
                local_uri,
                remote_uri,
                local_anchor,
                remote_anchor,
                last_mode,
                resume_mode,
                resume_anchor,
            ) in pair_rows:
                rows = conn.execute(_SELECT_ITEMS, {"b_pair": pair_pk}).all()
                items = {
                    local_id: ItemState(local_id, remote_id, etag, digest)
                    for local_id, remote_id, etag, digest in rows
                }
                pending = _read_pending(conn, pair_pk)
                pairs[local_uri] = PairState(
                    local_uri=local_uri,
                    remote_uri=remote_uri,
                    local_anchor=local_anchor,
                    remote_anchor=remote_anchor,
                    items=items,
                    last_mode=last_mode,
                    pending_maps=pending,
                    resume_mode=resume_mode,
                    resume_anchor=resume_anchor,
                )
        devinf = None
        if devinf_xml is not None:
            try:
                devinf = decode_devinf(devinf_xml)
            except SyncmlError as exc:
                # The peer sends its DevInf again when asked; a stored copy that
                # no longer decodes must not make the peer unusable.
                log.warning("ignoring the unreadable stored DevInf of %r: %s", dev_id, exc)
        return PeerState(dev_id=dev_id, devinf=devinf, nonce=nonce, pairs=pairs)

    def save_session(self, peer: PeerState, run: RunRecord) -> None:
        """Replace everything stored for ``peer.dev_id`` with ``peer`` and
        append ``run`` to the history, in one transaction.

        The device's ``created`` time is the first saved run's time, its
        ``updated`` time this run's (``finished``, else ``started``).

        Raises:
            ValueError: ``run`` is for another device, or a pair or item is
                filed under a key that is not its ``local_uri``/``local_id``
                (nothing is written).
            RuntimeError: the repository is not open.
            sqlalchemy.exc.SQLAlchemyError: the database failed; nothing of
                the session was stored.
        """
        _check_peer(peer)
        if run.dev_id != peer.dev_id:
            raise ValueError(f"run for {run.dev_id!r} saved with the state of {peer.dev_id!r}")
        devinf_xml = None if peer.devinf is None else encode_devinf(peer.devinf, Encoding.XML)
        now = run.started if run.finished is None else run.finished
        # Tens of thousands of row parameters are built here: no collector
        # passes over them (see gc_paused).
        with gc_paused(), self._write() as conn:
            device_pk = conn.execute(
                select(_DEVICES.c.id).where(_DEVICES.c.dev_id == peer.dev_id).with_for_update()
            ).scalar_one_or_none()
            if device_pk is None:
                device_pk = _insert(
                    conn,
                    insert(_DEVICES).values(
                        dev_id=peer.dev_id,
                        devinf=devinf_xml,
                        nonce=peer.nonce,
                        created=now,
                        updated=now,
                    ),
                )
            else:
                conn.execute(
                    update(_DEVICES)
                    .where(_DEVICES.c.id == device_pk)
                    .values(devinf=devinf_xml, nonce=peer.nonce, updated=now)
                )
            _store_pairs(conn, device_pk, peer.pairs)
            _insert_run(conn, run)

    def record_run(self, run: RunRecord) -> None:
        """Append ``run`` to the history without touching any peer's state.

        For sessions that failed or were cancelled: the state stays what the
        last completed session stored.

        Raises:
            RuntimeError: the repository is not open.
        """
        with self._write() as conn:
            _insert_run(conn, run)

    def devices(self) -> list[str]:
        """The dev_ids with stored state, sorted.

        Raises:
            RuntimeError: the repository is not open.
        """
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(_DEVICES.c.dev_id).order_by(_DEVICES.c.dev_id)).scalars()
            )

    def forget(self, dev_id: str) -> bool:
        """Delete the state *and* the history of ``dev_id``.

        The next session with it starts from scratch (slow sync).  Returns
        whether anything was stored.

        Raises:
            RuntimeError: the repository is not open.
        """
        with self._write() as conn:
            device_pk = conn.execute(
                select(_DEVICES.c.id).where(_DEVICES.c.dev_id == dev_id).with_for_update()
            ).scalar_one_or_none()
            if device_pk is not None:
                pair_pks = select(_PAIRS.c.id).where(_PAIRS.c.device_id == device_pk)
                conn.execute(delete(_ITEMS).where(_ITEMS.c.pair_id.in_(pair_pks)))
                conn.execute(delete(_PENDING).where(_PENDING.c.pair_id.in_(pair_pks)))
                conn.execute(delete(_PAIRS).where(_PAIRS.c.device_id == device_pk))
                conn.execute(delete(_DEVICES).where(_DEVICES.c.id == device_pk))
            run_pks = select(_RUNS.c.id).where(_RUNS.c.dev_id == dev_id)
            conn.execute(delete(_RUN_STORES).where(_RUN_STORES.c.run_id.in_(run_pks)))
            runs = conn.execute(delete(_RUNS).where(_RUNS.c.dev_id == dev_id)).rowcount
        return device_pk is not None or runs > 0

    # --- history ----------------------------------------------------------------

    def history(
        self, dev_id: str | None = None, *, offset: int = 0, limit: int | None = 50
    ) -> list[RunRecord]:
        """Recorded sessions, newest first (by ``started``, then by insertion).

        Args:
            dev_id: only this device's sessions (default: every device's).
            offset: skip this many of the newest.
            limit: at most this many (``None``: all).

        Raises:
            ValueError: a negative offset or limit.
            RuntimeError: the repository is not open.
        """
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError(f"offset and limit must not be negative: {offset}, {limit}")
        page = select(_RUNS)
        if dev_id is not None:
            page = page.where(_RUNS.c.dev_id == dev_id)
        page = page.order_by(_RUNS.c.started.desc(), _RUNS.c.id.desc()).offset(offset)
        if limit is not None:
            page = page.limit(limit)
        with self.engine.connect() as conn:
            runs = conn.execute(page).mappings().all()
            if not runs:
                return []
            page_pks = page.with_only_columns(_RUNS.c.id).subquery()
            counts: dict[int, list[StoreCounts]] = {}
            for row in conn.execute(
                select(_RUN_STORES)
                .where(_RUN_STORES.c.run_id.in_(select(page_pks.c.id)))
                .order_by(_RUN_STORES.c.run_id, _RUN_STORES.c.position)
            ).mappings():
                counts.setdefault(row["run_id"], []).append(
                    StoreCounts(**{name: row[name] for name in _COUNT_FIELDS})
                )
        return [
            RunRecord(
                dev_id=row["dev_id"],
                role=row["role"],
                started=row["started"],
                finished=row["finished"],
                status=row["status"],
                message=row["message"],
                stores=tuple(counts.get(row["id"], ())),
            )
            for row in runs
        ]

    # --- helpers ----------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        if self._writer is None:
            raise RuntimeError("the state repository is not open")
        with self._writer.begin() as conn:
            yield conn


# --- statements and writing ---------------------------------------------------------

# Reads fetch all rows at once (.all()): iterating a Result fetches row by row.
_SELECT_ITEMS = select(_ITEMS.c.local_id, _ITEMS.c.remote_id, _ITEMS.c.etag, _ITEMS.c.digest).where(
    _ITEMS.c.pair_id == bindparam("b_pair")
)
_SELECT_PENDING = select(_PENDING.c.luid, _PENDING.c.guid).where(
    _PENDING.c.pair_id == bindparam("b_pair")
)

# Executemany statements; the per-row values are bound by name ("b_" names:
# a bindparam may not share a name with a column of an UPDATE's SET clause).
_DELETE_ITEM = delete(_ITEMS).where(
    _ITEMS.c.pair_id == bindparam("b_pair"), _ITEMS.c.local_id == bindparam("b_key")
)
_UPDATE_ITEM = (
    update(_ITEMS)
    .where(_ITEMS.c.pair_id == bindparam("b_pair"), _ITEMS.c.local_id == bindparam("b_key"))
    .values(remote_id=bindparam("b_remote"), etag=bindparam("b_etag"), digest=bindparam("b_digest"))
)
_DELETE_PENDING = delete(_PENDING).where(
    _PENDING.c.pair_id == bindparam("b_pair"), _PENDING.c.luid == bindparam("b_key")
)
_UPDATE_PENDING = (
    update(_PENDING)
    .where(_PENDING.c.pair_id == bindparam("b_pair"), _PENDING.c.luid == bindparam("b_key"))
    .values(guid=bindparam("b_guid"))
)


def _store_pairs(conn: Connection, device_pk: int, pairs: Mapping[str, PairState]) -> None:
    stored = {
        row.local_uri: row
        for row in conn.execute(
            select(
                _PAIRS.c.id,
                _PAIRS.c.local_uri,
                _PAIRS.c.remote_uri,
                _PAIRS.c.local_anchor,
                _PAIRS.c.remote_anchor,
                _PAIRS.c.last_mode,
                _PAIRS.c.resume_mode,
                _PAIRS.c.resume_anchor,
            ).where(_PAIRS.c.device_id == device_pk)
        )
    }
    gone = [row.id for uri, row in stored.items() if uri not in pairs]
    if gone:
        conn.execute(delete(_ITEMS).where(_ITEMS.c.pair_id.in_(gone)))
        conn.execute(delete(_PENDING).where(_PENDING.c.pair_id.in_(gone)))
        conn.execute(delete(_PAIRS).where(_PAIRS.c.id.in_(gone)))
    for uri, pair in pairs.items():
        values = {
            "remote_uri": pair.remote_uri,
            "local_anchor": pair.local_anchor,
            "remote_anchor": pair.remote_anchor,
            "last_mode": pair.last_mode,
            "resume_mode": pair.resume_mode,
            "resume_anchor": pair.resume_anchor,
        }
        row = stored.get(uri)
        if row is None:
            pair_pk = _insert(
                conn, insert(_PAIRS).values(device_id=device_pk, local_uri=uri, **values)
            )
        else:
            pair_pk = row.id
            if tuple(row[2:]) != tuple(values.values()):
                conn.execute(update(_PAIRS).where(_PAIRS.c.id == pair_pk).values(**values))
        _store_items(conn, pair_pk, pair.items, fresh=row is None)
        _store_pending(conn, pair_pk, pair.pending_maps, fresh=row is None)


def _store_items(
    conn: Connection, pair_pk: int, items: Mapping[str, ItemState], *, fresh: bool
) -> None:
    stored: dict[str, tuple[str | None, str, str]] = {}
    if not fresh:
        rows = conn.execute(_SELECT_ITEMS, {"b_pair": pair_pk}).all()
        stored = {local_id: (remote_id, etag, digest) for local_id, remote_id, etag, digest in rows}
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for local_id, item in items.items():
        old = stored.pop(local_id, None)
        if old is None:
            added.append(
                {
                    "pair_id": pair_pk,
                    "local_id": local_id,
                    "remote_id": item.remote_id,
                    "etag": item.etag,
                    "digest": item.digest,
                }
            )
        elif old != (item.remote_id, item.etag, item.digest):
            changed.append(
                {
                    "b_pair": pair_pk,
                    "b_key": local_id,
                    "b_remote": item.remote_id,
                    "b_etag": item.etag,
                    "b_digest": item.digest,
                }
            )
    # What is left in ``stored`` is gone; delete before insert (unique local ids).
    _delete_keys(conn, _ITEMS, _DELETE_ITEM, pair_pk, stored, everything=not items)
    if added:
        conn.execute(insert(_ITEMS), added)
    if changed:
        conn.execute(_UPDATE_ITEM, changed)


def _store_pending(
    conn: Connection, pair_pk: int, pending: Mapping[str, str], *, fresh: bool
) -> None:
    stored = {} if fresh else _read_pending(conn, pair_pk)
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for luid, guid in pending.items():
        old = stored.pop(luid, None)
        if old is None:
            added.append({"pair_id": pair_pk, "luid": luid, "guid": guid})
        elif old != guid:
            changed.append({"b_pair": pair_pk, "b_key": luid, "b_guid": guid})
    _delete_keys(conn, _PENDING, _DELETE_PENDING, pair_pk, stored, everything=not pending)
    if added:
        conn.execute(insert(_PENDING), added)
    if changed:
        conn.execute(_UPDATE_PENDING, changed)


def _read_pending(conn: Connection, pair_pk: int) -> dict[str, str]:
    # A list of rows: dict() takes a Result, which has keys(), for a mapping.
    return dict(conn.execute(_SELECT_PENDING, {"b_pair": pair_pk}).all())


def _delete_keys(
    conn: Connection,
    table: Table,
    statement: Any,
    pair_pk: int,
    keys: Mapping[str, object],
    *,
    everything: bool,
) -> None:
    if not keys:
        return
    if everything:
        conn.execute(delete(table).where(table.c.pair_id == pair_pk))
    else:
        conn.execute(statement, [{"b_pair": pair_pk, "b_key": key} for key in keys])


def _insert_run(conn: Connection, run: RunRecord) -> None:
    run_pk = _insert(
        conn,
        insert(_RUNS).values(
            dev_id=run.dev_id,
            role=run.role,
            started=run.started,
            finished=run.finished,
            status=run.status,
            message=run.message,
        ),
    )
    if run.stores:
        conn.execute(
            insert(_RUN_STORES),
            [
                {
                    "run_id": run_pk,
                    "position": position,
                    **{name: getattr(counts, name) for name in _COUNT_FIELDS},
                }
                for position, counts in enumerate(run.stores)
            ],
        )


def _insert(conn: Connection, statement: Insert) -> int:
    """Execute a single-row INSERT and return the new row's integer key."""
    key = conn.execute(statement).inserted_primary_key
    if key is None or not isinstance(key[0], int):  # pragma: no cover - all keys are integers
        raise RuntimeError(f"no primary key for {statement}")
    return key[0]


def _check_peer(peer: PeerState) -> None:
    for uri, pair in peer.pairs.items():
        if uri != pair.local_uri:
            raise ValueError(f"pair {pair.local_uri!r} filed under {uri!r}")
        for local_id, item in pair.items.items():
            if local_id != item.local_id:
                raise ValueError(f"item {item.local_id!r} filed under {local_id!r} in {uri!r}")


# --- connecting -----------------------------------------------------------------------


def _describe(url: URL) -> str:
    """How error messages name the database: the file, or the URL without password."""
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return str(url.database)
    return url.render_as_string(hide_password=True)


def _begin_immediate(engine: Engine) -> Engine:
    """The engine whose transactions take SQLite's write lock at BEGIN."""
    return engine.execution_options(**{_BEGIN: "IMMEDIATE"})


def _install_sqlite_hooks(engine: Engine, busy_timeout: float, *, wal: bool) -> None:
    busy_ms = max(0, round(busy_timeout * 1000))

    def on_connect(dbapi_connection: Any, _record: object) -> None:
        # Autocommit at the driver level: BEGIN is ours (on_begin), so reads
        # are transactional too and writers can ask for IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    def on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)


__all__ = ["DEFAULT_BUSY_TIMEOUT", "StateRepository", "default_url"]
