"""messages.delivery: each WeChat delivery recorded once, under a unique index

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery", sa.String(length=200), nullable=True))
        batch_op.create_index("uq_messages_delivery", ["delivery"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("uq_messages_delivery")
        batch_op.drop_column("delivery")
