"""Status questions and hand-offs to a person, through /wechat on both backends."""

from __future__ import annotations

import uuid

from bot.clock import FakeClock
from bot.services import Services
from tests.conftest import WeChat
from tests.flow_helpers import group_posts, tickets_of


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def complaint(wx: WeChat, openid: str, building: str = "9") -> str:
    """File a lighting complaint from the menu; returns the confirmation."""
    for answer in ["1", "1", f"{building}栋1单元", "楼道灯不亮三天了", "好了", "13812345678", "否"]:
        await wx.say(openid, answer)
    return await wx.say(openid, "1")


async def test_status_lists_open_tickets_with_owner_and_due_time(wx: WeChat, services: Services) -> None:
    openid = oid()
    assert "没有正在办理" in await wx.say(openid, "5")
    await complaint(wx, openid)
    await complaint(wx, openid, building="2")
    listing = await wx.say(openid, "5")
    assert "2个" in listing and "20261123-0001" in listing and "20261123-0002" in listing
    assert "孙丽" in listing and "王伟" in listing and "已派单" in listing and "前办结" in listing
    assert listing.index("0002") < listing.index("0001")  # newest first
    assert "20261123-0002" in await wx.event(openid, "CLICK", "MENU_MY_TICKETS")


async def test_status_by_number_only_for_ones_own_ticket(wx: WeChat, services: Services) -> None:
    owner, stranger = oid(), oid()
    await complaint(wx, owner)
    one = await wx.say(owner, "20261123-0001 怎么样了")
    assert "【20261123-0001】" in one and "孙丽" in one
    assert "没有找到" in await wx.say(stranger, "20261123-0001怎么样了")
    assert "没有找到" in await wx.say(owner, "20261123-0099 怎么样了")


async def test_status_by_the_last_digits_of_ones_own_ticket(wx: WeChat, services: Services) -> None:
    """0001怎么样了 / 工单1 / 0001进度 (before: "sorry, I did not understand" and the menu)."""
    owner, stranger = oid(), oid()
    await complaint(wx, owner)
    await complaint(wx, owner, building="2")
    for text in ("0001怎么样了", "工单1", "0001进度", "查一下0001号工单"):
        one = await wx.say(owner, text)
        assert one.startswith("【20261123-0001】") and "20261123-0002" not in one, text
    missing = await wx.say(owner, "0009怎么样了")
    assert "尾号为 0009" in missing and "20261123-0001" in missing  # said, with the ones there are
    assert "尾号为 0001" in await wx.say(stranger, "0001怎么样了")  # another resident's: not shown
    assert "【" not in await wx.say(owner, "12")  # two digits alone are no ticket
    assert "【" not in await wx.say(owner, "0001块钱")  # digits with something else are not a question


async def test_status_question_inside_a_flow_keeps_the_flow(wx: WeChat, services: Services) -> None:
    openid = oid()
    await complaint(wx, openid)
    await wx.say(openid, "1")
    reply = await wx.say(openid, "20261123-0001 到哪一步了")
    assert "【20261123-0001】" in reply and "哪一类" in reply
    assert "问题在哪里" in await wx.say(openid, "1")


async def test_handoff_from_the_menu_in_service_hours(wx: WeChat, services: Services) -> None:
    openid = oid()
    reply = await wx.say(openid, "6")
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff" and ticket.status == "escalated" and ticket.number in reply
    assert "30分钟内" in reply
    posts = [p for p in await group_posts(services) if p.ticket_id == ticket.id]
    assert len(posts) == 1 and ticket.number in posts[0].payload["content"]
    again = await wx.event(openid, "CLICK", "MENU_HANDOFF")
    assert ticket.number in again and "已经在人工服务" in again
    assert len(await tickets_of(services, openid)) == 1


async def test_handoff_out_of_hours_says_when(wx: WeChat, services: Services, clock: FakeClock) -> None:
    clock.advance(hours=12)  # 22:00 local
    openid = oid()
    reply = await wx.say(openid, "转人工")
    assert "非工作时间" in reply and "明天 08:30" in reply


async def test_handoff_mid_flow_carries_what_was_said(wx: WeChat, services: Services) -> None:
    openid = oid()
    for answer in ["2", "邻居", "楼上漏水到我家天花板，找他不理"]:
        await wx.say(openid, answer)
    reply = await wx.say(openid, "人工")
    [ticket] = await tickets_of(services, openid)
    assert ticket.number in reply and ticket.fields["flow"] == "mediation"
    assert ticket.fields["collected"] == {"对方": "邻居", "事由": "楼上漏水到我家天花板，找他不理"}
    said = [m["text"] for m in ticket.fields["transcript"] if m["direction"] == "in"]
    assert said == ["2", "邻居", "楼上漏水到我家天花板，找他不理", "人工"]
    assert "我可以帮您" in await wx.say(openid, "嗯")  # the flow ended with the hand-off


async def test_an_older_person_alone_asking_to_be_looked_in_on_reaches_a_person(wx: WeChat, services: Services) -> None:
    """No bookable service fits 能不能有人定期来看看我: a person arranges it (before: the menu)."""
    openid = oid()
    reply = await wx.say(openid, "我是独居老人 能不能有人定期来看看我")
    assert "转接人工服务" in reply
    [ticket] = await tickets_of(services, openid)
    assert ticket.kind == "handoff"
