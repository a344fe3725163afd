"""Identity checks at a counter: one row per check with its decision and the digests of
the document image and the live capture (no template, no picture); and the challenges
the server issued, each answered at most once.

Revision ID: 0008_identity_checks
Revises: 0007_replicas
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from frvs.storage.schema import UTCDateTime

revision = "0008_identity_checks"
down_revision = "0007_replicas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_checks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(300), nullable=False),
        sa.Column("key_id", sa.String(32)),
        sa.Column("holder", sa.String(200)),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("challenge", sa.String(100), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("document_sha256", sa.String(64), nullable=False),
        sa.Column("capture_sha256", sa.String(64), nullable=False),
        sa.Column("pack", sa.String(100), nullable=False),
        sa.Column("target_fmr", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("calibrated", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("match", sa.Boolean(), nullable=False),
        sa.Column("liveness_passed", sa.Boolean(), nullable=False),
        sa.Column("liveness_reasons", sa.JSON(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("images_kept", sa.Boolean(), nullable=False),
        sa.Column("images_until", UTCDateTime()),
        sa.Column("media_path", sa.String(100)),
    )
    op.create_index("ix_identity_checks_holder_at", "identity_checks", ["holder", "at"])
    op.create_index("ix_identity_checks_actor_at", "identity_checks", ["actor", "at"])
    op.create_index("ix_identity_checks_images_until", "identity_checks", ["images_until"])
    op.create_table(
        "identity_challenges",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("actor", sa.String(300), nullable=False),
        sa.Column("holder", sa.String(200)),
        sa.Column("moves", sa.String(100), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime()),
    )
    op.create_index("ix_identity_challenges_expires_at", "identity_challenges",
                    ["expires_at"])


def downgrade() -> None:
    op.drop_table("identity_challenges")
    op.drop_table("identity_checks")
