"""Times of a booking as residents say them (both backends, plaintext and safe mode): a meal named
for the time of day, and a new time said with 改到 where the time is asked."""

from __future__ import annotations

import uuid

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_a_dinner_booked_for_tomorrow_is_booked_for_the_evening(wx: WeChat, services: Services) -> None:
    """给我妈订明天的晚饭 was booked at 11:00 (lunch), the summary saying only 时间：11月24日: the
    meal the opening named was dropped with the time of day. It is booked at the dinner's first
    start, and the summary says 晚饭."""
    openid = oid()
    assert "怎么称呼" in await wx.say(openid, "给我妈订明天的晚饭")
    for answer in ("王秀英", "79", "6号楼2单元101", "跳过", "13700001111"):
        await wx.say(openid, answer)
    summary = await wx.say(openid, "否")  # not bound
    assert "时间：11月24日 晚饭" in summary, summary
    assert "已为助餐预约好：11月24日（周二）17:00" in await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["start"] == "2026-11-24T09:00:00+00:00"  # 17:00 in Shanghai


async def test_a_dinner_named_without_a_day_asks_the_day_and_keeps_the_dinner(wx: WeChat, services: Services) -> None:
    """帮我爸订个晚饭, then 后天 where the time is asked, was booked at 11:00 of that day. The day
    is asked for the dinner, and the dinner kept."""
    openid = oid()
    assert "怎么称呼" in await wx.say(openid, "帮我爸订个晚饭")
    for answer in ("李德福", "88"):
        await wx.say(openid, answer)
    asked = await wx.say(openid, "2号楼3单元202")
    assert "您说的“晚饭”：请说是哪一天" in asked, asked
    assert "时间先记下了：11月25日 晚饭" in await wx.say(openid, "后天")
    for answer in ("跳过", "13700002222"):
        await wx.say(openid, answer)
    await wx.say(openid, "否")
    assert "已为助餐预约好：11月25日（周三）17:00" in await wx.say(openid, "1")


async def test_a_move_said_where_the_time_is_asked_is_its_answer(wx: WeChat, services: Services) -> None:
    """下礼拜三上午 for a 助浴 (Tuesdays, Thursdays, Saturdays) was refused and the time asked; the son
    answered 算了改到大后天上午吧 and was asked the same question again, no word on what he said. It is
    the answer: 大后天上午 is taken."""
    openid = oid()
    assert "怎么称呼" in await wx.say(openid, "下礼拜三上午给我爸约个助浴")
    await wx.say(openid, "李建国 八十一了")
    asked = await wx.say(openid, "5号楼1单元301 电话13912345678")
    assert "这一天不提供这项服务" in asked, asked
    told = await wx.say(openid, "算了改到大后天上午吧")
    assert "注意" in told and "想约哪一天" not in told, told
    await wx.say(openid, "他坐轮椅")
    summary = await wx.say(openid, "否")
    assert "时间：11月26日 上午" in summary, summary
    assert "已为助浴预约好：11月26日（周四）09:00" in await wx.say(openid, "1")


async def test_the_end_of_the_month_is_a_day(wx: WeChat, services: Services) -> None:
    """月底 where a haircut's time is asked got 没有看懂时间. It is the month's last day (11月30日, a
    Monday: 理发 is on Wednesdays, which is said), and 下个月初上午 the next month's first (a Tuesday)."""
    openid = oid()
    assert "怎么称呼" in await wx.say(openid, "给我爸约个理发")
    for answer in ("李建国", "81"):
        await wx.say(openid, answer)
    assert "想约哪一天" in await wx.say(openid, "7号楼1单元101")
    told = await wx.say(openid, "月底")
    assert "这一天不提供这项服务" in told and "没有看懂时间" not in told, told
    assert "这一天不提供这项服务" in await wx.say(openid, "下个月初上午")  # 12月1日, a Tuesday
    assert "注意" in await wx.say(openid, "下个月2号上午")


def test_month_edges_are_read_as_days() -> None:
    from datetime import date

    from bot.when import parse_day

    today = date(2026, 11, 25)
    assert parse_day("月底", today) == date(2026, 11, 30)
    assert parse_day("这个月底那天上午", today) == date(2026, 11, 30)
    assert parse_day("下个月底", today) == date(2026, 12, 31)
    assert parse_day("下个月初", today) == parse_day("月初", today) == date(2026, 12, 1)
    assert parse_day("二月底", today) == date(2027, 2, 28)
    assert parse_day("11月初", today) is None  # passed
    assert parse_day("正月初一", today) is None  # a lunar day: not read
