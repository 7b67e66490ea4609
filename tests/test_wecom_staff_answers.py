"""Answering residents from WeCom (`回复 N 内容`): two staff answering the same resident at once,
and what the resident receives through /wechat — on both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.wecom_driver import WeCom, outbox_rows


async def _answers(svc: Services, openid: str) -> list[str]:
    """The staff answers queued for the resident, oldest first."""
    return [o.payload["text"] for o in await outbox_rows(svc, "wechat", openid) if "【社区服务中心】" in o.payload["text"]]


async def test_a_second_staff_answer_minutes_after_a_colleagues_is_held_back_showing_it(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    await wx.say("oH", "转人工")
    await wx.say("oH", "我家暖气不热，找物业没人管")
    [handoff] = await tickets_of(services, "oH")
    clock.advance(minutes=3)
    assert await wc.say("liustaff", "回复 1 您好，请问是几号楼？") == f"已回复工单 {handoff.number} 的居民（客服消息）。"
    clock.advance(seconds=40)
    # the colleague saw only the group post: her answer waits until she has read 刘敏's
    held = await wc.say("admin", "回复 1 您好，我们马上联系物业")
    assert held == ("刘敏 在 10:03 已回复了这位居民：“您好，请问是几号楼？”。您的回复还没有发出；"
                    "看过同事的回复后如仍需发送，请再发一次。")
    assert await _answers(services, "oH") == [f"【社区服务中心】关于您的工单 {handoff.number}：\n您好，请问是几号楼？"]
    # sent again, it goes
    assert await wc.say("admin", "回复 1 您好，我们马上联系物业") == f"已回复工单 {handoff.number} 的居民（客服消息）。"
    assert len(await _answers(services, "oH")) == 2
    # a staff member's own answers one after another are never held
    assert (await wc.say("admin", "回复 1 物业电话是 8888 6666")).startswith("已回复")
    # 刘敏 has not read 管理员's answers: hers is held once, naming the latest
    again = await wc.say("liustaff", "回复 1 请问您家是几单元？")
    assert again.startswith("管理员 在 10:03 已回复了这位居民：“物业电话是 8888 6666”。")
    assert len(await _answers(services, "oH")) == 3
    assert (await wc.say("liustaff", "回复 1 请问您家是几单元？")).startswith("已回复")
    assert len(await _answers(services, "oH")) == 4
