"""Residents' words in the middle of a request and outside one, through /wechat on both backends:
催一下 and 你们电话多少 at a question, a new phone number said outside any request, two numbers at
the phone question."""

from __future__ import annotations

import uuid

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import dialog_of, tickets_of

PHOTO_Q = "拍张照片"
PHONE_Q = "联系电话"
SUMMARY = "请核对"


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_hurrying_a_request_not_yet_sent_says_what_is_still_needed(wx: WeChat, services: Services) -> None:
    """催一下 / 快点 at a question were the question again: the request is not sent yet, so nobody
    could hurry; what is still to answer is said, then the same question."""
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    await wx.say(openid, "3号楼")
    for said in ("催一下", "快点", "能不能快点啊"):
        reply = await wx.say(openid, said)
        assert "还没有提交" in reply and "联系电话" in reply and PHOTO_Q in reply, reply
    await wx.say(openid, "没有")
    await wx.say(openid, "13800001111")
    await wx.say(openid, "否")
    at_summary = await wx.say(openid, "快点")
    assert "还没有提交" in at_summary and "确认" in at_summary and SUMMARY in at_summary, at_summary
    state = await dialog_of(services, openid)
    assert state is not None and state.invalid == 0 and state.slots["description"] == "楼道灯坏了"
    assert await tickets_of(services, openid) == []


async def test_a_description_saying_hurry_is_still_the_description(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "我要报修")
    await wx.say(openid, "1")
    await wx.say(openid, "3号楼")
    await wx.say(openid, "灯不亮了快点")
    state = await dialog_of(services, openid)
    assert state is not None and state.slots.get("description") == "灯不亮了快点"


async def test_the_service_centres_phone_asked_at_a_question(wx: WeChat, services: Services) -> None:
    """你们电话多少 / 服务中心电话 at a question were the question again: the number operators
    keep in config/faq.toml is given, then the same question."""
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    await wx.say(openid, "3号楼")
    for said in ("你们电话多少", "服务中心电话"):
        reply = await wx.say(openid, said)
        assert "0571-8888 1234" in reply and PHOTO_Q in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.invalid == 0
