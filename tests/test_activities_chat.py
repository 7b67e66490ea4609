"""Residents reach volunteer activities by chat: 近期活动, 报名 <activity>, 取消报名 <activity>;
other 报名 requests (助餐, 志愿者) keep going to their flows."""

from __future__ import annotations

from sqlalchemy import select

from bot.activities import load_activities
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
