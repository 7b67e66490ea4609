"""我的信息 and 删除我的信息: what is kept is shown masked; erasure removes personal data, keeps the
tickets anonymised, drops pending reminders and is audited (both backends, through /wechat)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import select

from bot.clock import FakeClock
from bot.outbox import push_resident
from bot.privacy import hash_openid
from bot.services import Services
from bot.tickets import events_of
from storage.models import AuditLog, Booking, Message, OutboxItem, Reminder, Resident, Ticket, Volunteer
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.wecom_driver import outbox_rows


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def book_meal(wx: WeChat, openid: str, *, bound: bool = False) -> None:
    await wx.say(openid, "明天中午给我妈订个助餐")
    for answer in ("王秀英", "82", "3栋2单元301", "少盐"):
        await wx.say(openid, answer)
    if not bound:  # a bound phone is neither asked nor offered for binding
        await wx.say(openid, "13812345678")
        await wx.say(openid, "否")
    assert "预约好" in await wx.say(openid, "1")


async def test_my_info_shows_what_is_kept_with_the_phone_masked(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "未绑定" in await wx.say(openid, "我的信息")
    async with services.sessions() as session, session.begin():
        resident = await session.scalar(select(Resident).where(Resident.openid == openid))
        assert resident is not None
        resident.phone, resident.building, resident.unit, resident.room = "13812345678", "3", "2", "301"
    await book_meal(wx, openid, bound=True)
    info = await wx.say(openid, "我的信息")
    assert "138****5678" in info and "13812345678" not in info
    assert "3栋2单元301" in info and "20261123-0001" in info and "助餐" in info and "删除我的信息" in info


async def test_erase_removes_personal_data_and_keeps_anonymised_tickets(wx: WeChat, services: Services) -> None:
    openid = oid()
    await book_meal(wx, openid)
    await wx.say(openid, "4")  # and a volunteer signup
    for answer in ("王芳", "13912345678", "会理发", "周末", "1", "否", "同意", "1"):
        last = await wx.say(openid, answer)
    assert "感谢您报名" in last

    ask = await wx.say(openid, "删除我的信息")
    assert "确定要删除" in ask
    assert "没有删除" in await wx.say(openid, "取消")  # 取消 at the confirmation erases nothing, and says so
    async with services.sessions() as session:
        assert await session.scalar(select(Volunteer).where(Volunteer.openid == openid)) is not None
    assert "确定要删除" in await wx.say(openid, "删除我的信息")
    assert "已删除" in await wx.say(openid, "1")

    assert await tickets_of(services, openid) == []
    async with services.sessions() as session:
        tickets = list((await session.execute(select(Ticket).order_by(Ticket.id))).scalars())
        assert [t.kind for t in tickets] == ["elderly_service", "volunteer_signup"]
        for ticket in tickets:
            assert ticket.resident is None
            assert not {"phone", "for_name", "name", "address", "room"} & set(ticket.fields)
            assert "王秀英" not in ticket.summary and "王芳" not in ticket.summary
            for event in await events_of(session, ticket):
                assert "13812345678" not in str(event.data) and "王秀英" not in str(event.data)
        assert tickets[0].fields["service"] == "助餐"  # what statistics need stays
        booking = await session.scalar(select(Booking))
        assert booking is not None and booking.for_name is None and booking.address is None and booking.resident is None
        assert await session.scalar(select(Volunteer).where(Volunteer.openid == openid)) is None
        resident = await session.scalar(select(Resident).where(Resident.openid == openid))
        assert resident is not None and resident.phone is None and resident.erased_at is not None
        pending = (await session.execute(
            select(Reminder).where(Reminder.target == openid, Reminder.state == "pending")
        )).scalars().all()
        assert pending == []
        old = (await session.execute(select(Message.content).where(Message.content.like("%王秀英%")))).all()
        assert old == []
        [audit] = (await session.execute(select(AuditLog).where(AuditLog.action == "resident_erased"))).scalars().all()
        assert audit.detail is not None and audit.detail["tickets_anonymised"] == 2 and openid not in audit.target


async def test_erase_drops_queued_pushes_and_keeps_no_raw_openid(wx: WeChat, services: Services) -> None:
    openid = "oEraseQueued"
    await wx.say(openid, "你好")
    async with services.sessions() as session, session.begin():
        await push_resident(session, openid, "您的工单已办结", now=services.clock.now())
    await wx.say(openid, "删除我的信息")
    await wx.say(openid, "确认删除")
    async with services.sessions() as session:
        pushes = list(await session.scalars(select(OutboxItem).where(OutboxItem.target == openid)))
        assert pushes and all(p.state == "dead" and p.payload == {} for p in pushes)
        raw = list(await session.scalars(select(Message).where(Message.openid == openid)))
        assert raw == []
        hashed = list(await session.scalars(select(Message).where(Message.openid == hash_openid(openid))))
        assert hashed


async def report_light(wx: WeChat, openid: str, where: str = "3号楼2单元楼道灯坏了") -> str:
    """A dispatched lighting report, answered the way residents answer."""
    reply = await wx.say(openid, where)
    for answer in ("好了", "13900001111", "否"):
        if "请核对" in reply:
            break
        reply = await wx.say(openid, answer)
    assert "请核对" in reply, reply
    done = await wx.say(openid, "确认")
    assert "20261123-" in done, done
    return done


async def test_erase_withdraws_open_tickets_and_tells_their_owner(wx: WeChat, services: Services) -> None:
    openid = oid()
    await report_light(wx, openid)
    ask = await wx.say(openid, "删除我的信息")
    assert "办理中的工单" in ask and "撤销" in ask, ask  # said plainly before anything is erased
    assert "已删除" in await wx.say(openid, "确认删除")
    async with services.sessions() as session:
        [ticket] = list((await session.execute(select(Ticket))).scalars())
        assert ticket.status == "cancelled" and ticket.resident is None
        assert not {"place", "phone", "photos"} & set(ticket.fields)
        assert [e.action for e in await events_of(session, ticket)][-1] == "cancel"
        told = list(await session.scalars(select(OutboxItem).where(OutboxItem.channel == "wecom")))
        assert any(ticket.number in str(p.payload) and "撤销" in str(p.payload) for p in told), told


async def test_erase_keeps_a_report_neighbours_wait_for_open_with_its_place(wx: WeChat, services: Services) -> None:
    first, neighbour = oid(), oid()
    await report_light(wx, first)
    await report_light(wx, neighbour)  # the same light: linked to the first report
    await wx.say(first, "删除我的信息")
    await wx.say(first, "确认删除")
    async with services.sessions() as session:
        parent, child = list((await session.execute(select(Ticket).order_by(Ticket.id))).scalars())
        assert child.parent_id == parent.id and child.resident == neighbour
        assert parent.status not in ("cancelled", "closed") and parent.resident is None
        assert "3栋2单元" in parent.fields["place"] and "phone" not in parent.fields


async def test_at_night_the_owner_of_a_shared_report_hears_of_the_erasure_in_the_morning(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """删除我的信息 at 21:30 (quiet hours 21:00-08:00) with a report a neighbour's is linked to: its
    owner's notice waits for 08:00."""
    first, neighbour = oid(), oid()
    await report_light(wx, first)
    await report_light(wx, neighbour)
    clock.set(datetime(2026, 11, 23, 13, 30, tzinfo=timezone.utc))
    await wx.say(first, "删除我的信息")
    assert "已删除" in await wx.say(first, "确认删除")
    [parent, _child] = await tickets_of(services)
    [told] = [o for o in await outbox_rows(services, "wecom", parent.assignee) if "删除个人信息" in str(o.payload)]
    assert parent.number in told.payload["text"]
    assert told.next_attempt_at == datetime(2026, 11, 24, 0, 0, tzinfo=timezone.utc) and not told.urgent
