"""The console's 志愿活动 page in a real browser (Playwright driving Debian's Chromium headless), as
a clerk uses it: an activity taken out of config/activities.toml with residents still signed up is
marked so, and the clerk calls it off from its row with a reason, confirming the dialog.
Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestServer

from bot import activities
from bot.services import Services
from tests.sim_support import clerk_page, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.test_activities import TOML, sign, svc, wechat_to  # noqa: F401 (svc: fixture)
from tests.test_console_browser import ARTIFACTS, server  # noqa: F401 (fixture)


async def test_a_clerk_calls_off_an_activity_taken_out_of_the_file_in_chromium(
    svc: Services, server: TestServer, backend: str, tmp_path: Path,  # noqa: F811
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await activities.load_activities(svc, svc.extras["test.activities_path"])  # after the app's own load
    for openid in ("oB1", "oB2"):
        await sign(svc, openid, "visit")
    await sign(svc, "oB3", "clean")
    smaller = tmp_path / "smaller.toml"
    smaller.write_text(TOML.split('[[activities]]\nkey = "visit"')[0], encoding="utf-8")  # visit taken out
    await activities.load_activities(svc, smaller)
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            staff, dialogs = await clerk_page(browser, base, "admin", svc.settings.console_admin_password)
            await staff.click("header nav >> text=志愿活动")
            await staff.wait_for_url(f"{base}/console/activities")
            table = await staff.inner_text("table.activities")
            assert "楼道清洁志愿行动" in table and "敬老院探访" in table and "上周的义诊" not in table
            assert "已从活动安排中删除，仍有 2 人报名" in table
            assert "visit" not in table and "clean" not in table and "activities.toml" not in await staff.inner_text("main")
            await staff.screenshot(path=str(ARTIFACTS / f"console-activities{suffix}.png"), full_page=True)

            visit = staff.locator("tr", has_text="敬老院探访")
            await visit.locator("input[name=reason]").fill("场地临时维修")
            await visit.locator("button", has_text="取消活动").click()
            await staff.wait_for_selector(".flash.ok")
            flash = await staff.inner_text(".flash.ok")
            assert "已取消活动“敬老院探访”" in flash and "场地临时维修" in flash and "已通知报名的 2 位居民" in flash
            assert dialogs and "已报名的 2 位居民会各收到一次取消通知" in dialogs[0]
            table = await staff.inner_text("table.activities")
            assert "已从活动安排中删除" not in table and "原因：场地临时维修" in table
            assert await staff.locator("tr", has_text="敬老院探访").locator("button").count() == 0
            await staff.screenshot(path=str(ARTIFACTS / f"console-activities-cancelled{suffix}.png"), full_page=True)
        finally:
            await browser.close()
    for openid in ("oB1", "oB2"):
        assert len([p for p in await wechat_to(svc, openid) if "【活动取消】" in p]) == 1
    assert not [p for p in await wechat_to(svc, "oB3") if "【活动取消】" in p]
