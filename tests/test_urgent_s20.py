"""Emergencies on hand-offs, through /wechat on both backends: a hand-off given to an owner (派单)
that an emergency makes urgent takes the urgent limit (2 h) and its reminders, and its owner is
told; 人工 after an urgent report reaches the staff group without pushing the building's grid
workers the same emergency twice; an emergency hand-off's status line and survey read right."""

from __future__ import annotations

from datetime import timezone

import pytest

from bot.clock import FakeClock
from bot.schedule import run_due

from bot.services import Services
from bot.staff_actions import staff_transition
from tests.conftest import WeChat
from tests.flow_helpers import reminders_of, tickets_of
from tests.test_handoff_privacy_place import handoff_of
from tests.test_handoff_s20 import _hours_left
from tests.test_handoff_urgent_waiting import FALL, oid, posts_on
from tests.wecom_driver import outbox_rows


async def test_a_handoff_given_to_an_owner_that_turns_urgent_takes_the_urgent_limit(
    wx: WeChat, services: Services
) -> None:
    openid = oid()
    await wx.say(openid, "人工")
    await wx.say(openid, "我家暖气不热 3号楼2单元")
    handoff = await handoff_of(services, openid)
    await staff_transition(services, handoff.number, "assign", "liu", assignee="wangwei")
    assert _hours_left(services, await handoff_of(services, openid)) == 24
    before = len(await outbox_rows(services, "wecom", "wangwei"))
    await wx.say(openid, f"{FALL} 快来 13812345678")
    handoff = await handoff_of(services, openid)
    assert handoff.urgency == "urgent"
    assert _hours_left(services, handoff) == 2, handoff.due_at
    pending = [r for r in await reminders_of(services, "resolve_breach")
               if r.cause_id == handoff.id and r.state == "pending"]
    assert [round((r.due_at.replace(tzinfo=r.due_at.tzinfo or timezone.utc) - services.clock.now())
                  .total_seconds() / 3600, 1) for r in pending] == [2], pending
    [told] = [str(o.payload) for o in (await outbox_rows(services, "wecom", "wangwei"))[before:]]
    assert "【转为紧急】" in told and FALL in told and "前办结" in told, told  # one push, the limit named
    assert "13812345678" not in told and "138****5678" in told, told


async def test_a_handoff_after_an_urgent_report_pushes_no_one_the_same_emergency_twice(
    wx: WeChat, services: Services
) -> None:
    """人工 after the urgent report of a fall pushed its grid worker, who had the report's card,
    【紧急求助】 a second time; the other grid worker of the building learns it is the same emergency."""
    openid = oid()
    await wx.say(openid, FALL)
    await wx.say(openid, "5号楼2单元502")
    await wx.say(openid, "13344445555")
    [report] = await tickets_of(services, openid)
    assert report.urgency == "urgent" and report.assignee in ("lina", "zhaoqiang"), report.assignee
    other = "zhaoqiang" if report.assignee == "lina" else "lina"
    before = {o.id for o in await outbox_rows(services, "wecom")}
    reply = await wx.say(openid, "人工")
    assert "网格员" in reply, reply  # they know of it: the report's card, or the hand-off's push
    handoff = await handoff_of(services, openid)
    pushed = [(o.target, str(o.payload)) for o in await outbox_rows(services, "wecom") if o.id not in before]
    assert [who for who, _ in pushed] == [other], pushed  # one message per emergency per person
    typed = report.number[4:]  # 1123-0001, as workers type it
    assert FALL in pushed[0][1] and f"与工单 {typed} 是同一紧急情况" in pushed[0][1], pushed
    [post] = await posts_on(services, handoff)  # the staff group still hears it, 【紧急】, the report named
    assert post.startswith("### 【紧急】") and typed in post, post


@pytest.mark.parametrize(("steps", "asked"), [
    (["人工 我家水管爆了 6号楼"], "我家水管爆了 6号楼"),  # asked for a person in the same words
    (["困在电梯里 出不来", "转人工"], "困在电梯里 出不来"),  # … in the middle of the urgent report
    ([FALL, "5号楼2单元502", "13344445555", "人工"], FALL),  # … after it was made
    (["人工", FALL], FALL),  # an emergency while a person is awaited
])
async def test_an_emergency_handoffs_status_and_survey_say_what_the_resident_asked(
    wx: WeChat, services: Services, steps: list[str], asked: str
) -> None:
    """45a8927's wording for an emergency hand-off: the emergency's words, no 【紧急】 and no staff
    words — and not the 人工 said with them (人工服务：人工 我家水管爆了 6号楼)."""
    openid = oid()
    for text in steps:
        await wx.say(openid, text)
    handoff = await handoff_of(services, openid)
    assert handoff.urgency == "urgent"
    for question in ("我的工单", f"{handoff.number}怎么样了"):
        line = (await wx.say(openid, question)).split("\n")
        [mine] = [x for x in line if x.startswith(f"【{handoff.number}】")]
        assert mine == f"【{handoff.number}】人工服务｜已转服务中心处理｜{asked}", mine
    await staff_transition(services, handoff.number, "resolve", "liu", note="已上门处理")
    assert isinstance(services.clock, FakeClock)
    services.clock.advance(seconds=services.settings.survey_delay_s)
    await run_due(services)
    [survey] = [o.payload for o in await outbox_rows(services, "wechat", openid) if "回访" in str(o.payload)]
    assert f"（工单 {handoff.number}：人工服务：{asked}）" in survey["text"], survey
    assert survey["template"]["fields"]["事项"] == f"人工服务：{asked}", survey


async def test_a_handoff_given_on_at_night_that_turns_urgent_is_sent_now_and_taken_sooner(
    wx: WeChat, services: Services
) -> None:
    """Given to the grid worker at 23:00 (the card held for the morning, its limits from then), then
    the fall: the card goes now, the 接单 limit is an urgent job's from now."""
    assert isinstance(services.clock, FakeClock)
    services.clock.advance(hours=13)  # 23:00 in the community
    openid = oid()
    await wx.say(openid, "人工")
    await wx.say(openid, "我家暖气不热 3号楼2单元")
    handoff = await handoff_of(services, openid)
    await staff_transition(services, handoff.number, "assign", "liu", assignee="wangwei")
    now = services.clock.now()
    [card] = [o for o in await outbox_rows(services, "wecom", "wangwei") if o.payload.get("msgtype") == "textcard"]
    assert card.next_attempt_at.replace(tzinfo=timezone.utc) > now  # held for the morning
    await wx.say(openid, FALL)
    [card] = [o for o in await outbox_rows(services, "wecom", "wangwei") if o.payload.get("msgtype") == "textcard"]
    assert card.next_attempt_at.replace(tzinfo=timezone.utc) <= now, card.next_attempt_at
    handoff = await handoff_of(services, openid)
    taken_by = handoff.accept_due_at.replace(tzinfo=timezone.utc)
    assert (taken_by - now).total_seconds() == services.settings.accept_sla_s, taken_by
    assert _hours_left(services, handoff) == 2
