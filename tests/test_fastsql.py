"""storage.fastsql: fixed statements on the session's own connection, inside its transaction, with
the columns' type processing — on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import bindparam, event, insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from bot import outbox, tickets
from bot.services import Services
from storage import fastsql
from storage.db import SessionFactory, make_engine, make_sessionmaker, side_engine
from storage.fastsql import Prepared
from storage.models import Message, OutboxItem, Reminder, Resident, Ticket, TicketEvent
from tests.conftest import PG_ADMIN_URL, WeChat
from tests.flow_helpers import tickets_of
from tests.test_flows_complaint import ANSWERS, to_step
from tests.wecom_driver import load_demo_roster

R = Resident.__table__
M = Message.__table__
REM = Reminder.__table__

TOUCH = Prepared(
    update(R).where(R.c.openid == bindparam("v_openid"))
    .values(updated_at=bindparam("v_updated_at"), subscribed=bindparam("v_subscribed")).returning(*R.c)
)
FIRST = Prepared(insert(R).values(
    openid=bindparam("v_openid"), subscribed=bindparam("v_subscribed"),
    created_at=bindparam("v_at"), updated_at=bindparam("v_updated_at"),
).returning(R.c.id, R.c.openid, R.c.created_at, R.c.subscribed))
LOG = Prepared(insert(M).values(
    openid=bindparam("v_openid"), direction=bindparam("v_direction"), msg_type=bindparam("v_type"),
    content=bindparam("v_content"), media=bindparam("v_media"), created_at=bindparam("v_at"),
))
# Literals in the WHERE clause travel with the statement.
MOVE = Prepared(
    update(REM).where(REM.c.kind == "flow_nudge", REM.c.target == bindparam("v_target"), REM.c.state == "pending")
    .values(due_at=bindparam("v_due"))
)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[SessionFactory]:
    """A session factory on the test's database, its engine disposed after."""
    engine = make_engine(db_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def test_values_round_trip_as_the_orm_reads_them(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    at = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))
    try:
        async with sessions.begin() as session:
            missing = await fastsql.run(session, TOUCH, {"v_openid": "oFast1", "v_updated_at": at, "v_subscribed": True})
            assert missing.rows == []
            made = await fastsql.run(session, FIRST, {"v_openid": "oFast1", "v_subscribed": True, "v_at": at, "v_updated_at": at})
            row = made.rows[0]
            assert row["openid"] == "oFast1" and row["subscribed"] is True
            assert row["created_at"] == at and row["created_at"].tzinfo is not None  # aware UTC back
            await fastsql.run_many(session, [
                (LOG, {"v_openid": "oFast1", "v_direction": "in", "v_type": "text", "v_content": "楼道灯坏了",
                       "v_media": {"pic": ["一", 2]}, "v_at": at}),
                (LOG, {"v_openid": "oFast1", "v_direction": "out", "v_type": "reply", "v_content": "好的",
                       "v_media": None, "v_at": at}),
            ])
            later = at + timedelta(minutes=5)
            touched = await fastsql.run(session, TOUCH, {"v_openid": "oFast1", "v_updated_at": later, "v_subscribed": False})
            assert touched.rows[0]["updated_at"] == later and touched.rows[0]["subscribed"] is False
        async with sessions() as session:
            resident = await session.scalar(select(Resident).where(Resident.openid == "oFast1"))
            assert resident is not None and resident.updated_at == later and resident.subscribed is False
            logged = list(await session.scalars(select(Message).where(Message.openid == "oFast1").order_by(Message.id)))
            assert [(m.direction, m.content, m.media) for m in logged] == [
                ("in", "楼道灯坏了", {"pic": ["一", 2]}), ("out", "好的", None),
            ]
            assert logged[0].created_at == at
    finally:
        await engine.dispose()


