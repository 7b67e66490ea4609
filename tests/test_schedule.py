"""The durable schedule: due times, quiet hours, the daily cap, dropped causes, retries,
exactly-once across processes sharing PostgreSQL, and restarts — on both backends, FakeClock."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot import outbox, reminders, schedule
from bot.app import create_app
from bot.clock import FakeClock
from bot.schedule import SCHEDULER, next_morning, purge_state, quiet_until, run_due
from bot.services import Services, open_services
from storage.models import Activity, ActivitySignup, InboundDedup, OutboxItem, Reminder
from tests.conftest import make_settings, truncate_all

TZ = ZoneInfo("Asia/Shanghai")


def at_local(day: int, hour: int, minute: int = 0) -> datetime:
    """A November 2026 local time as aware UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(timezone.utc)


async def add_reminder(
    svc: Services, due: datetime, *, target: str = "o_res", text: str = "明天上午有活动", urgent: bool = False,
    channel: str = "wechat", kind: str = "note", message: dict[str, Any] | None = None,
    cause: tuple[str, int] | None = None,
) -> int:
    async with svc.sessions() as session, session.begin():
        row = await reminders.schedule(
            session, kind=kind, due_at=due, channel=channel, target=target,
            payload={"text": text} if message is None else message, now=svc.clock.now(), urgent=urgent,
            cause_type=cause[0] if cause else None, cause_id=cause[1] if cause else None,
        )
        assert row is not None
        return row.id


async def reminder(svc: Services, rid: int) -> Reminder:
    async with svc.sessions() as session:
        row = await session.get(Reminder, rid)
        assert row is not None
        return row


async def pushes(svc: Services, target: str | None = None) -> list[OutboxItem]:
    async with svc.sessions() as session:
        stmt = select(OutboxItem).order_by(OutboxItem.id)
        if target is not None:
            stmt = stmt.where(OutboxItem.target == target)
        return list(await session.scalars(stmt))


async def test_a_reminder_goes_out_when_due_and_only_then(services: Services, clock: FakeClock) -> None:
    rid = await add_reminder(services, clock.now() + timedelta(hours=2))
    assert await run_due(services) == 0
    clock.advance(hours=1, minutes=59)
    assert await run_due(services) == 0 and await pushes(services) == []
    clock.advance(minutes=1)
    assert await run_due(services) == 1
    [item] = await pushes(services)
    assert (item.channel, item.target, item.payload, item.dedup_key) == ("wechat", "o_res", {"text": "明天上午有活动"}, f"reminder:{rid}")
    row = await reminder(services, rid)
    assert (row.state, row.attempts, row.done_at) == ("done", 1, clock.now())
    assert await run_due(services) == 0 and len(await pushes(services)) == 1


async def test_quiet_hours_move_a_reminder_to_their_end(services: Services, clock: FakeClock) -> None:
    clock.set(at_local(23, 21, 30))
    rid = await add_reminder(services, clock.now())
    urgent = await add_reminder(services, clock.now(), target="o_urgent", urgent=True)
    staff = await add_reminder(services, clock.now(), channel="group", target="staff",
                               message={"msgtype": "markdown", "content": "夜间提醒"})
    assert await run_due(services) == 3
    row = await reminder(services, rid)
    assert (row.state, row.due_at) == ("pending", at_local(24, 8))
    assert (await reminder(services, urgent)).state == "done"
    assert (await reminder(services, staff)).state == "done"  # the staff group has no quiet hours
    assert [p.target for p in await pushes(services)] == ["o_urgent", "staff"]
    clock.set(at_local(24, 7, 59))
    assert await run_due(services) == 0
    clock.set(at_local(24, 8))
    assert await run_due(services) == 1
    assert [p.target for p in await pushes(services)] == ["o_urgent", "staff", "o_res"]


async def test_quiet_hours_before_midnight_and_after(services: Services) -> None:
    s = services.settings
    assert quiet_until(at_local(23, 20, 59), s) is None
    assert quiet_until(at_local(23, 21), s) == at_local(24, 8)
    assert quiet_until(at_local(24, 3), s) == at_local(24, 8)
    assert quiet_until(at_local(24, 8), s) is None
    assert next_morning(at_local(23, 15), s) == at_local(24, 8)


