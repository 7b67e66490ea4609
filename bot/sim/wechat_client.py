"""Speaks to /wechat as WeChat's servers do: builds message XML, signs, encrypts, decrypts replies.

Used by the simulator's chat page, the tests and the benchmark, so all three exercise the real
webhook path.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

import xmltodict
from wechatpy.crypto import WeChatCrypto


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(
    msg_type: str,
    openid: str,
    *,
    to: str = "gh_community",
    create_time: int | None = None,
    msg_id: int | None = None,
    **fields: Any,
) -> str:
    """WeChat's XML for one message or event; fields are the type's own elements (Content, Event …)."""
    parts = [
        f"<ToUserName>{_cdata(to)}</ToUserName>",
        f"<FromUserName>{_cdata(openid)}</FromUserName>",
        f"<CreateTime>{create_time if create_time is not None else int(time.time())}</CreateTime>",
        f"<MsgType>{_cdata(msg_type)}</MsgType>",
    ]
    for name, value in fields.items():
        if isinstance(value, (int, float)):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}>{_cdata(str(value))}</{name}>")
    if msg_type != "event":
        parts.append(f"<MsgId>{msg_id if msg_id is not None else secrets.randbits(62)}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


def text_xml(openid: str, content: str, **kw: Any) -> str:
    """A text message."""
    return message_xml("text", openid, Content=content, **kw)


def event_xml(openid: str, event: str, key: str | None = None, **kw: Any) -> str:
    """An event (subscribe, unsubscribe, SCAN, CLICK, VIEW, LOCATION)."""
    extra: dict[str, Any] = {"Event": event}
    if key is not None:
        extra["EventKey"] = key
    extra.update(kw.pop("fields", {}))
    return message_xml("event", openid, **extra, **kw)


@dataclass(frozen=True)
class Signed:
    """A request ready to post: the query string parameters and the body."""

    params: dict[str, str]
    body: bytes


@dataclass
class WeChatSigner:
    """Signs (and in safe mode encrypts) as WeChat does; decrypts passive replies."""

    token: str
    appid: str
    aes_key: str = ""

    def sign(self, timestamp: str, nonce: str) -> str:
        """The plain `signature` over token, timestamp and nonce."""
        return hashlib.sha1("".join(sorted([self.token, timestamp, nonce])).encode()).hexdigest()

    def url_check(self, echostr: str) -> dict[str, str]:
        """Query parameters of the GET URL check."""
        ts, nonce = str(int(time.time())), secrets.token_hex(6)
        return {"signature": self.sign(ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": echostr}

    def wrap(self, xml: str, *, encrypt: bool = False, timestamp: str | None = None, nonce: str | None = None) -> Signed:
        """Query and body for one message, plaintext or safe mode."""
        ts = timestamp or str(int(time.time()))
        nonce = nonce or secrets.token_hex(6)
        params = {"signature": self.sign(ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "x"}
        if not encrypt:
            return Signed(params, xml.encode("utf-8"))
        crypto = WeChatCrypto(self.token, self.aes_key, self.appid)
        enc = crypto.encrypt_message(xml, nonce, ts)
        envelope = xmltodict.parse(enc)["xml"]
        params.update({"encrypt_type": "aes", "msg_signature": envelope["MsgSignature"]})
        # WeChat posts only ToUserName and Encrypt in safe mode.
        body = f"<xml><ToUserName>{_cdata('gh_community')}</ToUserName><Encrypt>{_cdata(envelope['Encrypt'])}</Encrypt></xml>"
        return Signed(params, body.encode("utf-8"))

    def unwrap(self, body: str, params: dict[str, str]) -> dict[str, Any] | None:
        """The reply as a dict of its XML elements (decrypted in safe mode); None for 'success'."""
        if body.strip() in ("", "success"):
            return None
        if params.get("encrypt_type") == "aes":
            crypto = WeChatCrypto(self.token, self.aes_key, self.appid)
            sig = xmltodict.parse(body)["xml"]["MsgSignature"]
            body = crypto.decrypt_message(body, sig, params["timestamp"], params["nonce"])
        return dict(xmltodict.parse(body)["xml"])


def escape_text(text: str) -> str:
    """XML-escape for element text outside CDATA."""
    return escape(text)
