"""A correctly signed request is refused (403) when its timestamp is further from now than the
retry window (dedup_ttl_s): within it a replay is answered as a retry, beyond it it would be
handled again as a new message. Both webhooks, messages and URL checks."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import xmltodict
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.services import Services
from bot.sim.wechat_client import WeChatSigner
from storage.models import Message
from tests.fixtures.wechat import load, sign
from tests.wecom_driver import WeCom


def _signer(services: Services) -> WeChatSigner:
    s = services.settings
    return WeChatSigner(s.wechat_token, s.wechat_appid, s.wechat_aes_key)


async def _messages(services: Services) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Message)) or 0)


async def test_a_replay_past_the_retry_window_is_refused(client: TestClient[Any, Any], services: Services) -> None:
    window = services.settings.dedup_ttl_s
    signer = _signer(services)
    for mode in ("plain", "safe"):
        for sent_at in (time.time() - window - 60, time.time() + window + 60):  # replayed, or from a wrong clock
            old = sign(signer, load("text"), mode, timestamp=str(int(sent_at)))
            resp = await client.post("/wechat", params=old.params, data=old.body)
            assert resp.status == 403, (mode, sent_at)
    assert await _messages(services) == 0
    # Inside the window the same message is handled (and a replay of it answered as a retry).
    recent = sign(signer, load("text"), "plain", timestamp=str(int(time.time() - window + 30)))
    first = await client.post("/wechat", params=recent.params, data=recent.body)
    again = await client.post("/wechat", params=recent.params, data=recent.body)
    assert first.status == again.status == 200 and await first.text() == await again.text()
    assert await _messages(services) == 2  # the message and its one reply


async def test_url_checks_refuse_stale_timestamps(client: TestClient[Any, Any], services: Services) -> None:
    signer = _signer(services)
    stale = str(int(time.time()) - services.settings.dedup_ttl_s - 60)
    params = {"signature": signer.sign(stale, "n1"), "timestamp": stale, "nonce": "n1", "echostr": "e1"}
    assert (await client.get("/wechat", params=params)).status == 403
    now = str(int(time.time()))
    fresh = {"signature": signer.sign(now, "n1"), "timestamp": now, "nonce": "n1", "echostr": "e1"}
    resp = await client.get("/wechat", params=fresh)
    assert resp.status == 200 and await resp.text() == "e1"

    wc = WeCom(client, services)
    env = xmltodict.parse(wc.crypto.encrypt_message("echo-7", "n2", stale))["xml"]
    old = {"msg_signature": env["MsgSignature"], "timestamp": stale, "nonce": "n2", "echostr": env["Encrypt"]}
    assert (await client.get("/wecom", params=old)).status == 403


async def test_a_wecom_command_past_the_window_is_refused(client: TestClient[Any, Any], services: Services) -> None:
    wc = WeCom(client, services)
    xml = wc.message_xml("wangwei", "text", Content="帮助")
    params, body = wc.wrap(xml, sent_at=time.time() - services.settings.dedup_ttl_s - 60)
    assert (await client.post("/wecom", params=params, data=body)).status == 403
    params, body = wc.wrap(xml)
    assert (await client.post("/wecom", params=params, data=body)).status == 200


async def test_a_refused_timestamp_says_how_far_off_the_clock_is(
    client: TestClient[Any, Any], services: Services, caplog: Any
) -> None:
    """A server whose clock is wrong refuses every message: the operator is told so, how far
    off, at WARNING (it was "wechat refused: bad stale timestamp" at INFO)."""
    import logging

    window = services.settings.dedup_ttl_s
    old = sign(_signer(services), load("text"), "plain", timestamp=str(int(time.time() - window - 600)))
    with caplog.at_level(logging.INFO, logger="bot.channels"):
        assert (await client.post("/wechat", params=old.params, data=old.body)).status == 403
        params, body = WeCom(client, services).wrap(
            WeCom(client, services).message_xml("wangwei", "text", Content="帮助"), sent_at=time.time() + window + 600)
        assert (await client.post("/wecom", params=params, data=body)).status == 403
    said = [(r.levelno, r.getMessage()) for r in caplog.records if "refused" in r.getMessage()]
    behind, ahead = said
    assert behind[0] == ahead[0] == logging.WARNING, said
    off = re.match(r"wechat refused: timestamp (\d+) s behind this server's clock", behind[1])
    assert off and abs(int(off.group(1)) - (window + 600)) <= 2, said
    assert ahead[1].startswith("wecom refused: timestamp ") and "ahead of this server's clock" in ahead[1], said
    assert f"CB_DEDUP_TTL_S={window}" in behind[1] and "NTP" in behind[1], said
