"""A hand-off's ticket page shows what the resident wrote on it since it opened (居民补充), as its
queue card does: the page's summary showed only the words before 转人工 (喂 有人吗), and what the
resident needed (我家厨房水管一直滴水 我一个人住 腿脚不好 电话139…) was only down in the long
conversation (found walking the console as a desk clerk). Escaped; phones whole for staff, the
look audited, and masked for read-only users. Both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.console import auth
from bot.services import Services
from storage.models import AuditLog, Ticket
from tests.staff_support import logged_in

Client = TestClient[Any, Any]
XSS = "<script>alert(1)</script>"


def _added(page: str) -> str:
    start = page.index("<dt>居民补充</dt>")
    return page[start:page.index("</dd>", start)]


async def test_the_ticket_page_of_a_hand_off_shows_what_the_resident_added(
    client: Client, services: Services, wx: Any,
) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await auth.create_user(services, "ro", "readonly1", "readonly", display_name="只读")
    assert "转接人工服务" in await wx.say("o_added", "喂 有人吗 转人工")
    for text in ("在吗", "快点", f"我家厨房水管一直滴水{XSS}", "我一个人住 腿脚不好 电话13998765432"):
        await wx.say("o_added", text)
    async with services.sessions() as session:
        number = (await session.scalars(select(Ticket.number).where(Ticket.kind == "handoff"))).one()

    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    added = _added(page)
    assert "在吗" not in added and "快点" in added  # the last three, as the queue card
    assert "我家厨房水管一直滴水&lt;script&gt;alert(1)&lt;/script&gt;" in added and XSS not in page
    assert "电话13998765432" in added and added.index("滴水") < added.index("腿脚不好")
    async with services.sessions() as session:
        looks = list(await session.scalars(select(AuditLog).where(AuditLog.actor == "liu", AuditLog.target == number)))
    assert "ticket.phone_view" in [a.action for a in looks]  # the whole number seen is audited

    client.session.cookie_jar.clear()
    await logged_in(client, "ro", "readonly1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert "13998765432" not in page and "腿脚不好" in _added(page)


async def test_a_report_page_has_no_such_line(client: Client, services: Services, wx: Any) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    for text in ("3号楼2单元楼道灯坏了", "跳过", "13812345678", "否", "1"):
        await wx.say("o_lamp", text)
    async with services.sessions() as session:
        number = (await session.scalars(select(Ticket.number).where(Ticket.kind == "complaint"))).one()
    await logged_in(client, "liu", "staffpass1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert "<dt>居民补充</dt>" not in page
