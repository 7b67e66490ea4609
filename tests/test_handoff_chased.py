"""A resident chasing a hand-off answered from the console, through /wechat on both backends: the
second 催 within ack_every_min was recorded on the ticket and nobody heard it. Now a chase reaches
the staff group whenever no chase of that hand-off did within [handoff] chase_every_min (2 minutes),
whatever else the group was told meanwhile; 催 催 in a row is one post."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from bot.clock import FakeClock
from bot.services import Services
from bot.staff_actions import staff_reply
from storage.models import TicketEvent
from tests.conftest import WeChat
from tests.flow_helpers import group_posts, tickets_of


async def _posts(svc: Services, ticket_id: int) -> list[str]:
    return [str(p.payload["content"]) for p in await group_posts(svc) if p.ticket_id == ticket_id]


async def test_chasing_again_after_a_console_answer_reaches_the_staff_group_without_flooding(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    openid = "o" + uuid.uuid4().hex[:20]
    await wx.say(openid, "人工")
    [ticket] = await tickets_of(services, openid)
    clock.advance(minutes=5)
    await staff_reply(services, ticket.number, "您好，已经安排网格员过去", actor="staff:admin")
    clock.advance(minutes=30)
    assert "转给工作人员" in await wx.say(openid, "我在家等着呢 老人腿脚不方便")  # an addition: the group told
    assert len(await _posts(services, ticket.id)) == 2
    clock.advance(minutes=3)
    told = await wx.say(openid, "催一下")  # within ack_every_min of the addition: still heard
    assert told.startswith("收到，已转给工作人员并提醒他们尽快处理") and ticket.number in told, told
    posts = await _posts(services, ticket.id)
    assert len(posts) == 3 and "居民在等待人工时催促（第 1 次）" in posts[2] and "催一下" in posts[2]
    clock.advance(minutes=1)
    assert (await wx.say(openid, "催催")).startswith("刚刚已经提醒过工作人员")  # a burst: one post
    assert len(await _posts(services, ticket.id)) == 3
    clock.advance(minutes=3)
    told = await wx.say(openid, "怎么还没人来 13812345678")
    assert told.startswith("收到，已转给工作人员并提醒他们尽快处理"), told
    posts = await _posts(services, ticket.id)
    assert len(posts) == 4 and "（第 3 次）" in posts[3] and "居民催促：怎么还没人来 138＊＊＊＊5678" in posts[3]
    assert "13812345678" not in posts[3]
    async with services.sessions() as session:
        urged = list((await session.execute(select(TicketEvent.data).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "urged").order_by(TicketEvent.id))).scalars())
    assert [d["pushed"] for d in urged] == [True, False, True]
    [ticket] = await tickets_of(services, openid)  # still the hand-off, nothing else opened
    assert ticket.status == "escalated"
