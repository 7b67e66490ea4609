"""The official-account webhook (/wechat): URL check, plaintext, compatible and safe (AES) modes.

Every request is verified (403 otherwise), parsed defensively (400 for what is not WeChat XML,
413 above 1 MiB), de-duplicated across processes (a retry gets the first answer), and answered
with a passive reply, encrypted when the request was. Slow work never happens here: the dialog
queues pushes in the outbox.

Decisions a client can rely on:
- A correctly signed request whose `timestamp` is further than `dedup_ttl_s` from now is a 403:
  a replay inside that window is answered as a retry, and none outside it is handled again.
- `encrypt_type=aes` (compatible and safe mode) needs both the plain `signature` and the
  `msg_signature`; the message is taken from the decrypted <Encrypt> only — the plaintext copy
  compatible mode also sends is ignored. Any other `encrypt_type` than `raw`/`aes` is a 400.
- The Content-Type header is not consulted (WeChat has sent text/xml, application/xml and none);
  the body must be WeChat XML whatever the header says.
- XML with a DOCTYPE (so: any entity, internal or external) is refused with 400.
- A message without FromUserName, MsgType or an integer CreateTime is malformed: 400, nothing
  stored. An event we do not know (TEMPLATESENDJOBFINISH and the like are not residents talking)
  is answered `success`, counted, and not recorded. A message the bot cannot read — a file, a
  mini-program card or another type WeChat adds, a sticker (which WeChat delivers as the text
  UNSUPPORTED_TEXT) — is a resident talking: recorded (as "file", "other" or "unsupported") and
  answered by the dialog, which says so and asks again what was asked.
- Message retries are keyed on FromUserName + MsgId; events on FromUserName + CreateTime +
  event (+ key), so the LOCATION event WeChat sends in the same second as a follow is not
  mistaken for a retry of the follow.
- `subscribe` with a `qrscene_` EventKey arrives as event "subscribe" with the scene value
  (prefix removed) as `event_key`, the same value a SCAN of that code carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import re
import socket
import struct
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from bot import metrics
from bot.channels.push import fit_bytes
from bot.inbound import AlreadyHandled, Inbound
from bot.logs import bind_subject, fields
from bot.privacy import hash_openid
from bot.services import Services

log = logging.getLogger(__name__)

# How long a retry waits for the first delivery's answer before answering nothing (WeChat gives
# up on a delivery after 5 s; an empty answer shows the resident nothing rather than a duplicate).
RETRY_WAIT_S = 4.0
_POLL_S = 0.05
_SETTLED_HERE_S = 0.005  # a first delivery of this process just settled: its answer is there
# Which process is handling a pending message, and how it shows it is alive: a retry that finds
# the message pending in a process that stopped beating (killed mid-message: its transaction
# rolled back) handles it itself instead of answering nothing until the entry expires.
OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
HEARTBEAT_S = 2.0
HEARTBEAT_TTL_S = 6.0

MESSAGE_TYPES = frozenset({"text", "voice", "image", "video", "shortvideo", "location", "link", "file"})
# What WeChat delivers to an official account in place of a sticker (and other things it cannot
# pass on): a text message with this Content.
UNSUPPORTED_TEXT = "【收到不支持的消息类型，暂无法显示】"
EVENTS = frozenset({"subscribe", "unsubscribe", "scan", "click", "view", "location"})
_MAX_OPENID = 64  # residents.openid and messages.openid are String(64)
_MAX_MSG_ID = 64


class BadRequest(Exception):
    """The body is not a WeChat message (answer 400)."""


class Forbidden(Exception):
    """The signature does not match (answer 403)."""


class StaleTimestamp(Forbidden):
    """Signed, but sent further from now than the retry window (answer 403): a replay, or this
    server's clock is wrong — then every message is refused, so it is logged as a warning."""


@dataclass(frozen=True)
class Received:
    """A verified request: the message's top-level XML fields, and whether it came encrypted."""

    fields: Mapping[str, str | None]  # None marks an element with children (not a plain value)
    encrypted: bool


# --- verification and parsing --------------------------------------------------------------------


def _crypto(svc: Services) -> WeChatCrypto | None:
    key = svc.settings.wechat_aes_key
    if not key:
        return None
    return WeChatCrypto(svc.settings.wechat_token, key, svc.settings.wechat_appid)


