"""Words the console cut where a clerk cannot read them whole (Chromium). On a phone (390 px) the
留意 row of an urgent job cut its words with … (9栋1单元电梯卡住了有人出… — 不来 lost, and a phone
has no hover to show the title): they wrap. At a desk a ticket page's label 居民说（最近几条） broke
after 几, its 条） alone on a second line: the label column is as wide as its longest label. Both
backends."""

from __future__ import annotations

from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.console import auth
from bot.services import Services
from storage.models import Ticket
from tests.sim_support import clerk_page, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.staff_support import load_roster, make_ticket
from tests.test_console_browser import ARTIFACTS, server  # noqa: F401 (fixture)

LIFT = "电梯｜9栋1单元｜9栋1单元电梯卡住了有人出不来 老人在里面喊 已经十多分钟了"


async def _urgent_lift_dispatched(services: Services) -> None:
    number = await make_ticket(services, "o_lift", status="open", summary=LIFT, building="9", urgency="urgent")
    async with services.sessions() as session, session.begin():
        ticket = await session.scalar(select(Ticket).where(Ticket.number == number))
        assert ticket is not None and ticket.category == "电梯"  # as the complaint flow files it
        ticket.assignee, ticket.status, ticket.dispatched_at = "sunli", "dispatched", services.clock.now()


async def test_an_urgent_rows_words_and_a_long_label_are_read_whole(
    services: Services, server: TestServer, backend: str,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await load_roster(services)
    await _urgent_lift_dispatched(services)
    handoff = await make_ticket(services, "o_hand", kind="handoff", summary="居民要求人工服务", building=None, fields={
        "reason": "居民要求人工服务", "said": ["我家楼上天天半夜装修"], "text": "转人工"})
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page, _ = await clerk_page(browser, base, "liu", "staffpass1")
            await page.goto(f"{base}/console/tickets/{handoff}")
            label = page.locator(".details dt", has_text="居民说（最近几条）")
            line = await page.locator(".details dt").first.bounding_box()
            box = await label.bounding_box()
            assert box is not None and line is not None and box["height"] < 1.5 * line["height"], (box, line)
            await page.screenshot(path=str(ARTIFACTS / f"console-long-label{suffix}.png"))

            await page.set_viewport_size({"width": 390, "height": 844})
            await page.goto(f"{base}/console")
            words = page.locator("#watch .text").first
            assert await words.inner_text() == LIFT
            cut = await words.evaluate("e => e.scrollWidth > e.clientWidth + 1")
            assert not cut
            assert await page.evaluate("() => document.documentElement.scrollWidth") <= 390
            await page.screenshot(path=str(ARTIFACTS / f"console-watch-phone{suffix}.png"))
        finally:
            await browser.close()
