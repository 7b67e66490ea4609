"""The mediation flow through /wechat: every answer, the session reminder, time validation, edits."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from bot import dialog
from bot.clock import FakeClock
from bot.flows import registry
from bot.flows.base import Context
from bot.flows.mediation import someone_elses_phone, talked_answer, talked_said
from bot.inbound import Inbound
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import dialog_of, reminders_of, tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_mediation_start_to_finish_with_session_reminder(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    openid = oid()
    assert "和谁" in await wx.say(openid, "2")
    assert "因为什么事" in await wx.say(openid, "楼上")
    assert "沟通过吗" in await wx.say(openid, "楼上装修太吵，每天早上7点就开始打电钻")
    assert "什么时候方便" in await wx.say(openid, "1")
    assert "联系电话" in await wx.say(openid, "明天下午3点")
    summary = await wx.say(openid, "13900001111")
    assert "请核对" in summary and "邻居" in summary and "11月24日 15:00" in summary
    assert "已经沟通过" in summary
    done = await wx.say(openid, "确认")
    # The preferred time is passed on, not promised as a session (before: 我们会在调解前一天提醒您).
    assert "20261123-0001" in done and "前一天提醒" not in done
    assert "您方便的时间（11月24日 15:00）已转告调解员" in done and "由调解员和您商定，定下后会告诉您" in done
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "mediation" and ticket.fields["party"] == "邻居"
    assert ticket.fields["talked"] is True and ticket.fields["phone"] == "13900001111"
    session_at = datetime(2026, 11, 24, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert datetime.fromisoformat(ticket.fields["session_time"]) == session_at
    [reminder] = await reminders_of(services, "mediation_session")
    assert reminder.cause_type == "ticket" and reminder.cause_id == ticket.id and reminder.target == openid
    assert reminder.due_at == session_at.replace(day=23)  # the day before, same hour
    assert ticket.number in reminder.payload["message"]["text"]


async def test_time_must_be_understood_and_in_the_future(wx: WeChat, services: Services) -> None:
    openid = oid()
    for answer in ["2", "4", "房东不退押金，说好的押金两千块", "2"]:
        await wx.say(openid, answer)
    assert "没有看懂时间" in await wx.say(openid, "下辈子吧")
    assert "已经过去" in await wx.say(openid, "今天上午8点")  # it is 10:00 now
    assert "联系电话" in await wx.say(openid, "都可以")
    await wx.say(openid, "13900001111")
    done = await wx.say(openid, "1")
    assert "具体见面时间由调解员和您商定" in done and "提醒" not in done  # no time said: none promised
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["party"] == "房东/租户" and ticket.fields["session_time"] is None
    assert await reminders_of(services, "mediation_session") == []


async def test_edit_time_from_the_summary(wx: WeChat, services: Services) -> None:
    openid = oid()
    for answer in ["2", "物业", "物业乱收停车费，一个月多收两百", "否", "周六上午", "13900001111"]:
        reply = await wx.say(openid, answer)
    assert "请核对" in reply and "11月28日" in reply
    summary = await wx.say(openid, "时间不对，应该是后天晚上7点")
    assert "11月25日 19:00" in summary and "请核对" in summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["talked"] is False and ticket.fields["party"] == "物业"
    [reminder] = await reminders_of(services, "mediation_session")
    assert reminder.due_at == datetime(2026, 11, 24, 19, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


async def test_the_matter_told_with_a_try_made_answers_did_you_talk(wx: WeChat, services: Services) -> None:
    """对门那家 is the neighbour (not the matter: it is asked); 说了也不听 in the matter tells they talked."""
    openid = oid()
    assert "和谁" in await wx.say(openid, "我想申请调解")
    assert "因为什么事" in await wx.say(openid, "对门那家")
    asked = await wx.say(openid, "他们家狗天天叫 说了也不听")
    assert "什么时候方便" in asked and "沟通过吗" not in asked
    await wx.say(openid, "随时都行")
    summary = await wx.say(openid, "13900001111")
    assert "对方：邻居" in summary and "事由：他们家狗天天叫 说了也不听" in summary and "已经沟通过" in summary


async def test_back_and_cancel_in_mediation(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "2")
    await wx.say(openid, "家人")
    assert "和谁" in await wx.say(openid, "上一步")
    assert "因为什么事" in await wx.say(openid, "5")
    assert "已取消" in await wx.say(openid, "取消")
    assert await tickets_of(services, openid) == []


async def test_more_of_the_matter_with_an_answer_is_added_to_it(wx: WeChat, services: Services) -> None:
    """说过了，他还骂人 at 沟通过吗: the answer is taken and 他还骂人 added to the matter (before,
    it was dropped)."""
    openid = "o" + uuid.uuid4().hex[:20]
    for answer in ["申请调解", "邻居", "楼上天天半夜跺脚"]:
        await wx.say(openid, answer)
    reply = await wx.say(openid, "说过了，他还骂人")
    assert "已补充到事由：他还骂人" in reply and "什么时候方便" in reply
    state = await dialog_of(services, openid)
    assert state is not None and state.slots["issue"] == "楼上天天半夜跺脚；他还骂人"
    assert state.slots["talked"] == "yes"


def test_did_you_talk_negations_win() -> None:
    """没找过他 holds 找过, 没有沟通过 holds 沟通过: the negation wins; 说了也不听 and 找他他不认账 stay talked."""
    for said in ("没找过他", "没有沟通过", "没有找过", "从来没说过", "不好意思找他", "还没跟他说"):
        assert talked_said(said) == "no", said
    for said in ("说了也不听", "找他他不认账", "找过了", "没谈拢", "说过了，他还骂人"):
        assert talked_said(said) == "yes", said
    assert talked_said("对门养的狗天天在楼道里拉屎，我想申请调解") is None


async def test_a_negated_answer_to_did_you_talk_is_no(wx: WeChat, services: Services) -> None:
    """At 您和对方沟通过吗, 没找过他 was stored as talked and 没有沟通过 … were refused: talked_answer
    (called by the dialog before the engine) reads them as not yet; the flow goes on."""
    for said in ("没找过他", "没有沟通过", "没有找过", "从来没说过", "不好意思找他"):
        openid = oid()
        reply = await wx.say(openid, "对门养的狗天天在楼道里拉屎，我想申请调解")
        assert "沟通过吗" in reply, reply
        state = await dialog_of(services, openid)
        assert state is not None
        inbound = Inbound(openid=openid, msg_type="text", text=said)
        async with services.sessions.begin() as session:
            row = await dialog.arrive(session, inbound, services.clock.now())
            ctx = Context(services, session, row, inbound, services.clock.now())
            outcome = talked_answer(ctx, registry.FLOWS["mediation"], state)
        assert outcome is not None and outcome.state is not None, said
        assert outcome.state.slots["talked"] == "no" and "什么时候方便" in outcome.reply, (said, outcome.reply)
    for kept in ("1", "说过了，他还骂人", "明天下午3点"):  # the choices read these: the engine's
        inbound = Inbound(openid=openid, msg_type="text", text=kept)
        async with services.sessions.begin() as session:
            row = await dialog.arrive(session, inbound, services.clock.now())
            assert talked_answer(Context(services, session, row, inbound, services.clock.now()),
                                 registry.FLOWS["mediation"], state) is None, kept


async def test_the_other_partys_phone_in_the_opening_is_not_the_residents(wx: WeChat, services: Services) -> None:
    """他手机139-8765-4321 in the opening became the resident's contact: the phone was never asked
    and the mediator would have called the neighbour. A number said to be someone else's (他,
    对方, 物业, 楼上502 …) is not taken; the phone is asked as usual. The resident's own is."""
    from tests.wecom_driver import outbox_rows

    openid = oid()
    assert "沟通过吗" in await wx.say(openid, "想找调解员，跟隔壁老李闹矛盾了，他手机139-8765-4321，我打过没人接")
    assert "什么时候方便" in await wx.say(openid, "1")
    assert "联系电话" in await wx.say(openid, "这周六上午")
    summary = await wx.say(openid, "13700001111")
    assert "联系电话：13700001111" in summary and "13987654321" not in summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["phone"] == "13700001111"
    # The mediator's card names the preferred time (方便的时间), before the matter.
    assert ticket.summary.startswith("与邻居｜方便的时间：11月28日上午｜想找调解员")
    [card] = [r for r in await outbox_rows(services, "wecom", ticket.assignee) if r.payload.get("msgtype") == "textcard"]
    assert "方便的时间：11月28日上午" in card.payload["description"]
    for opening in ("楼上502天天半夜吵，他电话是138 1234 5678，想请人调解", "物业乱收停车费，物业的电话是0571-87654321，想调解",
                    "对方电话13812345678 邻居占楼道，想请调解员"):
        other = oid()
        await wx.say(other, opening)
        state = await dialog_of(services, other)
        assert state is not None and "phone" not in state.slots, opening
    own = oid()  # the resident's own number in the opening is still taken
    await wx.say(own, "邻居占楼道堆杂物，想请调解员，我电话13812345678")
    state = await dialog_of(services, own)
    assert state is not None and state.slots["phone"] == "13812345678"


