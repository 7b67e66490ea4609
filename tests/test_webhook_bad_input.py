"""Whatever a client sends, /wechat answers 403, 400, 405 or 413 — never a 500 — and stores nothing.

Decisions tested here (see bot/channels/wechat.py): a message without FromUserName is malformed
(400, nothing stored); the Content-Type header is not consulted, the body decides.
"""

from __future__ import annotations

import gzip
import hashlib
import secrets
import time
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import xmltodict
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto

from bot.services import Services
from bot.settings import Settings
from bot.sim.wechat_client import WeChatSigner
from storage.models import Message, Resident
from tests.fixtures.wechat import load, sign


@dataclass(frozen=True)
class Req:
    """One HTTP request to /wechat."""

    method: str
    params: dict[str, str]
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _signer(s: Settings) -> WeChatSigner:
    return WeChatSigner(s.wechat_token, s.wechat_appid, s.wechat_aes_key)


def _plain(s: Settings, body: bytes | str, **headers: str) -> Req:
    """A correctly signed plaintext POST of an arbitrary body."""
    ts, nonce = str(int(time.time())), secrets.token_hex(6)
    params = {"signature": _signer(s).sign(ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "oBadInput"}
    return Req("POST", params, body if isinstance(body, bytes) else body.encode(), headers)


def _aes_sig(token: str, ts: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, ts, nonce, encrypt])).encode()).hexdigest()


def _aes(s: Settings, encrypt: str, *, body: str | None = None) -> Req:
    """A correctly signed safe-mode POST whose <Encrypt> is the given string (whatever it decrypts to)."""
    req = _plain(s, b"")
    params = dict(req.params, encrypt_type="aes",
                  msg_signature=_aes_sig(s.wechat_token, req.params["timestamp"], req.params["nonce"], encrypt))
    xml = body if body is not None else f"<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return Req("POST", params, xml.encode())


def _encrypted_with(s: Settings, plain_xml: str, *, appid: str | None = None, key: str | None = None) -> Req:
    """Safe mode with a payload encrypted by another appid or another AES key, correctly signed."""
    crypto = WeChatCrypto(s.wechat_token, key or s.wechat_aes_key, appid or s.wechat_appid)
    ts, nonce = str(int(time.time())), secrets.token_hex(6)
    encrypt = xmltodict.parse(crypto.encrypt_message(plain_xml, nonce, ts))["xml"]["Encrypt"]
    return _aes(s, encrypt)


def _aes_payload(s: Settings, payload: bytes) -> str:
    """Encrypt raw payload bytes the way WeChat does (random16 + length + body + appid, PKCS#7)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = __import__("base64").b64decode(s.wechat_aes_key + "=")
    body = secrets.token_bytes(16) + len(payload).to_bytes(4, "big") + payload + s.wechat_appid.encode()
    pad = 32 - len(body) % 32
    body += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return b64encode(enc.update(body) + enc.finalize()).decode()


def _signed_query(s: Settings, req: Req, **changes: str) -> Req:
    params = dict(req.params)
    for k, v in changes.items():
        if v == "":
            params.pop(k, None)
        else:
            params[k] = v
    return Req(req.method, params, req.body, req.headers)


TEXT = load("text").replace("o6_bmjrPTlm6_2sgVt7hMZOPfL2M", "oBadInputResident00000000001")
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oLaugh]]></FromUserName>
<CreateTime>1795399200</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>&lol9;</Content>
<MsgId>1</MsgId></xml>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>oXxe</FromUserName><CreateTime>1795399200</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>2</MsgId></xml>"""
PLAIN_DOCTYPE = '<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd"><xml><FromUserName>oDtd</FromUserName></xml>'


def _without(xml: str, element: str) -> str:
    start = xml.index(f"<{element}>")
    end = xml.index(f"</{element}>") + len(f"</{element}>")
    return xml[:start] + xml[end:]


