"""A ticket page's 派单 / 改派 selects nobody (请选择), the present owner marked 现负责人 and not
selectable: after a 改派 the select still had the new owner selected, so a second press of 改派 gave
the job to the same person again and restarted their 接单 window. A 改派 to the present owner sent
anyway (an old page, a script) is refused in words, nothing changed, nobody pushed, the refusal
audited. Both backends."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.console import auth
from bot.services import Services
from tests.sim_support import clerk_page, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.staff_support import audit_rows, logged_in
from tests.test_console_browser import ARTIFACTS, server  # noqa: F401 (fixture)
from tests.wecom_driver import actions, new_ticket, outbox_rows, ticket

Client = TestClient[Any, Any]


def _select(page: str) -> str:
    start = page.index('<select name="assignee"')
    return page[start:page.index("</select>", start)]


async def test_reassigning_selects_nobody_and_refuses_the_present_owner(client: Client, services: Services) -> None:
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    job = (await new_ticket(services, resident="oA", building="3")).ticket
    assert job.assignee == "wangwei"
    csrf = await logged_in(client, "liu", "staffpass1")
    box = _select(await (await client.get(f"/console/tickets/{job.number}")).text())
    assert re.findall(r"<option[^>]*selected[^>]*>([^<]*)<", box) == ["请选择"], box
    assert re.search(r'<option value="wangwei" disabled>王伟[^<]*（现负责人）</option>', box), box

    page = await (await client.post(f"/console/tickets/{job.number}/transition", data={
        "action": "assign", "assignee": "zhaoqiang", "csrf_token": csrf,
        "seen_status": job.status, "seen_assignee": "wangwei"})).text()
    assert "已改派给 赵强" in page
    box = _select(page)  # the page it comes back to: still nobody selected, 赵强 now the one marked
    assert re.findall(r"<option[^>]*selected[^>]*>([^<]*)<", box) == ["请选择"], box
    assert re.search(r'<option value="zhaoqiang" disabled>赵强[^<]*（现负责人）</option>', box), box
    given = await actions(services, job.number)
    pushed = len(await outbox_rows(services, "wecom", "zhaoqiang"))

    page = await (await client.post(f"/console/tickets/{job.number}/transition", data={
        "action": "assign", "assignee": "zhaoqiang", "csrf_token": csrf,
        "seen_status": (await ticket(services, job.number)).status, "seen_assignee": "zhaoqiang"})).text()
    assert "赵强 已经是这张工单的负责人，工单未改动" in page
    assert (await ticket(services, job.number)).assignee == "zhaoqiang"
    assert await actions(services, job.number) == given  # no second 改派 in the history
    assert len(await outbox_rows(services, "wecom", "zhaoqiang")) == pushed  # no second card
    refused = await audit_rows(services, "ticket.assign.refused")
    assert [(r.actor, r.target, r.detail["reason"]) for r in refused] == [("liu", job.number, "same_assignee")]


async def test_a_second_press_of_reassign_hands_nothing_on_in_a_phones_browser(
    services: Services, server: TestServer, backend: str,
) -> None:
    """The clerk's own way: 改派 to 赵强 on a 390 px screen, then 改派 pressed again at once — the
    browser asks to choose (the select is back at 请选择) and the job stays 赵强's, one 改派 in its
    history."""
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    job = (await new_ticket(services, resident="oA", building="3")).ticket
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page, _ = await clerk_page(browser, base, "liu", "staffpass1")
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.goto(f"{base}/console/tickets/{job.number}")
            choice = page.locator("select[name=assignee]")
            assert await choice.input_value() == ""
            await choice.select_option("zhaoqiang")
            await page.locator("form:has(select[name=assignee]) button[type=submit]").click()
            await page.wait_for_load_state()
            assert "已改派给 赵强" in await page.content()
            assert await choice.input_value() == ""
            await page.locator("form:has(select[name=assignee]) button[type=submit]").click()
            assert await choice.evaluate("el => !el.checkValidity()")
            await choice.scroll_into_view_if_needed()
            await page.screenshot(path=str(ARTIFACTS / f"console-reassign-again-phone{suffix}.png"))
            await page.close()
        finally:
            await browser.close()
    assert (await ticket(services, job.number)).assignee == "zhaoqiang"
    assert (await actions(services, job.number)).count("assign") == 2  # 派单 to 王伟, one 改派
