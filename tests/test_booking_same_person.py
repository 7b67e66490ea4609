"""给我妈订… when 我妈 was booked before, through /wechat on both backends: the last booking's name,
age, address and phone are offered at the name question and taken with 是 (before: every one of
them asked again); another name is asked on as before."""

from __future__ import annotations

import uuid

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def _booked_mum(wx: WeChat, openid: str) -> None:
    await wx.say(openid, "给我妈订明天的午饭")
    await wx.say(openid, "王秀英")
    await wx.say(openid, "82")
    await wx.say(openid, "5号楼2单元301")
    await wx.say(openid, "少盐")
    await wx.say(openid, "13812345678")
    await wx.say(openid, "否")
    assert "已为助餐预约好" in await wx.say(openid, "1")


async def test_the_same_person_is_offered_and_taken(wx: WeChat, services: Services) -> None:
    openid = oid()
    await _booked_mum(wx, openid)
    offered = await wx.say(openid, "给我妈约个后天上午的陪诊")
    assert "还是给王秀英（82岁），地址5号楼2单元301，电话138****5678吗" in offered
    assert "13812345678" not in offered  # masked, as in pushes
    kept = await wx.say(openid, "是")
    assert "好的，还是给王秀英" in kept and "注意" in kept  # no age, address or phone asked
    summary = await wx.say(openid, "不用")
    assert "请核对" in summary and "王秀英" in summary and "5号楼2单元301" in summary and "13812345678" in summary
    assert "已为陪诊预约好" in await wx.say(openid, "1")
    second = (await tickets_of(services, openid))[-1]
    assert second.fields["for_name"] == "王秀英" and second.fields["age"] == 82
    assert second.fields["address"] == "5号楼2单元301" and second.fields["phone"] == "13812345678"


async def test_another_name_is_asked_on(wx: WeChat, services: Services) -> None:
    openid = oid()
    await _booked_mum(wx, openid)
    assert "还是给王秀英" in await wx.say(openid, "给我妈订后天的晚饭")
    assert "多大年纪" in await wx.say(openid, "不是，是李桂芝")


async def test_someone_never_booked_for_is_not_offered(wx: WeChat, services: Services) -> None:
    openid = oid()
    await _booked_mum(wx, openid)
    asked = await wx.say(openid, "给我爸订后天的午饭")
    assert "还是给" not in asked and "怎么称呼" in asked
