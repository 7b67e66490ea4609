"""pushes found by index: a resident's by (channel, target) — the customer-service quota the
sender and the console count, the pushes held for the night, an erasure's pending ones — and a
ticket's by ticket_id (the console lists its pushes that never arrived), not by scanning the outbox

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_channel_target", "outbox", ["channel", "target"])
    op.create_index("ix_outbox_ticket", "outbox", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_ticket", table_name="outbox")
    op.drop_index("ix_outbox_channel_target", table_name="outbox")
