"""Menu clicks and QR-code scans in the middle of a request, walked through the webhook as a
resident does on both backends, plaintext and safe mode: nothing said is dropped without a word,
and the question in hand follows.

Before: 报事报修 pressed again at the place question began the report again from 哪一类问题 (what
was said, 楼道灯坏了, dropped silently); 我的工单 pressed mid-request answered the status and left
the resident without the question; a follower scanning the account's code got no answer at all."""

from __future__ import annotations

from tests.conftest import WeChat

PLACE_Q = "问题在哪里"


async def test_the_running_requests_button_pressed_again_goes_on_where_it_was(wx: WeChat) -> None:
    assert PLACE_Q in await wx.say("oEvt1", "楼道灯坏了")
    reply = await wx.event("oEvt1", "CLICK", "MENU_COMPLAINT")
    assert "您正在办“报事报修”" in reply and "楼道灯坏了" in reply, reply
    assert reply.splitlines()[-1].startswith(PLACE_Q) and "哪一类" not in reply, reply
    assert "照片" in await wx.say("oEvt1", "3号楼2单元")


async def test_the_running_requests_button_at_the_summary_shows_the_summary(wx: WeChat) -> None:
    await wx.say("oEvt2", "3号楼2单元楼道灯坏了")
    await wx.say("oEvt2", "跳过")
    await wx.say("oEvt2", "13812345678")
    assert "请核对" in await wx.say("oEvt2", "否")
    reply = await wx.event("oEvt2", "CLICK", "MENU_COMPLAINT")
    assert "请核对" in reply and "3号楼2单元楼道灯坏了" in reply and "1. 确认提交" in reply, reply
    assert "工单号" in await wx.say("oEvt2", "1")


async def test_another_button_mid_request_still_switches(wx: WeChat) -> None:
    await wx.say("oEvt3", "楼道灯坏了")
    reply = await wx.event("oEvt3", "CLICK", "MENU_ELDERLY")
    assert "“报事报修”没有提交" in reply and "预约哪项服务" in reply, reply


async def test_my_tickets_pressed_mid_request_then_asks_the_question_again(wx: WeChat) -> None:
    await wx.say("oEvt4", "楼道灯坏了")
    reply = await wx.event("oEvt4", "CLICK", "MENU_MY_TICKETS")
    assert "没有正在办理的工单" in reply and reply.splitlines()[-1].startswith(PLACE_Q), reply
    alone = await wx.event("oEvt5", "CLICK", "MENU_MY_TICKETS")
    assert alone == "您目前没有正在办理的工单。需要办事请直接告诉我。", alone


async def test_a_follower_scanning_the_code_is_greeted(wx: WeChat) -> None:
    reply = await wx.event("oEvt6", "SCAN", "building3", Ticket="gQH47joAAAAAAAAAASxodHRw")
    assert "有什么可以帮您" in reply and "1. 报事报修" in reply, reply
    await wx.say("oEvt7", "楼道灯坏了")
    mid = await wx.event("oEvt7", "SCAN", "building3", Ticket="gQH47joAAAAAAAAAASxodHRw")
    assert "您正在办“报事报修”" in mid and mid.splitlines()[-1].startswith(PLACE_Q), mid


async def test_a_button_of_an_old_menu_mid_request_says_where_it_stands(wx: WeChat) -> None:
    """A key no service has (a menu since replaced, still on the phone): mid-request the question in
    hand, not the menu alone — whose 1 would then be read as the answer to 哪一类问题."""
    assert "哪一类" in await wx.say("oEvt8", "我要报修")
    reply = await wx.event("oEvt8", "CLICK", "MENU_RETIRED")
    assert "您正在办“报事报修”" in reply and "哪一类" in reply, reply
    alone = await wx.event("oEvt9", "CLICK", "MENU_RETIRED")
    assert "1. 报事报修" in alone and "您正在办" not in alone, alone


async def test_a_sticker_at_the_summary_shows_the_summary_again(wx: WeChat) -> None:
    await wx.say("oEvt10", "3号楼2单元楼道灯坏了")
    await wx.say("oEvt10", "跳过")
    await wx.say("oEvt10", "13812345678")
    assert "请核对" in await wx.say("oEvt10", "否")
    reply = await wx.say("oEvt10", "【收到不支持的消息类型，暂无法显示】")
    assert "表情" in reply and "请核对" in reply and "1. 确认提交" in reply, reply
    assert "工单号" in await wx.say("oEvt10", "1")
