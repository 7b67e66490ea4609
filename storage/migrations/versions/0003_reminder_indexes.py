"""reminders found by index: a resident's pending nudge by (target, kind), not by scanning every
pending reminder (each message in a flow moves it); a cause's reminders by (cause_type, cause_id),
not by scanning them all (a booking counts its own, a closed ticket drops its own)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_reminders_target_kind", "reminders", ["target", "kind"])
    op.create_index("ix_reminders_cause", "reminders", ["cause_type", "cause_id"])


def downgrade() -> None:
    op.drop_index("ix_reminders_cause", table_name="reminders")
    op.drop_index("ix_reminders_target_kind", table_name="reminders")
