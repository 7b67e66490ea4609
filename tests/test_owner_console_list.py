"""The console's 全部工单 list names a building as every other page does (7号楼, as the ticket
page and the queue say), not a bare 7. Both backends."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bot.services import Services
from tests.staff_support import logged_in, make_ticket


async def test_the_tickets_lists_building_column_says_haolou(client: TestClient[Any, Any], services: Services) -> None:
    built = await make_ticket(services, "oList7", summary="7号楼电梯坏了", building="7")
    bare = await make_ticket(services, "oListNone", summary="小区广场路灯坏了", building=None)
    await logged_in(client, "admin", services.settings.console_admin_password)
    page = await (await client.get("/console/tickets")).text()
    row = {n: page[page.index(f">{n}</a>"):page.index("</tr>", page.index(f">{n}</a>"))] for n in (built, bare)}
    assert "<td>7号楼</td>" in row[built], row[built]
    assert "<td>—</td>" in row[bare] and "号楼</td>" not in row[bare], row[bare]
