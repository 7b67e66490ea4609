"""数据看板 in Chromium, at a desk and on a phone: 上月（10月） clicked shows October's figures, the
link marked and 下载表格 for the same month; a month with no tickets says 暂无数据 inside its chart —
the chart's frame was the legend's height only and cut the line off (found walking the console as a
desk clerk). Screenshots go to test-artifacts/ (console-months-*). Both backends."""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp.test_utils import TestServer

from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from tests.sim_support import clerk_page, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.staff_support import load_roster, make_ticket
from tests.test_console_browser import ARTIFACTS, server  # noqa: F401 (fixture)

VIEWS = {"desk": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


async def test_last_months_figures_at_a_click_and_an_empty_chart_says_so(
    services: Services, server: TestServer, clock: FakeClock, backend: str,
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await load_roster(services)
    clock.set(datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc))
    await make_ticket(services, None, status="open", summary="11月的路灯不亮")  # none in October
    clock.set(datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc))
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            for view, size in VIEWS.items():
                page, _ = await clerk_page(browser, base, "liu", "staffpass1")
                await page.set_viewport_size(size)
                await page.goto(f"{base}/console/dashboard")
                async with page.expect_navigation():
                    await page.click("#month-last")
                assert page.url.endswith("/console/dashboard?since=2026-10-01&until=2026-10-31")
                assert await page.get_attribute("#month-last", "aria-current") == "true"
                assert await page.input_value("input[name=since]") == "2026-10-01"
                assert "since=2026-10-01&until=2026-10-31" in (await page.get_attribute("#csv-download", "href") or "")
                await page.screenshot(path=str(ARTIFACTS / f"console-months-{view}{suffix}.png"), full_page=True)
                chart = page.locator('svg.chart[aria-label="各网格三率"]')
                frame, line = await chart.bounding_box(), await chart.locator("text.empty").bounding_box()
                assert frame and line and await chart.locator("text.empty").inner_html() == "暂无数据"
                assert frame["y"] <= line["y"] and line["y"] + line["height"] <= frame["y"] + frame["height"], (frame, line)
                for link in ("#month-this", "#month-last"):  # in sight, not run off the screen
                    box = await page.locator(link).bounding_box()
                    assert box is not None and box["x"] + box["width"] <= size["width"], (link, box)
                await page.keyboard.press("Tab")  # the links are reached by keyboard too
                await page.focus("#month-this")
                async with page.expect_navigation():
                    await page.keyboard.press("Enter")
                assert page.url.endswith("since=2026-11-01&until=2026-11-25")
                assert "受理 1" in await page.inner_text("#kpi-resolution + small")
                await page.close()
        finally:
            await browser.close()
