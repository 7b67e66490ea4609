"""Tickets: numbers, creation, the status machine and the event history.

This module is the only writer of ticket events. Every function works inside the caller's
session and transaction, so a ticket, its events and the pushes it causes commit together.

Life (modelled on 12345 接诉即办): open → dispatched → accepted → resolved → closed;
不满意 reopens; 吹哨 and overdue escalate; a hand-off is created escalated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from bot import metrics
from bot.roster import normalize_building
from storage import fastsql
from storage.db import side_engine
from storage.fastsql import Prepared
from storage.models import Ticket, TicketCounter, TicketEvent

KINDS = ("complaint", "mediation", "elderly_service", "volunteer_signup", "handoff")
STATUSES = (
    "open", "dispatched", "accepted", "resolved", "closed", "reopened", "escalated", "cancelled",
)
ACTIVE = ("open", "dispatched", "accepted", "reopened", "escalated")


@dataclass(frozen=True)
class Transition:
    """An action: the statuses it may start from and the status it leads to."""

    sources: tuple[str, ...]
    target: str


TRANSITIONS: dict[str, Transition] = {
    "assign": Transition(("open", "reopened", "escalated", "dispatched", "accepted"), "dispatched"),
    # An escalated ticket still names its owner, who may still take it, finish it or hand it back
    # (the late work is recorded; staff were told when it was escalated).
    "accept": Transition(("dispatched", "reopened", "escalated"), "accepted"),
    "resolve": Transition(("dispatched", "accepted", "reopened", "escalated", "open"), "resolved"),
    "reopen": Transition(("resolved", "closed"), "reopened"),
    "close": Transition(("resolved", "open", "dispatched", "accepted", "reopened", "escalated"), "closed"),
    "escalate": Transition(("open", "dispatched", "accepted", "reopened"), "escalated"),
    "return": Transition(("dispatched", "accepted", "reopened", "escalated"), "open"),  # 退回: to the staff queue
    "cancel": Transition(("open", "dispatched", "accepted", "reopened", "escalated"), "cancelled"),
}


class TransitionError(ValueError):
    """An action that the ticket's current status does not allow."""


_COUNTERS = TicketCounter.__table__
# Built once: the statements of every ticket (Core, so no autoflush and no ORM bookkeeping).
# Today's counter plus one, its row made by the day's first ticket, in one statement: SQLite and
# PostgreSQL spell the upsert alike (the day's first ticket took three: UPDATE, INSERT, UPDATE).
_BUMP_COUNTER = text(
    "INSERT INTO ticket_counters (day, value) VALUES (:today, 1) "
    "ON CONFLICT (day) DO UPDATE SET value = ticket_counters.value + 1 RETURNING value"
).bindparams(bindparam("today", type_=_COUNTERS.c.day.type)).columns(_COUNTERS.c.value)
_EVENTS = TicketEvent.__table__
_EVENT_COLUMNS = ("ticket_id", "action", "from_status", "to_status", "actor", "note", "data", "created_at")
# Fixed statements (storage.fastsql): on a message's transaction they run on the driver itself.
_INSERT_EVENT = Prepared(
    insert(_EVENTS).values({c: bindparam(c) for c in _EVENT_COLUMNS}).returning(_EVENTS.c.id)
)
_BUMP = Prepared(_BUMP_COUNTER)
_TICKETS = Ticket.__table__
_TICKET_COLUMNS = tuple(c.key for c in _TICKETS.c if c.key != "id")
_INSERT_TICKET = Prepared(
    insert(_TICKETS).values({c: bindparam(c) for c in _TICKET_COLUMNS}).returning(_TICKETS.c.id)
)