async def test_daily_cap_moves_the_rest_to_the_next_morning(services: Services, clock: FakeClock) -> None:
    cap = services.settings.daily_push_cap
    async with services.sessions() as session, session.begin():
        for i in range(cap):
            await outbox.push_resident(session, "o_busy", f"通知{i}", now=clock.now())
        # Yesterday's pushes do not count towards today's cap.
        await outbox.push_resident(session, "o_calm", "昨天的通知", now=clock.now() - timedelta(days=1))
    capped = await add_reminder(services, clock.now(), target="o_busy")
    urgent = await add_reminder(services, clock.now(), target="o_busy", urgent=True)
    calm = await add_reminder(services, clock.now(), target="o_calm")
    assert await run_due(services) == 3
    row = await reminder(services, capped)
    assert (row.state, row.due_at) == ("pending", at_local(24, 8))
    assert (await reminder(services, urgent)).state == "done"
    assert (await reminder(services, calm)).state == "done"
    clock.set(at_local(24, 8))
    assert await run_due(services) == 1
    assert (await reminder(services, capped)).state == "done"


async def test_a_reminder_whose_cause_went_away_is_dropped(services: Services, clock: FakeClock) -> None:
    async with services.sessions() as session, session.begin():
        activity = Activity(key="t1", title="测试活动", place="广场", start_at=clock.now() + timedelta(days=3),
                            end_at=clock.now() + timedelta(days=3, hours=2), created_at=clock.now())
        session.add(activity)
        await session.flush()
        signup = ActivitySignup(activity_id=activity.id, openid="o_res", status="signed", created_at=clock.now())
        session.add(signup)
        await session.flush()
        signup_id = signup.id
        generation = f"{int(clock.now().timestamp())}:{int(activity.start_at.timestamp())}"
    rid = await add_reminder(services, clock.now() + timedelta(hours=1), kind="activity_remind",
                             cause=("activity", signup_id))
    async with services.sessions() as session, session.begin():
        row = await session.get(Reminder, rid)
        assert row is not None
        row.payload = {**row.payload, "generation": generation}
        signed = await session.get(ActivitySignup, signup_id)
        assert signed is not None
        signed.status = "cancelled"  # withdrawn without tidying its reminders
    clock.advance(hours=1)
    assert await run_due(services) == 1
    assert (await reminder(services, rid)).state == "dropped"
    assert await pushes(services) == []


async def test_a_failing_reminder_is_retried_then_failed_without_holding_up_others(
    services: Services, clock: FakeClock
) -> None:
    broken = await add_reminder(services, clock.now(), message={})  # nothing to send
    fine = await add_reminder(services, clock.now(), target="o_other")
    assert await run_due(services) == 2
    assert (await reminder(services, fine)).state == "done"
    row = await reminder(services, broken)
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error is not None and "carries no message" in row.last_error
    assert row.due_at == clock.now() + timedelta(seconds=60)
    for _ in range(10):
        clock.advance(hours=1)
        await run_due(services)
    row = await reminder(services, broken)
    assert (row.state, row.attempts) == ("failed", 5)
    assert [p.target for p in await pushes(services)] == ["o_other"]


async def test_a_new_process_picks_up_what_is_due(services: Services, clock: FakeClock, tmp_path: Path) -> None:
    ids = [await add_reminder(services, clock.now() + timedelta(minutes=10), target=f"o_{i}") for i in range(3)]
    await services.close()  # the first process stops before anything is due
    clock.advance(minutes=10)
    again = open_services(services.settings, clock=clock)
    again.store.with_prefix(f"cbt{uuid.uuid4().hex[:8]}")
    try:
        assert await run_due(again) == 3
        assert sorted(p.target for p in await pushes(again)) == ["o_0", "o_1", "o_2"]
        assert {(await reminder(again, i)).state for i in ids} == {"done"}
    finally:
        await again.close()


