"""Staff answers, transitions and notes (bot.staff_actions), on both backends."""

from __future__ import annotations

import logging
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from bot import staff_actions, tickets
from bot.channels import push
from bot.clock import FakeClock
from bot.services import Services
from storage.models import Message, Resident, TicketEvent
from bot.sim.api import SimRecorder
from tests.staff_support import audit_rows, count, load_roster, make_resident, make_ticket, outbox_rows
from tests.test_outbox import api_port, http, settings_overrides, sim  # noqa: F401 (fixtures)


async def _events(svc: Services, number: str) -> list[TicketEvent]:
    async with svc.sessions() as session:
        ticket = await tickets.get_by_number(session, number)
        assert ticket is not None
        return await tickets.events_of(session, ticket)


async def test_reply_inside_window_goes_as_custom_message(services: Services, clock: FakeClock) -> None:
    await make_resident(services, "o_res1", last_inbound_at=clock.now() - timedelta(hours=47))
    number = await make_ticket(services, "o_res1")
    via = await staff_actions.staff_reply(services, number, "  师傅下午两点上门修理。 ", "liustaff")
    assert via == "custom"
    [push] = await outbox_rows(services, "wechat")
    assert push.target == "o_res1"
    assert "师傅下午两点上门修理。" in push.payload["text"] and number in push.payload["text"]
    assert "师傅下午两点上门修理。" in push.payload["template"]["fields"].values()
    async with services.sessions() as session:
        [msg] = (await session.execute(select(Message).where(Message.direction == "out"))).scalars()
    assert (msg.openid, msg.author, msg.content) == ("o_res1", "liustaff", "师傅下午两点上门修理。")
    assert msg.ticket_id == push.ticket_id
    reply = [e for e in await _events(services, number) if e.action == "reply"]
    assert reply and reply[0].actor == "liustaff" and reply[0].data == {"via": "custom", "source": "console"}  # 083a4c0: where staff answered from
    [row] = await audit_rows(services, "ticket.reply")
    assert (row.actor, row.target, row.detail["via"]) == ("liustaff", number, "custom")


async def test_reply_outside_window_goes_as_template(services: Services, clock: FakeClock) -> None:
    await make_resident(services, "o_res2")
    number = await make_ticket(services, "o_res2")
    clock.advance(hours=48, seconds=1)
    assert await staff_actions.staff_reply(services, number, "已联系物业处理。", "liustaff") == "template"
    [push] = await outbox_rows(services, "wechat")
    assert push.payload["template"]["title"]


@pytest.mark.parametrize("text", ["", "   ", "长" * (staff_actions.MAX_REPLY_CHARS + 1)])
async def test_reply_refuses_empty_or_oversized_text(services: Services, text: str) -> None:
    await make_resident(services, "o_res3")
    number = await make_ticket(services, "o_res3")
    with pytest.raises(ValueError, match="答复"):
        await staff_actions.staff_reply(services, number, text, "liustaff")
    assert await outbox_rows(services) == []
    assert await count(services, Message) == 0


async def test_reply_to_unknown_ticket_and_erased_resident(services: Services, clock: FakeClock) -> None:
    with pytest.raises(LookupError):
        await staff_actions.staff_reply(services, "20261123-9999", "你好", "liustaff")
    await make_resident(services, "o_gone")
    number = await make_ticket(services, "o_gone")
    async with services.sessions() as session, session.begin():
        resident = await session.scalar(select(Resident).where(Resident.openid == "o_gone"))
        assert resident is not None
        resident.erased_at = clock.now()
    with pytest.raises(staff_actions.ResidentUnreachable):
        await staff_actions.staff_reply(services, number, "你好", "liustaff")
    no_resident = await make_ticket(services, None)
    with pytest.raises(staff_actions.ResidentUnreachable):
        await staff_actions.staff_reply(services, no_resident, "你好", "liustaff")
    assert await outbox_rows(services) == [] and await audit_rows(services, "ticket.reply") == []
    refused = await audit_rows(services, "ticket.reply.refused")  # each refusal audited, with why
    assert [(r.actor, r.target, r.detail["reason"]) for r in refused] == [
        ("liustaff", "20261123-9999", "unknown_ticket"), ("liustaff", number, "resident_gone"),
        ("liustaff", no_resident, "resident_gone")]


async def test_assign_then_reassign_is_dispatched_and_audited(services: Services) -> None:
    await load_roster(services)
    await make_resident(services, "o_res4")
    number = await make_ticket(services, "o_res4")
    ticket = await staff_actions.staff_transition(services, number, "assign", "liustaff", assignee="wangwei", note="请尽快")
    assert (ticket.status, ticket.assignee) == ("dispatched", "wangwei")
    cards = await outbox_rows(services, "wecom")
    assert [c.target for c in cards] == ["wangwei"]
    ticket = await staff_actions.staff_transition(services, number, "assign", "liustaff", assignee="lina")
    assert ticket.assignee == "lina"
    [first] = await audit_rows(services, "ticket.assign")
    assert first.detail == {"from": "escalated", "to": "dispatched", "note": "请尽快", "assignee": "wangwei", "previous": None}
    [again] = await audit_rows(services, "ticket.reassign")
    assert again.detail["previous"] == "wangwei" and again.detail["assignee"] == "lina"


