"""A random nonce on every index change (``index_changes.nonce``).

An index snapshot records the change-log position it reflects and the change at that
position. A database restored from a backup and used again hands out the same change
and template ids a second time (SQLite reuses the highest rowid; a restored PostgreSQL
sequence restarts where the backup left it), so an id and its template id do not tell
the two timelines apart; a random nonce drawn when the change is written does. Rows
written before this revision keep NULL, which a snapshot's anchor records as such.

Revision ID: 0010_change_nonces
Revises: 0009_gallery_keys
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_change_nonces"
down_revision = "0009_gallery_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("index_changes", sa.Column("nonce", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("index_changes") as batch:
        batch.drop_column("nonce")
