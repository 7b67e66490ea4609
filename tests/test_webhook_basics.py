"""The webhook's URL check, verification and refusals, in both modes and on both backends."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiohttp.test_utils import TestClient

from bot.channels.wechat import REPLY_MAX_BYTES, reply_xml
from bot.services import Services
from bot.sim.wechat_client import WeChatSigner, text_xml
from tests.conftest import WeChat


async def test_url_check(client: TestClient[Any, Any], services: Services) -> None:
    signer = WeChatSigner(services.settings.wechat_token, services.settings.wechat_appid)
    params = signer.url_check("echo123")
    resp = await client.get("/wechat", params=params)
    assert resp.status == 200 and await resp.text() == "echo123"
    params["signature"] = "0" * 40
    resp = await client.get("/wechat", params=params)
    assert resp.status == 403


async def test_text_gets_menu_and_follow_gets_welcome(wx: WeChat) -> None:
    assert "报事报修" in await wx.say("oRes1", "你好")
    assert "欢迎关注" in await wx.event("oRes2", "subscribe")


async def test_bad_signature_403_and_nothing_stored(client: TestClient[Any, Any], services: Services) -> None:
    signer = WeChatSigner(services.settings.wechat_token, services.settings.wechat_appid, services.settings.wechat_aes_key)
    for encrypt in (False, True):
        signed = signer.wrap(text_xml("oBad", "你好"), encrypt=encrypt)
        params = dict(signed.params, signature="1" * 40, msg_signature="2" * 40)
        resp = await client.post("/wechat", params=params, data=signed.body)
        assert resp.status == 403
    from sqlalchemy import func, select

    from storage.models import Message

    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 0


async def test_a_reply_longer_than_wechat_delivers_is_clipped(wx: WeChat) -> None:
    # A long place that is no place is repeated in the refusal: the reply would pass 2,048 bytes.
    said = "啊" * 1500
    await wx.say("oLong1", "1")
    assert "问题在哪里" in await wx.say("oLong1", "1")
    reply = await wx.say("oLong1", said)
    assert len(reply.encode("utf-8")) <= REPLY_MAX_BYTES and reply.endswith("…"), len(reply.encode())
    assert reply.startswith("“啊啊")


def test_reply_xml_clips_at_a_character_boundary() -> None:
    fields = {"FromUserName": "oX", "ToUserName": "gh_x"}
    xml = reply_xml(fields, "一" * 700 + "]]>", datetime(2026, 11, 23, tzinfo=timezone.utc))
    content = xml.split("<Content><![CDATA[", 1)[1].rsplit("]]></Content>", 1)[0]
    assert content.endswith("…") and len(content.encode("utf-8")) <= REPLY_MAX_BYTES
    assert "一" * 600 in content
    short = reply_xml(fields, "你好", datetime(2026, 11, 23, tzinfo=timezone.utc))
    assert "<Content><![CDATA[你好]]></Content>" in short
