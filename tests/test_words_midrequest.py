"""Residents' words in the middle of a request and outside one, through /wechat on both backends:
催一下 and 你们电话多少 at a question, a new phone number said outside any request, two numbers at
the phone question."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from bot.services import Services
from storage.models import Resident, TicketEvent
from tests.conftest import WeChat
from tests.flow_helpers import dialog_of, tickets_of

PHOTO_Q = "拍张照片"
PHONE_Q = "联系电话"
SUMMARY = "请核对"


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_hurrying_a_request_not_yet_sent_says_what_is_still_needed(wx: WeChat, services: Services) -> None:
    """催一下 / 快点 at a question were the question again: the request is not sent yet, so nobody
    could hurry; what is still to answer is said, then the same question."""
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    await wx.say(openid, "3号楼")
    for said in ("催一下", "快点", "能不能快点啊"):
        reply = await wx.say(openid, said)
        assert "还没有提交" in reply and "联系电话" in reply and PHOTO_Q in reply, reply
    await wx.say(openid, "没有")
    await wx.say(openid, "13800001111")
    await wx.say(openid, "否")
    at_summary = await wx.say(openid, "快点")
    assert "还没有提交" in at_summary and "确认" in at_summary and SUMMARY in at_summary, at_summary
    state = await dialog_of(services, openid)
    assert state is not None and state.invalid == 0 and state.slots["description"] == "楼道灯坏了"
    assert await tickets_of(services, openid) == []


async def test_a_description_saying_hurry_is_still_the_description(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "我要报修")
    await wx.say(openid, "1")
    await wx.say(openid, "3号楼")
    await wx.say(openid, "灯不亮了快点")
    state = await dialog_of(services, openid)
    assert state is not None and state.slots.get("description") == "灯不亮了快点"


async def test_the_service_centres_phone_asked_at_a_question(wx: WeChat, services: Services) -> None:
    """你们电话多少 / 服务中心电话 at a question were the question again: the number operators
    keep in config/faq.toml is given, then the same question."""
    openid = oid()
    await wx.say(openid, "楼道灯坏了")
    await wx.say(openid, "3号楼")
    for said in ("你们电话多少", "服务中心电话"):
        reply = await wx.say(openid, said)
        assert "0571-8888 1234" in reply and PHOTO_Q in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.invalid == 0


async def test_a_new_phone_said_outside_a_request_is_bound_and_open_tickets_use_it(
        wx: WeChat, services: Services) -> None:
    """电话改成139… / 我换号码了 新号是… outside any request were not understood: the bound phone is
    changed (the reply masks it), and an open ticket that carried the old number now carries the new."""
    openid = oid()
    for said in ("楼道灯坏了", "3号楼", "没有", "13800001111", "是"):
        await wx.say(openid, said)
    assert "工单" in await wx.say(openid, "1")
    reply = await wx.say(openid, "电话改成13912345678")
    assert "139****5678" in reply and "13912345678" not in reply and "1件工单" in reply, reply
    async with services.sessions() as session:
        resident = await session.scalar(select(Resident).where(Resident.openid == openid))
        assert resident is not None and resident.phone == "13912345678"
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["phone"] == "13912345678"
    async with services.sessions() as session:
        notes = (await session.execute(select(TicketEvent.note).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "resident_wrote"))).scalars().all()
    assert notes == ["居民更换了联系电话：139****5678"]
    again = await wx.say(openid, "我换号码了 新号是 137 0000 2222")
    assert "137****2222" in again
    assert "不用改" in await wx.say(openid, "我的新号码是13700002222")


async def test_a_number_beside_a_report_or_someone_elses_is_no_phone_change(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "已改为" not in await wx.say(openid, "物业电话改成13912345678了")
    assert "已改为" not in await wx.say(openid, "楼道灯坏了 电话改成13912345678")
    async with services.sessions() as session:
        resident = await session.scalar(select(Resident).where(Resident.openid == openid))
        assert resident is None or resident.phone is None


async def test_two_numbers_at_the_phone_question_keep_the_first_and_say_so(wx: WeChat, services: Services) -> None:
    """电话138… 或者 139… kept the first silently, and 138… 139… (a space or a comma between) was
    "the mobile number looks wrong": the first is the contact, and the reply says which was kept."""
    for two in ("电话13812345678 或者 13998765432", "13812345678 13998765432", "13812345678，0571-88881234"):
        openid = oid()
        for said in ("楼道灯坏了", "3号楼", "没有"):
            await wx.say(openid, said)
        reply = await wx.say(openid, two)
        assert "记下的联系电话是 138****5678" in reply and "绑定" in reply, reply
        assert ("139****5432" in reply or "0571-****1234" in reply) and "13998765432" not in reply
        state = await dialog_of(services, openid)
        assert state is not None and state.slots["phone"] == "13812345678"


async def test_asking_for_ones_tickets_in_a_sentence_where_what_happened_is_asked(
        wx: WeChat, services: Services) -> None:
    """我想看看我的工单 where what happened is asked became the description (我的工单 read at 0.54,
    one jieba word worth only its class): answered as the status question, then asked again; a
    report of a problem asked after (我报修的路灯还没修好) is still what happened."""
    for said in ("我想看看我的工单", "麻烦查查我的报修"):
        openid = oid()
        for answer in ("我要报修", "1", "3号楼"):
            await wx.say(openid, answer)
        reply = await wx.say(openid, said)
        assert "没有正在办理的工单" in reply and "描述一下情况" in reply, reply
        state = await dialog_of(services, openid)
        assert state is not None and "description" not in state.slots
    openid = oid()
    for answer in ("我要报修", "1", "3号楼", "我报修的路灯还没修好"):
        await wx.say(openid, answer)
    state = await dialog_of(services, openid)
    assert state is not None and state.slots.get("description") == "我报修的路灯还没修好"
