"""The simulator: the API stand-ins' shapes and checks, the chat page's endpoints through the real
/wechat and /wecom on a real port (plaintext and safe mode), the feed, and the page in Chromium."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import HTTP, create_app
from bot.channels import push
from bot.clock import FakeClock
from bot.outbox import push_group, push_resident, push_worker
from bot.services import Services
from bot.sim.api import SIM_RECORDER, SimRecorder
from bot.sim.page import FormError, parse_action
from storage.models import Message, Resident
from tests.sim_support import launch_chromium, port, settings_overrides  # noqa: F401 (fixtures)

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture
async def server(services: Services, port: int) -> AsyncIterator[TestServer]:
    """The whole app on a real port."""
    app = create_app(services.settings, services=services)
    srv = TestServer(app, host="127.0.0.1", port=port)
    await srv.start_server()
    yield srv
    await srv.close()


@pytest.fixture
async def web(server: TestServer) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client on the app's base URL."""
    async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
        yield session


def recorder(server: TestServer) -> SimRecorder:
    """The stand-ins' recorder."""
    return server.app[SIM_RECORDER]


async def add_resident(svc: Services, openid: str, hours_ago: float | None, subscribed: bool = True) -> None:
    """A follower whose last message was hours_ago (None: never)."""
    now = svc.clock.now()
    last = None if hours_ago is None else now - timedelta(hours=hours_ago)
    async with svc.sessions() as session, session.begin():
        session.add(Resident(openid=openid, subscribed=subscribed, last_message_at=last, last_inbound_at=last,
                             window_opened_by="message" if last else None, created_at=now, updated_at=now))


async def token(web: aiohttp.ClientSession, svc: Services, family: str = "wechat") -> str:
    """A token from the stand-in's token endpoint."""
    s = svc.settings
    if family == "wechat":
        resp = await web.get("/sim/wechat-api/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": s.wechat_appid, "secret": s.wechat_secret})
    else:
        resp = await web.get("/sim/wecom-api/cgi-bin/gettoken", params={"corpid": s.wecom_corpid, "corpsecret": s.wecom_secret})
    return str((await resp.json())["access_token"])


# --- the stand-ins ------------------------------------------------------------------------------


async def test_token_endpoints_answer_the_official_shapes(web: aiohttp.ClientSession, services: Services) -> None:
    s = services.settings
    resp = await web.get("/sim/wechat-api/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": s.wechat_appid, "secret": s.wechat_secret})
    body = await resp.json()
    assert resp.status == 200 and set(body) == {"access_token", "expires_in"} and body["expires_in"] == 7200
    wrong = await web.get("/sim/wechat-api/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": s.wechat_appid, "secret": "nope"})
    assert (await wrong.json())["errcode"] == 40001
    wrong = await web.get("/sim/wechat-api/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": "wxother", "secret": s.wechat_secret})
    assert (await wrong.json())["errcode"] == 40013
    resp = await web.get("/sim/wecom-api/cgi-bin/gettoken", params={"corpid": s.wecom_corpid, "corpsecret": s.wecom_secret})
    body = await resp.json()
    assert body["errcode"] == 0 and body["errmsg"] == "ok" and body["expires_in"] == 7200 and body["access_token"]
    wrong = await web.get("/sim/wecom-api/cgi-bin/gettoken", params={"corpid": s.wecom_corpid, "corpsecret": "x"})
    assert (await wrong.json())["errcode"] == 40001


async def test_tokens_are_checked_and_expire(
    web: aiohttp.ClientSession, services: Services, clock: FakeClock, server: TestServer
) -> None:
    await add_resident(services, "oA", 1)
    msg = {"touser": "oA", "msgtype": "text", "text": {"content": "你好"}}
    url = "/sim/wechat-api/cgi-bin/message/custom/send"
    assert (await (await web.post(url, params={"access_token": "forged"}, json=msg)).json())["errcode"] == 40001
    wecom_token = await token(web, services, "wecom")
    assert (await (await web.post(url, params={"access_token": wecom_token}, json=msg)).json())["errcode"] == 40001
    good = await token(web, services)
    assert await (await web.post(url, params={"access_token": good}, json=msg)).json() == {"errcode": 0, "errmsg": "ok"}
    clock.advance(seconds=7200)
    assert (await (await web.post(url, params={"access_token": good}, json=msg)).json())["errcode"] == 42001
    assert len(recorder(server).of("custom_send")) == 1