def _verify_plain(svc: Services, query: Mapping[str, str]) -> None:
    try:
        check_signature(
            svc.settings.wechat_token, query.get("signature", ""), query.get("timestamp", ""),
            query.get("nonce", ""),
        )
    except InvalidSignatureException as exc:
        raise Forbidden("signature") from exc
    check_fresh(svc, query.get("timestamp", ""))


def check_fresh(svc: Services, timestamp: str) -> None:
    """Refuse a correctly signed request whose timestamp is further than dedup_ttl_s from now.

    Within that window a replayed request is recognised as a retry and answered from the first
    answer; beyond it, it would be handled as a new message. Wall-clock time, as WeChat signs it
    (svc.clock is business time and does not apply)."""
    try:
        sent = int(timestamp.strip())
    except ValueError as exc:
        raise Forbidden("timestamp") from exc
    off = round(sent - time.time())
    if abs(off) > svc.settings.dedup_ttl_s:
        side = "behind" if off < 0 else "ahead of"
        raise StaleTimestamp(
            f"timestamp {abs(off)} s {side} this server's clock (more than CB_DEDUP_TTL_S="
            f"{svc.settings.dedup_ttl_s}): a replay, or this server's clock is wrong (check NTP)"
        )


def parse_xml(raw: bytes | str) -> dict[str, str | None]:
    """The top-level elements of a DTD-free <xml> document: name → text ('' when empty)."""
    try:
        root = safe_fromstring(raw, forbid_dtd=True)
    except (DefusedXmlException, SyntaxError, ValueError) as exc:  # ParseError is a SyntaxError
        raise BadRequest(f"xml: {type(exc).__name__}") from exc
    if root.tag != "xml":
        raise BadRequest("root element is not <xml>")
    values: dict[str, str | None] = {}
    for child in root:
        if not isinstance(child.tag, str):
            continue  # comments and processing instructions
        if child.tag in values:
            raise BadRequest(f"element <{child.tag}> appears twice")
        values[child.tag] = None if len(child) else (child.text or "")
    return values


def _decrypt(svc: Services, query: Mapping[str, str], envelope: Mapping[str, str | None]) -> str:
    crypto = _crypto(svc)
    if crypto is None:
        raise BadRequest("encrypted message but no AES key configured")
    encrypt = envelope.get("Encrypt")
    if not encrypt:
        raise BadRequest("encrypt_type=aes without an <Encrypt> element")
    return decrypt(crypto, encrypt, query, InvalidAppIdException, "appid")


def decrypt(crypto: Any, encrypt: str, query: Mapping[str, str], wrong_id: type[Exception], id_name: str) -> str:
    """An <Encrypt> element's message, its msg_signature checked (an official account's or a WeCom
    app's crypto): Forbidden for a bad signature or another account's id (wrong_id), BadRequest for
    what does not decrypt."""
    try:
        plain = crypto.decrypt_message(
            {"Encrypt": encrypt}, query.get("msg_signature", ""), query.get("timestamp", ""),
            query.get("nonce", ""),
        )
    except InvalidSignatureException as exc:
        raise Forbidden("msg_signature") from exc
    except wrong_id as exc:
        raise Forbidden(id_name) from exc
    except (ValueError, IndexError, struct.error) as exc:
        # bad base64 (binascii.Error), a length that is no multiple of the block, bad padding,
        # a truncated length prefix, bad UTF-8 inside
        raise BadRequest(f"decrypt: {type(exc).__name__}") from exc
    return str(plain)


def decode_body(svc: Services, query: Mapping[str, str], body: bytes) -> Received:
    """Verify and (in safe or compatible mode) decrypt the body; 403/400 as exceptions."""
    _verify_plain(svc, query)  # who is asking comes first: strangers learn nothing about bodies
    if not body.strip():
        raise BadRequest("empty body")
    mode = query.get("encrypt_type", "raw") or "raw"
    if mode not in ("raw", "aes"):
        raise BadRequest(f"unknown encrypt_type {mode[:16]!r}")
    envelope = parse_xml(body)
    if mode == "raw":
        return Received(envelope, encrypted=False)
    return Received(parse_xml(_decrypt(svc, query, envelope)), encrypted=True)


# --- the message ---------------------------------------------------------------------------------


def _text(values: Mapping[str, str | None], name: str, *, required: bool = False) -> str:
    if name not in values:
        if required:
            raise BadRequest(f"<{name}> missing")
        return ""
    value = values[name]
    if value is None:
        raise BadRequest(f"<{name}> is not a plain value")
    if required and not value.strip():
        raise BadRequest(f"<{name}> empty")
    return value


