"""Keys belong to people: a key's immutable holder, the holder of each audited actor and
of each alert review (the two-person rule counts holders, not key names).

Revision ID: 0004_people
Revises: 0003_video
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_people"
down_revision = "0003_video"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("holder", sa.String(200)))
    # Keys made before holders existed belong to whoever their name says, as of now;
    # from here on a rename no longer changes the person.
    op.execute("UPDATE api_keys SET holder = lower(trim(name))")
    op.create_index("ix_api_keys_holder", "api_keys", ["holder"])
    op.add_column("audit_entries", sa.Column("actor_holder", sa.String(200)))
    op.add_column("alert_reviews", sa.Column("holder", sa.String(200)))
    op.add_column("alert_reviews", sa.Column("key_id", sa.String(32)))
    # One review per person per alert, enforced by the database as well as the service.
    op.create_index("ux_alert_reviews_holder", "alert_reviews", ["alert_id", "holder"],
                    unique=True)


def downgrade() -> None:
    op.drop_index("ux_alert_reviews_holder", "alert_reviews")
    with op.batch_alter_table("alert_reviews") as batch:
        batch.drop_column("key_id")
        batch.drop_column("holder")
    with op.batch_alter_table("audit_entries") as batch:
        batch.drop_column("actor_holder")
    op.drop_index("ix_api_keys_holder", "api_keys")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("holder")
