"""An emergency said in the middle of another request, through /wechat on both backends: 我闻到
煤气味了 where a booking asks the name was taken for the name, and 我妈摔倒了 起不来了 at its age was
asked 要先放下它吗 with no advice. It is served at once, as an opening is, the request left unsubmitted."""

from __future__ import annotations

import uuid

import pytest

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_gas_at_a_bookings_name_question_is_the_emergency_not_a_name(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "怎么称呼" in await wx.say(openid, "帮我妈约个助浴")
    told = await wx.say(openid, "我闻到煤气味了")
    assert "关闭燃气阀门" in told and "问题在哪里" in told, told
    assert "“养老服务预约”还没有提交" in told and "多大年纪" not in told, told
    await wx.say(openid, "4号楼2单元楼道")
    assert "已按紧急情况登记" in await wx.say(openid, "13344445555")
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "complaint" and ticket.urgency == "urgent"


@pytest.mark.parametrize("said", ["我妈摔倒了 起不来了", "我老伴晕倒了"])
async def test_someone_fallen_at_a_bookings_age_question_gets_the_advice_at_once(
    wx: WeChat, services: Services, said: str
) -> None:
    openid = oid()
    await wx.say(openid, "帮我妈约个助浴")
    assert "多大年纪" in await wx.say(openid, "张桂英")
    told = await wx.say(openid, said)
    assert "120" in told and "要先放下它" not in told and "还没有提交" in told, told


async def test_a_cry_for_help_in_a_volunteer_signup_reaches_a_person(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "姓名" in await wx.say(openid, "我要报名当志愿者")
    told = await wx.say(openid, "快来人啊")
    assert "还没有提交" in told and "姓名" not in told.split("\n")[-1], told
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff" and ticket.urgency == "urgent"


async def test_a_past_fall_told_as_a_care_note_is_still_the_note(wx: WeChat, services: Services) -> None:
    """Not an emergency now (去年摔过 腿脚不好): the booking's own answer, as before."""
    openid = oid()
    await wx.say(openid, "帮我妈约个助浴")
    for answer in ("张桂英", "85", "3栋2单元301", "明天上午十点"):
        await wx.say(openid, answer)
    told = await wx.say(openid, "去年摔过一跤 腿脚不好 要人扶")
    assert "还没有提交" not in told and "联系电话" in told, told
