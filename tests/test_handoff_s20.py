"""Hand-offs and emergencies, through /wechat on both backends: a waiting hand-off an emergency
makes urgent says what the emergency is in the staff group's 【紧急】 post (事项 read 居民要求人工服务);
an emergency told while the resident is in another request (报事报修's first question, a booking,
a volunteer signup) reaches the waiting hand-off too; 人工 said after an urgent report was made
keeps the emergency on the hand-off (fields.emergency, urgent); a hand-off given to an owner takes
the limit of the job it became, not always 一般 · 7天."""

from __future__ import annotations

from datetime import timezone

import pytest

from bot.clock import FakeClock
from bot.schedule import run_due
from bot.services import Services
from bot.staff_actions import staff_transition
from storage.models import Ticket
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.test_handoff_privacy_place import handoff_of
from tests.test_handoff_urgent_waiting import FALL, oid, posts_on
from tests.wecom_driver import outbox_rows

def matter(post: str) -> str:
    [line] = [line for line in post.split("\n") if "事项：" in line]
    return line


async def test_the_urgent_post_of_a_waiting_handoff_names_the_emergency_as_its_matter(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    await wx.say(openid, "我要转人工")
    await wx.say(openid, FALL)
    handoff = await handoff_of(services, openid)
    post = (await posts_on(services, handoff))[-1]
    assert post.startswith("### 【紧急】"), post
    assert FALL in matter(post) and "急病" in matter(post) and "人工服务" not in matter(post), post
    assert post.count(FALL) == 1, post  # 原因 does not say it again
    assert handoff.summary.startswith("【紧急】") and FALL in handoff.summary


@pytest.mark.parametrize("steps", [
    ["1", FALL],  # at 报事报修's first question (which kind of problem)
    ["3", "助餐", "快来人啊"],  # a cry for help in the middle of a booking
    ["4", "快来人啊"],  # … of a volunteer signup
])
async def test_an_emergency_told_in_another_request_reaches_the_waiting_handoff(
    wx: WeChat, services: Services, steps: list[str]
) -> None:
    openid = oid()
    await wx.say(openid, "人工")
    for text in steps:
        await wx.say(openid, text)
    handoff = await handoff_of(services, openid)
    assert handoff.urgency == "urgent"
    assert handoff.fields["emergency"]["said"] == steps[-1], handoff.fields
    post = (await posts_on(services, handoff))[-1]
    assert post.startswith("### 【紧急】") and steps[-1] in matter(post), post


async def test_a_handoff_asked_for_after_an_urgent_report_keeps_the_emergency(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    await wx.say(openid, FALL)
    await wx.say(openid, "3号楼2单元502")
    await wx.say(openid, "13344445555")
    [report] = await tickets_of(services, openid)
    assert report.urgency == "urgent"
    reply = await wx.say(openid, "人工")
    handoff = await handoff_of(services, openid)
    assert handoff.urgency == "urgent"
    assert handoff.fields["emergency"] == {"category": "其他", "said": FALL, "advice": "medical"}
    assert "120" in reply and "上班后" not in reply, reply
    [post] = await posts_on(services, handoff)
    assert post.startswith("### 【紧急】") and FALL in matter(post), post


async def test_a_handoff_after_an_ordinary_report_stays_ordinary(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "3号楼2单元楼道灯坏了")
    handoff_reply = await wx.say(openid, "人工")
    assert "人工服务" in handoff_reply
    handoff = await handoff_of(services, openid)
    assert handoff.urgency == "normal" and "emergency" not in handoff.fields


def _hours_left(services: Services, ticket: Ticket) -> float:
    due, now = ticket.due_at, services.clock.now()
    assert due is not None
    if due.tzinfo is None:
        due = due.replace(tzinfo=timezone.utc)
    return round((due - now).total_seconds() / 3600, 1)


@pytest.mark.parametrize(("said", "owner", "hours", "label"), [
    ("我家暖气不热 3号楼2单元", "wangwei", 24, "较急（24小时）"),  # heating: a 24-hour job, as its report's
    (FALL, "wangwei", 2, "紧急（2小时）"),  # an emergency: 2 hours
    ("3号楼 家里老人和邻居吵起来了", "chenmediator", 360, "复杂（15天）"),  # a dispute: mediation's 15 days
    ("我想问问低保怎么办", "wangwei", 168, "一般（7天）"),  # nothing more: general, 7 days
])
async def test_a_handoff_given_to_an_owner_takes_the_limit_of_the_job_it_became(
    wx: WeChat, services: Services, said: str, owner: str, hours: int, label: str
) -> None:
    openid = oid()
    await wx.say(openid, "人工")
    await wx.say(openid, said)
    handoff = await handoff_of(services, openid)
    await staff_transition(services, handoff.number, "assign", "liu", assignee=owner)
    handoff = await handoff_of(services, openid)
    assert _hours_left(services, handoff) == hours, (handoff.urgency, handoff.fields.get("category"))
    [card] = [o.payload for o in await outbox_rows(services, "wecom", owner) if o.payload.get("msgtype") == "textcard"]
    assert label in card["description"], card


async def test_a_handoff_given_on_again_keeps_its_first_limit(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "人工")
    await wx.say(openid, "我家暖气不热 3号楼2单元")
    handoff = await handoff_of(services, openid)
    await staff_transition(services, handoff.number, "assign", "liu", assignee="wangwei")
    first = (await handoff_of(services, openid)).due_at
    assert isinstance(services.clock, FakeClock)
    services.clock.advance(hours=1)
    await staff_transition(services, handoff.number, "assign", "liu", assignee="chenmediator")
    handoff = await handoff_of(services, openid)
    assert handoff.due_at == first and handoff.urgency == "utility"


async def test_a_residents_status_line_says_what_they_asked_not_the_staffs_words(
    wx: WeChat, services: Services
) -> None:
    """我的工单 listed a hand-off as 人工服务｜已转服务中心处理｜居民要求人工服务｜居民说：… — staff's words."""
    openid = oid()
    await wx.say(openid, "我想问问低保怎么办")
    await wx.say(openid, "人工")
    mine = await wx.say(openid, "我的工单")
    assert "人工服务｜已转服务中心处理｜我想问问低保怎么办" in mine and "居民要求" not in mine, mine
    plain = oid()
    await wx.say(plain, "人工")
    mine = await wx.say(plain, "我的工单")
    assert "已转服务中心处理｜您要求的人工服务" in mine and "居民要求" not in mine, mine
    fell = oid()
    await wx.say(fell, "人工")
    await wx.say(fell, FALL)
    handoff = await handoff_of(services, fell)
    line = await wx.say(fell, f"{handoff.number}怎么样了")
    assert f"已转服务中心处理｜{FALL}" in line and "【紧急】" not in line, line


async def test_a_handoffs_survey_names_what_the_resident_asked(wx: WeChat, services: Services) -> None:
    openid = oid()
    await wx.say(openid, "我想问问低保怎么办")
    await wx.say(openid, "人工")
    handoff = await handoff_of(services, openid)
    await staff_transition(services, handoff.number, "resolve", "liu", note="已电话告知低保申请材料")
    assert isinstance(services.clock, FakeClock)
    services.clock.advance(seconds=services.settings.survey_delay_s)
    await run_due(services)
    [sent] = [str(o.payload) for o in await outbox_rows(services, "wechat", openid) if "回访" in str(o.payload)]
    assert "人工服务：我想问问低保怎么办" in sent and "居民要求" not in sent, sent
