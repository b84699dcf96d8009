"""Initial state schema: devices, datastore pairs, item mappings, pending
maps and the sync history.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Constraint and index names follow ``syncmld.state.models.NAMING_CONVENTION``
and are spelled out so that later (batch) migrations can refer to them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None


def upgrade() -> None:
    """Create every table of the first schema version."""
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dev_id", sa.String(), nullable=False),
        sa.Column("devinf", sa.LargeBinary(), nullable=True),
        sa.Column("nonce", sa.String(), nullable=True),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("updated", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.UniqueConstraint("dev_id", name="uq_devices_dev_id"),
    )
    op.create_table(
        "datastore_pairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("local_uri", sa.String(), nullable=False),
        sa.Column("remote_uri", sa.String(), nullable=False),
        sa.Column("local_anchor", sa.String(), nullable=True),
        sa.Column("remote_anchor", sa.String(), nullable=True),
        sa.Column("last_mode", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_datastore_pairs_device_id_devices",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_datastore_pairs"),
        sa.UniqueConstraint(
            "device_id", "local_uri", name="uq_datastore_pairs_device_id_local_uri"
        ),
    )
    op.create_table(
        "item_mappings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("local_id", sa.String(), nullable=False),
        sa.Column("remote_id", sa.String(), nullable=True),
        sa.Column("etag", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["datastore_pairs.id"],
            name="fk_item_mappings_pair_id_datastore_pairs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_item_mappings"),
        sa.UniqueConstraint("pair_id", "local_id", name="uq_item_mappings_pair_id_local_id"),
    )
    op.create_index("ix_item_mappings_pair_id_remote_id", "item_mappings", ["pair_id", "remote_id"])
    op.create_table(
        "pending_maps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("luid", sa.String(), nullable=False),
        sa.Column("guid", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pair_id"],
            ["datastore_pairs.id"],
            name="fk_pending_maps_pair_id_datastore_pairs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_pending_maps"),
        sa.UniqueConstraint("pair_id", "luid", name="uq_pending_maps_pair_id_luid"),
    )
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dev_id", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("started", sa.Double(), nullable=False),
        sa.Column("finished", sa.Double(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sync_runs"),
    )
    op.create_index("ix_sync_runs_dev_id_started", "sync_runs", ["dev_id", "started"])
    op.create_index("ix_sync_runs_started", "sync_runs", ["started"])
    op.create_table(
        "sync_run_stores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("local_uri", sa.String(), nullable=False),
        sa.Column("remote_uri", sa.String(), nullable=False),
        sa.Column("mode", sa.Integer(), nullable=True),
        sa.Column("local_added", sa.Integer(), nullable=False),
        sa.Column("local_replaced", sa.Integer(), nullable=False),
        sa.Column("local_deleted", sa.Integer(), nullable=False),
        sa.Column("remote_added", sa.Integer(), nullable=False),
        sa.Column("remote_replaced", sa.Integer(), nullable=False),
        sa.Column("remote_deleted", sa.Integer(), nullable=False),
        sa.Column("conflicts", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["sync_runs.id"],
            name="fk_sync_run_stores_run_id_sync_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sync_run_stores"),
        sa.UniqueConstraint("run_id", "position", name="uq_sync_run_stores_run_id_position"),
    )


def downgrade() -> None:
    """Drop every table (the history included)."""
    op.drop_table("sync_run_stores")
    op.drop_index("ix_sync_runs_started", table_name="sync_runs")
    op.drop_index("ix_sync_runs_dev_id_started", table_name="sync_runs")
    op.drop_table("sync_runs")
    op.drop_table("pending_maps")
    op.drop_index("ix_item_mappings_pair_id_remote_id", table_name="item_mappings")
    op.drop_table("item_mappings")
    op.drop_table("datastore_pairs")
    op.drop_table("devices")
