"""The 办结 reminder of a job due early in the morning, with the fake clock, on both backends: a
water job reported overnight is due at 08:00 the next day; its reminder (a quarter of the limit
before, 02:00) was held by the quiet hours (21:00-08:00) to 08:00 and reached the grid worker with
the overdue notice. It comes the evening before, before the quiet hours, when it can still help."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import dispatch, schedule, tickets
from bot.clock import FakeClock
from bot.services import Services
from storage.models import Reminder
from tests.wecom_driver import load_demo_roster, new_ticket, outbox_rows


def _local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(timezone.utc)


async def _accept(svc: Services, number: str) -> None:
    async with svc.sessions() as session, session.begin():
        row = await tickets.get_by_number(session, number, for_update=True)
        assert row is not None
        await dispatch.apply_action(svc, session, row, "accept", "wangwei")


@pytest.fixture
async def svc(services: Services) -> Services:
    await load_demo_roster(services)
    return services


async def _due(svc: Services, ticket_id: int) -> dict[str, datetime]:
    async with svc.sessions() as session:
        rows = await session.scalars(select(Reminder).where(Reminder.cause_type == "ticket", Reminder.cause_id == ticket_id))
        return {r.kind: r.due_at for r in rows}


async def test_a_reminder_the_night_would_hold_to_the_limit_comes_the_evening_before(svc: Services, clock: FakeClock) -> None:
    clock.set(_local(11, 23, 23, 0))  # reported at 23:00: the card waits for 08:00, the limit runs from then
    job = (await new_ticket(svc, resident="oW", category="水电气暖", urgency="utility", summary="停水了")).ticket
    assert job.due_at == _local(11, 25, 8, 0)
    due = await _due(svc, job.id)
    assert due["resolve_remind"] == _local(11, 24, 20, 30) and due["resolve_breach"] == job.due_at
    clock.set(_local(11, 24, 8, 5))
    await _accept(svc, job.number)  # taken in the morning; the pipe takes longer than the day
    clock.set(_local(11, 24, 20, 31))
    await schedule.run_due(svc)
    [remind] = [o for o in await outbox_rows(svc, "wecom", "wangwei") if "前办结" in o.payload.get("text", "")]
    assert "请在 11月25日 08:00 前办结" in remind.payload["text"] and remind.next_attempt_at <= clock.now()
    clock.set(_local(11, 25, 8, 1))
    await schedule.run_due(svc)
    pushes = [o.payload.get("text", "") for o in await outbox_rows(svc, "wecom", "wangwei")]
    assert sum("前办结" in p for p in pushes) == 1  # nothing more at 08:00 but the overdue notice
    assert "已超过办结时限" in pushes[-1]


async def test_a_reminder_in_the_day_or_held_to_well_before_the_limit_stays(svc: Services, clock: FakeClock) -> None:
    """Reported at 14:00: due 14:00 the next day, reminded at 08:00 (6 h before) as planned. Reported
    at 03:00 on a complex job (15 days): its reminder falls a day before, in the day, unchanged."""
    clock.set(_local(11, 23, 14, 0))
    day = (await new_ticket(svc, resident="oD", category="水电气暖", urgency="utility", summary="停水了")).ticket
    assert (await _due(svc, day.id))["resolve_remind"] == day.due_at - timedelta(hours=6) == _local(11, 24, 8, 0)
    clock.set(_local(11, 23, 3, 0))
    night = (await new_ticket(svc, resident="oN", urgency="complex")).ticket
    assert (await _due(svc, night.id))["resolve_remind"] == night.due_at - timedelta(days=1)


async def test_a_job_given_to_another_in_the_night_has_no_reminder_with_its_overdue_notice(
    svc: Services, clock: FakeClock,
) -> None:
    """The same water job given to 赵强 at 21:30 the evening before its limit: his card waits for
    08:00, when the job is due — a reminder then would come with the overdue notice, so there is
    none; the card itself says by when."""
    from bot import staff_actions

    clock.set(_local(11, 23, 23, 0))
    job = (await new_ticket(svc, resident="oR", category="水电气暖", urgency="utility", summary="停水了")).ticket
    clock.set(_local(11, 24, 21, 30))
    await staff_actions.staff_transition(svc, job.number, "assign", "liustaff", assignee="zhaoqiang")
    async with svc.sessions() as session:
        rows = list(await session.scalars(select(Reminder).where(Reminder.cause_id == job.id, Reminder.target == "zhaoqiang")))
    assert {r.kind for r in rows if r.state == "pending"} >= {"resolve_breach"}
    assert "resolve_remind" not in {r.kind for r in rows}
