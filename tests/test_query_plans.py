"""The reply path's fixed statements find their rows by index on the migrated schema: each runs
on every message, so a scan would make every message slower as the tables grow.

Checked with SQLite's EXPLAIN QUERY PLAN on a migrated database (the embedded default); on
PostgreSQL the planner chooses by table size, so a plan on a near-empty table says nothing.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.dialects import sqlite

from bot import dialog
from bot.clock import FakeClock
from bot.inbound import Inbound
from bot.services import Services
from storage.fastsql import Prepared

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def _plan(db: sqlite3.Connection, prepared: Prepared, params: dict[str, Any]) -> list[str]:
    compiled = prepared.compiled(sqlite.dialect())
    args = [params.get(name, compiled.fixed.get(name)) for name in compiled.names]
    args = [a.isoformat() if isinstance(a, datetime) else a for a in args]
    args = [str(a) if isinstance(a, dict) else a for a in args]
    return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + compiled.sql, args)]


def _plans(template: Path, cases: dict[str, tuple[Prepared, dict[str, Any]]]) -> dict[str, list[str]]:
    """Each case's plan on a migrated database."""
    db = sqlite3.connect(template)
    try:
        return {name: _plan(db, prepared, params) for name, (prepared, params) in cases.items()}
    finally:
        db.close()


def _statements() -> dict[str, tuple[Prepared, dict[str, Any]]]:
    inbound = Inbound(openid="oPlan", msg_type="text", text="你好")
    touch = dialog._touch(inbound, NOW)
    return {
        "touch the resident": touch,
        "link the conversation to its ticket": (dialog._LINK, {"v_openid": "oPlan", "v_since": NOW, "v_ticket_id": 1}),
        "move the idle nudge": (dialog._MOVE_NUDGE, {
            "v_target": "oPlan", "v_due_at": NOW, "v_cause_id": 1, "v_dedup_key": "k", "v_payload": "{}",
        }),
    }


@pytest.mark.parametrize("name", list(_statements()))
def test_reply_path_statements_search_by_index(sqlite_template: Path, name: str) -> None:
    prepared, params = _statements()[name]
    db = sqlite3.connect(sqlite_template)
    try:
        plan = _plan(db, prepared, params)
    finally:
        db.close()
    assert plan, name
    assert all(step.startswith("SEARCH") and "INDEX" in step for step in plan), (name, plan)


def test_the_nudge_is_found_by_its_resident(sqlite_template: Path) -> None:
    """Not through the (state, due_at) index, which holds every pending reminder of everyone."""
    prepared, params = _statements()["move the idle nudge"]
    db = sqlite3.connect(sqlite_template)
    try:
        plan = _plan(db, prepared, params)
    finally:
        db.close()
    assert any("ix_reminders_target_kind" in step for step in plan), plan


# Tables that grow with every message, ticket or booking; the roster's tables stay small.
GROWING = ("messages", "reminders", "tickets", "ticket_events", "outbox", "bookings", "residents")


@pytest.fixture
def backend() -> str:
    return "embedded"


