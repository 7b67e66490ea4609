"""养老服务预约 driven through /wechat on both backends (plaintext and safe mode): the menu path,
prefilled openings, hours refused with a hint, a full slot becoming a waitlist booking, and the
replies to reminders (取消预约, 预约改时间)."""

from __future__ import annotations

import uuid

import pytest
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot import bookings, tickets
from bot.clock import FakeClock
from bot.services import Services
from storage.models import Reminder, Ticket
from tests.conftest import WeChat
from tests.flow_helpers import bookings_of, tickets_of

SH = ZoneInfo("Asia/Shanghai")


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=SH).astimezone(timezone.utc)


async def test_booking_from_the_menu_start_to_finish(wx: WeChat, services: Services) -> None:
    openid = oid()
    first = await wx.say(openid, "3")
    assert "哪项服务" in first and "助餐（每天 11:00-13:00、17:00-18:30）" in first
    assert "给谁预约" in await wx.say(openid, "1")
    assert "怎么称呼" in await wx.say(openid, "我妈")
    assert "多大年纪" in await wx.say(openid, "王秀英")
    assert "多大年纪" in await wx.say(openid, "很老了")  # re-asked with a hint
    assert "地址" in await wx.say(openid, "82")
    when_q = await wx.say(openid, "3栋2单元301")
    assert "哪一天" in when_q and "11:00-13:00" in when_q
    refused = await wx.say(openid, "明天下午3点")
    assert "约不上" in refused and "每次30分钟" in refused and "哪一天" in refused
    assert "11:00、11:30、12:00、12:30、17:00、17:30、18:00 开始" in refused  # the day's start times
    assert "注意" in await wx.say(openid, "明天11:30")
    assert "联系电话" in await wx.say(openid, "少盐，软一点")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")  # not bound
    assert "请核对" in summary and "11月24日 11:30" in summary and "王秀英" in summary and "3栋2单元301" in summary
    done = await wx.say(openid, "1")
    assert "已为助餐预约好：11月24日（周二）11:30" in done and "20261123-0001" in done and "取消预约" in done
    # The booked time is the date that matters: no other "handled by" date beside it, here or in
    # the status answer (before: 预计11月30日 10:00前处理 under a booking for the 24th).
    assert "前处理" not in done
    status = await wx.say(openid, "我的工单怎么样了")
    assert "11月24日（周二）11:30" in status and "前办结" not in status

    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "elderly_service" and ticket.assignee == "canteen" and ticket.status == "dispatched"
    assert ticket.fields["service"] == "助餐" and ticket.fields["for_name"] == "王秀英" and ticket.fields["age"] == 82
    [booking] = await bookings_of(services, openid)
    assert booking.status == "booked" and booking.ticket_id == ticket.id and booking.provider == "canteen"
    assert booking.start_at == at(date(2026, 11, 24), 11, 30) and booking.notes == "少盐，软一点"
    async with services.sessions() as session:
        kinds = (await session.execute(
            select(Reminder.kind).where(Reminder.cause_type == "booking", Reminder.cause_id == booking.id)
        )).scalars().all()
    assert sorted(kinds) == ["booking_evening", "booking_hour"]


async def test_prefilled_opening_asks_only_what_is_missing(wx: WeChat, services: Services) -> None:
    openid = oid()
    reply = await wx.say(openid, "明天中午给我妈订个助餐")
    assert "怎么称呼" in reply  # service, for whom and the time came with the opening
    assert "多大年纪" in await wx.say(openid, "李桂兰")
    assert "地址" in await wx.say(openid, "八十岁")
    assert "注意" in await wx.say(openid, "5栋301")
    assert "联系电话" in await wx.say(openid, "跳过")
    await wx.say(openid, "13912345678")
    summary = await wx.say(openid, "否")  # not bound
    assert "11月24日 中午" in summary
    done = await wx.say(openid, "是")
    assert "11月24日（周二）11:00" in done  # the first free slot at noon
    [booking] = await bookings_of(services, openid)
    assert booking.for_age == 80 and booking.address == "5栋301"


async def test_a_full_slot_becomes_a_waitlist_with_the_nearest_free_times(wx: WeChat, services: Services) -> None:
    bath = bookings.catalog_of(services.extras).get("助浴")
    assert bath is not None
    taken = at(date(2026, 11, 24), 9, 0)
    async with services.sessions() as session, session.begin():  # someone else has Tuesday 9:00
        ticket = await tickets.create_ticket(
            session, kind="elderly_service", resident="o_other", fields={}, now=services.clock.now(),
            tz=services.settings.timezone, actor="test",
        )
        await bookings.create_booking(services, session, ticket=ticket, resident="o_other", spec=bath,
                                      start=taken, for_name=None, for_age=None, address=None, notes=None)
    openid = oid()
    reply = await wx.say(openid, "我想给我爸预约明天上午9点助浴，他85岁，住7栋1单元202")
    assert "怎么称呼" in reply
    assert "注意" in await wx.say(openid, "张建国")
    assert "联系电话" in await wx.say(openid, "需要搀扶")
    await wx.say(openid, "13812345678")
    await wx.say(openid, "否")  # not bound
    done = await wx.say(openid, "1")
    assert "已经约满" in done and "候补" in done and "11月24日（周二）10:00" in done
    [booking] = await bookings_of(services, openid)
    assert booking.status == "waitlist" and booking.start_at == taken


