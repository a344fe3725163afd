"""Galleries referenced by key: alerts, alert rules, sightings and attendance events name
their gallery by ``gallery_id`` (a foreign key to ``galleries.id``) instead of its name.

Existing rows are converted by name. A row whose gallery no longer existed (deleted
before this revision, when nothing followed the name) is treated as the keys treat it
from now on: alerts (with their reviews), alert rules and attendance events of a deleted
gallery go with it (``ON DELETE CASCADE``); a sighting keeps its face but loses the
match (``ON DELETE SET NULL``, and its subject references are dropped as an erasure
drops them).

Revision ID: 0009_gallery_keys
Revises: 0008_identity_checks
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_gallery_keys"
down_revision = "0008_identity_checks"
branch_labels = None
depends_on = None

_BY_NAME = "(SELECT g.id FROM galleries g WHERE g.name = {table}.gallery)"
_NAME_OF = "(SELECT g.name FROM galleries g WHERE g.id = {table}.gallery_id)"


def _key_column(table: str) -> None:
    op.add_column(table, sa.Column("gallery_id", sa.BigInteger().with_variant(
        sa.Integer(), "sqlite")))
    op.execute(f"UPDATE {table} SET gallery_id = {_BY_NAME.format(table=table)}")


def _by_key(table: str, ondelete: str, index: tuple[str, list[str]] | None = None) -> None:
    """Drop ``table``'s name column for its filled ``gallery_id``, now a foreign key
    (required unless it is set to NULL with its gallery), and rebuild ``index`` on it."""
    if index is not None:
        op.drop_index(index[0], table)
    with op.batch_alter_table(table) as batch:
        batch.drop_column("gallery")
        if ondelete == "CASCADE":
            batch.alter_column("gallery_id", nullable=False)
        batch.create_foreign_key(f"fk_{table}_gallery_id_galleries", "galleries",
                                 ["gallery_id"], ["id"], ondelete=ondelete)
    if index is not None:
        op.create_index(index[0], table, index[1])


def upgrade() -> None:
    _key_column("alerts")
    op.execute("DELETE FROM alert_reviews WHERE alert_id IN "
               "(SELECT id FROM alerts WHERE gallery_id IS NULL)")
    op.execute("DELETE FROM alerts WHERE gallery_id IS NULL")
    _by_key("alerts", "CASCADE",
            ("ix_alerts_subject_camera_at", ["gallery_id", "subject", "camera", "at"]))

    # Its key changes: copied aside, the table made again, copied back.
    _rules(key=sa.Column("gallery_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                         sa.ForeignKey("galleries.id", ondelete="CASCADE",
                                       name="fk_alert_rules_gallery_id_galleries")),
           copy="SELECT g.id, r.two_person, r.suppress_seconds FROM alert_rules r "
                "JOIN galleries g ON g.name = r.gallery")

    _key_column("sightings")
    op.execute("UPDATE sightings SET subject = NULL, score = NULL, best_subject = NULL, "
               "best_score = NULL WHERE gallery IS NOT NULL AND gallery_id IS NULL")
    _by_key("sightings", "SET NULL")

    _key_column("attendance_events")
    op.execute("DELETE FROM attendance_events WHERE gallery_id IS NULL")
    _by_key("attendance_events", "CASCADE",
            ("ix_attendance_events_gallery_at", ["gallery_id", "at"]))


def _rules(key: sa.Column[object], copy: str) -> None:
    """Make ``alert_rules`` again keyed by ``key``, filled by ``copy`` (a SELECT of the
    key, two_person and suppress_seconds from the table as it was)."""
    op.create_table("alert_rules_copy", sa.Column("k", key.type),
                    sa.Column("two_person", sa.Boolean()),
                    sa.Column("suppress_seconds", sa.Integer()))
    op.execute(f"INSERT INTO alert_rules_copy (k, two_person, suppress_seconds) {copy}")
    op.drop_table("alert_rules")
    op.create_table(
        "alert_rules", key,
        sa.Column("two_person", sa.Boolean(), nullable=False),
        sa.Column("suppress_seconds", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(key.name, name="pk_alert_rules"),
    )
    op.execute(f"INSERT INTO alert_rules ({key.name}, two_person, suppress_seconds) "
               "SELECT k, two_person, suppress_seconds FROM alert_rules_copy")
    op.drop_table("alert_rules_copy")


def _name_column(table: str, nullable: bool) -> None:
    op.add_column(table, sa.Column("gallery", sa.String(100)))
    op.execute(f"UPDATE {table} SET gallery = {_NAME_OF.format(table=table)}")
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(f"fk_{table}_gallery_id_galleries", type_="foreignkey")
        if not nullable:
            batch.alter_column("gallery", nullable=False)
        batch.drop_column("gallery_id")


def downgrade() -> None:
    op.drop_index("ix_attendance_events_gallery_at", "attendance_events")
    _name_column("attendance_events", nullable=False)
    op.create_index("ix_attendance_events_gallery_at", "attendance_events", ["gallery", "at"])
    _name_column("sightings", nullable=True)
    _rules(key=sa.Column("gallery", sa.String(100)),
           copy="SELECT g.name, r.two_person, r.suppress_seconds FROM alert_rules r "
                "JOIN galleries g ON g.id = r.gallery_id")
    op.drop_index("ix_alerts_subject_camera_at", "alerts")
    _name_column("alerts", nullable=False)
    op.create_index("ix_alerts_subject_camera_at", "alerts",
                    ["gallery", "subject", "camera", "at"])
