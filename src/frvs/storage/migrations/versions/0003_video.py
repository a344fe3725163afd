"""Cameras, sightings, alerts (+ reviews, rules) and attendance events.

Revision ID: 0003_video
Revises: 0002_oversight
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from frvs.storage.schema import BigId, UTCDateTime

revision = "0003_video"
down_revision = "0002_oversight"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("location", sa.Text()),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("sample_fps", sa.Float()),
        sa.Column("roi", sa.JSON()),
        sa.Column("galleries", sa.JSON(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("keep_crops", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cameras"),
        sa.UniqueConstraint("name", name="uq_cameras_name"),
    )
    op.create_table(
        "sightings",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("camera", sa.String(100), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("space_key", sa.String(200)),
        sa.Column("vector", sa.LargeBinary()),
        sa.Column("gallery", sa.String(100)),
        sa.Column("subject", sa.String(200)),
        sa.Column("score", sa.Float()),
        sa.Column("best_subject", sa.String(200)),
        sa.Column("best_score", sa.Float()),
        sa.Column("crop_path", sa.Text()),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sightings"),
    )
    op.create_index("ix_sightings_camera_first_seen", "sightings", ["camera", "first_seen"])
    op.create_index("ix_sightings_expires_at", "sightings", ["expires_at"])
    op.create_table(
        "alerts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("camera", sa.String(100), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("gallery", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("frame_time", sa.Float(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("crop_path", sa.Text()),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("two_person", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_subject_camera_at", "alerts",
                    ["gallery", "subject", "camera", "at"])
    op.create_index("ix_alerts_status", "alerts", ["status"])
    op.create_table(
        "alert_reviews",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("note", sa.Text()),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_reviews"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE",
                                name="fk_alert_reviews_alert_id_alerts"),
        sa.UniqueConstraint("alert_id", "reviewer", name="uq_alert_reviews_alert_id"),
    )
    op.create_index("ix_alert_reviews_alert_id", "alert_reviews", ["alert_id"])
    op.create_table(
        "alert_rules",
        sa.Column("gallery", sa.String(100), nullable=False),
        sa.Column("two_person", sa.Boolean(), nullable=False),
        sa.Column("suppress_seconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("gallery", name="pk_alert_rules"),
    )
    op.create_table(
        "attendance_events",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("gallery", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("camera", sa.String(100), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attendance_events"),
    )
    op.create_index("ix_attendance_events_gallery_at", "attendance_events", ["gallery", "at"])


def downgrade() -> None:
    op.drop_table("attendance_events")
    op.drop_table("alert_rules")
    op.drop_table("alert_reviews")
    op.drop_table("alerts")
    op.drop_table("sightings")
    op.drop_table("cameras")
