"""The migration builds exactly the schema the models describe, on both databases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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


def test_0004_gives_existing_tickets_their_building_key(tmp_path: Path) -> None:
    """Tickets written before building_key existed get it from their building, so the duplicate
    search (which now compares keys) still finds reports made before the upgrade."""
    from storage.migrate import upgrade

    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, "0003")
    db = sqlite3.connect(path)
    try:
        for n, building in enumerate(["３号楼", "12栋", None, "楼"], start=1):
            db.execute(
                "INSERT INTO tickets (id, number, kind, status, fields, summary, urgency, building, reporters,"
                " proactive, overdue, created_at, updated_at) VALUES (?, ?, 'complaint', 'open', '{}', '',"
                " 'normal', ?, 1, 0, 0, '2026-11-23 00:00:00', '2026-11-23 00:00:00')",
                (n, f"T{n}", building),
            )
        db.commit()
    finally:
        db.close()
    upgrade(url, "head")
    db = sqlite3.connect(path)
    try:
        keys = dict(db.execute("SELECT number, building_key FROM tickets").fetchall())
        indexes = {row[1] for row in db.execute("PRAGMA index_list('tickets')")}
    finally:
        db.close()
    assert keys == {"T1": "3", "T2": "12", "T3": None, "T4": None}
    assert "ix_tickets_duplicate" in indexes
