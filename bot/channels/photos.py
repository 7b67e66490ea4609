"""A resident's photo to a worker in WeCom, sent by the outbox sender (an outbox row
{"msgtype": "image", "photo": MediaId, "number": ticket number}, bot.outbox.push_photo).

- The photo is fetched from the official account's temporary media (`GET /cgi-bin/media/get`,
  what wechatpy's WeChatMedia.download calls: the file, or a JSON errcode), uploaded to WeCom
  (`POST /cgi-bin/media/upload?type=image`, multipart field `media`, as wechatpy.enterprise's
  WeChatMedia.upload does) and sent as an image message (`/cgi-bin/message/send`).
- The uploaded copy's WeCom media_id is kept in the state store (`wecom-media`) for two days
  (WeCom keeps it three): a retry after the upload, or the same photo to a new owner, is not
  fetched and uploaded again. WeCom refusing a kept id (40007) drops it and the row is retried.
- WeChat keeps a temporary medium three days (then 40007, invalid media_id), and WeCom refuses
  what is no JPG/PNG or over 10 MB: the worker then gets a text naming the ticket, saying the
  photo can be seen in the console, instead of retries that cannot succeed.
- Tokens, retries with backoff, the per-member limits and dedup are the outbox's
  (bot.channels.push): a row is sent once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from bot.channels.push import (
    Claimed,
    Fatal,
    Retry,
    api_base,
    app_message,
    app_sent,
    call_api,
    call_raw,
    describe,
    errcode,
    wecom_body,
    with_token,
)
from bot.logs import fields
from bot.services import Services

log = logging.getLogger(__name__)

INVALID_MEDIA = 40007  # WeChat: the temporary medium expired (3 days) or never was; WeCom: the same
UNUSABLE_ERRCODES = frozenset({40005, 40006, 40009})  # WeCom: file type, file size, image size
IMAGE_MAX_BYTES = 10 * 1024 * 1024  # WeCom's limit for an image
UPLOAD_KEPT_S = 2 * 86400  # an uploaded copy is reused this long (WeCom keeps it 3 days)
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/bmp": "bmp"}


@dataclass(frozen=True)
class Photo:
    """A photo's bytes and content type, as the official account answered them."""

    data: bytes
    content_type: str


class Unavailable(Exception):
    """The photo cannot be shown in WeCom: reason is 'expired' or 'unusable' (texts worker_photos.*)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


async def download(svc: Services, http: aiohttp.ClientSession, media_id: str) -> Photo:
    """The official account's temporary medium media_id; Unavailable once it expired."""
    url = f"{api_base(svc, 'wechat')}/cgi-bin/media/get"
    got: list[Photo] = []

    async def fetch(token: str) -> dict[str, Any]:
        answered = await call_raw(svc, http, "GET", url, params={"access_token": token, "media_id": media_id})
        try:  # an error is a JSON object (as wechatpy reads it); a photo never parses as one
            answer = json.loads(answered.body.decode("utf-8"))
        except ValueError:
            answer = None
        if isinstance(answer, dict):
            return answer
        got.append(Photo(answered.body, answered.content_type))
        return {"errcode": 0}

    answer = await with_token(svc, http, "wechat", fetch)
    if errcode(answer) == INVALID_MEDIA:
        raise Unavailable("expired", describe(answer))
    if errcode(answer) != 0 or not got:
        raise Fatal(f"media/get: {describe(answer)}")
    photo = got[-1]
    if not photo.data:
        raise Retry("media/get answered an empty file")
    if len(photo.data) > IMAGE_MAX_BYTES:
        raise Unavailable("unusable", f"{len(photo.data)} bytes")
    return photo


async def upload(svc: Services, http: aiohttp.ClientSession, photo: Photo, name: str) -> str:
    """Upload a photo to WeCom's temporary media; its WeCom media_id."""
    content_type = photo.content_type if photo.content_type.startswith("image/") else "image/jpeg"
    filename = f"{name}.{EXTENSIONS.get(content_type, 'jpg')}"
    url = f"{api_base(svc, 'wecom')}/cgi-bin/media/upload"

    def form() -> aiohttp.FormData:  # a form is consumed by its request: one per call
        data = aiohttp.FormData()
        data.add_field("media", photo.data, filename=filename, content_type=content_type)
        return data

    answer = await with_token(
        svc, http, "wecom",
        lambda token: call_api(svc, http, "POST", url, params={"access_token": token, "type": "image"}, form=form()),
    )
    if errcode(answer) in UNUSABLE_ERRCODES:
        raise Unavailable("unusable", describe(answer))
    uploaded = answer.get("media_id")
    if errcode(answer) != 0 or not isinstance(uploaded, str) or not uploaded:
        raise Fatal(f"media/upload: {describe(answer)}")
    return uploaded


def _kept_key(svc: Services, media_id: str) -> str:
    return svc.store.key("wecom-media", svc.settings.wecom_corpid, media_id)


async def wecom_media_id(svc: Services, http: aiohttp.ClientSession, media_id: str) -> str:
    """The WeCom media_id of the resident's photo media_id: kept from an earlier upload, or
    fetched from the official account and uploaded now."""
    key = _kept_key(svc, media_id)
    kept = await svc.store.get(key)
    now = svc.clock.now().timestamp()
    if isinstance(kept, dict) and isinstance(kept.get("media_id"), str) and float(kept.get("until", 0)) > now:
        return str(kept["media_id"])
    uploaded = await upload(svc, http, await download(svc, http, media_id), media_id)
    await svc.store.set(key, {"media_id": uploaded, "until": now + UPLOAD_KEPT_S}, ttl=UPLOAD_KEPT_S)
    return uploaded


async def send_photo(svc: Services, http: aiohttp.ClientSession, item: Claimed) -> str:
    """Send an outbox row's photo to its worker as a WeCom image message (or, when it can no
    longer be shown, a text saying so); 'app' once WeCom took it."""
    media_id = str(item.payload.get("photo") or "")
    number = str(item.payload.get("number") or "")
    if not media_id:
        raise Fatal("image push without a photo")
    try:
        uploaded = await wecom_media_id(svc, http, media_id)
    except Unavailable as gone:
        log.info("photo not shown in WeCom", extra=fields(outbox_id=item.id, to=item.target, reason=str(gone)))
        text = svc.texts.get(f"worker_photos.{gone.reason}", number=number)
        told = replace(item, payload={"msgtype": "text", "text": text})
        return app_sent(item, await app_message(svc, http, item.target, wecom_body(svc, told)))
    body = {
        "touser": item.target, "msgtype": "image", "agentid": svc.settings.wecom_agentid,
        "image": {"media_id": uploaded},
    }
    answer = await app_message(svc, http, item.target, body)
    if errcode(answer) == INVALID_MEDIA:  # the kept copy is gone from WeCom: upload it again
        await svc.store.delete(_kept_key(svc, media_id))
        raise Retry(f"message/send: {describe(answer)}")
    return app_sent(item, answer)
