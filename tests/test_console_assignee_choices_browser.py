"""On a phone (390 px) the 派单 / 改派 choice of a provider with many services (安心上门服务 · 助浴、
助洁、陪诊、上门护理、适老化改造) stays inside the screen: the one-column layout let the widest
choice widen the page, which then scrolled sideways. Both backends."""

from __future__ import annotations

from aiohttp.test_utils import TestServer

from bot.console import auth
from bot.services import Services
from tests.sim_support import clerk_page, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.staff_support import load_roster, make_ticket
from tests.test_console_browser import ARTIFACTS, server  # noqa: F401 (fixture)


async def test_a_long_assignee_choice_stays_on_a_phones_screen(
    services: Services, server: TestServer, backend: str,
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await load_roster(services)
    booking = await make_ticket(services, None, kind="elderly_service", summary="上门护理｜王秀英（83岁）", building="5")
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page, _ = await clerk_page(browser, base, "liu", "staffpass1")
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.goto(f"{base}/console/tickets/{booking}")
            choice = page.locator("select[name=assignee]")
            await choice.select_option("homecare")
            assert "安心上门服务 · 助浴、助洁、陪诊、上门护理、适老化改造" in await choice.locator("option:checked").inner_text()
            assert await page.evaluate("() => document.documentElement.scrollWidth") <= 390
            box = await choice.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
            await choice.scroll_into_view_if_needed()
            await page.screenshot(path=str(ARTIFACTS / f"console-assignee-phone{suffix}.png"))
            await page.close()
        finally:
            await browser.close()
