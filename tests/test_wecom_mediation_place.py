"""Where a mediation is, as its mediator reads it in WeCom: the card and the 接单 reply say the
building and flat the resident named, or the parties, never （未说明） — on both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.wecom_driver import WeCom, outbox_rows


async def _mediation(wx: WeChat, svc: Services, openid: str, opening: str) -> str:
    await wx.say(openid, opening)
    for said in ("周六上午", "13812345678", "确认"):
        await wx.say(openid, said)
    [filed] = await tickets_of(svc, openid)
    assert (filed.kind, filed.assignee) == ("mediation", "chenmediator")
    return filed.number


async def _card(svc: Services, number: str) -> str:
    [card] = [o.payload for o in await outbox_rows(svc, "wecom", "chenmediator")
              if number in str(o.payload.get("title", ""))]
    return str(card["description"])


async def test_a_mediation_without_a_place_shows_its_parties_not_未说明(
    client: TestClient[Any, Any], services: Services,
) -> None:
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    number = await _mediation(wx, services, "oM", "楼上天天半夜吵，说过了不听，想请人调解")
    card = await _card(services, number)
    assert "未说明" not in card and "地点" not in card and "事项：与邻居" in card
    reply = await wc.say("chenmediator", "接单 1")
    assert reply.startswith(f"已接单：工单 {number}（与邻居），请在 ") and "未说明" not in reply
    assert "与邻居" in await wc.say("chenmediator", "我的工单")


async def test_a_mediation_whose_resident_named_the_flat_shows_it(
    client: TestClient[Any, Any], services: Services,
) -> None:
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    number = await _mediation(wx, services, "oF", "我家3号楼2单元502，楼上天天半夜跺脚，说了也不听，想请人调解")
    assert "地点：3号楼2单元502" in await _card(services, number)
    assert (await wc.say("chenmediator", "接单")).startswith(f"已接单：工单 {number}（3号楼2单元502），")
