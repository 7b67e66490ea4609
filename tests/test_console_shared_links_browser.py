"""In Chromium, a ticket's history shows a shared link marked [链接] with its address: the https
one a link that opens in a new tab, the javascript: one plain text that nothing can run; a file
marked [文件] with its size. Both backends; screenshot in test-artifacts/."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.console import auth
from bot.services import Services
from bot.sim.wechat_client import WeChatSigner, message_xml
from storage.models import Ticket
from tests.sim_support import clerk_page, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.test_console_browser import ARTIFACTS, server  # noqa: F401 (fixture)
from tests.test_console_shared_links import TITLE


class _Poster:
    """Posts signed WeChat XML to the running app's /wechat, as tests/conftest.py's WeChat does."""

    def __init__(self, http: aiohttp.ClientSession, base: str, services: Services) -> None:
        s = services.settings
        self.http, self.base = http, base
        self.signer = WeChatSigner(s.wechat_token, s.wechat_appid, s.wechat_aes_key)

    async def say(self, msg_type: str, openid: str, **fields: Any) -> None:
        signed = self.signer.wrap(message_xml(msg_type, openid, **fields))
        async with self.http.post(f"{self.base}/wechat", params=signed.params, data=signed.body) as resp:
            assert resp.status == 200, await resp.text()


async def test_a_shared_link_is_marked_and_only_an_http_one_opens(
    services: Services, server: TestServer, backend: str,
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    async with aiohttp.ClientSession() as http:
        wx = _Poster(http, base, services)
        await wx.say("text", "o_share", Content="喂 有人吗 转人工")
        await wx.say("link", "o_share", Title=TITLE, Description="", Url="javascript:alert(document.cookie)")
        await wx.say("link", "o_share", Title="停车收费标准", Description="", Url="https://mp.weixin.qq.com/s/abc")
        await wx.say("file", "o_share", Title="材料清单.pdf", FileTotalLen="12345")
    async with services.sessions() as session:
        number = (await session.scalars(select(Ticket.number).where(Ticket.kind == "handoff"))).one()
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page, dialogs = await clerk_page(browser, base, "liu", "staffpass1")
            await page.goto(f"{base}/console/tickets/{number}")
            shared = page.locator("ol.timeline .shared-link")
            assert await shared.count() == 2
            bad, good = shared.nth(0), shared.nth(1)
            assert (await bad.inner_text()).startswith("[链接] 关于小区停车<b>收费</b>的通知")
            assert await bad.locator("a").count() == 0 and "javascript:alert" in await bad.locator(".shared-url").inner_text()
            link = good.locator("a.shared-url")
            assert await link.get_attribute("href") == "https://mp.weixin.qq.com/s/abc"
            assert await link.get_attribute("target") == "_blank" and "noopener" in (await link.get_attribute("rel") or "")
            assert "（12 KB）" in await page.locator("ol.timeline .shared-file").inner_text()
            await bad.locator(".shared-url").click()  # text: nothing runs, nothing opens
            assert dialogs == [] and page.url.endswith(f"/console/tickets/{number}")
            await page.locator("ol.timeline").scroll_into_view_if_needed()
            await page.screenshot(path=str(ARTIFACTS / f"console-shared-links{suffix}.png"), full_page=True)
            await page.close()
        finally:
            await browser.close()
