"""Durable reminders: rows written in the caller's transaction, claimed by bot/schedule.py when due.

A reminder carries a ready message (channel, target, payload as for bot/outbox.enqueue) and the
cause it depends on (cause_type, cause_id). When it falls due the scheduler checks the cause is
still live (a registered check per cause_type) and hands the message to the outbox, or drops it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import fastsql
from storage.fastsql import Prepared
from storage.models import Reminder

# cause_type → async check(session, reminder) → True while the reminder should still go out.
CauseCheck = Callable[[AsyncSession, Reminder], Awaitable[bool]]
CAUSE_CHECKS: dict[str, CauseCheck] = {}


_TABLE = Reminder.__table__
_NEW_COLUMNS = ("kind", "due_at", "target", "payload", "cause_type", "cause_id", "dedup_key", "state", "attempts",
                "created_at")
# Built once, as text: SQLAlchemy's dialect upsert constructs are compiled anew on every call.
# ON CONFLICT … DO NOTHING is spelt alike by SQLite (3.24+) and PostgreSQL.
_INSERT_NEW = text(
    f"INSERT INTO reminders ({', '.join(_NEW_COLUMNS)}) VALUES ({', '.join(':' + c for c in _NEW_COLUMNS)}) "
    "ON CONFLICT (dedup_key) DO NOTHING"
).bindparams(*(bindparam(c, type_=_TABLE.c[c].type) for c in _NEW_COLUMNS))
# The same, as a fixed statement for a message's transaction (storage.fastsql): the reply path
# writes a resident's first idle nudge with it, without the unit of work.
NEW = Prepared(_INSERT_NEW)
# One reminder, its id back; no row back when its dedup key exists already (schedule()).
_NEW_ONE = Prepared(text(
    f"INSERT INTO reminders ({', '.join(_NEW_COLUMNS)}) VALUES ({', '.join(':' + c for c in _NEW_COLUMNS)}) "
    "ON CONFLICT (dedup_key) DO NOTHING RETURNING id"
).bindparams(*(bindparam(c, type_=_TABLE.c[c].type) for c in _NEW_COLUMNS)).columns(_TABLE.c.id))
_NEW_MANY: dict[int, Prepared] = {1: NEW}


def _insert_many(count: int) -> Prepared:
    """NEW for count rows in one multi-row INSERT (row i's parameters suffixed _i), built once per count."""
    done = _NEW_MANY.get(count)
    if done is None:
        rows = ", ".join("(" + ", ".join(f":{c}_{i}" for c in _NEW_COLUMNS) + ")" for i in range(count))
        done = _NEW_MANY[count] = Prepared(text(
            f"INSERT INTO reminders ({', '.join(_NEW_COLUMNS)}) VALUES {rows} ON CONFLICT (dedup_key) DO NOTHING"
        ).bindparams(*(bindparam(f"{c}_{i}", type_=_TABLE.c[c].type) for i in range(count) for c in _NEW_COLUMNS)))
    return done


def register_cause_check(cause_type: str, check: CauseCheck) -> None:
    """Declare how to tell whether reminders caused by cause_type are still wanted."""
    CAUSE_CHECKS[cause_type] = check


async def schedule(
    session: AsyncSession,
    *,
    kind: str,
    due_at: datetime,
    channel: str,
    target: str,
    payload: dict[str, Any],
    now: datetime,
    cause_type: str | None = None,
    cause_id: int | None = None,
    dedup_key: str | None = None,
    urgent: bool = False,
) -> Reminder | None:
    """Write a reminder, in the session as if loaded; None when one with dedup_key exists already.

    One INSERT … ON CONFLICT (dedup_key) DO NOTHING RETURNING id on the driver (storage.fastsql),
    the session's pending changes flushed first (a reminder added to it is seen): it was a SELECT
    of the key (autoflushing) and the unit of work's INSERT."""
    values = new_row({"kind": kind, "due_at": due_at, "channel": channel, "target": target, "payload": payload,
                      "cause_type": cause_type, "cause_id": cause_id, "dedup_key": dedup_key, "urgent": urgent},
                     now=now)
    await fastsql.flush(session)
    rows = (await fastsql.run(session, _NEW_ONE, values)).rows
    if not rows:
        return None
    return fastsql.adopt(session, Reminder, {"id": rows[0]["id"], **values, "last_error": None, "done_at": None})


def new_row(row: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """NEW's parameters for a reminder row: kind, due_at, channel, target, payload and optionally
    cause_type, cause_id, dedup_key, urgent (as for schedule)."""
    return {
        "kind": row["kind"], "due_at": row["due_at"], "target": row["target"],
        "payload": {"channel": row["channel"], "message": row["payload"], "urgent": row.get("urgent", False)},
        "cause_type": row.get("cause_type"), "cause_id": row.get("cause_id"), "dedup_key": row.get("dedup_key"),
        "state": "pending", "attempts": 0, "created_at": now,
    }


async def schedule_many(session: AsyncSession, rows: list[dict[str, Any]], *, now: datetime) -> None:
    """Add reminders in one statement, each skipped when its dedup_key exists already; for callers
    that need no Reminder objects back. A row is as for new_row."""
    if not rows:
        return
    if len(rows) == 1:
        await fastsql.run(session, NEW, new_row(rows[0], now=now))
        return
    params = {f"{name}_{i}": value for i, row in enumerate(rows) for name, value in new_row(row, now=now).items()}
    await fastsql.run(session, _insert_many(len(rows)), params)


async def drop_for_cause(
    session: AsyncSession, cause_type: str, cause_id: int, *, kinds: tuple[str, ...] | None = None
) -> int:
    """Drop the pending reminders of a cause that went away (booking cancelled, ticket closed)."""
    stmt = (
        update(Reminder)
        .where(Reminder.cause_type == cause_type, Reminder.cause_id == cause_id, Reminder.state == "pending")
        .values(state="dropped")
    )
    if kinds:
        stmt = stmt.where(Reminder.kind.in_(kinds))
    result = await session.execute(stmt)
    return int(result.rowcount or 0)
