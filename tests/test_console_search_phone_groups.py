"""全部工单's search finds a resident's reports by a mobile number typed as a caller reads it out, in
groups — 138 1234 5678, 138-1234-5678, +86 138 1234 5678, full-width digits — as by 13812345678:
a clerk with the resident on the phone typed it so and got 没有符合条件的工单 (found walking the
console as a desk clerk). A number written in groups in a message is still found as typed; a
ticket number (20261125-0001, dashes and all) and a landline are searched as they are. Both backends."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.console import auth
from bot.console.queries import phone_typed
from bot.services import Services
from storage.models import Ticket
from tests.staff_support import logged_in

Client = TestClient[Any, Any]


def test_a_mobile_in_groups_is_read_as_its_digits_and_nothing_else_is() -> None:
    for typed in ("138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "86 13812345678", "１３８ １２３４ ５６７８",
                  " 13812345678 "):
        assert phone_typed(typed) == "13812345678", typed
    for kept in ("20261125-0001", "0001", "5678", "0571-88886666", "3号楼 2单元", "138 1234", ""):
        assert phone_typed(kept) == kept, kept


def _listed(page: str) -> set[str]:
    return set(re.findall(r'<td><a href="/console/tickets/([0-9-]+)">', page))


async def test_the_search_finds_a_residents_reports_by_a_number_in_groups(
    client: Client, services: Services, wx: Any,
) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    for text in ("3号楼2单元楼道灯坏了", "跳过", "13812345678", "否", "1"):  # the phone typed whole
        await wx.say("o_zhang", text)
    for text in ("5号楼门口垃圾没人清", "跳过", "139 8765 4321", "否", "1"):  # in groups, as typed by a resident
        await wx.say("o_li", text)
    async with services.sessions() as session:
        numbers = {t.resident: t.number for t in await session.scalars(select(Ticket))}
    await logged_in(client, "liu", "staffpass1")

    async def search(q: str) -> set[str]:
        return _listed(await (await client.get(f"/console/tickets?q={quote(q)}")).text())

    for typed in ("13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678"):
        assert await search(typed) == {numbers["o_zhang"]}, typed
    assert numbers["o_li"] in await search("139 8765 4321")  # as the resident wrote it
    assert await search(numbers["o_zhang"]) >= {numbers["o_zhang"]}  # a ticket number, dash and all
    page = await (await client.get(f"/console/tickets?q={quote('138 1234 5678')}")).text()
    assert 'value="138 1234 5678"' in page  # the box keeps what the clerk typed
