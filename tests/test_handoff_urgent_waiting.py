"""An emergency told while a hand-off waits, through /wechat on both backends: 人工, then
我家老人摔倒了起不来 got the 120 advice and the urgent report, but the waiting hand-off stayed 一般 ·
我要转人工 in the console queue, the fall only in its conversation. Now the hand-off carries it:
the words as the resident's addition, urgent with the emergency in its 原因, the staff group told
once — the resident's reply and the urgent report unchanged."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp.test_utils import TestClient
from bot.services import Services
from storage.models import Ticket
from tests.conftest import WeChat
from tests.flow_helpers import group_posts, tickets_of
from tests.test_handoff_privacy_place import handoff_of, notes_of
from tests.staff_support import logged_in

FALL = "我家老人摔倒了起不来"


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def posts_on(services: Services, ticket: Ticket) -> list[str]:
    return [str(p.payload["content"]) for p in await group_posts(services) if p.ticket_id == ticket.id]


async def test_a_fall_told_while_a_handoff_waits_makes_that_handoff_urgent(
    wx: WeChat, services: Services, client: TestClient[Any, Any]
) -> None:
    alone = await wx.say(oid(), FALL)  # what a resident with no hand-off waiting is told
    assert "120" in alone, alone
    openid = oid()
    assert "人工服务" in await wx.say(openid, "我要转人工")
    handoff = await handoff_of(services, openid)
    assert handoff.urgency == "normal"
    before = await posts_on(services, handoff)
    told = await wx.say(openid, FALL)
    assert told == alone  # the resident's reply is the urgent report's, unchanged
    handoff = await handoff_of(services, openid)
    assert handoff.urgency == "urgent" and handoff.status == "escalated"
    assert "紧急" in handoff.fields["reason"] and FALL in handoff.summary  # 事项 names it, 原因 says 紧急
    assert handoff.fields["emergency"]["said"] == FALL
    [wrote] = await notes_of(services, handoff, "resident_wrote")
    assert wrote.note == FALL
    [post] = (await posts_on(services, handoff))[len(before):]
    assert post.startswith("【紧急】") or "紧急" in post.split("\n")[0], post
    assert FALL in post
    # the console queue: the hand-off's card says urgent and shows the fall
    await logged_in(client, "admin", "community123")
    page = await (await client.get("/console")).text()
    card = page[page.index(f'data-number="{handoff.number}"'):]
    card = card[:card.index("</li>")]
    assert "紧急" in card and FALL in card, card


async def test_the_report_goes_on_and_the_same_emergency_again_is_not_posted_again(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    await wx.say(openid, "人工")
    await wx.say(openid, FALL)
    # the urgent report's own path: place and phone, then it is submitted urgent
    await wx.say(openid, "3号楼2单元502")
    await wx.say(openid, "13344445555")
    [report] = [t for t in await tickets_of(services, openid) if t.kind == "complaint"]
    assert report.urgency == "urgent"
    handoff = await handoff_of(services, openid)
    posts = await posts_on(services, handoff)
    assert len(posts) == 2  # the hand-off's own, then the emergency's
    again = await wx.say(openid, "老人摔倒了 起不来了 快点")
    assert report.number in again, again  # the report chased, as before
    assert await posts_on(services, handoff) == posts  # one staff-group post for one emergency
    wrote = await notes_of(services, handoff, "resident_wrote")
    assert [w.note for w in wrote][-1] == "老人摔倒了 起不来了 快点"
    assert [t.number for t in await tickets_of(services, openid) if t.kind == "complaint"] == [report.number]
