"""A resident's photos reach the ticket's owner in WeCom: after the dispatch card, when a photo is
added later, and when the ticket goes to a new owner — fetched from the official account's
temporary media and uploaded to WeCom by the outbox sender, through the real webhook, the API and
the simulator's stand-ins (which keep what the resident sent), on both backends."""

from __future__ import annotations

import asyncio
import base64
import secrets
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import HTTP, create_app
from bot.channels import push
from bot.clock import FakeClock
from bot.outbox import enqueue
from bot.services import Services
from bot.sim.api import SIM_RECORDER, SimRecorder
from storage.models import OutboxItem
from tests.conftest import WeChat
from tests.flow_helpers import tickets_of
from tests.sim_support import launch_chromium, port  # noqa: F401 (fixture)
from tests.wecom_driver import outbox_rows

API_TOKEN = "photos-api-token"


@pytest.fixture
def settings_overrides(port: int) -> dict[str, Any]:  # noqa: F811 (the port fixture)
    """The simulator on, its stand-ins reached at the app's own address (as on the laptop); the
    API open to a bearer token for the reassignments."""
    return {
        "simulator": True, "public_base_url": f"http://127.0.0.1:{port}",
        "wechat_api_base": "", "wecom_api_base": "", "api_token": API_TOKEN,
    }


@pytest.fixture
async def client(services: Services, port: int) -> AsyncIterator[TestClient[Any, Any]]:  # noqa: F811
    """The whole app on a real port (the sender calls the stand-ins over HTTP)."""
    app = create_app(services.settings, services=services)
    async with TestClient(TestServer(app, host="127.0.0.1", port=port)) as test_client:
        yield test_client


@pytest.fixture
def wx(client: TestClient[Any, Any], services: Services) -> WeChat:
    """WeChat posting residents' messages to /wechat."""
    return WeChat(client, services.settings)


@pytest.fixture
def sim(client: TestClient[Any, Any]) -> SimRecorder:
    """The stand-ins' recorder: what WeChat keeps of residents' photos, what WeCom received."""
    return client.app[SIM_RECORDER]


def jpeg() -> bytes:
    """A photo's bytes (a JPEG's start and end, different each time)."""
    return b"\xff\xd8\xff\xe0" + secrets.token_bytes(2048) + b"\xff\xd9"


def photo_sent(sim: SimRecorder, clock: FakeClock, data: bytes) -> dict[str, str]:
    """What a resident's phone does with a photo: WeChat keeps it, and the message carries its MediaId."""
    media_id = sim.add_media(data, "image/jpeg", clock.now())
    return {"PicUrl": f"http://mmbiz.example/{media_id}", "MediaId": media_id}


async def report(wx: WeChat, openid: str, photos: list[dict[str, str]]) -> str:
    """A lighting report at building 3 (王伟's grid) with the photos sent where they are asked."""
    assert "照片" in await wx.say(openid, "3号楼2单元楼道灯坏了")
    for n, photo in enumerate(photos, 1):
        assert f"第{n}张" in await wx.send("image", openid, **photo)
    for answer in ["好了", "13812345678", "否"]:
        await wx.say(openid, answer)
    done = await wx.say(openid, "1")
    assert "工单号" in done, done
    return done


async def drain(client: TestClient[Any, Any], services: Services) -> int:
    """One pass of the outbox sender."""
    return await push.drain(services, client.app[HTTP])


def app_messages(sim: SimRecorder, userid: str) -> list[dict[str, Any]]:
    """The WeCom app messages a member received, oldest first."""
    return [r["payload"] for r in sim.of("wecom_send", userid)]


def image_bytes(sim: SimRecorder, message: dict[str, Any]) -> bytes:
    """The bytes an image message shows: what was uploaded to WeCom under its media_id."""
    assert message["msgtype"] == "image", message
    return sim.wecom_media[message["image"]["media_id"]].data