def _number(values: Mapping[str, str | None], name: str, bound: float = math.inf) -> float | None:
    """A number element; None when empty, or when not finite or beyond ±bound (nan, inf, a
    latitude of 999: a point nowhere — kept, it was shown as a place, 位置(999.0, -inf), and NaN
    made PostgreSQL refuse the message's JSON, losing it)."""
    raw = _text(values, name).strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise BadRequest(f"<{name}> is not a number") from exc
    return value if math.isfinite(value) and abs(value) <= bound else None


def _point(values: Mapping[str, str | None], lat: str, lon: str) -> dict[str, float]:
    """{"latitude", "longitude"} of a usable point, else {}: one without the other is no point, and
    the dialog takes a location for a point only when "latitude" is there (without one, its label
    is read as a place typed; with no label either, the place is asked again)."""
    latitude, longitude = _number(values, lat, 90.0), _number(values, lon, 180.0)
    if latitude is None or longitude is None:
        return {}
    return {"latitude": latitude, "longitude": longitude}


def _created_at(values: Mapping[str, str | None]) -> datetime:
    raw = _text(values, "CreateTime", required=True).strip()
    try:
        return datetime.fromtimestamp(int(raw), tz=timezone.utc)
    except (ValueError, OverflowError, OSError) as exc:
        raise BadRequest("<CreateTime> is not a time") from exc


def message_type(values: Mapping[str, str | None]) -> str:
    """WeChat's MsgType in lower case ('event' for events); 400 when missing."""
    return _text(values, "MsgType", required=True).strip().lower()


def to_inbound(values: Mapping[str, str | None]) -> Inbound | None:
    """Map WeChat's message fields onto an Inbound; None for an event we do not handle."""
    openid = _text(values, "FromUserName", required=True).strip()
    if len(openid) > _MAX_OPENID:
        raise BadRequest("<FromUserName> too long")
    kind = message_type(values)
    created = _created_at(values)
    base: dict[str, Any] = {"openid": openid, "msg_type": kind, "created_at": created}
    if kind == "event":
        return _event(values, base)
    msg_id = _text(values, "MsgId").strip()
    if len(msg_id) > _MAX_MSG_ID:
        raise BadRequest("<MsgId> too long")
    base["msg_id"] = msg_id
    if kind not in MESSAGE_TYPES:  # a mini-program card, or a type WeChat added: kept by its name
        base["msg_type"] = "other"  # (not as msg_type: a client's word, and a metrics label)
        return Inbound(**base, media={"type": kind[:_MAX_MSG_ID], "title": _text(values, "Title")})
    if kind == "text":
        content = _text(values, "Content")
        if content.strip() == UNSUPPORTED_TEXT:
            return Inbound(**{**base, "msg_type": "unsupported"}, media={"placeholder": content.strip()})
        return Inbound(**base, text=content)
    if kind == "file":
        media = {"title": _text(values, "Title"), "size": _text(values, "FileTotalLen").strip()[:20]}
        return Inbound(**base, media=media)
    if kind == "voice":
        media = {"media_id": _text(values, "MediaId"), "format": _text(values, "Format")}
        heard = _text(values, "Recognition").strip()
        # Recognition of a voice with no words in it (noise, a cough) can be a bare 。 or ？: not
        # heard — it was read as words (？ as a request for help, 。 as not understood + the menu).
        return Inbound(**base, text=heard if re.search(r"\w", heard) else "", media=media)
    if kind == "image":
        return Inbound(**base, media={"media_id": _text(values, "MediaId"), "pic_url": _text(values, "PicUrl")})
    if kind in ("video", "shortvideo"):
        media = {"media_id": _text(values, "MediaId"), "thumb": _text(values, "ThumbMediaId")}
        return Inbound(**base, media=media)
    if kind == "location":
        label = _text(values, "Label")
        media = {**_point(values, "Location_X", "Location_Y"), "scale": _number(values, "Scale"), "label": label}
        return Inbound(**base, text=label, media=media)
    title = _text(values, "Title")  # link
    media = {"title": title, "description": _text(values, "Description"), "url": _text(values, "Url")}
    return Inbound(**base, text=title, media=media)