async def next_number(session: AsyncSession, now: datetime, tz: str) -> str:
    """The next human-friendly number for today (local date), unique across processes.

    On PostgreSQL the counter moves in its own short transaction, on a side pool (storage.db.
    side_engine): inside the ticket's transaction its row lock would be held through routing until
    commit, and every other worker's ticket would queue behind it (the bottleneck under load with
    two workers). A ticket whose transaction then fails leaves its number unused; numbers are never
    given twice. On SQLite (one process, whose sessions take turns) it stays in the caller's
    transaction.
    """
    day = now.astimezone(ZoneInfo(tz)).strftime("%Y%m%d")
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        value = await _bump_on_side(side_engine(bind), day)
    else:
        # The caller's pending writes first, as an ORM statement would.
        await fastsql.flush(session)
        value = (await fastsql.run(session, _BUMP, {"today": day})).rows[0]["value"]
    return f"{day}-{int(value):04d}"


async def _bump_on_side(side: AsyncEngine, day: str) -> int:
    """The counter bumped in a transaction of the side pool; once more when the pooled connection
    turns out gone (the database restarted or was unreachable since its last use: SQLAlchemy then
    replaces every older connection of the pool, so the second try connects afresh). Without it
    the first ticket after an outage failed with 请稍后再发, and WeChat's retry of it too. A bump
    whose connection died after reaching the server leaves a number unused, never one twice."""
    try:
        return await _bump(side, day)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    return await _bump(side, day)


async def _bump(side: AsyncEngine, day: str) -> int:
    async with side.begin() as conn:
        return int((await conn.execute(_BUMP_COUNTER, {"today": day})).scalar_one())


async def create_ticket(
    session: AsyncSession,
    *,
    kind: str,
    resident: str | None,
    fields: dict[str, Any],
    now: datetime,
    tz: str,
    actor: str,
    summary: str = "",
    category: str | None = None,
    urgency: str = "normal",
    building: str | None = None,
    status: str = "open",
    proactive: bool = False,
) -> Ticket:
    """Write a new ticket with its number and a 'created' event; returns it flushed (with id)."""
    if kind not in KINDS:
        raise ValueError(f"unknown ticket kind {kind!r}")
    if status not in ("open", "escalated"):
        raise ValueError(f"a ticket starts open or escalated, not {status!r}")
    values: dict[str, Any] = dict.fromkeys(_TICKET_COLUMNS)
    values.update(
        number=await next_number(session, now, tz),
        kind=kind,
        status=status,
        resident=resident,
        fields=dict(fields),
        summary=summary,
        category=category,
        urgency=urgency,
        building=building,
        building_key=(normalize_building(building) or None) if building else None,
        reporters=1,
        proactive=proactive,
        overdue=False,
        created_at=now,
        updated_at=now,
    )
    # A fixed INSERT, then the row handed to the session as if loaded: the ORM's flush of a new
    # object cost ~1 ms of CPU per ticket, a quarter of a ticket-writing message. Every column is
    # given, so nothing is left to load; later changes (routing) are flushed as an UPDATE.
    ticket_id = (await fastsql.run(session, _INSERT_TICKET, values)).rows[0]["id"]
    ticket = fastsql.loaded(Ticket, {"id": ticket_id, **values})
    make_transient_to_detached(ticket)
    session.add(ticket)
    await add_event(session, ticket, "created", actor, now, to_status=status, data={"fields": fields})
    metrics.TICKETS.labels(kind).inc()
    return ticket


async def add_event(
    session: AsyncSession,
    ticket: Ticket,
    action: str,
    actor: str,
    now: datetime,
    *,
    note: str = "",
    data: dict[str, Any] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
) -> TicketEvent:
    """Append one event to a ticket's history (notes, replies, pushes, status changes).

    The row is written at once (its id orders the history and keys the pushes it causes); the
    returned event carries that id and is not tracked by the session (events never change)."""
    values: dict[str, Any] = {
        "ticket_id": ticket.id,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "actor": actor,
        "note": note,
        "data": data,
        "created_at": now,
    }
    event_id = (await fastsql.run(session, _INSERT_EVENT, values)).rows[0]["id"]
    if ticket.updated_at != now:  # setting an equal value would still make the ticket dirty
        ticket.updated_at = now
    return fastsql.loaded(TicketEvent, {"id": event_id, **values})


