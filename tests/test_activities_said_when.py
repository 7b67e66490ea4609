"""An activity's reminders and thank-you name the day as it is when they go out: a thank-you the
quiet hours hold to the next morning says 昨天, not 今天; a reminder a stopped scheduler sends late
says 今天, not 明天, and one claimed after the start is not sent — on both backends."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot import activities
from bot.clock import FakeClock
from bot.schedule import run_due
from bot.services import Services
from storage.models import OutboxItem
from tests.test_activities import local, sign

EVENING = """
[[activities]]
key = "patrol"
title = "夜间安全巡逻"
place = "社区服务中心门口"
start = "2026-11-26 19:00"
end = "2026-11-26 20:30"
"""


async def texts_to(svc: Services, openid: str) -> list[str]:
    async with svc.sessions() as session:
        rows = await session.scalars(select(OutboxItem).where(OutboxItem.target == openid).order_by(OutboxItem.id))
        return [str(r.payload["text"]) for r in rows]


async def loaded(svc: Services, tmp_path: Path, toml: str = EVENING) -> None:
    path = tmp_path / "activities.toml"
    path.write_text(toml, encoding="utf-8")
    assert await activities.load_activities(svc, path) == 1


async def test_a_thank_you_held_past_the_night_says_yesterday(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    """The patrol ends at 20:30; its thank-you, due at 21:30, is held by the quiet hours (21:00-08:00)
    to the next morning: it thanks for 昨天's activity (before, 今天的志愿活动 the day after)."""
    await loaded(services, tmp_path)
    assert (await sign(services, "o_pat", "夜间安全巡逻")).status == "signed"
    for day, hour, minute in ((25, 19, 0), (26, 18, 0), (26, 21, 30), (27, 8, 0)):
        clock.set(local(day, hour, minute))
        await run_due(services)
    evening, soon, thanks = await texts_to(services, "o_pat")
    assert "“夜间安全巡逻”明天 19:00 开始" in evening
    assert "将于 19:00 开始（约60分钟后）" in soon
    assert "感谢您参加昨天的志愿活动“夜间安全巡逻”" in thanks


async def test_a_thank_you_on_the_day_says_today(services: Services, clock: FakeClock, tmp_path: Path) -> None:
    """An afternoon's activity, thanked at 18:00 the same day: 今天's."""
    await loaded(services, tmp_path, EVENING.replace("19:00", "15:00").replace("20:30", "17:00"))
    await sign(services, "o_pat", "夜间安全巡逻")
    clock.set(local(26, 18, 0))
    await run_due(services)
    assert "感谢您参加今天的志愿活动" in (await texts_to(services, "o_pat"))[-1]


async def test_reminders_a_stopped_scheduler_claims_late_say_today_or_are_dropped(
    services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    """The scheduler stopped from before 19:00 on the 25th: claimed at 08:00 on the 26th, the
    evening reminder says the patrol is 今天 19:00 (not 明天); one stopped until 19:05 on the 26th
    sends neither the evening nor the "in an hour" reminder to someone already there."""
    await loaded(services, tmp_path)
    await sign(services, "o_late", "夜间安全巡逻")
    clock.set(local(26, 8, 0))
    await run_due(services)
    [evening] = await texts_to(services, "o_late")
    assert "“夜间安全巡逻”今天 19:00 开始" in evening and "明天" not in evening

    await sign(services, "o_later", "夜间安全巡逻")  # planned now: the hour-before one only
    clock.set(local(26, 19, 5))
    await run_due(services)
    assert await texts_to(services, "o_later") == []
