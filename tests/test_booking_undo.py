"""那还是订吧 through /wechat on both backends: a booking request cancelled midway goes on where it
was, one cancelled at its summary or after it was booked comes back to confirm, and nothing comes
back after [elderly] undo_minutes or when nothing was dropped."""

from __future__ import annotations

import uuid


from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import bookings_of, tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def _to_summary(wx: WeChat, openid: str) -> str:
    assert "怎么称呼" in await wx.say(openid, "给我妈订明天的午饭")
    await wx.say(openid, "王秀英")
    await wx.say(openid, "82")
    await wx.say(openid, "5号楼2单元301")
    await wx.say(openid, "少盐")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "请核对" in summary and "王秀英" in summary
    return summary


async def test_cancelled_midway_goes_on_where_it_was(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "给我妈订明天的午饭")
    await wx.say(openid, "王秀英")
    assert "地址" in await wx.say(openid, "82")
    dropped = await wx.say(openid, "取消")
    assert "已取消" in dropped and "还是订吧" in dropped
    back = await wx.say(openid, "那还是订吧")
    # before: 抱歉，我没太明白 and the menu; the name and age were gone
    assert "刚才填的都还在" in back and "地址" in back and "没太明白" not in back
    await wx.say(openid, "5号楼2单元301")
    await wx.say(openid, "不用")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "王秀英" in summary and "82" in summary and "5号楼2单元301" in summary
    assert "已为助餐预约好" in await wx.say(openid, "1")
    assert len(await tickets_of(services, openid)) == 1


async def test_book_after_all_at_the_summary_submits(wx: WeChat, services: Services) -> None:
    openid = oid()
    await _to_summary(wx, openid)
    done = await wx.say(openid, "那还是订吧")  # before: 请回复“1”确认提交
    assert "已为助餐预约好" in done
    [booking] = await bookings_of(services, openid)
    assert booking.status == "booked" and booking.for_name == "王秀英"


async def test_declined_at_the_summary_comes_back_to_confirm(wx: WeChat, services: Services) -> None:
    openid = oid()
    await _to_summary(wx, openid)
    assert "已取消" in await wx.say(openid, "算了不订了")
    back = await wx.say(openid, "还是订吧")
    assert "请核对" in back and "王秀英" in back and "少盐" in back
    assert "已为助餐预约好" in await wx.say(openid, "确认")


async def test_a_cancelled_booking_is_made_again_as_it_was(wx: WeChat, services: Services) -> None:
    openid = oid()
    await _to_summary(wx, openid)
    await wx.say(openid, "1")
    await wx.say(openid, "取消预约")
    cancelled = await wx.say(openid, "确认")
    assert "已取消您" in cancelled and "还是订吧" in cancelled
    back = await wx.say(openid, "那还是订吧")
    assert "重新为您预约" in back and "请核对" in back
    assert "王秀英" in back and "5号楼2单元301" in back and "少盐" in back and "13812345678" in back
    assert "已为助餐预约好" in await wx.say(openid, "1")
    first, second = await bookings_of(services, openid)
    assert first.status == "cancelled" and second.status == "booked"
    assert second.start_at == first.start_at and second.for_name == "王秀英" and second.notes == "少盐"


async def test_nothing_comes_back_late_or_when_nothing_was_dropped(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    openid = oid()
    assert "没太明白" in await wx.say(openid, "那还是订吧")
    await wx.say(openid, "给我妈订明天的午饭")
    await wx.say(openid, "王秀英")
    await wx.say(openid, "取消")
    clock.advance(minutes=31)
    assert "刚才填的都还在" not in await wx.say(openid, "那还是订吧")


async def test_declined_after_the_idle_nudge_comes_back_too(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """不用了 to the idle nudge leaves the booking as 取消 does; 那还是订吧 got 没太明白 and the menu,
    every answer lost. Now it is kept the same way and goes on where it was."""
    from bot.schedule import run_due

    openid = oid()
    await wx.say(openid, "给我妈订明天的午饭")
    await wx.say(openid, "王秀英")
    assert "地址" in await wx.say(openid, "82")
    clock.advance(seconds=services.settings.flow_idle_nudge_s)
    await run_due(services)
    left = await wx.say(openid, "不用了")
    assert "已取消" in left and "还是订吧" in left, left
    back = await wx.say(openid, "那还是订吧")
    assert "刚才填的都还在" in back and "地址" in back and "没太明白" not in back, back
    await wx.say(openid, "5号楼2单元301")
    await wx.say(openid, "不用")
    await wx.say(openid, "13812345678")
    summary = await wx.say(openid, "否")
    assert "王秀英" in summary and "82" in summary and "5号楼2单元301" in summary, summary


async def test_two_yes_words_at_the_summary_submit(wx: WeChat, services: Services) -> None:
    """对的 没问题 at the booking's summary was answered 请回复“1”确认提交 with the summary again (an
    elderly resident's way of saying yes, found walking /sim); yes words one after another submit,
    as one does; 对的 不对 is no yes."""
    openid = oid()
    await _to_summary(wx, openid)
    assert "请回复“1”确认提交" in await wx.say(openid, "对的 不对")
    assert "已为助餐预约好" in await wx.say(openid, "对的 没问题")
    [booking] = await bookings_of(services, openid)
    assert booking.status == "booked"