async def test_custom_send_keeps_the_48_hour_rule_and_the_quota(
    web: aiohttp.ClientSession, services: Services, server: TestServer
) -> None:
    await add_resident(services, "oRecent", 47.9)
    await add_resident(services, "oOld", 48.1)
    await add_resident(services, "oGone", 1, subscribed=False)
    t = {"access_token": await token(web, services)}
    url = "/sim/wechat-api/cgi-bin/message/custom/send"

    async def send(openid: str, body: Any = None) -> int:
        payload = body if body is not None else {"touser": openid, "msgtype": "text", "text": {"content": "通知"}}
        return int((await (await web.post(url, params=t, json=payload)).json())["errcode"])

    assert await send("oOld") == 45015
    assert await send("oNobody") == 40003
    assert await send("oGone") == 43004
    assert await send("oRecent", {"touser": "oRecent", "msgtype": "text", "text": {"content": ""}}) == 44004
    assert int((await (await web.post(url, params=t, data=b"{not json")).json())["errcode"]) == 47001
    assert [await send("oRecent") for _ in range(6)] == [0, 0, 0, 0, 0, 45047]
    rec = recorder(server).of("custom_send")
    assert len(rec) == 5 and rec[0]["to"] == "oRecent" and rec[0]["payload"]["text"] == {"content": "通知"}
    assert set(rec[0]) == {"api", "to", "payload", "at"}


async def test_custom_send_after_a_follow_scan_or_click_allows_three_within_a_minute(
    web: aiohttp.ClientSession, services: Services, clock: FakeClock
) -> None:
    now = clock.now()
    async with services.sessions() as session, session.begin():
        # clicked 10 s ago, never wrote
        session.add(Resident(openid="oClick", subscribed=True, last_inbound_at=now - timedelta(seconds=10),
                             window_opened_by="click", created_at=now, updated_at=now))
        # wrote an hour ago, then scanned a code 10 s ago: both windows open
        session.add(Resident(openid="oBoth", subscribed=True, last_message_at=now - timedelta(hours=1),
                             last_inbound_at=now - timedelta(seconds=10), window_opened_by="scan",
                             created_at=now, updated_at=now))
    t = {"access_token": await token(web, services)}
    url = "/sim/wechat-api/cgi-bin/message/custom/send"

    async def send(openid: str) -> int:
        body = {"touser": openid, "msgtype": "text", "text": {"content": "通知"}}
        return int((await (await web.post(url, params=t, json=body)).json())["errcode"])

    assert [await send("oClick") for _ in range(4)] == [0, 0, 0, 45047]
    # the message's 5 and the scan's 3 are counted from their own start: 5 in all here
    assert [await send("oBoth") for _ in range(6)] == [0, 0, 0, 0, 0, 45047]
    clock.advance(seconds=51)  # the click's and the scan's minute is over
    assert await send("oClick") == 45015
    assert await send("oBoth") == 45047  # the message's window is open, its quota used


