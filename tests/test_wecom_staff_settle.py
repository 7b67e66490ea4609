"""Service-centre staff settling a hand-off from WeCom: `办结 N 说明` on a ticket in the staff queue
(转人工, nobody's) — on both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.services import Services
from storage.models import AuditLog
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.wecom_driver import WeCom, new_ticket, outbox_rows, ticket


async def _audit(svc: Services) -> list[tuple[str, str, str]]:
    async with svc.sessions() as session:
        rows = await session.execute(select(AuditLog.actor, AuditLog.action, AuditLog.target).order_by(AuditLog.id))
        return [tuple(r) for r in rows.all()]


async def test_staff_settle_a_staff_queue_handoff_from_wecom_and_the_resident_is_told(
    client: TestClient[Any, Any], services: Services,
) -> None:
    """办结 of a 转人工 hand-off by staff said 不是派给您的: staff settle staff-queue tickets from WeCom
    as from the console (the resident told, audited); an owner still only their own."""
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    await wx.say("oH", "转人工")
    await wx.say("oH", "我家暖气不热，找物业没人管")
    [handoff] = await tickets_of(services, "oH")
    assert handoff.assignee is None
    short = handoff.number[-4:]
    # a grid worker may not settle it; nor may staff without saying how it ended
    assert await wc.say("wangwei", f"办结 {short} 已处理") == \
        f"工单 {handoff.number} 不是派给您的，您不能处理。如需协助请联系服务中心。"
    assert await wc.say("liustaff", f"办结 {short}") == f"请写明办理结果，例如“办结 {short} …”。"
    before = len(await outbox_rows(services, "wechat", "oH"))
    assert await wc.say("liustaff", f"办结 {short} 已联系物业，暖气今天下午修好") == \
        f"已办结：工单 {handoff.number}。已通知居民。"
    assert (await ticket(services, handoff.number)).status == "resolved"
    told = [o.payload.get("text", "") for o in await outbox_rows(services, "wechat", "oH")][before:]
    assert any("已联系物业，暖气今天下午修好" in x for x in told)
    assert ("liustaff", "ticket.resolve", handoff.number) in await _audit(services)
    # again: the status no longer allows it, said, nothing pushed
    pushed = len(await outbox_rows(services, "wechat", "oH"))
    again = await wc.say("liustaff", f"办结 {short} 已联系物业")
    assert again == f"工单 {handoff.number} 没有办结：工单当前状态为“已办结”，不能办结。"
    assert len(await outbox_rows(services, "wechat", "oH")) == pushed


async def test_staff_still_may_not_settle_an_owners_ticket_from_wecom(
    client: TestClient[Any, Any], services: Services,
) -> None:
    wc = WeCom(client, services)
    report = (await new_ticket(services, resident="oR")).ticket
    assert report.assignee == "wangwei"
    assert await wc.say("liustaff", "办结 0001 已修好") == \
        f"工单 {report.number} 不是派给您的，您不能处理。如需协助请联系服务中心。"
    assert (await ticket(services, report.number)).status == "dispatched"
    assert ("liustaff", "wecom.resolve.refused", "0001") in await _audit(services)
    assert "办结 N 说明 —— 办结转人工等待服务中心处理的工单" in await wc.say("liustaff", "帮助")
    assert "办结 N 说明 —— 办结转人工" not in await wc.say("wangwei", "帮助")
