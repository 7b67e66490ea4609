"""An announced outage said (停水了, 家里没水了) in the middle of another request, on both backends:
the resident hears the announcement, then that request's question again — not taken as its answer
(a name) nor as another matter to tell later."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.services import Services
from storage.models import Ticket
from tests.conftest import WeChat
from tests.test_outages import STAFF, _resident
from tests.wecom_driver import WeCom, load_demo_roster

Client = TestClient[Any, Any]


async def test_an_outage_said_in_the_middle_of_another_request_is_told_and_the_request_goes_on(
        client: Client, services: Services) -> None:
    await load_demo_roster(services)
    wc, wx = WeCom(client, services), WeChat(client, services.settings)
    await wc.say(STAFF, "停水 3 4 预计15:00 管道抢修")
    await _resident(services, "oMeal", "3")
    assert "给谁预约" in await wx.say("oMeal", "我要预约助餐")
    for said in ("停水了", "家里没水了", "又停水了"):  # not taken as who it is for, nor another matter
        told = await wx.say("oMeal", said)
        assert "社区通知：3、4号楼停水（管道抢修），预计今天15:00恢复。" in told, said
        assert "给谁预约" in told and "另一件事" not in told and "改办" not in told, said
    assert "怎么称呼" in await wx.say("oMeal", "我妈")  # the booking goes on where it was
    # where they live is not known: every 停水 announcement, and how to report if theirs is not in it
    await wx.say("oSomewhere", "我要预约助餐")
    told = await wx.say("oSomewhere", "停水了")
    assert "社区通知：3、4号楼停水" in told and "如果您家不在通知范围内" in told and "给谁预约" in told
    # a report of something else: the photo asked again, not 这听起来是另一件事
    await _resident(services, "oLamp", "4")
    await wx.say("oLamp", "4号楼2单元楼道灯坏了")
    told = await wx.say("oLamp", "停水了")
    assert "社区通知：3、4号楼停水" in told and "另一件事" not in told and "拍张照片" in told
    # nothing announced for the building said: another matter, as before
    assert "社区通知" not in await wx.say("oLamp", "8号楼停水了")
    # an emergency is never told the announcement
    assert "社区通知" not in await wx.say("oLamp", "停水了 我妈摔倒了")
    async with services.sessions() as session:
        assert list((await session.scalars(select(Ticket))).all()) == []
