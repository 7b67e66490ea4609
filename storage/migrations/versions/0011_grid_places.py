"""grids.places: the common places a grid covers besides its buildings (小区西门, 中心广场, 地下车库),
so that a report at one of them goes to that grid's worker instead of waiting in the staff queue.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grids") as batch:
        batch.add_column(sa.Column("places", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("grids") as batch:
        batch.drop_column("places")