async def test_template_menu_wecom_and_group_checks(
    web: aiohttp.ClientSession, services: Services, server: TestServer, clock: FakeClock
) -> None:
    s = services.settings
    await add_resident(services, "oOld", 100)
    wt = {"access_token": await token(web, services)}
    tpl = {"touser": "oOld", "template_id": s.wechat_template_id, "data": {"first": {"value": "通知"}}}
    answer = await (await web.post("/sim/wechat-api/cgi-bin/message/template/send", params=wt, json=tpl)).json()
    assert answer["errcode"] == 0 and isinstance(answer["msgid"], int)
    bad = await web.post("/sim/wechat-api/cgi-bin/message/template/send", params=wt, json={**tpl, "template_id": "x"})
    assert (await bad.json())["errcode"] == 40037

    menu = {"button": [{"name": "办事", "sub_button": [{"type": "click", "name": "报修", "key": "K"}]}]}
    assert (await (await web.post("/sim/wechat-api/cgi-bin/menu/create", params=wt, json=menu)).json())["errcode"] == 0
    too_many = {"button": [{"type": "click", "name": str(n), "key": "k"} for n in range(4)]}
    assert (await (await web.post("/sim/wechat-api/cgi-bin/menu/create", params=wt, json=too_many)).json())["errcode"] == 40016

    ct = {"access_token": await token(web, services, "wecom")}
    msg = {"touser": "wangwei", "msgtype": "text", "agentid": s.wecom_agentid, "text": {"content": "新工单"}}
    answer = await (await web.post("/sim/wecom-api/cgi-bin/message/send", params=ct, json=msg)).json()
    assert answer["errcode"] == 0 and answer["invaliduser"] == ""
    wrong_agent = await web.post("/sim/wecom-api/cgi-bin/message/send", params=ct, json={**msg, "agentid": 1})
    assert (await wrong_agent.json())["errcode"] == 40056
    wechat_token_on_wecom = await web.post("/sim/wecom-api/cgi-bin/message/send", params=wt, json=msg)
    assert (await wechat_token_on_wecom.json())["errcode"] == 40001

    url = "/sim/wecom-api/cgi-bin/webhook/send"
    post = {"msgtype": "markdown", "markdown": {"content": "**转人工**"}}
    assert (await (await web.post(url, params={"key": "wrong"}, json=post)).json())["errcode"] == 93000
    big = {"msgtype": "markdown", "markdown": {"content": "长" * 1400}}
    assert (await (await web.post(url, params={"key": s.wecom_group_webhook_key}, json=big)).json())["errcode"] == 40058
    codes = [
        (await (await web.post(url, params={"key": s.wecom_group_webhook_key}, json=post)).json())["errcode"]
        for _ in range(21)
    ]
    assert codes == [0] * 20 + [45009]
    clock.advance(seconds=60)
    assert (await (await web.post(url, params={"key": s.wecom_group_webhook_key}, json=post)).json())["errcode"] == 0
    apis = [r["api"] for r in recorder(server).records]
    assert apis == ["template_send", "menu_create", "wecom_send"] + ["group_send"] * 21


async def test_the_menu_is_published_to_the_stand_in(
    services: Services, server: TestServer, web: aiohttp.ClientSession
) -> None:
    from bot.menu import load_menu, publish

    answer = await publish(services, server.app[HTTP], load_menu())
    assert answer["errcode"] == 0
    [created] = recorder(server).of("menu_create")
    assert created["payload"] == load_menu().to_api()


async def test_nothing_of_the_simulator_is_served_while_it_is_off(services: Services) -> None:
    off = replace(services, settings=services.settings.model_copy(update={"simulator": False}))
    app = create_app(off.settings, services=off)
    async with TestClient(TestServer(app)) as client:
        for path in ("/sim", "/sim/feed?after=0", "/sim/static/sim.js", "/sim/wechat-api/cgi-bin/token"):
            assert (await client.get(path)).status == 404, path
        assert (await client.post("/sim/send", json={"openid": "oA", "text": "x"})).status == 404
        assert (await client.post("/sim/wecom-send", json={"userid": "a", "text": "x"})).status == 404
        assert (await client.post("/sim/wecom-api/cgi-bin/webhook/send", json={})).status == 404


# --- the page's endpoints, through the real webhooks ------------------------------------------------


