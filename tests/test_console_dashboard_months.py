"""数据看板 offers the month at a click: 本月（11月） (the 1st to today) and 上月（10月） (the whole
month), the range shown marked — the street ranks communities by month, and a clerk reading last
month's figures had to pick both days in two date pickers (the default is the last 30 days,
27 October to 25 November, which is neither month; found walking the console as a desk clerk).
Months are Asia/Shanghai's, as the figures' dates are. Both backends."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any

from aiohttp.test_utils import TestClient

from bot.clock import FakeClock
from bot.console.dashboard import month_ranges
from bot.services import Services
from tests.staff_support import load_roster, logged_in, make_ticket

Client = TestClient[Any, Any]


def test_this_month_runs_to_today_and_last_month_is_whole_across_a_year() -> None:
    assert month_ranges(date(2026, 11, 25)) == [
        ("this", date(2026, 11, 1), date(2026, 11, 25)), ("last", date(2026, 10, 1), date(2026, 10, 31))]
    assert month_ranges(date(2027, 1, 1)) == [
        ("this", date(2027, 1, 1), date(2027, 1, 1)), ("last", date(2026, 12, 1), date(2026, 12, 31))]
    assert month_ranges(date(2028, 3, 10))[1] == ("last", date(2028, 2, 1), date(2028, 2, 29))


async def test_the_month_links_show_that_months_figures(client: Client, services: Services, clock: FakeClock) -> None:
    await load_roster(services)
    clock.set(datetime(2026, 10, 31, 16, 30, tzinfo=timezone.utc))  # 1 November 00:30 in Shanghai
    await make_ticket(services, None, status="open", summary="11月的路灯不亮")
    clock.set(datetime(2026, 10, 15, 2, 0, tzinfo=timezone.utc))
    await make_ticket(services, None, status="open", summary="10月的楼道堆物")
    await make_ticket(services, None, status="open", summary="10月的电梯异响")
    clock.set(datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc))
    await logged_in(client, "admin", services.settings.console_admin_password)

    page = await (await client.get("/console/dashboard")).text()
    links = dict(re.findall(r'<a href="(/console/dashboard\?[^"]+)" id="month-\w+"[^>]*>([^<]+)</a>', page))
    assert links == {"/console/dashboard?since=2026-11-01&amp;until=2026-11-25": "本月（11月）",
                     "/console/dashboard?since=2026-10-01&amp;until=2026-10-31": "上月（10月）"}, links
    assert 'aria-current' not in page  # the default 30 days is neither month

    last = await (await client.get("/console/dashboard?since=2026-10-01&until=2026-10-31")).text()
    assert "比率统计 2026-10-01 至 2026-10-31 受理的工单" in last
    assert re.search(r'id="month-last" aria-current="true"', last)
    assert "已办结 0 / 受理 2" in last  # October's two, not the one at 00:30 on 1 November
    assert 'href="/console/dashboard.csv?since=2026-10-01&amp;until=2026-10-31"' in last  # 下载表格 follows
    this = await (await client.get("/console/dashboard?since=2026-11-01&until=2026-11-25")).text()
    assert "已办结 0 / 受理 1" in this and re.search(r'id="month-this" aria-current="true"', this)
