"""Bookings and volunteer signups walked as elderly residents in session 20 (both backends): what a
resident found wrong, each fixed here. The clock is 2026-11-23 (a Monday) 10:00 in Shanghai."""

from __future__ import annotations

import uuid

import pytest

from bot.flows.volunteer import AREAS
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import answer_each, tickets_of
from tests.test_flows_volunteer import sign_up


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def to_the_time(wx: WeChat, openid: str, opening: str) -> None:
    """A booking for oneself opened with opening, answered up to its time question."""
    for said in (opening, "我自己", "王秀英", "82", "5号楼2单元301"):
        await wx.say(openid, said)


async def book(wx: WeChat, openid: str, opening: str, when: str) -> str:
    """A whole booking for oneself, answering whatever is asked; the last reply."""
    answers = {"请核对": "确认", "给谁": "我自己", "怎么称呼": "王秀英", "多大年纪": "82", "服务地址": "5号楼2单元301", "想约哪一天": when,
               "注意": "没有", "联系电话": "13812345678", "绑定": "否"}
    return await answer_each(wx, openid, opening, answers)


async def summary_after_notes(wx: WeChat, openid: str, phone: str = "13812345678") -> str:
    """From the notes question to the summary: no note, a phone, not bound."""
    await wx.say(openid, "没有")
    await wx.say(openid, phone)
    return await wx.say(openid, "否")


async def test_a_bath_on_a_day_it_is_not_offered_says_the_days_it_is(wx: WeChat, services: Services) -> None:
    """助浴 asked for on a Friday was told 这一天不提供这项服务，请按服务时间另选一天 — not which days it
    is given. The refusal names them (周二、周四、周六, read from config/services.toml) and the nearest
    bookable ones, and the time is asked again; one of them is then taken."""
    openid = oid()
    await to_the_time(wx, openid, "我想约个助浴")
    refused = await wx.say(openid, "周五上午")
    assert "助浴只在周二、周四、周六提供" in refused, refused
    assert "最近可以约11月24日（周二）、11月26日（周四）" in refused, refused
    assert "想约哪一天" in refused, refused
    assert "注意" in await wx.say(openid, "週四上午十點")  # one of them, in traditional characters
    assert "时间：11月26日 10:00" in await summary_after_notes(wx, openid)
    assert "已为助浴预约好：11月26日（周四）10:00" in await wx.say(openid, "确认")


async def test_a_bath_named_for_a_closed_day_in_the_opening_says_the_days_too(wx: WeChat) -> None:
    """The same refusal when the opening named the day (给我妈约个助浴 后天上午, a Wednesday)."""
    openid = oid()
    for said in ("给我妈约个助浴 后天上午", "张桂兰", "85"):
        await wx.say(openid, said)
    asked = await wx.say(openid, "3栋2单元502")
    assert "您说的“后天上午”：这一天不提供这项服务：助浴只在周二、周四、周六提供" in asked, asked
    assert "想约哪一天" in asked, asked


async def test_an_address_said_with_deliver_it_home_takes_both(wx: WeChat, services: Services) -> None:
    """5号楼301 送到家 at the address question was taken whole as the address (地址：5号楼301 送到家)
    and 送到家 was recorded nowhere: no 送到家：是 in the summary, nothing on the canteen's card. Now
    the address is 5号楼301 and the booking is to be brought home, as 送到家 said in the opening is."""
    openid = oid()
    for said in ("给我妈订明天的午饭", "张桂兰", "85"):
        await wx.say(openid, said)
    told = await wx.say(openid, "5号楼301，麻烦送到家里吧")
    assert "好的，地址：5号楼301，送到家。" in told and "注意" in told, told
    summary = await summary_after_notes(wx, openid)
    assert "地址：5号楼301\n" in summary and "送到家：是" in summary, summary
    assert "已为助餐预约好" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["delivery"] is True and ticket.fields["address"] == "5号楼301", ticket.fields
    assert ticket.fields["building"] == "5" and ticket.fields["room"] == "301"


async def test_deliver_it_home_alone_at_the_address_is_kept_and_the_address_asked(
    wx: WeChat, services: Services
) -> None:
    """送到家 alone where the address is asked: kept, and the address asked again (it was taken for
    the address, 地址：送到家)."""
    openid = oid()
    for said in ("给我爸订明天的午饭", "李建国", "88"):
        await wx.say(openid, said)
    told = await wx.say(openid, "送到家")
    assert "送到家，记下了" in told and "服务地址" in told, told
    assert "注意" in await wx.say(openid, "7栋1单元202")
    summary = await summary_after_notes(wx, openid, "13912345678")
    assert "地址：7栋1单元202" in summary and "送到家：是" in summary, summary
    assert "已为助餐预约好" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["delivery"] is True


@pytest.mark.parametrize("said", ["随便", "随便吧", "都随便", "隨便哪個", "那就随便吧 都行"])
async def test_suibian_at_the_areas_is_every_area(wx: WeChat, services: Services, said: str) -> None:
    """随便 at 您想参加哪些方向 was 请回复方向前面的数字 again and again (9bccb65 left it no answer while
    都行吧 became every area); it says any area will do as 都行吧 does."""
    openid = oid()
    done = await sign_up(wx, openid, areas=said)
    assert "感谢您报名" in done, done
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["areas"] == [c.value for c in AREAS], ticket.fields


