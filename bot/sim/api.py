"""Stand-ins for the official APIs, under /sim/wechat-api/cgi-bin/... and /sim/wecom-api/cgi-bin/...

They answer WeChat's and WeCom's JSON shapes and enforce what the real ones do — access tokens
(unknown → 40001, older than 7,200 s → 42001), the customer-service window (45015) and its
quota (45047) — 48 hours and 5 messages after a message, 1 minute and 3 after a follow, scan or
menu click (bot.cs_window) — the template id, the group robot's key, 20 posts a minute (45009) and
4,096 bytes — so the outbox sender's fallbacks run for real. Every delivery is recorded in
`app[SIM_RECORDER].records` as {"api", "to", "payload", "at"}; WeCom app messages over a member's
30/min or 1,000/h are dropped silently, as WeCom does, and recorded with "dropped": True.
Tests may queue faults (HTTP status, errcode, delay) with `SimRecorder.inject`.

Media: what a resident sends (the chat page's photo, or a test's `SimRecorder.add_media`) is kept
as the official account's temporary medium and served by `GET /cgi-bin/media/get` (the file with
its Content-Type; 40007 invalid media_id when unknown or older than 3 days, as WeChat answers);
`POST /cgi-bin/media/upload?type=image` (multipart field `media`, JPG/PNG, 5 B–10 MB) keeps a WeCom
temporary medium, valid 3 days, which an `image` app message must name (else 40007).
`SimRecorder.wecom_media` holds the uploads for tests and the page.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import BodyPartReader, hdrs, web
from sqlalchemy import select

from bot import cs_window
from bot.services import Services
from storage.models import Resident

TOKEN_TTL_S = 7200
GROUP_PER_MINUTE = 20
MEMBER_LIMITS = ((30, 60.0), (1000, 3600.0))
RESIDENT_APIS = ("custom_send", "template_send")
MAX_RECORDS = 20_000  # a long `make run` keeps the newest half when this is reached
MEDIA_TTL = timedelta(days=3)  # both platforms keep a temporary medium 3 days
MAX_MEDIA = 500  # media kept by a long `make run`; the oldest go first
IMAGE_TYPES = ("image/jpeg", "image/png")  # what WeCom takes as an image
IMAGE_MIN_BYTES, IMAGE_MAX_BYTES = 5, 10 * 1024 * 1024
UPLOAD_MAX_BYTES = 20 * 1024 * 1024  # WeCom's limit for any file
UPLOAD_TYPES = ("image", "voice", "video", "file")


@dataclass(frozen=True)
class Medium:
    """A temporary medium a stand-in keeps: its bytes, content type and when it was stored."""

    data: bytes
    content_type: str
    at: datetime

    def fresh(self, now: datetime) -> bool:
        """Whether the platform still serves it (3 days)."""
        return now - self.at < MEDIA_TTL


def _keep(store: dict[str, Medium], media_id: str, medium: Medium) -> None:
    store[media_id] = medium
    while len(store) > MAX_MEDIA:
        del store[next(iter(store))]


@dataclass(frozen=True)
class Fault:
    """A planned misbehaviour of one call: an HTTP status, an errcode answer, or a delay first."""

    status: int | None = None
    errcode: int | None = None
    delay: float = 0.0


@dataclass
class SimRecorder:
    """What the stand-ins received, the tokens they issued, and faults queued by tests."""

    records: list[dict[str, Any]] = field(default_factory=list)
    trimmed: int = 0  # records dropped from the front to bound memory; indexes stay absolute
    calls: Counter[str] = field(default_factory=Counter)
    _tokens: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # token → (family, issued)
    _revoked: dict[str, int] = field(default_factory=dict)  # token → errcode it now answers
    _faults: dict[str, deque[Fault]] = field(default_factory=dict)
    media: dict[str, Medium] = field(default_factory=dict)  # the official account's, by MediaId
    wecom_media: dict[str, Medium] = field(default_factory=dict)  # WeCom's uploads, by media_id

    def add_media(self, data: bytes, content_type: str, at: datetime, media_id: str | None = None) -> str:
        """Keep what a resident sent as the official account's temporary medium; its MediaId."""
        media_id = media_id or f"SIM_MEDIA_{secrets.token_urlsafe(18)}"
        _keep(self.media, media_id, Medium(data, content_type, at))
        return media_id

    def record(self, api: str, to: str, payload: dict[str, Any], at: datetime, **extra: Any) -> dict[str, Any]:
        """Append one delivery and return it."""
        entry = {"api": api, "to": to, "payload": payload, "at": at.isoformat(), **extra}
        self.records.append(entry)
        if len(self.records) > MAX_RECORDS:
            cut = len(self.records) - MAX_RECORDS // 2
            del self.records[:cut]
            self.trimmed += cut
        return entry

    @property
    def next_index(self) -> int:
        """The absolute index the next record will have."""
        return self.trimmed + len(self.records)

    def since(self, index: int) -> list[dict[str, Any]]:
        """Records from absolute index on (those still kept)."""
        return self.records[max(index - self.trimmed, 0):]

    def of(self, api: str, to: str | None = None) -> list[dict[str, Any]]:
        """Deliveries of one api (and recipient), oldest first, without the dropped ones."""
        return [
            r for r in self.records
            if r["api"] == api and (to is None or r["to"] == to) and not r.get("dropped")
        ]

    def inject(
        self, api: str, *, status: int | None = None, errcode: int | None = None, delay: float = 0.0,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of api fail (status / errcode) or stall (delay seconds)."""
        queue = self._faults.setdefault(api, deque())
        queue.extend([Fault(status, errcode, delay)] * times)

    def next_fault(self, api: str) -> Fault | None:
        """The fault planned for this call of api, if any."""
        queue = self._faults.get(api)
        return queue.popleft() if queue else None

    def issue_token(self, family: str, now: datetime) -> str:
        """A new access token of family ('wechat' or 'wecom')."""
        token = f"SIM_{family}_{secrets.token_urlsafe(24)}"
        self._tokens[token] = (family, now)
        return token

    def check_token(self, family: str, token: str, now: datetime) -> int:
        """0 when token is valid for family; 40001 when unknown, 42001 when expired."""
        if token in self._revoked:
            return self._revoked[token]
        issued = self._tokens.get(token)
        if issued is None or issued[0] != family:
            return 40001
        if now - issued[1] >= timedelta(seconds=TOKEN_TTL_S):
            return 42001
        return 0

    def revoke_tokens(self, errcode: int = 42001) -> None:
        """Make every token issued so far answer errcode (42001 expired, 40001 invalid)."""
        for token in self._tokens:
            self._revoked[token] = errcode


SIM_RECORDER = web.AppKey("sim_recorder", SimRecorder)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _svc(request: web.Request) -> Services:
    from bot.app import SERVICES

    return request.app[SERVICES]


def recorder_of(request: web.Request) -> SimRecorder:
    """The app's recorder; 404 while the simulator is off."""
    recorder = request.app.get(SIM_RECORDER)
    if recorder is None:
        raise web.HTTPNotFound(text="simulator is off")
    return recorder


def answer(errcode: int = 0, errmsg: str = "ok", **extra: Any) -> web.Response:
    """The platforms' JSON answer."""
    body = {"errcode": errcode, "errmsg": errmsg, **extra}
    return web.json_response(body, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def _json(request: web.Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _api(name: str, family: str | None) -> Callable[[Handler], Handler]:
    """Wrap a stand-in: simulator check, call count, queued faults, and token check for family."""

    def wrap(handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            recorder = recorder_of(request)
            recorder.calls[name] += 1
            fault = recorder.next_fault(name)
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    return web.Response(status=fault.status, text="simulated failure")
                if fault.errcode is not None:
                    return answer(fault.errcode, "simulated error")
            if family is not None:
                code = recorder.check_token(family, request.query.get("access_token", ""), _svc(request).clock.now())
                if code:
                    msg = "access_token expired" if code == 42001 else "invalid credential, access_token is invalid"
                    return answer(code, msg)
            return await handler(request)

        return run

    return wrap


# --- official account ----------------------------------------------------------------------------


@_api("token", None)
async def wechat_token(request: web.Request) -> web.Response:
    """GET /cgi-bin/token?grant_type=client_credential&appid=&secret=."""
    s = _svc(request).settings
    q = request.query
    if q.get("grant_type") != "client_credential":
        return answer(40002, "invalid grant_type")
    if q.get("appid") != s.wechat_appid:
        return answer(40013, "invalid appid")
    if q.get("secret") != s.wechat_secret:
        return answer(40001, "invalid credential, access_token is invalid or not latest")
    token = recorder_of(request).issue_token("wechat", _svc(request).clock.now())
    return web.json_response({"access_token": token, "expires_in": TOKEN_TTL_S})


async def _addressed(request: web.Request) -> tuple[dict[str, Any], str, web.Response | None]:
    """The JSON body of a send and its `touser`, or the official refusal of a malformed one."""
    body = await _json(request)
    if body is None:
        return {}, "", answer(47001, "data format error")
    touser = body.get("touser")
    if not isinstance(touser, str) or not touser:
        return body, "", answer(40003, "invalid openid")
    return body, touser, None


async def _follower(svc: Services, openid: str) -> Resident | web.Response:
    """The resident a message is sent to, or WeChat's refusal: 40003 unknown, 43004 not following."""
    async with svc.sessions() as session:
        resident = await session.scalar(select(Resident).where(Resident.openid == openid))
    if resident is None:
        return answer(40003, "invalid openid")
    if not resident.subscribed:
        return answer(43004, "require subscribe")
    return resident


@_api("custom_send", "wechat")
async def custom_send(request: web.Request) -> web.Response:
    """POST /cgi-bin/message/custom/send: a text inside the 48-hour window, at most 5 per window."""
    svc, recorder = _svc(request), recorder_of(request)
    body, touser, refusal = await _addressed(request)
    if refusal is not None:
        return refusal
    if body.get("msgtype") != "text":
        return answer(40008, "invalid message type")
    content = (body.get("text") or {}).get("content") if isinstance(body.get("text"), dict) else None
    if not isinstance(content, str) or not content:
        return answer(44004, "empty content")
    resident = await _follower(svc, touser)
    if isinstance(resident, web.Response):
        return resident
    now = svc.clock.now()
    window = cs_window.Window(resident.last_message_at, resident.last_inbound_at, resident.window_opened_by)
    allowances = window.allowances(now)
    if not allowances:
        return answer(45015, "response out of time limit or subscription is canceled")
    sent = [datetime.fromisoformat(r["at"]) for r in recorder.of("custom_send", touser)]
    if all(sum(1 for at in sent if at >= a.since) >= a.quota for a in allowances):
        return answer(45047, "out of response count limit")
    recorder.record("custom_send", touser, body, now)
    return answer()


@_api("template_send", "wechat")
async def template_send(request: web.Request) -> web.Response:
    """POST /cgi-bin/message/template/send: the configured template to a follower."""
    svc, recorder = _svc(request), recorder_of(request)
    body, touser, refusal = await _addressed(request)
    if refusal is not None:
        return refusal
    if body.get("template_id") != svc.settings.wechat_template_id:
        return answer(40037, "invalid template_id")
    data = body.get("data")
    if not isinstance(data, dict) or not data or not all(
        isinstance(v, dict) and isinstance(v.get("value"), str) for v in data.values()
    ):
        return answer(47001, "data format error")
    refused = await _follower(svc, touser)
    if isinstance(refused, web.Response):
        return refused
    recorder.record("template_send", touser, body, svc.clock.now())
    return answer(msgid=secrets.randbits(52))


@_api("menu_create", "wechat")
async def menu_create(request: web.Request) -> web.Response:
    """POST /cgi-bin/menu/create: 1–3 buttons, each a leaf or up to 5 sub-buttons."""
    svc, recorder = _svc(request), recorder_of(request)
    body = await _json(request)
    if body is None:
        return answer(47001, "data format error")
    buttons = body.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return answer(40016, "invalid button size")
    for button in buttons:
        if not isinstance(button, dict) or not button.get("name"):
            return answer(40018, "invalid button name size")
        subs = button.get("sub_button")
        if subs is not None and (not isinstance(subs, list) or len(subs) > 5):
            return answer(40023, "invalid sub button size")
        if not subs and not button.get("type"):
            return answer(40017, "invalid button type")
    recorder.record("menu_create", "menu", body, svc.clock.now())
    return answer()


@_api("media_get", "wechat")
async def media_get(request: web.Request) -> web.Response:
    """GET /cgi-bin/media/get?media_id=: a temporary medium's file, or 40007 once expired."""
    svc, recorder = _svc(request), recorder_of(request)
    media_id = request.query.get("media_id", "")
    medium = recorder.media.get(media_id)
    if medium is None or not medium.fresh(svc.clock.now()):
        return answer(40007, "invalid media_id")
    ext = "png" if medium.content_type == "image/png" else "jpg"
    return web.Response(
        body=medium.data, content_type=medium.content_type,
        headers={"Content-disposition": f'attachment; filename="{media_id}.{ext}"'},
    )


# --- WeCom ------------------------------------------------------------------------------------------


@_api("gettoken", None)
async def wecom_token(request: web.Request) -> web.Response:
    """GET /cgi-bin/gettoken?corpid=&corpsecret=."""
    s = _svc(request).settings
    if request.query.get("corpid") != s.wecom_corpid:
        return answer(40013, "invalid corpid")
    if request.query.get("corpsecret") != s.wecom_secret:
        return answer(40001, "invalid secret")
    token = recorder_of(request).issue_token("wecom", _svc(request).clock.now())
    return answer(access_token=token, expires_in=TOKEN_TTL_S)


def _over_member_limit(recorder: SimRecorder, userid: str, now: datetime) -> bool:
    stamps = [datetime.fromisoformat(r["at"]) for r in recorder.of("wecom_send", userid)]
    return any(sum(1 for t in stamps if now - t < timedelta(seconds=span)) >= count for count, span in MEMBER_LIMITS)


@_api("wecom_send", "wecom")
async def wecom_send(request: web.Request) -> web.Response:
    """POST /cgi-bin/message/send: text, textcard or markdown to members of the app."""
    svc, recorder = _svc(request), recorder_of(request)
    body = await _json(request)
    if body is None:
        return answer(47001, "data format error")
    try:
        agentid = int(body.get("agentid", 0))
    except (TypeError, ValueError):
        agentid = 0
    if agentid != svc.settings.wecom_agentid:
        return answer(40056, "invalid agentid")
    touser = body.get("touser")
    if not isinstance(touser, str) or not touser.strip("|"):
        return answer(40031, "invalid user list")
    msgtype = body.get("msgtype")
    part = body.get(msgtype) if isinstance(msgtype, str) else None
    required = {
        "text": ("content",), "markdown": ("content",), "textcard": ("title", "description", "url"),
        "image": ("media_id",),
    }
    if msgtype not in required or not isinstance(part, dict):
        return answer(40008, "invalid message type")
    if not all(isinstance(part.get(k), str) and part.get(k) for k in required[msgtype]):
        return answer(41016, "missing title or content")
    now = svc.clock.now()
    if msgtype == "image":
        medium = recorder.wecom_media.get(part["media_id"])
        if medium is None or not medium.fresh(now):
            return answer(40007, "invalid media_id")
    for userid in [u for u in touser.split("|") if u]:
        # Over a member's limit WeCom answers ok and drops the message; so does the stand-in.
        recorder.record("wecom_send", userid, body, now, dropped=_over_member_limit(recorder, userid, now))
    return answer(invaliduser="", msgid=secrets.token_hex(8))


@_api("media_upload", "wecom")
async def media_upload(request: web.Request) -> web.Response:
    """POST /cgi-bin/media/upload?type=: a temporary medium from the multipart field `media`."""
    svc, recorder = _svc(request), recorder_of(request)
    kind = request.query.get("type", "")
    if kind not in UPLOAD_TYPES:
        return answer(40004, "invalid media type")
    chunks: list[bytes] = []
    content_type = ""
    try:
        async for part in await request.multipart():
            if isinstance(part, BodyPartReader) and part.name == "media" and part.filename:
                content_type = part.headers.get(hdrs.CONTENT_TYPE, "").split(";")[0].strip().lower()
                while chunk := await part.read_chunk():
                    chunks.append(chunk)
                    if sum(map(len, chunks)) > UPLOAD_MAX_BYTES:
                        return answer(40006, "invalid file size")
                break
    except (ValueError, AssertionError, KeyError):  # not multipart, or a cut body
        return answer(44001, "empty media data")
    data = b"".join(chunks)
    if not data:
        return answer(44001, "empty media data")
    if kind == "image":
        if content_type not in IMAGE_TYPES:
            return answer(40005, "invalid file type")
        if not IMAGE_MIN_BYTES <= len(data) <= IMAGE_MAX_BYTES:
            return answer(40006, "invalid file size")
    now = svc.clock.now()
    media_id = f"SIM_WECOM_{secrets.token_urlsafe(18)}"
    _keep(recorder.wecom_media, media_id, Medium(data, content_type or "application/octet-stream", now))
    return answer(type=kind, media_id=media_id, created_at=str(int(now.timestamp())))


@_api("group_send", None)
async def group_send(request: web.Request) -> web.Response:
    """POST /cgi-bin/webhook/send?key=: the staff group robot, 20 posts a minute."""
    svc, recorder = _svc(request), recorder_of(request)
    if request.query.get("key") != svc.settings.wecom_group_webhook_key:
        return answer(93000, "invalid webhook url")
    body = await _json(request)
    if body is None:
        return answer(40058, "invalid json")
    msgtype = body.get("msgtype")
    part = body.get(msgtype) if msgtype in ("text", "markdown") else None
    content = part.get("content") if isinstance(part, dict) else None
    if not isinstance(content, str) or not content:
        return answer(40008, "invalid message type")
    limit = 4096 if msgtype == "markdown" else 2048
    if len(content.encode("utf-8")) > limit:
        return answer(40058, f"content exceed max length {limit}")
    now = svc.clock.now()
    recent = [r for r in recorder.of("group_send") if now - datetime.fromisoformat(r["at"]) < timedelta(minutes=1)]
    if len(recent) >= GROUP_PER_MINUTE:
        return answer(45009, "api freq out of limit")
    recorder.record("group_send", "staff", body, now)
    return answer()


def add_routes(app: web.Application) -> None:
    """The stand-in routes (they answer 404 unless the app holds a SIM_RECORDER)."""
    wx, wc = "/sim/wechat-api/cgi-bin", "/sim/wecom-api/cgi-bin"
    app.router.add_get(f"{wx}/token", wechat_token)
    app.router.add_post(f"{wx}/message/custom/send", custom_send)
    app.router.add_post(f"{wx}/message/template/send", template_send)
    app.router.add_post(f"{wx}/menu/create", menu_create)
    app.router.add_get(f"{wx}/media/get", media_get)
    app.router.add_get(f"{wc}/gettoken", wecom_token)
    app.router.add_post(f"{wc}/message/send", wecom_send)
    app.router.add_post(f"{wc}/media/upload", media_upload)
    app.router.add_post(f"{wc}/webhook/send", group_send)


def make_app(svc: Services) -> web.Application:
    """A stand-alone application of just the stand-ins over svc (tests serve it on a TestServer)."""
    from bot.app import SERVICES

    app = web.Application()
    app[SERVICES] = svc
    app[SIM_RECORDER] = SimRecorder()
    add_routes(app)
    return app


async def _recorder_ctx(app: web.Application) -> AsyncIterator[None]:
    from bot.app import SERVICES

    if app[SERVICES].settings.simulator_on:
        app[SIM_RECORDER] = SimRecorder()
    yield


def setup(app: web.Application) -> None:
    """Serve the stand-ins while settings.simulator_on (checked once services are open)."""
    app.cleanup_ctx.append(_recorder_ctx)
    add_routes(app)
