"""The webhook's URL check, verification and refusals, in both modes and on both backends."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiohttp.test_utils import TestClient

from bot.channels.wechat import REPLY_MAX_BYTES, fit_reply, reply_xml
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
    assert len(reply.encode("utf-8")) <= REPLY_MAX_BYTES, len(reply.encode())
    assert reply.startswith("“啊啊") and "……" in reply


async def test_a_long_message_quoted_back_keeps_the_question(wx: WeChat) -> None:
    """A resident's long message (over 2,048 bytes) quoted in a refusal is shortened in its middle:
    the hint after the quote and the question in hand still reach the resident — the reply was cut
    at its end, so they saw only their own words and no question."""
    said = "我家楼上每天晚上十二点以后还在装修，电钻响个不停，" * 40
    assert len(said.encode("utf-8")) > REPLY_MAX_BYTES
    assert "问题在哪里" in await wx.say("oLong2", "楼道灯坏了")
    reply = await wx.say("oLong2", said)
    assert len(reply.encode("utf-8")) <= REPLY_MAX_BYTES, len(reply.encode())
    first, *rest = reply.split("\n")
    assert first.startswith("“我家楼上每天晚上") and "……" in first
    after = first.rsplit("……", 1)[1]  # the quote's end and the hint after it
    assert "”" in after and "地点" in after.rsplit("”", 1)[1], first[-80:]
    assert rest and rest[-1].startswith("问题在哪里"), reply[-200:]
    assert "问题在哪里" in await wx.say("oLong2", "是吗")  # still at the place question


def test_reply_xml_clips_at_a_character_boundary() -> None:
    fields = {"FromUserName": "oX", "ToUserName": "gh_x"}
    xml = reply_xml(fields, "一" * 700 + "]]>", datetime(2026, 11, 23, tzinfo=timezone.utc))
    content = xml.split("<Content><![CDATA[", 1)[1].rsplit("]]></Content>", 1)[0].replace("]]]]><![CDATA[>", "]]>")
    assert len(content.encode("utf-8")) <= REPLY_MAX_BYTES
    assert content.startswith("一" * 300) and "一……一" in content and content.endswith("一" * 300 + "]]>")
    short = reply_xml(fields, "你好", datetime(2026, 11, 23, tzinfo=timezone.utc))
    assert "<Content><![CDATA[你好]]></Content>" in short


def test_fit_reply_shortens_the_longest_line_and_cuts_the_tail_only_when_it_must() -> None:
    question = "问题在哪里？请说楼栋单元门牌。"
    text = "“" + "中" * 800 + "”好像不是一个地点。\n" + question
    fitted = fit_reply(text)
    assert len(fitted.encode("utf-8")) <= REPLY_MAX_BYTES
    assert fitted.endswith("”好像不是一个地点。\n" + question) and fitted.startswith("“中中")
    assert fit_reply("你好\n" + question) == "你好\n" + question
    # many short lines, none long enough to give the bytes: the tail is cut, as before
    many = "\n".join(f"{i}. 一二三四五六七八九十" for i in range(200))
    cut = fit_reply(many)
    assert len(cut.encode("utf-8")) <= REPLY_MAX_BYTES and cut.endswith("…") and cut.startswith("0. 一二")
