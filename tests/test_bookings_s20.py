"""Bookings and volunteer signups walked as elderly residents in session 20 (both backends): what a
resident found wrong, each fixed here. The clock is 2026-11-23 (a Monday) 10:00 in Shanghai."""

from __future__ import annotations

import uuid

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_a_bath_on_a_day_it_is_not_offered_says_the_days_it_is(wx: WeChat, services: Services) -> None:
    """助浴 asked for on a Friday was told 这一天不提供这项服务，请按服务时间另选一天 — not which days it
    is given. The refusal names them (周二、周四、周六, read from config/services.toml) and the nearest
    bookable ones, and the time is asked again; one of them is then taken."""
    openid = oid()
    for said in ("我想约个助浴", "我自己", "王秀英", "82", "5号楼2单元301"):
        await wx.say(openid, said)
    refused = await wx.say(openid, "周五上午")
    assert "助浴只在周二、周四、周六提供" in refused, refused
    assert "最近可以约11月24日（周二）、11月26日（周四）" in refused, refused
    assert "想约哪一天" in refused, refused
    assert "注意" in await wx.say(openid, "週四上午十點")  # one of them, in traditional characters
    await wx.say(openid, "没有")
    await wx.say(openid, "13812345678")
    assert "时间：11月26日 10:00" in await wx.say(openid, "否")
    assert "已为助浴预约好：11月26日（周四）10:00" in await wx.say(openid, "确认")


async def test_a_bath_named_for_a_closed_day_in_the_opening_says_the_days_too(wx: WeChat) -> None:
    """The same refusal when the opening named the day (给我妈约个助浴 后天上午, a Wednesday)."""
    openid = oid()
    for said in ("给我妈约个助浴 后天上午", "张桂兰", "85"):
        await wx.say(openid, said)
    asked = await wx.say(openid, "3栋2单元502")
    assert "您说的“后天上午”：这一天不提供这项服务：助浴只在周二、周四、周六提供" in asked, asked
    assert "想约哪一天" in asked, asked
