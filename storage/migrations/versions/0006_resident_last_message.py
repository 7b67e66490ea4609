"""residents.last_message_at: the last message (not an event), which alone opens the 48-hour
customer-service window; a follow, scan or menu click opens one minute (bot.cs_window). Filled
for existing residents from the message log.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_message_at", storage.models.UTCDateTime(timezone=True), nullable=True))
    # The last inbound message of each resident; events are logged as msg_type 'event:<name>'.
    op.execute(
        "UPDATE residents SET last_message_at = (SELECT max(m.created_at) FROM messages m"
        " WHERE m.openid = residents.openid AND m.direction = 'in' AND m.msg_type NOT LIKE 'event:%')"
    )


def downgrade() -> None:
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.drop_column("last_message_at")
