"""outages and outage_registrations: staff announce a water, power, gas or heating outage per
building with an expected end (bot.outages); residents who report it may register to be told
when it ends.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("buildings", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expected_end", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_outages_status_ended", "outages", ["status", "ended_at"])
    op.create_table(
        "outage_registrations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("outage_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("openid", sa.String(length=64), nullable=False),
        sa.Column("building", sa.String(length=16), nullable=True),
        sa.Column("created_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("notified_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["outage_id"], ["outages.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("outage_id", "openid", name="uq_outage_registration"),
    )


def downgrade() -> None:
    op.drop_table("outage_registrations")
    op.drop_index("ix_outages_status_ended", table_name="outages")
    op.drop_table("outages")
