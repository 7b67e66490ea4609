"""Time limits with a moving FakeClock: reminders before the limits, breaches escalate to staff."""

from __future__ import annotations

from datetime import timedelta

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
    assert (await outbox_rows(svc, "wecom", "wangwei"))[-1].payload["text"] == f"工单 {t.number} 已超过接单时限，已上报服务中心。"
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
