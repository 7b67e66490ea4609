"""A neighbour dispute as an elderly resident tells it, through /wechat on both backends: where
they live, said while 您和对方沟通过吗 is asked, is kept with the matter for the mediator instead of
"reply with a number" again and again."""

from __future__ import annotations

import uuid

import pytest

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import reminders_of, tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_where_they_live_said_at_the_talked_question_is_kept_with_the_matter(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    assert "您和对方沟通过吗" in await wx.say(openid, "邻居家的狗天天叫 我想找人调解一下")
    for said in ("我家在3栋", "2单元201", "隔壁202"):
        told = await wx.say(openid, said)
        assert "已补充到" in told and said in told and "您和对方沟通过吗" in told, told
        assert "选项前面的数字" not in told and "人工" not in told, told
    assert "什么时候方便" in await wx.say(openid, "还没跟他说过")
    for said in ("周六上午", "13812345678"):
        await wx.say(openid, said)
    assert "已为您登记" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "mediation" and ticket.fields["talked"] is False
    assert ticket.fields["issue"] == "邻居家的狗天天叫 我想找人调解一下；我家在3栋；2单元201；隔壁202"


async def test_a_word_that_is_no_place_is_still_asked_for_a_choice(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "您和对方沟通过吗" in await wx.say(openid, "邻居家的狗天天叫 我想找人调解一下")
    told = await wx.say(openid, "嗯嗯")
    assert "选项前面的数字" in told and "已补充" not in told, told


@pytest.mark.parametrize("said", ["跟他说了好几次了", "我跟她说了 没用", "讲过好几回了"])
async def test_having_told_them_many_times_is_a_talk_had(wx: WeChat, services: Services, said: str) -> None:
    """跟他说了好几次了 at 您和对方沟通过吗 was added to the matter (已补充到事由) and the choice asked
    again: it says they talked."""
    openid = oid()
    assert "您和对方沟通过吗" in await wx.say(openid, "我要调解 我儿子不给我生活费")
    told = await wx.say(openid, said)
    assert "什么时候方便" in told and "已补充" not in told, told
    for answer in ("周六上午", "13812345678"):
        await wx.say(openid, answer)
    assert "已为您登记" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["talked"] is True


async def test_no_more_mediation_in_the_middle_of_one_leaves_it(wx: WeChat, services: Services) -> None:
    """我不想调解了 at the time question was 没有看懂时间: it leaves the request as 取消 does."""
    openid = oid()
    assert "您和对方沟通过吗" in await wx.say(openid, "我要调解 我儿子不给我生活费")
    assert "什么时候方便" in await wx.say(openid, "2")
    told = await wx.say(openid, "我不想调解了")
    assert "已取消" in told and "没有看懂" not in told, told
    assert await tickets_of(services, openid) == []


async def test_the_phone_sent_while_asked_whether_to_leave_for_another_request_is_the_answer(
    wx: WeChat, services: Services
) -> None:
    """At 请留一个联系电话, 对了 我还想订个助餐 asked whether to leave the mediation; the number sent
    next was 请回复“是”或“否”, and the 确认 after it dropped the mediation for the booking. The number
    answers the phone question the mediation was at: it goes on to its summary."""
    openid = oid()
    assert "什么时候方便" in await wx.say(openid, "对门家天天把垃圾堆在楼道里 跟他说了也不听")
    assert "联系电话" in await wx.say(openid, "周六上午")
    assert "改办“养老服务预约”吗" in await wx.say(openid, "对了 我还想订个助餐")
    summary = await wx.say(openid, "13512345678")
    assert "请核对您的矛盾调解信息" in summary and "联系电话：13512345678" in summary, summary
    assert "已为您登记" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "mediation" and ticket.fields["phone"] == "13512345678"


@pytest.mark.parametrize(
    "opening",
    [
        "楼上那家天天晚上剁馅 吵得睡不着 说了好几回了也不听 能不能找人给说说",
        "隔壁狗叫了一个月了 找过他好多次 能不能帮忙调解",
        "对门天天把鞋柜放楼道里 好几回了也不听 想找人调解",
    ],
)
async def test_told_them_again_and_again_in_the_first_message_is_not_asked(
    wx: WeChat, services: Services, opening: str
) -> None:
    """说了好几回了也不听 in the first message still got 您和对方沟通过吗: a talk verb with a number of
    times (or the times with 也不听) says they talked, so the time to meet is asked next."""
    openid = oid()
    told = await wx.say(openid, opening)
    assert "什么时候方便" in told and "沟通过吗" not in told, told
    for answer in ("周六上午", "13812345678"):
        await wx.say(openid, answer)
    assert "已为您登记" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["talked"] is True


async def test_times_that_say_how_often_it_happens_are_no_talk(wx: WeChat, services: Services) -> None:
    """一晚上叫好几次 counts how often the nuisance happens, not talks: 沟通过吗 is still asked."""
    openid = oid()
    assert "您和对方沟通过吗" in await wx.say(openid, "邻居家的狗一晚上叫好几次 我想找人调解一下")


async def test_a_time_said_at_the_talked_question_is_kept_for_the_time_question(
    wx: WeChat, services: Services
) -> None:
    """晚上吧 七点以后都行 at 您和对方沟通过吗 was 请回复选项前面的数字, and the time question later
    asked again as if never said. It is kept (先记下了), the choice asked again, the time not asked.
    With no day named it reads as said (no date the resident never gave, no day-before reminder)."""
    openid = oid()
    assert "您和对方沟通过吗" in await wx.say(openid, "邻居家的狗天天叫 我想找人调解一下")
    told = await wx.say(openid, "晚上吧 七点以后都行")
    assert "先记下了：晚上吧 七点以后都行" in told and "您和对方沟通过吗" in told, told
    assert "选项前面的数字" not in told, told
    asked = await wx.say(openid, "还没说过")
    assert "联系电话" in asked and "什么时候方便" not in asked, asked
    summary = await wx.say(openid, "13812345678")
    assert "方便的时间：晚上吧 七点以后都行" in summary and "月" not in summary.split("方便的时间：")[1].split("\n")[0]
    done = await wx.say(openid, "确认")
    assert "已为您登记" in done and "前一天提醒" not in done, done
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["talked"] is False and ticket.fields["session_time"] is None
    assert ticket.fields["session_text"] == "晚上吧 七点以后都行"
    assert "方便的时间：晚上吧 七点以后都行" in ticket.summary
    assert await reminders_of(services, "mediation_session") == []


async def test_an_evening_with_no_day_at_the_time_question_is_no_date_of_today(
    wx: WeChat, services: Services
) -> None:
    """晚上七点以后 at 您什么时候方便 became 11月… 19:00 (today's date): it is kept as said; a time
    outside the session hours with no day (晚上十一点以后, 凌晨) is still refused with the hours."""
    openid = oid()
    assert "您和对方沟通过吗" in await wx.say(openid, "邻居家的狗天天叫 我想找人调解一下")
    assert "什么时候方便" in await wx.say(openid, "2")
    for late in ("晚上十一点以后", "凌晨"):
        refused = await wx.say(openid, late)
        assert "08:00—21:00" in refused and "什么时候方便" in refused, refused
    assert "联系电话" in await wx.say(openid, "晚上七点以后")
    summary = await wx.say(openid, "13812345678")
    assert "方便的时间：晚上七点以后\n" in summary, summary
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["session_time"] is None and ticket.fields["session_text"] == "晚上七点以后"


async def test_a_time_at_the_talked_question_that_cannot_be_a_session_is_told_why(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    assert "您和对方沟通过吗" in await wx.say(openid, "邻居家的狗天天叫 我想找人调解一下")
    told = await wx.say(openid, "晚上十一点以后")
    assert "08:00—21:00" in told and "您和对方沟通过吗" in told and "先记下" not in told, told
    assert "什么时候方便" in await wx.say(openid, "2")


async def test_where_both_sides_live_said_at_the_time_question_is_no_date(wx: WeChat, services: Services) -> None:
    """我住6号楼501，他们是601 where 您什么时候方便 is asked was read as 12月6日 (6号楼 as the 6th),
    the place lost and the real time, said next, refused at the phone question. Now where they live
    is added to the matter for the mediator and the time asked again."""
    from datetime import date

    from bot.when import parse_when

    today = date(2026, 11, 25)
    for said in ("6号楼", "8号院", "5号门口", "3号线", "12号床", "二号楼的", "我住6号楼501，他们是601"):
        assert parse_when(said, today).day is None, said
    for said, day in (("25号上午", 25), ("十号下午", 10), ("6号", 6), ("6号下午三点", 6), ("12月6日", 6)):
        assert parse_when(said, today).day.day == day, said
    openid = oid()
    assert "什么时候方便" in await wx.say(openid, "楼上那家天天晚上十一点多还在拖椅子 跟他们说了几次都不管用 能不能找人调解一下")
    told = await wx.say(openid, "我住6号楼501，他们是601")
    assert "已补充到" in told and "什么时候方便" in told and "12月6日" not in told, told
    assert "联系电话" in await wx.say(openid, "周六上午吧")
    summary = await wx.say(openid, "13800001111")
    assert "方便的时间：" in summary and "12月6日" not in summary, summary
    assert "已为您登记" in await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert "我住6号楼501，他们是601" in ticket.fields["issue"], ticket.fields


async def test_a_bare_hour_for_a_talk_is_the_evening_not_seven_in_the_morning(wx: WeChat, services: Services) -> None:
    """七点以后 with no 晚上 read 07:00, outside the sessions' 08:00–21:00, and was refused; a
    neighbour talk after work means the evening. An hour with no part of the day is read in the half
    of the day the sessions run in (08:00 still the morning), and the summary shows the reading."""
    openid = oid()
    assert "什么时候方便" in await wx.say(openid, "楼上装修太吵 说了也不听 想请社区调解")
    assert "联系电话" in await wx.say(openid, "七点以后")
    summary = await wx.say(openid, "13900001111")
    assert "方便的时间：七点以后（19:00）" in summary, summary
    changed = await wx.say(openid, "改时间 明天七点")
    assert "方便的时间：11月24日 19:00" in changed, changed
    changed = await wx.say(openid, "改时间 后天八点")
    assert "方便的时间：11月25日 08:00" in changed, changed
    await wx.say(openid, "确认")
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["session_time"].startswith("2026-11-25T08:00")
    [reminder] = await reminders_of(services, "mediation_session")
    assert reminder.cause_id == ticket.id


@pytest.mark.parametrize(("asked", "answer"), [("调解员是谁啊", "人民调解委员会的调解员"), ("在哪调解", "社区的调解室"),
                                               ("谁来调解呀", "人民调解委员会的调解员")])
async def test_who_mediates_and_where_asked_midway_are_answered(wx: WeChat, asked: str, answer: str) -> None:
    """调解员是谁啊 / 在哪调解 at 您什么时候方便 were told 没有看懂时间 — the question was taken for a
    time that could not be read. They are answered, and the time asked again."""
    openid = oid()
    assert "您和对方沟通过吗" in await wx.say(openid, "想找人调解 对门老是把垃圾放我家门口")
    assert "什么时候方便" in await wx.say(openid, "说过好几次了 不听")
    told = await wx.say(openid, asked)
    assert answer in told and "什么时候方便" in told and "没有看懂时间" not in told, told


async def test_a_new_time_said_for_a_mediation_is_not_told_about_bookings(wx: WeChat, services: Services) -> None:
    """改到周日上午 after a mediation was set for 周六上午 (its reminder says 如需改期请回复“人工”) was told
    您现在没有待进行的养老服务预约 — as if it had been about a meal. It names the mediation and how
    to move it."""
    openid = oid()
    assert "您和对方沟通过吗" in await wx.say(openid, "想找人调解 对门老是把垃圾放我家门口")
    for said in ("说过好几次了 不听", "周六上午", "13511112222"):
        await wx.say(openid, said)
    assert "工单号" in await wx.say(openid, "1")
    [ticket] = await tickets_of(services, openid)
    told = await wx.say(openid, "改到周日上午")
    assert f"要改调解（工单{ticket.number}）的时间，请回复“人工”" in told and "养老服务预约。需要预约" not in told, told
