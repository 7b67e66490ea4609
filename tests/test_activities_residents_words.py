"""Volunteer activities in residents' own words, through /wechat on both backends: 有什么志愿活动
lists them (it began the volunteer registration), and 楼道清洁我不去了 / 退出楼道清洁 withdraw the
signup they name (they were read as a 助洁 booking: 清洁 is one of its words)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from bot.activities import load_activities
from bot.clock import FakeClock
from bot.services import Services
from storage.models import ActivitySignup, Ticket
from tests.conftest import WeChat
from tests.flow_helpers import count, dialog_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


@pytest.mark.parametrize("asked", ["有什么志愿活动", "最近有啥活动", "志愿活动有哪些", "有活动吗"])
async def test_asking_what_activities_there_are_lists_them(wx: WeChat, services: Services, asked: str) -> None:
    await load_activities(services)
    openid = oid()
    listed = await wx.say(openid, asked)
    assert "近期志愿活动" in listed and "楼道清洁志愿行动" in listed and "姓名" not in listed, listed
    assert await dialog_of(services, openid) is None  # no registration begun
    assert "报名成功" in await wx.say(openid, "报名 1")


async def _status(services: Services, openid: str) -> list[str]:
    async with services.sessions() as session:
        return list(await session.scalars(select(ActivitySignup.status).where(ActivitySignup.openid == openid)))


@pytest.mark.parametrize("dropped", ["楼道清洁我不去了", "退出楼道清洁", "不参加楼道清洁了", "楼道清洁活动去不了了",
                                     "楼道那个我去不了了", "楼道清洁的那个不去了"])
async def test_a_signup_named_with_a_drop_word_is_withdrawn(wx: WeChat, services: Services, dropped: str) -> None:
    await load_activities(services)
    openid = oid()
    assert "报名成功" in await wx.say(openid, "报名 楼道清洁")
    told = await wx.say(openid, dropped)
    assert "已为您取消“楼道清洁志愿行动”的报名" in told and "预约" not in told, told
    assert await _status(services, openid) == ["cancelled"]
    assert await dialog_of(services, openid) is None and await count(services, Ticket) == 0


async def test_a_drop_word_naming_no_signup_of_theirs_is_what_it_was(wx: WeChat, services: Services) -> None:
    await load_activities(services)
    openid = oid()
    told = await wx.say(openid, "楼道清洁我不去了")  # not signed up: the booking's answer, as before
    assert "没有待进行的养老服务预约" in told, told


@pytest.mark.parametrize("dropped", ["我不想去了", "不参加了", "算了不报了", "那我还是不去了吧", "不报了"])
async def test_a_bare_drop_right_after_signing_up_withdraws_that_signup(
    wx: WeChat, services: Services, dropped: str
) -> None:
    """报名 1, then 我不想去了 before any reminder was sent: 没太明白 and the menu. It withdraws the
    signup just made."""
    await load_activities(services)
    openid = oid()
    assert "报名成功" in await wx.say(openid, "报名 1")
    told = await wx.say(openid, dropped)
    assert "已为您取消“楼道清洁志愿行动”的报名" in told and "报名 楼道清洁志愿行动" in told, told
    assert await _status(services, openid) == ["cancelled"]


async def test_a_bare_drop_after_two_signups_asks_which(wx: WeChat, services: Services) -> None:
    await load_activities(services)
    openid = oid()
    for n in ("1", "2"):
        assert "报名成功" in await wx.say(openid, f"报名 {n}")
    told = await wx.say(openid, "不参加了")
    assert "想取消哪一个" in told and "楼道清洁志愿行动" in told and "敬老院探访" in told, told
    assert await _status(services, openid) == ["signed", "signed"]
    assert "已为您取消“敬老院探访”的报名" in await wx.say(openid, "取消报名 敬老院探访")


async def test_a_bare_drop_long_after_signing_up_withdraws_nothing(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """Hours later, with no reminder, 我不想去了 may be about anything: no signup is dropped unasked."""
    await load_activities(services)
    openid = oid()
    assert "报名成功" in await wx.say(openid, "报名 1")
    clock.advance(hours=3)
    assert "已为您取消" not in await wx.say(openid, "我不想去了")
    assert await _status(services, openid) == ["signed"]


@pytest.mark.parametrize("asked", ["我报名了啥活动", "我参加了啥活动"])
async def test_asking_what_was_signed_up_for_in_plain_words_lists_it(wx: WeChat, services: Services, asked: str) -> None:
    """我报名了啥活动 was 没太明白 and the menu (only 哪些 / 什么 / 几个 were read)."""
    await load_activities(services)
    openid = oid()
    assert "报名成功" in await wx.say(openid, "报名 敬老院探访")
    told = await wx.say(openid, asked)
    assert "您报名的志愿活动" in told and "敬老院探访" in told, told


async def test_an_activitys_time_asked_by_name_is_answered(wx: WeChat, services: Services) -> None:
    """写春联几点开始 from a resident signed up for it was 没太明白 and the menu. Its time and place
    are said, with whether they are signed up (else how to)."""
    await load_activities(services)
    openid = oid()
    assert "报名成功" in await wx.say(openid, "报名 写春联")
    told = await wx.say(openid, "写春联几点开始")
    assert "“迎新春写春联”：1月30日 09:00–12:00，地点：社区党群服务中心二楼" in told and "您已经报名了" in told, told
    told = await wx.say(openid, "敬老院探访在哪集合")
    assert "地点：望湖社区日间照料中心" in told and "回复“报名 敬老院探访”" in told, told
    # 那个 after a name cut short (敬老院那个几点开始) was taken into the name and not found: 没太明白
    for asked in ("敬老院那个几点开始", "写春联的那个在哪集合"):
        told = await wx.say(openid, asked)
        assert "没太明白" not in told and ("敬老院探访" in told or "迎新春写春联" in told), told
    assert await dialog_of(services, openid) is None and await count(services, Ticket) == 0


async def test_a_number_or_a_going_right_after_the_list_picks_the_activity(wx: WeChat, services: Services) -> None:
    """After 最近社区有什么活动 listed them numbered, 4 started the menu's 4 (志愿者报名: 请问您的姓名？)
    and 我想去写春联 我和我老伴两个人 got 没太明白. Right after the list, a bare number is that
    activity and 想去 X is its signup; one who comes along is told each signs up on their own WeChat."""
    await load_activities(services)
    picker, goer, later = "o" + uuid.uuid4().hex[:20], "o" + uuid.uuid4().hex[:20], "o" + uuid.uuid4().hex[:20]
    listing = await wx.say(picker, "最近社区有什么活动")
    assert "4. 迎新春写春联" in listing, listing
    told = await wx.say(picker, "4")
    assert "报名成功" in told and "迎新春写春联" in told, told
    assert "您的姓名" in await wx.say(picker, "4")  # the list is answered once: then the menu's 4 again
    await wx.say(goer, "最近社区有什么活动")
    told = await wx.say(goer, "我想去写春联 我和我老伴两个人")
    assert "报名成功" in told and "迎新春写春联" in told and "每个微信号报名一人" in told, told
    assert "报名成功" not in await wx.say(later, "我想去写春联")  # no list just shown: not taken for a signup
    assert "报名成功" not in await wx.say(later, "9")


async def test_what_i_signed_up_for_asked_with_sha_lists_the_signups(wx: WeChat, services: Services) -> None:
    """我报名了啥 got 没太明白 and the menu (我报名了哪些活动 was read, 啥 without 活动 was not), and in
    the middle of the volunteer registration it was refused as the areas' answer. It lists the
    signups, there and alone; 我报了啥 (a report, perhaps) is not read as it."""
    await load_activities(services)
    openid = oid()
    await wx.say(openid, "近期活动")
    assert "报名成功" in await wx.say(openid, "报名 2")
    listed = await wx.say(openid, "我报名了啥")
    assert "敬老院探访" in listed and "没太明白" not in listed, listed
    assert "姓名" in await wx.say(openid, "我想当志愿者")
    listed = await wx.say(openid, "我报名了啥")
    assert "敬老院探访" in listed and "姓名" in listed, listed
    assert "敬老院探访" not in await wx.say(oid(), "我报了啥")


async def _reminded_of_cleaning(wx: WeChat, services: Services, clock: FakeClock) -> str:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bot.schedule import run_due

    await load_activities(services)  # 楼道清洁 on 12-05 09:00
    openid = oid()
    clock.set(datetime(2026, 12, 3, 20, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert "报名成功" in await wx.say(openid, "报名 楼道清洁")
    clock.set(datetime(2026, 12, 4, 19, 1, tzinfo=ZoneInfo("Asia/Shanghai")))  # the evening-before reminder
    await run_due(services)
    return openid


@pytest.mark.parametrize("asked", ["几点开始来着", "在哪集合"])
async def test_when_and_where_asked_after_a_reminder_name_the_activity(
    wx: WeChat, services: Services, clock: FakeClock, asked: str
) -> None:
    """几点开始来着 / 在哪集合 to an activity's reminder got 没太明白 and the menu (only 楼道清洁几点开始,
    naming it, was read). Naming none, they are about the activity reminded of."""
    openid = await _reminded_of_cleaning(wx, services, clock)
    told = await wx.say(openid, asked)
    assert "“楼道清洁志愿行动”：12月5日 09:00–11:00，地点：望湖社区3号楼前广场集合" in told, told
    assert "您已经报名了" in told


async def test_a_new_time_asked_for_an_activity_says_its_time_is_set(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """改到下午 to an activity's reminder was told 您现在没有待进行的养老服务预约 — as if the reminder had
    been about a booking. The activity's time stays, and how to withdraw is said; the signup stands."""
    openid = await _reminded_of_cleaning(wx, services, clock)
    told = await wx.say(openid, "改到下午")
    assert "“楼道清洁志愿行动”的时间是定好的（12月5日 09:00–11:00）" in told and "不去了" in told, told
    assert "养老服务预约" not in told
    assert await _status(services, openid) == ["signed"]
    assert "已为您取消“楼道清洁志愿行动”的报名" in await wx.say(openid, "不去了 谢谢")


async def test_my_signups_name_a_volunteer_registration_under_review(wx: WeChat, services: Services) -> None:
    """我报名了什么 minutes after registering as a volunteer (党员报到) answered only 您目前没有报名的志愿
    活动, as if the registration were lost: the registration under review is named first."""
    await load_activities(services)
    openid = oid()
    assert "没有报名的志愿活动" in await wx.say(openid, "我报名了什么")
    for answer in ("我是党员 来报到", "刘建华", "13500002222", "跳过", "周末", "1 2", "同意"):
        await wx.say(openid, answer)
    assert "已为您登记" in await wx.say(openid, "确认")
    told = await wx.say(openid, "我报名了什么")
    assert "您的志愿者登记（工单 20261123-0001）已提交" in told and "没有报名的志愿活动" in told, told
