"""Property-based fuzzing of the webhooks: whatever a client sends, the answer is never a 500.

Random bytes, mutated real WeChat XML, bad encodings, huge fields, wrong signatures and broken
AES payloads go to /wechat (and /wecom); every answer must be 200, 400, 403 or 413. The budget
is fixed (max_examples) so `make test` stays bounded.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from xml.parsers.expat import ExpatError

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest
from wechatpy.enterprise.crypto import WeChatCrypto
import xmltodict

from bot.app import create_app
from bot.services import Services
from bot.sim.wechat_client import WeChatSigner, event_xml, message_xml, text_xml
from tests.wecom_driver import load_demo_roster

ALLOWED = {200, 400, 403, 413}

SEEDS = [
    text_xml("oFuzz", "3号楼楼道灯坏了"),
    message_xml("voice", "oFuzz", MediaId="m1", Format="amr", Recognition="电梯坏了"),
    message_xml("image", "oFuzz", PicUrl="http://x/y.jpg", MediaId="m2"),
    message_xml("location", "oFuzz", Location_X=30.1, Location_Y=120.2, Scale=15, Label="望湖小区"),
    event_xml("oFuzz", "subscribe"),
    event_xml("oFuzz", "CLICK", "MENU_COMPLAINT"),
]

xml_text = st.one_of(
    st.sampled_from(SEEDS),
    st.builds(text_xml, st.text(max_size=12), st.text(max_size=300)),
    st.builds(
        lambda seed, pos, junk: seed[:pos] + junk + seed[pos:],
        st.sampled_from(SEEDS), st.integers(0, 400), st.text(max_size=40),
    ),
    st.builds(lambda seed, cut: seed[:cut], st.sampled_from(SEEDS), st.integers(0, 400)),
    st.sampled_from([
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml><Content>&b;</Content></xml>',
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Content>&e;</Content></xml>',
        "<xml><MsgType>text</MsgType></xml>",
        "<xml><FromUserName>o</FromUserName><MsgType><![CDATA[text]]></MsgType><CreateTime>x</CreateTime></xml>",
        "<notxml/>",
        "",
    ]),
)

body_mutation = st.sampled_from(["none", "latin1", "bytes", "huge_field", "bom"])


def _mutate(xml: str, how: str, junk: bytes) -> bytes:
    if how == "latin1":
        return xml.encode("utf-8", errors="replace").replace(b"\xe7", b"\xff")
    if how == "bytes":
        return junk
    if how == "huge_field":
        return xml.replace("</xml>", "<Content>" + "长" * 200_000 + "</Content></xml>").encode("utf-8")
    if how == "bom":
        return b"\xef\xbb\xbf" + xml.encode("utf-8")
    return xml.encode("utf-8", errors="replace")


AES_CORRUPTIONS = ["none", "prefix", "truncated", "random", "other_appid"]


def _signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature as WeChat and WeCom compute it over an <Encrypt> payload."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()


def generate_requests(signer: WeChatSigner, examples: int) -> list[tuple[dict[str, str], bytes]]:
    """Hypothesis draws the requests (a fixed, derandomised budget); the test posts them."""
    other = WeChatSigner(signer.token, "wxsomeoneelse0000", signer.aes_key)
    drawn: list[tuple[dict[str, str], bytes]] = []

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    @given(
        xml=xml_text,
        how=body_mutation,
        junk=st.binary(max_size=256),
        encrypt=st.booleans(),
        sig=st.sampled_from(["good", "bad", "missing"]),
        corrupt_aes=st.sampled_from(AES_CORRUPTIONS),
    )
    def draw(xml: str, how: str, junk: bytes, encrypt: bool, sig: str, corrupt_aes: str) -> None:
        params: dict[str, str]
        try:
            signed = (other if corrupt_aes == "other_appid" else signer).wrap(xml, encrypt=encrypt)
            params, body = dict(signed.params), signed.body
        except ValueError:  # text the AES envelope cannot carry: send it plain
            encrypt = False
            params, body = dict(signer.wrap("<xml/>").params), b""
        if not encrypt:
            body = _mutate(xml, how, junk)
        elif corrupt_aes in ("prefix", "truncated", "random"):
            # A broken payload signed correctly over itself, so it reaches the decryption.
            encrypt_text = body.split(b"<Encrypt><![CDATA[")[1].split(b"]]>")[0].decode()
            if corrupt_aes == "prefix":
                broken = base64.b64encode(junk[:9]).decode() + encrypt_text
            elif corrupt_aes == "truncated":
                broken = encrypt_text[: len(junk) % max(1, len(encrypt_text))]
            else:  # well-formed base64 of random bytes: bad blocks, padding or length prefix
                broken = base64.b64encode(junk or b"\0").decode()
            body = body.replace(encrypt_text.encode(), broken.encode())
            params["msg_signature"] = _signature(signer.token, params["timestamp"], params["nonce"], broken)
        if sig == "bad":
            params["signature"] = "0" * 40
            params["msg_signature"] = "1" * 40
        elif sig == "missing":
            params.pop("signature", None)
            params.pop("msg_signature", None)
        drawn.append((params, body))

    draw()
    return drawn


def unhandled(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What an entry point's boundary caught: a 200 with 请稍后再发 hides a crash from the status."""
    return [f"{r.getMessage()}: {r.exc_info[1]!r}" for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]