async def _someone_else_has(services: Services, service: str, start: datetime) -> None:
    spec = bookings.catalog_of(services.extras).get(service)
    assert spec is not None
    async with services.sessions() as session, session.begin():
        ticket = await tickets.create_ticket(
            session, kind="elderly_service", resident="o_other", fields={}, now=services.clock.now(),
            tz=services.settings.timezone, actor="test",
        )
        await bookings.create_booking(services, session, ticket=ticket, resident="o_other", spec=spec,
                                      start=start, for_name=None, for_age=None, address=None, notes=None)


async def _to_the_time_question(wx: WeChat, openid: str) -> None:
    """助浴 from the menu, for oneself, up to the date/time question."""
    assert "哪项服务" in await wx.say(openid, "3")
    for answer, next_question in (("助浴", "给谁预约"), ("本人", "怎么称呼"), ("王秀英", "多大年纪"),
                                  ("82", "地址"), ("3栋2单元301", "哪一天")):
        reply = await wx.say(openid, answer)
        assert next_question in reply, (answer, reply)


async def test_a_full_time_is_said_at_the_time_question_with_the_free_ones(wx: WeChat, services: Services) -> None:
    """Asked for a slot already taken, the resident hears it at once with the nearest free times
    and picks one: booked, no waitlist."""
    await _someone_else_has(services, "助浴", at(date(2026, 11, 24), 9, 0))
    openid = oid()
    await _to_the_time_question(wx, openid)
    full = await wx.say(openid, "明天上午9点")
    assert "已经约满" in full and "11月24日（周二）10:00" in full and "再发一次" in full and "哪一天" in full
    assert "注意" in await wx.say(openid, "明天上午10点")
    assert "联系电话" in await wx.say(openid, "无")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")  # not bound
    assert "11月24日 10:00" in summary
    done = await wx.say(openid, "1")
    assert "已为助浴预约好：11月24日（周二）10:00" in done
    [booking] = await bookings_of(services, openid)
    assert booking.status == "booked" and booking.start_at == at(date(2026, 11, 24), 10, 0)


async def test_the_same_full_time_again_is_a_waitlist(wx: WeChat, services: Services) -> None:
    """The resident wants that time anyway: saying it again is taken, and the booking is written
    as a waitlist one at the end, as a full slot always was."""
    taken = at(date(2026, 11, 24), 9, 0)
    await _someone_else_has(services, "助浴", taken)
    openid = oid()
    await _to_the_time_question(wx, openid)
    assert "已经约满" in await wx.say(openid, "明天上午9点")
    assert "注意" in await wx.say(openid, "明天上午9点")
    await wx.say(openid, "无")
    await wx.say(openid, "13812345678")
    await wx.say(openid, "否")  # not bound
    done = await wx.say(openid, "1")
    assert "已经约满" in done and "候补" in done
    [booking] = await bookings_of(services, openid)
    assert booking.status == "waitlist" and booking.start_at == taken


async def test_cancel_and_change_the_next_booking(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "帮我自己约后天上午10点的上门护理")
    for answer in ("刘芳", "70", "2栋101", "跳过"):
        await wx.say(openid, answer)
    await wx.say(openid, "13812345678")
    await wx.say(openid, "否")  # not bound
    assert "已为上门护理预约好" in await wx.say(openid, "1")

    ask = await wx.say(openid, "预约改时间")
    assert "上门护理 11月25日（周三）10:00（刘芳）想改到哪一天" in ask
    confirm = await wx.say(openid, "周四下午3点")
    assert "要把这个预约改到 11月26日 15:00 吗？\n上门护理 11月25日（周三）10:00（刘芳）" in confirm
    moved = await wx.say(openid, "1")
    assert "改到：11月26日（周四）15:00" in moved
    [booking] = await bookings_of(services, openid)
    assert booking.start_at == at(date(2026, 11, 26), 15, 0)

    confirm = await wx.say(openid, "取消预约")
    assert "要取消这个预约吗？\n上门护理 11月26日（周四）15:00（刘芳）" in confirm
    cancelled = await wx.say(openid, "1")
    assert "已取消" in cancelled and "上门护理" in cancelled
    [booking] = await bookings_of(services, openid)
    assert booking.status == "cancelled"
    async with services.sessions() as session:
        states = (await session.execute(
            select(Reminder.state).where(Reminder.cause_type == "booking", Reminder.cause_id == booking.id)
        )).scalars().all()
        ticket = await session.get(Ticket, booking.ticket_id)
    assert set(states) == {"dropped"} and ticket is not None and ticket.status == "cancelled"
    assert "没有待进行" in await wx.say(openid, "取消预约")  # nothing left: said at once


async def test_reminder_reply_words_reach_the_booking(wx: WeChat) -> None:
    for words in ("取消预约", "改时间"):
        reply = await wx.say(f"oReminderWords{words}", words)
        assert "我可以帮您" not in reply, reply  # not the generic menu: the booking flow answered


