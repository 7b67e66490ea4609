"""The console's header says who is logged in and their role, once: the built-in admin read
管理员（管理员）, a read-only account named 只读 read 只读（只读）. A name that is not the role's word
keeps it after (刘敏（工作人员）). Both backends."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from bot.console import auth
from bot.services import Services
from tests.staff_support import logged_in

Client = TestClient[Any, Any]


async def _who(client: Client) -> str:
    page = await (await client.get("/console")).text()
    found = re.search(r'<div class="who">\s*<span>([^<]*)</span>', page)
    assert found, page
    return found.group(1)


async def test_a_name_that_is_its_roles_word_is_said_once(client: Client, services: Services) -> None:
    await logged_in(client, "admin", services.settings.console_admin_password)  # the account make run prints
    assert await _who(client) == "管理员"
    await auth.create_user(services, "ro", "readonly1", "readonly", display_name="只读")
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await auth.create_user(services, "boss", "adminpass1", "admin", display_name="管理员")
    for username, password, shown in (("boss", "adminpass1", "管理员"), ("ro", "readonly1", "只读"),
                                      ("liu", "staffpass1", "刘敏（工作人员）")):
        client.session.cookie_jar.clear()
        await logged_in(client, username, password)
        assert await _who(client) == shown