async def test_statements_share_the_sessions_transaction(db_url: str) -> None:
    """A rolled-back message leaves nothing of its fast statements, and they see the session's
    own uncommitted rows (ORM objects flushed first)."""
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    now = datetime.now(timezone.utc)
    try:
        with pytest.raises(RuntimeError):
            async with sessions.begin() as session:
                session.add(Reminder(kind="flow_nudge", due_at=now, target="oFast2", payload={},
                                     state="pending", created_at=now))
                await session.flush()
                moved = await fastsql.run(session, MOVE, {"v_target": "oFast2", "v_due": now + timedelta(hours=1)})
                assert moved.rowcount == 1
                await fastsql.run(session, LOG, {"v_openid": "oFast2", "v_direction": "in", "v_type": "text",
                                                 "v_content": "x", "v_media": None, "v_at": now})
                raise RuntimeError("the message failed")
        async with sessions() as session:
            assert list(await session.scalars(select(Message).where(Message.openid == "oFast2"))) == []
            assert list(await session.scalars(select(Reminder).where(Reminder.target == "oFast2"))) == []
        async with sessions.begin() as session:
            assert (await fastsql.run(session, MOVE, {"v_target": "nobody", "v_due": now})).rowcount == 0
    finally:
        await engine.dispose()


async def test_a_parameter_may_be_used_twice(sessions: SessionFactory) -> None:
    twice = Prepared(update(R).where(R.c.openid == bindparam("v_x")).values(name=bindparam("v_x")).returning(R.c.name))
    now = datetime.now(timezone.utc)
    async with sessions.begin() as session:
        await fastsql.run(session, FIRST, {"v_openid": "oFast4", "v_subscribed": True, "v_at": now, "v_updated_at": now})
        named = await fastsql.run(session, twice, {"v_x": "oFast4"})
        assert named.rows == [{"name": "oFast4"}]


async def test_a_connection_gone_is_invalidated_not_reused(pg_url: str) -> None:
    """A backend killed under a fast statement fails that message; the pool then hands out a new
    connection instead of the dead one."""
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    sessions = make_sessionmaker(engine)
    now = datetime.now(timezone.utc)
    try:
        async with sessions() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        admin = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql"))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        with pytest.raises(Exception):  # the driver's own error: the connection is gone
            async with sessions.begin() as session:
                await fastsql.run(session, TOUCH, {"v_openid": "oFast3", "v_updated_at": now, "v_subscribed": True})
        async with sessions() as session:
            again = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert again != pid
    finally:
        await engine.dispose()


async def test_a_text_statement_with_typed_parameters(db_url: str) -> None:
    """A text() statement (SQL Core spells per dialect: ON CONFLICT … DO NOTHING) runs as a fixed
    statement, its values typed by its bind parameters: JSON and aware datetimes, and a second
    row under the same dedup key is skipped, not an error."""
    from bot import reminders

    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    due = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    row = {"kind": "flow_nudge", "due_at": due, "channel": "wechat", "target": "oFast5",
           "payload": {"text": "还在吗？"}, "cause_type": "flow", "cause_id": 3, "dedup_key": "flow_nudge:oFast5:3"}
    try:
        async with sessions.begin() as session:
            first = await fastsql.run(session, reminders.NEW, reminders.new_row(row, now=due))
            again = await fastsql.run(session, reminders.NEW, reminders.new_row({**row, "cause_id": 4}, now=due))
            assert (first.rowcount, again.rowcount) == (1, 0)
        async with sessions() as session:
            kept = list(await session.scalars(select(Reminder).where(Reminder.target == "oFast5")))
        assert [(r.due_at, r.cause_id, r.payload, r.state) for r in kept] == [
            (due, 3, {"channel": "wechat", "message": {"text": "还在吗？"}, "urgent": False}, "pending"),
        ]
    finally:
        await engine.dispose()


