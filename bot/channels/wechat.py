"""The official-account webhook (/wechat): URL check, plaintext, compatible and safe (AES) modes.

Every request is verified (403 otherwise), parsed defensively (400 for what is not WeChat XML,
413 above 1 MiB), de-duplicated across processes (a retry gets the first answer), and answered
with a passive reply, encrypted when the request was. Slow work never happens here: the dialog
queues pushes in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from wechatpy import create_reply, parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from bot import metrics
from bot.inbound import Inbound
from bot.logs import fields, request_id
from bot.privacy import hash_openid
from bot.services import Services

log = logging.getLogger(__name__)

# How long a retry waits for the first delivery's answer before giving up politely.
RETRY_WAIT_S = 4.0


class BadRequest(Exception):
    """The body is not a WeChat message (answer 400)."""


class Forbidden(Exception):
    """The signature does not match (answer 403)."""


def _crypto(svc: Services) -> WeChatCrypto | None:
    key = svc.settings.wechat_aes_key
    if not key:
        return None
    return WeChatCrypto(svc.settings.wechat_token, key, svc.settings.wechat_appid)


def _verify_plain(svc: Services, query: Any) -> None:
    try:
        check_signature(
            svc.settings.wechat_token, query.get("signature", ""), query.get("timestamp", ""),
            query.get("nonce", ""),
        )
    except InvalidSignatureException as exc:
        raise Forbidden("signature") from exc


def _check_xml(raw: bytes | str) -> None:
    """Refuse what is not well-formed, entity-free XML with an <xml> root."""
    try:
        root = safe_fromstring(raw)
    except (DefusedXmlException, SyntaxError, ValueError) as exc:  # ParseError is a SyntaxError
        raise BadRequest(f"xml: {type(exc).__name__}") from exc
    if root.tag != "xml":
        raise BadRequest("root element is not <xml>")


def decode_body(svc: Services, query: Any, body: bytes) -> tuple[str, bool]:
    """Verify and (in safe or compatible mode) decrypt; returns (plain XML, was_encrypted)."""
    if not body.strip():
        raise BadRequest("empty body")
    encrypted = query.get("encrypt_type", "raw") == "aes"
    if not encrypted:
        _verify_plain(svc, query)
        _check_xml(body)
        return body.decode("utf-8", errors="strict"), False
    crypto = _crypto(svc)
    if crypto is None:
        raise BadRequest("encrypted message but no AES key configured")
    _check_xml(body)
    try:
        plain = crypto.decrypt_message(
            body.decode("utf-8"), query.get("msg_signature", ""), query.get("timestamp", ""),
            query.get("nonce", ""),
        )
    except InvalidSignatureException as exc:
        raise Forbidden("msg_signature") from exc
    except InvalidAppIdException as exc:
        raise Forbidden("appid") from exc
    except Exception as exc:  # bad base64, padding or missing Encrypt element: a malformed body
        raise BadRequest(f"decrypt: {type(exc).__name__}") from exc
    _check_xml(plain)
    return plain, True


def to_inbound(msg: Any) -> Inbound:
    """Map a wechatpy message or event onto our Inbound."""
    kind = msg.type
    openid = msg.source or ""
    created = msg.create_time
    base: dict[str, Any] = {"openid": openid, "msg_type": kind, "created_at": created}
    if kind == "event":
        event = (msg.event or "").lower()
        key = getattr(msg, "key", None) or getattr(msg, "url", None) or ""
        media: dict[str, Any] = {}
        if event == "location":
            media = {"latitude": msg.latitude, "longitude": msg.longitude, "precision": msg.precision}
        if event == "subscribe_scan":
            event = "subscribe"
        return Inbound(**base, event=event, event_key=str(key or ""), media=media)
    msg_id = str(getattr(msg, "id", "") or "")
    if kind == "text":
        return Inbound(**base, text=msg.content or "", msg_id=msg_id)
    if kind == "voice":
        return Inbound(
            **base, text=(msg.recognition or "").strip(), msg_id=msg_id,
            media={"media_id": msg.media_id, "format": msg.format},
        )
    if kind == "image":
        return Inbound(**base, msg_id=msg_id, media={"media_id": msg.media_id, "pic_url": msg.image})
    if kind in ("video", "shortvideo"):
        return Inbound(
            **base, msg_id=msg_id, media={"media_id": msg.media_id, "thumb": msg.thumb_media_id}
        )
    if kind == "location":
        x, y = msg.location
        return Inbound(
            **base, msg_id=msg_id, text=msg.label or "",
            media={"latitude": x, "longitude": y, "scale": msg.scale, "label": msg.label or ""},
        )
    if kind == "link":
        return Inbound(
            **base, msg_id=msg_id, text=msg.title or "",
            media={"title": msg.title, "description": msg.description, "url": msg.url},
        )
    return Inbound(**base, msg_id=msg_id)


def dedup_key(svc: Services, inbound: Inbound, raw_create_time: str) -> str:
    """FromUserName + MsgId for messages (MsgId alone has collided); + CreateTime for events."""
    if inbound.msg_id:
        return svc.store.key("dedup", inbound.openid, inbound.msg_id)
    return svc.store.key("dedup", inbound.openid, "ev", raw_create_time, inbound.event)


async def answer_once(svc: Services, key: str, produce: Any) -> str | None:
    """Run produce() once per key across processes; a retry waits for and returns the first answer."""
    ttl = svc.settings.dedup_ttl_s
    if await svc.store.set_if_absent(key, {"state": "pending"}, ttl):
        try:
            reply = await produce()
        except BaseException:
            await svc.store.delete(key)  # let WeChat's retry try again
            raise
        await svc.store.set(key, {"state": "done", "reply": reply}, ttl)
        return reply
    metrics.DUPLICATES.inc()
    deadline = time.monotonic() + RETRY_WAIT_S
    while time.monotonic() < deadline:
        seen = await svc.store.get(key)
        if seen is None:  # the first delivery failed and released the key: handle this one
            return await answer_once(svc, key, produce)
        if seen.get("state") == "done":
            return seen.get("reply")
        await asyncio.sleep(0.05)
    return None


def render(svc: Services, msg: Any, reply: str | None, query: Any, encrypted: bool) -> web.Response:
    """The passive reply XML (encrypted when the request was), or 'success' for no reply."""
    if reply is None:
        return web.Response(text="success")
    xml = create_reply(reply, msg).render()
    if encrypted:
        crypto = _crypto(svc)
        assert crypto is not None  # decode_body refused encrypted requests without a key
        xml = crypto.encrypt_message(xml, query.get("nonce", ""), query.get("timestamp", ""))
    return web.Response(text=xml, content_type="application/xml")


async def url_check(request: web.Request) -> web.Response:
    """GET /wechat: echo echostr when the signature is right, 403 otherwise."""
    from bot.app import SERVICES

    svc = request.app[SERVICES]
    try:
        _verify_plain(svc, request.query)
    except Forbidden:
        metrics.REJECTED.labels("signature").inc()
        return web.Response(status=403, text="invalid signature")
    return web.Response(text=request.query.get("echostr", ""))


async def receive(request: web.Request) -> web.Response:
    """POST /wechat: one message or event in, one passive reply out."""
    from bot import dialog
    from bot.app import SERVICES

    svc = request.app[SERVICES]
    started = time.perf_counter()
    request_id.set(request.headers.get("X-Request-Id") or f"wx{int(started * 1e6) % 10**10}")
    try:
        body = await request.read()
        plain, encrypted = decode_body(svc, request.query, body)
        msg = parse_message(plain)
        if msg.type == "unknown" or not msg.source:
            metrics.MESSAGES.labels("unknown", "-").inc()
            return web.Response(text="success")
        inbound = to_inbound(msg)
    except web.HTTPRequestEntityTooLarge:
        metrics.REJECTED.labels("too_large").inc()
        return web.Response(status=413, text="body too large")
    except Forbidden as exc:
        metrics.REJECTED.labels("signature").inc()
        log.info("refused: bad %s", exc)
        return web.Response(status=403, text="invalid signature")
    except (BadRequest, UnicodeDecodeError, KeyError, ValueError, TypeError, AttributeError) as exc:
        metrics.REJECTED.labels("malformed").inc()
        log.info("refused: malformed body (%s)", exc)
        return web.Response(status=400, text="malformed body")

    raw_ct = str(getattr(msg, "_data", {}).get("CreateTime", ""))
    key = dedup_key(svc, inbound, raw_ct)
    try:
        reply = await answer_once(svc, key, lambda: dialog.handle(svc, inbound))
    except Exception:
        log.exception(
            "message not handled", extra=fields(openid=hash_openid(inbound.openid), type=inbound.msg_type)
        )
        reply = svc.texts.get("errors.resend")
    metrics.REPLY_LATENCY.observe(time.perf_counter() - started)
    return render(svc, msg, reply, request.query, encrypted)


def setup(app: web.Application) -> None:
    """Add GET and POST /wechat."""
    app.router.add_get("/wechat", url_check)
    app.router.add_post("/wechat", receive)
