"""Time limits with a moving FakeClock: reminders before the limits, breaches escalate to staff."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot import dispatch, schedule, tickets
from bot.clock import FakeClock
from bot.reminders import CAUSE_CHECKS
from bot.services import Services
from storage.models import Reminder
from tests.wecom_driver import actions, load_demo_roster, new_ticket, outbox_rows, ticket


@pytest.fixture
async def svc(services: Services) -> Services:
    await load_demo_roster(services)
    return services


async def _states(svc: Services, ticket_id: int) -> dict[str, str]:
    async with svc.sessions() as session:
        rows = await session.execute(select(Reminder).where(Reminder.cause_type == "ticket", Reminder.cause_id == ticket_id))
        return {r.kind: r.state for r in rows.scalars()}


async def _act(svc: Services, number: str, action: str, actor: str, note: str = "") -> None:
    async with svc.sessions() as session, session.begin():
        row = await tickets.get_by_number(session, number, for_update=True)
        assert row is not None
        await dispatch.apply_action(svc, session, row, action, actor, note=note)


async def test_accept_breach_marks_overdue_escalates_and_tells_staff(svc: Services, clock: FakeClock) -> None:
    t = (await new_ticket(svc, resident="oL")).ticket
    clock.advance(minutes=20)
    await schedule.run_due(svc)
    assert (await _states(svc, t.id))["accept_remind"] == "done"
    [card, remind] = await outbox_rows(svc, "wecom", "wangwei")
    assert "请在 11月23日 10:30 前接单" in remind.payload["text"]
    assert (await ticket(svc, t.number)).status == "dispatched"

    clock.advance(minutes=11)
    await schedule.run_due(svc)
    row = await ticket(svc, t.number)
    assert row.overdue and row.status == "escalated"
    assert await actions(svc, t.number) == ["created", "assign", "overdue", "escalate", "staff_alerted"]
    [post] = await outbox_rows(svc, "group")
    assert "超过接单时限（11月23日 10:30）未接单" in post.payload["content"] and t.number in post.payload["content"]
    assert (await outbox_rows(svc, "wecom", "wangwei"))[-1].payload["text"] == (
        f"工单 {t.number}（3号楼）已超过接单时限，已上报服务中心。仍由您去的话请马上回复“接单 0001”；去不了请回复“退回 0001 原因”。")
    states = await _states(svc, t.id)
    assert states["accept_breach"] == "done"
    assert states["resolve_remind"] == states["resolve_breach"] == "dropped"  # staff own it now


async def test_accepted_in_time_drops_the_accept_checks(svc: Services, clock: FakeClock) -> None:
    t = (await new_ticket(svc)).ticket
    clock.advance(minutes=10)
    await _act(svc, t.number, "accept", "wangwei")
    clock.advance(minutes=30)
    await schedule.run_due(svc)
    row = await ticket(svc, t.number)
    assert (row.status, row.overdue) == ("accepted", False)
    assert await outbox_rows(svc, "group") == []
    states = await _states(svc, t.id)
    assert states["accept_remind"] == states["accept_breach"] == "dropped"
    assert states["resolve_breach"] == "pending"


async def test_resolve_breach_after_the_limit(svc: Services, clock: FakeClock) -> None:
    t = (await new_ticket(svc, urgency="urgent")).ticket
    await _act(svc, t.number, "accept", "wangwei")
    clock.advance(minutes=90)  # the 办结 reminder (a quarter of 2 h before the limit)
    await schedule.run_due(svc)
    assert "前办结" in (await outbox_rows(svc, "wecom", "wangwei"))[-1].payload["text"]
    clock.advance(minutes=31)
    await schedule.run_due(svc)
    row = await ticket(svc, t.number)
    assert row.overdue and row.status == "escalated"
    [post] = await outbox_rows(svc, "group")
    assert "超过办结时限" in post.payload["content"]


async def test_resolved_in_time_nothing_escalates(svc: Services, clock: FakeClock) -> None:
    t = (await new_ticket(svc, urgency="urgent")).ticket
    await _act(svc, t.number, "accept", "wangwei")
    await _act(svc, t.number, "resolve", "wangwei", note="已处理")
    clock.advance(hours=3)
    await schedule.run_due(svc)
    row = await ticket(svc, t.number)
    assert (row.status, row.overdue) == ("resolved", False)
    assert await outbox_rows(svc, "group") == []


async def test_handler_on_due_rows_directly(svc: Services, clock: FakeClock) -> None:
    t = (await new_ticket(svc)).ticket
    clock.advance(minutes=31)
    async with svc.sessions() as session, session.begin():
        due = (await session.execute(
            select(Reminder).where(Reminder.state == "pending", Reminder.due_at <= clock.now()).order_by(Reminder.due_at)
        )).scalars().all()
        assert [r.kind for r in due] == ["accept_remind", "accept_breach"]
        remind, breach = due
        assert not await dispatch.handle_due_reminder(svc, session, remind)  # a plain message: not ours
        assert await CAUSE_CHECKS["ticket"](session, breach)
        assert await dispatch.handle_due_reminder(svc, session, breach)
        assert not await CAUSE_CHECKS["ticket"](session, breach)  # escalated: no longer applies
        assert not await dispatch.handle_due_reminder(svc, session, breach)  # and acts once only
    assert len(await outbox_rows(svc, "group")) == 1
    assert (await ticket(svc, t.number)).overdue


def _local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    from datetime import timezone
    from zoneinfo import ZoneInfo

    return datetime(2026, month, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(timezone.utc)


async def test_a_booking_is_due_after_its_service_not_a_week_after_booking(
    svc: Services, clock: FakeClock, client: Any
) -> None:
    """助浴 booked on 11月23日 for 12月5日 09:00: 办结 is due a day after the service (config/limits.toml
    [booking]), the card says so, and nothing is overdue before the service has happened."""
    from tests.wecom_driver import WeCom

    start = _local(12, 5, 9)
    fields = {"service": "助浴", "start": start.isoformat(), "when": "12月5日（周六）09:00", "phone": "13812345678"}
    t = (await new_ticket(svc, kind="elderly_service", fields=fields, category="助浴", building="3")).ticket
    assert t.assignee == "homecare" and t.due_at == start + timedelta(hours=24)
    [card] = await outbox_rows(svc, "wecom", "homecare")
    assert "12月06日 09:00 前办结 · 预约服务（按预约时间）" in card.payload["description"]
    assert (await WeCom(client, svc).say("homecare", "接单")).startswith(f"已接单：工单 {t.number}（")
    async with svc.sessions() as session:
        due = {r.kind: r.due_at for r in (await session.scalars(select(Reminder).where(Reminder.cause_id == t.id)))}
    assert due["resolve_remind"] == start + timedelta(hours=18) and due["resolve_breach"] == t.due_at
    clock.set(_local(11, 30, 11))
    await schedule.run_due(svc)
    row = await ticket(svc, t.number)
    assert (row.status, row.overdue) == ("accepted", False) and await outbox_rows(svc, "group") == []
    clock.set(_local(12, 6, 9, 1))
    await schedule.run_due(svc)
    assert (await ticket(svc, t.number)).status == "escalated"


async def test_a_plain_ticket_keeps_the_weekly_limit(svc: Services, clock: FakeClock) -> None:
    t = (await new_ticket(svc, kind="elderly_service", fields={"service": "助浴"}, category=None)).ticket
    assert t.due_at == clock.now() + timedelta(days=7)


async def test_the_accept_window_does_not_run_at_night(svc: Services, clock: FakeClock) -> None:
    """Dispatched at 20:55 (quiet hours 21:00-08:00): five minutes run before the night and 25 after
    it, so the reminder comes at 08:15 and the breach at 08:25 — not at 21:25 — and 接单 at 08:20
    counts as in time. An urgent ticket's window keeps running at night."""
    from datetime import date

    from bot.report import compute

    clock.set(_local(11, 23, 20, 55))
    t = (await new_ticket(svc, resident="oN")).ticket
    assert t.accept_due_at == _local(11, 24, 8, 25)
    urgent = (await new_ticket(svc, resident="oU", category="水电气暖", urgency="urgent")).ticket
    assert urgent.accept_due_at == _local(11, 23, 21, 25)
    clock.set(_local(11, 23, 21, 26))
    await schedule.run_due(svc)
    assert (await ticket(svc, t.number)).status == "dispatched"
    assert (await ticket(svc, urgent.number)).status == "escalated"
    [post] = await outbox_rows(svc, "group")
    assert urgent.number in post.payload["content"]
    clock.set(_local(11, 24, 8, 16))
    await schedule.run_due(svc)
    remind = (await outbox_rows(svc, "wecom", "wangwei"))[-1].payload["text"]
    assert t.number in remind and "请在 11月24日 08:25 前接单" in remind
    clock.set(_local(11, 24, 8, 20))
    await _act(svc, t.number, "accept", "wangwei")
    clock.set(_local(11, 24, 8, 30))
    await schedule.run_due(svc)
    assert (await ticket(svc, t.number)).status == "accepted" and len(await outbox_rows(svc, "group")) == 1
    f = (await compute(svc, date(2026, 11, 23), date(2026, 11, 24))).total
    assert (f.dispatched, f.accepted_in_time) == (2, 1)


