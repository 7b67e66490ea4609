"""Service-centre staff closing a ticket from WeCom: `关闭 N 原因`, as the console's 关闭 (closed
unresolved, audited once even when WeCom retries) — on both backends."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import staff_actions
from bot.channels.wecom import dedup_key
from bot.services import Services
from storage.models import AuditLog
from tests.wecom_driver import WeCom, actions, new_ticket, outbox_rows, stopping_after, ticket


async def _audit(svc: Services) -> list[tuple[str, str, str]]:
    async with svc.sessions() as session:
        rows = await session.execute(select(AuditLog.actor, AuditLog.action, AuditLog.target).order_by(AuditLog.id))
        return [tuple(r) for r in rows.all()]


def test_close_is_read_only_with_a_number_right_after_it() -> None:
    assert staff_actions.parse_close("关闭 3 重复反映") == ("3", "重复反映")
    assert staff_actions.parse_close("关闭：0003，居民已自行解决") == ("0003", "居民已自行解决")
    assert staff_actions.parse_close("关闭 20261124-0001") == ("20261124-0001", "")
    assert staff_actions.parse_close("关闭 1124-0002 重复") == ("1124-0002", "重复")
    assert staff_actions.parse_close("關閉 3 重複") == ("3", "重複")  # the reason as typed
    for words in ("关闭阀门", "关闭3楼总闸", "关闭 3楼总闸", "办结 3 关闭阀门", "请关闭 3 号门", "关闭"):
        assert staff_actions.parse_close(words) is None, words


async def test_staff_close_a_ticket_from_wecom_as_the_console_does(
    client: TestClient[Any, Any], services: Services,
) -> None:
    """关闭 N 原因 closes the ticket unresolved (ticket.close audited, the owner's reminders gone);
    a bare 关闭 N asks for the reason; again, the status forbids it (said, audited as refused)."""
    wc = WeCom(client, services)
    report = (await new_ticket(services, resident="oC")).ticket
    assert report.assignee == "wangwei"
    before = len(await outbox_rows(services, "wechat", "oC"))
    assert await wc.say("liustaff", "关闭 0001") == "请写明关闭原因，例如“关闭 0001 …”。"
    assert (await ticket(services, report.number)).status == "dispatched"
    assert await wc.say("liustaff", "关闭 0001 重复反映，已并入其他工单处理") == \
        f"已关闭：工单 {report.number}（未解决关闭，计入未解决）。"
    closed = await ticket(services, report.number)
    assert closed.status == "closed" and closed.closed_at is not None and closed.resolved_at is None
    assert (await actions(services, report.number))[-1] == "close"
    assert ("liustaff", "ticket.close", report.number) in await _audit(services)
    # the console's close pushes nothing to the resident; neither does WeCom's
    assert len(await outbox_rows(services, "wechat", "oC")) == before
    again = await wc.say("liustaff", "关闭 0001 重复反映")
    assert again == f"工单 {report.number} 没有关闭：工单当前状态为“已关闭”，不能关闭。"
    assert ("liustaff", "ticket.close.refused", report.number) in await _audit(services)
    assert [a for _, a, _ in await _audit(services)].count("ticket.close") == 1
    assert await wc.say("liustaff", "关闭 0099 重复") == services.texts.get("wecom.no_ticket", ref="0099")


async def test_two_numbers_in_one_close_close_nothing(client: TestClient[Any, Any], services: Services) -> None:
    """关闭 1 2 重复: the second number is neither dropped nor read as the reason."""
    wc = WeCom(client, services)
    first = (await new_ticket(services, resident="oT1")).ticket
    second = (await new_ticket(services, resident="oT2", building="5")).ticket
    for said in ("关闭 0001 0002 重复反映", "关闭 0001、0002 重复", "关闭 0001和2 重复", "关闭 1 2"):
        reply = await wc.say("liustaff", said)
        assert "一次只能关一张工单" in reply and "没有关闭任何工单" in reply, said
    assert {(await ticket(services, x.number)).status for x in (first, second)} == {"dispatched"}
    assert (await wc.say("liustaff", "关闭 0001 3天前已处理")).startswith("已关闭")  # 3天: the reason


async def test_a_grid_workers_close_is_refused_politely_and_words_are_not_stolen(
    client: TestClient[Any, Any], services: Services,
) -> None:
    wc = WeCom(client, services)
    report = (await new_ticket(services, resident="oG")).ticket
    said = await wc.say("wangwei", "关闭 0001 居民不在家")
    assert said == services.texts.get("wecom.close_staff_only") and "办结 N 说明" in said
    assert (await ticket(services, report.number)).status == "dispatched"
    assert ("wangwei", "wecom.close.refused", "0001") in await _audit(services)
    # 办结 3 关闭阀门: a note, the 办结 goes through with it
    assert (await wc.say("wangwei", "接单 0001")).startswith("已接单")
    assert (await wc.say("wangwei", "办结 0001 关闭阀门")).startswith(f"已办结：工单 {report.number}")
    async with services.sessions() as session:
        notes = list(await session.scalars(select(AuditLog.detail).where(AuditLog.action == "wecom.resolve")))
    assert notes[-1]["note"] == "关闭阀门"
    assert (await ticket(services, report.number)).status == "resolved"
    assert (await wc.say("wangwei", "关闭阀门")).startswith(services.texts.get("wecom.not_understood"))
    # 帮助 lists it for staff only
    assert "关闭 N 原因" in await wc.say("liustaff", "帮助")
    assert "关闭 N 原因" not in await wc.say("wangwei", "帮助")


async def test_a_close_retried_by_wecom_is_carried_out_and_audited_once(
    client: TestClient[Any, Any], services: Services, monkeypatch: Any,
) -> None:
    """The process stops right after the 关闭's transaction, and Redis forgot the delivery: WeCom's
    retry of the same MsgId is answered from the delivery's record, not refused nor audited again."""
    from bot import worker_commands

    wc = WeCom(client, services)
    report = (await new_ticket(services, resident="oK")).ticket
    run = worker_commands.run
    monkeypatch.setattr(worker_commands, "run", stopping_after(run))
    msg_id = secrets.randbits(62)
    assert await wc.say("liustaff", "关闭 0001 居民撤诉", msg_id=msg_id) == services.texts.get("errors.resend")
    monkeypatch.setattr(worker_commands, "run", run)
    await services.store.for_retries().delete(dedup_key(services, {"FromUserName": "liustaff", "MsgId": str(msg_id)}))
    assert await wc.say("liustaff", "关闭 0001 居民撤诉", msg_id=msg_id) == services.texts.get("wecom.already_handled")
    assert (await ticket(services, report.number)).status == "closed"
    actions_seen = [a for _, a, _ in await _audit(services)]
    assert actions_seen.count("ticket.close") == 1 and "ticket.close.refused" not in actions_seen
