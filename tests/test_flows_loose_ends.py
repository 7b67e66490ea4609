"""Loose ends of the dialogs found walking /sim as residents, driven through /wechat on both
backends: a phone after the country code, 确认 at 您是党员吗."""

from __future__ import annotations

import uuid

import pytest

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


@pytest.mark.parametrize("typed", ["+8613812345678", "008613812345678", "+86 138 1234 5678", "＋86-138-1234-5678"])
async def test_a_phone_after_the_country_code_is_taken(wx: WeChat, services: Services, typed: str) -> None:
    openid = oid()
    for said in ("楼道灯坏了", "5号楼2单元", "跳过"):
        await wx.say(openid, said)
    assert "绑定" in await wx.say(openid, typed)
    summary = await wx.say(openid, "否")
    assert "联系电话：13812345678" in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["phone"] == "13812345678"


async def test_a_landline_and_a_short_number_are_unchanged(wx: WeChat) -> None:
    openid = oid()
    for said in ("楼道灯坏了", "5号楼2单元", "跳过"):
        await wx.say(openid, said)
    assert "手机号好像不对" in await wx.say(openid, "+86 1381234")
    assert "绑定" in await wx.say(openid, "0571-87654321")


async def test_confirm_at_the_party_question_is_no_answer(wx: WeChat, services: Services) -> None:
    openid = oid()
    for said in ("4", "王芳", "13812345678", "会电脑", "周末上午"):
        await wx.say(openid, said)
    assert "党员" in await wx.say(openid, "1 3")
    for said in ("确认", "好的"):
        again = await wx.say(openid, said)
        assert "请回复“是”或“否”" in again and "您是党员吗" in again, again
    assert "同意吗" in await wx.say(openid, "不是党员")
    summary = await wx.say(openid, "同意")
    assert "党员报到：否" in summary, summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["party_member"] is False


async def test_yes_at_the_party_question_is_still_yes(wx: WeChat, services: Services) -> None:
    openid = oid()
    for said in ("4", "王芳", "13812345678", "会电脑", "周末上午", "1"):
        await wx.say(openid, said)
    assert "同意吗" in await wx.say(openid, "是的")
    await wx.say(openid, "同意")
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["party_member"] is True
