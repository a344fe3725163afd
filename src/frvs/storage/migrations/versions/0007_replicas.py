"""Several replicas on one store: camera leases, the durable event log,
rate limits shared by the replicas, the
index change log of each gallery, webhooks and their delivery queue.

Revision ID: 0007_replicas
Revises: 0006_edge
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from frvs.storage.schema import BigId, UTCDateTime

revision = "0007_replicas"
down_revision = "0006_edge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Which replica runs each camera, until when (pipeline/leases.py).
    op.create_table(
        "camera_leases",
        sa.Column("camera", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.Column("renewed_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.JSON()),
    )
    # The durable event log every replica's live stream serves (storage/events.py).
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("subject_ref", sa.String(320)),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_subject_ref", "events", ["subject_ref"])
    # Each gallery's template additions and removals, for the indexes' catch-up
    # (storage/index/catalog.py). Templates stored before it are in every first load.
    op.create_table(
        "index_changes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("gallery_id", BigId, sa.ForeignKey("galleries.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        sa.Column("space_key", sa.String(200), nullable=False),
        sa.Column("added", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_index_changes_gallery_id_id", "index_changes", ["gallery_id", "id"])
    # The change-log position of each index the replicas share (a Milvus collection).
    op.create_table(
        "shared_indexes",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
    )
    # Webhooks managed over the API and CLI, and the durable queue of their deliveries
    # that any replica works (storage/webhooks.py).
    op.create_table(
        "webhooks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", BigId, sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("event_id", BigId, nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime()),
    )
    op.create_index("ix_webhook_deliveries_webhook_id", "webhook_deliveries", ["webhook_id"])
    op.create_index("ix_webhook_deliveries_state_next_at", "webhook_deliveries",
                    ["state", "next_at"])
    # Per-key token buckets shared by the replicas (storage/rates.py).
    op.create_table(
        "rate_buckets",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("key_id", sa.String(64), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("stamp", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_buckets")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("shared_indexes")
    op.drop_index("ix_index_changes_gallery_id_id", table_name="index_changes")
    op.drop_table("index_changes")
    op.drop_index("ix_events_subject_ref", table_name="events")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_table("events")
    op.drop_table("camera_leases")
