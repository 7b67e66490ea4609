"""The console's 停水停电 page names who announced and who ended an outage as the other pages name
people (刘敏, 管理员 — the roster's or the console's name), not by account (liustaff, admin). Both
backends."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient

from bot import outages
from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from tests.staff_support import logged_in
from tests.wecom_driver import load_demo_roster

Client = TestClient[Any, Any]


def _row(page: str, words: str) -> str:
    [row] = [r for r in re.findall(r"<tr>.*?</tr>", page, re.S) if words in r]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row))


async def test_the_outages_page_names_people_not_accounts(client: Client, services: Services, clock: FakeClock) -> None:
    await load_demo_roster(services)
    await logged_in(client, "admin", "community123")
    await auth.create_user(services, "zhou", "staffpass1", "staff", display_name="周敏")
    now = clock.now()
    async with services.sessions() as session, session.begin():
        water, _ = await outages.announce(services, session, kind="water", buildings=("3",), reason="管道抢修",
                                          expected_end=now + timedelta(hours=5), actor="liustaff", via="wecom")
        power, _ = await outages.announce(services, session, kind="power", buildings=("5",), reason="线路检修",
                                          expected_end=now + timedelta(hours=3), actor="zhou", via="console")
        await outages.end(services, session, power, actor="zhou", via="console")
    page = await (await client.get("/console/outages")).text()
    water_row, power_row = _row(page, "管道抢修"), _row(page, "线路检修")
    assert "刘敏" in water_row and "liustaff" not in water_row, water_row
    assert power_row.count("周敏") == 2 and "zhou" not in power_row, power_row  # announced and ended