async def reassign(client: TestClient[Any, Any], number: str, assignee: str) -> None:
    """A clerk gives the ticket to another worker through the API."""
    resp = await client.post(
        f"/api/tickets/{number}/transition", json={"action": "assign", "assignee": assignee},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert resp.status == 200, await resp.text()


def oid() -> str:
    return "o" + uuid.uuid4().hex[:20]


async def test_the_owner_gets_the_card_then_the_residents_photos(
    wx: WeChat, client: TestClient[Any, Any], services: Services, sim: SimRecorder, clock: FakeClock
) -> None:
    """Before, the card alone: the photos were only in the console."""
    openid = oid()
    first, second = jpeg(), jpeg()
    await report(wx, openid, [photo_sent(sim, clock, first), photo_sent(sim, clock, second)])
    [ticket] = await tickets_of(services, openid)
    assert ticket.assignee == "wangwei"

    assert await drain(client, services) == 3
    card, one, two = app_messages(sim, "wangwei")
    assert card["msgtype"] == "textcard" and ticket.number in card["textcard"]["title"]
    assert "居民拍了 2 张照片，随后发来" in card["textcard"]["description"]
    assert (image_bytes(sim, one), image_bytes(sim, two)) == (first, second)
    assert one["agentid"] == services.settings.wecom_agentid and one["touser"] == "wangwei"
    rows = await outbox_rows(services, "wecom", "wangwei")
    assert [(r.payload["msgtype"], r.state, r.sent_via) for r in rows] == [
        ("textcard", "sent", "app"), ("image", "sent", "app"), ("image", "sent", "app")]

    assert await drain(client, services) == 0  # sent once
    assert len(app_messages(sim, "wangwei")) == 3


async def test_a_photo_sent_after_the_report_reaches_the_owner(
    wx: WeChat, client: TestClient[Any, Any], services: Services, sim: SimRecorder, clock: FakeClock
) -> None:
    """Before, "【居民补充照片】… 服务中心可在工作台查看" and no photo."""
    openid = oid()
    await report(wx, openid, [])
    [ticket] = await tickets_of(services, openid)
    await drain(client, services)
    [card] = app_messages(sim, "wangwei")
    assert "照片" not in card["textcard"]["description"]

    clock.advance(minutes=30)
    later = jpeg()
    reply = await wx.send("image", openid, **photo_sent(sim, clock, later))
    assert f"照片已附到您刚才反映的工单 {ticket.number}" in reply
    assert await drain(client, services) == 2
    told, shown = app_messages(sim, "wangwei")[1:]
    assert told["msgtype"] == "text" and "【居民补充照片】" in told["text"]["content"]
    assert ticket.number in told["text"]["content"] and "见下图" in told["text"]["content"]
    assert image_bytes(sim, shown) == later


async def test_a_new_owner_gets_the_photos_and_an_expired_one_is_said_in_words(
    wx: WeChat, client: TestClient[Any, Any], services: Services, sim: SimRecorder, clock: FakeClock
) -> None:
    """Reassigned within the photo's three days: the new owner sees it (the WeCom copy reused,
    nothing fetched again); after them (WeChat answers 40007): a text instead of endless retries."""
    openid = oid()
    data = jpeg()
    await report(wx, openid, [photo_sent(sim, clock, data)])
    [ticket] = await tickets_of(services, openid)
    await drain(client, services)
    assert (sim.calls["media_get"], sim.calls["media_upload"]) == (1, 1)

    clock.advance(days=1)
    await reassign(client, ticket.number, "lina")
    await drain(client, services)
    card, shown = app_messages(sim, "lina")
    assert card["msgtype"] == "textcard" and image_bytes(sim, shown) == data
    assert (sim.calls["media_get"], sim.calls["media_upload"]) == (1, 1)
    assert "已改派" in app_messages(sim, "wangwei")[-1]["text"]["content"]

    clock.advance(days=3)  # WeChat no longer keeps the resident's photo
    await reassign(client, ticket.number, "zhaoqiang")
    assert await drain(client, services) >= 2
    card, told = app_messages(sim, "zhaoqiang")
    assert card["msgtype"] == "textcard" and "居民拍了 1 张照片" in card["textcard"]["description"]
    assert told["msgtype"] == "text"
    assert ticket.number in told["text"]["content"] and "已过期" in told["text"]["content"]
    assert "工作台" in told["text"]["content"]
    [row] = [r for r in await outbox_rows(services, "wecom", "zhaoqiang") if r.payload["msgtype"] == "image"]
    assert (row.state, row.attempts) == ("sent", 0)
    assert sim.calls["media_get"] == 2  # asked once, answered 40007, not retried


async def test_a_failed_upload_is_retried_and_each_photo_sent_once_in_order(
    wx: WeChat, client: TestClient[Any, Any], services: Services, sim: SimRecorder, clock: FakeClock
) -> None:
    openid = oid()
    first, second = jpeg(), jpeg()
    await report(wx, openid, [photo_sent(sim, clock, first), photo_sent(sim, clock, second)])

    sim.inject("media_upload", status=502)
    assert await drain(client, services) == 1  # the card; the first photo failed, the second waits for it
    rows = await outbox_rows(services, "wecom", "wangwei")
    assert [(r.state, r.attempts) for r in rows] == [("sent", 0), ("pending", 1), ("pending", 0)]
    assert "HTTP 502" in (rows[1].last_error or "")
    assert rows[2].next_attempt_at == rows[1].next_attempt_at  # so it still comes after the first
    assert [m["msgtype"] for m in app_messages(sim, "wangwei")] == ["textcard"]

    clock.advance(hours=1)
    sim.inject("wecom_send", status=500)  # uploaded, then the image message itself fails
    assert await drain(client, services) == 0
    uploads = sim.calls["media_upload"]

    clock.advance(hours=1)
    assert await drain(client, services) == 2
    assert sim.calls["media_upload"] == uploads + 1  # the first photo's upload reused; the second's made
    card, one, two = app_messages(sim, "wangwei")
    assert (image_bytes(sim, one), image_bytes(sim, two)) == (first, second)
    assert await drain(client, services) == 0
    assert len(app_messages(sim, "wangwei")) == 3
    rows = await outbox_rows(services, "wecom", "wangwei")
    assert [r.state for r in rows] == ["sent"] * 3


async def test_a_photo_wecom_does_not_take_is_said_in_words(
    wx: WeChat, client: TestClient[Any, Any], services: Services, sim: SimRecorder, clock: FakeClock
) -> None:
    """A GIF (WeChat keeps one; WeCom takes only JPG and PNG as an image): told, not dead."""
    openid = oid()
    media_id = sim.add_media(b"GIF89a" + secrets.token_bytes(64), "image/gif", clock.now())
    await report(wx, openid, [{"PicUrl": "http://mmbiz.example/gif", "MediaId": media_id}])
    [ticket] = await tickets_of(services, openid)
    assert await drain(client, services) == 2
    card, told = app_messages(sim, "wangwei")
    assert told["msgtype"] == "text" and ticket.number in told["text"]["content"]
    assert "不支持" in told["text"]["content"] and "工作台" in told["text"]["content"]
    assert sim.wecom_media == {}


async def test_at_most_three_photos_the_rest_named(
    wx: WeChat, client: TestClient[Any, Any], services: Services, sim: SimRecorder, clock: FakeClock
) -> None:
    openid = oid()
    photos = [jpeg() for _ in range(5)]
    await report(wx, openid, [photo_sent(sim, clock, p) for p in photos])
    [ticket] = await tickets_of(services, openid)
    assert await drain(client, services) == 5
    card, *images, rest = app_messages(sim, "wangwei")
    assert "居民拍了 5 张照片" in card["textcard"]["description"]
    assert [image_bytes(sim, m) for m in images] == photos[:3]
    assert rest["msgtype"] == "text" and f"工单 {ticket.number} 另有 2 张居民照片" in rest["text"]["content"]


async def test_the_simulators_resident_sends_a_photo_the_worker_sees_it(
    client: TestClient[Any, Any], services: Services, sim: SimRecorder
) -> None:
    """On the laptop: the chat page's photo kept by the stand-in, fetched, uploaded, shown in the
    worker's pane; a photo that is none is refused with 400."""
    data = jpeg()
    openid = oid()

    async def send(kind: str, **fields: Any) -> dict[str, Any]:
        resp = await client.post("/sim/send", json={"openid": openid, "kind": kind, **fields})
        answer = await resp.json()
        assert resp.status == 200 and answer["ok"], answer
        return answer

    await send("text", text="3号楼2单元楼道灯坏了")
    reply = await send("image", image="data:image/jpeg;base64," + base64.b64encode(data).decode())
    assert "第1张" in reply["reply"]
    for text in ["好了", "13812345678", "否", "1"]:
        await send("text", text=text)
    await drain(client, services)

    feed = await (await client.get("/sim/feed", params={"after": "0"})).json()
    shown = [w for w in feed["workers"] if w["to"] == "wangwei" and w.get("image")]
    assert len(shown) == 1
    resp = await client.get(shown[0]["image"])
    assert resp.status == 200 and resp.content_type == "image/jpeg" and await resp.read() == data
    [kept] = sim.media.values()
    assert kept.data == data

    for bad in ({"image": ""}, {"image": "不是图片"}, {"image": base64.b64encode(b"GIF89a....").decode()},
                {"image": "A" * 900_000}):
        resp = await client.post("/sim/send", json={"openid": openid, "kind": "image", **bad})
        body = await resp.json()
        assert resp.status == 400 and body["ok"] is False and body["error"], bad
    assert (await client.get("/sim/wecom-media/none")).status == 404


async def test_the_stand_ins_answer_the_media_apis_official_shapes(
    client: TestClient[Any, Any], services: Services, sim: SimRecorder, clock: FakeClock
) -> None:
    s = services.settings
    wt = (await (await client.get("/sim/wechat-api/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": s.wechat_appid, "secret": s.wechat_secret})).json())["access_token"]
    ct = (await (await client.get("/sim/wecom-api/cgi-bin/gettoken", params={
        "corpid": s.wecom_corpid, "corpsecret": s.wecom_secret})).json())["access_token"]
    data = jpeg()
    media_id = sim.add_media(data, "image/jpeg", clock.now())

    got = await client.get("/sim/wechat-api/cgi-bin/media/get", params={"access_token": wt, "media_id": media_id})
    assert got.status == 200 and got.content_type == "image/jpeg" and await got.read() == data
    assert media_id in got.headers["Content-disposition"]
    unknown = await client.get("/sim/wechat-api/cgi-bin/media/get", params={"access_token": wt, "media_id": "x"})
    assert (await unknown.json())["errcode"] == 40007
    no_token = await client.get("/sim/wechat-api/cgi-bin/media/get", params={"access_token": ct, "media_id": media_id})
    assert (await no_token.json())["errcode"] == 40001

    def form(payload: bytes, content_type: str = "image/jpeg") -> aiohttp.FormData:
        f = aiohttp.FormData()
        f.add_field("media", payload, filename="photo.jpg", content_type=content_type)
        return f

    url = "/sim/wecom-api/cgi-bin/media/upload"
    up = await (await client.post(url, params={"access_token": ct, "type": "image"}, data=form(data))).json()
    assert up["errcode"] == 0 and up["type"] == "image" and up["media_id"] and up["created_at"].isdigit()
    assert sim.wecom_media[up["media_id"]].data == data
    assert (await (await client.post(url, params={"access_token": ct, "type": "sticker"}, data=form(data))).json())["errcode"] == 40004
    assert (await (await client.post(url, params={"access_token": ct, "type": "image"}, data=form(data, "image/gif"))).json())["errcode"] == 40005
    assert (await (await client.post(url, params={"access_token": ct, "type": "image"}, data=form(b"abc"))).json())["errcode"] == 40006
    assert (await (await client.post(url, params={"access_token": ct, "type": "image"}, data=b"{}")).json())["errcode"] == 44001

    send = "/sim/wecom-api/cgi-bin/message/send"
    image = {"touser": "wangwei", "msgtype": "image", "agentid": s.wecom_agentid, "image": {"media_id": up["media_id"]}}
    assert (await (await client.post(send, params={"access_token": ct}, json=image)).json())["errcode"] == 0
    stale = {**image, "image": {"media_id": "gone"}}
    assert (await (await client.post(send, params={"access_token": ct}, json=stale)).json())["errcode"] == 40007
    clock.advance(days=3)
    assert (await (await client.get("/sim/wechat-api/cgi-bin/media/get", params={
        "access_token": await fresh_token(client, services), "media_id": media_id})).json())["errcode"] == 40007