Build = Callable[[Settings], Req]
CASES: dict[str, tuple[Build, int]] = {
    # signatures
    "get_no_params": (lambda s: Req("GET", {}), 403),
    "get_no_signature": (lambda s: _signed_query(s, Req("GET", _signer(s).url_check("e")), signature=""), 403),
    "get_wrong_signature": (lambda s: _signed_query(s, Req("GET", _signer(s).url_check("e")), signature="0" * 40), 403),
    "get_wrong_nonce": (lambda s: _signed_query(s, Req("GET", _signer(s).url_check("e")), nonce="other"), 403),
    "post_plain_no_signature": (lambda s: _signed_query(s, _plain(s, TEXT), signature=""), 403),
    "post_plain_wrong_signature": (lambda s: _signed_query(s, _plain(s, TEXT), signature="f" * 40), 403),
    "post_plain_no_params": (lambda s: Req("POST", {}, TEXT.encode()), 403),
    "post_empty_body_unsigned": (lambda s: Req("POST", {}, b""), 403),
    "post_garbage_unsigned": (lambda s: Req("POST", {"encrypt_type": "des"}, b"<<<"), 403),
    "post_aes_wrong_msg_signature": (
        lambda s: _signed_query(s, _req(sign(_signer(s), TEXT, "safe")), msg_signature="a" * 40), 403),
    "post_aes_no_msg_signature": (
        lambda s: _signed_query(s, _req(sign(_signer(s), TEXT, "safe")), msg_signature=""), 403),
    "post_aes_wrong_plain_signature": (
        lambda s: _signed_query(s, _req(sign(_signer(s), TEXT, "safe")), signature="b" * 40), 403),
    "post_compatible_wrong_msg_signature": (
        lambda s: _signed_query(s, _req(sign(_signer(s), TEXT, "compatible")), msg_signature="c" * 40), 403),
    "post_aes_wrong_appid_inside": (lambda s: _encrypted_with(s, TEXT, appid="wxsomeoneelse0000"), 403),
    # bodies that are not WeChat XML
    "empty_body": (lambda s: _plain(s, b""), 400),
    "whitespace_body": (lambda s: _plain(s, b" \r\n\t "), 400),
    "not_xml": (lambda s: _plain(s, "hello, bot"), 400),
    "json_body": (lambda s: _plain(s, '{"FromUserName": "oJson", "Content": "hi"}', **{"Content-Type": "application/json"}), 400),
    "form_body": (lambda s: _plain(s, "FromUserName=oForm&Content=hi", **{"Content-Type": "application/x-www-form-urlencoded"}), 400),
    "multipart_body": (
        lambda s: _plain(s, f"--b\r\nContent-Disposition: form-data; name=x\r\n\r\n{TEXT}\r\n--b--\r\n",
                         **{"Content-Type": "multipart/form-data; boundary=b"}), 400),
    "malformed_xml": (lambda s: _plain(s, "<xml><ToUserName>gh</ToUserName><FromUserName>oX"), 400),
    "wrong_root": (lambda s: _plain(s, TEXT.replace("<xml>", "<msg>").replace("</xml>", "</msg>")), 400),
    "invalid_utf8": (lambda s: _plain(s, TEXT.encode().replace("电梯".encode(), b"\xff\xfe\xfa")), 400),
    "billion_laughs": (lambda s: _plain(s, BILLION_LAUGHS), 400),
    "external_entity": (lambda s: _plain(s, EXTERNAL_ENTITY), 400),
    "doctype_alone": (lambda s: _plain(s, PLAIN_DOCTYPE), 400),
    "missing_from_user": (lambda s: _plain(s, _without(TEXT, "FromUserName")), 400),
    "empty_from_user": (lambda s: _plain(s, TEXT.replace("oBadInputResident00000000001", "")), 400),
    "missing_msg_type": (lambda s: _plain(s, _without(TEXT, "MsgType")), 400),
    "missing_create_time": (lambda s: _plain(s, _without(TEXT, "CreateTime")), 400),
    "bad_create_time": (lambda s: _plain(s, TEXT.replace("1795399200", "yesterday")), 400),
    "huge_create_time": (lambda s: _plain(s, TEXT.replace("1795399200", "9" * 40)), 400),
    "nested_from_user": (
        lambda s: _plain(s, TEXT.replace("<![CDATA[oBadInputResident00000000001]]>", "<a>oNested</a>")), 400),
    "duplicate_element": (
        lambda s: _plain(s, TEXT.replace("</xml>", "<FromUserName>oOther</FromUserName></xml>")), 400),
    "openid_too_long": (lambda s: _plain(s, TEXT.replace("oBadInputResident00000000001", "o" * 65)), 400),
    "msg_id_too_long": (lambda s: _plain(s, TEXT.replace("24700000000000001", "9" * 65)), 400),
    "location_not_a_number": (lambda s: _plain(s, load("location").replace("30.274084", "north")), 400),
    "event_without_event": (lambda s: _plain(s, _without(load("event_click"), "Event")), 400),
    "unknown_encrypt_type": (lambda s: _signed_query(s, _plain(s, TEXT), encrypt_type="des"), 400),
    "aes_without_encrypt": (lambda s: _aes(s, "x", body=TEXT), 400),
    "aes_bad_base64": (lambda s: _aes(s, "***not base64***"), 400),
    "aes_not_block_multiple": (lambda s: _aes(s, b64encode(secrets.token_bytes(20)).decode()), 400),
    "aes_payload_not_xml": (lambda s: _aes(s, _aes_payload(s, b"hello, not xml")), 400),
    "aes_payload_billion_laughs": (lambda s: _aes(s, _aes_payload(s, BILLION_LAUGHS.encode())), 400),
    "aes_payload_bad_utf8": (lambda s: _aes(s, _aes_payload(s, b"<xml>\xff\xfe</xml>")), 400),
    # size
    "over_one_mib": (lambda s: _plain(s, TEXT.replace("电梯", "电梯" * 200_000)), 413),
    "gzip_bomb": (
        lambda s: _plain(s, gzip.compress(TEXT.replace("电梯", "电" * 2_000_000).encode()), **{"Content-Encoding": "gzip"}),
        413),
    # methods
    "put": (lambda s: Req("PUT", {}, TEXT.encode()), 405),
    "delete": (lambda s: Req("DELETE", {}), 405),
}


