"""A console address that is no page answered the server's bare English 404: Not Found (a typo,
an old bookmark) or 405: Method Not Allowed (a form's address opened, /console/tickets/N/reply):
now the console's own page in words, with the way back; logged out, the login comes first."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.console import auth
from bot.services import Services
from tests.staff_support import logged_in, make_ticket

Client = TestClient[Any, Any]


async def test_an_address_that_is_no_page_says_so_in_words(client: Client, services: Services) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    number = await make_ticket(services, None)
    resp = await client.get("/console/ticket", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/console/login?next=")
    await logged_in(client, "liu", "staffpass1")
    for path in ("/console/ticket", "/console/tickets/x/y/z", f"/console/tickets/{number}/reply"):
        resp = await client.get(path)
        body = await resp.text()
        assert resp.status == 404 and "没有这个页面" in body and "返回待处理队列" in body, (path, body[:200])
        assert "Not Found" not in body and "Method Not Allowed" not in body
    for path in ("/console", "/console/tickets", f"/console/tickets/{number}", "/console/static/console.css"):
        assert (await client.get(path)).status == 200, path
