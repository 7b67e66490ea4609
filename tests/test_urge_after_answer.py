"""A resident's chase (怎么还没人来 / 催一下) after staff answered them with 回复 — from WeCom or the
console — reaches whoever answered as well as the job's owner, and a chase after an answer is not
swallowed as 已经催促过 — on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import group_posts
from tests.wecom_driver import WeCom, load_demo_roster, new_ticket, outbox_rows

TOKEN = "api-token-for-urges"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """An API token: the console's answer is sent through /api (the same staff action)."""
    return {"api_token": TOKEN}


async def _texts(svc: Services, userid: str) -> list[str]:
    return [o.payload["text"] for o in await outbox_rows(svc, "wecom", userid) if o.payload.get("msgtype") == "text"]


async def test_a_chase_after_a_staff_answer_from_wecom_reaches_who_answered_and_the_owner(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    await load_demo_roster(services)
    job = await new_ticket(services, resident="oUrge1", summary="3号楼2单元楼道灯坏了")
    number = job.ticket.number
    assert job.ticket.assignee == "wangwei"
    clock.advance(minutes=10)
    assert (await wc.say("liustaff", "回复 1 您好，已经安排网格员今天下午过去")).startswith("已回复")
    clock.advance(hours=3)
    assert "已帮您催促" in await wx.say("oUrge1", "怎么还没人来")
    [told] = [t for t in await _texts(services, "liustaff") if "居民催办" in t]
    assert told == (f"【居民催办】工单 {number}（3号楼2单元楼道灯坏了）：您回复过的居民在催促：怎么还没人来\n"
                    "继续回复居民请发“回复 0001 内容”。")
    assert [t for t in await _texts(services, "wangwei") if "居民催办" in t]  # the owner, as before
    # chased again with no answer since: recorded, nobody pushed twice
    clock.advance(hours=1)
    assert "已经催促过" in await wx.say("oUrge1", "催一下")
    assert len([t for t in await _texts(services, "liustaff") if "居民催办" in t]) == 1
    assert len([t for t in await _texts(services, "wangwei") if "居民催办" in t]) == 1
    # the owner answers (明天上午到); chased after that answer, it is news: the owner hears again,
    # and 刘敏, whose answer is no longer the last, does not
    held = await wc.say("wangwei", "回复 1 今天材料没到，明天上午到")  # held once: 刘敏 answered
    assert held.startswith("刘敏 在")
    assert (await wc.say("wangwei", "回复 1 今天材料没到，明天上午到")).startswith("已回复")
    clock.advance(hours=2)
    assert "已帮您催促" in await wx.say("oUrge1", "催一下")
    assert len([t for t in await _texts(services, "wangwei") if "居民催办" in t]) == 2
    assert len([t for t in await _texts(services, "liustaff") if "居民催办" in t]) == 1


async def test_a_chase_after_a_console_answer_reaches_the_staff_group_and_the_owner(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    wx = WeChat(client, services.settings)
    await load_demo_roster(services)
    job = await new_ticket(services, resident="oUrge2", summary="3号楼门口下水道堵了", category="环境卫生",
                           fields={"phone": "13812345678"})
    number = job.ticket.number
    resp = await client.post(f"/api/tickets/{number}/reply", json={"text": "已联系物业，今天处理"},
                             headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200
    before = len(await group_posts(services))
    clock.advance(hours=2)
    assert "已帮您催促" in await wx.say("oUrge2", "怎么还没人来啊 都一天了")
    posts = [p.payload["content"] for p in await group_posts(services)][before:]
    [post] = [p for p in posts if "居民催办" in p]
    assert f"工单 {number}：居民催办（服务中心回复过这位居民）" in post and "居民说：怎么还没人来啊 都一天了" in post
    assert [t for t in await _texts(services, "wangwei") if "居民催办" in t]