async def test_what_the_first_message_asks_beyond_the_service_reaches_the_provider(
    wx: WeChat, services: Services
) -> None:
    """适老化改造 家里卫生间装个扶手: the rails in the bathroom were lost (备注：无) and the provider
    saw only the service. The request is kept, shown in the summary and in the ticket's summary."""
    openid = oid()
    await wx.say(openid, "我想申请适老化改造 家里卫生间装个扶手")
    for answer in ("我自己", "张桂兰", "78", "3栋2单元301", "下周一上午", "没有"):
        await wx.say(openid, answer)
    await wx.say(openid, "13800138000")
    summary = await wx.say(openid, "否")  # not bound
    assert "需求：我想申请适老化改造 家里卫生间装个扶手" in summary
    assert "已为适老化改造预约好" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["request"] == "我想申请适老化改造 家里卫生间装个扶手"
    assert "卫生间装个扶手" in (ticket.summary or "")
    # A plain booking says nothing more: no request line.
    other = oid()
    for answer in ("明天中午给我妈订助餐", "王秀英", "82", "3栋2单元301", "没有"):
        await wx.say(other, answer)
    await wx.say(other, "13812345678")
    assert "需求" not in await wx.say(other, "否")


async def test_cancel_or_change_without_a_booking_is_said_at_once(wx: WeChat, services: Services) -> None:
    """取消预约 with nothing booked: before, a summary to confirm first, and only after 1 "no booking"."""
    openid = "o" + uuid.uuid4().hex[:20]
    for said in ("取消预约", "我想取消预约", "改时间"):
        reply = await wx.say(openid, said)
        assert "没有待进行的养老服务预约" in reply and "请核对" not in reply, said
    assert await tickets_of(services, openid) == []


async def test_what_the_opening_tells_is_not_asked_again_nor_dumped_into_the_request(
    wx: WeChat, services: Services
) -> None:
    """他叫李建国 今年八十五了 住五号楼… 电话139…: the name was asked again and the whole sentence,
    phone included, became the request; 周六上午 stayed in it beside the booked time."""
    openid = oid()
    reply = await wx.say(openid, "我想给我爸约个洗澡 下周二上午十点 他叫李建国 今年八十五了 住五号楼一单元102 电话13900002222")
    assert "怎么称呼" not in reply and "注意" in reply
    assert "绑定" in await wx.say(openid, "跳过")
    summary = await wx.say(openid, "否")  # not bound
    assert "姓名：李建国" in summary and "年龄：85" in summary and "需求" not in summary
    other = oid()
    await wx.say(other, "给我妈约个助浴 她腿脚不好 要坐轮椅 周六上午")
    for said in ("王秀英", "82", "3号楼2单元301", "跳过"):
        await wx.say(other, said)
    await wx.say(other, "13800138001")
    summary = await wx.say(other, "否")  # not bound
    assert "她腿脚不好 要坐轮椅" in summary and "周六上午" not in summary.split("需求：")[1].split("\n")[0]


