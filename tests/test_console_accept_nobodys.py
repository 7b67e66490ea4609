"""接单 on a ticket nobody holds: a clerk pressing it on a hand-off in the queue (我的燃气费交了怎么还
显示欠费) left it 已接单 with 负责人 无人负责 and took it out of the queue — a resident's 转人工 that
nobody then answered or held. The console offers 接单 only on a ticket someone holds (an owner's:
staff may take it on their behalf), and refuses it otherwise, nothing changed, the refusal audited
with why; the hand-off stays in the queue. Both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.console import auth
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.staff_support import audit_rows, logged_in
from tests.wecom_driver import new_ticket, ticket

Client = TestClient[Any, Any]


async def test_a_ticket_nobody_holds_is_not_taken_by_a_click(client: Client, services: Services) -> None:
    wx = WeChat(client, services.settings)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    assert "转接人工服务" in await wx.say("o_gas", "人工客服")
    [handoff] = [t.number for t in await tickets_of(services, "o_gas")]
    job = (await new_ticket(services, resident="oA", building="3")).ticket
    csrf = await logged_in(client, "liu", "staffpass1")

    page = await (await client.get(f"/console/tickets/{handoff}")).text()
    assert 'value="accept"' not in page and 'value="resolve"' in page
    assert 'value="accept"' in await (await client.get(f"/console/tickets/{job.number}")).text()  # 王伟's
    body = await (await client.post(f"/console/tickets/{handoff}/transition",
                                    data={"action": "accept", "csrf_token": csrf})).text()
    assert "这张工单还没有负责人" in body and "请先派单给负责人" in body
    assert (await ticket(services, handoff)).status == "escalated"
    assert f'data-number="{handoff}"' in await (await client.get("/console")).text()  # still waiting in the queue
    [refused] = await audit_rows(services, "ticket.accept.refused")
    assert (refused.actor, refused.target, refused.detail["reason"]) == ("liu", handoff, "nobody_holds")
