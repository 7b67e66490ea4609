"""The bot speaking first to a resident who unfollowed the account: WeChat refuses every message
(43004), so the schedule queues none — no survey, survey reminder, activity or idle reminder left
dead in the outbox — while the survey still ends as 未评价 in its time, and a resident who follows
again is reached by what is still ahead. Both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import activities
from bot.clock import FakeClock
from bot.schedule import run_due
from bot.services import Services
from storage.models import OutboxItem, Reminder
from tests.conftest import WeChat
from tests.test_activities import local, sign
from tests.test_activities_said_when import EVENING
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, ticket

Client = TestClient[Any, Any]
DAY_S = 86400


async def texts_to(svc: Services, openid: str) -> list[str]:
    async with svc.sessions() as session:
        rows = await session.scalars(select(OutboxItem).where(OutboxItem.target == openid).order_by(OutboxItem.id))
        return [str(r.payload.get("text") or "") for r in rows]


async def test_a_survey_is_not_pushed_to_who_unfollowed_and_ends_unrated(
    client: Client, services: Services, clock: FakeClock
) -> None:
    """Two residents report, unfollow, and their jobs are finished. The survey goes to neither
    (before, it was queued and left dead: 居民已取消关注公众号); 3 days on, oU1's ticket is closed as 未评价 as an
    unanswered survey is. oU2 follows again the next day: the one reminder reaches them, and their
    满意 is their rating."""
    await load_demo_roster(services)
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    made = {}
    for openid, building in (("oU1", "1"), ("oU2", "2")):
        assert await wx.say(openid, "你好")
        made[openid] = (await new_ticket(services, resident=openid, building=building)).ticket
        await wx.event(openid, "unsubscribe")
        assert (await wc.say("wangwei", f"办结 {made[openid].number[-4:]} 已修好")).startswith("已办结")
    clock.advance(seconds=services.settings.survey_delay_s)
    await run_due(services)
    for openid in made:
        assert not any("服务回访" in x for x in await texts_to(services, openid)), openid
    clock.advance(days=1)
    await wx.event("oU2", "subscribe")
    for _ in range(4):
        clock.advance(hours=12)
        await run_due(services)
    one, two = await texts_to(services, "oU1"), await texts_to(services, "oU2")
    assert not any("回访" in x for x in one)
    assert [x for x in two if "回访" in x] == [next(x for x in two if "【回访提醒】" in x)]
    first = await ticket(services, made["oU1"].number)
    assert (first.status, first.satisfaction, first.satisfaction_label) == ("closed", None, "未评价")
    assert "感谢" in await wx.say("oU2", "满意")
    assert (await ticket(services, made["oU2"].number)).satisfaction == 5


async def test_an_activity_reminder_is_not_pushed_to_who_unfollowed(
    client: Client, services: Services, clock: FakeClock, tmp_path: Path
) -> None:
    """Signed up for the patrol, then unfollowed: the evening and the hour-before reminders and the
    thank-you are dropped, nothing queued."""
    wx = WeChat(client, services.settings)
    path = tmp_path / "activities.toml"
    path.write_text(EVENING, encoding="utf-8")
    await activities.load_activities(services, path)
    assert await wx.say("oU3", "你好")
    assert (await sign(services, "oU3", "夜间安全巡逻")).status == "signed"
    await wx.event("oU3", "unsubscribe")
    for day, hour in ((25, 19), (26, 18), (27, 9)):
        clock.set(local(day, hour))
        await run_due(services)
    assert await texts_to(services, "oU3") == []
    async with services.sessions() as session:
        states = set(await session.scalars(select(Reminder.state).where(Reminder.target == "oU3")))
    assert states == {"dropped"}