async def test_independent_writes_run_together_and_the_last_answers(sessions: SessionFactory, db_url: str) -> None:
    """run_together: every write applied, the last one's rows and count returned; on PostgreSQL
    as one statement (one round trip), elsewhere one after the other."""
    now = datetime.now(timezone.utc)
    async with sessions.begin() as session:
        await fastsql.run(session, FIRST, {"v_openid": "oFast5", "v_subscribed": True, "v_at": now, "v_updated_at": now})
        session.add(Reminder(kind="flow_nudge", due_at=now, target="oFast5", payload={}, state="pending", created_at=now))
        await session.flush()
    later = now + timedelta(minutes=1)
    log = {"v_openid": "oFast5", "v_type": "text", "v_media": {"n": 1}, "v_at": now}
    batch = [
        (LOG, {**log, "v_direction": "in", "v_content": "一"}),
        (LOG, {**log, "v_direction": "out", "v_content": "二"}),
        (MOVE, {"v_target": "oFast5", "v_due": later}),
        (TOUCH, {"v_openid": "oFast5", "v_updated_at": later, "v_subscribed": False}),
    ]
    before = fastsql.Counter.executed
    async with sessions.begin() as session:
        last = await fastsql.run_together(session, batch)
    sent = fastsql.Counter.executed - before
    assert [(r["openid"], r["subscribed"], r["updated_at"]) for r in last.rows] == [("oFast5", False, later)]
    assert sent == (1 if db_url.startswith("postgresql") else 4)
    async with sessions.begin() as session:
        moved = await fastsql.run_together(session, [batch[0][:1] + ({**log, "v_direction": "in", "v_content": "三"},),
                                                     (MOVE, {"v_target": "oFast5", "v_due": later})])
        assert moved.rowcount == 1 and moved.rows == []
        nobody = await fastsql.run_together(session, [(MOVE, {"v_target": "nobody", "v_due": later})])
        assert nobody.rowcount == 0
    async with sessions() as session:
        logged = list(await session.scalars(select(Message).where(Message.openid == "oFast5").order_by(Message.id)))
        # Parts of one statement run in no defined order: ids say nothing about which came first.
        assert sorted((m.content, m.direction, m.media["n"]) for m in logged) == [
            ("一", "in", 1), ("三", "in", 1), ("二", "out", 1),
        ]
        nudge = await session.scalar(select(Reminder).where(Reminder.target == "oFast5"))
        assert nudge is not None and nudge.due_at == later


async def test_a_failure_in_any_part_fails_them_all(sessions: SessionFactory) -> None:
    """A unique key refused in an earlier part (a delivery recorded twice): nothing of the batch
    is kept, and the error names the key (bot.dialog tells a repeat delivery by it)."""
    from sqlalchemy.exc import IntegrityError

    logged = Prepared(insert(M).values(
        openid=bindparam("v_openid"), direction="in", msg_type="text", content="x",
        delivery=bindparam("v_delivery"), created_at=bindparam("v_at"),
    ))
    now = datetime.now(timezone.utc)
    async with sessions.begin() as session:
        await fastsql.run(session, FIRST, {"v_openid": "oFast6", "v_subscribed": True, "v_at": now, "v_updated_at": now})
        await fastsql.run(session, logged, {"v_openid": "oFast6", "v_delivery": "oFast6:1", "v_at": now})
    with pytest.raises(Exception) as refused:
        async with sessions.begin() as session:
            await fastsql.run_together(session, [
                (logged, {"v_openid": "oFast6", "v_delivery": "oFast6:1", "v_at": now}),
                (TOUCH, {"v_openid": "oFast6", "v_updated_at": now + timedelta(hours=1), "v_subscribed": False}),
            ])
    assert "delivery" in str(refused.value)
    assert type(refused.value).__name__ == "IntegrityError" or isinstance(refused.value, IntegrityError)
    async with sessions() as session:
        resident = await session.scalar(select(Resident).where(Resident.openid == "oFast6"))
        assert resident is not None and resident.subscribed is True  # the touch went with the failure


# --- fastsql.flush: a session's changed objects written on the driver ------------------------------


@contextmanager
def engine_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL the engine sends while inside (fixed statements on the driver never reach it)."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_a_confirmed_report_is_routed_without_the_unit_of_work(
    services: Services, client: TestClient,  # type: ignore[type-arg]
) -> None:
    """确认 writes the ticket, then routes it (status, owner, limits): the routing's changes are one
    UPDATE on the driver, read back whole by the next query, as the ORM's flush wrote them."""
    await load_demo_roster(services)
    wx = WeChat(client, services.settings)
    openid = "oFlushDriver1"
    await to_step(wx, openid, len(ANSWERS))
    with engine_statements(services.engine) as seen, fastsql.watched() as fixed:
        reply = await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.number in reply, reply
    assert not [s for s in seen if s.startswith("UPDATE tickets")], seen
    assert len([s for s in fixed if s.startswith("UPDATE tickets")]) == 1, fixed
    assert ticket.status == "dispatched" and ticket.assignee and ticket.grid
    assert ticket.dispatched_at == services.clock.now()
    assert ticket.due_at is not None and ticket.accept_due_at is not None
    async with services.sessions() as session:
        actions = list(await session.scalars(
            select(TicketEvent.action).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)))
    assert actions == ["created", "assign"]