async def fresh_token(client: TestClient[Any, Any], services: Services) -> str:
    """A new official-account token (the earlier one expired with the clock)."""
    s = services.settings
    resp = await client.get("/sim/wechat-api/cgi-bin/token", params={
        "grant_type": "client_credential", "appid": s.wechat_appid, "secret": s.wechat_secret})
    return str((await resp.json())["access_token"])


async def test_an_image_row_without_a_photo_is_dead_not_retried(
    client: TestClient[Any, Any], services: Services, sim: SimRecorder
) -> None:
    async with services.sessions() as session, session.begin():
        await enqueue(session, "wecom", "wangwei", {"msgtype": "image", "number": "20261123-0001"}, now=services.clock.now())
    assert await drain(client, services) == 0
    async with services.sessions() as session:
        [row] = (await session.scalars(select(OutboxItem))).all()
    assert row.state == "dead" and "without a photo" in (row.last_error or "")
    assert sim.of("wecom_send") == []


def png(width: int = 40, height: int = 30) -> bytes:
    """A real (decodable) PNG of one colour, for the browser's canvas."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\xd0\x60\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def test_the_chat_pages_photo_button_in_chromium(
    client: TestClient[Any, Any], services: Services, sim: SimRecorder
) -> None:
    """The page's photo button: scaled on a canvas, sent, shown in the resident's chat, and the
    worker's pane shows the image message WeCom received."""
    from playwright.async_api import async_playwright

    sender = asyncio.create_task(push.run_sender(services, client.app[HTTP], asyncio.Event()))
    try:
        async with async_playwright() as pw:
            browser = await launch_chromium(pw)
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            await page.goto(str(client.make_url("/sim")))
            bot_rows = page.locator("#chat .row.bot")

            async def say(text: str) -> None:
                seen = await bot_rows.count()
                await page.fill("#text", text)
                await page.click("#send")
                await page.wait_for_function(
                    f"document.querySelectorAll('#chat .row.bot').length > {seen}", timeout=10_000)

            await say("3号楼2单元楼道灯坏了")
            seen = await bot_rows.count()
            await page.set_input_files("#photo-file", files=[{"name": "lamp.png", "mimeType": "image/png", "buffer": png()}])
            await page.wait_for_function(
                f"document.querySelectorAll('#chat .row.bot').length > {seen}", timeout=10_000)
            assert "第1张" in (await bot_rows.last.text_content() or "")
            assert await page.locator("#chat .row.me img.photo").count() == 1
            for text in ["好了", "13812345678", "否", "1"]:
                await say(text)
            shown = page.locator("#worker-chat img.photo")
            await shown.wait_for(timeout=10_000)
            await page.wait_for_function(
                "document.querySelector('#worker-chat img.photo').naturalWidth === 40", timeout=10_000)
            [kept] = sim.media.values()
            assert kept.content_type == "image/jpeg"  # the canvas made it a JPG
            [uploaded] = sim.wecom_media.values()
            assert uploaded.data == kept.data
            await browser.close()
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
