"""Device keys are bound to cameras: the cameras an edge node's key may report for.

Revision ID: 0005_device_cameras
Revises: 0004_people
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_device_cameras"
down_revision = "0004_people"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A JSON list of camera names; NULL (keys made before the binding, and every key of
    # another role) binds to no camera: an existing device key reports for nothing until
    # an admin binds it ('frvs key update KEY_ID --camera CAM').
    op.add_column("api_keys", sa.Column("cameras", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("cameras")