async def test_a_routed_tickets_time_limit_reminders_are_one_statement(
    services: Services, client: TestClient,  # type: ignore[type-arg]
) -> None:
    """确认 routes the ticket and schedules its owner's time-limit reminders (接单 and 办结, each a
    reminder before and a breach at the limit) in one INSERT; said again, the dedup keys keep
    them once."""
    await load_demo_roster(services)
    wx = WeChat(client, services.settings)
    openid = "oRemindMany1"
    await to_step(wx, openid, len(ANSWERS))
    with engine_statements(services.engine) as seen, fastsql.watched() as fixed:
        await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert not [s for s in seen if s.startswith("INSERT INTO reminders")], seen
    assert len([s for s in fixed if s.startswith("INSERT INTO reminders")]) == 1, fixed
    async with services.sessions() as session:
        rows = list(await session.scalars(
            select(Reminder).where(Reminder.cause_type == "ticket", Reminder.cause_id == ticket.id)
            .order_by(Reminder.id)))
    assert sorted(r.kind for r in rows) == ["accept_breach", "accept_remind", "resolve_breach", "resolve_remind"]
    assert {r.target for r in rows} == {ticket.assignee} and {r.state for r in rows} == {"pending"}
    assert all(r.payload["channel"] == "wecom" and ticket.number in r.payload["message"]["text"] for r in rows)
    assert {r.kind: r.due_at for r in rows}["resolve_breach"] == ticket.due_at
    assert {r.kind: r.payload["urgent"] for r in rows}["accept_breach"] is True

    from bot import reminders  # the same rows again: skipped by their dedup keys, in one statement
    again = [{"kind": r.kind, "due_at": r.due_at, "channel": "wecom", "target": r.target,
              "payload": r.payload["message"], "dedup_key": r.dedup_key} for r in rows]
    async with services.sessions() as session, session.begin():
        with fastsql.watched() as fixed:
            await reminders.schedule_many(session, again, now=services.clock.now())
    assert len(fixed) == 1
    async with services.sessions() as session:
        count = len(list(await session.scalars(select(Reminder.id).where(Reminder.cause_id == ticket.id,
                                                                          Reminder.cause_type == "ticket"))))
    assert count == 4


async def _a_ticket(session: AsyncSession, services: Services) -> Ticket:
    return await tickets.create_ticket(
        session, kind="complaint", resident="oFlush", fields={"a": 1}, now=services.clock.now(), tz=services.tz,
        actor="test", summary="楼道灯坏了", category="照明", building="3",
    )


async def test_a_flushed_change_is_written_and_the_object_clean(services: Services) -> None:
    async with services.sessions() as session, session.begin():
        ticket = await _a_ticket(session, services)
        ticket.assignee, ticket.fields = "lina", {"a": 2, "说明": "三楼"}
        with engine_statements(services.engine) as seen:
            await fastsql.flush(session)
        assert seen == [] and not session.dirty and not session.is_modified(ticket)
        ticket.summary = ticket.summary  # an equal value: nothing to write, as the ORM's flush
        await fastsql.flush(session)
        ticket.status = "dispatched"
    async with services.sessions() as session:
        stored = await session.get(Ticket, ticket.id)
        assert stored is not None
        assert (stored.assignee, stored.fields, stored.status) == ("lina", {"a": 2, "说明": "三楼"}, "dispatched")


async def test_what_the_driver_cannot_write_goes_through_the_unit_of_work(services: Services) -> None:
    async with services.sessions() as session, session.begin():
        ticket = await _a_ticket(session, services)
        ticket.assignee = "lina"
        session.add(TicketEvent(ticket_id=ticket.id, action="note", actor="test", note="附言",
                                created_at=services.clock.now()))
        with engine_statements(services.engine) as seen:
            await fastsql.flush(session)
        assert any(s.startswith("INSERT INTO ticket_events") for s in seen), seen
        assert any(s.startswith("UPDATE tickets") for s in seen), seen
        assert not session.new and not session.dirty


