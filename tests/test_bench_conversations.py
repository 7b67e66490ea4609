"""bench/conversations.py: the load benchmark's scripts still run as written against the current
flows (what `python -m bench.conversations --check URL` checks by hand), and a resident who handed
off goes on under a new openid."""

from __future__ import annotations

import random
import uuid

from bench.conversations import SCRIPTS, hands_off, new_resident_after, pick
from tests.conftest import WeChat


async def test_every_script_ends_as_written(wx: WeChat) -> None:
    for script in SCRIPTS:
        openid = "oScript" + uuid.uuid4().hex[:12]
        last = ""
        for text in script.messages:
            last = await wx.say(openid, text)
        assert script.expect in last, (script.messages, last)


async def test_after_a_hand_off_the_next_conversation_is_a_flow_again_under_a_new_openid(wx: WeChat) -> None:
    """Under the same openid, what follows 转人工 goes before staff (bot.flows.handoff.with_staff);
    the load generator therefore continues as a new resident, so the workload stays the scripts'."""
    assert hands_off(["转人工", "取消"]) and not hands_off(["你好", "取消"]) and not hands_off([])
    assert pick(random.Random(1))[-1] == "取消"
    openid = "oScript" + uuid.uuid4().hex[:12]
    await wx.say(openid, "转人工")
    assert "转给工作人员" in await wx.say(openid, SCRIPTS[0].messages[0])  # why the openid changes


async def test_after_a_volunteer_signup_the_next_conversation_is_a_new_resident(wx: WeChat) -> None:
    """A resident registers as a volunteer once: a second signup under the same openid is answered
    with the registration, and the script's further answers would each be 没太明白 (off the
    script), so the load generator goes on as a new resident after a signup, as after a hand-off."""
    signup = next(s for s in SCRIPTS if s.messages[0] == "我想报名当志愿者")
    assert new_resident_after([*signup.messages, "取消"]) and new_resident_after(["转人工", "取消"])
    assert not new_resident_after([*SCRIPTS[0].messages, "取消"]) and not new_resident_after([])
    openid = "oScript" + uuid.uuid4().hex[:12]
    for text in signup.messages:
        await wx.say(openid, text)
    await wx.say(openid, "取消")
    assert "已经登记为社区志愿者" in await wx.say(openid, signup.messages[0])  # why the openid changes
    assert "没太明白" in await wx.say(openid, signup.messages[1])


async def test_a_script_said_again_or_by_a_neighbour_still_ends_in_its_own_ticket(wx: WeChat) -> None:
    """The load generator runs the same scripts again under one openid and across residents: the
    bot asks a resident whether a report is the one they made already; the scripts answer 2
    (bench.conversations.interjection) and go on as written. A neighbour's report is only told
    that it was reported already. Every complaint script still ends in a ticket, as the workload
    always measured."""
    from bench.conversations import interjection

    script = SCRIPTS[0]
    first, neighbour = "oScript" + uuid.uuid4().hex[:12], "oScript" + uuid.uuid4().hex[:12]
    asked, told = 0, 0
    for openid in (first, first, neighbour):
        queue, last = list(script.messages), ""
        while queue:
            last = await wx.say(openid, queue.pop(0))
            told += "位居民反映" in last
            extra = interjection(last)
            if extra is not None:
                asked += 1
                queue.insert(0, extra)
        assert script.expect in last, last
    assert asked == 1 and told == 1
