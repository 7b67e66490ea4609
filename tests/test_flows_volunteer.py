"""志愿者报名 driven through /wechat on both backends (plaintext and safe mode)."""

from __future__ import annotations

import uuid

import pytest
from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import dialog
from bot.clock import FakeClock
from bot.flows.base import Context
from bot.flows.volunteer import change_areas, registered_reply
from bot.inbound import Inbound
from bot.services import Services
from bot.tickets import events_of
from storage.models import Volunteer
from tests.conftest import WeChat
from tests.flow_helpers import answer_each, resident, tickets_of
from tests.wecom_driver import outbox_rows


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def volunteers_of(svc: Services, openid: str) -> list[Volunteer]:
    async with svc.sessions() as session:
        return list((await session.execute(select(Volunteer).where(Volunteer.openid == openid))).scalars())


async def test_signup_from_the_menu_start_to_finish(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "姓名" in await wx.say(openid, "4")
    assert "联系电话" in await wx.say(openid, "王芳")
    assert "特长" in await wx.say(openid, "13812345678")
    assert "什么时间方便" in await wx.say(openid, "会电脑，会理发")
    assert "哪些方向" in await wx.say(openid, "周末上午")
    assert "可以多选" in await wx.say(openid, "嗯嗯")  # nothing recognisable: re-asked
    assert "党员" in await wx.say(openid, "1 3")
    assert "同意吗" in await wx.say(openid, "是")
    summary = await wx.say(openid, "同意")
    assert "请核对" in summary and "助老、巡逻" in summary and "王芳" in summary
    done = await wx.say(openid, "1")
    assert "感谢您报名" in done and "20261123-0001" in done
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "volunteer_signup" and ticket.fields["areas"] == ["助老", "巡逻"]
    assert ticket.fields["party_member"] is True
    [record] = await volunteers_of(services, openid)
    assert record.status == "pending" and record.ticket_id == ticket.id and record.consent
    assert record.skills == "会电脑，会理发" and record.availability == "周末上午" and record.party_member


async def test_prefilled_opening_and_no_consent_keeps_nothing(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "姓名" in await wx.say(openid, "我是党员，想报名志愿者参加巡逻和助老")
    await wx.say(openid, "李强")
    await wx.say(openid, "13912345678")
    await wx.say(openid, "跳过")
    reply = await wx.say(openid, "晚上")
    assert "同意吗" in reply  # areas and party membership came with the opening
    summary = await wx.say(openid, "不同意")
    assert "助老、巡逻" in summary
    done = await wx.say(openid, "确认")
    assert "不会保存" in done
    assert await tickets_of(services, openid) == []
    assert await volunteers_of(services, openid) == []


async def test_the_reply_names_the_owner_by_role(wx: WeChat) -> None:
    lines = ["我想报名当志愿者", "李明", "13800138006", "会修电器", "周末", "1 3", "是", "同意", "确认"]
    reply = ""
    for line in lines:
        reply = await wx.say("oVolunteerRole", line)
    assert "工单号" in reply and "志愿服务负责人" in reply and "网格员" not in reply


def test_any_area_is_every_area() -> None:
    """都可以 / 全部 where several areas may be picked: all of them; numbers and names as before."""
    from datetime import datetime

    from bot.flows.base import Answer
    from bot.flows.volunteer import AREAS, areas
    from bot.inbound import Inbound

    def read(text: str) -> list[str]:
        inbound = Inbound(openid="o1", msg_type="text", text=text)
        return areas(Answer(text=text, inbound=inbound, now=datetime(2026, 11, 24, 9, 0)))

    every = [c.value for c in AREAS]
    assert read("都可以") == read("全部") == read("哪个都行") == every and len(every) > 3
    assert read("1 3") == read("助老和巡逻") == ["助老", "巡逻"]


async def test_a_name_said_in_the_opening_is_not_asked_again(wx: WeChat) -> None:
    reply = await wx.say("o" + uuid.uuid4().hex[:20], "我想报名当志愿者 我叫张国强 电话13600008888 以前是电工 平时都有空")
    assert "怎么称呼" not in reply and "姓名" not in reply and "特长" in reply


async def test_someone_elses_phone_in_the_opening_is_not_the_volunteers(wx: WeChat, services: Services) -> None:
    """我老伴也想报 她手机139…: that number was kept as this volunteer's phone. A number said to be
    someone else's is not taken: the phone is asked; one's own is not asked again."""
    openid = oid()
    assert "姓名" in await wx.say(openid, "我想报名志愿者 我老伴也想报 她手机13900001111")
    assert "联系电话" in await wx.say(openid, "王芳")
    assert "特长" in await wx.say(openid, "13812345678")
    own = oid()
    await wx.say(own, "我想报名志愿者 我的手机13900002222")
    assert "特长" in await wx.say(own, "李强")


async def sign_up(wx: WeChat, openid: str, areas: str = "1 3") -> str:
    """A whole signup, answering whatever is asked."""
    answers = {"请核对": "确认", "同意吗": "同意", "姓名": "王芳", "联系电话": "13812345678", "特长": "会理发",
               "什么时间方便": "周末", "哪些方向": areas, "党员": "否"}
    return await answer_each(wx, openid, "我想当志愿者", answers)


async def test_a_second_signup_updates_the_record_and_makes_no_second_ticket(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "感谢您报名" in await sign_up(wx, openid, "1 3")
    again = await sign_up(wx, openid, "4")  # told the record, not the questionnaire again
    assert "已经登记为社区志愿者" in again and "助老、巡逻" in again and "感谢您报名" not in again, again
    added = await wx.say(openid, "加方向 文化")
    assert "助老、巡逻、文化" in added, added
    [ticket] = await tickets_of(services, openid)  # the coordinator's one ticket
    [record] = await volunteers_of(services, openid)
    assert record.areas == ["助老", "巡逻", "文化"] and record.ticket_id == ticket.id
    async with services.sessions() as session:
        notes = [e.note for e in await events_of(session, ticket) if e.action == "resident_wrote"]
        assert len(notes) == 1 and "文化" in notes[0]


async def test_the_name_given_is_kept_so_party_registration_does_not_ask_it(wx: WeChat, services: Services) -> None:
    openid = oid()
    await sign_up(wx, openid)
    assert (await resident(services, openid)).name == "王芳"  # type: ignore[union-attr]
    async with services.sessions.begin() as session:  # say the coordinator turned it down
        await session.execute(update(Volunteer).where(Volunteer.openid == openid).values(status="rejected"))
    reply = await wx.say(openid, "党员报到")
    assert "姓名" not in reply, reply


async def context_for(services: Services, session: AsyncSession, openid: str, text: str) -> Context:
    inbound = Inbound(openid=openid, msg_type="text", text=text)
    row = await dialog.arrive(session, inbound, services.clock.now())
    return Context(services, session, row, inbound, services.clock.now())


async def test_registered_volunteer_is_told_and_may_change_the_areas(wx: WeChat, services: Services) -> None:
    """registered_reply and change_areas, as the dialog calls them before the questionnaire."""
    openid = oid()
    async with services.sessions.begin() as session:
        ctx = await context_for(services, session, openid, "我想当志愿者")
        assert await registered_reply(ctx) is None and await change_areas(ctx, "改方向 文化") is None
    await sign_up(wx, openid, "1 3")
    async with services.sessions.begin() as session:
        ctx = await context_for(services, session, openid, "我想当志愿者")
        told = await registered_reply(ctx)
        assert told is not None and "王芳" in told and "助老、巡逻" in told and "待审核" in told and "改方向" in told
        assert await change_areas(ctx, "改成后天") is None
        added = await change_areas(ctx, "加方向 文化")
        assert added is not None and "助老、巡逻、文化" in added
        replaced = await change_areas(ctx, "把方向改成环境和医疗")
        assert replaced is not None and "环境、医疗" in replaced
    [record] = await volunteers_of(services, openid)
    assert record.areas == ["环境", "医疗"]
    [ticket] = await tickets_of(services, openid)
    async with services.sessions() as session:
        notes = [e.note for e in await events_of(session, ticket) if e.action == "resident_wrote"]
        assert len(notes) == 2


async def test_a_change_of_areas_at_night_reaches_the_coordinator_in_the_morning(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """改方向 at 21:30 (quiet hours 21:00-08:00): the record changes at once, the coordinator's
    notice waits for 08:00."""
    openid = oid()
    await sign_up(wx, openid, "1 3")
    clock.set(datetime(2026, 11, 23, 13, 30, tzinfo=timezone.utc))
    assert "环境" in await wx.say(openid, "改方向 环境")
    [record] = await volunteers_of(services, openid)
    assert record.areas == ["环境"]
    [told] = [o for o in await outbox_rows(services, "wecom", "zhouvol") if o.payload["msgtype"] == "text"]
    assert "环境" in told.payload["text"]
    assert told.next_attempt_at == datetime(2026, 11, 24, 0, 0, tzinfo=timezone.utc) and not told.urgent


async def test_a_yes_or_no_is_no_volunteers_name(wx: WeChat, services: Services) -> None:
    """是 (or 不是) answered to 姓名 — typed for the question before, or twice — was kept as the
    volunteer's name and sent to the coordinator; it is re-asked with the hint."""
    openid = oid()
    assert "姓名" in await wx.say(openid, "4")
    for said in ("是", "不是", "好的"):
        again = await wx.say(openid, said)
        assert "请告诉我您的姓名" in again and "联系电话" not in again, again
    assert "联系电话" in await wx.say(openid, "王芳")


@pytest.mark.parametrize("leaving", ["我不想去了", "算了不报了", "不参加了"])
async def test_leaving_words_at_a_question_leave_the_signup(wx: WeChat, services: Services, leaving: str) -> None:
    """我不想去了 / 算了不报了 at 您一般什么时间方便参加活动 was kept as the availability and the
    questions went on: they leave the registration as 取消 does, with nothing kept."""
    openid = oid()
    assert "姓名" in await wx.say(openid, "我想当志愿者")
    await wx.say(openid, "王秀兰")
    await wx.say(openid, "13812345678")
    assert "什么时间方便" in await wx.say(openid, "会理发")
    told = await wx.say(openid, leaving)
    assert "已取消" in told and "哪些方向" not in told, told
    assert "姓名" in await wx.say(openid, "我想当志愿者")  # a fresh start, nothing kept
    assert await volunteers_of(services, openid) == [] and await tickets_of(services, openid) == []


async def test_skills_and_free_time_said_at_the_phone_question_are_kept(wx: WeChat, services: Services) -> None:
    """会修电器 也能陪老人聊天 and 周末都有空 at 请留一个联系电话 were refused with the phone's hint
    and lost: each is kept for its own question (先记下了), which is then not asked, and the phone
    asked again."""
    openid = oid()
    assert "姓名" in await wx.say(openid, "我想当志愿者")
    assert "联系电话" in await wx.say(openid, "王秀兰")
    told = await wx.say(openid, "会修电器 也能陪老人聊天")
    assert "特长先记下了：会修电器，也能陪老人聊天" in told and "联系电话" in told, told
    told = await wx.say(openid, "周末都有空")
    assert "方便的时间先记下了：周末都有空" in told and "联系电话" in told, told
    asked = await wx.say(openid, "13812345678")
    assert "哪些方向" in asked and "特长" not in asked and "什么时间方便" not in asked, asked
    for said in ("1", "否", "同意", "确认"):
        await wx.say(openid, said)
    [record] = await volunteers_of(services, openid)
    assert record.skills == "会修电器，也能陪老人聊天" and record.availability == "周末都有空"
    assert record.phone == "13812345678" and record.name == "王秀兰"


async def test_skills_and_free_time_in_one_answer_at_the_skills_question(wx: WeChat, services: Services) -> None:
    """会修电器 周末有空 at 您有什么特长 was kept whole as the skills, and the free time asked next as
    if not said. Each part goes to its own question, and the areas are asked next."""
    openid = oid()
    assert "姓名" in await wx.say(openid, "我想当志愿者")
    await wx.say(openid, "王建华")
    assert "特长" in await wx.say(openid, "13655556666")
    told = await wx.say(openid, "会修电器 周末有空")
    assert "特长先记下了：会修电器" in told and "方便的时间先记下了：周末有空" in told, told
    assert "哪些方向" in told and "什么时间方便" not in told, told
    for said in ("1", "否", "同意", "确认"):
        await wx.say(openid, said)
    [record] = await volunteers_of(services, openid)
    assert record.skills == "会修电器" and record.availability == "周末有空"


async def test_what_is_neither_at_the_phone_question_still_gets_the_phone_hint(wx: WeChat) -> None:
    openid = oid()
    assert "姓名" in await wx.say(openid, "我想当志愿者")
    await wx.say(openid, "王秀兰")
    told = await wx.say(openid, "我不会打字")
    assert "先记下了" not in told, told


@pytest.mark.parametrize("said", ["确认", "好的", "可以"])
async def test_a_confirmation_is_no_skill(wx: WeChat, services: Services, said: str) -> None:
    """确认 at 您有什么特长 was kept as the skills: a confirmation or yes is re-asked with a hint."""
    openid = oid()
    assert "姓名" in await wx.say(openid, "我想当志愿者")
    await wx.say(openid, "王秀兰")
    assert "特长" in await wx.say(openid, "13812345678")
    again = await wx.say(openid, said)
    assert "请说说您会做什么" in again and "什么时间方便" not in again, again
    assert "什么时间方便" in await wx.say(openid, "没有")


async def test_free_time_said_at_the_skills_question_is_kept_for_its_own(wx: WeChat, services: Services) -> None:
    """周末都有空 at 您有什么特长 was kept as the skills, and 什么时间方便 was asked next as if never
    said: it is the free time (先记下了), the skills asked again, the time question then not asked."""
    openid = oid()
    assert "姓名" in await wx.say(openid, "我想当志愿者")
    await wx.say(openid, "王秀兰")
    assert "特长" in await wx.say(openid, "13812345678")
    told = await wx.say(openid, "周末都有空")
    assert "方便的时间先记下了：周末都有空" in told and "特长" in told, told
    asked = await wx.say(openid, "会修电器")
    assert "哪些方向" in asked and "什么时间方便" not in asked, asked
    for said in ("1", "否", "同意", "确认"):
        await wx.say(openid, said)
    [record] = await volunteers_of(services, openid)
    assert record.skills == "会修电器" and record.availability == "周末都有空"


@pytest.mark.parametrize(("said", "kept"), [("确认", True), ("确定", True), ("不确认", False)])
async def test_confirm_at_the_consent_question_is_consent(wx: WeChat, services: Services, said: str, kept: bool) -> None:
    """确认 where the consent is asked (as at the summary that follows) is 同意, not 请回复选项."""
    openid = oid()
    for line in ("我想报名当志愿者", "张三", "13612345678", "会修电器", "周末", "1", "否"):
        await wx.say(openid, line)
    summary = await wx.say(openid, said)
    assert "请核对" in summary and "请回复选项" not in summary
    assert ("同意保存信息：同意" in summary) is kept
    await wx.say(openid, "确认")
    assert bool(await volunteers_of(services, openid)) is kept


@pytest.mark.parametrize("said", ["都行", "都可以", "都行吧", "我都可以啊", "都行 看你们安排", "哪个都可以", "我都行 听你们安排"])
async def test_any_area_said_loosely_is_every_area(wx: WeChat, services: Services, said: str) -> None:
    """都行吧 / 我都可以啊 / 都行 看你们安排 at 您想参加哪些方向 were asked 请回复方向前面的数字 again and
    again: every area now, as a bare 都可以 is; 除了法律其他都行 is every area but 法律 (it was 法律 alone)."""
    from bot.flows.volunteer import AREAS

    openid = oid()
    summary = await sign_up(wx, openid, areas=said)
    assert "请回复方向前面的数字" not in summary, summary
    [ticket] = await tickets_of(services, openid)
    assert ticket.fields["areas"] == [c.value for c in AREAS], ticket.fields


async def test_all_but_one_area_is_not_every_area(wx: WeChat) -> None:
    openid = oid()
    reply = await wx.say(openid, "我想当志愿者")
    for said in ("王芳", "13812345678", "会理发", "周末"):
        reply = await wx.say(openid, said)
    assert "哪些方向" in reply
    assert "党员" in await wx.say(openid, "除了法律其他都行")
    summary = await wx.say(openid, "否")
    while "请核对" not in summary:
        summary = await wx.say(openid, "同意")
    assert "法律" not in summary and "助老" in summary and "医疗" in summary, summary