def _req(signed: Any) -> Req:
    return Req("POST", dict(signed.params), signed.body)


async def _nothing_stored(svc: Services) -> None:
    async with svc.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 0
        assert await session.scalar(select(func.count()).select_from(Resident)) == 0


async def _send(client: TestClient[Any, Any], req: Req) -> tuple[int, str]:
    resp = await client.request(req.method, "/wechat", params=req.params, data=req.body, headers=req.headers)
    return resp.status, await resp.text()


@pytest.mark.parametrize("case", sorted(CASES))
async def test_refused(case: str, client: TestClient[Any, Any], services: Services) -> None:
    build, expected = CASES[case]
    status, body = await _send(client, build(services.settings))
    assert status == expected, (case, status, body[:200])
    await _nothing_stored(services)


async def test_nothing_bad_is_a_500(client: TestClient[Any, Any], services: Services) -> None:
    """Every bad request in a row against one server: all refused below 500, nothing stored, still healthy."""
    for name, (build, _expected) in CASES.items():
        status, _ = await _send(client, build(services.settings))
        assert 400 <= status < 500, name
    await _nothing_stored(services)
    resp = await client.get("/healthz")
    assert resp.status == 200


async def test_wrong_aes_key_refused(client: TestClient[Any, Any], services: Services) -> None:
    """Encrypted with another key: it decrypts to noise, refused as malformed or foreign, never a 500."""
    other_key = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
    for _ in range(5):  # noise differs each time: bad padding, bad length, wrong appid
        status, _ = await _send(client, _encrypted_with(services.settings, TEXT, key=other_key))
        assert status in (400, 403)
    await _nothing_stored(services)


async def test_xml_with_any_content_type_is_read(client: TestClient[Any, Any], services: Services) -> None:
    """The header is not consulted: WeChat XML labelled text/plain is still a message."""
    req = _plain(services.settings, TEXT, **{"Content-Type": "text/plain"})
    status, body = await _send(client, req)
    assert status == 200 and body != "success"
    async with services.sessions() as session:
        rows = list(await session.scalars(select(Message).where(Message.direction == "in")))
    assert [(m.openid, m.msg_type) for m in rows] == [("oBadInputResident00000000001", "text")]


async def test_refusals_are_counted(client: TestClient[Any, Any], services: Services) -> None:
    from bot.metrics import REGISTRY

    def count(reason: str) -> float:
        return REGISTRY.get_sample_value("cb_rejected_total", {"reason": reason}) or 0.0

    before = {r: count(r) for r in ("signature", "malformed", "too_large")}
    for name in ("post_plain_wrong_signature", "not_xml", "over_one_mib"):
        await _send(client, CASES[name][0](services.settings))
    assert {r: count(r) - before[r] for r in before} == {"signature": 1, "malformed": 1, "too_large": 1}
