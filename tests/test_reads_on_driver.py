"""The reads and writes moved off the ORM in session 14 (storage.fastsql): an elderly-service
booking's 确认, a resident's status list and a linked report's job, and the job a new report is
linked to; in session 15 the volunteer record, the hand-off's reads, a report or an emergency said
again and the activity named, and no session made for the survey check — the same answers and rows
as before, without statements through the engine. Both backends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import activities, reminders, tickets, volunteers
from bot.activities import load_activities
from bot.services import Services
from storage import fastsql
from storage.models import Booking, Reminder, Resident, Ticket, TicketEvent, Volunteer
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.test_fastsql import engine_statements
from tests.test_flows_complaint import ANSWERS, to_step
from tests.test_flows_elderly import oid
from tests.wecom_driver import load_demo_roster


async def test_an_elderly_booking_confirmed_writes_booking_and_reminders_on_the_driver(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    await wx.say(openid, "明天上午9点给我妈预约助浴")
    for answer in ("王秀英", "82", "5号楼1单元101", "跳过", "13600002222", "否"):
        reply = await wx.say(openid, answer)
    assert "请核对" in reply, reply
    with engine_statements(services.engine) as seen, fastsql.watched() as fixed:
        done = await wx.say(openid, "1")
    assert "已为助浴预约好" in done, done
    about = [s for s in seen if "bookings" in s or "reminders" in s]
    assert about == [], about
    assert len([s for s in fixed if s.startswith("INSERT INTO bookings")]) == 1, fixed
    # One for the ticket's time limits, one for the booking's two reminders (one INSERT each before).
    assert len([s for s in fixed if s.startswith("INSERT INTO reminders")]) == 2, fixed
    [ticket] = await tickets_of(services, openid)
    async with services.sessions() as session:
        [booking] = list(await session.scalars(select(Booking).where(Booking.resident == openid)))
        kept = list(await session.scalars(
            select(Reminder).where(Reminder.cause_type == "booking", Reminder.cause_id == booking.id)
            .order_by(Reminder.due_at)
        ))
    assert (booking.ticket_id, booking.provider, booking.status) == (ticket.id, ticket.assignee, "booked")
    assert booking.provider and booking.for_name == "王秀英" and booking.for_age == 82
    assert [(r.kind, r.dedup_key, r.state) for r in kept] == [
        ("booking_evening", f"booking:{booking.id}:booking_evening", "pending"),
        ("booking_hour", f"booking:{booking.id}:booking_hour", "pending"),
    ]


async def test_a_linked_report_finds_its_job_and_lists_it_without_the_orm(
    services: Services, client: TestClient,  # type: ignore[type-arg]
) -> None:
    """A neighbour's same report is linked to the first (its job read on the driver, made the
    session's object and counted, one UPDATE); the neighbour's status list names the job."""
    await load_demo_roster(services)
    wx = WeChat(client, services.settings)
    first, second = "oDriverFirst", "oDriverSecond"
    await to_step(wx, first, len(ANSWERS))
    await wx.say(first, "确认")
    await to_step(wx, second, len(ANSWERS))
    with engine_statements(services.engine) as seen:
        await wx.say(second, "确认")
    assert not [s for s in seen if s.startswith("SELECT") and "FROM tickets" in s], seen
    [job] = await tickets_of(services, first)
    [linked] = await tickets_of(services, second)
    assert linked.parent_id == job.id and job.reporters == 2
    assert (linked.assignee, linked.due_at) == (job.assignee, job.due_at)
    with engine_statements(services.engine) as seen:
        status = await wx.say(second, "我的工单怎么样了")
    assert not [s for s in seen if "FROM tickets" in s], seen
    assert linked.number in status and f"（与工单 {job.number} 合并处理）" in status, status


async def test_a_row_adopted_is_the_sessions_clean_object(services: Services) -> None:
    """fastsql.adopt: a row read on the driver becomes the session's object as a query would load
    it (unchanged until changed, then one UPDATE); the session's own object when it holds one."""
    async with services.sessions() as session, session.begin():
        made = await tickets.create_ticket(
            session, kind="complaint", resident="oAdopt", fields={"a": 1}, now=services.clock.now(),
            tz=services.tz, actor="test", summary="楼道灯坏了", category="照明", building="3",
        )
    read = select(*Ticket.__table__.c).where(Ticket.__table__.c.id == made.id)
    async with services.sessions() as session, session.begin():
        row = dict((await session.execute(read)).mappings().one())
        ticket = fastsql.adopt(session, Ticket, row)
        assert ticket in session and not session.is_modified(ticket) and ticket.fields == {"a": 1}
        assert fastsql.held(session, Ticket, made.id) is ticket
        ticket.reporters += 1
        assert fastsql.adopt(session, Ticket, row) is ticket and ticket.reporters == 2  # changes and all
        with engine_statements(services.engine) as seen:
            await fastsql.flush(session)
        assert seen == [] and not session.dirty
    async with services.sessions() as session:
        stored = await session.get(Ticket, made.id)
        assert stored is not None and stored.reporters == 2 and stored.summary == "楼道灯坏了"
        assert fastsql.held(session, Ticket, made.id + 1000) is None


