"""Answers to residents from WeCom (`回复 N 内容`): who the resident hears them from, the same answer
sent twice, and WeCom's retries of a refused one — on both backends."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.channels.wecom import dedup_key
from bot.clock import FakeClock
from bot.services import Services
from storage.models import AuditLog
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.wecom_driver import WeCom, actions, new_ticket, outbox_rows, stopping_after


async def _texts(svc: Services, openid: str) -> list[str]:
    """What was queued for the resident through /wechat's outbox, oldest first."""
    return [o.payload.get("text", "") for o in await outbox_rows(svc, "wechat", openid)]


async def _audited(svc: Services, action: str) -> list[tuple[str, str]]:
    async with svc.sessions() as session:
        return [(a, t) for a, t in (await session.execute(
            select(AuditLog.actor, AuditLog.target).where(AuditLog.action == action).order_by(AuditLog.id))).all()]


async def test_an_owners_answer_says_who_answers_and_staffs_says_the_service_centre(
    client: TestClient[Any, Any], services: Services,
) -> None:
    """A grid worker's 回复 reached the resident headed 【社区服务中心】, as if the centre had written:
    it is headed with their role and name, in the text and the template's title; staff's stays."""
    wc = WeCom(client, services)
    report = (await new_ticket(services, resident="oW", summary="3号楼楼道灯坏了")).ticket
    assert await wc.say("wangwei", "回复 0001 您好，我下午三点过来看") == f"已回复工单 {report.number} 的居民，居民会收到一条微信服务通知。"
    assert (await wc.say("liustaff", "回复 0001 物业已安排电工")).startswith("王伟 在 10:00 已回复了这位居民")
    assert await wc.say("liustaff", "回复 0001 物业已安排电工") == f"已回复工单 {report.number} 的居民，居民会收到一条微信服务通知。"
    pushed = [o.payload for o in await outbox_rows(services, "wechat", "oW")
              if "关于您的工单" in o.payload.get("text", "")]
    assert [p["text"] for p in pushed] == [
        f"【网格员 王伟】关于您的工单 {report.number}：\n您好，我下午三点过来看",
        f"【社区服务中心】关于您的工单 {report.number}：\n物业已安排电工",
    ]
    assert [p["template"]["title"] for p in pushed] == ["网格员王伟回复了您的工单", "社区服务中心回复了您的工单"]


async def test_a_mediators_answer_reaches_the_resident_from_the_mediator(
    client: TestClient[Any, Any], services: Services,
) -> None:
    wx, wc = WeChat(client, services.settings), WeCom(client, services)
    await wx.say("oM", "楼上天天半夜吵，说过了不听，想请人调解")
    for said in ("周六上午", "13812345678", "确认"):
        await wx.say("oM", said)
    [filed] = await tickets_of(services, "oM")
    assert await wc.say("chenmediator", "回复 1 周六上午十点在调解室") == f"已回复工单 {filed.number} 的居民，居民在微信对话里就能看到。"
    assert (await _texts(services, "oM"))[-1] == f"【调解员 陈调解】关于您的工单 {filed.number}：\n周六上午十点在调解室"


async def test_the_same_answer_typed_twice_reaches_the_resident_once(
    client: TestClient[Any, Any], services: Services, clock: FakeClock,
) -> None:
    """回复 N 文字 sent twice (two deliveries with their own MsgIds: a send tapped twice) pushed the
    resident the same words twice: within two minutes the second is told it went already."""
    wc = WeCom(client, services)
    report = (await new_ticket(services, resident="oT")).ticket
    said = "回复 0001 明天上午来修"
    assert (await wc.say("liustaff", said)).startswith("已回复")
    clock.advance(seconds=50)
    assert await wc.say("liustaff", said) == \
        f"回复没有发出：同样的回复已在 10:00 发给工单 {report.number} 的居民，没有重复发送。"
    assert (await actions(services, report.number)).count("reply") == 1
    assert len([x for x in await _texts(services, "oT") if "明天上午来修" in x]) == 1
    assert await _audited(services, "ticket.reply.refused") == [("liustaff", report.number)]
    # other words, or the same words from a colleague, go; so do the same words later
    assert (await wc.say("liustaff", "回复 0001 明天上午十点来修")).startswith("已回复")
    assert (await wc.say("admin", said)).startswith(("已回复", "刘敏 在"))
    clock.advance(minutes=2, seconds=1)
    assert (await wc.say("liustaff", said)).startswith("已回复")
    assert len([x for x in await _texts(services, "oT") if x.endswith("\n明天上午来修")]) >= 2


async def test_a_refused_answer_retried_by_wecom_is_audited_once(
    client: TestClient[Any, Any], services: Services, monkeypatch: Any,
) -> None:
    """The process stops right after a refused 回复 was audited, and Redis forgot the delivery:
    WeCom's retry of the same MsgId is answered from the delivery's record, not refused (and
    audited) a second time."""
    from bot import worker_commands

    wc = WeCom(client, services)
    await new_ticket(services, resident="oL")
    run = worker_commands.run
    stops_after_the_command = stopping_after(run)
    monkeypatch.setattr(worker_commands, "run", stops_after_the_command)
    msg_id = secrets.randbits(62)
    said = "回复 0001 " + "很长" * 350
    assert await wc.say("liustaff", said, msg_id=msg_id) == services.texts.get("errors.resend")
    monkeypatch.setattr(worker_commands, "run", run)
    await services.store.for_retries().delete(dedup_key(services, {"FromUserName": "liustaff", "MsgId": str(msg_id)}))
    assert await wc.say("liustaff", said, msg_id=msg_id) == services.texts.get("wecom.already_handled")
    assert len(await _audited(services, "ticket.reply.refused")) == 1
    # a delivery that completes is answered, on WeCom's retry, with its own words, audited once
    other = secrets.randbits(62)
    first = await wc.say("liustaff", said, msg_id=other)
    assert first.startswith("回复没有发出：答复太长了（700 字）")
    await services.store.for_retries().delete(dedup_key(services, {"FromUserName": "liustaff", "MsgId": str(other)}))
    assert await wc.say("liustaff", said, msg_id=other) == first
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditLog)
                                    .where(AuditLog.action == "ticket.reply.refused")) == 2
    assert await outbox_rows(services, "wechat", "oL") == [] or all(
        "很长" not in x for x in await _texts(services, "oL"))
