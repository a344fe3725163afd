"""Edge intake: idempotency keys of accepted reports (exactly-once intake) and the
registry of edge nodes.

Revision ID: 0006_edge
Revises: 0005_device_cameras
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from frvs.storage.schema import BigId, UTCDateTime

revision = "0006_edge"
down_revision = "0005_device_cameras"
branch_labels = None
depends_on = None

def upgrade() -> None:
    op.create_table(
        "edge_reports",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("node", sa.String(32), nullable=False),
        sa.Column("camera", sa.String(100), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("sighting_id", sa.BigInteger()),
        sa.Column("alert_id", sa.BigInteger()),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        # The idempotency key: a report sent twice is stored once, whoever races.
        sa.UniqueConstraint("node", "camera", "track_id", "first_seen",
                            name="ux_edge_reports_key"),
    )
    op.create_index("ix_edge_reports_received_at", "edge_reports", ["received_at"])
    op.create_table(
        "edge_nodes",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cameras", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(50)),
        sa.Column("pack", sa.String(200)),
        sa.Column("location", sa.Text()),
        sa.Column("first_contact", UTCDateTime(), nullable=False),
        sa.Column("last_heartbeat", UTCDateTime()),
        sa.Column("backlog", sa.Integer(), nullable=False),
        sa.Column("backlog_bytes", sa.BigInteger(), nullable=False),
        sa.Column("oldest_pending", UTCDateTime()),
        sa.Column("clock_offset_s", sa.Float()),
        sa.Column("dropped_crops", sa.BigInteger(), nullable=False),
        sa.Column("dropped_reports", sa.BigInteger(), nullable=False),
        sa.Column("reports", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("edge_nodes")
    op.drop_index("ix_edge_reports_received_at", "edge_reports")
    op.drop_table("edge_reports")