async def test_a_reminder_scheduled_is_one_statement_and_its_key_holds(services: Services) -> None:
    """reminders.schedule writes with one INSERT … ON CONFLICT DO NOTHING RETURNING id (it read the
    key first, then the unit of work inserted): the object is the session's, a change to it is
    written, and the same key again — committed, or only added to the session — is None."""
    now = services.clock.now()
    args = {"kind": "mediation_session", "due_at": now, "channel": "wechat", "target": "oSched",
            "payload": {"text": "明天调解"}, "now": now, "cause_type": "ticket", "cause_id": 1}
    async with services.sessions() as session, session.begin():
        with engine_statements(services.engine) as seen, fastsql.watched() as fixed:
            made = await reminders.schedule(session, **args, dedup_key="k:sched")
        assert seen == [] and len(fixed) == 1 and made is not None and made.id
        assert made in session and not session.is_modified(made) and made.done_at is None
        made.payload = {**made.payload, "extra": 1}
        session.add(Reminder(kind="x", due_at=now, target="t", payload={}, dedup_key="k:pending", state="pending",
                             attempts=0, created_at=now))
        assert await reminders.schedule(session, **args, dedup_key="k:pending") is None  # flushed first
    async with services.sessions() as session, session.begin():
        assert await reminders.schedule(session, **args, dedup_key="k:sched") is None
        kept = list(await session.scalars(select(Reminder).where(Reminder.dedup_key.like("k:%")).order_by(Reminder.id)))
    assert [(r.dedup_key, r.payload) for r in kept] == [
        ("k:sched", {"channel": "wechat", "message": {"text": "明天调解"}, "urgent": False, "extra": 1}),
        ("k:pending", {}),
    ]


async def test_a_row_without_every_column_is_not_adopted(services: Services) -> None:
    """An attribute left out would be loaded lazily later, which an AsyncSession cannot do."""
    async with services.sessions() as session:
        with pytest.raises(ValueError, match="done_at"):
            fastsql.adopt(session, Reminder, {"id": 1, "kind": "x"})


async def test_a_sessions_next_transaction_runs_fixed_statements_in_it_not_the_last(services: Services) -> None:
    """fastsql keeps the connection a session's transaction holds (PostgreSQL: statements on
    asyncpg itself): a later transaction of the same session gets its own, so its rollback
    takes back its statements and not the committed ones."""
    now = services.clock.now()
    args = {"kind": "k", "due_at": now, "channel": "wechat", "target": "oTx", "payload": {}, "now": now}
    async with services.sessions() as session:
        async with session.begin():
            assert await reminders.schedule(session, **args, dedup_key="tx:kept") is not None
        session.expunge_all()
        await session.begin()
        assert await reminders.schedule(session, **args, dedup_key="tx:undone") is not None
        await session.rollback()
        session.expunge_all()
        async with session.begin():
            assert await reminders.schedule(session, **args, dedup_key="tx:undone") is not None  # free again
            assert await reminders.schedule(session, **args, dedup_key="tx:kept") is None
    async with services.sessions() as session:
        keys = list(await session.scalars(select(Reminder.dedup_key).where(Reminder.target == "oTx")))
    assert sorted(keys) == ["tx:kept", "tx:undone"]


# --- session 15: the reply path's last ORM reads (volunteers, hand-offs, emergencies, activities) ---


