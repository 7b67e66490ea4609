"""In Chromium: a 快来人啊 hand-off's page names its emergency in Chinese and shows the resident's
words once in its details; the audit log names a login's address 来源地址, not ip. Both backends;
screenshots in test-artifacts/."""

from __future__ import annotations

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.console import auth
from bot.services import Services
from storage.models import Ticket
from tests.sim_support import clerk_page, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.test_console_browser import ARTIFACTS, server  # noqa: F401 (fixture)
from tests.test_console_shared_links_browser import _Poster


async def test_the_emergency_is_named_and_said_once_and_the_audit_reads_in_words(
    services: Services, server: TestServer, backend: str,
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await auth.create_user(services, "boss", "bosspass1", "admin", display_name="主任")
    async with aiohttp.ClientSession() as http:
        await _Poster(http, base, services).say("text", "o_help", Content="快来人啊")
    async with services.sessions() as session:
        number = (await session.scalars(select(Ticket.number).where(Ticket.kind == "handoff"))).one()
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page, _ = await clerk_page(browser, base, "boss", "bosspass1")
            await page.goto(f"{base}/console/tickets/{number}")
            details = await page.inner_text("section.details dl")
            assert "已告知的应急提示：居民呼救（未说明何事）" in details and "help" not in details
            # said once, under 居民说: 已收集信息 no longer repeats it as 情况 (39a62e5), nor the 原因 (6e86ced)
            assert "居民原话" not in details and details.count("快来人啊") == 1
            await page.screenshot(path=str(ARTIFACTS / f"console-emergency-words{suffix}.png"))
            await page.goto(f"{base}/console/audit")
            login_row = page.locator("tr", has=page.locator("span.audit-action[title='console.login']")).first
            cell = await login_row.locator("td.detail").inner_text()
            assert "来源地址：127.0.0.1" in cell and "ip" not in cell.replace("IP", ""), cell
            await page.screenshot(path=str(ARTIFACTS / f"console-audit-words{suffix}.png"))
            await page.close()
        finally:
            await browser.close()