def test_limits_outside_quiet_hours() -> None:
    from bot.settings import load_settings

    settings = load_settings(quiet_hours="21:00-08:00")
    cases = [
        (_local(11, 23, 10, 0), _local(11, 23, 10, 30)),  # the day: as it is
        (_local(11, 23, 20, 55), _local(11, 24, 8, 25)),  # runs 5 minutes, then from the morning
        (_local(11, 23, 23, 0), _local(11, 24, 8, 30)),  # dispatched at night: from the morning
        (_local(11, 24, 3, 0), _local(11, 24, 8, 30)),
    ]
    for since, due in cases:
        assert schedule.after_waking_time(since, 1800, settings) == due
    assert schedule.after_waking_time(_local(11, 23, 20, 0), 1800, load_settings(quiet_hours="00:00-00:00")) == _local(11, 23, 20, 30)


async def test_a_card_held_through_quiet_hours_has_its_limits_from_the_morning(svc: Services, clock: FakeClock) -> None:
    """Dispatched at 21:30 (quiet hours 21:00-08:00): the card, not urgent, waits until 08:00, and
    its limits run from then: 接单 by 08:30 (reminded at 08:20, after the card), 办结 seven days from
    08:00. An urgent ticket's card goes at once and its limits run from now."""
    clock.set(_local(11, 23, 21, 30))
    t = (await new_ticket(svc, resident="oQ")).ticket
    [card] = await outbox_rows(svc, "wecom", "wangwei")
    assert card.next_attempt_at == _local(11, 24, 8, 0) and not card.urgent
    assert t.accept_due_at == _local(11, 24, 8, 30) and t.due_at == _local(12, 1, 8, 0)
    async with svc.sessions() as session:
        due = {r.kind: r.due_at for r in (await session.scalars(select(Reminder).where(Reminder.cause_id == t.id)))}
    assert due["accept_remind"] == _local(11, 24, 8, 20) and due["resolve_breach"] == t.due_at
    assert due["resolve_remind"] == t.due_at - timedelta(days=1)
    urgent = (await new_ticket(svc, resident="oU", category="水电气暖", urgency="urgent")).ticket
    [urgent_card] = [o for o in await outbox_rows(svc, "wecom", "wangwei") if urgent.number in o.payload.get("title", "")]
    assert urgent_card.next_attempt_at == clock.now() and urgent_card.urgent
    assert urgent.due_at == clock.now() + timedelta(hours=2)
    # Taken at 21:40 all the same (我的工单): the resident hears it in the morning; the urgent one at once.
    clock.advance(minutes=10)
    await _act(svc, t.number, "accept", "wangwei")
    await _act(svc, urgent.number, "accept", "wangwei")
    [quiet] = await outbox_rows(svc, "wechat", "oQ")
    [loud] = await outbox_rows(svc, "wechat", "oU")
    assert (quiet.next_attempt_at, loud.next_attempt_at) == (_local(11, 24, 8, 0), clock.now())