async def test_page_is_served_with_residents_menu_and_static_files(web: aiohttp.ClientSession) -> None:
    resp = await web.get("/sim")
    html = await resp.text()
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "/sim/static/sim.js" in html and "社区服务号模拟器" in html
    data = json.loads(html.split('id="sim-data">', 1)[1].split("</script>", 1)[0])
    assert {"openid": "oSimZhang", "name": "张阿姨"} in data["residents"]
    assert "报事报修" in [b["name"] for top in data["menu"] for b in top.get("sub_button", [])]
    assert any(p["id"] == "wangwei" for p in data["people"])
    js = await web.get("/sim/static/sim.js")
    assert js.status == 200 and ".innerHTML" not in await js.text()
    assert (await web.get("/sim/static/missing.js")).status == 404
    assert (await web.get("/sim/static/..%2Fpage.py")).status == 404


@pytest.mark.parametrize("mode", ["plain", "safe"])
async def test_send_round_trip_through_wechat(
    web: aiohttp.ClientSession, services: Services, mode: str
) -> None:
    resp = await web.post("/sim/send", json={"openid": "oSimZhang", "kind": "text", "text": "你好", "mode": mode})
    answer = await resp.json()
    assert resp.status == 200 and answer["ok"] and answer["encrypted"] == (mode == "safe")
    assert answer["reply"] and answer["reply_type"] == "text"

    for kind, fields in (
        ("voice", {"text": "楼道灯坏了"}),
        ("location", {"lat": 30.27, "lng": 120.15, "label": "望湖社区3号楼"}),
        ("subscribe", {}),
        ("click", {"key": "MENU_MY_TICKETS"}),
        ("voice", {"text": ""}),  # recognition off: no Recognition
        ("sticker", {}),
        ("link", {"text": "关于小区停车收费的通知", "key": "https://mp.weixin.qq.com/s/parking"}),
        ("file", {"text": "维修报价单.pdf"}),
        ("scan", {"key": "building3"}),
        ("unsubscribe", {}),
    ):
        resp = await web.post("/sim/send", json={"openid": "oSimZhang", "kind": kind, "mode": mode, **fields})
        assert resp.status == 200 and (await resp.json())["ok"], kind

    async with services.sessions() as session:
        log = (await session.scalars(select(Message).where(Message.openid == "oSimZhang").order_by(Message.id))).all()
        resident = await session.scalar(select(Resident).where(Resident.openid == "oSimZhang"))
    inbound = [(m.msg_type, m.content) for m in log if m.direction == "in"]
    assert inbound[0] == ("text", "你好")
    assert ("voice", "楼道灯坏了") in inbound
    assert any(t == "location" for t, _ in inbound)
    assert any(t == "event:subscribe" for t, _ in inbound)
    assert any(t == "event:click" and "MENU_MY_TICKETS" in c for t, c in inbound)
    assert ("voice", "") in inbound and ("unsupported", "") in inbound and ("file", "") in inbound
    assert ("link", "关于小区停车收费的通知") in inbound
    assert any(t == "event:scan" and "building3" in c for t, c in inbound)
    assert inbound[-1] == ("event:unsubscribe", "[unsubscribe]")
    replies = [m.content for m in log if m.direction == "out"]
    assert answer["reply"] == replies[0]  # the page shows exactly what the bot answered
    assert resident is not None and resident.last_inbound_at is not None and resident.subscribed is False


async def test_send_refuses_bad_input_with_400(web: aiohttp.ClientSession) -> None:
    cases = [
        b"not json",
        {"openid": "<script>", "text": "x"},
        {"openid": "oA", "kind": "text", "text": "   "},
        {"openid": "oA", "kind": "miniprogrampage", "text": "x"},
        {"openid": "oA", "kind": "link", "text": "通知"},  # no url
        {"openid": "oA", "kind": "file", "text": " "},
        {"openid": "oA", "kind": "scan"},
        {"openid": "oA", "kind": "text", "text": "长" * 2001},
        {"openid": "oA", "kind": "text", "text": "x", "mode": "weird"},
        {"openid": "oA", "kind": "location", "lat": "north"},
        {"openid": "oA", "kind": "click"},
    ]
    for case in cases:
        resp = await (web.post("/sim/send", data=case) if isinstance(case, bytes) else web.post("/sim/send", json=case))
        body = await resp.json()
        assert resp.status == 400 and body["ok"] is False and body["error"], case
    for bad in ({"userid": "a b", "text": "接单"}, {"userid": "wangwei", "text": ""}):
        assert (await web.post("/sim/wecom-send", json=bad)).status == 400
    assert (await web.get("/sim/feed", params={"after": "x"})).status == 400
    assert (await web.get("/sim/feed", params={"after": "-1"})).status == 400


