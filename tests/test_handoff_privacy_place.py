"""The hand-off ticket's privacy and place, through /wechat on both backends.

A phone number the resident said is masked wherever the hand-off writes their words (the ticket's
summary, reason, quoted words, emergency, what the request collected, a note on a hand-off already
waiting) and so in what is built from them (the staff group, the grid worker's push, the console,
the API); the phone given as the contact stays whole. The place the request collected, else the
building the words name, else the registered home, is the staff group's 地点, the ticket's building
and its grid."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from storage.models import Ticket, TicketEvent
from tests.conftest import WeChat
from tests.flow_helpers import group_posts, tickets_of
from tests.staff_support import logged_in
from tests.wecom_driver import outbox_rows

TOKEN = "test-api-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PHONE = "13812345678"
MASKED = "138****5678"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"api_token": TOKEN}


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def handoff_of(services: Services, openid: str) -> Ticket:
    [ticket] = [t for t in await tickets_of(services, openid) if t.kind == "handoff"]
    return ticket


async def notes_of(services: Services, ticket: Ticket, action: str) -> list[TicketEvent]:
    async with services.sessions() as session:
        rows = await session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.action == action)
            .order_by(TicketEvent.id)
        )
        return list(rows.scalars())


def post_of(posts: list[Any], ticket: Ticket) -> str:
    [post] = [p for p in posts if p.ticket_id == ticket.id]
    return str(post.payload["content"])


async def test_a_phone_said_in_an_emergency_is_masked_wherever_the_handoff_quotes_it(
    wx: WeChat, services: Services, client: TestClient[Any, Any]
) -> None:
    """3栋电梯困人了 … 他电话13812345678, then 人工 where the resident's own phone is asked: the ticket's
    summary, reason and emergency kept the number whole, and with them the console, the API and
    every push built from the summary. (With the resident's own phone said, the urgent report is
    submitted at once: no question left to say 人工 at.)"""
    openid = oid()
    assert "96333" in await wx.say(openid, f"3栋电梯困人了 我老伴在里面 他电话{PHONE}")
    assert "网格员" in await wx.say(openid, "人工")
    ticket = await handoff_of(services, openid)
    fields = ticket.fields
    assert ticket.urgency == "urgent" and MASKED in ticket.summary and PHONE not in ticket.summary
    assert PHONE not in fields["reason"]  # the words are the summary's, not the reason's (said once)
    for written in (fields["emergency"]["said"], *fields["said"], fields["collected"]["情况"]):
        assert MASKED in written and PHONE not in written, written
    [alerted] = await notes_of(services, ticket, "staff_alerted")
    assert PHONE not in alerted.note
    content = post_of(await group_posts(services), ticket)
    assert "紧急" in content and "138＊＊＊＊5678" in content and PHONE not in content
    [push] = [r for r in await outbox_rows(services, "wecom", "wangwei") if r.ticket_id == ticket.id]
    assert MASKED in push.payload["text"] and PHONE not in push.payload["text"]
    # the API: the ticket's own words masked, the contact whole
    body = await (await client.get(f"/api/tickets/{ticket.number}", headers=AUTH)).json()
    assert PHONE not in body["summary"] and PHONE not in body["fields"]["reason"]
    assert PHONE not in str(body["fields"]["emergency"])
    # the console: a read-only user sees no whole number anywhere on the queue or the ticket page
    await auth.create_user(services, "ro", "readonly1", "readonly", display_name="只读")
    await logged_in(client, "ro", "readonly1")
    for url in ("/console", f"/console/tickets/{ticket.number}"):
        page = await (await client.get(url)).text()
        assert ticket.number in page and PHONE not in page and "困人" in page, url


async def test_an_emergency_while_a_handoff_waits_is_noted_on_it_masked(wx: WeChat, services: Services) -> None:
    """人工, then an emergency with someone's phone, then 人工 again where the resident's own is asked:
    the note on the waiting hand-off (its reason and what it carries) and the 【紧急】 post kept the
    number whole."""
    openid = oid()
    await wx.say(openid, "人工")
    assert "96333" in await wx.say(openid, f"3栋电梯困人了 他电话{PHONE}")
    assert "再次通知" in await wx.say(openid, "人工")
    ticket = await handoff_of(services, openid)
    assert ticket.urgency == "urgent" and ticket.building == "3" and ticket.grid == "G1"
    [note] = await notes_of(services, ticket, "note")
    assert MASKED in note.note and PHONE not in note.note
    assert PHONE not in note.data["reason"] and PHONE not in str(note.data["emergency"])
    assert PHONE not in note.data["text"]
    urgent = [p for p in await group_posts(services) if p.ticket_id == ticket.id][-1].payload["content"]
    assert "紧急" in urgent and PHONE not in urgent and "地点：3栋" in urgent


@pytest.mark.parametrize(("said", "place", "building", "grid"), [
    ("转人工 5栋的电梯又坏了", "5栋", "5", "G2"),
    ("我是3号楼2单元502的 我要找人说话", "3栋2单元502", "3", "G1"),
    ("我要轉人工 電梯壞了 8棟", "8栋", "8", "G3"),  # traditional characters
])
async def test_a_building_named_in_the_words_is_the_handoffs_place_and_grid(
    wx: WeChat, services: Services, said: str, place: str, building: str, grid: str
) -> None:
    """The staff group's 地点 said 未说明 though the words named the building."""
    openid = oid()
    assert "转接人工服务" in await wx.say(openid, said)
    ticket = await handoff_of(services, openid)
    assert ticket.fields["place"] == place and ticket.building == building and ticket.grid == grid
    assert f"地点：{place}" in post_of(await group_posts(services), ticket)