async def test_a_reminder_reached_only_after_its_limit_is_dropped(svc: Services, clock: FakeClock) -> None:
    """The service stood still from 09:45 to 10:40 (a restart, a stuck host): catching up, the
    scheduler sent 提醒：请在 10:30 前接单 at 10:40, beside 已超过接单时限 — a time already past
    given as an order. The reminder is dropped; the breach notice says the limit was missed."""
    t = (await new_ticket(svc, resident="oLate")).ticket
    clock.advance(minutes=40)
    await schedule.run_due(svc)
    states = await _states(svc, t.id)
    assert (states["accept_remind"], states["accept_breach"]) == ("dropped", "done")
    [card, breach] = await outbox_rows(svc, "wecom", "wangwei")
    assert breach.payload["text"].startswith(f"工单 {t.number}（3号楼）已超过接单时限")
    # A 办结 reminder the same: a job taken, the service still until past its limit.
    job = (await new_ticket(svc, resident="oLate2", building="2")).ticket
    await _act(svc, job.number, "accept", "wangwei")
    clock.set((await ticket(svc, job.number)).due_at + timedelta(minutes=5))
    await schedule.run_due(svc)
    states = await _states(svc, job.id)
    assert (states["resolve_remind"], states["resolve_breach"]) == ("dropped", "done")
    assert not [o for o in await outbox_rows(svc, "wecom", "wangwei") if o.payload.get("text", "").startswith("提醒")]
    assert (await ticket(svc, job.number)).status == "escalated"


async def test_a_reminder_before_its_limit_still_goes(svc: Services, clock: FakeClock) -> None:
    t = (await new_ticket(svc, resident="oOnTime")).ticket
    clock.advance(minutes=29)  # late for the reminder (planned at 10:20), still before 10:30
    await schedule.run_due(svc)
    assert (await _states(svc, t.id))["accept_remind"] == "done"
    assert "请在 11月23日 10:30 前接单" in (await outbox_rows(svc, "wecom", "wangwei"))[-1].payload["text"]
