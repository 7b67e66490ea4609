"""志愿者报名 driven through /wechat on both backends (plaintext and safe mode)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from bot.services import Services
from storage.models import Volunteer
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of


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
    assert "可以多选" in await wx.say(openid, "随便")  # nothing recognisable: re-asked
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
