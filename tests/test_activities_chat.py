"""Residents reach volunteer activities by chat: 近期活动, 报名 <activity>, 取消报名 <activity>;
other 报名 requests (助餐, 志愿者) keep going to their flows."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot import dialog
from bot.activities import load_activities, request
from bot.clock import FakeClock
from bot.flows.base import Context
from bot.inbound import Inbound
from bot.services import Services
from storage.models import ActivitySignup, Reminder
from tests.conftest import WeChat


async def test_list_sign_up_and_cancel(wx: WeChat, services: Services) -> None:
    await load_activities(services)
    listing = await wx.say("oAct1", "近期活动")
    assert "楼道清洁志愿行动" in listing and "报名" in listing

    signed = await wx.say("oAct1", "报名 楼道清洁")
    assert "报名成功" in signed and "楼道清洁志愿行动" in signed
    assert "已经报过名" in await wx.say("oAct1", "报名楼道清洁")
    async with services.sessions() as session:
        signup = await session.scalar(select(ActivitySignup).where(ActivitySignup.openid == "oAct1"))
        assert signup is not None and signup.status == "signed"
        planned = list(await session.scalars(select(Reminder).where(Reminder.target == "oAct1")))
        assert {r.state for r in planned} == {"pending"} and planned

    assert "已为您取消" in await wx.say("oAct1", "取消报名 楼道清洁")
    async with services.sessions() as session:
        states = {r.state for r in await session.scalars(select(Reminder).where(Reminder.target == "oAct1"))}
        assert states == {"dropped"}


async def test_other_signups_are_not_activities(wx: WeChat, services: Services) -> None:
    await load_activities(services)
    reply = await wx.say("oAct2", "报名志愿者")
    assert "报名成功" not in reply and "没有找到" not in reply
    async with services.sessions() as session:
        assert await session.scalar(select(ActivitySignup).where(ActivitySignup.openid == "oAct2")) is None


async def test_an_unknown_activity_is_said_so_and_services_stay_services(wx: WeChat, services: Services) -> None:
    """报名 广场舞比赛 (no such activity) started an elderly-service booking through its 舞/清洁-like
    words; it is now told there is none, with the ones there are. 报名助餐 stays a booking."""
    await load_activities(services)
    reply = await wx.say("oAct3", "报名 广场舞比赛")
    assert "没有找到“广场舞比赛”这个活动" in reply and "楼道清洁志愿行动" in reply
    assert "给谁预约" not in await wx.say("oAct4", "报名 小区大扫除")  # no elderly cleaning booking either
    assert "给谁预约" in await wx.say("oAct5", "报名助餐")


async def test_activities_asked_in_the_middle_of_a_booking(wx: WeChat, services: Services) -> None:
    """有什么活动 while 给谁预约 is asked: listed, and the question asked again (before: taken as the
    person to book for)."""
    await load_activities(services)
    await wx.say("oAct6", "给家里老人订个助餐")
    reply = await wx.say("oAct6", "有什么活动")
    assert "楼道清洁志愿行动" in reply and "给谁预约" in reply
    assert "怎么称呼" in await wx.say("oAct6", "我婆婆")
    assert "给谁预约" in await wx.say("oAct7", "给家里老人订个助餐")
    assert "请说是给谁预约" in await wx.say("oAct7", "这是什么？")  # a question is no person


async def test_my_signups_asked_in_the_middle_of_the_volunteer_signup(wx: WeChat, services: Services) -> None:
    """我的报名 where the volunteer signup asks when one has time: the signups listed and the
    question asked again (before: 我的报名 was kept as the volunteer's free time, the list never said)."""
    await load_activities(services)
    assert "报名成功" in await wx.say("oAct8", "报名 楼道清洁")
    for said in ("我想当志愿者", "张国强", "13812345678"):
        await wx.say("oAct8", said)
    assert "什么时间方便" in await wx.say("oAct8", "跳过")
    reply = await wx.say("oAct8", "我的报名")
    assert "您报名的志愿活动" in reply and "楼道清洁志愿行动" in reply, reply
    assert reply.rstrip().endswith("例如“周末上午”“工作日晚上”。"), reply
    assert "哪些方向" in await wx.say("oAct8", "周末上午")


async def test_the_list_is_numbered_and_a_number_signs_up(wx: WeChat, services: Services) -> None:
    """报名 1 / 报名第二个 pick from 近期活动's numbers (before: no numbers, and 报名 1 was no activity)."""
    await load_activities(services)
    listing = await wx.say("oActNum", "近期活动")
    assert "1. 楼道清洁志愿行动" in listing and "2. 敬老院探访" in listing and "报名 1" in listing
    assert "报名成功" in (signed := await wx.say("oActNum", "报名 1")) and "楼道清洁志愿行动" in signed
    assert "敬老院探访" in await wx.say("oActNum", "报名第二个")
    assert "没有找到" in await wx.say("oActNum", "报名 9")
    info = await wx.say("oActNum", "我的信息")
    assert "活动报名：楼道清洁志愿行动" in info and "活动报名：敬老院探访" in info, info


async def test_request_lists_signups_and_joins_a_named_activity(wx: WeChat, services: Services) -> None:
    """bot.activities.request, as the dialog calls it before the classifier: 我的报名, a bare 取消报名,
    我要参加 X and X 报名 for a real X; anything else is left alone."""
    await load_activities(services)
    openid = "oActMine"

    async def said(text: str) -> str | None:
        inbound = Inbound(openid=openid, msg_type="text", text=text)
        async with services.sessions.begin() as session:
            row = await dialog.arrive(session, inbound, services.clock.now())
            return await request(Context(services, session, row, inbound, services.clock.now()), text)

    assert "没有报名" in str(await said("我的报名"))
    assert "报名成功" in str(await said("我要参加楼道清洁"))
    assert "敬老院探访" in str(await said("我想参加敬老院探访活动"))
    assert "已经报过名" in str(await said("敬老院探访 报名"))
    for asking in ("我的报名", "我报名了哪些活动", "取消报名"):
        mine = str(await said(asking))
        assert "楼道清洁志愿行动" in mine and "敬老院探访" in mine and "取消报名" in mine, mine
    for other in ("我要参加志愿服务", "我想参加", "我要参加广场舞比赛", "报名", "3号楼楼道灯坏了", "我想报名当志愿者"):
        assert await said(other) is None, other
    async with services.sessions() as session:
        rows = list(await session.scalars(select(ActivitySignup).where(ActivitySignup.openid == openid)))
        assert len(rows) == 2


async def test_a_bare_cancel_with_one_signup_cancels_it(wx: WeChat, services: Services) -> None:
    """取消报名 with only one activity signed for cancels that one (before: the list, and the name
    asked again); with none it says so; reminders of the cancelled signup are dropped."""
    await load_activities(services)
    assert "没有报名" in await wx.say("oActOne", "取消报名")
    assert "报名成功" in await wx.say("oActOne", "报名 楼道清洁")
    reply = await wx.say("oActOne", "我要取消报名")
    assert "已为您取消“楼道清洁志愿行动”的报名" in reply and "报名 楼道清洁志愿行动" in reply, reply
    async with services.sessions() as session:
        signup = await session.scalar(select(ActivitySignup).where(ActivitySignup.openid == "oActOne"))
        assert signup is not None and signup.status == "cancelled"
        states = {r.state for r in await session.scalars(select(Reminder).where(Reminder.target == "oActOne"))}
        assert states == {"dropped"}
    assert "没有报名" in await wx.say("oActOne", "取消报名")


async def test_cannot_come_said_to_an_activitys_reminder_withdraws_the_signup(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """明天去不了了, said to the evening-before reminder (如不能参加，回复“取消报名 …”), got 没太明白
    and the menu, and the organisers still counted on them. Said alone after the reminder and before
    the activity, it withdraws that signup, as 取消报名 does; with no reminder sent it is what it was."""
    from bot import schedule

    await load_activities(services)
    assert "报名成功" in await wx.say("oAct9", "报名 楼道清洁")
    assert "没太明白" in await wx.say("oAct9", "明天去不了了")  # nothing reminded yet
    clock.set(datetime(2026, 12, 4, 19, 0, tzinfo=ZoneInfo("Asia/Shanghai")))  # the evening before
    await schedule.run_due(services)
    reply = await wx.say("oAct9", "明天去不了了")
    assert "已为您取消“楼道清洁志愿行动”的报名" in reply and "报名 楼道清洁志愿行动" in reply, reply
    async with services.sessions() as session:
        signup = await session.scalar(select(ActivitySignup).where(ActivitySignup.openid == "oAct9"))
        assert signup is not None and signup.status == "cancelled"
        states = set(await session.scalars(select(Reminder.state).where(
            Reminder.target == "oAct9", Reminder.kind == "activity_thanks")))
    assert states == {"dropped"}  # no thank-you for an activity not attended
    assert "没太明白" in await wx.say("oAct9", "明天去不了了")  # nothing left to withdraw