def refused(caplog: pytest.LogCaptureFixture, channel: str) -> str:
    """Every refusal reason the channel logged, one per line."""
    return "\n".join(r.getMessage() for r in caplog.records if r.getMessage().startswith(f"{channel} refused"))


async def test_wechat_never_500(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    app = create_app(services.settings, services=services)
    signer = WeChatSigner(services.settings.wechat_token, services.settings.wechat_appid, services.settings.wechat_aes_key)
    statuses: list[int] = []
    async with TestClient(TestServer(app)) as client:
        for params, body in generate_requests(signer, 150):
            resp = await client.post("/wechat", params=params, data=body)
            await resp.read()
            assert resp.status in ALLOWED, (resp.status, params, body[:200])
            statuses.append(resp.status)
        # Still serving: a resident's plain message after the storm gets the greeting.
        signed = signer.wrap(text_xml("oAfterFuzz", "你好"), encrypt=True)
        resp = await client.post("/wechat", params=signed.params, data=signed.body)
        reply = signer.unwrap(await resp.text(), signed.params)
        assert resp.status == 200 and reply is not None and "您好" in reply["Content"], reply
    assert not unhandled(caplog)
    # The property ran over a real spread of outcomes, not one kind of refusal.
    assert {200, 400, 403} <= set(statuses), sorted(set(statuses))
    # Broken AES payloads reached the decryption (signed over themselves), as did another account's.
    reasons = refused(caplog, "wechat")
    assert "malformed body (decrypt:" in reasons and "bad appid" in reasons, reasons


# --- /wecom: the workers' callback is always encrypted ---------------------------------------------

WECOM_USERS = ["wangwei", "liustaff", "admin", "nobody", "", "王伟", "x" * 70]
WECOM_TEXTS = ["接单", "接单 7", "办结 20261123-0001 已修好", "退回 1 不归我管", "吹哨 3 需要城管", "我的工单",
               "帮助", "回复 1 您好", "接单 99999999-9999", "办结", "", "接单 " + "9" * 300]


def wecom_xml(user: str, msg_type: str, msg_id: str, body: dict[str, str], corpid: str = "wwdemo0000000000") -> str:
    """A WeCom app message or event as the callback carries it (plain, before encryption)."""
    parts = [f"<ToUserName><![CDATA[{corpid}]]></ToUserName>", f"<FromUserName><![CDATA[{user}]]></FromUserName>",
             "<CreateTime>1763870400</CreateTime>", f"<MsgType><![CDATA[{msg_type}]]></MsgType>"]
    parts += [f"<{k}><![CDATA[{v}]]></{k}>" for k, v in body.items()]
    if msg_id:
        parts.append(f"<MsgId>{msg_id}</MsgId>")
    return "<xml>" + "".join(parts) + "<AgentID>1000002</AgentID></xml>"


wecom_plain = st.one_of(
    st.builds(
        lambda user, text, msg_id: wecom_xml(user, "text", msg_id, {"Content": text}),
        st.sampled_from(WECOM_USERS), st.one_of(st.sampled_from(WECOM_TEXTS), st.text(max_size=200)),
        st.one_of(st.integers(0, 2**63).map(str), st.sampled_from(["", "abc", "-1", "9" * 80])),
    ),
    st.builds(
        lambda user, event: wecom_xml(user, "event", "", {"Event": event, "EventKey": "k"}),
        st.sampled_from(WECOM_USERS), st.sampled_from(["enter_agent", "click", "subscribe", "LOCATION", ""]),
    ),
    st.builds(
        lambda user: wecom_xml(user, "image", "1234", {"PicUrl": "http://x/y.jpg", "MediaId": "m1"}),
        st.sampled_from(WECOM_USERS),
    ),
    st.builds(lambda seed, pos, junk: seed[:pos] + junk + seed[pos:],
              st.sampled_from([wecom_xml("wangwei", "text", "42", {"Content": "接单"})]),
              st.integers(0, 300), st.text(max_size=40)),
    st.builds(lambda cut: wecom_xml("wangwei", "text", "43", {"Content": "我的工单"})[:cut], st.integers(0, 250)),
    st.just(wecom_xml("wangwei", "text", "44", {"Content": "接单"}, corpid="wwsomeoneelse000")),
    st.sampled_from(["", "<xml/>", "<notxml>", "<xml><MsgType>text</MsgType></xml>",
                     '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><FromUserName>&a;</FromUserName></xml>']),
)

wecom_envelope = st.sampled_from(["good", "bad_signature", "missing_signature", "corrupt_base64", "truncated",
                                  "junk_body", "no_encrypt", "huge", "latin1", "other_corp"])


def generate_wecom_requests(token: str, aes_key: str, corpid: str, examples: int) -> list[tuple[str, dict[str, str], bytes]]:
    """Hypothesis draws (method, params, body) for /wecom with a fixed, derandomised budget."""
    crypto = WeChatCrypto(token, aes_key, corpid)
    other = WeChatCrypto(token, aes_key, "wwsomeoneelse000")
    drawn: list[tuple[str, dict[str, str], bytes]] = []

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    @given(
        plain=wecom_plain, how=wecom_envelope, junk=st.binary(max_size=256),
        nonce=st.one_of(st.just("n0nce"), st.text(max_size=20)),
        # Now (the webhook refuses timestamps older than the retry window), or malformed ones.
        timestamp=st.one_of(st.just(str(int(time.time()))), st.sampled_from(["", "abc", "-1", "9" * 30])),
        get=st.booleans(),
    )
    def draw(plain: str, how: str, junk: bytes, nonce: str, timestamp: str, get: bool) -> None:
        box = other if how == "other_corp" else crypto
        try:
            envelope = xmltodict.parse(box.encrypt_message(plain, nonce, timestamp or None))["xml"]
        except (ValueError, UnicodeError, ExpatError):  # text or a nonce the envelope cannot carry
            envelope = xmltodict.parse(crypto.encrypt_message("<xml/>", "n", "1"))["xml"]
        encrypt, sig = str(envelope["Encrypt"]), str(envelope["MsgSignature"])
        ts, nc = str(envelope["TimeStamp"]), str(envelope["Nonce"])
        if how == "corrupt_base64":
            encrypt = base64.b64encode(junk[:9]).decode() + encrypt
        elif how == "truncated":
            encrypt = encrypt[: len(junk) % max(1, len(encrypt))]
        if how in ("corrupt_base64", "truncated"):  # signed correctly over the broken payload
            sig = _signature(token, ts, nc, encrypt)
        params = {"msg_signature": sig, "timestamp": ts, "nonce": nc}
        if how == "bad_signature":
            params["msg_signature"] = "0" * 40
        elif how == "missing_signature":
            params.pop("msg_signature")
        if get:  # the URL check: echostr is the encrypted payload
            params["echostr"] = encrypt
            drawn.append(("GET", params, b""))
            return
        body = f"<xml><ToUserName><![CDATA[{corpid}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        raw = body.encode("utf-8")
        if how == "junk_body":
            raw = junk
        elif how == "no_encrypt":
            raw = plain.encode("utf-8", errors="replace")
        elif how == "huge":
            raw = body.replace("</xml>", "<Pad>" + "长" * 400_000 + "</Pad></xml>").encode("utf-8")
        elif how == "latin1":
            raw = body.encode("utf-8").replace(b"<Encrypt>", b"<Encrypt>\xff\xfe")
        drawn.append(("POST", params, raw))

    draw()
    return drawn


async def test_wecom_never_500(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    await load_demo_roster(services)
    s = services.settings
    app = create_app(s, services=services)
    statuses: list[int] = []
    async with TestClient(TestServer(app)) as client:
        for method, params, body in generate_wecom_requests(s.wecom_token, s.wecom_aes_key, s.wecom_corpid, 150):
            resp = await client.request(method, "/wecom", params=params, data=body or None)
            await resp.read()
            assert resp.status in ALLOWED, (resp.status, method, params, body[:200])
            statuses.append(resp.status)
    assert not unhandled(caplog)
    # Real spread: accepted commands, malformed bodies and refused signatures all came up.
    assert {200, 400, 403, 413} <= set(statuses), sorted(set(statuses))
    reasons = refused(caplog, "wecom")
    assert "malformed body (decrypt:" in reasons and "bad corpid" in reasons, reasons
