"""A list's page number from the address (全部工单 ?page=, 审计日志 ?page=, 志愿活动 ?ended=) is
read as 1 to 10,000 (queries.page_number): a number past what a database takes as an offset, a
word or a negative one answers a page, never a 500. Both backends."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.services import Services
from tests.staff_support import logged_in

Client = TestClient[Any, Any]


@pytest.mark.parametrize("path", ["/console/audit?page=", "/console/tickets?page=", "/console/activities?ended="])
async def test_any_page_number_answers_a_page(client: Client, services: Services, path: str) -> None:
    await logged_in(client, "admin", services.settings.console_admin_password)
    for raw in ("99999999999999999999", "9223372036854775807", "-1", "0", "两", "1e3"):
        resp = await client.get(path + raw)
        assert resp.status == 200, (path, raw)
