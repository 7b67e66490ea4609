"""outages.scope_key and outages.excluded: one active announcement per kind and stated buildings
(a unique index over the active ones, so the same announcement made at once in two processes is
one row), and a whole-community announcement whose buildings end one by one.

Rows made before get their key from their buildings; should two active ones already share it, the
later keeps its own key (with its id), so the upgrade never fails nor changes what residents read.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("status = 'active'")


def _key(buildings: list[object] | None) -> str:
    keys = sorted({str(b) for b in buildings or ()}, key=lambda k: (not k.isdigit(), k.zfill(8)))
    return ",".join(keys) or "*"


def upgrade() -> None:
    with op.batch_alter_table("outages") as batch:
        batch.add_column(sa.Column("scope_key", sa.String(length=400), nullable=False, server_default="*"))
        batch.add_column(sa.Column("excluded", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("outages") as batch:
        batch.alter_column("scope_key", server_default=None)
        batch.alter_column("excluded", server_default=None)
    outages = sa.table("outages", sa.column("id", sa.BigInteger()), sa.column("kind", sa.String()),
                       sa.column("status", sa.String()), sa.column("buildings", sa.JSON()),
                       sa.column("scope_key", sa.String()))
    bind = op.get_bind()
    seen: set[tuple[str, str]] = set()
    for row in bind.execute(sa.select(outages.c.id, outages.c.kind, outages.c.status, outages.c.buildings)
                            .order_by(outages.c.id)).all():
        key = _key(row.buildings)
        if row.status == "active":
            if (row.kind, key) in seen:
                key = f"{key}#{row.id}"
            seen.add((row.kind, key))
        bind.execute(outages.update().where(outages.c.id == row.id).values(scope_key=key))
    op.create_index("uq_outages_active_scope", "outages", ["kind", "scope_key"], unique=True,
                    postgresql_where=_ACTIVE, sqlite_where=_ACTIVE)


def downgrade() -> None:
    op.drop_index("uq_outages_active_scope", table_name="outages")
    with op.batch_alter_table("outages") as batch:
        batch.drop_column("excluded")
        batch.drop_column("scope_key")
