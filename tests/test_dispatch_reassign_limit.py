"""Staff giving a job to someone else (派单 / 改派) keeps the resident's 办结 limit: it gave a new
full one (11-23 10:00 became 11-30 10:30), so a job reassigned late stopped counting as 超期 unless
its breach check had already run. The new owner gets a 接单 limit of their own; the figures and
the card agree that a job reassigned past its limit is 超期. Both backends."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import report, staff_actions
from bot.clock import FakeClock
from bot.schedule import run_due
from bot.services import Services
from storage.models import Reminder, Ticket
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, outbox_rows, ticket

Client = TestClient[Any, Any]


async def limits_of(svc: Services, job: Ticket) -> dict[str, datetime]:
    """The ticket's pending time-limit checks and reminders, by kind (naive UTC as stored)."""
    async with svc.sessions() as session:
        rows = await session.scalars(select(Reminder).where(
            Reminder.cause_type == "ticket", Reminder.cause_id == job.id, Reminder.state == "pending"))
        return {r.kind: r.due_at for r in rows}


def utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


async def test_a_job_reassigned_before_its_limit_keeps_it_and_the_new_owner_gets_a_jiedan_limit(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await load_demo_roster(services)
    clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))  # 10:00 in Shanghai
    job = (await new_ticket(services, building="5", summary="5号楼楼道灯坏了")).ticket
    assert job.assignee == "lina" and job.due_at is not None
    due = utc(job.due_at)
    clock.advance(hours=30)
    await staff_actions.staff_transition(services, job.number, "assign", "clerk", assignee="zhaoqiang")
    moved = await ticket(services, job.number)
    assert (moved.assignee, moved.status, utc(moved.due_at)) == ("zhaoqiang", "dispatched", due)
    assert utc(moved.accept_due_at) > clock.now()  # the new owner's own 接单 limit
    checks = await limits_of(services, moved)
    assert utc(checks["resolve_breach"]) == due and "accept_breach" in checks


async def test_a_job_reassigned_past_its_limit_stays_chaoqi_and_is_not_sent_back_to_staff(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await load_demo_roster(services)
    wc = WeCom(client, services)
    clock.set(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    job = (await new_ticket(services, building="5", summary="5号楼楼道灯坏了")).ticket
    due = utc(job.due_at)
    assert due is not None
    clock.set(due + timedelta(hours=1))  # past the limit, its breach check not yet run
    await staff_actions.staff_transition(services, job.number, "assign", "clerk", assignee="zhaoqiang")
    moved = await ticket(services, job.number)
    assert utc(moved.due_at) == due  # not a new 7 days from now
    checks = await limits_of(services, moved)
    assert "resolve_breach" not in checks and "resolve_remind" not in checks and "accept_breach" in checks
    card = [o.payload for o in await outbox_rows(services, "wecom", "zhaoqiang") if o.payload.get("msgtype") == "textcard"]
    assert "已过办结时限" in card[-1]["description"], card[-1]["description"]
    await run_due(services)  # nothing sends it straight back to the staff queue
    assert (await ticket(services, job.number)).status == "dispatched"
    accepted = await wc.say("zhaoqiang", "接单")  # not 请在 <a time gone by> 前办结
    assert accepted.startswith("已接单") and "已过办结时限" in accepted and "请在" not in accepted, accepted
    assert (await wc.say("zhaoqiang", "办结 灯换好了")).startswith("已办结")
    done = await ticket(services, job.number)
    assert report.past_resolve_limit(done, clock.now(), frozenset())
    figures = await report.compute(services, date(2026, 11, 23), date(2026, 11, 23))
    assert figures.total.overdue == 1
