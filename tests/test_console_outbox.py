"""The console's 消息未送达 page (/console/pushes): pushes given up or that may have arrived twice,
with the ticket, whom they were for by name (not the openid or WeCom account), when, why in plain
Chinese, what they said with phones masked and escaped; 重发 of one given up queues it again,
audited; staff and admins only. Both backends."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.channels.push import LEFT_ROSTER, MAYBE_SENT
from bot.clock import FakeClock
from bot.console import auth
from bot.console.labels import Labels
from bot.services import Services
from storage.models import OutboxItem, Resident, Ticket
from tests.sim_support import clerk_phone_page, launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)
from tests.staff_support import audit_rows, logged_in, make_ticket
from tests.test_console_browser import ARTIFACTS, server  # noqa: F401 (fixture)
from tests.wecom_driver import load_demo_roster

Client = TestClient[Any, Any]
SAID = "【网格员 王伟】关于您的工单：\n<b>明天</b>上午来修，有事打 13987654321"


async def pushes_of_a_bad_day(svc: Services) -> dict[str, Any]:
    """A resident 张阿姨 with a report; pushes about it: one to her refused (she unfollowed), one to
    王伟 refused by WeCom (60020), one to 王伟 that timed out and went again (maybe twice), one to a
    worker who left the roster, one delivered, and an old one given up last week. Their ids."""
    await load_demo_roster(svc)
    number = await make_ticket(svc, "o_pushA", summary="3号楼楼道灯坏了")
    now = svc.clock.now()
    ids: dict[str, Any] = {"number": number}
    async with svc.sessions() as session, session.begin():
        session.add(Resident(openid="o_pushA", name="张阿姨", phone="13812345678", building="3", subscribed=False,
                             last_message_at=now, last_inbound_at=now, window_opened_by="message",
                             created_at=now, updated_at=now))
        ticket_id = await session.scalar(Ticket.__table__.select().with_only_columns(Ticket.id)
                                         .where(Ticket.number == number))
        rows = {
            "resident": OutboxItem(channel="wechat", target="o_pushA", payload={"text": SAID}, ticket_id=ticket_id,
                                   state="dead", attempts=1, last_error="errcode 43004: require subscribe",
                                   next_attempt_at=now, created_at=now - timedelta(minutes=30)),
            "worker": OutboxItem(channel="wecom", target="wangwei", payload={"msgtype": "text", "text": "【新工单】3号楼楼道灯坏了"},
                                 ticket_id=ticket_id, state="dead", attempts=1,
                                 last_error="errcode 60020: not allow to access from your ip",
                                 next_attempt_at=now, created_at=now - timedelta(minutes=20)),
            "maybe": OutboxItem(channel="wecom", target="wangwei", payload={"msgtype": "text", "text": "【居民催办】3号楼楼道灯"},
                                ticket_id=ticket_id, state="sent", attempts=2, last_error=MAYBE_SENT, sent_via="app",
                                next_attempt_at=now, created_at=now - timedelta(minutes=10), sent_at=now - timedelta(minutes=9)),
            "left": OutboxItem(channel="wecom", target="gone_worker", payload={"msgtype": "text", "text": "【新工单】旧的"},
                               ticket_id=ticket_id, state="dead", attempts=0, last_error=LEFT_ROSTER,
                               next_attempt_at=now, created_at=now - timedelta(minutes=5)),
            "fine": OutboxItem(channel="wecom", target="wangwei", payload={"msgtype": "text", "text": "送达了的消息"},
                               ticket_id=ticket_id, state="sent", attempts=1, next_attempt_at=now, created_at=now),
            "old": OutboxItem(channel="wecom", target="wangwei", payload={"msgtype": "text", "text": "上周的消息"},
                              state="dead", attempts=5, last_error="ServerDisconnectedError", next_attempt_at=now,
                              created_at=now - timedelta(days=8)),
        }
        session.add_all(rows.values())
        await session.flush()
        ids.update({k: v.id for k, v in rows.items()})
    return ids


def _row(page: str, outbox_id: int) -> str:
    found = re.search(rf'<tr id="push-{outbox_id}">.*?</tr>', page, re.S)
    assert found, f"push {outbox_id} not listed"
    return found.group(0)


async def test_the_page_lists_failed_and_maybe_twice_pushes_by_name_masked_and_escaped(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    ids = await pushes_of_a_bad_day(services)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    await logged_in(client, "liu", "staffpass1")
    assert 'href="/console/pushes"' in await (await client.get("/console")).text()  # in the menu
    page = await (await client.get("/console/pushes")).text()
    for gone in ("送达了的消息", "上周的消息"):
        assert gone not in page
    resident = _row(page, ids["resident"])
    assert "张阿姨" in resident and "138****5678" in resident and ids["number"] in resident
    assert "居民已取消关注公众号，消息被微信拒收。" in resident and "未送达" in resident
    assert "&lt;b&gt;明天&lt;/b&gt;上午来修，有事打 139****4321" in resident
    assert f"/console/pushes/{ids['resident']}/resend" in resident
    worker = _row(page, ids["worker"])
    assert "王伟" in worker and "企业微信应用的可信 IP" in worker and "重发" in worker
    maybe = _row(page, ids["maybe"])
    assert "可能重复送达" in maybe and "对方可能收到了两次" in maybe and "重发" not in maybe
    left = _row(page, ids["left"])
    assert "承办人已离开名册" in left and "企业微信 （不在名册的成员）" in left and "重发" not in left
    for account in ("o_pushA", "wangwei", "gone_worker", "13812345678", "13987654321", "errcode"):
        assert account not in page, account
    # newest first
    assert page.index(f'id="push-{ids["left"]}"') < page.index(f'id="push-{ids["maybe"]}"') < page.index(
        f'id="push-{ids["resident"]}"')


async def test_resend_queues_a_failed_push_again_once_audited(
    client: Client, services: Services, clock: FakeClock,
) -> None:
    ids = await pushes_of_a_bad_day(services)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    csrf = await logged_in(client, "liu", "staffpass1")
    clock.advance(minutes=1)
    resp = await client.post(f"/console/pushes/{ids['resident']}/resend", data={"csrf_token": csrf})
    assert resp.status == 200 and "已重新发送给 张阿姨" in await resp.text()
    async with services.sessions() as session:
        row = await session.get(OutboxItem, ids["resident"])
        assert row is not None and (row.state, row.attempts) == ("pending", 0)
        assert row.next_attempt_at.replace(tzinfo=None) == clock.now().replace(tzinfo=None)
    page = await (await client.get("/console/pushes")).text()
    assert f'id="push-{ids["resident"]}"' not in page  # back in the queue: not listed
    [done] = await audit_rows(services, "outbox.resend")
    assert (done.actor, done.target, done.detail) == ("liu", ids["number"], {"outbox": ids["resident"], "recipient": "张阿姨"})
    # again (a double click), and one to a worker who left the roster: refused, nothing changed, audited
    again = await client.post(f"/console/pushes/{ids['resident']}/resend", data={"csrf_token": csrf})
    assert "这条消息已经重发过或正在发送" in await again.text()
    left = await client.post(f"/console/pushes/{ids['left']}/resend", data={"csrf_token": csrf})
    assert "承办人已离开名册，不能重发" in await left.text()
    async with services.sessions() as session:
        row = await session.get(OutboxItem, ids["left"])
        assert row is not None and row.state == "dead"
    refused = await audit_rows(services, "outbox.resend.refused")
    assert [(r.detail or {}).get("reason") for r in refused] == ["not_dead", "left_roster"]
    # the audit log says it in words
    words = Labels(services.texts, services.tz)
    assert words.audit_action("outbox.resend") == "重发未送达的消息"
    assert words.audit_action("outbox.resend.refused") == "重发未送达的消息（被拒绝）"
    assert ("收件人", "张阿姨") in words.audit_detail(done.detail, "outbox.resend")
    # without the form's token: refused
    bad = await client.post(f"/console/pushes/{ids['worker']}/resend", data={"csrf_token": "x"})
    assert bad.status == 403
    async with services.sessions() as session:
        row = await session.get(OutboxItem, ids["worker"])
        assert row is not None and row.state == "dead"


async def test_a_read_only_user_neither_sees_nor_resends(client: Client, services: Services) -> None:
    ids = await pushes_of_a_bad_day(services)
    await auth.create_user(services, "guest", "guestpass1", "readonly", display_name="访客")
    csrf = await logged_in(client, "guest", "guestpass1")
    assert 'href="/console/pushes"' not in await (await client.get("/console")).text()
    assert (await client.get("/console/pushes")).status == 403
    assert (await client.post(f"/console/pushes/{ids['worker']}/resend", data={"csrf_token": csrf})).status == 403
    async with services.sessions() as session:
        row = await session.get(OutboxItem, ids["worker"])
        assert row is not None and row.state == "dead"


async def test_the_page_on_a_phone_and_its_resend_in_chromium(
    services: Services, server: TestServer, backend: str,
) -> None:
    """390 px wide, as a clerk on her phone: 消息未送达 is in the menu, each push's words are in sight
    first and nothing scrolls sideways (重发 in sight); 重发 on 王伟's card sends it (the simulator's WeCom
    takes it) and the page says so. Screenshots in test-artifacts/."""
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    suffix = "" if backend == "embedded" else f"-{backend}"
    base = str(server.make_url("/")).rstrip("/")
    ids = await pushes_of_a_bad_day(services)
    await auth.create_user(services, "liu", "staffpass1", "staff", display_name="刘敏")
    async with async_playwright() as pw:
        browser = await launch_chromium(pw)
        try:
            page = await clerk_phone_page(browser, base, "liu", "staffpass1")
            link = page.locator('header nav a[href="/console/pushes"]')
            box = await link.bounding_box()
            assert box is not None and box["height"] < 40 and box["width"] > 50  # one line, a whole word
            await link.click()
            await page.wait_for_url(f"{base}/console/pushes")
            assert await page.locator("h1").inner_text() == "消息未送达"
            assert int(await page.evaluate("document.documentElement.scrollWidth")) <= 390
            table = await page.locator("table.pushes").evaluate("e => [e.scrollWidth, e.clientWidth]")
            assert table[0] <= table[1]  # nothing to scroll sideways for: the 重发 is in sight
            said = page.locator(f"#push-{ids['resident']} td.summary")
            text = await said.inner_text()
            assert "<b>明天</b>上午来修" in text and "张阿姨 138****5678" in text and "139****4321" in text  # escaped, shown as typed; masked
            where = await said.bounding_box()
            assert where is not None and where["x"] + where["width"] <= 390  # the words in sight, whole
            await page.screenshot(path=str(ARTIFACTS / f"console-phone-pushes{suffix}.png"), full_page=True)
            resend = page.locator(f"#push-{ids['worker']} button", has_text="重发")
            spot = await resend.bounding_box()
            assert spot is not None and spot["x"] + spot["width"] <= 390
            await resend.click()
            await page.wait_for_url(f"{base}/console/pushes")
            assert "已重新发送给 王伟" in await page.locator(".flash").inner_text()
            assert await page.locator(f"#push-{ids['worker']}").count() == 0
            await page.screenshot(path=str(ARTIFACTS / f"console-phone-pushes-resent{suffix}.png"), full_page=True)
        finally:
            await browser.close()
    for _ in range(100):  # the sender takes it to the simulator's WeCom
        async with services.sessions() as session:
            row = await session.get(OutboxItem, ids["worker"])
            assert row is not None
            if row.state == "sent":
                break
        await asyncio.sleep(0.05)
    assert (row.state, row.sent_via) == ("sent", "app")
    [done] = await audit_rows(services, "outbox.resend")
    assert (done.actor, done.target) == ("liu", ids["number"])
