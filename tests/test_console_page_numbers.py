"""A list's page number from the address (全部工单 ?page=, 审计日志 ?page=, 志愿活动 ?ended=) is
read as 1 to 10,000 (queries.page_number): a number past what a database takes as an offset, a
word or a negative one answers a page, never a 500; each list links its pages keeping its filters
(_macros.pager). Both backends."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.services import Services
from tests.staff_support import logged_in

Client = TestClient[Any, Any]


@pytest.mark.parametrize("path", ["/console/audit?page=", "/console/tickets?page=", "/console/activities?ended="])
async def test_any_page_number_answers_a_page(client: Client, services: Services, path: str) -> None:
    await logged_in(client, "admin", services.settings.console_admin_password)
    for raw in ("99999999999999999999", "9223372036854775807", "-1", "0", "两", "1e3"):
        resp = await client.get(path + raw)
        assert resp.status == 200, (path, raw)


async def test_the_lists_link_their_pages_keeping_their_filters(client: Client, services: Services) -> None:
    from bot.console import admin, queries
    from storage.models import AuditLog, Ticket
    from tests.staff_support import make_ticket

    for n in range(queries.PAGE_SIZE + 1):
        await make_ticket(services, None, status="open", summary=f"第{n}件")
    async with services.sessions() as session, session.begin():
        session.add_all([AuditLog(actor="liu", action="ticket.note", target=str(n), detail={},
                                  created_at=services.clock.now()) for n in range(admin.AUDIT_PAGE + 1)])
        assert len(list(await session.scalars(select(Ticket)))) == queries.PAGE_SIZE + 1
    await logged_in(client, "admin", services.settings.console_admin_password)
    first = await (await client.get("/console/tickets?kind=complaint")).text()
    assert 'href="/console/tickets?kind=complaint&amp;page=2">下一页' in first and "上一页" not in first
    second = await (await client.get("/console/tickets?kind=complaint&page=2")).text()
    assert 'href="/console/tickets?kind=complaint&amp;page=1">上一页' in second and "第 2 / 2 页" in second
    audit = await (await client.get("/console/audit?actor=liu")).text()
    assert 'href="/console/audit?actor=liu&amp;action=&amp;page=2">下一页' in audit