async def test_a_moved_booking_moves_its_tickets_limit_and_tells_the_provider(
    wx: WeChat, services: Services
) -> None:
    """改时间 moved the booking but left the ticket's 办结 limit at the old time: a check could fire
    before the new service, or none after it. Now the limit follows the new start and the
    provider is told the new time."""
    from tests.wecom_driver import outbox_rows

    openid = oid()
    await wx.say(openid, "帮我自己约后天上午10点的上门护理")
    for answer in ("刘芳", "70", "2栋101", "跳过", "13812345678", "否"):
        await wx.say(openid, answer)
    assert "预约好" in await wx.say(openid, "1")
    [before] = await tickets_of(services, openid)
    await wx.say(openid, "预约改时间")
    await wx.say(openid, "周四下午3点")
    assert "改到" in await wx.say(openid, "1")
    [after] = await tickets_of(services, openid)
    start = datetime(2026, 11, 26, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert datetime.fromisoformat(after.fields["start"]) == start
    assert after.summary.startswith("上门护理｜11月26日（周四）15:00｜刘芳（70岁）")  # not the old time
    assert after.due_at is not None and after.due_at > before.due_at
    async with services.sessions() as session:
        breach = (await session.execute(select(Reminder).where(
            Reminder.cause_type == "ticket", Reminder.cause_id == after.id, Reminder.kind == "resolve_breach",
            Reminder.state == "pending"))).scalars().all()
    assert [r.due_at for r in breach] == [after.due_at]
    told = [r for r in await outbox_rows(services, "wecom", after.assignee) if "预约时间改到了" in r.payload.get("text", "")]
    assert len(told) == 1 and "改到了 11月26日 15:00" in told[0].payload["text"]


async def _book_bath(wx: WeChat, openid: str, name: str, age: str, notes: str) -> str:
    """明天上午9点 助浴 for one's mother, from the opening to the done reply."""
    await wx.say(openid, "明天上午9点给我妈预约助浴")
    for answer in (name, age, "5号楼1单元101", notes, "13600002222", "否"):
        reply = await wx.say(openid, answer)
    assert "请核对" in reply and f"年龄：{age}" in reply and (notes == "跳过" or f"备注：{notes}" in reply), reply
    return await wx.say(openid, "1")


async def test_cancelling_a_booking_is_answered_in_the_chat_only(wx: WeChat, services: Services) -> None:
    """取消预约 pushed the resident 您的工单…已撤销。居民取消预约 on top of the chat answer (a
    push spent from the daily cap and the customer-service quota); the provider is still told."""
    from tests.wecom_driver import outbox_rows

    openid = oid()
    assert "已为助浴预约好" in await _book_bath(wx, openid, "张桂兰", "85", "跳过")
    [ticket] = await tickets_of(services, openid)
    before = len(await outbox_rows(services, "wechat", openid))
    await wx.say(openid, "取消预约")
    assert "已取消" in await wx.say(openid, "1")
    assert len(await outbox_rows(services, "wechat", openid)) == before
    told = [r.payload.get("text", "") for r in await outbox_rows(services, "wecom", ticket.assignee)]
    assert f"工单 {ticket.number}（5号楼1单元101）已撤销，您无需再处理，不用上门。" in told
    async with services.sessions() as session:
        [event] = [e for e in await tickets.events_of(session, ticket) if e.action == "cancel"]
    assert event.actor.startswith("resident:") and event.data.get("by") == "resident"


async def test_the_provider_sees_age_and_notes_and_the_waitlist_and_its_promotion(
    wx: WeChat, services: Services
) -> None:
    """The provider's card (the ticket's summary) had neither the age nor the care notes (坐轮椅
    需要两个人扶); a waitlisted booking reached the provider like a booked one, and its promotion
    when another resident cancelled was told to nobody but the resident."""
    from tests.wecom_driver import outbox_rows

    first, second = oid(), oid()
    assert "已为助浴预约好" in await _book_bath(wx, first, "张桂兰", "85", "坐轮椅 需要两个人扶")
    [booked] = await tickets_of(services, first)
    assert booked.summary == "助浴｜11月24日（周二）09:00｜张桂兰（85岁）｜备注：坐轮椅 需要两个人扶"
    provider = booked.assignee
    assert provider is not None
    cards = [r for r in await outbox_rows(services, "wecom", provider) if r.payload.get("msgtype") == "textcard"]
    assert "张桂兰（85岁）｜备注：坐轮椅 需要两个人扶" in cards[-1].payload["description"]

    assert "候补" in await _book_bath(wx, second, "李秀兰", "80", "跳过")
    [waiting] = await tickets_of(services, second)
    assert waiting.summary == "候补｜助浴｜11月24日（周二）09:00｜李秀兰（80岁）" and waiting.assignee == provider
    cards = [r for r in await outbox_rows(services, "wecom", provider) if r.payload.get("msgtype") == "textcard"]
    assert "事项：候补｜助浴" in cards[-1].payload["description"]

    await wx.say(first, "取消预约")
    assert "已取消" in await wx.say(first, "1")
    told = [r.payload.get("text", "") for r in await outbox_rows(services, "wecom", provider)]
    assert f"工单 {booked.number}（5号楼1单元101）已撤销，您无需再处理，不用上门。" in told
    assert f"工单 {waiting.number} 的候补预约已有空位，现已约上：11月24日（周二）09:00，请按时安排服务。" in told
    [promoted] = await tickets_of(services, second)
    assert promoted.summary == "助浴｜11月24日（周二）09:00｜李秀兰（80岁）" and promoted.fields["waitlist"] is False
    [booking] = await bookings_of(services, second)
    assert booking.status == "booked"
    assert any("已有空位" in r.payload.get("text", "") for r in await outbox_rows(services, "wechat", second))


async def _book_lunch(wx: WeChat, openid: str, age: str = "80") -> None:
    """明天中午 助餐 for one's mother, booked (11月24日 11:00)."""
    await wx.say(openid, "明天中午给我妈订个助餐")
    for answer in ("李桂兰", age, "5栋301", "跳过", "13912345678", "否"):
        await wx.say(openid, answer)
    assert "已为助餐预约好：11月24日（周二）11:00" in await wx.say(openid, "是")


async def test_cancelling_or_moving_a_booking_in_ones_own_words(wx: WeChat, services: Services) -> None:
    """After a confirmed 助餐 booking, 那个 把助餐取消了吧 started a new booking, 取消我的预约 gave
    the status list, 我想改个时间 / 能不能改个时间 / 改到后天中午 / 那个饭不要了 / 不去了 were not
    understood and 预约改到后天 began a new booking. Each reaches the booking now, the confirmation
    naming it (service, time, person); 我想订个助餐 is still a new booking."""
    openid = oid()
    await _book_lunch(wx, openid)
    named = "助餐 11月24日（周二）11:00（李桂兰）"
    for said in ("那个 把助餐取消了吧", "取消我的预约", "那个饭不要了", "不去了", "取消預約"):
        reply = await wx.say(openid, said)
        assert f"要取消这个预约吗？\n{named}" in reply, (said, reply)
        assert "预约保留不变" in await wx.say(openid, "不要")
    for said in ("我想改个时间", "能不能改个时间"):
        reply = await wx.say(openid, said)
        assert f"请问{named}想改到哪一天" in reply, (said, reply)
        assert "预约时间不变" in await wx.say(openid, "取消")  # the move dropped: said as 否 says it
    for said, new in (("改到后天中午", "11月25日 中午"), ("预约改到后天", "11月25日 11:00")):
        reply = await wx.say(openid, said)
        assert f"要把这个预约改到 {new} 吗？\n{named}" in reply, (said, reply)
        assert "预约时间不变" in await wx.say(openid, "不要")
    assert "给谁预约" in await wx.say(openid, "我想订个助餐")
    assert "已取消" in await wx.say(openid, "取消")
    [booking] = await bookings_of(services, openid)
    assert booking.status == "booked" and booking.start_at == at(date(2026, 11, 24), 11, 0)
    reply = await wx.say(openid, "预约改到后天")
    assert "已把您的助餐预约改到：11月25日（周三）11:00" in await wx.say(openid, "1"), reply
    assert "已取消您11月25日（周三）11:00的助餐预约" in (await wx.say(openid, "那个饭不要了") and await wx.say(openid, "1"))
    [booking] = await bookings_of(services, openid)
    assert booking.status == "cancelled"


async def test_with_several_bookings_the_one_to_cancel_or_move_is_picked_by_number(
    wx: WeChat, services: Services
) -> None:
    """With two bookings, 取消预约 cancelled "the nearest" (预约：取消最近的一个预约) without saying
    which. They are listed, and the number (or the service) picks one; the confirmation names it."""
    openid = oid()
    await _book_lunch(wx, openid)
    await wx.say(openid, "帮我自己约后天上午10点的上门护理")
    for answer in ("刘芳", "70", "2栋101", "跳过", "13912345678", "否"):
        await wx.say(openid, answer)
    assert "已为上门护理预约好" in await wx.say(openid, "1")
    listed = await wx.say(openid, "取消预约")
    assert "您有2个预约：\n1. 助餐 11月24日（周二）11:00（李桂兰）\n2. 上门护理 11月25日（周三）10:00（刘芳）" in listed
    assert "前面的序号" in await wx.say(openid, "3")  # not on the list: asked again
    confirm = await wx.say(openid, "第二个")
    assert "要取消这个预约吗？\n上门护理 11月25日（周三）10:00（刘芳）" in confirm
    assert "已取消您11月25日（周三）10:00的上门护理预约" in await wx.say(openid, "1")
    lunch, care = await bookings_of(services, openid)
    assert lunch.status == "booked" and care.status == "cancelled"
    # Naming the service picks among them too; a cancellation that names one goes straight to it.
    await wx.say(openid, "帮我自己约后天上午10点的上门护理")
    for answer in ("刘芳", "70", "2栋101", "跳过", "13912345678", "否"):
        await wx.say(openid, answer)
    assert "已为上门护理预约好" in await wx.say(openid, "1")
    assert "要改哪一个的时间" in await wx.say(openid, "我想改个时间")
    assert "请问助餐 11月24日（周二）11:00（李桂兰）想改到" in await wx.say(openid, "助餐")
    assert "已把您的助餐预约改到：11月27日（周五）11:00" in (await wx.say(openid, "周五") and await wx.say(openid, "1"))
    assert "要取消这个预约吗？\n上门护理 11月25日（周三）10:00（刘芳）" in await wx.say(openid, "上门护理不要了")


async def test_cancel_or_change_said_in_the_middle_of_a_new_booking(wx: WeChat, services: Services) -> None:
    """取消預約 at a new booking's time question was read as a time (没有看懂时间) over and over. It
    says the booking in hand is not submitted and how to stop it (and how to cancel one booked
    before); 改个时间 at a later question asks the new time, and the time said next changes it."""
    openid = oid()
    await _book_lunch(wx, openid)
    await wx.say(openid, "我想订个陪诊")
    for answer in ("我自己", "王五", "70", "3栋101"):
        await wx.say(openid, answer)
    reply = await wx.say(openid, "取消預約")
    assert "这次的陪诊预约还没有提交" in reply and "再说“取消预约”" in reply and "没有看懂时间" not in reply
    assert "想约哪一天" in reply
    assert "注意" in await wx.say(openid, "后天下午")
    asked = await wx.say(openid, "能不能改个时间")
    assert "想改到哪天几点" in asked and "注意" in asked
    assert "时间改为11月26日 13:00" in await wx.say(openid, "周四下午一点")
    assert "联系电话" in await wx.say(openid, "无")
    await wx.say(openid, "13900001111")
    summary = await wx.say(openid, "否")  # not bound
    assert "时间：11月26日 13:00" in summary


async def test_ages_as_people_say_them(wx: WeChat, services: Services) -> None:
    """八十三了, 83岁了, 今年八十三, 八十多了, 她今年83 were refused in a loop (请说一个年龄数字). They
    are ages; 八十多 is kept as 80多 (80 in years), shown so in the summary and the provider's card."""
    for said, shown in (("八十三了", "83"), ("83岁了", "83"), ("今年八十三", "83"), ("她今年83", "83"),
                        ("八十多了", "80多")):
        openid = oid()
        await wx.say(openid, "明天中午给我妈订个助餐")
        await wx.say(openid, "李桂兰")
        assert "地址" in await wx.say(openid, said), said
        for answer in ("5栋301", "跳过"):
            await wx.say(openid, answer)
        await wx.say(openid, "13912345678")
        assert f"年龄：{shown}\n" in await wx.say(openid, "否"), said
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["age"] == 80 and ticket.fields["age_said"] == "80多"
    assert "李桂兰（80多岁）" in (ticket.summary or "")
    [booking] = await bookings_of(services, openid)
    assert booking.for_age == 80


async def test_a_part_of_the_day_takes_the_start_nearest_to_it(wx: WeChat, services: Services) -> None:
    """陪诊 明天上午 was always refused (只能从 07:30、13:00 开始): 上午 is 08:00-12:00 and the slot
    starts at 07:30. The start in or nearest to the part of the day is taken, and said."""
    openid = oid()
    await wx.say(openid, "帮我妈预约陪诊")
    for answer in ("王秀英", "80", "5栋301"):
        await wx.say(openid, answer)
    reply = await wx.say(openid, "明天上午")
    assert "陪诊上午从 07:30 开始，已按 11月24日 07:30 为您记下" in reply and "注意" in reply
    await wx.say(openid, "跳过")
    await wx.say(openid, "13800001111")
    assert "时间：11月24日 07:30" in await wx.say(openid, "否")
    assert "已为陪诊预约好：11月24日（周二）07:30" in await wx.say(openid, "1")
    other = oid()  # 晚上 (17:00-21:00): no start within an hour of it
    for answer in ("帮我自己约陪诊", "王五", "70", "3栋101"):
        await wx.say(other, answer)
    assert "约不上" in await wx.say(other, "明天晚上")


async def test_the_person_and_the_name_read_as_people_say_them(wx: WeChat, services: Services) -> None:
    """我想预约一下明天上午的助浴 (by voice), then 张桂兰 at 给谁预约 was kept as who, the name asked,
    and 85 and the address refused as a name. A name at 给谁 is the person and the name; 他叫李建国
    今年八十一了 is the name and the age; an age or an address sent at the name question is kept."""
    openid = oid()
    asked = await wx.send("voice", openid, MediaId="v1", Format="amr",
                          Recognition="我想预约一下明天上午的助浴 我女儿电话是一三六一二三四五六七八")
    assert "给谁预约" in asked
    assert "多大年纪" in await wx.say(openid, "张桂兰")
    assert "地址" in await wx.say(openid, "85")
    assert "注意" in await wx.say(openid, "3栋2单元301")
    await wx.say(openid, "跳过")
    await wx.say(openid, "13612345678")
    summary = await wx.say(openid, "否")  # not bound
    assert "服务对象：张桂兰\n姓名：张桂兰\n年龄：85\n地址：3栋2单元301" in summary

    other = oid()
    await wx.say(other, "我想预约助浴")
    assert "地址" in await wx.say(other, "他叫李建国 今年八十一了")
    assert "助浴" in await wx.say(other, "3栋2单元301")
    third = oid()
    await wx.say(third, "我想预约助浴")
    await wx.say(third, "我爸")
    assert "年龄先记下了：85" in await wx.say(third, "85")
    assert "地址先记下了：3栋2单元301" in await wx.say(third, "3栋2单元301")
    assert "助浴" in await wx.say(third, "李建国 八十一了")  # the time question: the rest was kept
    for who in (other, third):
        await wx.say(who, "周四上午10点")
        await wx.say(who, "跳过")
        await wx.say(who, "13612345678")
        summary = await wx.say(who, "否")  # not bound
        assert "姓名：李建国\n" in summary and "地址：3栋2单元301" in summary, summary
        assert ("年龄：81\n" if who == other else "年龄：85\n") in summary, summary


async def test_a_bare_cancel_right_after_a_reminder_offers_to_cancel_that_booking(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """取消 alone, after the evening-before reminder of a booking, was answered "nothing to cancel"
    with the menu. Soon after the reminder it offers to cancel that booking (confirmed first);
    later, or with no reminder sent, 取消 is what it was."""
    from bot import schedule

    openid = oid()
    assert "现在没有正在办理的事" in await wx.say(openid, "取消")
    await _book_lunch(wx, openid)
    clock.advance(hours=9)  # 19:00, the evening before: the reminder goes out
    assert await schedule.run_due(services) >= 1
    offered = await wx.say(openid, "取消")
    assert "刚才提醒过您这个预约" in offered and "要取消这个预约吗？\n助餐 11月24日（周二）11:00（李桂兰）" in offered
    assert "已取消您11月24日（周二）11:00的助餐预约" in await wx.say(openid, "取消")  # 取消 again: yes
    [booking] = await bookings_of(services, openid)
    assert booking.status == "cancelled"
    other = oid()
    await _book_lunch(wx, other)
    assert await schedule.run_due(services) == 0  # its reminder is not due yet
    assert "现在没有正在办理的事" in await wx.say(other, "取消")


async def test_a_report_or_a_need_at_the_service_question_does_not_loop(wx: WeChat, services: Services) -> None:
    """At 请问要预约哪项服务: 送水 and 家里没水了 got "请回复选项前面的数字" again and again. A need no
    service covers goes to a person; a report starts the report; a word that is neither is asked again."""
    openid = oid()
    assert "哪项服务" in await wx.say(openid, "3")
    assert "转接人工服务" in await wx.say(openid, "送水")
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff"
    reporter = oid()
    assert "哪项服务" in await wx.say(reporter, "3")
    switched = await wx.say(reporter, "家里没水了")
    assert "没有提交" in switched and "问题在哪里" in switched and "选项前面的数字" not in switched
    assert "拍张照片" in await wx.say(reporter, "3栋2单元301")  # the report goes on
    unsure = oid()
    assert "哪项服务" in await wx.say(unsure, "3")
    assert "选项前面的数字" in await wx.say(unsure, "嗯")
    assert "给谁预约" in await wx.say(unsure, "1")


async def _reminders_told(services: Services, openid: str) -> list[str]:
    from tests.wecom_driver import outbox_rows

    return [r.payload.get("text", "") for r in await outbox_rows(services, "wechat", openid)
            if "【预约提醒】" in r.payload.get("text", "")]


async def test_a_booking_reminder_is_not_held_to_the_next_morning_by_the_daily_cap(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """Five pushes had reached the resident that morning (the daily cap): the reminder an hour
    before the meal was held to the next morning, and then said 将在60分钟后（11月24日 11:00）开始 a
    day after it. A booking's reminders name its time: the cap does not hold them."""
    from bot import schedule
    from bot.outbox import push_resident

    openid = oid()
    await _book_lunch(wx, openid)
    clock.advance(hours=9)  # 19:00, the evening before
    await schedule.run_due(services)
    assert len(await _reminders_told(services, openid)) == 1
    clock.advance(hours=13)  # 08:00 on the day: the cap's pushes
    async with services.sessions() as session, session.begin():
        for i in range(services.settings.daily_push_cap):
            await push_resident(session, openid, f"社区通知 {i}", now=clock.now())
    clock.advance(hours=2)  # 10:00, an hour before
    await schedule.run_due(services)
    told = await _reminders_told(services, openid)
    assert len(told) == 2 and "李桂兰预约的助餐在一小时后，今天 11:00 开始" in told[-1], told


async def test_a_booking_reminder_claimed_after_the_booking_started_is_dropped(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """The scheduler stopped from the afternoon before until after the meal: on restart both
    reminders fell due at once and went out — 明天 11月24日 11:00 and 将在60分钟后 at 11:30 on the
    day. A reminder claimed once its booking has started is dropped."""
    from bot import schedule

    openid = oid()
    await _book_lunch(wx, openid)
    clock.advance(hours=25, minutes=30)  # 11:30 on the day: the scheduler runs again
    await schedule.run_due(services)
    assert await _reminders_told(services, openid) == []
    async with services.sessions() as session:
        states = (await session.execute(select(Reminder.state).where(Reminder.cause_type == "booking"))).scalars().all()
    assert sorted(states) == ["dropped", "dropped"]


async def test_no_longer_wanted_in_ones_own_words_after_a_reminder(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """不要了 to the evening-before reminder (an 80-year-old's answer) got 没太明白 and the menu.
    Soon after a reminder, 不要了 / 明天不去了 / 来不了了 offer to cancel that booking, confirmed first
    (否 keeps it); with no reminder lately they are what they were."""
    from bot import schedule

    openid = oid()
    await _book_lunch(wx, openid)
    assert "没太明白" in await wx.say(openid, "不要了")  # no reminder yet: nothing it can be about
    clock.advance(hours=9)  # 19:00, the evening before
    await schedule.run_due(services)
    offered = await wx.say(openid, "不要了")
    assert "刚才提醒过您这个预约" in offered and "要取消这个预约吗？\n助餐 11月24日（周二）11:00（李桂兰）" in offered
    assert "预约保留不变" in await wx.say(openid, "否")
    assert "要取消这个预约吗" in await wx.say(openid, "明天来不了了")
    assert "已取消您11月24日（周二）11:00的助餐预约" in await wx.say(openid, "是")
    [booking] = await bookings_of(services, openid)
    assert booking.status == "cancelled"


async def test_a_meal_asked_for_by_voice_is_a_booking(wx: WeChat, services: Services) -> None:
    """明天中午给我送个饭, as an 80-year-old says it to the phone, got 没太明白 and the menu (送 was
    no booking word, only 订/要/点 饭). It is the 助餐 booking, its time and service taken."""
    openid = oid()
    assert "给谁预约" in await wx.say(openid, "明天中午给我送个饭")
    for answer in ("我自己", "王大爷", "八十了", "3号楼2单元501", "没有"):
        await wx.say(openid, answer)
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")  # not bound
    assert "服务：助餐" in summary and "时间：11月24日 中午" in summary, summary
    assert "已为助餐预约好：11月24日（周二）11:00" in await wx.say(openid, "是")
    assert "给谁预约" in await wx.say(oid(), "中午给俺送点饭来")


async def test_no_evening_reminder_minutes_after_the_booking_was_made(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """Booked at 18:50 for the next day's lunch, the resident was pushed 【预约提醒】…明天 at 19:00,
    ten minutes after the confirmation said the same (one of the five messages WeChat's window
    allows). An evening reminder that soon is not planned; the one an hour before still is."""
    from bot import schedule

    clock.advance(hours=8, minutes=50)  # 18:50
    openid = oid()
    await _book_lunch(wx, openid)
    clock.advance(minutes=10)  # 19:00
    await schedule.run_due(services)
    assert await _reminders_told(services, openid) == []
    clock.advance(hours=15)  # 10:00 on the day
    await schedule.run_due(services)
    [told] = await _reminders_told(services, openid)
    assert "在一小时后，今天 11:00 开始" in told and "60分钟" not in told


async def test_booking_reminders_are_worded_as_they_go_out(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """The hour-before reminder read 将在60分钟后（11月24日（周二）11:00）开始 (nested brackets, 60分钟),
    and the evening one's 明天 was fixed when planned, so one a stopped scheduler sent on the day
    said 明天. Both are worded as they go out: 明天 11:00 the evening before, 今天 11:00 on the day,
    一小时后 for the hour before."""
    from bot import schedule

    openid = oid()
    await _book_lunch(wx, openid)
    clock.advance(hours=9)  # 19:00, the evening before
    await schedule.run_due(services)
    [evening] = await _reminders_told(services, openid)
    assert "李桂兰预约的助餐在明天 11:00，请按时前往" in evening, evening
    clock.advance(hours=15)  # 10:00 on the day, an hour before
    await schedule.run_due(services)
    hour = (await _reminders_told(services, openid))[-1]
    assert "李桂兰预约的助餐在一小时后，今天 11:00 开始" in hour, hour
    assert "（（" not in hour and "）（" not in hour and "60分钟" not in hour


async def test_an_evening_reminder_sent_late_on_the_day_says_today(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """The scheduler stopped from the afternoon before until 09:00 on the day: the evening reminder
    then going out said 明天 11:00, a day off. Worded as it goes out, it says 今天 11:00."""
    from bot import schedule

    openid = oid()
    await _book_lunch(wx, openid)
    clock.advance(hours=23)  # 09:00 on the day
    await schedule.run_due(services)
    [said] = await _reminders_told(services, openid)
    assert "李桂兰预约的助餐在今天 11:00" in said and "明天" not in said, said


@pytest.mark.parametrize("said", ["明天那个饭 少放点盐啊", "少放点盐啊", "明天助餐少放盐", "我腿脚不好"])
async def test_a_care_note_after_booking_goes_to_that_booking(wx: WeChat, services: Services, said: str) -> None:
    """明天那个饭 少放点盐啊 after a 助餐 was booked got 没太明白 and the menu. A care note naming a
    booking ahead (its day, its service, 饭 for a meal), or an instruction alone with one booking
    ahead, is added to that booking's note, its provider told, and the resident told so. So is, with
    one booking ahead, a word about the person and nothing else (我腿脚不好, no instruction word:
    it was 没太明白) — something for the provider to know about the visit."""
    from tests.wecom_driver import outbox_rows

    openid = oid()
    await _book_lunch(wx, openid)
    told = await wx.say(openid, said)
    note = {"明天助餐少放盐": "少放盐", "我腿脚不好": "我腿脚不好"}.get(said, "少放点盐啊")
    assert f"已把“{note}”加到李桂兰11月24日（周二）11:00的助餐预约备注里" in told and "没太明白" not in told, told
    [booking] = await bookings_of(services, openid)
    assert booking.notes == note and booking.status == "booked"
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["notes"] == note and f"备注：{note}" in ticket.summary
    pushed = [r.payload.get("text", "") for r in await outbox_rows(services, "wecom")]
    assert any("【居民补充】" in p and ticket.number in p and note in p for p in pushed), pushed
    assert not any("13912345678" in p for p in pushed)


async def test_what_is_no_note_for_the_booking_is_not_added(wx: WeChat, services: Services) -> None:
    """Something said about the estate with a care word in it (楼道里有人撒了盐) is no booking's note,
    nor is a new booking's request (再订一个明天的助餐 少放盐)."""
    openid = oid()
    await _book_lunch(wx, openid)
    told = await wx.say(openid, "楼道里有人撒了盐")
    assert "预约备注" not in told, told
    told = await wx.say(openid, "再订一个明天的助餐 少放盐")
    assert "预约备注" not in told, told
    told = await wx.say(openid, "我腿脚不好 你们社区有没有人帮忙买菜")  # more than a word about the person
    assert "预约备注" not in told, told
    [booking] = await bookings_of(services, openid)
    assert not booking.notes


async def test_a_booking_for_oneself_is_reminded_as_yours_not_by_ones_own_name(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """孙大妈 booked lunch for herself (给谁预约: 我自己, then her name): the reminders read
    【预约提醒】孙大妈预约的助餐 …, as if it were someone else's; now 您预约的助餐. A mother's booking
    still names her (李桂兰预约的)."""
    from bot import schedule

    mine, mothers = oid(), oid()
    reply = await wx.say(mine, "明天中午订个助餐")
    for _ in range(10):
        if "已为助餐预约好" in reply:
            break
        answer = next((a for k, a in (("核对", "1"), ("给谁", "我自己"), ("称呼", "孙大妈"), ("年龄", "78"), ("年纪", "78"), ("岁", "78"),
                                     ("地址", "5栋301"), ("注意", "跳过"), ("电话", "13912345678"),
                                      ("绑定", "否")) if k in reply), None)
        assert answer is not None, reply
        reply = await wx.say(mine, answer)
    assert "已为助餐预约好" in reply, reply
    await _book_lunch(wx, mothers)
    clock.advance(hours=9)  # 19:00, the evening before
    await schedule.run_due(services)
    [told] = await _reminders_told(services, mine)
    assert "您预约的助餐" in told and "孙大妈" not in told, told
    [told] = await _reminders_told(services, mothers)
    assert "李桂兰预约的助餐" in told, told


@pytest.mark.parametrize("opening, note", [("我想给我妈订明天的午饭，送到家", "少盐"),
                                           ("给我妈订明天的午饭", "她下不了楼 送上门吧")])
async def test_the_summary_says_the_meal_is_brought_home(
    wx: WeChat, services: Services, opening: str, note: str
) -> None:
    """The canteen's card says 送到家 since 5eaebcf, but the summary the resident confirmed did
    not: 送到家 said in the opening was nowhere in it. Now it says so under the summary, whether
    said in the opening or in the care note; a booking not asking for it does not."""
    openid = oid()
    for said in (opening, "王秀英", "82", "5号楼2单元301", note, "13812345678"):
        await wx.say(openid, said)
    summary = await wx.say(openid, "否")
    assert "请核对" in summary and "送到家：是" in summary, summary
    assert summary.index("地址：5号楼2单元301") < summary.index("送到家：是") < summary.index("1. 确认提交")
    assert "已为助餐预约好" in await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert opening == "给我妈订明天的午饭" or ticket.fields["delivery"] is True
    plain = oid()
    for said in ("给我妈订明天的午饭", "王秀英", "82", "5号楼2单元301", "少盐", "13812345678"):
        await wx.say(plain, said)
    plain_summary = await wx.say(plain, "否")
    assert "请核对" in plain_summary and "送到家" not in plain_summary, plain_summary
