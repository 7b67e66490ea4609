"""The console's 停水停电 page in a real browser (Playwright driving Debian's Chromium headless), as
a clerk uses it: a 全小区 announcement ended building by building, a new one announced from the
form with 全小区 chosen as its 范围. Screenshots go to test-artifacts/."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestServer

from bot import outages
from bot.clock import FakeClock
from bot.services import Services
from tests.sim_support import clerk_page, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.test_console_browser import ARTIFACTS, server  # noqa: F401 (fixture)
from tests.test_console_outage_confirm import _whole_cut
from tests.wecom_driver import outbox_rows


async def _announced(svc: Services, clock: FakeClock) -> None:
    """A 全小区 water cut with residents registered (tests.test_console_outage_confirm), and a power
    cut of three buildings."""
    await _whole_cut(svc, clock)
    async with svc.sessions() as session, session.begin():
        await outages.announce(svc, session, kind="power", buildings=("4", "5", "6"), reason="线路检修",
                               expected_end=clock.now() + timedelta(hours=2), actor="liustaff", via="wecom")


async def test_a_clerk_ends_one_building_of_a_whole_community_cut_in_chromium(
    services: Services, server: TestServer, clock: FakeClock, backend: str,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await _announced(services, clock)
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            staff, dialogs = await clerk_page(browser, base, "admin", services.settings.console_admin_password)
            await staff.click("header nav >> text=停水停电")
            await staff.wait_for_url(f"{base}/console/outages")
            await staff.screenshot(path=str(ARTIFACTS / f"console-outages{suffix}.png"), full_page=True)

            water = staff.locator("tr", has_text="全小区停水")
            await water.locator("input[name=buildings]").fill("3")
            await water.locator("button", has_text="已恢复").click()
            await staff.wait_for_selector(".flash.ok")
            assert "已标记恢复：3号楼停水（主管道爆管）已于今天10:00恢复。已通知登记的 1 户居民" in await staff.inner_text(".flash.ok")
            # the number the server counted for 3号楼 alone (the 5号楼 resident is not told)
            assert dialogs == ["确定3号楼已恢复？其余楼栋仍未恢复；3号楼登记的 1 户居民会收到通知。"]
            table = await staff.inner_text("table.outages")
            assert "全小区（3号楼除外）停水（主管道爆管）" in table and "3号楼停水（主管道爆管）已于今天10:00恢复" in table
            assert "已恢复 11-23 10:00 管理员" in table and "admin" not in table  # who marked it, by name
            await staff.screenshot(path=str(ARTIFACTS / f"console-outages-partly-ended{suffix}.png"), full_page=True)

            # a new one from the form: 全小区 is chosen as the 范围, no building typed
            form = staff.locator("form.stack")
            await form.locator("select[name=kind]").select_option(label="停气")
            await form.locator("select[name=whole]").select_option(label="全小区（不用填楼号）")
            await form.locator("input[name=reason]").fill("燃气管道检修")
            await form.locator("button", has_text="发布").click()
            await staff.wait_for_selector(".flash.ok")
            assert "已发布：全小区停气（燃气管道检修），恢复时间待定" in await staff.inner_text(".flash.ok")
            await staff.screenshot(path=str(ARTIFACTS / f"console-outages-announced{suffix}.png"), full_page=True)
        finally:
            await browser.close()
    assert [p.target for p in await outbox_rows(services, "wechat")] == ["oThreeA"]
