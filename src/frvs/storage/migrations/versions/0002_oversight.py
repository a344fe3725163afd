"""API keys and the audit trail (hash chain with a head row).

Revision ID: 0002_oversight
Revises: 0001_galleries
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from frvs.storage.schema import BigId, UTCDateTime

revision = "0002_oversight"
down_revision = "0001_galleries"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_id", name="uq_api_keys_key_id"),
        sa.UniqueConstraint("token_sha256", name="uq_api_keys_token_sha256"),
    )
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_kind", sa.String(10), nullable=False),
        sa.Column("actor_name", sa.String(200), nullable=False),
        sa.Column("key_id", sa.String(32)),
        sa.Column("role", sa.String(20)),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("case_reference", sa.Text()),
        sa.Column("purpose", sa.Text()),
        sa.Column("subjects", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_entries"),
    )
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])
    op.create_index("ix_audit_entries_action", "audit_entries", ["action"])
    op.create_table(
        "audit_subjects",
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ref", sa.String(320), nullable=False),
        sa.PrimaryKeyConstraint("seq", "ref", name="pk_audit_subjects"),
        sa.ForeignKeyConstraint(["seq"], ["audit_entries.seq"], ondelete="CASCADE",
                                name="fk_audit_subjects_seq_audit_entries"),
    )
    op.create_index("ix_audit_subjects_ref", "audit_subjects", ["ref"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("base_seq", sa.BigInteger(), nullable=False),
        sa.Column("base_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    # The one head row exists from the start, so appends only ever lock and update it.
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH, "base_seq": 0,
                           "base_hash": GENESIS_HASH}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_table("audit_subjects")
    op.drop_table("audit_entries")
    op.drop_table("api_keys")
