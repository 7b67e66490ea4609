"""Every page asked for /favicon.ico and got a 404 (in every page's log, and the browser's tab
bare): the console serves its icon there, and its pages link the SVG. Both backends; in Chromium,
no page of the console nor the simulator's chat asks for anything that is not there."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.console import auth
from bot.services import Services
from tests.sim_support import clerk_page, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.test_console_browser import server  # noqa: F401 (fixture)

Client = TestClient[Any, Any]


async def test_the_icon_is_served_and_linked(client: Client) -> None:
    resp = await client.get("/favicon.ico")
    body = await resp.read()
    assert resp.status == 200 and resp.content_type == "image/x-icon"
    assert body[:4] == b"\x00\x00\x01\x00" and b"PNG" in body[:40]  # an ICO holding one PNG
    assert "max-age" in resp.headers.get("Cache-Control", "")
    svg = await client.get("/console/static/favicon.svg")
    assert svg.status == 200 and svg.content_type == "image/svg+xml" and "<svg" in await svg.text()
    login = await (await client.get("/console/login")).text()
    assert '<link rel="icon" href="/console/static/favicon.svg" type="image/svg+xml">' in login
    assert (await client.post("/favicon.ico")).status == 405  # nothing else there


async def test_no_page_asks_for_what_is_not_there(services: Services, server: TestServer) -> None:
    from playwright.async_api import async_playwright

    base = str(server.make_url("/")).rstrip("/")
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page, _ = await clerk_page(browser, base, "liu", "staffpass1")
            missing: list[str] = []
            page.on("response", lambda r: missing.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            for path in ("/console", "/console/tickets", "/console/dashboard", "/sim"):
                await page.goto(f"{base}{path}")
                await page.wait_for_load_state("networkidle")
            assert missing == []
            icon = await page.evaluate("async () => (await fetch('/favicon.ico')).status")
            assert icon == 200
            await page.close()
        finally:
            await browser.close()
