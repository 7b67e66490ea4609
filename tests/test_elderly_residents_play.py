"""Elderly residents, and their children writing for them, through whole conversations (both
backends, plaintext and safe mode): what a resident found wrong or unclear, each fixed here."""

from __future__ import annotations

import uuid

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_a_day_past_the_booking_horizon_says_how_far_it_can_be_booked(wx: WeChat, services: Services) -> None:
    """A daughter booking her mother's meals for 下周二上午 (eight days ahead, 助餐 books seven) was
    told only 这个日期太远了 …请约近一些的日子, and had to guess how near. The answer names how many
    days ahead the service books and the last day it can be."""
    openid = oid()
    assert "怎么称呼" in await wx.say(openid, "帮我妈订下周二上午的送餐")
    for answer in ("张桂英", "八十五"):
        await wx.say(openid, answer)
    asked = await wx.say(openid, "5号楼2单元302")
    assert "您说的“下周二上午”：这项服务只能约7天以内的，最远约到11月30日（周一）" in asked, asked
    assert "想约哪一天" in asked
    assert "最远约到11月30日（周一）" in await wx.say(openid, "12月2号中午")  # said again to a second try
    assert "注意" in await wx.say(openid, "30号中午")
    await wx.say(openid, "不吃辣 牙口不好")
    summary = await wx.say(openid, "13812345678")
    assert "时间：11月30日 中午" in summary, summary
    assert "已为助餐预约好：11月30日（周一）11:00" in await wx.say(openid, "确认")
    changed = await wx.say(openid, "预约改到12月3号中午")
    assert "助餐不能改到这个时间：这项服务只能约7天以内的，最远约到11月30日（周一）" in changed, changed
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["start"] == "2026-11-30T03:00:00+00:00"  # 11:00 in Shanghai: unchanged