async def transition(
    session: AsyncSession,
    ticket: Ticket,
    action: str,
    actor: str,
    now: datetime,
    *,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> TicketEvent:
    """Move a ticket by action (see TRANSITIONS), stamping its times; raises TransitionError."""
    rule = TRANSITIONS.get(action)
    if rule is None:
        raise TransitionError(f"unknown action {action!r}")
    if ticket.status not in rule.sources:
        raise TransitionError(f"cannot {action} a ticket that is {ticket.status}")
    before = ticket.status
    ticket.status = rule.target
    if action == "assign":
        ticket.dispatched_at = now
    elif action == "accept":
        # The first taking is what 响应率 measures: a 接单 after 不满意 or a reassignment keeps it.
        if ticket.accepted_at is None:
            ticket.accepted_at = now
    elif action == "resolve":
        ticket.resolved_at = now
        if ticket.accepted_at is None and ticket.dispatched_at is not None:
            ticket.accepted_at = now  # 办结 without 接单: the dispatch was taken by finishing it
    elif action in ("close", "cancel"):
        ticket.closed_at = now
    elif action == "reopen":
        ticket.resolved_at = None
        ticket.closed_at = None
    elif action == "return":
        ticket.assignee = None
    return await add_event(
        session, ticket, action, actor, now, note=note, data=data, from_status=before, to_status=rule.target
    )


def number_matches(number: str, ref: str) -> bool:
    """Whether a ticket number is what a person typed for it: the whole number; its day's
    sequence (0001 and 1 mean 20261123-0001, never the tail of 0011 or 0021); or digits longer
    than the sequence that end the number (230001, 1230001)."""
    if "-" in ref:
        return number == ref
    if not ref.isdigit():
        return False
    seq = number.rsplit("-", 1)[-1]
    if len(ref) <= len(seq):
        return seq.isdigit() and int(seq) == int(ref)
    return number.replace("-", "").endswith(ref)


async def get_by_number(session: AsyncSession, number: str, *, for_update: bool = False) -> Ticket | None:
    """The ticket with this number, optionally row-locked for the transaction."""
    stmt = select(Ticket).where(Ticket.number == number)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def events_of(session: AsyncSession, ticket: Ticket) -> list[TicketEvent]:
    """A ticket's history, oldest first."""
    rows = await session.execute(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    )
    return list(rows.scalars())


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def ticket_json(ticket: Ticket) -> dict[str, Any]:
    """A ticket as the API shows it (CONTRACT fields and a few more)."""
    return {
        "number": ticket.number,
        "kind": ticket.kind,
        "status": ticket.status,
        "resident": ticket.resident,
        "fields": ticket.fields,
        "summary": ticket.summary,
        "category": ticket.category,
        "urgency": ticket.urgency,
        "building": ticket.building,
        "grid": ticket.grid,
        "assignee": ticket.assignee,
        "reporters": ticket.reporters,
        "proactive": ticket.proactive,
        "overdue": ticket.overdue,
        "due_at": _iso(ticket.due_at),
        "accept_due_at": _iso(ticket.accept_due_at),
        "satisfaction": ticket.satisfaction,
        "satisfaction_label": ticket.satisfaction_label,
        "rating_comment": ticket.rating_comment,
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "accepted_at": _iso(ticket.accepted_at),
        "resolved_at": _iso(ticket.resolved_at),
    }


def event_json(event: TicketEvent) -> dict[str, Any]:
    """One history event as JSON."""
    return {
        "action": event.action,
        "from": event.from_status,
        "to": event.to_status,
        "actor": event.actor,
        "note": event.note,
        "data": event.data,
        "at": _iso(event.created_at),
    }
