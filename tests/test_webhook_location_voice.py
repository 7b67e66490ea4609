"""Location messages whose point is no point, and voice messages whose recognition heard no words,
walked through the webhook on both backends, plaintext and safe mode.

Before: Location_X nan or inf (float() reads them) made PostgreSQL refuse the message's JSON — the
resident got 系统有点忙 and the message was lost — and on SQLite 位置(999.0, -inf) became the
report's place; a voice recognised as a bare 。 was answered 没太明白 with the menu, and a bare ？
in a request with the list of commands, instead of 没有听清."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.channels.wechat import parse_xml, to_inbound
from bot.services import Services
from bot.sim.wechat_client import event_xml, message_xml
from storage.models import Message
from tests.conftest import WeChat

PLACE_Q = "问题在哪里"
UNHEARD = "没有听清"


def _location(**fields: str) -> dict[str, str]:
    return {"Location_X": "30.274084", "Location_Y": "120.15507", "Scale": "15", "Label": "", **fields}


@pytest.mark.parametrize(("x", "y"), [("nan", "120.1"), ("30.2", "inf"), ("999", "120.1"), ("30.2", "-1e400")])
def test_a_point_nowhere_is_no_point(x: str, y: str) -> None:
    inbound = to_inbound(parse_xml(message_xml("location", "oPt", **_location(Location_X=x, Location_Y=y, Label="3号楼"))))
    assert inbound is not None and "latitude" not in inbound.media and "longitude" not in inbound.media
    assert inbound.text == "3号楼" and inbound.media["label"] == "3号楼"
    event = to_inbound(parse_xml(event_xml("oPt", "LOCATION", fields={"Latitude": x, "Longitude": y, "Precision": "nan"})))
    assert event is not None and event.media == {"precision": None}
    kept = to_inbound(parse_xml(message_xml("location", "oPt", **_location())))
    assert kept is not None and kept.media["latitude"] == 30.274084 and kept.media["longitude"] == 120.15507


async def test_a_location_with_a_point_nowhere_is_kept_and_its_label_read(wx: WeChat, services: Services) -> None:
    assert PLACE_Q in await wx.say("oPt1", "楼道灯坏了")
    reply = await wx.send("location", "oPt1", **_location(Location_X="nan", Location_Y="inf", Label="3号楼2单元"))
    assert "系统有点忙" not in reply and "照片" in reply, reply
    await wx.say("oPt1", "跳过")
    await wx.say("oPt1", "13812345678")
    summary = await wx.say("oPt1", "否")
    assert "地点：3号楼2单元" in summary and "inf" not in summary and "nan" not in summary, summary
    async with services.sessions() as session:
        kinds = list(await session.scalars(select(Message.msg_type).where(Message.openid == "oPt1", Message.direction == "in")))
    assert "location" in kinds  # recorded, not lost


async def test_a_location_with_no_point_and_no_label_asks_the_place_again(wx: WeChat) -> None:
    assert PLACE_Q in await wx.say("oPt2", "楼道灯坏了")
    reply = await wx.send("location", "oPt2", **_location(Location_X="999", Location_Y="-1e400"))
    assert "位置(" not in reply and reply.splitlines()[-1].startswith(PLACE_Q), reply
    event = await wx.event("oPt2", "LOCATION", fields={"Latitude": "nan", "Longitude": "nan", "Precision": "inf"})
    assert event == ""  # the account's background location: recorded, no answer, as ever


@pytest.mark.parametrize("heard", ["。", "？", " ！ ", "…"])
async def test_a_voice_recognised_as_punctuation_was_not_heard(wx: WeChat, heard: str) -> None:
    alone = await wx.send("voice", "oVc1", MediaId="m1", Format="amr", Recognition=heard)
    assert UNHEARD in alone and "我可以帮您" not in alone, alone
    assert PLACE_Q in await wx.say("oVc1", "楼道灯坏了")
    mid = await wx.send("voice", "oVc1", MediaId="m2", Format="amr", Recognition=heard)
    assert UNHEARD in mid and "返回" not in mid, mid
    assert "照片" in await wx.send("voice", "oVc1", MediaId="m3", Format="amr", Recognition="三号楼二单元。")
