"""A question about one's own open report in the middle of a booking (我想问一下我那个路灯修了没有
where the time is asked) is answered with that report's status, and the question asked again —
it was 没有看懂时间 (the classifier reads 修了没有 as a report, not a status question)."""

from __future__ import annotations

import uuid

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.test_flows_elderly import bookings_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def _reported_lamp(wx: WeChat, openid: str) -> str:
    for said in ("3号楼门口路灯坏了", "跳过", "13912345678", "否"):
        await wx.say(openid, said)
    done = await wx.say(openid, "确认")
    assert "工单号" in done, done
    return done.split("工单号：")[1][:13]


async def test_a_status_question_at_the_time_question_is_answered_and_the_time_asked_again(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    number = await _reported_lamp(wx, openid)
    for said in ("给我妈约个助浴", "王秀英", "82"):
        await wx.say(openid, said)
    assert "几点" in await wx.say(openid, "3栋2单元301")
    told = await wx.say(openid, "我想问一下我那个路灯修了没有")
    assert number in told and "等待接单" in told and "想约哪一天、几点" in told, told
    assert "没有看懂" not in told, told
    assert "注意" in await wx.say(openid, "明天上午10点")
    told = await wx.say(openid, "路灯修好没有？")  # at the notes: no note, the status again
    assert number in told and "注意" in told, told
    assert "联系电话" in await wx.say(openid, "需要搀扶")
    assert "绑定" in await wx.say(openid, "13912345678")
    summary = await wx.say(openid, "否")
    assert "备注：需要搀扶" in summary and "路灯" not in summary, summary
    assert "预约好" in await wx.say(openid, "确认")
    [booking] = await bookings_of(services, openid)
    assert booking.notes == "需要搀扶"
    assert len(await tickets_of(services, openid)) == 2  # the lamp's report and the booking's, no other


async def test_a_question_about_a_kind_never_reported_is_still_refused(wx: WeChat, services: Services) -> None:
    """With no open report of 电梯, 电梯修了没有 at the time question tells nothing to answer: the
    time is asked again with the hint, as before."""
    openid = oid()
    for said in ("给我妈约个助浴", "王秀英", "82"):
        await wx.say(openid, said)
    assert "几点" in await wx.say(openid, "3栋2单元301")
    told = await wx.say(openid, "电梯修了没有")
    assert "【" not in told and "想约哪一天、几点" in told, told
