"""Forms and tables under the console's stylesheet in a real browser (Playwright driving Debian's
Chromium headless): a checkbox's label reads on the checkbox's line in a stacked form (form.stack,
label.check) as in the tickets filters, at a desk's width and a phone's; on a phone a table
scrolls sideways instead of squeezing its columns. Screenshots go to test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.clock import FakeClock
from bot.services import Services
from storage.models import Ticket
from tests.sim_support import console_login, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.test_console_browser import ARTIFACTS, server  # noqa: F401 (fixture)
from tests.test_console_outage_confirm import _whole_cut

STACKED = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<link rel="stylesheet" href="{base}/console/static/console.css"></head><body><main>
<section class="card narrow"><form class="stack">
<label>名称 <input name="title"></label>
<label class="check"><input type="checkbox" name="notify" value="1"> 发布后通知已报名的居民</label>
<label class="check"><input type="checkbox" name="other" value="1"> 只看待人工处理</label>
<button type="submit" class="primary">保存</button>
</form></section></main></body></html>"""


async def _as_admin(page: Any, base: str, services: Services) -> None:
    await console_login(page, base, "admin", services.settings.console_admin_password)


async def _on_its_line(page: Any, label: Any) -> None:
    """The checkbox and its words side by side, centred on one line, the box its own size."""
    box = await label.locator("input[type=checkbox]").bounding_box()
    whole = await label.bounding_box()
    assert box is not None and whole is not None
    assert 10 <= box["width"] <= 20 and 10 <= box["height"] <= 20, box  # not stretched nor padded
    assert whole["height"] < 2 * 24, (whole, box)  # one line, not the box above its words
    assert whole["width"] > box["width"] + 40  # the words beside it
    centre = box["y"] + box["height"] / 2
    assert abs(centre - (whole["y"] + whole["height"] / 2)) <= 3


@pytest.mark.parametrize("width", [1366, 390])
async def test_a_checkbox_label_reads_on_one_line_in_a_stacked_form(
    services: Services, server: TestServer, backend: str, width: int,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page = await browser.new_page(viewport={"width": width, "height": 700})
            await page.set_content(STACKED.format(base=base), wait_until="load")
            for label in await page.locator("label.check").all():
                await _on_its_line(page, label)
            title = await page.locator("input[name=title]").bounding_box()
            assert title is not None and title["width"] > 200  # a text field still fills the card
            await page.screenshot(path=str(ARTIFACTS / f"console-stacked-checkbox-{width}{suffix}.png"), full_page=True)

            await _as_admin(page, base, services)
            await page.goto(f"{base}/console/tickets")
            for label in await page.locator("form.filters label.check").all():
                await _on_its_line(page, label)
            hint_fits = await page.evaluate("""() => {
                const box = document.querySelector("input[name=q]");
                const probe = document.createElement("span");
                probe.style.font = getComputedStyle(box).font;
                probe.style.whiteSpace = "nowrap";
                probe.textContent = box.placeholder;
                document.body.appendChild(probe);
                const style = getComputedStyle(box);
                const room = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
                return probe.getBoundingClientRect().width + 4 < room;  // a text that just fits is drawn cut
            }""")
            assert hint_fits  # 搜索's hint was cut at 居民说的
            # a long paste into 搜索 was a bare English 400 (the request line over 8 KB): the field
            # keeps what the search reads (100 characters), as do the audit log's filters
            await page.fill("input[name=q]", "楼上漏水" * 750)
            await page.click("form.filters button[type=submit]")
            await page.wait_for_url(f"{base}/console/tickets?**")
            assert "共 0 件" in await page.inner_text("h1")
            assert len(await page.input_value("input[name=q]")) == 100
            await page.goto(f"{base}/console/audit")
            await page.fill("input[name=actor]", "x" * 5000)
            await page.fill("input[name=action]", "y" * 5000)
            await page.click("form.filters button[type=submit]")
            await page.wait_for_url(f"{base}/console/audit?**")
            assert "共 0 条" in await page.inner_text("h1")
        finally:
            await browser.close()


async def test_tables_on_a_phone_scroll_rather_than_squeeze(
    services: Services, server: TestServer, clock: FakeClock, backend: str,  # noqa: F811
) -> None:
    """390 px: an audit row's detail was broken letter by letter into a row as tall as the screen,
    an outage's notice a character a line: they keep a readable width, the table scrolls in its box."""
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await _whole_cut(services, clock)
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page = await (await browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                                    is_mobile=True, has_touch=True)).new_page()
            await _as_admin(page, base, services)
            await page.goto(f"{base}/console/outages")
            notice = await page.locator("table.outages td.notice").first.bounding_box()
            assert notice is not None and notice["width"] >= 150 and notice["height"] < 120, notice
            await page.screenshot(path=str(ARTIFACTS / f"console-outages-phone{suffix}.png"), full_page=True)
            await page.goto(f"{base}/console/audit")
            await page.screenshot(path=str(ARTIFACTS / f"console-audit-phone{suffix}.png"), full_page=True)
            for cell in await page.locator("table.audit td.detail").all():
                box = await cell.bounding_box()
                assert box is not None and box["width"] >= 160 and box["height"] < 200, box
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390  # the page itself does not scroll sideways: the table does, in its box
        finally:
            await browser.close()


