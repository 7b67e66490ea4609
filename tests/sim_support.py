"""What the simulator's page tests share: the app on a real port with the simulator on, and
Debian's Chromium launched headless as this machine needs it."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest
from aiohttp.test_utils import unused_port

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture
def port() -> int:
    """The port the whole app listens on (the simulator posts to its own /wechat)."""
    return unused_port()


@pytest.fixture
def settings_overrides(port: int) -> dict[str, Any]:
    """Simulator on, reached at the test server's address; API bases follow it to /sim."""
    return {
        "simulator": True, "public_base_url": f"http://127.0.0.1:{port}",
        "wechat_api_base": "", "wecom_api_base": "",
    }


async def launch_chromium(pw: Any) -> Any:
    """Debian's Chromium under Playwright (scripts/ensure_browser.sh installs it)."""
    chromium = shutil.which("chromium")
    assert chromium, "run scripts/ensure_browser.sh"
    return await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)


async def console_login(page: Any, base: str, username: str, password: str) -> None:
    """Log in to the console through its form, as a clerk does, and wait for the queue."""
    await page.goto(f"{base}/console/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/console")


async def clerk_page(browser: Any, base: str, username: str, password: str) -> tuple[Any, list[str]]:
    """A clerk's console at a desk's 1366×900, logged in; every confirm dialog it raises is
    accepted, its words kept in the list returned with the page."""
    page = await (await browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")).new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.accept())))
    await console_login(page, base, username, password)
    return page, dialogs
