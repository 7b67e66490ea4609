"""A read-only user's ticket page shows no control they cannot use: no answer form nor how the
answer would be delivered, no 派单/状态/备注 forms; only what they may do (log out, open links).
A staff user's page of the same ticket has them. Both backends."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import FakeClock
from bot.services import Services
from tests.staff_support import logged_in
from tests.test_console import _handoff, _users

Client = TestClient[Any, Any]
CONTROLS = re.compile(r"<(form|button|select|textarea|input)\b[^>]*>")


def _controls(page: str) -> list[str]:
    """The page's form controls outside its header (the logout form is every page's)."""
    return CONTROLS.findall(page[page.index("<main>"):])


async def test_a_read_only_ticket_page_offers_nothing_it_cannot_do(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    await _users(services)
    number = await _handoff(services, clock)
    await logged_in(client, "liu", "staffpass1")
    staff = await (await client.get(f"/console/tickets/{number}")).text()
    assert 'class="via via-' in staff and "答复将以" in staff and {"form", "textarea", "select", "button"} <= set(_controls(staff))

    client.session.cookie_jar.clear()
    await logged_in(client, "ro", "readonly1")
    page = await (await client.get(f"/console/tickets/{number}")).text()
    assert "只读账号：可以查看，不能操作。" in page
    assert _controls(page) == []
    assert 'class="via' not in page and "答复将以" not in page and "添加内部备注" not in page
    assert "退出登录" in page  # what they may do stays
