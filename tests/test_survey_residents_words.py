"""The satisfaction survey answered as elderly residents answer it, through /wechat on both
backends: voice recognition's 满一 for 满意."""

from __future__ import annotations

import uuid

import pytest

from bot.clock import FakeClock
from bot.flows.survey import on_scale, parse_rating
from bot.schedule import run_due
from bot.services import Services
from tests.conftest import WeChat
from tests.test_survey import DELAY, pending, resolved
from tests.wecom_driver import load_demo_roster


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_voice_heard_satisfied_is_a_rating(wx: WeChat, services: Services, clock: FakeClock) -> None:
    """满意 said to the phone came as 满一 and got 没太明白 with the menu; the survey stayed open and
    its reminder followed. It is 满意, and 不满一 水还是漏 is 不满意 with the comment."""
    await load_demo_roster(services)
    pleased, not_pleased = oid(), oid()
    numbers = {who: await resolved(services, who) for who in (pleased, not_pleased)}
    clock.advance(seconds=DELAY)
    await run_due(services)
    told = await wx.say(pleased, "满一")
    assert f"感谢您的评价（满意）！工单 {numbers[pleased]}" in told, told
    told = await wx.say(not_pleased, "不满一 水还是漏")
    assert "很抱歉没有让您满意" in told and "“水还是漏”已记录" in told, told
    assert await pending(services, pleased) == [] and await pending(services, not_pleased) == []


@pytest.mark.parametrize(("said", "label"), [("满一", "满意"), ("非常瞒意", "满意"), ("不满以", "不满意"), ("满一。", "满意")])
def test_voice_forms_of_satisfied(said: str, label: str) -> None:
    rating = parse_rating(said)
    assert rating is not None and rating.label == label and on_scale(said)


def test_a_full_year_is_no_rating() -> None:
    assert parse_rating("满一年了") is None and not on_scale("满一年了")


@pytest.mark.parametrize("said", ["嗯", "哦", "嗯嗯", "好的", "知道了"])
async def test_a_bare_acknowledgement_while_a_survey_waits_asks_it_again(
    wx: WeChat, services: Services, clock: FakeClock, said: str
) -> None:
    """嗯 / 哦 to the survey got 您好！我是社区小助手 and the menu. The survey's question again,
    briefly; before the survey went out, it is answered as before."""
    await load_demo_roster(services)
    openid = oid()
    number = await resolved(services, openid)
    assert "回复 1–5 分" not in await wx.say(openid, said)  # no survey out yet: as before
    clock.advance(seconds=DELAY)
    await run_due(services)
    told = await wx.say(openid, said)
    assert f"工单 {number}" in told and "回复 1–5 分" in told and "我可以帮您" not in told, told
    assert await pending(services, openid) == [(number, 1, "sent")]  # no rating taken from it
    assert "感谢您的评价（满意）" in await wx.say(openid, "满意")


async def test_a_bare_number_before_the_survey_went_out_is_the_menus(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """2 sent after the 已办结 push, before the survey asked for any score, reopened the job as 2 分
    (不满意) and told the staff group: the resident had picked the menu's 2 (矛盾调解). A bare number
    counts only once the survey's 1–5 went out; 不满意 / 还是不热 still count before it."""
    await load_demo_roster(services)
    openid, other = oid(), oid()
    number = await resolved(services, openid)
    told = await wx.say(openid, "2")
    assert "很抱歉没有让您满意" not in told and "和谁发生的矛盾" in told, told
    assert await pending(services, openid) == [(number, 1, "early")]
    other_number = await resolved(services, other)
    assert "很抱歉没有让您满意" in await wx.say(other, "不满意")
    assert await pending(services, other) == [(other_number, 1, "comment")]  # reopened, the reason asked
    clock.advance(seconds=DELAY)
    await run_due(services)
    assert "感谢您的评价（满意）" in await wx.say(openid, "满意")  # in the mediation's question: the scale's word
