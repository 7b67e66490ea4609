"""A resident withdraws their own report (撤销工单, 不用修了), through /wechat on both backends."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import select

from bot.clock import FakeClock
from bot.services import Services
from storage.models import OutboxItem, Reminder, Ticket, TicketEvent
from tests.conftest import WeChat
from tests.flow_helpers import dialog_of, tickets_of
from tests.wecom_driver import outbox_rows

NIGHT = datetime(2026, 11, 23, 13, 30, tzinfo=timezone.utc)  # 21:30 in Shanghai: quiet hours 21:00-08:00
MORNING = datetime(2026, 11, 24, 0, 0, tzinfo=timezone.utc)  # 08:00, when they end


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def report(wx: WeChat, services: Services, openid: str, text: str = "3号楼2单元楼道灯坏了") -> Ticket:
    """A complaint through to its ticket."""
    for answer in (text, "没有", "13800138000", "否"):
        await wx.say(openid, answer)
    assert "工单号" in await wx.say(openid, "确认")
    return (await tickets_of(services, openid))[-1]


async def worker_texts(services: Services, userid: str) -> list[str]:
    """The WeCom pushes queued for a worker, as text."""
    async with services.sessions() as session:
        rows = await session.execute(
            select(OutboxItem).where(OutboxItem.channel == "wecom", OutboxItem.target == userid).order_by(OutboxItem.id)
        )
        return [str(row.payload) for row in rows.scalars()]


async def test_no_longer_needed_asks_and_withdraws_the_report(wx: WeChat, services: Services) -> None:
    openid = oid()
    ticket = await report(wx, services, openid)
    asked = await wx.say(openid, "不用修了 灯已经好了")
    assert "要撤销这个工单吗" in asked and ticket.number in asked and "楼道灯坏了" in asked
    assert "工单继续办理" in await wx.say(openid, "否")  # kept: no edit menu, nothing changed
    assert (await tickets_of(services, openid))[-1].status == "dispatched"
    assert await dialog_of(services, openid) is None

    assert "要撤销这个工单吗" in await wx.say(openid, f"撤销工单{ticket.number[-4:]}")
    done = await wx.say(openid, "确认撤销")
    assert f"已撤销工单 {ticket.number}" in done
    [after] = await tickets_of(services, openid)
    assert after.status == "cancelled"
    async with services.sessions() as session:
        events = list((await session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == after.id, TicketEvent.action == "cancel")
        )).scalars())
        pending = list((await session.execute(
            select(Reminder).where(Reminder.cause_type == "ticket", Reminder.cause_id == after.id,
                                   Reminder.state == "pending")
        )).scalars())
        to_resident = list((await session.execute(
            select(OutboxItem).where(OutboxItem.channel == "wechat", OutboxItem.target == openid)
        )).scalars())
    [event] = events
    assert event.actor.startswith("resident:") and openid not in event.actor  # hashed
    assert event.note == f"居民撤销：撤销工单{ticket.number[-4:]}"  # the resident's words, for the worker
    assert pending == []  # the time limits are dropped
    assert not any("已撤销" in str(p.payload) for p in to_resident)  # answered in the chat, no push
    assert any("已撤销" in text for text in await worker_texts(services, after.assignee or ""))
    # Nothing left to withdraw: said so (and where bookings and signups are withdrawn).
    assert "没有可以撤销" in await wx.say(openid, "撤销")


async def test_several_open_reports_are_listed_and_one_picked_by_number(wx: WeChat, services: Services) -> None:
    openid = oid()
    first = await report(wx, services, openid, "3号楼2单元楼道灯坏了")
    second = await report(wx, services, openid, "9栋1单元电梯按钮坏了")
    listed = await wx.say(openid, "撤销工单")
    assert "2个可以撤销" in listed and first.number in listed and second.number in listed
    assert await dialog_of(services, openid) is None  # nothing kept: 撤销 + number starts again
    assert "没有找到" in await wx.say(openid, "撤销9999")
    asked = await wx.say(openid, f"撤销 {first.number}")
    assert first.number in asked and second.number not in asked
    assert "已撤销" in await wx.say(openid, "1")
    statuses = {t.number: t.status for t in await tickets_of(services, openid)}
    assert statuses == {first.number: "cancelled", second.number: "dispatched"}


async def test_only_ones_own_report_and_not_one_others_joined(wx: WeChat, services: Services) -> None:
    first, second = oid(), oid()
    parent = await report(wx, services, first)
    child = await report(wx, services, second)  # the same problem: linked to the first report
    assert child.parent_id == parent.id
    # The second resident withdraws their own (linked) report: only theirs.
    assert "要撤销这个工单吗" in await wx.say(second, "不用来了")
    assert "已撤销" in await wx.say(second, "确认")
    # The first cannot drop the report a neighbour still waits for: the wish is passed on.
    third = oid()
    await report(wx, services, third)
    assert "要撤销这个工单吗" in await wx.say(first, "撤销")
    kept = await wx.say(first, "确认")
    assert "还有1位邻居反映了同一个问题" in kept
    statuses = {t.resident: t.status for t in await tickets_of(services)}
    assert statuses == {first: "dispatched", second: "cancelled", third: "dispatched"}
    assert any("表示不用处理了" in text for text in await worker_texts(services, parent.assignee or ""))
    # A stranger's number is not theirs to withdraw.
    assert "没有可以撤销" in await wx.say(oid(), f"撤销工单{parent.number}")


async def test_not_a_withdrawal(wx: WeChat, services: Services) -> None:
    openid = oid()
    await report(wx, services, openid)
    # a question about it is a status query, not a withdrawal
    assert "撤销" not in await wx.say(openid, "不用修了吗？")
    # 不用修了 with nothing open is read as anything else
    assert "撤销" not in await wx.say(oid(), "不用修了")


async def test_no_at_the_erase_confirmation_keeps_the_data(wx: WeChat, services: Services) -> None:
    """否 at 删除我的信息's confirmation showed an empty 'which field to change' menu."""
    openid = oid()
    assert "确定要删除" in await wx.say(openid, "删除我的信息")
    assert "没有删除" in await wx.say(openid, "否")
    assert await dialog_of(services, openid) is None


async def test_at_night_the_wish_passed_on_to_the_worker_waits_for_the_morning(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """撤销 at 21:30 of a report a neighbour's is linked to: the worker hears of it at 08:00, as of
    the bot's other pushes in quiet hours."""
    first, second = oid(), oid()
    parent = await report(wx, services, first)
    await report(wx, services, second)
    clock.set(NIGHT)
    assert "要撤销这个工单吗" in await wx.say(first, "撤销")
    assert "还有1位邻居反映了同一个问题" in await wx.say(first, "确认")
    [told] = [o for o in await outbox_rows(services, "wecom", parent.assignee) if "表示不用处理了" in str(o.payload)]
    assert told.next_attempt_at == MORNING and not told.urgent
