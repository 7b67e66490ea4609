"""What the simulator's page tests share: the app on a real port with the simulator on, and
Debian's Chromium launched headless as this machine needs it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer, unused_port

from bot.services import Services
from bot.sim.api import SIM_RECORDER, SimRecorder, make_app

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


@pytest.fixture
def api_port() -> int:
    """The port the stand-in APIs listen on alone (the outbox sender's tests, without the app)."""
    return unused_port()


def api_bases(api_port: int) -> dict[str, str]:
    """Settings pointing both API bases at the stand-ins served on api_port."""
    base = f"http://127.0.0.1:{api_port}/sim"
    return {"wechat_api_base": f"{base}/wechat-api", "wecom_api_base": f"{base}/wecom-api"}


@pytest.fixture
async def sim(services: Services, api_port: int) -> AsyncIterator[SimRecorder]:
    """The stand-in APIs, served on api_port over the test's services."""
    app = make_app(services)
    server = TestServer(app, host="127.0.0.1", port=api_port)
    await server.start_server()
    yield app[SIM_RECORDER]
    await server.close()


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


async def clerk_phone_page(browser: Any, base: str, username: str, password: str) -> Any:
    """A clerk's console on a phone (390×844, touch, twice the pixels), logged in."""
    page = await (await browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                            is_mobile=True, device_scale_factor=2)).new_page()
    await console_login(page, base, username, password)
    return page