async def test_assign_refuses_missing_or_wrong_person(services: Services) -> None:
    await load_roster(services)
    number = await make_ticket(services, None)
    with pytest.raises(staff_actions.ActionRefused):
        await staff_actions.staff_transition(services, number, "assign", "liustaff")
    with pytest.raises(staff_actions.ActionRefused, match="canteen"):
        await staff_actions.staff_transition(services, number, "assign", "liustaff", assignee="canteen")
    with pytest.raises(staff_actions.ActionRefused):
        await staff_actions.staff_transition(services, number, "assign", "liustaff", assignee="nobody")
    assert [(r.action, r.detail and r.detail.get("reason")) for r in await audit_rows(services)] == [
        ("roster.import", None), ("ticket.assign.refused", "assignee_missing"),
        ("ticket.assign.refused", "assignee_not_allowed"), ("ticket.assign.refused", "assignee_not_allowed")]


async def test_transition_rules(services: Services) -> None:
    await load_roster(services)
    await make_resident(services, "o_res5")
    number = await make_ticket(services, "o_res5", status="open")
    with pytest.raises(staff_actions.ActionRefused):
        await staff_actions.staff_transition(services, number, "explode", "liustaff")
    with pytest.raises(staff_actions.ActionRefused):
        await staff_actions.staff_transition(services, number, "return", "liustaff")  # workers' 退回 only
    with pytest.raises(tickets.TransitionError, match="待派单"):
        await staff_actions.staff_transition(services, number, "accept", "liustaff")
    with pytest.raises(LookupError):
        await staff_actions.staff_transition(services, "20990101-0001", "close", "liustaff")
    ticket = await staff_actions.staff_transition(services, number, "resolve", "liustaff", note="已修好")
    assert ticket.status == "resolved"
    told = [p for p in await outbox_rows(services, "wechat") if p.target == "o_res5"]
    assert told and "已修好" in told[0].payload["text"]
    for blank in ("", "  \n"):  # 关闭 ends it unresolved: where a reason is required (the console's
        # form; WeCom's 关闭 N asks for it itself), none refuses it
        with pytest.raises(staff_actions.ActionRefused, match="关闭工单请写明原因"):
            await staff_actions.staff_transition_told(services, number, "close", "liustaff", note=blank,
                                                      reason_required=True)
    assert not [e for e in await _events(services, number) if e.action == "close"]  # nothing changed
    ticket = await staff_actions.staff_transition(services, number, "close", "liustaff", note="居民说不用修了")
    assert ticket.status == "closed"
    actions = [(r.action, r.target, r.detail and r.detail.get("reason")) for r in await audit_rows(services)]
    assert actions == [
        ("roster.import", actions[0][1], None), ("ticket.transition.refused", number, "unknown_action"),
        ("ticket.transition.refused", number, "unknown_action"), ("ticket.accept.refused", number, "status_forbids"),
        ("ticket.close.refused", "20990101-0001", "unknown_ticket"), ("ticket.resolve", number, None),
        ("ticket.close.refused", number, "reason_missing"), ("ticket.close.refused", number, "reason_missing"),
        ("ticket.close", number, None)]
    [explode] = [r for r in await audit_rows(services, "ticket.transition.refused") if r.detail["asked"] == "explode"]
    assert "explode" in explode.detail["message"]


async def test_note_is_internal_and_audited(services: Services) -> None:
    await make_resident(services, "o_res6")
    number = await make_ticket(services, "o_res6")
    await staff_actions.add_note(services, number, "居民情绪激动，先电话安抚", "liustaff")
    notes = [e for e in await _events(services, number) if e.action == "note"]
    assert [(e.actor, e.note) for e in notes] == [("liustaff", "居民情绪激动，先电话安抚")]
    assert await outbox_rows(services) == []
    [row] = await audit_rows(services, "ticket.note")
    assert row.target == number
    with pytest.raises(ValueError):
        await staff_actions.add_note(services, number, " ", "liustaff")
    with pytest.raises(LookupError):
        await staff_actions.add_note(services, "20990101-0001", "x", "liustaff")


async def test_numbers_staff_write_reach_the_resident_as_written_but_logs_mask_them(
    services: Services, clock: FakeClock, sim: SimRecorder, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await load_roster(services)
    await make_resident(services, "o_call")
    number = await make_ticket(services, "o_call")
    await staff_actions.staff_reply(services, number, "服务中心电话 0571-88881234", "liu")
    await staff_actions.staff_transition(services, number, "resolve", "liu", note="如有问题请拨打 0571-88881234")
    with caplog.at_level(logging.INFO):
        await push.drain(services, http)
    sent = " ".join(r["payload"]["text"]["content"] for r in sim.of("custom_send", "o_call"))
    assert "服务中心电话 0571-88881234" in sent and "如有问题请拨打 0571-88881234" in sent and "****" not in sent
    clock.advance(hours=49)  # the window closed: a template message, still as written
    await staff_actions.staff_reply(services, number, "请拨打13900001111", "liu")
    with caplog.at_level(logging.INFO):
        await push.drain(services, http)
    [template] = sim.of("template_send", "o_call")
    assert "请拨打13900001111" in str(template["payload"]["data"])
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', {})}" for r in caplog.records)
    assert "88881234" not in logged and "13900001111" not in logged


async def test_the_predicted_channel_is_the_one_the_sender_uses_quota_included(
    services: Services, clock: FakeClock, sim: SimRecorder, http: aiohttp.ClientSession,
) -> None:
    await make_resident(services, "o_quota")
    number = await make_ticket(services, "o_quota")
    said = []
    for n in range(7):
        clock.advance(minutes=5)
        said.append(await staff_actions.staff_reply(services, number, f"第{n + 1}次答复", "liu"))
        if n != 3:  # the 5th answer is queued while the 4th still waits: counted all the same
            await push.drain(services, http)
    assert said == ["custom"] * 5 + ["template"] * 2
    sent = [r.sent_via for r in await outbox_rows(services, "wechat")]
    assert sent == said
    assert [r.detail["via"] for r in await audit_rows(services, "ticket.reply")] == said
