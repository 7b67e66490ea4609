"""A hand-off given from the desk to a grid worker, a mediator or a care provider, through /wechat,
/api and the WeCom callback on both backends: an old person fallen or locked out is the building's
grid worker's to go and see, not only staff's. The owner's card says what the resident said (the
phone masked), and the console's 派单 list offers them, the ticket's own grid's worker first."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from bot.staff_actions import ActionRefused, staff_transition
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.staff_support import logged_in
from tests.wecom_driver import WeCom, outbox_rows

PHONE, MASKED = "13812345678", "138****5678"


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def _assign(svc: Services, number: str, who: str) -> None:
    """派单 as the console's and /api's transition does it."""
    await staff_transition(svc, number, "assign", "liu", assignee=who, note="请尽快上门看看")


async def test_a_handoff_is_given_to_the_buildings_grid_worker_with_the_residents_words(
    wx: WeChat, services: Services, client: TestClient[Any, Any]
) -> None:
    """人工, then 我妈一个人在家 门反锁了 …: 派单 to the building's grid worker was refused (a hand-off
    could go to staff only). Now it is given, and the card says what the resident wrote, the phone
    masked, beside 居民要求人工服务; the worker takes it, answers and ends it from WeCom."""
    openid = oid()
    await wx.say(openid, "人工")
    said = f"我妈一个人在家 门从里面反锁了 叫不应 3号楼2单元 电话{PHONE}"
    assert "转给工作人员" in await wx.say(openid, said)
    assert "提醒" in await wx.say(openid, "催一下")  # a chase is no news for the owner's card
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff" and ticket.grid == "G1"
    await _assign(services, ticket.number, "wangwei")
    [card] = [o.payload for o in await outbox_rows(services, "wecom", "wangwei") if o.payload.get("msgtype") == "textcard"]
    assert "转人工" in card["title"] and "居民说：我妈一个人在家 门从里面反锁了 叫不应" in card["description"]
    assert "催一下" not in card["description"]
    assert PHONE not in str(card) and MASKED in card["description"] and "服务中心交代：请尽快上门看看" in card["description"]
    wc = WeCom(client, services)
    assert "已接单" in await wc.say("wangwei", "接单 1")
    assert "已回复" in await wc.say("wangwei", "回复 1 我五分钟到，别着急")
    assert "已办结" in await wc.say("wangwei", "办结 1 已找开锁师傅开门，老人没事")
    [ticket] = await tickets_of(services, openid)
    assert ticket.status == "resolved" and ticket.assignee == "wangwei"


async def test_a_handoff_may_go_to_other_grid_workers_mediators_and_care_providers_not_coordinators(
    wx: WeChat, services: Services, client: TestClient[Any, Any]
) -> None:
    """The 派单 list of a hand-off at 3号楼: its grid's worker first (本工单网格), then the other grid
    workers, the mediator, the care providers and staff; a volunteer coordinator is none of them."""
    openid = oid()
    await wx.say(openid, "人工")
    await wx.say(openid, "3号楼 家里老人和邻居吵起来了")
    [ticket] = await tickets_of(services, openid)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{ticket.number}")).text()
    for who in ("wangwei", "sunli", "chenmediator", "homecare", "liustaff"):
        assert f'value="{who}"' in page, who
    assert 'value="zhouvol"' not in page
    assert page.index('value="wangwei"') < page.index('value="sunli"') and "本工单网格" in page
    with pytest.raises(ActionRefused):
        await _assign(services, ticket.number, "zhouvol")
    await _assign(services, ticket.number, "chenmediator")
    [ticket] = await tickets_of(services, openid)
    assert ticket.assignee == "chenmediator" and ticket.status == "dispatched"


async def test_what_the_resident_writes_after_the_handoff_is_given_reaches_its_owner(
    wx: WeChat, services: Services, client: TestClient[Any, Any]
) -> None:
    """Once a hand-off was given to a grid worker, 我在楼下等着呢 got 抱歉，我没太明白 and the menu, and
    the worker never heard it: the hand-off was no longer awaited (only a hand-off in the staff
    queue was). Now it goes on the ticket and to its owner in WeCom (【居民回复】 with the 回复 N
    to go on), not to the staff group; a chase pushes the owner as a report's does."""
    openid = oid()
    await wx.say(openid, "人工")
    await wx.say(openid, "3号楼2单元 我妈一个人在家 门反锁了 敲门不应")
    [ticket] = await tickets_of(services, openid)
    await _assign(services, ticket.number, "wangwei")
    wc = WeCom(client, services)
    assert "已接单" in await wc.say("wangwei", "接单 1")
    group_before = len(await outbox_rows(services, "group"))
    assert "转给工作人员" in await wx.say(openid, f"我在楼下等着呢 电话{PHONE}")
    pushed = [str(o.payload) for o in await outbox_rows(services, "wecom", "wangwei")]
    assert "【居民回复】" in pushed[-1] and f"我在楼下等着呢 电话{MASKED}" in pushed[-1] and PHONE not in pushed[-1]
    assert len(await outbox_rows(services, "group")) == group_before
    assert "催促" in await wx.say(openid, "催一下")
    assert "居民催办" in str((await outbox_rows(services, "wecom", "wangwei"))[-1].payload)
    [ticket] = await tickets_of(services, openid)
    assert ticket.status == "accepted"


async def test_after_the_owner_hands_a_handoff_back_the_resident_still_writes_to_a_person(
    wx: WeChat, services: Services, client: TestClient[Any, Any], clock: FakeClock
) -> None:
    """A grid worker's 退回 of a hand-off (暖气归物业管) puts it back in the staff queue; the resident's
    我家暖气还是不热 then started a report (问题在哪里？) as if no person were awaited. Now it goes on the
    hand-off, the staff group told."""
    openid = oid()
    await wx.say(openid, "人工")
    await wx.say(openid, "5号楼 我家暖气不热 老人冻得受不了")
    [ticket] = await tickets_of(services, openid)
    await _assign(services, ticket.number, "lina")
    assert "已退回" in await WeCom(client, services).say("lina", f"退回 {ticket.number[-4:]} 暖气归物业管")
    clock.advance(minutes=11)  # after ack_every_min of quiet: the staff group told of it
    told = await wx.say(openid, "我家暖气还是不热 老人冻坏了")
    assert "转给工作人员" in told and "问题在哪里" not in told, told
    assert "老人冻坏了" in str((await outbox_rows(services, "group"))[-1].payload)
    assert [t.kind for t in await tickets_of(services, openid)] == ["handoff"]
