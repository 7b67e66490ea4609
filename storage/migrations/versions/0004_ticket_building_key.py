"""tickets.building_key: the building as routing compares it ('３号楼' and '3栋' are both '3'),
written when a ticket is created, so that the duplicate search finds one category's reports at
one building by index instead of reading every active report of the category and comparing
buildings in Python (a burst of one problem — a water cut — made each new report read all the
earlier ones)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.roster import normalize_building

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TICKETS = sa.table("tickets", sa.column("id", sa.BigInteger), sa.column("building", sa.String),
                    sa.column("building_key", sa.String))


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("building_key", sa.String(length=16), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_TICKETS.c.id, _TICKETS.c.building).where(_TICKETS.c.building.is_not(None)))
    keys = [{"ticket_id": ticket_id, "key": normalize_building(building) or None} for ticket_id, building in rows]
    if keys:
        bind.execute(
            _TICKETS.update().where(_TICKETS.c.id == sa.bindparam("ticket_id")).values(building_key=sa.bindparam("key")),
            keys,
        )
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index("ix_tickets_duplicate", ["category", "building_key", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_duplicate")
        batch_op.drop_column("building_key")