def test_whose_phone_a_number_is() -> None:
    for said in ("他手机139-0000-1111", "隔壁老李电话13900001111", "楼上502的电话13900001111",
                 "王阿姨手机13900001111", "她的手机号是13900001111"):
        assert someone_elses_phone(said, "13900001111"), said
    for said in ("我手机13900001111", "跟邻居吵架 13900001111", "我电话13900001111，他的13800001111"):
        assert not someone_elses_phone(said, "13900001111"), said


async def test_more_of_the_matter_at_the_time_question_is_added_not_taken_for_a_time(
    wx: WeChat, services: Services
) -> None:
    """就是那个 晚上十一点多还在跺脚 … at 您什么时候方便 became the session's time (11月23日 23:00)
    and the rest was lost. Said of the dispute (还在…, 每天…), it is added to the matter and the
    time to meet asked again; a time to meet outside 08:00—21:00 is refused with the hours."""
    openid = oid()
    asked = await wx.say(openid, "嗯 你好 俺跟楼上那家闹矛盾了 他家天天半夜咚咚咚的 俺找他说了他还骂人 咋整啊")
    assert "什么时候方便" in asked
    again = await wx.say(openid, "就是那个 晚上十一点多还在跺脚 俺这心脏不好 睡不着觉")
    assert "已补充到事由" in again and "见面谈的时间" in again and "什么时候方便" in again
    assert "联系电话" not in again
    state = await dialog_of(services, openid)
    assert state is not None and "session_time" not in state.slots
    assert state.slots["issue"].endswith("；就是那个 晚上十一点多还在跺脚 俺这心脏不好 睡不着觉")
    for late in ("晚上十一点", "明天凌晨两点"):
        refused = await wx.say(openid, late)
        assert "08:00—21:00" in refused and "什么时候方便" in refused, late
    assert "联系电话" in await wx.say(openid, "明天早上")  # 06:00-09:00: from 08:00
    summary = await wx.say(openid, "13900001111")
    assert "方便的时间：11月24日早上" in summary and "跺脚" in summary and "心脏不好" in summary
    await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    session_at = datetime(2026, 11, 24, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert datetime.fromisoformat(ticket.fields["session_time"]) == session_at
    assert "心脏不好" in ticket.fields["issue"]
    # Saying when one is free is a time, even with 每天 in it.
    other = oid()
    assert "什么时候方便" in await wx.say(other, "楼上天天半夜跺脚 说了也不听 想请人调解")
    assert "联系电话" in await wx.say(other, "每天下午都有空")