async def test_whole_conversations_scan_no_growing_table(
    services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement the benchmark's conversations send (each script to its end, complaints,
    a mediation, a booking, a volunteer signup, status queries, a hand-off), planned on the
    migrated schema: none reads a growing table from end to end."""
    from bench.conversations import SCRIPTS
    from bot import roster
    from storage import fastsql

    seen: dict[str, Any] = {}
    driver = fastsql.run_on_driver

    def recording(raw: sqlite3.Connection, dialect: Any, batch: Any) -> Any:
        for prepared, params in batch:
            compiled = prepared.compiled(dialect)
            seen.setdefault(compiled.sql, fastsql._args(compiled, params))
        return driver(raw, dialect, batch)

    def orm(_conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, many: bool) -> None:
        seen.setdefault(statement, params[0] if many else params)

    monkeypatch.setattr(fastsql, "run_on_driver", recording)
    event.listen(services.engine.sync_engine, "before_cursor_execute", orm)
    await roster.import_roster(services, services.settings.roster_path)
    for round_ in range(2):  # the second round meets the first one's tickets, duplicates, bookings
        for n, script in enumerate(SCRIPTS):
            for step, text in enumerate([*script.messages, "取消"]):
                await dialog.handle(services, Inbound(
                    openid=f"oPlan{round_}x{n}", msg_type="text", text=text, msg_id=f"{round_}-{n}-{step}",
                    created_at=clock.now()))
    event.remove(services.engine.sync_engine, "before_cursor_execute", orm)

    path = services.settings.database_url.split("///", 1)[1]
    db = sqlite3.connect(path)
    scans: list[tuple[str, list[str]]] = []
    try:
        for sql, params in seen.items():
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
                continue
            plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
            if any(step.startswith("SCAN") and step.split()[1] in GROWING for step in plan):
                scans.append((" ".join(sql.split())[:200], plan))
    finally:
        db.close()
    # The conversations did run through the flows: tickets written, duplicates searched, bookings.
    assert any(sql.startswith("INSERT INTO tickets") for sql in seen), list(seen)
    assert any("tickets.building_key" in sql for sql in seen), list(seen)
    assert any(sql.startswith("INSERT INTO bookings") for sql in seen), list(seen)
    assert len(seen) > 30
    assert scans == []


def test_the_outbox_senders_statements_scan_nothing(sqlite_template: Path) -> None:
    """A drain follows every push committed; the outbox keeps every push ever sent."""
    from bot.channels import push

    cases = {
        "any due": (push._ANY_DUE, {"now": NOW}),
        "claim": (push._CLAIM, {"now": NOW, "limit": 100, "lease": NOW}),
        "settle": (push._settle_statement(frozenset({"state", "sent_at"})), {"v_id": 1, "v_lease": NOW, "state": "sent",
                                                                             "sent_at": NOW}),
    }
    plans = _plans(sqlite_template, cases)
    assert all(plan and not any(step.startswith("SCAN") for step in plan) for plan in plans.values()), plans
    assert any("ix_outbox_state_next" in step for step in plans["claim"]), plans["claim"]


def test_the_duplicate_search_reads_one_building(sqlite_template: Path) -> None:
    """A burst of one category's reports (a water cut) must not make each new report read every
    earlier one: the search goes straight to one category at one building."""
    from bot import dispatch

    statement = dispatch._DUPLICATE.params(category="water", building_key="3", ticket_id=1, since=NOW, resident="oPlan")
    sql = str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    db = sqlite3.connect(sqlite_template)
    try:
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        db.close()
    assert any("ix_tickets_duplicate" in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


def test_dispatchs_reads_on_the_driver_find_their_rows_by_index(sqlite_template: Path) -> None:
    """Routing, linking and the number a worker types read on the driver for every report: each
    goes straight to its rows (the duplicate check to one category at one building)."""
    from bot import dispatch

    cases = {
        "owners' load": (dispatch._load_of(2), {"p0": "lina", "p1": "zhaoqiang"}),
        "any duplicate": (dispatch._any_duplicate_as(("urgent", "utility", "normal")), {
            "category": "water", "building_key": "3", "ticket_id": 1, "since": NOW, "resident": "oPlan"}),
        "same sequence": (dispatch._SAME_SEQUENCE, {"owner": "lina", "ticket_id": 1, "pattern": "%-0001"}),
        "outage alerts": (dispatch._OUTAGE_ALERTS, {"ticket_id": 1}),
        "same elsewhere": (dispatch._SAME_ELSEWHERE, {"category": "water", "ticket_id": 1, "building_key": "3",
                                                      "since": NOW}),
        "last linked push": (dispatch._LAST_LINKED, {"ticket_id": 1, "target": "lina", "pattern": "ticket:1:linked:%"}),
        "its count": (dispatch._LINKED_COUNT, {"item_id": 1, "payload": {"msgtype": "text", "text": "x"}}),
    }
    plans = _plans(sqlite_template, cases)
    assert all(plan and plan[0].startswith("SEARCH") and not any(step.startswith("SCAN") for step in plan)
               for plan in plans.values()), plans
    assert "ix_tickets_duplicate" in plans["any duplicate"][0], plans["any duplicate"]


def test_a_residents_and_a_tickets_pushes_are_found_by_index(sqlite_template: Path) -> None:
    """The customer-service quota the console predicts with (every reply page and answer) and the
    pushes of a ticket that never arrived: the outbox keeps every push ever sent, so these look
    a resident's or a ticket's rows up by index (migration 0007), not by scanning the outbox."""
    from sqlalchemy import and_, or_, select

    from storage.models import OutboxItem

    quota = select(OutboxItem.sent_at).where(
        OutboxItem.channel == "wechat", OutboxItem.target == "oPlan",
        or_(and_(OutboxItem.state == "sent", OutboxItem.sent_via == "custom", OutboxItem.sent_at >= NOW),
            OutboxItem.state.in_(("pending", "sending"))),
    )
    failed = select(OutboxItem.id).where(
        OutboxItem.ticket_id == 1, OutboxItem.channel == "wechat", OutboxItem.state == "dead",
    )
    db = sqlite3.connect(sqlite_template)
    try:
        plans = {}
        for name, stmt in (("quota", quota), ("failed", failed)):
            compiled = stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
            plans[name] = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + str(compiled))]
    finally:
        db.close()
    assert all(step.startswith("SEARCH") for step in plans["quota"] + plans["failed"]), plans
    # one resident's rows, sent however long ago they were first due (bot.staff_actions.custom_sent)
    assert any("ix_outbox_channel_target" in step for step in plans["quota"]), plans
    assert any("ix_outbox_ticket" in step for step in plans["failed"]), plans


def test_the_awaited_hand_off_and_a_status_lines_owner_are_found_by_index(sqlite_template: Path) -> None:
    """Whether a person is awaited (every opening that is no emergency asks) and who has a ticket
    (every status line): on the driver, each straight to its rows — the resident's tickets, the
    hand-off's events, the person by id — never a scan of tickets or events."""
    from bot.flows import handoff, status

    cases = {
        "awaited hand-off": (handoff._AWAITED, {"openid": "oPlan", "since": NOW}),
        "owner's name": (status._OWNER_NAME, {"id": "lina"}),
    }
    plans = _plans(sqlite_template, cases)
    assert all(plan and not any(step.startswith("SCAN") for step in plan) for plan in plans.values()), plans
    assert "ix_tickets_resident" in plans["awaited hand-off"][0], plans
    assert any("ix_ticket_events_ticket" in step for step in plans["awaited hand-off"]), plans
