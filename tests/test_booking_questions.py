"""Questions about a booking already made, and answers to its reminder, as residents say them
(both backends, plaintext and safe mode): 几点来着, 谁来送啊, 多少钱, 我订了啥, 不要了 谢谢."""

from __future__ import annotations

import uuid

import pytest

from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import WeChat
from tests.test_flows_elderly import _book_lunch, bookings_of

LINE = "助餐｜11月24日（周二）11:00｜李桂兰（80岁）"


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def _reminded(wx: WeChat, services: Services, clock: FakeClock) -> str:
    from bot import schedule

    openid = oid()
    await _book_lunch(wx, openid)
    clock.advance(hours=9)  # 19:00, the evening before: 【预约提醒】…明天 11:00
    await schedule.run_due(services)
    return openid


@pytest.mark.parametrize("asked", ["几点来着", "明天几点送啊", "谁来送啊", "我订了啥", "我预约了什么", "请问订的是几点"])
async def test_a_question_about_the_booking_is_answered_with_it(
    wx: WeChat, services: Services, clock: FakeClock, asked: str
) -> None:
    """几点来着 / 谁来送啊 / 我订了啥 to a booking's reminder got 没太明白 and the menu, and 我预约了什么
    began a new booking (请问给谁预约). They are answered with the bookings ahead: the time, the
    person, who provides it, and how to change it."""
    openid = await _reminded(wx, services, clock)
    told = await wx.say(openid, asked)
    assert "您约好的服务（1个）" in told and LINE in told and "经办：望湖长者食堂" in told, told
    assert "如需变更" in told and "没太明白" not in told and "给谁预约" not in told


async def test_the_price_asked_after_booking_is_the_services_fee(wx: WeChat, services: Services) -> None:
    """多少钱 after booking a meal got 没太明白 and the menu: it is the meal's fee line, with the booking."""
    openid = oid()
    await _book_lunch(wx, openid)
    told = await wx.say(openid, "多少钱")
    assert "助餐的费用：餐费按长者食堂公示的价格收取" in told and LINE in told, told


async def test_what_was_booked_with_nothing_booked_says_so(wx: WeChat, services: Services) -> None:
    """我订了啥 with no booking is told there is none (it was 没太明白); 几点来着 with none is what it was."""
    openid = oid()
    assert "您现在没有待进行的养老服务预约" in await wx.say(openid, "我订了啥")
    assert "没太明白" in await wx.say(openid, "几点来着")


async def test_who_comes_asked_during_a_booking_is_answered(wx: WeChat, services: Services) -> None:
    """谁来送 at 老人多大年纪 was told 请说一个年龄数字. It is answered (the provider, named once it is
    submitted) and the age asked again."""
    openid = oid()
    assert "怎么称呼" in await wx.say(openid, "给我妈订明天的午饭")
    await wx.say(openid, "张桂兰")
    told = await wx.say(openid, "谁来送")
    assert "派给负责这项服务的服务机构" in told and "多大年纪" in told and "年龄数字" not in told, told


@pytest.mark.parametrize("said", ["不要了 谢谢", "明天不去了，谢谢你"])
async def test_no_longer_wanted_with_thanks_after_a_reminder_offers_to_cancel(
    wx: WeChat, services: Services, clock: FakeClock, said: str
) -> None:
    """不要了 谢谢 to the evening-before reminder got 不客气 — the thanks was heard, the booking kept,
    and the meal would have come. It offers to cancel that booking, as 不要了 does."""
    openid = await _reminded(wx, services, clock)
    offered = await wx.say(openid, said)
    assert "要取消这个预约吗" in offered and "不客气" not in offered, offered
    assert "已取消" in await wx.say(openid, "是")
    [booking] = await bookings_of(services, openid)
    assert booking.status == "cancelled"


@pytest.mark.parametrize("asked", ["能晚点送吗", "能不能晚一点送", "明天中午送到几点"])
async def test_a_later_delivery_or_its_hour_asked_after_a_reminder(
    wx: WeChat, services: Services, clock: FakeClock, asked: str
) -> None:
    """能晚点送吗 / 明天中午送到几点 to a meal's reminder got 没太明白 and the menu. They get the booking,
    and a later time wished is told how to move it (改到…)."""
    openid = await _reminded(wx, services, clock)
    told = await wx.say(openid, asked)
    assert LINE in told and "没太明白" not in told, told
    if "晚" in asked:
        assert "改到几点" in told, told
