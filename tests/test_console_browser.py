"""The console in a real browser (Playwright driving Debian's Chromium headless) against the whole
app on a loopback port with the simulator on: a resident asks for a person in the simulator's chat,
a staff member logs in, finds the hand-off at the top of the queue, answers it from the ticket
page, and the answer reaches the resident's chat through the outbox and the stand-in API.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import HTTP, create_app
from bot.channels import push
from bot.clock import FakeClock
from bot.console import auth
from bot.services import Services
from bot.sim.api import SIM_RECORDER
from bot.staff_actions import staff_transition
from storage.models import OutboxItem, Ticket
from tests.sim_support import console_login, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
RESIDENT = "oSimZhang"  # the simulator page's default resident
ANSWER = "王阿姨您好，物业师傅今天下午3点上门查看漏水。"


@pytest.fixture
async def server(services: Services, port: int) -> AsyncIterator[TestServer]:
    """The whole app on a real loopback port, with the outbox sender running as in `make run`."""
    app = create_app(services.settings, services=services)
    srv = TestServer(app, host="127.0.0.1", port=port)
    await srv.start_server()
    sender = asyncio.create_task(push.run_sender(services, app[HTTP], asyncio.Event()))
    yield srv
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    await srv.close()


async def _busy_day(svc: Services, clock: FakeClock) -> None:
    """A few tickets around the hand-off, so the queue and the dashboard look like a real morning."""
    from tests.wecom_driver import new_ticket

    async def complaint(summary: str, building: str | None, urgency: str, category: str) -> Ticket:
        """A report as the complaint flow files it: the classifier's category, routed."""
        return (await new_ticket(svc, resident=None, fields={"description": summary}, summary=summary,
                                 building=building, urgency=urgency, category=category)).ticket

    clock.advance(hours=-3)
    fixed = await complaint("3号楼2单元楼道灯不亮", "3", "normal", "照明")
    clock.advance(minutes=10)
    await staff_transition(svc, fixed.number, "accept", "wangwei")
    clock.advance(hours=1)
    await staff_transition(svc, fixed.number, "resolve", "wangwei", note="已更换灯泡")
    async with svc.sessions() as session, session.begin():
        row = await session.get(Ticket, fixed.id)
        assert row is not None
        row.satisfaction, row.satisfaction_label = 5, "满意"
    await complaint("6号楼电梯困人", "6", "urgent", "电梯")
    whistle = await complaint("8号楼外墙瓷砖脱落", "8", "normal", "物业服务")
    await staff_transition(svc, whistle.number, "escalate", "sunli", note="需要住建部门协同")
    clock.advance(hours=1, minutes=30)
    await complaint("小区东门路灯不亮，不知道是几号楼", None, "normal", "照明")
    clock.advance(minutes=20)