async def test_the_place_said_wins_over_the_registered_home_which_is_said_to_be_one(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """A resident whose home (9栋) is registered: a bare 人工 is placed there, marked as the
    registered home; words naming another building place it there."""
    openid = oid()
    for answer in ["1", "1", "9栋1单元", "楼道灯不亮三天了", "好了", PHONE, "是", "1"]:
        await wx.say(openid, answer)
    clock.advance(hours=3)  # the report's answers are long past: they say nothing of this
    await wx.say(openid, "人工")
    home = await handoff_of(services, openid)
    assert home.fields["place"] == "9栋（居民登记的住址）" and home.building == "9" and home.grid == "G3"
    assert "地点：9栋（居民登记的住址）" in post_of(await group_posts(services), home)
    other = oid()
    for answer in ["1", "1", "9栋1单元", "楼道灯不亮三天了", "好了", PHONE, "是", "1"]:
        await wx.say(other, answer)
    await wx.say(other, "转人工 5栋的电梯又坏了")
    said = await handoff_of(services, other)
    assert said.fields["place"] == "5栋" and said.building == "5" and said.grid == "G2"


async def test_a_handoff_mid_request_takes_its_place_and_quotes_no_bare_request_for_a_person(
    wx: WeChat, services: Services
) -> None:
    """转人工 at the description question of a report at 9栋1单元: 地点 said 未说明, and 转人工
    itself was quoted as what the resident said."""
    openid = oid()
    for answer in ["1", "1", "9栋1单元"]:
        await wx.say(openid, answer)
    assert "转接人工服务" in await wx.say(openid, "转人工")
    ticket = await handoff_of(services, openid)
    assert ticket.fields["place"] == "9栋1单元" and ticket.building == "9" and ticket.grid == "G3"
    assert ticket.fields["said"] == ["9栋1单元"] and "转人工" not in ticket.summary
    assert "地点：9栋1单元" in post_of(await group_posts(services), ticket)


async def test_a_waiting_handoff_takes_the_building_said_after_it(wx: WeChat, services: Services) -> None:
    """人工, 5栋的电梯又坏了 (told to the person awaited), 人工 again: the hand-off waiting is now
    placed at 5栋 and in its grid, not a second ticket."""
    openid = oid()
    await wx.say(openid, "人工")
    assert "转给工作人员" in await wx.say(openid, "5栋的电梯又坏了 一直没人修")
    assert "已经在人工服务" in await wx.say(openid, "人工")
    ticket = await handoff_of(services, openid)
    assert ticket.fields["place"] == "5栋" and ticket.building == "5" and ticket.grid == "G2"


async def test_a_phone_given_for_a_call_back_is_the_handoffs_contact(
    wx: WeChat, services: Services, client: TestClient[Any, Any]
) -> None:
    """你们找个人给我打电话吧 13812345678: the number is the ticket's contact (whole, as a report's
    phone is: the console shows it to staff, an owner's 电话 gets it), masked where the words are quoted."""
    openid = oid()
    assert "转接人工服务" in await wx.say(openid, f"我不会弄 你们找个人给我打电话吧 {PHONE}")
    ticket = await handoff_of(services, openid)
    assert ticket.fields["phone"] == PHONE and PHONE not in ticket.summary and MASKED in ticket.fields["said"][0]
    body = await (await client.get(f"/api/tickets/{ticket.number}", headers=AUTH)).json()
    assert body["fields"]["phone"] == PHONE and PHONE not in body["fields"]["text"]
    assert PHONE not in post_of(await group_posts(services), ticket)


async def test_asking_for_a_person_again_reminds_the_staff_group_after_a_quiet_spell(
    wx: WeChat, services: Services, clock: FakeClock
) -> None:
    """人工 人工 人工 from an anxious resident: each added an internal note 居民要求人工服务 to the
    ticket, the reply said 补充的内容也已转给工作人员 though nothing was added, and the staff group
    never heard the resident was still waiting. Now a repeat within ack_every_min of the group's
    post is only answered; after it the group is reminded, and the resident told so."""
    openid = oid()
    await wx.say(openid, "人工")
    ticket = await handoff_of(services, openid)
    again = await wx.say(openid, "人工")
    assert "已经在人工服务" in again and "请稍候" in again and "补充的内容" not in again
    assert len([p for p in await group_posts(services) if p.ticket_id == ticket.id]) == 1
    clock.advance(minutes=11)
    chased = await wx.say(openid, "转人工")
    assert "已再次提醒工作人员" in chased and ticket.number in chased
    posts = [p for p in await group_posts(services) if p.ticket_id == ticket.id]
    assert len(posts) == 2 and ticket.number in posts[1].payload["content"] and "转人工" in posts[1].payload["content"]
    assert await notes_of(services, ticket, "note") == []  # no internal notes from the resident
    # what the resident writes next is still told to the group only after a quiet spell
    assert await wx.say(openid, "我家楼上漏水了") == "收到，已转给工作人员。"
    clock.advance(minutes=11)
    assert "已再次提醒" in await wx.say(openid, "人工")
    assert len([p for p in await group_posts(services) if p.ticket_id == ticket.id]) == 3


async def test_the_console_names_what_a_handoff_carries(
    wx: WeChat, services: Services, client: TestClient[Any, Any]
) -> None:
    """The ticket page listed a hand-off's quoted words and its emergency as 其他信息."""
    openid = oid()
    await wx.say(openid, "3栋电梯困人了 我老伴在里面")
    await wx.say(openid, "人工")
    ticket = await handoff_of(services, openid)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{ticket.number}")).text()
    assert "居民说（最近几条）" in page and "紧急情况" in page and "3栋电梯困人了" in page


async def test_what_a_waiting_resident_writes_is_noted_masked_and_shown_once(
    wx: WeChat, services: Services, client: TestClient[Any, Any]
) -> None:
    """人工, then 我电话13812345678 快点来人: the 居民补充 note kept the number whole and the API's
    events gave it whole. Now the note is masked; the console's timeline still shows the message
    once (the note is matched to it in masked form), whole to staff, masked to a read-only user."""
    openid = oid()
    await wx.say(openid, "人工")
    said = f"我电话{PHONE} 快点来人"
    assert "转给工作人员" in await wx.say(openid, said)
    ticket = await handoff_of(services, openid)
    [wrote] = await notes_of(services, ticket, "resident_wrote")
    assert wrote.note == f"我电话{MASKED} 快点来人"
    body = await (await client.get(f"/api/tickets/{ticket.number}", headers=AUTH)).json()
    [event] = [e for e in body["events"] if e["action"] == "resident_wrote"]
    assert PHONE not in str(event) and MASKED in str(event)
    assert PHONE in str(body["conversation"])  # the message log, to the token, as before
    posts = [str(p.payload["content"]) for p in await group_posts(services) if p.ticket_id == ticket.id]
    assert "快点来人" in posts[-1] and all(PHONE not in p for p in posts)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{ticket.number}")).text()
    story = page[page.index('<ol class="timeline'):]  # the timeline: once, not note and message both
    assert story.count("快点来人") == 1 and PHONE in story and "居民补充" not in story
    assert page.count("快点来人") == 2 and f'<dd id="resident-added">我电话{PHONE} 快点来人' in page  # and the summary's 居民补充
    client.session.cookie_jar.clear()
    await auth.create_user(services, "ro", "readonly1", "readonly", display_name="只读")
    await logged_in(client, "ro", "readonly1")
    page = await (await client.get(f"/console/tickets/{ticket.number}")).text()
    assert page.count("快点来人") == 2 and PHONE not in page
