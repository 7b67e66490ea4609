"""What a resident sends that the bot cannot read — a file, a sticker (WeChat delivers the text
【收到不支持的消息类型，暂无法显示】 in its place), a mini-program card — and a shared link, walked
through the webhook on both backends, plaintext and safe mode: the resident is told, the question
in hand is asked again with nothing lost, and the message is recorded.

Before: a file or a card got no answer at all ('success') and was not recorded; a sticker was
quoted back as a place (“【收到不支持的消息类型，暂无法显示】”好像不是一个地点); a link's title was
read as the resident's answer (关于小区停车收费的通知 chose the category 停车)."""

from __future__ import annotations

from sqlalchemy import select

from bot.services import Services
from bot.sim.wechat_client import message_xml
from storage.models import Message, TicketEvent
from tests.conftest import WeChat

STICKER = "【收到不支持的消息类型，暂无法显示】"
FILE = {"Title": "维修报价单.pdf", "Description": "", "FileKey": "fk1", "FileMd5": "m", "FileTotalLen": "1024"}
LINK = {"Title": "关于小区停车收费的通知", "Description": "物业贴出的新收费标准", "Url": "https://mp.weixin.qq.com/s/parking"}
CARD = {"Title": "社区食堂菜单", "AppId": "wxapp1", "PagePath": "pages/menu", "ThumbUrl": "http://x/0", "ThumbMediaId": "t"}
PLACE_Q = "问题在哪里"
CATEGORY_Q = "请问是哪一类问题"


async def _recorded(services: Services, openid: str) -> list[str]:
    async with services.sessions() as session:
        rows = await session.scalars(
            select(Message.msg_type).where(Message.openid == openid, Message.direction == "in").order_by(Message.id)
        )
        return list(rows)


async def _send(wx: WeChat, msg_type: str, openid: str, fields: dict[str, str]) -> str:
    status, reply = await wx.post_xml(message_xml(msg_type, openid, **fields))
    assert status == 200, reply
    return "" if reply is None else str(reply.get("Content", ""))


async def test_a_file_outside_a_request_is_answered_and_recorded(wx: WeChat, services: Services) -> None:
    reply = await _send(wx, "file", "oUnread1", FILE)
    assert "文件" in reply and "打不开" in reply and "打字或发语音" in reply, reply
    assert await _recorded(services, "oUnread1") == ["file"]
    assert "哪一类" in await wx.say("oUnread1", "我要报修")  # nothing half-begun in the way


async def test_a_file_at_the_place_question_asks_it_again(wx: WeChat, services: Services) -> None:
    assert PLACE_Q in await wx.say("oUnread2", "楼道灯坏了")
    reply = await _send(wx, "file", "oUnread2", FILE)
    assert "打不开" in reply and reply.splitlines()[-1].startswith(PLACE_Q), reply
    assert "照片" in await wx.say("oUnread2", "3号楼2单元501")  # the report goes on where it was


async def test_a_sticker_is_not_quoted_back_as_an_answer(wx: WeChat, services: Services) -> None:
    assert PLACE_Q in await wx.say("oUnread3", "楼道灯坏了")
    reply = await wx.say("oUnread3", STICKER)
    assert STICKER not in reply and "表情" in reply and PLACE_Q in reply, reply
    alone = await wx.say("oUnread4", STICKER)  # outside a request: not read as a goodbye
    assert "表情" in alone and "打字或发语音" in alone, alone
    assert await _recorded(services, "oUnread4") == ["unsupported"]


async def test_a_shared_link_is_not_the_answer_to_the_question(wx: WeChat, services: Services) -> None:
    assert CATEGORY_Q in await wx.say("oUnread5", "我要报修")
    reply = await _send(wx, "link", "oUnread5", LINK)
    assert "关于小区停车收费的通知" in reply and "打不开" in reply, reply
    assert CATEGORY_Q in reply and PLACE_Q not in reply, reply  # 停车 in the title chose nothing
    assert PLACE_Q in await wx.say("oUnread5", "1")
    assert await _recorded(services, "oUnread5") == ["text", "link", "text"]


async def test_a_mini_program_card_is_answered(wx: WeChat, services: Services) -> None:
    reply = await _send(wx, "miniprogrampage", "oUnread6", CARD)
    assert "小程序" in reply and "打不开" in reply, reply
    assert await _recorded(services, "oUnread6") == ["other"]


async def test_a_link_sent_while_a_person_is_awaited_goes_to_them(wx: WeChat, services: Services) -> None:
    assert "人工" in await wx.say("oUnread7", "转人工")
    reply = await _send(wx, "link", "oUnread7", LINK)
    assert "工作人员" in reply and "打不开" not in reply, reply
    async with services.sessions() as session:
        notes = list(await session.scalars(select(TicketEvent.note).where(TicketEvent.action == "resident_wrote")))
    assert notes == ["[链接] 关于小区停车收费的通知 https://mp.weixin.qq.com/s/parking"], notes
