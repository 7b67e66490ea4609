"""The resident chat page (/sim): a phone-like chat that speaks to the service's own /wechat exactly
as WeChat does (signed, encrypted in safe mode), shows the pushes the API stand-ins received, and
lets you answer as a grid worker through /wecom (encrypted as WeCom does).

Routes, all 404 while the simulator is off:
- GET  /sim                 the page (templates/chat.html, static/sim.js, static/sim.css)
- POST /sim/send            {"openid", "kind": text|voice|image|location|subscribe|unsubscribe|scan|
                             click|view|sticker|link|file, "text", "key", "lat", "lng", "label",
                             "image" (base64 JPG/PNG, a data: URL too), "mode": plain|safe} → the
                             passive reply; a photo is kept as the official account's temporary
                             medium (media/get serves it). A voice without text is one WeChat did
                             not recognise (no Recognition); a sticker arrives as WeChat's
                             placeholder text; a link's text is its title and key its url, a
                             file's text its name; a scan's key is the code's scene
- GET  /sim/media/{id}      a photo a resident sent (its PicUrl); /sim/wecom-media/{id} one uploaded
                             to WeCom (what a worker's image message shows)
- GET  /sim/feed?openid=&after=N   deliveries recorded since index N (resident pushes, WeCom app
                             messages per userid, an image one with its "image" URL, group robot
                             posts) and the next index
- POST /sim/wecom-send      {"userid", "text"} → /wecom's passive reply
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import jinja2
import xmltodict
from xml.parsers.expat import ExpatError
from aiohttp import web
from sqlalchemy import select
from wechatpy.enterprise.crypto import WeChatCrypto as WeComCrypto
from wechatpy.exceptions import InvalidSignatureException

from bot.channels.wechat import UNSUPPORTED_TEXT
from bot.menu import load_menu
from bot.services import Services
from bot.sim.api import RESIDENT_APIS, recorder_of
from bot.sim.wechat_client import WeChatSigner, event_xml, message_xml, text_xml
from storage.models import Person

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=jinja2.select_autoescape(["html"])
)
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TEXT = 2000
_TAG = re.compile(r"<[^>]*>")
_STATIC = re.compile(r"^[a-z0-9_-]+\.(js|css|svg|png)$")
KINDS = ("text", "voice", "image", "location", "subscribe", "unsubscribe", "scan", "click", "view", "sticker",
         "link", "file")
IMAGE_MAX_BYTES = 600_000  # a photo the page sends (it scales one down to fit); /sim/send's body ≤ 1 MiB
IMAGE_TYPES = {"image/jpeg": b"\xff\xd8\xff", "image/png": b"\x89PNG\r\n\x1a\n"}  # and how each file starts
_DATA_URL = re.compile(r"^data:(image/[a-z]+);base64,", re.IGNORECASE)


class FormError(ValueError):
    """A request to the simulator that cannot be acted on (answered 400 with the reason)."""


@dataclass(frozen=True)
class ResidentAction:
    """What the resident did on the page, validated."""

    openid: str
    kind: str
    text: str
    key: str
    lat: float
    lng: float
    label: str
    safe: bool
    image: bytes = b""
    image_type: str = ""


def _svc(request: web.Request) -> Services:
    from bot.app import SERVICES

    return request.app[SERVICES]


def _http(request: web.Request) -> aiohttp.ClientSession:
    from bot.app import HTTP

    return request.app[HTTP]


def _bad(reason: str, status: int = 400) -> web.Response:
    return web.json_response({"ok": False, "error": reason}, status=status, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


async def _read_json(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormError("body is not JSON") from exc
    if not isinstance(data, dict):
        raise FormError("body is not a JSON object")
    return data


def _float(value: Any, low: float, high: float, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise FormError(f"{name} is not a number") from exc
    if not low <= number <= high:
        raise FormError(f"{name} out of range")
    return number


def parse_action(data: dict[str, Any], aes_available: bool) -> ResidentAction:
    """Validate what the page posted to /sim/send."""
    openid = str(data.get("openid") or "")
    if not _ID.match(openid):
        raise FormError("openid must be 1–64 letters, digits, _ or -")
    kind = str(data.get("kind") or "text")
    if kind not in KINDS:
        raise FormError(f"kind must be one of {', '.join(KINDS)}")
    text = str(data.get("text") or "")
    if len(text) > MAX_TEXT:
        raise FormError(f"text longer than {MAX_TEXT} characters")
    if kind in ("text", "link", "file") and not text.strip():
        raise FormError("text is empty")
    key = str(data.get("key") or "")
    if kind in ("click", "view", "scan", "link") and not (0 < len(key) <= 256):
        raise FormError("menu key, scene or url is missing or too long")
    lat = _float(data.get("lat", 30.27), -90, 90, "lat") if kind == "location" else 0.0
    lng = _float(data.get("lng", 120.15), -180, 180, "lng") if kind == "location" else 0.0
    mode = str(data.get("mode") or "plain")
    if mode not in ("plain", "safe"):
        raise FormError("mode must be plain or safe")
    if mode == "safe" and not aes_available:
        raise FormError("safe mode needs wechat_aes_key")
    label = str(data.get("label") or "")[:200]
    image, image_type = _image(data.get("image")) if kind == "image" else (b"", "")
    return ResidentAction(openid, kind, text, key, lat, lng, label, mode == "safe", image, image_type)


def _image(value: Any) -> tuple[bytes, str]:
    """A photo posted as base64 (or a data: URL): its bytes and content type, JPG or PNG only."""
    raw = str(value or "").strip()
    if not raw:
        raise FormError("image is missing")
    if len(raw) > IMAGE_MAX_BYTES * 4 // 3 + 100:
        raise FormError(f"image larger than {IMAGE_MAX_BYTES // 1000} KB")
    raw = _DATA_URL.sub("", raw, count=1)
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FormError("image is not base64") from exc
    for content_type, magic in IMAGE_TYPES.items():
        if data.startswith(magic):
            return data, content_type
    raise FormError("image must be a JPG or PNG")


def action_xml(action: ResidentAction, *, media_id: str = "", pic_url: str = "") -> str:
    """The WeChat XML for what the resident did (a photo: with the MediaId WeChat kept it under)."""
    if action.kind == "text":
        return text_xml(action.openid, action.text)
    if action.kind == "image":
        if not media_id:
            raise ValueError("a photo's message needs its MediaId")
        return message_xml("image", action.openid, PicUrl=pic_url, MediaId=media_id)
    if action.kind == "voice":
        heard = {"Recognition": action.text} if action.text.strip() else {}  # none: recognition off
        return message_xml("voice", action.openid, MediaId=f"sim-{secrets.token_hex(8)}", Format="amr", **heard)
    if action.kind == "sticker":
        return text_xml(action.openid, UNSUPPORTED_TEXT)
    if action.kind == "link":
        return message_xml("link", action.openid, Title=action.text, Description="", Url=action.key)
    if action.kind == "file":
        return message_xml(
            "file", action.openid, Title=action.text, Description="", FileKey=f"sim-{secrets.token_hex(8)}",
            FileMd5=secrets.token_hex(16), FileTotalLen=1024,
        )
    if action.kind == "location":
        return message_xml(
            "location", action.openid, Location_X=action.lat, Location_Y=action.lng, Scale=16, Label=action.label
        )
    if action.kind in ("subscribe", "unsubscribe"):
        return event_xml(action.openid, action.kind)
    if action.kind == "scan":
        return event_xml(action.openid, "SCAN", action.key, Ticket=f"sim-{secrets.token_hex(8)}")
    return event_xml(action.openid, "CLICK" if action.kind == "click" else "VIEW", action.key)


async def send(request: web.Request) -> web.Response:
    """POST /sim/send: sign (and encrypt) as WeChat does, post to /wechat, decode the reply."""
    recorder = recorder_of(request)
    svc = _svc(request)
    s = svc.settings
    try:
        action = parse_action(await _read_json(request), bool(s.wechat_aes_key))
    except FormError as exc:
        return _bad(str(exc))
    media_id = pic_url = ""
    if action.kind == "image":  # WeChat keeps the photo as a temporary medium and posts its MediaId
        media_id = recorder.add_media(action.image, action.image_type, svc.clock.now())
        pic_url = f"{s.self_url}/sim/media/{media_id}"
    xml = action_xml(action, media_id=media_id, pic_url=pic_url)
    signer = WeChatSigner(s.wechat_token, s.wechat_appid, s.wechat_aes_key)
    signed = signer.wrap(xml, encrypt=action.safe)
    try:
        async with _http(request).post(f"{s.self_url}/wechat", params=signed.params, data=signed.body) as resp:
            status, body = resp.status, await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("simulator could not reach /wechat: %s", type(exc).__name__)
        return _bad(f"/wechat unreachable: {type(exc).__name__}", 502)
    if status != 200:
        return _bad(f"/wechat answered {status}: {body[:200]}", 502)
    reply = signer.unwrap(body, signed.params)
    return web.json_response(
        {"ok": True, "encrypted": action.safe, "reply": _reply_text(reply), "reply_type": (reply or {}).get("MsgType")},
        dumps=_dumps,
    )


def _reply_text(reply: dict[str, Any] | None) -> str | None:
    if reply is None:
        return None
    if reply.get("MsgType") == "text":
        return str(reply.get("Content") or "")
    if reply.get("MsgType") == "news":
        items = (reply.get("Articles") or {}).get("item") or []
        items = items if isinstance(items, list) else [items]
        return "\n".join(str(i.get("Title") or "") for i in items)
    return f"[{reply.get('MsgType')}]"


def delivery_text(record: dict[str, Any]) -> str:
    """What the recipient of a recorded delivery reads, as plain text."""
    p = record["payload"]
    if record["api"] == "custom_send":
        return str(p.get("text", {}).get("content", ""))
    if record["api"] == "template_send":
        data = p.get("data", {})
        return "\n".join(str(v.get("value", "")) for v in data.values() if isinstance(v, dict))
    kind = p.get("msgtype")
    part = p.get(kind) if isinstance(kind, str) else None
    if not isinstance(part, dict):
        return ""
    if kind == "textcard":  # the description's <div class=...> markup, as WeCom renders it
        lines = _TAG.sub("\n", str(part.get("description") or "")).split("\n")
        body = "\n".join(html.unescape(line).strip() for line in lines if line.strip())
        return f"{part.get('title') or ''}\n{body}"
    return str(part.get("content") or "")


async def feed(request: web.Request) -> web.Response:
    """GET /sim/feed: deliveries since index `after`, grouped for the page's panes."""
    recorder = recorder_of(request)
    openid = request.query.get("openid", "")
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        return _bad("after must be an integer")
    if after < 0:
        return _bad("after must not be negative")
    tz = ZoneInfo(_svc(request).settings.timezone)
    out: dict[str, Any] = {"next": recorder.next_index, "resident": [], "workers": [], "group": []}
    for record in recorder.since(after):
        local = datetime.fromisoformat(record["at"]).astimezone(tz).strftime("%H:%M")
        item = {"to": record["to"], "at": record["at"], "time": local, "text": delivery_text(record)}
        if record["api"] in RESIDENT_APIS and (not openid or record["to"] == openid):
            out["resident"].append({**item, "via": "custom" if record["api"] == "custom_send" else "template"})
        elif record["api"] == "wecom_send":
            image = record["payload"].get("image")
            if isinstance(image, dict) and isinstance(image.get("media_id"), str):
                item["image"] = f"/sim/wecom-media/{image['media_id']}"
            out["workers"].append({**item, "dropped": bool(record.get("dropped"))})
        elif record["api"] == "group_send":
            out["group"].append(item)
    return web.json_response(out, dumps=_dumps)