def _event(values: Mapping[str, str | None], base: dict[str, Any]) -> Inbound | None:
    event = _text(values, "Event", required=True).strip().lower()
    if event not in EVENTS:
        return None
    key = _text(values, "EventKey").strip()
    media: dict[str, Any] = {}
    if event == "subscribe" and key.startswith("qrscene_"):
        key = key.removeprefix("qrscene_")
        media = {"ticket": _text(values, "Ticket")}
    elif event == "scan":
        media = {"ticket": _text(values, "Ticket")}
    elif event == "location":
        key = ""
        media = {**_point(values, "Latitude", "Longitude"), "precision": _number(values, "Precision")}
    return Inbound(**base, event=event, event_key=key, media=media)


# --- de-duplication of WeChat's retries ----------------------------------------------------------


def delivery_parts(inbound: Inbound, values: Mapping[str, str | None]) -> tuple[str, ...]:
    """What identifies one delivery across WeChat's retries: FromUserName + MsgId for messages
    (MsgId alone has collided); events: + CreateTime + event."""
    create_time = _text(values, "CreateTime").strip()
    if inbound.msg_id:
        return (inbound.openid, inbound.msg_id)
    if not inbound.is_event:  # a message without MsgId: its time and type identify it
        return (inbound.openid, "t", create_time, inbound.msg_type)
    detail = hashlib.sha1(f"{inbound.event}\n{inbound.event_key}".encode()).hexdigest()[:16]
    return (inbound.openid, "ev", create_time, detail)


def dedup_key(svc: Services, inbound: Inbound, values: Mapping[str, str | None]) -> str:
    """The state store's key for a delivery (its first answer, while retries may come)."""
    return svc.store.key("dedup", *delivery_parts(inbound, values))


def alive_key(svc: Services, owner: str) -> str:
    """The store key a process's heartbeat keeps while it runs."""
    return svc.store.key("alive", owner)


async def _owner_gone(svc: Services, seen: dict[str, Any]) -> bool:
    """Whether the pending entry seen belongs to another process that stopped beating."""
    owner = seen.get("owner")
    if not owner or owner == OWNER:
        return False
    return await svc.store.get(alive_key(svc, str(owner))) is None


# Messages this process is handling now: a retry arriving here waits on the first delivery's
# future instead of polling the store (which it still does for a delivery in another process).
_IN_HAND: dict[str, asyncio.Future[None]] = {}


async def _settled_or_poll(key: str, left: float, seen: Mapping[str, Any]) -> None:
    """Until the first delivery of key settles in this process, or one poll interval when it is
    handled elsewhere; never longer than left seconds.

    seen is the pending entry just read. When it names this process but no delivery is in hand
    here, the first delivery settled between that read and now: look again at once (after a
    moment's yield, in case its answer could not be written) instead of a whole poll interval."""
    settled = _IN_HAND.get(key)
    if settled is None:
        mine = seen.get("owner") == OWNER
        await asyncio.sleep(min(_SETTLED_HERE_S if mine else _POLL_S, left))
        return
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(settled), timeout=left)


async def answer_once(
    svc: Services, key: str, produce: Callable[[], Awaitable[str | None]], *, wait: float | None = None,
    lock: str | None = None,
) -> str | None:
    """Run produce() once per key across processes; a retry waits for and returns the first answer.

    A retry that finds the first delivery still pending after `wait` seconds (RETRY_WAIT_S)
    answers None ("success"); one that finds the key released (the first delivery raised), or
    held by a process that has stopped beating (killed mid-message), handles the message itself.

    lock names the state-store lock produce() takes first (the resident's): where the store can,
    it is tried in the claim's round trip and released in the kept answer's (StateStore.claim),
    so produce() finds it held; a retry never takes it. When busy, produce() waits for it itself.
    """
    ttl = svc.settings.dedup_ttl_s
    store = svc.store.for_retries()
    lock = lock if store is svc.store else None  # the lock lives in svc.store
    # Wall-clock wait for another request, not business time: svc.clock does not apply.
    wait = RETRY_WAIT_S if wait is None else wait
    deadline = time.monotonic() + wait
    counted = False
    while True:
        claim = await store.claim(key, {"state": "pending", "owner": OWNER}, ttl, lock=lock)
        if claim is not None:
            settled = _IN_HAND[key] = asyncio.get_running_loop().create_future()
            try:
                try:
                    with store.holding(claim):
                        reply = await produce()
                except AlreadyHandled as done:
                    # The store forgot this delivery (Redis restarted, or a takeover after a lapse
                    # of this process's heartbeat) but the database has it: the first answer stands.
                    reply = done.reply
                except BaseException:
                    await store.release(claim)  # let WeChat's retry try again
                    raise
                try:
                    await store.settle(claim, {"state": "done", "reply": reply}, ttl)
                except Exception:  # the message was handled: only its entry for retries is not kept
                    # (the store freed the resident's lock as best it could); the answer still goes out
                    log.warning("a handled message's answer not kept for its retries", exc_info=True)
                return reply
            finally:
                _IN_HAND.pop(key, None)
                settled.set_result(None)  # a retry waiting in this process looks again now
        if not counted:
            metrics.DUPLICATES.inc()
            counted = True
        while True:
            seen = await store.get(key)
            if seen is None:
                break  # the first delivery failed and released the key: handle this one
            if seen.get("state") == "done":
                reply = seen.get("reply")
                return None if reply is None else str(reply)
            if await _owner_gone(svc, seen):
                # One waiting retry takes the message over; the others keep waiting for it.
                if await store.set_if_absent(f"{key}:takeover", {"by": OWNER}, ttl):
                    log.warning("message pending in a stopped process %s: handled here", seen.get("owner"))
                    await store.delete(key)
                    break
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("retry still pending after %.1f s: answered nothing", wait)
                return None
            await _settled_or_poll(key, left, seen)