async def test_concurrent_runs_in_one_process_send_each_once(services: Services, clock: FakeClock) -> None:
    for i in range(40):
        await add_reminder(services, clock.now(), target=f"o_{i}")
    claimed = sum(await asyncio.gather(*(run_due(services, limit=7) for _ in range(8))))
    while more := await run_due(services, limit=7):
        claimed += more
    assert claimed == 40
    rows = await pushes(services)
    assert len(rows) == 40 and len({p.dedup_key for p in rows}) == 40


async def test_two_processes_on_postgresql_send_each_reminder_exactly_once(
    pg_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    await truncate_all(pg_url)
    settings = make_settings("pg_redis", tmp_path, pg_url)
    a, b = open_services(settings, clock=clock), open_services(settings, clock=clock)
    try:
        for i in range(300):
            await add_reminder(a, clock.now() - timedelta(seconds=i % 7), target=f"o_{i}")

        async def drain(svc: Services) -> int:
            total = 0
            while claimed := await run_due(svc, limit=25):
                total += claimed
            return total

        got_a, got_b = await asyncio.gather(drain(a), drain(b))
        assert got_a + got_b == 300 and got_a > 0 and got_b > 0
        rows = await pushes(a)
        assert len(rows) == 300 and len({p.target for p in rows}) == 300
        async with a.sessions() as session:
            states = dict((await session.execute(select(Reminder.state, func.count()).group_by(Reminder.state))).all())
        assert states == {"done": 300}
    finally:
        await a.close()
        await b.close()


async def test_the_app_runs_the_scheduler_and_loads_activities(services: Services) -> None:
    running = dataclasses.replace(services, settings=services.settings.model_copy(update={"scheduler": True}))
    app = create_app(running.settings, services=running)
    async with TestClient(TestServer(app)) as client:
        scheduler = client.app[SCHEDULER]
        assert scheduler is not None and scheduler.running
        assert {job.id for job in scheduler.get_jobs()} == {"reminders", "hotspots", "purge_state"}
        async with services.sessions() as session:
            keys = set(await session.scalars(select(Activity.key)))
        assert "clean-stairs-2026-12" in keys
    assert not scheduler.running


async def test_the_hourly_purge_drops_expired_state_and_keeps_the_rest(
    services: Services, clock: FakeClock, backend: str
) -> None:
    """On the embedded store every message leaves a retry entry that expires after dedup_ttl_s;
    the purge deletes expired ones from the file. Redis expires its keys itself."""
    short, lasting = services.store.key("dedup", "oPurge", "1"), services.store.key("dialog", "oPurge")
    await services.store.set(short, {"state": "done", "reply": "好的"}, ttl=300)
    await services.store.set(lasting, {"flow": "complaint"})
    async with services.sessions() as session, session.begin():  # a WeCom delivery's kept answer
        session.add(InboundDedup(key="wecom:wangwei:1", reply="已接单", created_at=clock.now()))
    clock.advance(seconds=301)
    async with services.sessions() as session, session.begin():
        session.add(InboundDedup(key="wecom:wangwei:2", reply="已办结", created_at=clock.now()))
    if backend == "embedded":
        assert await purge_state(services) == 2  # the expired entry and the old record
        assert await services.store.get(short) is None
        assert await purge_state(services) == 0
    else:  # Redis: nothing to purge, the key carries its own expiry (in Redis's time, not the fake clock's)
        assert await purge_state(services) == 1  # the old record
        assert 0 < await services.store.client.ttl(short) <= 300
    assert await services.store.get(lasting) == {"flow": "complaint"}
    async with services.sessions() as session:
        assert list(await session.scalars(select(InboundDedup.key))) == ["wecom:wangwei:2"]


async def test_stopping_the_app_waits_for_a_job_run_in_progress(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run cut off at shutdown would leave its transaction open on a connection nobody returns
    (seen: the next test's TRUNCATE waited on it for minutes)."""
    started = asyncio.Event()
    finished: list[bool] = []

    async def slow_tick(_svc: Services) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(True)

    monkeypatch.setattr(schedule, "_tick", slow_tick)
    running = dataclasses.replace(services, settings=services.settings.model_copy(update={"scheduler": True}))
    async with TestClient(TestServer(create_app(running.settings, services=running))):
        await asyncio.wait_for(started.wait(), timeout=5)
    assert finished == [True]
