"""An activity's reminder about an hour before it starts ([activities] remind_before_s in
config/schedule.toml): sent once at its time, not to who signed up later than that, dropped with
the signup or the activity — on both backends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import activities, schedule
from bot.clock import FakeClock
from bot.schedule import run_due
from bot.services import Services, open_services
from storage.models import OutboxItem, Person, Reminder
from tests.conftest import WeChat
from tests.test_activities import cancel, local, sign, svc, wechat_to  # noqa: F401  (svc: the fixture)

EARLY = """
[[activities]]
key = "dawn"
title = "晨练太极"
place = "中心花园"
start = "2026-11-26 07:30"
end = "2026-11-26 08:30"
"""


def _soon(texts: list[str]) -> list[str]:
    return [x for x in texts if "开始（约" in x]


async def test_the_hour_before_reminder_goes_at_its_time_once(svc: Services, clock: FakeClock) -> None:
    await sign(svc, "o_soon", "clean")  # 11-26 09:00
    clock.set(local(26, 7, 59))
    await run_due(svc)
    assert _soon(await wechat_to(svc, "o_soon")) == []
    clock.set(local(26, 8))
    await run_due(svc)
    [text] = _soon(await wechat_to(svc, "o_soon"))
    assert "“楼道清洁志愿行动”将于 09:00 开始（约60分钟后），地点：3号楼前广场" in text
    assert "取消报名 楼道清洁志愿行动" in text
    clock.set(local(26, 8, 30))
    await run_due(svc)
    assert len(_soon(await wechat_to(svc, "o_soon"))) == 1


async def test_signed_up_within_the_hour_gets_none(svc: Services, clock: FakeClock) -> None:
    clock.set(local(26, 8, 10))
    assert (await sign(svc, "o_late", "clean")).status == "signed"
    async with svc.sessions() as session:
        kinds = set(await session.scalars(select(Reminder.kind).where(Reminder.target == "o_late")))
    assert kinds == {"activity_thanks"}
    clock.set(local(26, 8, 59))
    await run_due(svc)
    assert await wechat_to(svc, "o_late") == []


async def test_dropped_when_the_signup_is_withdrawn_or_the_activity_called_off(
    svc: Services, clock: FakeClock,
) -> None:
    await sign(svc, "o_gone", "clean")
    await sign(svc, "o_off", "clean")
    await sign(svc, "o_off", "visit")
    assert (await cancel(svc, "o_gone", "clean")).status == "cancelled"
    async with svc.sessions() as session, session.begin():
        session.add(Person(id="coord", name="周协调", roles=["volunteer_coordinator"], active=True))
    async with svc.sessions() as session, session.begin():
        who = await session.get(Person, "coord")
        assert who is not None
        assert "已取消活动" in await activities.cancel_activity(svc, session, who, "visit 下雨")
    async with svc.sessions() as session:
        states = {(t, k, s) for t, k, s in (await session.execute(
            select(Reminder.target, Reminder.kind, Reminder.state).where(Reminder.kind == "activity_soon"))).all()}
    assert ("o_gone", "activity_soon", "dropped") in states and ("o_off", "activity_soon", "pending") in states
    for day, hour, minute in ((26, 8, 0), (30, 13, 0)):  # each reminder claimed at its time
        clock.set(local(day, hour, minute))
        await run_due(svc)
    assert _soon(await wechat_to(svc, "o_gone")) == []
    assert ["09:00" in x for x in _soon(await wechat_to(svc, "o_off"))] == [True]  # clean's only, not visit's


async def test_two_processes_due_together_send_it_once(svc: Services, clock: FakeClock) -> None:
    await sign(svc, "o_twice", "clean")
    clock.set(local(26, 8, 1))
    other = open_services(svc.settings, clock=svc.clock)
    try:
        await asyncio.gather(run_due(svc), run_due(other), run_due(svc), run_due(other))
    finally:
        await other.close()
    assert len(_soon(await wechat_to(svc, "o_twice"))) == 1


async def test_an_early_activity_is_reminded_at_its_time_in_quiet_hours(
    services: Services, clock: FakeClock, tmp_path: Path,
) -> None:
    """07:30 start: the 06:30 reminder (quiet hours until 08:00) goes at 06:30, not after the start."""
    path = tmp_path / "early.toml"
    path.write_text(EARLY, encoding="utf-8")
    await activities.load_activities(services, path)
    await sign(services, "o_dawn", "晨练")
    clock.set(local(26, 6, 31))
    await run_due(services)
    async with services.sessions() as session:
        rows = list(await session.scalars(select(OutboxItem).where(OutboxItem.target == "o_dawn")))
    [row] = [r for r in rows if "开始（约" in str(r.payload.get("text"))]
    assert "07:30" in row.payload["text"]
    assert row.next_attempt_at <= local(26, 6, 31)  # queued to go now, not held to 08:00


@pytest.mark.parametrize("before_s", [0, 1800])
async def test_how_long_before_is_configured(
    svc: Services, clock: FakeClock, monkeypatch: Any, before_s: int,
) -> None:
    config = schedule.load_schedule_config()
    monkeypatch.setattr(activities, "load_schedule_config",
                        lambda: replace(config, activities=replace(config.activities, remind_before_s=before_s)))
    await sign(svc, "o_conf", "clean")
    clock.set(local(26, 8, 29))
    await run_due(svc)
    assert _soon(await wechat_to(svc, "o_conf")) == []
    clock.set(local(26, 8, 30))
    await run_due(svc)
    soon = _soon(await wechat_to(svc, "o_conf"))
    assert soon == ([] if before_s == 0 else [soon[0]]) and all("约30分钟后" in x for x in soon)


def test_the_repository_schedule_sets_an_hour() -> None:
    assert schedule.load_schedule_config().activities.remind_before_s == 3600


async def test_cannot_come_said_to_the_hour_before_reminder_withdraws_the_signup(
    wx: WeChat, services: Services, clock: FakeClock,
) -> None:
    await activities.load_activities(services)  # the repository's: 楼道清洁 on 12-05 09:00
    clock.set(datetime(2026, 12, 4, 20, 0, tzinfo=ZoneInfo("Asia/Shanghai")))  # after the evening one's time
    assert "报名成功" in await wx.say("oSoon9", "报名 楼道清洁")
    clock.set(datetime(2026, 12, 5, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    await run_due(services)
    assert len(await wechat_to(services, "oSoon9")) == len(_soon(await wechat_to(services, "oSoon9"))) == 1
    reply = await wx.say("oSoon9", "去不了了")
    assert "已为您取消“楼道清洁志愿行动”的报名" in reply, reply