async def heartbeat(svc: Services) -> None:
    """Keep this process's alive key while it runs (cancelled at shutdown, when the key is removed)."""
    try:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await svc.store.set(alive_key(svc, OWNER), {"pid": os.getpid()}, ttl=HEARTBEAT_TTL_S)
            except Exception:  # the store is down: retries then wait, as before; try again soon
                log.warning("heartbeat not written", exc_info=True)
    finally:
        try:
            await svc.store.delete(alive_key(svc, OWNER))
        except Exception:  # it expires on its own within HEARTBEAT_TTL_S
            log.debug("alive key not removed at shutdown", exc_info=True)


# --- the reply -----------------------------------------------------------------------------------


def cdata(value: str) -> str:
    """value as XML CDATA, safe for any text (a ']]>' inside is split across two sections)."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


# WeChat drops a passive text reply whose Content is longer than 2,048 bytes (UTF-8: about 680
# Chinese characters); the resident would then see "该公众号暂时无法提供服务".
REPLY_MAX_BYTES = 2048
_LINE_KEEP_BYTES = 120  # a line is not shortened below this; the reply's tail is cut instead
_ELLIPSIS = "……"


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut_middle(line: str, budget: int) -> str:
    """line shortened to at most budget UTF-8 bytes by leaving out its middle (marked ……): its
    start and its end, where a quote closes and the hint after it goes on, are kept."""
    room = budget - _size(_ELLIPSIS)
    head = line.encode("utf-8")[: room // 2].decode("utf-8", errors="ignore")
    tail_bytes = line.encode("utf-8")[len(head.encode("utf-8")):]
    tail = tail_bytes[len(tail_bytes) - (room - _size(head)):].decode("utf-8", errors="ignore")
    return head + _ELLIPSIS + tail


def fit_reply(text: str, limit: int = REPLY_MAX_BYTES) -> str:
    """text within limit UTF-8 bytes, the question at its end kept: what makes a reply too long is
    a resident's long message quoted back (“…”好像不是一个地点), so the longest line is shortened
    in its middle first; only when no line can give enough is the tail cut (with an ellipsis)."""
    if _size(text) <= limit:
        return text
    lines = text.split("\n")
    while (over := _size("\n".join(lines)) - limit) > 0:
        longest = max(range(len(lines)), key=lambda i: _size(lines[i]))
        budget = _size(lines[longest]) - over
        if budget < _LINE_KEEP_BYTES:
            break
        lines[longest] = _cut_middle(lines[longest], budget)
    return fit_bytes("\n".join(lines), limit)


def reply_xml(values: Mapping[str, str | None], text: str, now: datetime) -> str:
    """The passive text reply to the message whose fields are values (Content fitted to what
    WeChat delivers, by fit_reply)."""
    text = fit_reply(text, REPLY_MAX_BYTES)
    return (
        "<xml>"
        f"<ToUserName>{cdata(_text(values, 'FromUserName'))}</ToUserName>"
        f"<FromUserName>{cdata(_text(values, 'ToUserName'))}</FromUserName>"
        f"<CreateTime>{int(now.timestamp())}</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{cdata(text)}</Content>"
        "</xml>"
    )


def render(
    svc: Services, received: Received, reply: str | None, query: Mapping[str, str]
) -> web.Response:
    """The passive reply XML (encrypted when the request was), or 'success' for no reply."""
    if reply is None:
        return web.Response(text="success")
    xml = reply_xml(received.fields, reply, svc.clock.now())
    if received.encrypted:
        crypto = _crypto(svc)
        if crypto is None:  # decode_body refuses encrypted requests without a key
            raise RuntimeError("encrypted request answered without an AES key")
        xml = crypto.encrypt_message(xml, query.get("nonce", ""), query.get("timestamp", ""))
    return web.Response(text=xml, content_type="application/xml")


# --- routes --------------------------------------------------------------------------------------


async def url_check(request: web.Request) -> web.Response:
    """GET /wechat: echo echostr when the signature is right, 403 otherwise."""
    from bot.app import SERVICES

    svc = request.app[SERVICES]
    try:
        _verify_plain(svc, request.query)
    except Forbidden:
        metrics.REJECTED.labels("signature").inc()
        log.info("url check refused: bad signature")
        return web.Response(status=403, text="invalid signature")
    return web.Response(text=request.query.get("echostr", ""))


async def _read(svc: Services, request: web.Request) -> tuple[Received, Inbound | None]:
    body = await request.read()
    received = decode_body(svc, request.query, body)
    return received, to_inbound(received.fields)


def refusal(exc: Exception, channel: str) -> web.Response:
    """The answer to a request refused before handling — 413 too large, 403 bad signature,
    400 malformed — counted and logged (for /wechat and /wecom alike)."""
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        metrics.REJECTED.labels("too_large").inc()
        log.info("%s refused: body too large", channel)
        return web.Response(status=413, text="body too large")
    if isinstance(exc, Forbidden):
        metrics.REJECTED.labels("signature").inc()
        if isinstance(exc, StaleTimestamp):
            log.warning("%s refused: %s", channel, exc)
        else:
            log.info("%s refused: bad %s", channel, exc)
        return web.Response(status=403, text="invalid signature")
    metrics.REJECTED.labels("malformed").inc()
    log.info("%s refused: malformed body (%s)", channel, exc)
    return web.Response(status=400, text="malformed body")


async def receive(request: web.Request) -> web.Response:
    """POST /wechat: one message or event in, one passive reply out."""
    from bot import dialog
    from bot.app import SERVICES

    svc = request.app[SERVICES]
    started = time.perf_counter()
    try:
        received, inbound = await _read(svc, request)
    except (web.HTTPRequestEntityTooLarge, Forbidden, BadRequest) as exc:
        return refusal(exc, "wechat")

    if inbound is None:
        metrics.MESSAGES.labels("unknown", "-").inc()
        log.info("not handled: unknown event")
        return web.Response(text="success")

    bind_subject(inbound.openid)
    key = dedup_key(svc, inbound, received.fields)
    delivery = ":".join(delivery_parts(inbound, received.fields))
    try:
        reply = await answer_once(
            svc, key, lambda: dialog.handle(svc, inbound, delivery=delivery), wait=RETRY_WAIT_S,
            lock=dialog.resident_lock(inbound.openid),
        )
    except Exception:  # the entry point's boundary: log it, answer politely, never a 500
        log.exception(
            "message not handled",
            extra=fields(openid=hash_openid(inbound.openid), type=inbound.msg_type, event=inbound.event),
        )
        reply = svc.texts.get("errors.resend")
    elapsed = time.perf_counter() - started
    metrics.REPLY_LATENCY.observe(elapsed)
    log.info(
        "wechat %s%s", inbound.msg_type, f":{inbound.event}" if inbound.event else "",
        extra=fields(
            openid=hash_openid(inbound.openid), encrypted=received.encrypted,
            replied=reply is not None, ms=round(elapsed * 1000, 1),
        ),
    )
    return render(svc, received, reply, request.query)


async def _heartbeat_ctx(app: web.Application) -> AsyncIterator[None]:
    from bot.app import SERVICES

    svc = app[SERVICES]
    await svc.store.set(alive_key(svc, OWNER), {"pid": os.getpid()}, ttl=HEARTBEAT_TTL_S)
    task = asyncio.create_task(heartbeat(svc))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def setup(app: web.Application) -> None:
    """Add GET and POST /wechat, and this process's heartbeat (read by other processes' retries)."""
    app.router.add_get("/wechat", url_check)
    app.router.add_post("/wechat", receive)
    app.cleanup_ctx.append(_heartbeat_ctx)