async def _eventually(check: Any, what: str, seconds: float = 15) -> None:
    """Wait (in real time, for the browser and the sender task — never for the fake clock)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_staff_answer_a_handoff_from_the_queue_in_chromium(
    services: Services, server: TestServer, clock: FakeClock, backend: str,
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")

    await _busy_day(services, clock)
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            # The resident, in the simulator's chat: a message with markup, then 转人工.
            resident = await browser.new_page(viewport={"width": 1100, "height": 800})
            await resident.goto(f"{base}/sim")
            await resident.fill("#text", "楼上漏水<script>alert(1)</script>好几天了")
            await resident.click("#send")
            await resident.wait_for_selector("#chat .row.bot .text", timeout=10_000)
            bots = await resident.locator("#chat .row.bot").count()
            await resident.fill("#text", "转人工")
            await resident.click("#send")
            await _eventually(lambda: _more(resident, bots), "the hand-off reply")

            async with services.sessions() as session:
                ticket = await session.scalar(select(Ticket).where(Ticket.kind == "handoff"))
                waiting = (await session.scalars(select(Ticket.number).where(Ticket.status == "escalated"))).all()
            assert len(waiting) == 2  # the hand-off and the 吹哨
            assert ticket is not None and ticket.status == "escalated" and ticket.resident == RESIDENT
            number = ticket.number

            # The desk clerk: log in (the demo admin is seeded on first use), the queue first.
            staff = await (await browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")).new_page()
            dialogs: list[str] = []
            staff.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
            await staff.goto(f"{base}/console")
            assert "/console/login" in staff.url
            await staff.screenshot(path=str(ARTIFACTS / f"console-login{suffix}.png"))
            await staff.fill("input[name=username]", "admin")
            await staff.fill("input[name=password]", "wrong-password")
            await staff.click("button[type=submit]")
            assert "用户名或密码不正确" in await staff.inner_text(".flash.error")
            await staff.fill("input[name=password]", services.settings.console_admin_password)
            await staff.click("button[type=submit]")
            await staff.wait_for_url(f"{base}/console")
            cookies = {c["name"]: c for c in await staff.context.cookies()}
            assert cookies[auth.COOKIE]["httpOnly"] and cookies[auth.COOKIE]["sameSite"] == "Strict"

            item = staff.locator(f"li.item[data-number='{number}']")
            await item.wait_for()
            assert "转人工" in await item.inner_text()
            # the resident's words, quoted by the card's summary (d6daeda: not again under 居民：)
            said = await item.inner_text()
            assert "<script>alert(1)</script>" in said  # shown as text …
            assert await item.locator("script").count() == 0  # … never as markup
            assert dialogs == []
            await staff.screenshot(path=str(ARTIFACTS / f"console-queue{suffix}.png"), full_page=True)

            # The ticket page: the timeline, how the answer will travel, a canned reply edited.
            await item.locator("a.button").click()
            await staff.wait_for_url(f"{base}/console/tickets/{number}")
            assert "客服消息" in await staff.inner_text(".via")
            timeline = await staff.inner_text("ol.timeline")
            assert "楼上漏水<script>alert(1)</script>好几天了" in timeline and "转人工" in timeline
            await staff.select_option("#canned", index=1)
            assert number in await staff.input_value("#reply-text")
            await staff.fill("#reply-text", ANSWER)
            await staff.screenshot(path=str(ARTIFACTS / f"console-ticket{suffix}.png"), full_page=True)
            await staff.click("#reply-form button[type=submit]")
            await staff.wait_for_selector(".flash.ok")
            assert "以客服消息送达" in await staff.inner_text(".flash.ok")
            assert ANSWER in await staff.inner_text("ol.timeline")
            await staff.screenshot(path=str(ARTIFACTS / f"console-answered{suffix}.png"), full_page=True)

            # Queued for the resident, sent by the outbox, recorded by the stand-in, shown in the chat.
            async with services.sessions() as session:
                queued = (await session.scalars(
                    select(OutboxItem).where(OutboxItem.channel == "wechat", OutboxItem.target == RESIDENT)
                )).all()
            assert any(ANSWER in str(q.payload.get("text")) for q in queued)
            recorder = server.app[SIM_RECORDER]

            async def delivered() -> bool:
                return any(
                    r["api"] == "custom_send" and r["to"] == RESIDENT and ANSWER in str(r["payload"])
                    for r in recorder.records
                )

            await _eventually(delivered, "the answer at the stand-in API")
            await resident.wait_for_selector(f"#chat >> text={ANSWER}", timeout=15_000)
            await resident.screenshot(path=str(ARTIFACTS / f"console-resident-chat{suffix}.png"))

            # The figures, as a desk clerk would check them after answering.
            await staff.click("header nav >> text=数据看板")
            await staff.wait_for_selector("svg.chart")
            kpis = await staff.inner_text(".kpis")
            assert "响应率" in kpis and "100.0%" in kpis  # the one accepted ticket was taken in time
            await staff.screenshot(path=str(ARTIFACTS / f"console-dashboard{suffix}.png"), full_page=True)
        finally:
            await browser.close()


async def _more(page: Any, count: int) -> bool:
    return bool(await page.locator("#chat .row.bot").count() > count)


async def test_the_console_on_a_phone_width_screen(
    services: Services, server: TestServer, clock: FakeClock, backend: str,
) -> None:
    """390 px wide: the menu wraps by item, the ticket list scrolls inside its box, and on a
    ticket page the answer box comes before a long history."""
    from playwright.async_api import async_playwright

    from storage.models import Message
    from tests.staff_support import make_resident, make_ticket

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await _busy_day(services, clock)
    await make_resident(services, "o_phone")
    number = await make_ticket(services, "o_phone", kind="handoff", summary="转人工：楼上漏水很久了")
    async with services.sessions() as session, session.begin():
        for n in range(80):  # a long conversation
            session.add(Message(openid="o_phone", direction="in" if n % 2 else "out", msg_type="text",
                                content=f"第 {n} 条消息：楼上一直在漏水，墙面已经发霉了", created_at=clock.now()))
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page = await (await browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                                    is_mobile=True, device_scale_factor=2)).new_page()
            await console_login(page, base, "liu", "staffpass1")
            await page.screenshot(path=str(ARTIFACTS / f"console-phone-queue{suffix}.png"))
            for link in await page.locator("header nav a").all():
                box = await link.bounding_box()
                assert box is not None and box["height"] < 40 and box["width"] > 50  # one line, a whole word

            async def page_width() -> int:
                return int(await page.evaluate("document.documentElement.scrollWidth"))

            assert await page_width() <= 390
            await page.goto(f"{base}/console/tickets")
            await page.screenshot(path=str(ARTIFACTS / f"console-phone-list{suffix}.png"))
            assert await page_width() <= 390
            wrap = await page.locator(".table-wrap").evaluate("e => [e.scrollWidth, e.clientWidth]")
            assert wrap[0] > wrap[1]  # the table scrolls inside its box
            # what each ticket is about is in sight without scrolling: 摘要 came fifth, off the edge
            summary = await page.locator("table.list td.summary").first.bounding_box()
            assert summary is not None and summary["x"] + 120 < 390, summary
            assert summary["x"] + summary["width"] <= 390, summary  # and whole, wrapping in sight

            await page.goto(f"{base}/console/tickets/{number}")
            await page.screenshot(path=str(ARTIFACTS / f"console-phone-ticket{suffix}.png"))
            assert await page_width() <= 390
            form = await page.locator("#reply-form").bounding_box()
            history = await page.locator("#history").bounding_box()
            assert form is not None and history is not None and form["y"] < history["y"] and form["y"] < 1500
            await page.click("#history summary")  # the history folds away
            assert not await page.locator("ol.timeline").is_visible()
        finally:
            await browser.close()


DRAFT = ("李奶奶您好：您问的老年助餐，社区食堂每天中午11点到12点半供餐，凭老年卡每餐8元。"
         "腿脚不方便的话可以登记送餐，志愿者会在中午前送到家门口。需要登记的话，"
         "请把您的楼栋门牌号和方便联系的时间告诉我们，我们明天上午给您回电话确认。")


async def test_a_reply_draft_outlives_an_expired_session_and_stays_with_its_clerk(
    services: Services, server: TestServer, clock: FakeClock, backend: str,
) -> None:
    """A clerk writes a long answer; her session runs out before she sends it. A colleague logs in
    at the same browser and gets an empty box; the clerk logs in again and finds her answer, sends
    it, and the draft is gone. At 1280 and 390 px the restored draft and its note fit."""
    from playwright.async_api import async_playwright

    from bot.console.common import SECRET
    from tests.staff_support import make_resident, make_ticket

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await make_resident(services, "o_elder")
    number = await make_ticket(services, "o_elder", kind="handoff", summary="转人工：独居老人问助餐怎么报名")
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await auth.create_user(services, "wang", "staffpass2", "staff", display_name="王芳")
    ticket_url = f"{base}/console/tickets/{number}"
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            page = await context.new_page()

            async def log_in(username: str, password: str) -> None:
                await page.fill("input[name=username]", username)
                await page.fill("input[name=password]", password)
                await page.click("button[type=submit]")
                await page.wait_for_url(ticket_url)

            await page.goto(ticket_url)
            await log_in("liu", "staffpass1")
            await page.fill("#reply-text", DRAFT)

            # The session runs out while she writes (the store forgets it), then she presses send.
            cookie = {c["name"]: c["value"] for c in await context.cookies()}[auth.COOKIE]
            found = await auth.load_session(services, server.app[SECRET], cookie)
            assert found is not None
            await services.store.delete(found[0])
            await page.click("#reply-form button[type=submit]")
            await page.wait_for_url(f"{base}/console/login?**")
            assert "登录已过期" in await page.inner_text(".flash.error")

            # A colleague logs in at the same browser: her box is empty.
            await log_in("wang", "staffpass2")
            assert await page.input_value("#reply-text") == ""
            assert not await page.locator("#draft-note").is_visible()
            await page.click("header .who button")
            await page.wait_for_url(f"{base}/console/login")

            # The clerk logs in again: her answer is back, and said to be a kept draft.
            await page.goto(ticket_url)
            await log_in("liu", "staffpass1")
            assert await page.input_value("#reply-text") == DRAFT
            assert "草稿" in await page.inner_text("#draft-note")
            await page.screenshot(path=str(ARTIFACTS / f"console-ticket-draft{suffix}.png"), full_page=True)
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.reload()
            assert await page.input_value("#reply-text") == DRAFT
            assert int(await page.evaluate("document.documentElement.scrollWidth")) <= 390
            note = await page.locator("#draft-note").bounding_box()
            box = await page.locator("#reply-text").bounding_box()
            send = await page.locator("#reply-form button[type=submit]").bounding_box()
            assert note is not None and box is not None and send is not None
            assert box["y"] + box["height"] <= note["y"] and note["y"] + note["height"] <= send["y"]
            await page.screenshot(path=str(ARTIFACTS / f"console-phone-ticket-draft{suffix}.png"), full_page=True)
            await page.set_viewport_size({"width": 1280, "height": 900})

            # Sent: the draft goes, in this browser too.
            await page.click("#reply-form button[type=submit]")
            await page.wait_for_selector(".flash.ok")
            assert "以客服消息送达" in await page.inner_text(".flash.ok")
            assert DRAFT in await page.inner_text("ol.timeline")
            await page.reload()
            assert await page.input_value("#reply-text") == ""
            assert not await page.locator("#draft-note").is_visible()
            kept = await page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('cb-draft:'))")
            assert kept == []

            # A draft nobody came back to for more than a week is dropped.
            await page.fill("#reply-text", "先写一半")
            key = await page.get_attribute("#reply-text", "data-draft")
            await page.evaluate(
                "key => localStorage.setItem(key, JSON.stringify({text: '先写一半', at: Date.now() - 8 * 86400000}))", key,
            )
            await page.reload()
            assert await page.input_value("#reply-text") == ""
        finally:
            await browser.close()


async def test_a_busy_desk_by_keyboard_with_a_double_click(
    services: Services, server: TestServer, clock: FakeClock, backend: str,
) -> None:
    """1366×768: the clerk logs in with the keyboard only and sees where the focus is; 留意 shows
    the urgent ticket nobody has taken; on a hand-off she double-clicks 发送答复 — one request,
    one answer — then closes it with the button's own action."""
    from playwright.async_api import async_playwright

    from tests.staff_support import make_resident, make_ticket
    from tests.wecom_driver import new_ticket

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    await make_resident(services, "o_desk")
    number = await make_ticket(services, "o_desk", kind="handoff", summary="转人工：家里停水三天了")
    trapped = (await new_ticket(services, resident=None, fields={"description": "6号楼电梯困人"}, summary="6号楼电梯困人",
                                category="电梯", urgency="urgent", building="6")).ticket
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page = await (await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")).new_page()
            await page.goto(f"{base}/console/login")
            # autofocus may land just after "load": typing before it went nowhere (flaky under load)
            await page.wait_for_function("document.activeElement && document.activeElement.name === 'username'")
            await page.keyboard.type("liu")  # the user name box has the focus
            await page.keyboard.press("Tab")
            await page.keyboard.type("staffpass1")
            await page.keyboard.press("Enter")
            await page.wait_for_url(f"{base}/console")
            assert trapped.number in await page.inner_text("#watch") and "未接单" in await page.inner_text("#watch")
            await page.keyboard.press("Tab")
            ring = await page.evaluate("() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineColor]; }")
            assert ring == ["solid", "rgb(246, 173, 85)"]  # seen on the green header
            await page.screenshot(path=str(ARTIFACTS / f"console-desk-queue{suffix}.png"))

            await page.goto(f"{base}/console/tickets/{number}")
            posts: list[str] = []
            page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
            await page.fill("#reply-text", "您好，送水车10点到3号楼楼下。")
            await page.dblclick("#reply-form button[type=submit]")
            await page.wait_for_selector(".flash.ok")
            assert "以客服消息送达" in await page.inner_text(".flash.ok")
            assert [u for u in posts if u.endswith("/reply")] == [f"{base}/console/tickets/{number}/reply"]
            rows = await outbox_of(services, "o_desk")
            assert len(rows) == 1
            await page.fill("form.close-form input[name=note]", "已送水，居民说不用再跟进")  # 关闭 needs a reason
            page.once("dialog", lambda d: asyncio.ensure_future(d.accept()))  # 关闭 asks first
            await page.click("form.actions button[value=close]")
            await page.wait_for_selector(".flash.ok >> text=已关闭")
            await page.screenshot(path=str(ARTIFACTS / f"console-desk-closed{suffix}.png"), full_page=True)
        finally:
            await browser.close()


async def outbox_of(svc: Services, target: str) -> list[OutboxItem]:
    """The pushes queued for a resident."""
    async with svc.sessions() as session:
        return list((await session.scalars(select(OutboxItem).where(OutboxItem.target == target))).all())


async def test_the_queue_left_open_shows_a_new_hand_off_by_itself(
    services: Services, server: TestServer, clock: FakeClock, backend: str,
) -> None:
    """A clerk leaves the queue on screen: a resident asks for a person, and within the minute the
    card is there without a click (the browser's clock run forward, no waiting); not while she is
    typing in a field."""
    from playwright.async_api import async_playwright

    from tests.staff_support import make_resident, make_ticket

    base = str(server.make_url("/")).rstrip("/")
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await make_resident(services, "o_new")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page = await (await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")).new_page()
            await page.clock.install()
            await console_login(page, base, "liu", "staffpass1")
            assert "每分钟自动刷新" in await page.inner_text("#refreshed")
            number = await make_ticket(services, "o_new", kind="handoff", summary="转人工：家里没水，老人行动不便")
            assert await page.locator(f"li.item[data-number='{number}']").count() == 0
            await page.focus("header .who button")  # a button is no field: the page still reloads
            async with page.expect_navigation():
                await page.clock.run_for(61_000)
            await page.locator(f"li.item[data-number='{number}']").wait_for()
            # A field in use holds the reload back.
            await page.evaluate("() => { const i = document.createElement('input'); i.id = 'probe'; document.body.append(i); i.focus(); }")
            await page.clock.run_for(61_000)
            await page.wait_for_function("document.getElementById('refreshed').dataset.held === '1'")
            assert await page.locator("#probe").count() == 1  # the same page, not reloaded
        finally:
            await browser.close()
