"""The migration builds exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from bot.services import Services
from storage.models import Base


def _diff(conn: Connection) -> list[object]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


async def test_migrated_schema_matches_models(services: Services) -> None:
    async with services.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == [], f"models and migration differ; run `make migration`: {diff}"