async def test_an_audit_rows_ticket_number_stays_on_one_line_at_a_desk(
    services: Services, server: TestServer, backend: str,  # noqa: F811
) -> None:
    """1366 px: beside a roster import's long detail the 对象 column was squeezed and a ticket number
    broke in two (20261123- / 0001), a link hard to read and to click; it stays whole."""
    from playwright.async_api import async_playwright

    from bot import staff_actions
    from tests.staff_support import load_roster, make_ticket

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await load_roster(services)
    number = await make_ticket(services, None, status="open", summary="9号楼电梯按钮不灵", building="9")
    await staff_actions.staff_transition(services, number, "assign", "admin", assignee="sunli")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page = await (await browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")).new_page()
            await _as_admin(page, base, services)
            await page.goto(f"{base}/console/audit")
            await page.screenshot(path=str(ARTIFACTS / f"console-audit-desk{suffix}.png"), full_page=True)
            link = page.locator(f"table.audit td.target a[href='/console/tickets/{number}']").first
            assert (await link.inner_text()) == number
            box = await link.bounding_box()
            assert box is not None and box["height"] < 30, box  # one line
        finally:
            await browser.close()


async def test_closing_a_ticket_asks_first(
    services: Services, server: TestServer, backend: str,  # noqa: F811
) -> None:
    """关闭 and 撤销 sit beside 办结 and ended a ticket unresolved at one click: they ask first, and
    a 取消 in the dialog leaves the ticket as it was; 办结 does not ask."""
    from playwright.async_api import async_playwright

    from tests.staff_support import make_ticket

    number = await make_ticket(services, None, status="open", summary="5号楼楼道灯不亮", building="5")
    base = str(server.make_url("/")).rstrip("/")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            answers = ["dismiss", "accept"]
            dialogs: list[str] = []

            async def answer(dialog: Any) -> None:
                dialogs.append(dialog.message)
                await (dialog.dismiss() if answers.pop(0) == "dismiss" else dialog.accept())

            page.on("dialog", answer)
            await _as_admin(page, base, services)
            await page.goto(f"{base}/console/tickets/{number}")
            assert await page.get_attribute("button.act-resolve", "data-confirm") is None
            await page.click("button.act-close")  # no reason: the browser holds the form (required)
            await page.wait_for_timeout(300)
            assert dialogs == [] and await page.eval_on_selector(
                "form.close-form input[name=note]", "e => e.required && !e.validity.valid")
            await page.fill("form.close-form input[name=note]", "居民说不用修了")
            await page.click("button.act-close")
            await page.wait_for_timeout(300)  # a dismissed dialog sends nothing: nothing to wait for
            assert dialogs == [f"确定关闭工单 {number}？关闭即不再处理，按未解决计入统计。"]
            assert "待派单" in await page.inner_text(".heading")
            async with services.sessions() as session:
                assert await session.scalar(select(Ticket.status).where(Ticket.number == number)) == "open"
            await page.click("button.act-close")
            await page.wait_for_selector(".flash.ok")
            assert "已关闭" in await page.inner_text(".flash.ok") and len(dialogs) == 2
            assert "居民说不用修了" in await page.inner_text("ol.timeline")
        finally:
            await browser.close()


async def test_a_rows_status_badges_wrap_on_a_phone_rather_than_run_off(
    services: Services, server: TestServer, clock: FakeClock, backend: str,  # noqa: F811
) -> None:
    """390 px, 全部工单: a job past its 接单 limit beside a 水电气暖 badge read 待人工处理 and then
    接单超时 cut at the table's edge (the rest only by scrolling sideways, unseen). The status cell
    wraps: both badges whole, in sight, one under the other."""
    from playwright.async_api import async_playwright

    from bot import schedule, staff_actions
    from tests.staff_support import load_roster, make_ticket

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await load_roster(services)
    number = await make_ticket(services, None, status="open", summary="5号楼整栋停水了", building="5", urgency="utility")
    await staff_actions.staff_transition(services, number, "assign", "admin", assignee="wangwei")
    clock.advance(minutes=31)
    await schedule.run_due(services)
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page = await (await browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                                    is_mobile=True, has_touch=True)).new_page()
            await _as_admin(page, base, services)
            await page.goto(f"{base}/console/tickets")
            await page.screenshot(path=str(ARTIFACTS / f"console-tickets-phone-badges{suffix}.png"), full_page=True)
            row = page.locator("table.list tbody tr").filter(has=page.locator(f"a[href='/console/tickets/{number}']"))
            assert await row.locator(".badge.u-utility").inner_text() == "较急（24小时）"  # the 24-hour class, 44cc7c3
            status, breach = row.locator(".badge.st-escalated"), row.locator(".badge.overdue")
            assert (await status.inner_text(), await breach.inner_text()) == ("待人工处理", "接单超时")
            wrap = await page.locator(".table-wrap").bounding_box()
            assert wrap is not None
            right = min(390, wrap["x"] + wrap["width"])
            for badge in (status, breach):
                box = await badge.bounding_box()
                assert box is not None and box["height"] < 30, box  # whole, on one line
                assert box["x"] >= wrap["x"] and box["x"] + box["width"] <= right, (box, wrap)  # in sight
            assert (await page.evaluate("document.documentElement.scrollWidth")) <= 390
        finally:
            await browser.close()