def test_safe_mode_needs_an_aes_key() -> None:
    with pytest.raises(FormError, match="safe mode"):
        parse_action({"openid": "oA", "text": "x", "mode": "safe"}, aes_available=False)
    assert parse_action({"openid": "oA", "text": "x", "mode": "safe"}, aes_available=True).safe


async def test_worker_reply_goes_through_wecom(web: aiohttp.ClientSession) -> None:
    resp = await web.post("/sim/wecom-send", json={"userid": "wangwei", "text": "帮助"})
    answer = await resp.json()
    assert resp.status == 200 and answer["ok"]
    assert "接单" in answer["reply"]  # the worker commands' help, decrypted from /wecom's reply


async def test_feed_shows_pushes_by_pane(
    web: aiohttp.ClientSession, services: Services, server: TestServer, clock: FakeClock
) -> None:
    await add_resident(services, "oSimZhang", 1)
    await add_resident(services, "oSimLi", 72)
    now = clock.now()
    async with services.sessions() as session, session.begin():
        await push_resident(session, "oSimZhang", "您的工单已受理", now=now)
        await push_resident(session, "oSimLi", "您的预约已确认", now=now)
        await push_worker(session, "wangwei", "新工单：3号楼漏水", now=now)
        await push_group(session, "**转人工** 张阿姨", now=now)
    assert await push.drain(services, server.app[HTTP]) == 4

    feed = await (await web.get("/sim/feed", params={"after": "0"})).json()
    by_to = {p["to"]: p for p in feed["resident"]}
    assert by_to["oSimZhang"]["via"] == "custom" and by_to["oSimZhang"]["text"] == "您的工单已受理"
    assert by_to["oSimLi"]["via"] == "template" and "您的预约已确认" in by_to["oSimLi"]["text"]
    assert [(w["to"], w["text"], w["dropped"]) for w in feed["workers"]] == [("wangwei", "新工单：3号楼漏水", False)]
    assert [(g["text"], g["time"]) for g in feed["group"]] == [("**转人工** 张阿姨", "10:00")]  # local time
    only_li = await (await web.get("/sim/feed", params={"after": "0", "openid": "oSimLi"})).json()
    assert [p["to"] for p in only_li["resident"]] == ["oSimLi"]
    later = await (await web.get("/sim/feed", params={"after": str(feed["next"])})).json()
    assert later == {"next": feed["next"], "resident": [], "workers": [], "group": []}


# --- the page in a browser ----------------------------------------------------------------------