async def test_the_same_address_as_mine_with_none_known_asks_for_it(wx: WeChat, services: Services) -> None:
    """A man booking his wife's bath, with no address registered and no booking for himself, said
    跟我一個地址: he was told “跟我一个地址”好像不是一个地点 … 如果没有说错，请再发一次 — said again,
    those words would have been the address. Now he is told his address is not known and asked for it."""
    openid = oid()
    for said in ("给我老伴约个助浴 后天上午", "她叫孙桂芝", "八十了"):
        await wx.say(openid, said)
    told = await wx.say(openid, "跟我一個地址")
    assert "还没有您家的地址" in told and "服务地址" in told and "不是一个地点" not in told, told
    told = await wx.say(openid, "跟我一個地址")  # said again: still no address
    assert "还没有您家的地址" in told, told
    assert "想约哪一天" in await wx.say(openid, "9号楼3单元101")


@pytest.mark.parametrize("said", ["行 就这么订吧", "好的 就这么定了", "對 幫我訂上", "就这样约吧"])
async def test_book_it_like_this_at_the_summary_submits_it(wx: WeChat, services: Services, said: str) -> None:
    """行 就这么订吧 at the booking's summary was 请回复“1”确认提交，或“2”修改 and the summary again."""
    openid = oid()
    for answer in ("给我妈订明天的午饭", "张桂兰", "85", "5号楼2单元301"):
        await wx.say(openid, answer)
    assert "请核对" in await summary_after_notes(wx, openid)
    booked = await wx.say(openid, said)
    assert "已为助餐预约好" in booked, booked
    assert len(await tickets_of(services, openid)) == 1


async def test_a_greeting_before_the_booking_is_no_request_and_a_name_written_wrong_is_changed(
    wx: WeChat, services: Services
) -> None:
    """An old woman's voice message, 喂 你好 我想问问 能不能给我家老头子约个理发, was kept whole as the
    booking's 需求 — in her summary and on the barber's card — though it asks for nothing but the
    service; and at the summary, 名字写错了 是王富贵 was 请回复“1”确认提交 (only 名字错了 changed it)."""
    openid = oid()
    for said in ("喂 你好 我想问问 能不能给我家老头子约个理发", "老頭子叫王福貴 今年九十了", "12号楼1单元101", "下礼拜三上午九点半",
                 "他有点糊涂了 得有人看着", "13812345678"):
        await wx.say(openid, said)
    summary = await wx.say(openid, "否")
    assert "请核对" in summary and "需求" not in summary, summary
    changed = await wx.say(openid, "名字写错了 是王富贵")
    assert "姓名：王富贵" in changed and "请回复“1”" not in changed, changed
    assert "已为理发预约好" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert not ticket.fields.get("request") and ticket.fields["for_name"] == "王富贵", ticket.fields


async def test_a_day_alone_after_a_closed_day_keeps_the_time_of_day_said(wx: WeChat, services: Services) -> None:
    """理发 is on Wednesdays: 禮拜四下午三點 was refused for its day, then 那就禮拜三吧 was booked at
    09:00, the day's first slot — a morning for the afternoon asked. The day alone now takes the
    time of day refused with the other day, and says so."""
    openid = oid()
    await to_the_time(wx, openid, "我想约个理发")
    assert "理发只在周三提供" in await wx.say(openid, "禮拜四下午三點")
    told = await wx.say(openid, "那就禮拜三吧")
    assert "时间先记下了：11月25日 15:00" in told and "注意" in told, told
    assert "时间：11月25日 15:00" in await summary_after_notes(wx, openid)
    assert "已为理发预约好：11月25日（周三）15:00" in await wx.say(openid, "确认")


async def test_a_day_alone_after_the_openings_closed_day_keeps_its_time_of_day(wx: WeChat) -> None:
    """The same when the opening named the refused time (给我爸约个理发 周四下午)."""
    openid = oid()
    for said in ("给我爸约个理发 周四下午", "李建国", "88"):
        await wx.say(openid, said)
    assert "理发只在周三提供" in await wx.say(openid, "7栋101")
    told = await wx.say(openid, "那就周三吧")
    assert "时间先记下了：11月25日 下午" in told, told
    assert "时间：11月25日 下午" in await summary_after_notes(wx, openid)
    assert "已为理发预约好：11月25日（周三）14:00" in await wx.say(openid, "确认")


async def test_an_hour_alone_after_an_hour_refused_keeps_the_day_said(wx: WeChat) -> None:
    """助洁 starts at 13:30 or 15:30: 明天下午两点 was refused for its hour, then 那就一点半吧 was
    asked 请说是哪一天 — the day said a moment ago was lost. The hour alone now takes it."""
    openid = oid()
    for said in ("想让人上门来打扫一下卫生", "我自己", "陈淑芬", "七十六", "8号楼2单元402"):
        await wx.say(openid, said)
    assert "只能从 08:30、13:30、15:30 开始" in await wx.say(openid, "明天下午两点")
    told = await wx.say(openid, "那就一点半吧")
    assert "时间先记下了：11月24日 13:30" in told and "注意" in told, told
    assert "时间：11月24日 13:30" in await summary_after_notes(wx, openid)


async def test_a_booking_named_in_traditional_characters_is_picked_for_its_move_and_cancel(
    wx: WeChat, services: Services
) -> None:
    """With a bath and an escort booked, 禮拜一那個陪診 能不能改到下午 listed both and asked which
    (the same words in simplified characters named the escort at once), and so did 明天那個助浴不要了."""
    openid = oid()
    assert "已为助浴预约好" in await book(wx, openid, "我想约个助浴", "明天上午")
    assert "已为陪诊预约好" in await book(wx, openid, "我想约个陪诊", "下礼拜一上午")
    moved = await wx.say(openid, "禮拜一那個陪診 能不能改到下午")
    assert "要把这个预约改到 11月30日 下午 吗？" in moved and "助浴" not in moved, moved
    assert "好的，预约时间不变" in await wx.say(openid, "2")
    cancel = await wx.say(openid, "明天那個助浴不要了")
    assert "要取消这个预约吗？" in cancel and "陪诊" not in cancel, cancel