def wecom_message_xml(corpid: str, agentid: int, userid: str, text: str) -> str:
    """WeCom's callback XML for a text a member sent to the app."""
    def cdata(v: str) -> str:
        return "<![CDATA[" + v.replace("]]>", "]]]]><![CDATA[>") + "]]>"

    return (
        f"<xml><ToUserName>{cdata(corpid)}</ToUserName><FromUserName>{cdata(userid)}</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType>{cdata('text')}</MsgType>"
        f"<Content>{cdata(text)}</Content><MsgId>{secrets.randbits(62)}</MsgId><AgentID>{agentid}</AgentID></xml>"
    )


async def worker_reply(request: web.Request) -> web.Response:
    """POST /sim/wecom-send: a grid worker's reply, encrypted as WeCom does, posted to /wecom."""
    recorder_of(request)
    s = _svc(request).settings
    try:
        data = await _read_json(request)
    except FormError as exc:
        return _bad(str(exc))
    userid, text = str(data.get("userid") or ""), str(data.get("text") or "")
    if not _ID.match(userid):
        return _bad("userid must be 1–64 letters, digits, _ or -")
    if not text.strip() or len(text) > MAX_TEXT:
        return _bad(f"text must be 1–{MAX_TEXT} characters")
    crypto = WeComCrypto(s.wecom_token, s.wecom_aes_key, s.wecom_corpid)
    ts, nonce = str(int(time.time())), secrets.token_hex(6)
    envelope = xmltodict.parse(crypto.encrypt_message(wecom_message_xml(s.wecom_corpid, s.wecom_agentid, userid, text), nonce, ts))["xml"]
    body = (
        f"<xml><ToUserName><![CDATA[{s.wecom_corpid}]]></ToUserName><AgentID><![CDATA[{s.wecom_agentid}]]></AgentID>"
        f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt></xml>"
    )
    params = {"msg_signature": envelope["MsgSignature"], "timestamp": ts, "nonce": nonce}
    try:
        async with _http(request).post(f"{s.self_url}/wecom", params=params, data=body.encode()) as resp:
            status, answer = resp.status, await resp.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return _bad(f"/wecom unreachable: {type(exc).__name__}", 502)
    if status != 200:
        return _bad(f"/wecom answered {status}: {answer[:200]}", 502)
    reply = None
    if answer.strip() and answer.strip() != "success":
        try:
            sig = xmltodict.parse(answer)["xml"]["MsgSignature"]
            plain = crypto.decrypt_message(answer, sig, ts, nonce)
            reply = str(xmltodict.parse(plain)["xml"].get("Content") or "")
        except (ExpatError, KeyError, TypeError, ValueError, InvalidSignatureException) as exc:
            return _bad(f"/wecom reply does not decrypt: {type(exc).__name__}", 502)
    return web.json_response({"ok": True, "reply": reply}, dumps=_dumps)


