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


def _upgraded(tmp_path: Path, revision: str, rows: list[tuple[str, tuple[object, ...]]]) -> sqlite3.Connection:
    """A database made at revision, given rows (SQL, parameters), then upgraded to head; open."""
    from storage.migrate import upgrade

    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url, revision)
    db = sqlite3.connect(path)
    try:
        for sql, params in rows:
            db.execute(sql, params)
        db.commit()
    finally:
        db.close()
    upgrade(url, "head")
    return sqlite3.connect(path)


def test_0004_gives_existing_tickets_their_building_key(tmp_path: Path) -> None:
    """Tickets written before building_key existed get it from their building, so the duplicate
    search (which now compares keys) still finds reports made before the upgrade."""
    db = _upgraded(tmp_path, "0003", [
        ("INSERT INTO tickets (id, number, kind, status, fields, summary, urgency, building, reporters,"
         " proactive, overdue, created_at, updated_at) VALUES (?, ?, 'complaint', 'open', '{}', '',"
         " 'normal', ?, 1, 0, 0, '2026-11-23 00:00:00', '2026-11-23 00:00:00')", (n, f"T{n}", building))
        for n, building in enumerate(["３号楼", "12栋", None, "楼"], start=1)
    ])
    try:
        keys = dict(db.execute("SELECT number, building_key FROM tickets").fetchall())
        indexes = {row[1] for row in db.execute("PRAGMA index_list('tickets')")}
    finally:
        db.close()
    assert keys == {"T1": "3", "T2": "12", "T3": None, "T4": None}
    assert "ix_tickets_duplicate" in indexes


def test_0006_gives_existing_residents_the_time_of_their_last_message(tmp_path: Path) -> None:
    """Residents written before last_message_at existed get it from the message log (events do not
    count), so the 48-hour window of someone who wrote yesterday stays open after the upgrade."""
    residents = [
        ("INSERT INTO residents (openid, subscribed, last_inbound_at, window_opened_by, created_at, updated_at)"
         " VALUES (?, 1, '2026-11-23 09:00:00', ?, '2026-11-01 00:00:00', '2026-11-23 09:00:00')", (openid, by))
        for openid, by in [("oWrote", "click"), ("oClicked", "click"), ("oSilent", None)]
    ]
    messages = [
        ("INSERT INTO messages (openid, direction, msg_type, content, created_at) VALUES (?, ?, ?, '', ?)", row)
        for row in [
            ("oWrote", "in", "text", "2026-11-22 10:00:00"),
            ("oWrote", "in", "voice", "2026-11-23 08:00:00"),
            ("oWrote", "out", "text", "2026-11-23 08:00:01"),
            ("oWrote", "in", "event:click", "2026-11-23 09:00:00"),
            ("oClicked", "in", "event:click", "2026-11-23 09:00:00"),
        ]
    ]
    db = _upgraded(tmp_path, "0005", residents + messages)
    try:
        last = dict(db.execute("SELECT openid, last_message_at FROM residents").fetchall())
    finally:
        db.close()
    assert last == {"oWrote": "2026-11-23 08:00:00", "oClicked": None, "oSilent": None}


async def test_current_revision_tells_a_never_migrated_database_from_a_migrated_one(tmp_path: Path) -> None:
    """What serve checks before it starts (else: `communitybot db upgrade`)."""
    from storage.migrate import current_revision, head_revision, upgrade_async

    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    assert await current_revision(url) is None
    await upgrade_async(url)
    assert await current_revision(url) == head_revision()