@contextmanager
def sessions_made(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many ORM sessions were made while inside (a message's inline transaction makes its
    session only when something asks for it)."""
    made = [0]
    init = fastsql.DriverSession.__init__

    def counted(self: fastsql.DriverSession, *args: Any, **kwargs: Any) -> None:
        made[0] += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(fastsql.DriverSession, "__init__", counted)
    yield made
    monkeypatch.setattr(fastsql.DriverSession, "__init__", init)


VOLUNTEER = ("我想报名当志愿者", "李明", "13800138006", "会修电器", "周末", "1 3", "是", "同意")


async def test_a_volunteer_signup_is_written_and_read_on_the_driver(
    services: Services, client: TestClient, backend: str, monkeypatch: pytest.MonkeyPatch,  # type: ignore[type-arg]
) -> None:
    """The signup's 确认 reads the record and writes it (one INSERT) on the driver; 我想当志愿者
    from the volunteer then reads it there too, without a session on the embedded default."""
    wx = WeChat(client, services.settings)
    openid = "oDriverVolunteer"
    for text in VOLUNTEER:
        await wx.say(openid, text)
    with engine_statements(services.engine) as seen, fastsql.watched() as fixed:
        done = await wx.say(openid, "确认")
    assert "李明" in done, done
    assert not [s for s in seen if "volunteers" in s or "UPDATE residents" in s], seen
    assert len([s for s in fixed if s.startswith("INSERT INTO volunteers")]) == 1, fixed
    [ticket] = await tickets_of(services, openid)
    async with services.sessions() as session:
        record = await volunteers.volunteer_of(session, openid)
        resident = await session.scalar(select(Resident).where(Resident.openid == openid))
    assert record is not None and (record.name, record.phone, record.status, record.ticket_id) == (
        "李明", "13800138006", "pending", ticket.id)
    assert record.hours == 0.0 and isinstance(record.hours, float) and record.consent and record.party_member
    assert resident is not None and resident.name == "李明"
    with engine_statements(services.engine) as seen, sessions_made(monkeypatch) as made:
        again = await wx.say(openid, "我想报名当志愿者")
    assert "李明" in again and "1" not in again.split("\n")[0], again
    assert not [s for s in seen if "volunteers" in s or "activities" in s], seen
    if backend == "embedded":
        assert made == [0]


async def test_a_hand_off_reads_the_conversation_and_the_tickets_on_the_driver(
    services: Services, client: TestClient,  # type: ignore[type-arg]
) -> None:
    """转人工 with a report open: the transcript, the waiting hand-off and the open reports read on
    the driver; 转人工 again finds the waiting one, and what the resident writes while waiting is
    tied to it, with no SELECT through the engine."""
    await load_demo_roster(services)
    wx = WeChat(client, services.settings)
    openid = "oDriverHandoff"
    await to_step(wx, openid, len(ANSWERS))
    await wx.say(openid, "确认")
    [report] = await tickets_of(services, openid)
    with engine_statements(services.engine) as seen:
        first = await wx.say(openid, "转人工")
    assert not [s for s in seen if s.startswith("SELECT")], seen
    handoff = next(t for t in await tickets_of(services, openid) if t.kind == "handoff")
    assert handoff.number in first and handoff.fields["open_reports"] == [report.number]
    lines = handoff.fields["transcript"]
    assert lines[0]["direction"] == "in" and lines[-1]["text"] == "转人工" and len(lines) >= 2 * len(ANSWERS)
    assert all(datetime.fromisoformat(line["at"]).tzinfo is not None for line in lines)
    with engine_statements(services.engine) as seen:
        again = await wx.say(openid, "人工")
        waiting = await wx.say(openid, "你好 在吗")
    assert handoff.number in again and handoff.number in waiting, (again, waiting)
    assert not [s for s in seen if s.startswith("SELECT")], seen
    async with services.sessions() as session:
        actions = list(await session.scalars(
            select(TicketEvent.action).where(TicketEvent.ticket_id == handoff.id).order_by(TicketEvent.id)))
    # 人工 again right after: the group heard of it just now (no record); 你好 在吗 is recorded.
    assert actions == ["created", "staff_alerted", "resident_wrote"], actions


async def test_an_emergency_said_again_finds_its_report_on_the_driver(
    services: Services, client: TestClient,  # type: ignore[type-arg]
) -> None:
    """电梯困人 said again by its reporter: their open urgent report found on the driver and chased."""
    await load_demo_roster(services)
    wx = WeChat(client, services.settings)
    openid = "oDriverUrgent"
    for text in ("9栋1单元电梯卡住了有人出不来", "13800138002", "否", "确认"):
        await wx.say(openid, text)
    [ticket] = await tickets_of(services, openid)
    with engine_statements(services.engine) as seen:
        again = await wx.say(openid, "9栋1单元电梯卡住了有人出不来")
    assert "已报告过这个紧急情况" in again and ticket.number in again, again
    assert not [s for s in seen if s.startswith("SELECT") and "FROM tickets" in s], seen
    assert len(await tickets_of(services, openid)) == 1


async def test_a_report_said_again_finds_its_ticket_on_the_driver(
    services: Services, client: TestClient,  # type: ignore[type-arg]
) -> None:
    """楼道灯不亮 said again by its reporter: their report, its status and owner read on the driver;
    a neighbour's same report is led by the first one's count and owner, read there too."""
    await load_demo_roster(services)
    wx = WeChat(client, services.settings)
    first, neighbour = "oDriverAgain", "oDriverNeighbour"
    await to_step(wx, first, len(ANSWERS))
    await wx.say(first, "确认")
    [ticket] = await tickets_of(services, first)
    with engine_statements(services.engine) as seen:
        again = await wx.say(first, "9栋1单元楼道灯不亮了")
        theirs = await wx.say(neighbour, "9栋1单元楼道灯不亮了")
    assert "已经反映过" in again and ticket.number in again, again
    assert "已有1位居民反映" in theirs and "负责" in theirs, theirs
    assert not [s for s in seen if s.startswith("SELECT")], seen


async def test_an_activity_is_found_on_the_driver(
    services: Services, client: TestClient,  # type: ignore[type-arg]
) -> None:
    """报名 <activity> / 报名 N: the activity looked up on the driver (the signup itself as before)."""
    await load_activities(services)
    wx = WeChat(client, services.settings)
    with engine_statements(services.engine) as seen:
        by_name = await wx.say("oDriverAct", "报名 楼道清洁")
        by_number = await wx.say("oDriverAct", "报名 2")
    unknown = await wx.say("oDriverAct", "报名 9")  # not found: the upcoming ones listed (the ORM's)
    assert "报名成功" in by_name and "楼道清洁志愿行动" in by_name, by_name
    assert "报名成功" in by_number and "敬老院探访" in by_number, by_number
    assert "没有找到" in unknown, unknown
    assert not [s for s in seen if "FROM activities" in s], seen
    async with services.sessions() as session:
        row = await activities.activity_row(session, "楼道清洁", services.clock.now())
        found = await activities.find_activity(session, "楼道清洁", services.clock.now())
        assert row is not None and found is not None and found in session and found.id == row["id"]
        assert found.title == "楼道清洁志愿行动" and not session.is_modified(found)


async def test_a_step_of_a_request_makes_no_session_for_the_survey_check(
    services: Services, client: TestClient, backend: str, monkeypatch: pytest.MonkeyPatch,  # type: ignore[type-arg]
) -> None:
    """survey.answer_in_flow and handle_answer ask for the message's session only when a survey may
    be waiting (it made one on every step of a request and every opening)."""
    wx = WeChat(client, services.settings)
    openid = "oDriverSurvey"
    with sessions_made(monkeypatch) as made:
        await wx.say(openid, "你好")
        await wx.say(openid, VOLUNTEER[0])
        asked = await wx.say(openid, "满意")  # on the survey's scale, in a request: the store is asked
    assert asked, asked
    if backend == "embedded":
        assert made == [0]


async def test_a_row_is_got_on_the_driver_as_session_get_would(services: Services) -> None:
    """fastsql.get: the session's own object (no SQL), else the row adopted, else None; a float
    column (a volunteer's hours) reads as a float on both drivers."""
    now = services.clock.now()
    async with services.sessions() as session, session.begin():
        form = volunteers.VolunteerForm(name="王芳", phone="13900000001", skills=None, availability="周末",
                                        areas=("助老",), party_member=False, consent=True)
        made = await volunteers.save_volunteer(session, openid="oGet", form=form, ticket_id=None, now=now)
        assert made is not None and fastsql.held(session, Volunteer, made.id) is made
        with fastsql.watched() as fixed:
            assert await fastsql.get(session, Volunteer, made.id) is made
        assert fixed == []
    async with services.sessions() as session, session.begin():
        with engine_statements(services.engine) as seen:
            got = await fastsql.get(session, Volunteer, made.id)
            missing = await fastsql.get(session, Volunteer, made.id + 1000)
        assert seen == [] and missing is None
        assert got is not None and got in session and not session.is_modified(got)
        assert (got.name, got.areas, got.hours) == ("王芳", ["助老"], 0.0) and isinstance(got.hours, float)
        got.hours = 2.5
    async with services.sessions() as session:
        stored = await session.get(Volunteer, made.id)
        assert stored is not None and stored.hours == 2.5
