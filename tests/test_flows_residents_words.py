"""Residents' words the classifier used to misread, through /wechat on both backends: 啥时候来修电梯
asks after the lift's report (or is that report when there is none), a thing named with what is wrong
with it is not asked its category, and 睡不着 alone reaches a person while noise that keeps one awake
is a complaint."""

from __future__ import annotations

import uuid

from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import dialog_of, tickets_of

CATEGORY_ASKED = "请问是哪一类问题"


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def report_the_lift(wx: WeChat, openid: str) -> str:
    """The lift reported in full: the reply that gives the ticket's number."""
    reply = await wx.say(openid, "5号楼2单元电梯坏了")
    for answer in ("跳过", "13800138005", "否", "确认"):
        if "工单号" in reply:
            break
        reply = await wx.say(openid, answer)
    assert "工单号" in reply, reply
    return reply


async def test_when_the_lift_repair_comes_without_a_report_is_the_report(wx: WeChat, services: Services) -> None:
    openid = oid()
    reply = await wx.say(openid, "啥时候来修电梯")
    assert CATEGORY_ASKED not in reply and "没太明白" not in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "complaint"
    assert state.slots.get("category") == "电梯"


async def test_when_the_lift_repair_comes_after_reporting_it_is_its_status(wx: WeChat, services: Services) -> None:
    openid = oid()
    await report_the_lift(wx, openid)
    [ticket] = await tickets_of(services, openid)
    reply = await wx.say(openid, "啥时候来修电梯")
    assert ticket.number in reply, reply
    assert await dialog_of(services, openid) is None  # no second report begun
    assert len(await tickets_of(services, openid)) == 1


async def test_a_report_of_another_kind_open_does_not_answer_for_the_lift(wx: WeChat, services: Services) -> None:
    openid = oid()
    await report_the_lift(wx, openid)
    reply = await wx.say(openid, "路灯什么时候来修")
    assert CATEGORY_ASKED not in reply, reply
    state = await dialog_of(services, openid)
    assert state is not None and state.flow == "complaint" and state.slots.get("category") == "照明"


async def test_things_named_with_what_is_wrong_are_not_asked_the_category(wx: WeChat, services: Services) -> None:
    for said, category in (("马桶堵了", "水电气暖"), ("漏雨", "物业服务"), ("楼上往下滴水", "水电气暖"),
                           ("窗户漏风", "物业服务"), ("俺家屋顶漏水了", "物业服务")):
        openid = oid()
        reply = await wx.say(openid, said)
        assert CATEGORY_ASKED not in reply and "没太明白" not in reply, (said, reply)
        state = await dialog_of(services, openid)
        assert state is not None and state.flow == "complaint", said
        assert state.slots.get("category") == category, (said, state.slots)


async def test_cannot_sleep_alone_reaches_a_person_noise_that_keeps_awake_is_a_complaint(
        wx: WeChat, services: Services) -> None:
    openid = oid()
    reply = await wx.say(openid, "晚上睡不着了")
    assert "人工服务" in reply and CATEGORY_ASKED not in reply, reply
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff"
    noisy = oid()
    reply = await wx.say(noisy, "楼上吵得睡不着")
    assert CATEGORY_ASKED not in reply, reply
    state = await dialog_of(services, noisy)
    assert state is not None and state.flow == "complaint" and state.slots.get("category") == "噪音"


async def test_upkeep_of_the_old_and_a_claim_between_neighbours_are_mediations(
        wx: WeChat, services: Services) -> None:
    for said in ("俺儿子不给俺养老费 咋办", "楼下说俺家漏水淹了他家 要俺赔 俺不认"):
        openid = oid()
        reply = await wx.say(openid, said)
        assert "没太明白" not in reply, (said, reply)
        state = await dialog_of(services, openid)
        assert state is not None and state.flow == "mediation", (said, state, reply)
