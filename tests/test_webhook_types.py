"""Every message type and event WeChat sends, from real XML fixtures, in plaintext, compatible and
safe mode, on both backends: status, reply shape and encryption, what is recorded, the window.

Reply wording is the dialog's business; here only its shape and whether there is one are checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest
import xmltodict
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from wechatpy.crypto import WeChatCrypto

from bot.channels.wechat import cdata, parse_xml, reply_xml, to_inbound
from bot.clock import FakeClock
from bot.inbound import Inbound
from bot.services import Services
from bot.sim.wechat_client import WeChatSigner
from storage.models import Message, Resident
from tests.fixtures.wechat import FIXTURE_OPENID, MODES, load, names, sign


@dataclass(frozen=True)
class Expect:
    """What the webhook does with one fixture."""

    recorded: bool  # a conversation row and a resident
    reply: bool | None  # True: a text reply; False: 'success'; None: the dialog decides
    window: frozenset[str] | None  # window_opened_by values accepted; None: the window stays shut
    subscribed: bool = True


MESSAGE = frozenset({"message"})
EXPECT: dict[str, Expect] = {
    "text": Expect(True, True, MESSAGE),
    "voice_recognition": Expect(True, True, MESSAGE),
    "voice": Expect(True, True, MESSAGE),  # asks the resident to say it again
    "image": Expect(True, None, MESSAGE),
    "video": Expect(True, None, MESSAGE),
    "shortvideo": Expect(True, None, MESSAGE),
    "location": Expect(True, None, MESSAGE),
    "link": Expect(True, None, MESSAGE),
    "event_subscribe": Expect(True, True, frozenset({"subscribe", "follow"})),
    "event_subscribe_qrscene": Expect(True, True, frozenset({"subscribe", "follow"})),
    "event_unsubscribe": Expect(True, False, None, subscribed=False),
    "event_scan": Expect(True, None, frozenset({"scan"})),
    "event_click": Expect(True, True, frozenset({"click"})),
    # WeChat opens the 48-hour window on messages, follows, scans and CLICK menus only.
    "event_view": Expect(True, False, None),
    "event_location": Expect(True, False, None),
    # Nothing the bot can read, but a resident talking: recorded, answered, the window opened.
    "file": Expect(True, True, MESSAGE),
    "sticker": Expect(True, True, MESSAGE),
    "unknown_type": Expect(True, True, MESSAGE),  # a mini-program card
    "unknown_event": Expect(False, False, None),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECT) == names()
    assert len(names()) == 19


def _signer(svc: Services) -> WeChatSigner:
    s = svc.settings
    return WeChatSigner(s.wechat_token, s.wechat_appid, s.wechat_aes_key)


def _check_encrypted_envelope(svc: Services, body: str, params: dict[str, str]) -> None:
    """The reply is safe-mode XML whose msg_signature verifies over our token, timestamp, nonce."""
    envelope = xmltodict.parse(body)["xml"]
    assert set(envelope) >= {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    assert envelope["Nonce"] == params["nonce"]
    s = svc.settings
    crypto = WeChatCrypto(s.wechat_token, s.wechat_aes_key, s.wechat_appid)
    crypto.decrypt_message(body, envelope["MsgSignature"], envelope["TimeStamp"], envelope["Nonce"])


async def _rows(svc: Services, openid: str) -> tuple[list[Message], Resident | None]:
    async with svc.sessions() as session:
        msgs = list(await session.scalars(select(Message).where(Message.openid == openid).order_by(Message.id)))
        resident = await session.scalar(select(Resident).where(Resident.openid == openid))
    return msgs, resident


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(EXPECT))
async def test_fixture_in_mode(
    name: str, mode: str, client: TestClient[Any, Any], services: Services, clock: FakeClock
) -> None:
    expect = EXPECT[name]
    signer = _signer(services)
    signed = sign(signer, load(name), mode)
    resp = await client.post("/wechat", params=signed.params, data=signed.body,
                             headers={"Content-Type": "text/xml"})
    body = await resp.text()
    assert resp.status == 200, body

    if body == "success":
        reply = None
    else:
        assert resp.content_type == "application/xml"
        if mode == "plain":
            assert "<Encrypt>" not in body
        else:
            _check_encrypted_envelope(services, body, signed.params)
        reply = signer.unwrap(body, signed.params)
        assert reply is not None
        assert reply["ToUserName"] == FIXTURE_OPENID
        assert reply["FromUserName"] == "gh_community"
        assert reply["MsgType"] == "text"
        assert int(reply["CreateTime"]) == int(clock.now().timestamp())
        assert str(reply.get("Content") or "").strip()
    if expect.reply is True:
        assert reply is not None, f"{name}: expected a reply"
    elif expect.reply is False:
        assert reply is None, f"{name}: expected 'success', got {reply}"

    msgs, resident = await _rows(services, FIXTURE_OPENID)
    inbound = [m for m in msgs if m.direction == "in"]
    if not expect.recorded:
        assert msgs == [] and resident is None
        return
    assert len(inbound) == 1, [(m.msg_type, m.content) for m in inbound]
    kind = {"sticker": "unsupported", "unknown_type": "other"}.get(name, xmltodict.parse(load(name))["xml"]["MsgType"])
    assert inbound[0].msg_type.startswith(kind)
    assert resident is not None
    assert resident.subscribed is expect.subscribed
    if expect.window is None:
        assert resident.last_inbound_at is None, (
            f"{name}: WeChat opens the 48-hour customer-service window only on messages, follows, "
            "scans and CLICK menus; a custom message after this would be refused (45015) — see "
            "_touch in bot/dialog.py"
        )
    else:
        assert resident.last_inbound_at == clock.now()
        assert resident.window_opened_by in expect.window
        # only a message opens the 48-hour window; an event opens its minute (bot.cs_window)
        assert resident.last_message_at == (clock.now() if expect.window == MESSAGE else None)


# --- what reaches the dialog ------------------------------------------------------------------


def _inbound(name: str) -> Inbound | None:
    return to_inbound(parse_xml(load(name)))


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


O = FIXTURE_OPENID
MAPPED: dict[str, Inbound | None] = {
    "text": Inbound(O, "text", text="3号楼电梯坏了，困了两位老人，电话13812345678", msg_id="24700000000000001",
                    created_at=_at(1795399200)),
    "voice_recognition": Inbound(
        O, "voice", text="我想预约明天中午的助餐。", msg_id="24700000000000002", created_at=_at(1795399201),
        media={"media_id": "Y0ZWDYGQ3nA0cF6gW7Ohwk8bUxsPbo6k7ijhhuO0JzKbUyP5OPGzGMPc9Qh8pMKD", "format": "amr"},
    ),
    "voice": Inbound(
        O, "voice", text="", msg_id="24700000000000003", created_at=_at(1795399202),
        media={"media_id": "Y0ZWDYGQ3nA0cF6gW7Ohwk8bUxsPbo6k7ijhhuO0JzKbUyP5OPGzGMPc9Qh8pMKE", "format": "amr"},
    ),
    "image": Inbound(
        O, "image", msg_id="24700000000000004", created_at=_at(1795399203),
        media={"media_id": "6ZdO5zu1Yw2WvVfI-dn4jTFVxCHDZahL0sV8fNYPx1JYtUEGjvmEEAlYfNjSt9bH",
               "pic_url": "http://mmbiz.qpic.cn/mmbiz_jpg/lamp-broken/0"},
    ),
    "video": Inbound(
        O, "video", msg_id="24700000000000005", created_at=_at(1795399204),
        media={"media_id": "Ao6Q2yA0yOLYbwRKXr6FGQ1AyK4dCA4T6HfJCk9ZBdKeI0eRGe1lIUjBTfLyeL7F",
               "thumb": "lyTU3lkMIcBN4N4VAwDmRBRb40JgUXAxWlV5HxmNrY7v5CyZQKJ3ADvs9ldItdwB"},
    ),
    "shortvideo": Inbound(
        O, "shortvideo", msg_id="24700000000000006", created_at=_at(1795399205),
        media={"media_id": "Bo6Q2yA0yOLYbwRKXr6FGQ1AyK4dCA4T6HfJCk9ZBdKeI0eRGe1lIUjBTfLyeL7G",
               "thumb": "myTU3lkMIcBN4N4VAwDmRBRb40JgUXAxWlV5HxmNrY7v5CyZQKJ3ADvs9ldItdwC"},
    ),
    "location": Inbound(
        O, "location", text="浙江省杭州市西湖区望湖社区3幢", msg_id="24700000000000007", created_at=_at(1795399206),
        media={"latitude": 30.274084, "longitude": 120.15507, "scale": 15.0, "label": "浙江省杭州市西湖区望湖社区3幢"},
    ),
    "link": Inbound(
        O, "link", text="关于小区停车收费的通知", msg_id="24700000000000008", created_at=_at(1795399207),
        media={"title": "关于小区停车收费的通知", "description": "物业贴出的新收费标准",
               "url": "https://mp.weixin.qq.com/s/parking-notice"},
    ),
    "event_subscribe": Inbound(O, "event", event="subscribe", created_at=_at(1795399208)),
    "event_subscribe_qrscene": Inbound(
        O, "event", event="subscribe", event_key="building3", created_at=_at(1795399209),
        media={"ticket": "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2tIVVRkZ2JsWXc"},
    ),
    "event_unsubscribe": Inbound(O, "event", event="unsubscribe", created_at=_at(1795399210)),
    "event_scan": Inbound(
        O, "event", event="scan", event_key="building3", created_at=_at(1795399211),
        media={"ticket": "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2tIVVRkZ2JsWXc"},
    ),
    "event_click": Inbound(O, "event", event="click", event_key="MENU_COMPLAINT", created_at=_at(1795399212)),
    "event_view": Inbound(
        O, "event", event="view", event_key="https://community.example.cn/notices", created_at=_at(1795399213)
    ),
    "event_location": Inbound(
        O, "event", event="location", created_at=_at(1795399214),
        media={"latitude": 30.274084, "longitude": 120.15507, "precision": 65.0},
    ),
    "file": Inbound(
        O, "file", msg_id="24700000000000017", created_at=_at(1795399217),
        media={"title": "维修报价单.pdf", "size": "102400"},
    ),
    "sticker": Inbound(
        O, "unsupported", msg_id="24700000000000018", created_at=_at(1795399218),
        media={"placeholder": "【收到不支持的消息类型，暂无法显示】"},
    ),
    "unknown_type": Inbound(
        O, "other", msg_id="24700000000000016", created_at=_at(1795399215),
        media={"type": "miniprogrampage", "title": "社区食堂菜单"},
    ),
    "unknown_event": None,
}


@pytest.mark.parametrize("name", sorted(MAPPED))
def test_fixture_maps_onto_inbound(name: str) -> None:
    assert _inbound(name) == MAPPED[name]


def test_reply_xml_survives_any_text() -> None:
    nasty = "您好 <b>&amp;</b> ]]> 结尾]]>"
    xml = reply_xml(parse_xml(load("text")), nasty, _at(1795399300))
    parsed = xmltodict.parse(xml)["xml"]
    assert parsed["Content"] == nasty
    assert parsed["ToUserName"] == FIXTURE_OPENID and parsed["CreateTime"] == "1795399300"
    assert cdata("a]]>b") == "<![CDATA[a]]]]><![CDATA[>b]]>"


@pytest.mark.parametrize("mode", ["compatible", "safe"])
async def test_encrypted_content_wins_over_the_plaintext_copy(
    mode: str, client: TestClient[Any, Any], services: Services
) -> None:
    """In compatible mode the plaintext fields are unauthenticated: only <Encrypt> is believed."""
    signer = _signer(services)
    signed = sign(signer, load("text"), mode)
    forged = signed.body.decode().replace(FIXTURE_OPENID, "oForgedSender").replace("电梯", "路灯")
    resp = await client.post("/wechat", params=signed.params, data=forged.encode())
    assert resp.status == 200
    reply = signer.unwrap(await resp.text(), signed.params)
    assert reply is not None and reply["ToUserName"] == FIXTURE_OPENID
    msgs, _ = await _rows(services, FIXTURE_OPENID)
    assert [m.content for m in msgs if m.direction == "in"] == ["3号楼电梯坏了，困了两位老人，电话13812345678"]
    assert (await _rows(services, "oForgedSender"))[0] == []


async def test_url_check_in_safe_mode_is_plain(client: TestClient[Any, Any], services: Services) -> None:
    """The official account's URL check carries a plain signature and echostr even in safe mode."""
    params = _signer(services).url_check("4927301128376")
    resp = await client.get("/wechat", params=params)
    assert resp.status == 200 and await resp.text() == "4927301128376"