async def test_a_row_gone_is_an_error_and_a_rollback_forgets_the_change(services: Services) -> None:
    async with services.sessions() as session, session.begin():
        ticket = await _a_ticket(session, services)
    with pytest.raises(StaleDataError):
        async with services.sessions() as session, session.begin():
            held = await session.get(Ticket, ticket.id)
            assert held is not None
            await session.execute(text("DELETE FROM ticket_events"))
            await session.execute(text("DELETE FROM tickets"))
            held.assignee = "lina"
            await fastsql.flush(session)
    async with services.sessions() as session:
        stored = await session.get(Ticket, ticket.id)
        assert stored is not None and stored.assignee is None  # the delete rolled back with it
    async with services.sessions() as session:
        held = await session.get(Ticket, ticket.id)
        assert held is not None
        held.assignee = "lina"
        await fastsql.flush(session)
        await session.rollback()
        assert "assignee" in inspect(held).unloaded  # expired by the rollback, as after the ORM's flush
        await session.refresh(held)
        assert held.assignee is None


async def test_a_routed_reports_card_is_queued_in_one_statement(
    services: Services, client: TestClient,  # type: ignore[type-arg]
) -> None:
    """The owner's card carries a dedup key: it is written with ON CONFLICT DO NOTHING, not after a
    read of the outbox for the key; queued once, and a second push under its key is none."""
    await load_demo_roster(services)
    wx = WeChat(client, services.settings)
    openid = "oFlushDriver2"
    await to_step(wx, openid, len(ANSWERS))
    with engine_statements(services.engine) as seen, fastsql.watched() as fixed:
        await wx.say(openid, "确认")
    assert not [s for s in seen + fixed if "FROM outbox" in s], seen + fixed
    assert len([s for s in fixed if s.startswith("INSERT INTO outbox")]) == 1, fixed
    [ticket] = await tickets_of(services, openid)
    async with services.sessions() as session, session.begin():
        [card] = list(await session.scalars(select(OutboxItem).where(OutboxItem.ticket_id == ticket.id)))
        assert card.channel == "wecom" and card.target == ticket.assignee and card.dedup_key
        again = await outbox.push_worker(session, card.target, "again", now=services.clock.now(),
                                         ticket_id=ticket.id, dedup_key=card.dedup_key)
        assert again is None
        assert len(list(await session.scalars(select(OutboxItem).where(OutboxItem.ticket_id == ticket.id)))) == 1


async def test_a_row_just_written_is_an_object_as_if_loaded(services: Services) -> None:
    """tickets.create_ticket / add_event and outbox.enqueue hand back their rows as objects made
    without the ORM's constructor: the same values, unchanged, in no session until added."""
    async with services.sessions() as session, session.begin():
        ticket = await _a_ticket(session, services)
        assert ticket in session and not session.is_modified(ticket) and ticket.fields == {"a": 1}
        note = await tickets.add_event(session, ticket, "note", "test", services.clock.now(), note="附言")
        assert note not in session and not inspect(note).modified and note.note == "附言" and note.id
        pushed = await outbox.push_worker(session, "lina", "新工单", now=services.clock.now(), dedup_key="k1")
        assert pushed is not None and pushed not in session and pushed.payload == {"msgtype": "text", "text": "新工单"}
        assert not session.dirty and not session.new  # nothing left for the commit to write
    async with services.sessions() as session:
        stored = await session.get(TicketEvent, note.id)
        assert stored is not None and (stored.action, stored.note, stored.created_at) == ("note", "附言", note.created_at)


async def test_the_days_first_number_is_one_statement(
    services: Services, client: TestClient,  # type: ignore[type-arg]
) -> None:
    """A ticket's number moves today's counter with one upsert, the day's first too (it took an
    UPDATE, an INSERT and the UPDATE again through the engine); numbers follow on as before."""
    await load_demo_roster(services)
    wx = WeChat(client, services.settings)
    numbers = []
    for openid in ("oCounter1", "oCounter2"):
        await to_step(wx, openid, len(ANSWERS))
        with engine_statements(services.engine) as seen, engine_statements(side_engine(services.engine)) as side, \
                fastsql.watched() as fixed:
            await wx.say(openid, "确认")
        counter = [s for s in seen + side + fixed if "ticket_counters" in s]
        assert len(counter) == 1, counter
        if services.engine.dialect.name == "sqlite":  # in the message's transaction, on the driver
            assert counter[0] in fixed, counter
        else:  # in its own transaction on the side pool (bot.tickets.next_number)
            assert counter[0] in side, counter
        [ticket] = await tickets_of(services, openid)
        numbers.append(ticket.number)
    day = services.clock.now().astimezone(ZoneInfo(services.tz)).strftime("%Y%m%d")
    assert numbers == [f"{day}-0001", f"{day}-0002"]