def load_menu_buttons() -> list[dict[str, Any]]:
    """The account's custom menu (config/menu.toml) as the menu API's button list; [] when the
    file is invalid (logged: the page still works, without a menu)."""
    try:
        return list(load_menu().to_api()["button"])
    except (OSError, ValueError) as exc:
        log.warning("simulator shows no menu: %s", exc)
        return []


async def _people(svc: Services) -> list[dict[str, str]]:
    async with svc.sessions() as session:
        people = (await session.scalars(select(Person).where(Person.active.is_(True)).order_by(Person.id))).all()
    return [{"id": p.id, "name": p.name} for p in people]


async def page(request: web.Request) -> web.Response:
    """GET /sim: the chat page."""
    recorder_of(request)
    svc = _svc(request)
    texts = svc.texts.section("sim")
    data = {
        "residents": texts.get("residents", []),
        "menu": load_menu_buttons(),
        "people": await _people(svc),
        "safe": bool(svc.settings.wechat_aes_key),
        "t": {k: v for k, v in texts.items() if isinstance(v, str)},
    }
    html = _ENV.get_template("chat.html").render(t=data["t"], data=data)
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def medium(request: web.Request) -> web.Response:
    """GET /sim/media/{id} (a resident's photo) and /sim/wecom-media/{id} (an upload to WeCom)."""
    recorder = recorder_of(request)
    kept = recorder.wecom_media if request.path.startswith("/sim/wecom-media/") else recorder.media
    found = kept.get(request.match_info["media_id"])
    if found is None:
        raise web.HTTPNotFound()
    return web.Response(body=found.data, content_type=found.content_type)


async def static(request: web.Request) -> web.FileResponse:
    """GET /sim/static/{name}: the page's script and style."""
    recorder_of(request)
    name = request.match_info["name"]
    path = HERE / "static" / name
    if not _STATIC.match(name) or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path)


def setup(app: web.Application) -> None:
    """Add the page, its static files and its JSON endpoints (404 while the simulator is off)."""
    app.router.add_get("/sim", page)
    app.router.add_post("/sim/send", send)
    app.router.add_get("/sim/feed", feed)
    app.router.add_post("/sim/wecom-send", worker_reply)
    app.router.add_get("/sim/static/{name}", static)
    app.router.add_get("/sim/media/{media_id}", medium)
    app.router.add_get("/sim/wecom-media/{media_id}", medium)
