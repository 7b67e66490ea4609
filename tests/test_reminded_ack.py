"""好的 准时到 / 一定到 said to a booking's or a volunteer activity's reminder, through /wechat on both
backends: an acknowledgement naming what was reminded of (好的，到时见), where it got 不客气 as if
it were thanks; with no reminder sent, or a question or a cancellation, it is what it was."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot import schedule
from bot.activities import load_activities
from bot.clock import FakeClock
from bot.flows.reminded_ack import attends
from bot.services import Services
from tests.conftest import WeChat


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def _book_lunch(wx: WeChat, openid: str) -> None:
    await wx.say(openid, "明天中午给我妈订个助餐")
    for answer in ("李桂兰", "80", "5栋301", "跳过", "13912345678", "否"):
        await wx.say(openid, answer)
    assert "已为助餐预约好：11月24日（周二）11:00" in await wx.say(openid, "是")


async def test_will_be_there_to_a_bookings_reminder(wx: WeChat, services: Services, clock: FakeClock) -> None:
    openid = oid()
    await _book_lunch(wx, openid)
    assert "到时见" not in await wx.say(openid, "好的 准时到")  # nothing reminded yet
    clock.advance(hours=9)  # 19:00, the evening before: the reminder goes out
    assert await schedule.run_due(services) >= 1
    for said in ("好的 准时到", "好的 一定到", "知道了 谢谢提醒"):
        reply = await wx.say(openid, said)
        assert "到时见" in reply and "11月24日（周二）11:00的助餐" in reply, (said, reply)
        assert "不客气" not in reply
    assert "要取消这个预约吗" in await wx.say(openid, "取消")  # still the reminded booking's cancellation


async def test_will_be_there_to_an_activitys_reminder(wx: WeChat, services: Services, clock: FakeClock) -> None:
    await load_activities(services)
    assert "报名成功" in await wx.say("oAckAct", "报名 楼道清洁")
    clock.set(datetime(2026, 12, 4, 19, 0, tzinfo=ZoneInfo("Asia/Shanghai")))  # the evening before
    await schedule.run_due(services)
    reply = await wx.say("oAckAct", "好的 一定到")
    assert "到时见" in reply and "楼道清洁" in reply and "不客气" not in reply


@pytest.mark.parametrize(("text", "ack"), [
    ("好的 准时到", True), ("一定到", True), ("好的，到时见", True), ("知道了 谢谢提醒", True), ("好的", True),
    ("谢谢", False), ("好的 能改个时间吗", False), ("不去了", False), ("楼道灯坏了", False),
])
def test_what_says_will_be_there(text: str, ack: bool) -> None:
    assert attends(text) is ack