async def test_chat_page_in_chromium(
    services: Services, server: TestServer, clock: FakeClock, backend: str
) -> None:
    from playwright.async_api import async_playwright

    # The sender loop as the app runs it with outbox_sender on (as in `make run`).
    push_task = asyncio.create_task(push.run_sender(services, server.app[HTTP], asyncio.Event()))
    try:
        async with async_playwright() as pw:
            browser = await launch_chromium(pw)
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            await page.goto(str(server.make_url("/sim")))
            await page.fill("#text", "<b>你好</b>")
            await page.click("#send")
            await page.wait_for_selector("#chat .row.bot .text", timeout=10_000)
            mine = await page.text_content("#chat .row.me .text")
            assert mine == "<b>你好</b>"  # shown as typed, never as markup
            assert await page.locator("#chat b").count() == 0
            reply = await page.text_content("#chat .row.bot .text")
            async with services.sessions() as session:
                logged = await session.scalar(
                    select(Message.content).where(Message.openid == "oSimZhang", Message.direction == "out")
                )
            assert reply == logged

            async with services.sessions() as session, session.begin():
                await push_resident(session, "oSimZhang", "您的工单已派给网格员王伟", now=clock.now())
                await push_worker(session, "wangwei", "新工单：3号楼楼道灯不亮", now=clock.now())
            await page.wait_for_selector("text=您的工单已派给网格员王伟", timeout=10_000)
            await page.wait_for_selector("#worker-chat >> text=新工单：3号楼楼道灯不亮", timeout=10_000)

            await page.fill("#worker-text", "帮助")
            await page.click("#worker-form .send")
            await page.wait_for_selector("#worker-chat >> text=接单", timeout=10_000)

            bot_rows = page.locator("#chat .row.bot")

            async def answered_after(count: int) -> None:
                deadline = time.monotonic() + 10
                while await bot_rows.count() <= count and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)  # waiting for the page, not for (fake) time
                assert await bot_rows.count() > count

            seen = await bot_rows.count()
            await page.click("#menu .mbtn >> nth=0")  # 办事 opens its sub-buttons
            await page.click("#menu .sub button >> nth=0")  # 报事报修: a CLICK event
            await answered_after(seen)

            seen = await bot_rows.count()
            await page.click("#voice")
            await page.fill("#text", "楼道灯不亮了")
            await page.click("#send")
            await answered_after(seen)
            seen = await bot_rows.count()
            await page.click("#send")  # nothing typed in voice mode: a voice WeChat did not recognise
            await answered_after(seen)
            assert "没有听清" in (await bot_rows.nth(seen).text_content() or "")
            await page.click("#voice")

            seen = await bot_rows.count()
            await page.click("#sticker")  # WeChat's placeholder: answered, not quoted back
            await answered_after(seen)
            said = await bot_rows.nth(seen).text_content() or ""
            assert "表情" in said and "不支持的消息类型" not in said, said

            seen = await bot_rows.count()
            await page.select_option("#mode", "safe")
            await page.fill("#text", "谢谢")
            await page.click("#send")
            await answered_after(seen)
            assert await page.locator("#chat .row.bot .note", has_text="安全模式").count() >= 1

            async with services.sessions() as session, session.begin():
                await push_group(session, "**转人工** 张阿姨需要人工服务", now=clock.now())
            await page.wait_for_selector("#group >> text=张阿姨需要人工服务", timeout=10_000)
            async with services.sessions() as session:
                inbound = (await session.scalars(
                    select(Message.msg_type).where(Message.openid == "oSimZhang", Message.direction == "in")
                )).all()
            assert {"text", "voice", "event:click"} <= set(inbound)

            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / ("sim.png" if backend == "embedded" else f"sim-{backend}.png")))
            await browser.close()
    finally:
        push_task.cancel()
        await asyncio.gather(push_task, return_exceptions=True)


def test_feed_text_of_a_textcard_and_bounded_records() -> None:
    from datetime import datetime, timezone

    from bot.sim.api import MAX_RECORDS
    from bot.sim.page import delivery_text

    card = {"msgtype": "textcard", "textcard": {
        "title": "新工单 20261123-0001",
        "description": '<div class="gray">期限 11-23 12:00</div><div class="normal">地点：3号楼 &lt;b&gt;</div>',
        "url": "http://x/console", "btntxt": "详情"}}
    assert delivery_text({"api": "wecom_send", "payload": card}) == "新工单 20261123-0001\n期限 11-23 12:00\n地点：3号楼 <b>"

    rec = SimRecorder()
    at = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    for n in range(MAX_RECORDS + 1):
        rec.record("group_send", "staff", {"n": n}, at)
    assert len(rec.records) <= MAX_RECORDS and rec.next_index == MAX_RECORDS + 1
    assert [r["payload"]["n"] for r in rec.since(MAX_RECORDS - 1)] == [MAX_RECORDS - 1, MAX_RECORDS]
