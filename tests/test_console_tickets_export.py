"""全部工单's 下载表格: the tickets the filters select, every page, as a CSV Excel opens (UTF-8 with
a BOM, Chinese headers), phones masked as in pushes, the resident's words kept from running as a
formula (= + - @ prefixed with '), and each export audited with what it selected. Both backends;
in Chromium the link downloads what the filtered list shows."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.console import auth, queries
from bot.services import Services
from tests.sim_support import clerk_page, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.staff_support import audit_rows, load_roster, logged_in, make_ticket
from tests.test_console_browser import ARTIFACTS, server  # noqa: F401 (fixture)

Client = TestClient[Any, Any]
FORMULAS = ("=HYPERLINK(\"http://x.example\",\"点我\")", "+86 13812345678 楼道灯不亮", "-1+1 电梯又坏了", "@SUM(1,2) 垃圾没人收")


def _rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


async def _tickets(services: Services) -> list[str]:
    await load_roster(services)
    numbers = [await make_ticket(services, None, summary=words, building="3") for words in FORMULAS]
    numbers.append(await make_ticket(services, "o_hand", kind="handoff", summary="居民要求人工服务｜我电话13998765432"))
    return numbers


async def test_the_filtered_list_downloads_as_a_safe_csv(client: Client, services: Services) -> None:
    numbers = await _tickets(services)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await logged_in(client, "liu", "staffpass1")
    listing = await (await client.get("/console/tickets?kind=complaint&q=")).text()
    assert 'href="/console/tickets.csv?kind=complaint&amp;q="' in listing

    resp = await client.get("/console/tickets.csv", params={"kind": "complaint"})
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"] and ".csv" in resp.headers["Content-Disposition"]
    rows = _rows(await resp.read())
    header, lines = rows[0], rows[1:]
    assert header[:8] == ["工单号", "受理时间", "类型", "问题类别", "紧急程度", "状态", "时限", "摘要"]
    assert sorted(line[0] for line in lines) == sorted(numbers[:4])  # the hand-off filtered out
    summaries = {line[0]: line[7] for line in lines}
    assert summaries[numbers[0]] == "'=HYPERLINK(\"http://x.example\",\"点我\")"
    assert summaries[numbers[1]] == "'+86 138****5678 楼道灯不亮"  # masked as in pushes, and no formula
    assert summaries[numbers[2]].startswith("'-1+1") and summaries[numbers[3]].startswith("'@SUM")
    assert all(line[2] == "报事报修" and line[5] == "待人工处理" for line in lines), lines
    assert "13812345678" not in (await (await client.get("/console/tickets.csv")).read()).decode("utf-8-sig")

    [first, everything] = await audit_rows(services, "ticket.export")
    assert first.actor == "liu" and first.detail == {"filter": "类型：报事报修", "rows": 4, "total": 4}
    assert everything.detail == {"filter": "全部工单", "rows": 5, "total": 5}
    await auth.create_user(services, "boss", "bosspass1", "admin")
    client.session.cookie_jar.clear()
    await logged_in(client, "boss", "bosspass1")
    log = await (await client.get("/console/audit")).text()
    assert "导出工单列表（CSV）" in log and "筛选条件</b>：类型：报事报修" in log and "导出件数</b>：4" in log


async def test_a_search_with_a_phone_is_logged_masked_and_every_page_is_exported(
    client: Client, services: Services, monkeypatch: Any,
) -> None:
    await _tickets(services)
    monkeypatch.setattr(queries, "PAGE_SIZE", 2)  # the list pages by 2: the export is not one page
    await auth.create_user(services, "ro", "readonly1", "readonly", display_name="只读")
    await logged_in(client, "ro", "readonly1")  # a read-only user may export what they may read
    rows = _rows(await (await client.get("/console/tickets.csv?q=13998765432&page=1")).read())
    assert [r[2] for r in rows[1:]] == ["转人工"] and "139****5432" in rows[1][7]
    rows = _rows(await (await client.get("/console/tickets.csv?page=2")).read())
    assert len(rows) == 1 + 5
    logged = [r.detail for r in await audit_rows(services, "ticket.export")]
    assert logged[0] == {"filter": "搜索：139****5432", "rows": 1, "total": 1}
    odd = await client.get("/console/tickets.csv?kind=%00%3D&status=nope&page=-9&overdue=x")
    assert odd.status == 200 and _rows(await odd.read())[1:] == []  # nothing matches, nothing lost, no 500


async def test_the_export_needs_a_login(client: Client) -> None:
    resp = await client.get("/console/tickets.csv", allow_redirects=False)
    assert resp.status in (302, 303) and "/console/login" in resp.headers["Location"]


async def test_the_list_link_downloads_what_the_list_shows(services: Services, server: TestServer, backend: str) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    numbers = await _tickets(services)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page, _ = await clerk_page(browser, base, "liu", "staffpass1")
            await page.goto(f"{base}/console/tickets")
            await page.select_option("select[name=kind]", "handoff")
            await page.click("form.filters button[type=submit]")
            await page.wait_for_url("**kind=handoff**")
            await page.screenshot(path=str(ARTIFACTS / f"console-tickets-export{suffix}.png"))
            async with page.expect_download() as info:
                await page.click("#csv-download")
            download = await info.value
            assert download.suggested_filename.startswith("工单列表_") and download.suggested_filename.endswith(".csv")
            body = open(await download.path(), "rb").read()
            rows = _rows(body)
            assert [r[0] for r in rows[1:]] == [numbers[4]] and "139****5432" in rows[1][7]
            await page.close()
        finally:
            await browser.close()


async def test_a_nul_in_the_filters_is_no_server_error(client: Client, services: Services) -> None:
    """?kind=%00 was a 500 on PostgreSQL (it refuses NUL in text), on the list as on the export."""
    await _tickets(services)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await logged_in(client, "liu", "staffpass1")
    for path in ("/console/tickets", "/console/tickets.csv"):
        for query in ("kind=%00", "q=%00%00", "grid=G1%00&assignee=%00&of=%00"):
            assert (await client.get(f"{path}?{query}")).status == 200, (path, query)
    listing = await (await client.get("/console/tickets?q=%00")).text()
    assert "共 5 件" in listing
