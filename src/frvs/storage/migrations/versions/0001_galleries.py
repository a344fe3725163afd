"""Galleries, subjects and templates.

Revision ID: 0001_galleries
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from frvs.storage.schema import BigId, UTCDateTime

revision = "0001_galleries"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "galleries",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("purpose", sa.Text()),
        sa.Column("legal_basis", sa.Text()),
        sa.Column("retention_days", sa.Integer()),
        sa.Column("threshold", sa.Float()),
        sa.Column("fmr_target", sa.Float()),
        sa.Column("keep_crops", sa.Boolean(), nullable=False),
        sa.Column("pack", sa.String(100), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_galleries"),
        sa.UniqueConstraint("name", name="uq_galleries_name"),
    )
    op.create_table(
        "subjects",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("gallery_id", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(200)),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_subjects"),
        sa.ForeignKeyConstraint(["gallery_id"], ["galleries.id"], ondelete="CASCADE",
                                name="fk_subjects_gallery_id_galleries"),
        sa.UniqueConstraint("gallery_id", "external_id", name="uq_subjects_gallery_id"),
    )
    op.create_index("ix_subjects_gallery_id", "subjects", ["gallery_id"])
    op.create_index("ix_subjects_expires_at", "subjects", ["expires_at"])
    op.create_table(
        "templates",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("gallery_id", sa.BigInteger(), nullable=False),
        sa.Column("space_key", sa.String(200), nullable=False),
        sa.Column("pack", sa.String(100), nullable=False),
        sa.Column("pack_version", sa.String(100), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(20), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.Text()),
        sa.Column("box", sa.JSON(), nullable=False),
        sa.Column("crop_path", sa.Text()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_templates"),
        sa.ForeignKeyConstraint(["subject_id"], ["subjects.id"], ondelete="CASCADE",
                                name="fk_templates_subject_id_subjects"),
        sa.ForeignKeyConstraint(["gallery_id"], ["galleries.id"], ondelete="CASCADE",
                                name="fk_templates_gallery_id_galleries"),
        sa.UniqueConstraint("subject_id", "space_key", "image_sha256",
                            name="uq_templates_subject_space_image"),
    )
    op.create_index("ix_templates_gallery_space_id", "templates",
                    ["gallery_id", "space_key", "id"])
    op.create_index("ix_templates_subject_id", "templates", ["subject_id"])


def downgrade() -> None:
    op.drop_table("templates")
    op.drop_table("subjects")
    op.drop_table("galleries")
