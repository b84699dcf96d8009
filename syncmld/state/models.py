"""The state database schema as SQLAlchemy 2 typed declarative models.

One row in ``devices`` per peer, one ``datastore_pairs`` row per paired
datastore, and under each pair its item mappings and the client-role maps
not yet acknowledged.  ``sync_runs`` / ``sync_run_stores`` hold the history.

Shape decisions:

* Every foreign key below ``devices`` is ``ON DELETE CASCADE`` in the
  database *and* the ORM relationships cascade (with ``passive_deletes``), so
  deleting a device removes its pairs, mappings and pending maps whether it
  is deleted with a Core ``DELETE`` or through a session.
* The history is keyed by the ``dev_id`` string, not by a foreign key: a
  failed first contact is recorded without creating any state for the peer
  (:meth:`~syncmld.state.repository.StateRepository.record_run` must leave
  the state untouched), and the history of a device outlives a change of its
  stored state.  ``forget`` removes it explicitly.
* Times are seconds since the epoch as ``DOUBLE`` columns, the same floats
  the engine hands over (:class:`~syncmld.engine.state.RunRecord`), so they
  come back bit for bit.
* ``devices.devinf`` is the DevInf document encoded as XML
  (:func:`syncmld.protocol.codec.encode_devinf`): self-describing and
  readable with ``sqlite3``, and independent of the dataclasses' layout.
* Strings carry no length: SQLite and PostgreSQL need none.  Constraint and
  index names come from :data:`NAMING_CONVENTION` so that migrations can name
  them (SQLite batch migrations need names).

The schema changes only through a migration in
``syncmld/state/migrations/versions/``; a test checks that the migrated
schema equals this module's metadata.
"""

from __future__ import annotations

from sqlalchemy import (
    Double,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Constraint/index naming used by the models and spelled out in migrations.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the state schema (one :class:`MetaData`)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        str: String(),
        float: Double(),
        bytes: LargeBinary(),
    }


class Device(Base):
    """A peer: a phone or client talking to us, or a server we talk to.

    ``created``/``updated`` are the caller's times of the first and the last
    stored session.
    """

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    dev_id: Mapped[str] = mapped_column(unique=True)
    devinf: Mapped[bytes | None]
    nonce: Mapped[str | None]
    created: Mapped[float]
    updated: Mapped[float]

    pairs: Mapped[list[DatastorePair]] = relationship(
        back_populates="device", cascade="all, delete-orphan", passive_deletes=True
    )


class DatastorePair(Base):
    """One local datastore paired with one database of a device."""

    __tablename__ = "datastore_pairs"
    __table_args__ = (UniqueConstraint("device_id", "local_uri"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    local_uri: Mapped[str]
    remote_uri: Mapped[str]
    local_anchor: Mapped[str | None]
    remote_anchor: Mapped[str | None]
    last_mode: Mapped[int | None]
    #: A suspended session's alert code and the client's Next anchor naming it.
    resume_mode: Mapped[int | None]
    resume_anchor: Mapped[str | None]

    device: Mapped[Device] = relationship(back_populates="pairs")
    items: Mapped[list[ItemMapping]] = relationship(
        back_populates="pair", cascade="all, delete-orphan", passive_deletes=True
    )
    pending_maps: Mapped[list[PendingMap]] = relationship(
        back_populates="pair", cascade="all, delete-orphan", passive_deletes=True
    )


class ItemMapping(Base):
    """An item as both sides last agreed on it (local id <-> remote id)."""

    __tablename__ = "item_mappings"
    __table_args__ = (
        UniqueConstraint("pair_id", "local_id"),
        # Looking an item up by the peer's id (its Replace/Delete/Map).
        Index("ix_item_mappings_pair_id_remote_id", "pair_id", "remote_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("datastore_pairs.id", ondelete="CASCADE"))
    local_id: Mapped[str]
    remote_id: Mapped[str | None]
    etag: Mapped[str]
    digest: Mapped[str]

    pair: Mapped[DatastorePair] = relationship(back_populates="items")


class PendingMap(Base):
    """Client role: a LUID -> GUID mapping sent but not yet acknowledged."""

    __tablename__ = "pending_maps"
    __table_args__ = (UniqueConstraint("pair_id", "luid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pair_id: Mapped[int] = mapped_column(ForeignKey("datastore_pairs.id", ondelete="CASCADE"))
    luid: Mapped[str]
    guid: Mapped[str]

    pair: Mapped[DatastorePair] = relationship(back_populates="pending_maps")


class SyncRun(Base):
    """One session in the history (see :class:`~syncmld.engine.state.RunRecord`)."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        # history(dev_id) and history() page newest first.
        Index("ix_sync_runs_dev_id_started", "dev_id", "started"),
        Index("ix_sync_runs_started", "started"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dev_id: Mapped[str]
    role: Mapped[str]
    started: Mapped[float]
    finished: Mapped[float | None]
    status: Mapped[int]
    message: Mapped[str]

    stores: Mapped[list[SyncRunStore]] = relationship(
        back_populates="run",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SyncRunStore.position",
    )


class SyncRunStore(Base):
    """What one session did to one datastore pair (``StoreCounts``).

    ``position`` keeps the order of :attr:`RunRecord.stores`.
    """

    __tablename__ = "sync_run_stores"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id", ondelete="CASCADE"))
    position: Mapped[int]
    local_uri: Mapped[str]
    remote_uri: Mapped[str]
    mode: Mapped[int | None]
    local_added: Mapped[int]
    local_replaced: Mapped[int]
    local_deleted: Mapped[int]
    remote_added: Mapped[int]
    remote_replaced: Mapped[int]
    remote_deleted: Mapped[int]
    conflicts: Mapped[int]
    status: Mapped[int]
    message: Mapped[str]

    run: Mapped[SyncRun] = relationship(back_populates="stores")


__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "DatastorePair",
    "Device",
    "ItemMapping",
    "PendingMap",
    "SyncRun",
    "SyncRunStore",
]
