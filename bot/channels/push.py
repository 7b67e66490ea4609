"""The outbox sender: claims due pushes and delivers them to residents (WeChat customer-service or
template message), grid workers (WeCom app; a resident's photo through bot/channels/photos.py)
and the staff group (WeCom group robot).

- Claiming is one statement, `UPDATE outbox ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
  RETURNING`: processes sharing PostgreSQL never take the same row; on SQLite the statement is
  its own transaction. A claim is a lease (`claimed_until`); a row whose sender died is taken
  again when the lease runs out.
- Access tokens live in the state store (Redis or the database), fetched by one process at a
  time under a store lock, refreshed when the API calls them invalid or expired.
- Rate limits (WeCom: 30/min and 1,000/h per member; group robot: 20/min) are sliding windows in
  the state store; the excess waits (`next_attempt_at`), nothing is dropped. Group posts that
  would not fit the window are merged into fewer markdown posts (≤ 4,096 bytes).
- Transient failures (5xx, timeouts, connection errors, errcode -1) retry with exponential
  backoff and jitter up to `outbox_max_attempts`, then the row is `dead` with `last_error`;
  other errcodes make it dead at once. A row is marked sent as soon as the answer is read.
- A push to a worker is never sent to someone no longer active in the roster (it is dead at once:
  LEFT_ROSTER). A push to a worker that is dead is told to the staff group once (with why: for
  60020, the server's IP missing from the WeCom app's 企业可信IP), since nobody else would know.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import and_, bindparam, func, or_, select, update

from bot import cs_window, metrics, notices, outbox, tickets
from bot.logs import fields
from bot.privacy import hash_openid, mask_phone
from bot.services import Services
from storage import fastsql
from storage.fastsql import Prepared
from storage.models import OutboxItem, Person, Resident, Ticket
from storage.state import LockTimeout

log = logging.getLogger(__name__)

POLL_S = 0.5
DRAIN_LIMIT = 100
CONCURRENCY = 8
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential, invalid token, expired
BUSY_ERRCODE = -1
WINDOW_ERRCODES = frozenset({45015, 45047})  # outside the window, over the window's quota (bot.cs_window)
ROBOT_FREQ_ERRCODE = 45009
BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 3600.0
WECOM_MEMBER_LIMITS: tuple[tuple[int, float], ...] = ((30, 60.0), (1000, 3600.0))
GROUP_LIMITS: tuple[tuple[int, float], ...] = ((20, 60.0),)
MARKDOWN_MAX_BYTES = 4096
WAKE_KEY = "outbox_wake"
DEPTH_AT_KEY = "outbox_depth_at"  # svc.extras: when the depth gauge was last counted (monotonic)
DEPTH_EVERY_S = 1.0
ANSWER_WAIT = 2  # once connected, an API's answer is awaited this many times outbox_timeout_s
# last_error of a push one of whose attempts timed out after sending (kept once it is sent: it may
# have arrived twice; the log's `maybe_delivered`, cb_outbox_maybe_delivered_total)
MAYBE_SENT = "maybe delivered twice: an attempt timed out after sending"
LEFT_ROSTER = "recipient is no longer active in the roster"  # last_error of a push not sent for that
# What an operator reads in the log of a push refused for the server's address.
IP_HINTS = {
    60020: "add this server's outbound IP to the WeCom app's trusted IPs (企业可信IP)",
    40164: "add this server's outbound IP to the IP whitelist (WeCom app: 企业可信IP; official account: IP白名单)",
}


@dataclass(frozen=True)
class Claimed:
    """One claimed outbox row, as the sender needs it."""

    id: int
    channel: str
    target: str
    payload: dict[str, Any]
    attempts: int
    lease: datetime
    maybe_sent: bool = False  # an earlier attempt timed out after sending: it may have arrived


class Retry(Exception):
    """A transient failure: try the push again later. maybe_sent: the request went out and no
    answer came (a timeout once connected), so the API may have delivered it: WeCom's and WeChat's
    send APIs take no idempotency key, and the retry may deliver it a second time."""

    def __init__(self, message: str, *, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class Fatal(Exception):
    """A permanent failure: the push is dead."""


class RateLimited(Exception):
    """The target's rate limit is used up until `until`; the push waits without using an attempt."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"rate limited until {until.isoformat()}")
        self.until = until


# --- HTTP and tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answered:
    """An API's raw answer: its content type (without parameters) and body."""

    content_type: str
    body: bytes


async def call_raw(
    svc: Services,
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    params: dict[str, str],
    data: bytes | aiohttp.FormData | None = None,
    headers: dict[str, str] | None = None,
) -> Answered:
    """One HTTP call's 200 answer, or Retry (5xx, 429, timeout, network) / Fatal (other HTTP).

    Connecting may take outbox_timeout_s (nothing is sent before: a retry is safe); once connected
    the answer is awaited ANSWER_WAIT times as long, since a call that times out then may have been
    delivered and its retry may deliver it again (Retry.maybe_sent)."""
    wait = svc.settings.outbox_timeout_s
    timeout = aiohttp.ClientTimeout(total=wait * ANSWER_WAIT, connect=wait)
    try:
        async with http.request(
            method, url, params=params, data=data, headers=headers or {}, timeout=timeout
        ) as resp:
            body = await resp.read()
            status, content_type = resp.status, resp.content_type
    except aiohttp.ConnectionTimeoutError as exc:  # never connected: nothing was sent
        raise Retry(f"{type(exc).__name__}: {exc}".strip()) from exc
    except TimeoutError as exc:  # connected, no answer: it may have arrived
        raise Retry(f"{type(exc).__name__}: {exc}".strip(), maybe_sent=True) from exc
    except aiohttp.ClientError as exc:
        raise Retry(f"{type(exc).__name__}: {exc}".strip()) from exc
    if status >= 500 or status == 429:
        raise Retry(f"HTTP {status}")
    if status != 200:
        raise Fatal(f"HTTP {status}")
    return Answered(content_type, body)


def json_answer(answered: Answered) -> dict[str, Any]:
    """The JSON object an API answered, or Retry (not JSON: a proxy's page, a cut answer)."""
    try:
        answer = json.loads(answered.body.decode("utf-8"))
    except ValueError as exc:
        raise Retry("answer is not JSON") from exc
    if not isinstance(answer, dict):
        raise Retry("answer is not a JSON object")
    return answer


async def call_api(
    svc: Services,
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    params: dict[str, str],
    body: dict[str, Any] | None = None,
    form: aiohttp.FormData | None = None,
) -> dict[str, Any]:
    """One API call with a JSON body (or a multipart form); the JSON answer, or Retry (5xx, 429,
    timeout, network) / Fatal (other HTTP)."""
    if form is not None:
        return json_answer(await call_raw(svc, http, method, url, params=params, data=form))
    data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8"} if data is not None else {}
    return json_answer(await call_raw(svc, http, method, url, params=params, data=data, headers=headers))


def errcode(answer: dict[str, Any]) -> int:
    """The answer's errcode (0 when absent)."""
    try:
        return int(answer.get("errcode", 0) or 0)
    except (TypeError, ValueError):
        return -1


def describe(answer: dict[str, Any]) -> str:
    """'errcode N: errmsg' for last_error and logs."""
    return f"errcode {errcode(answer)}: {answer.get('errmsg', '')}"


def error_code(last_error: str | None) -> int | None:
    """The errcode in an outbox row's last_error ('errcode 43004: ...', as describe writes it), if any."""
    match = re.search(r"errcode (-?\d+)", last_error or "")
    return int(match.group(1)) if match else None


def shown_text(payload: dict[str, Any]) -> str:
    """What a push said, in one text, for staff reading a failed one: its text, a card's title
    and description, a markdown's content, a template's title and fields; [照片] for a photo."""
    if payload.get("msgtype") == "image":
        return "[照片]"
    parts = [payload.get("text"), payload.get("title"), payload.get("description"), payload.get("content")]
    tpl = payload.get("template")
    if isinstance(tpl, dict):
        parts.append(tpl.get("title"))
        parts += [f"{k}：{v}" for k, v in (tpl.get("fields") or {}).items()]
    return "\n".join(str(p) for p in parts if p)


def _token_request(svc: Services, api: str) -> tuple[str, dict[str, str], str]:
    """(url, params, identity) of the token endpoint of api ('wechat' or 'wecom')."""
    s = svc.settings
    if api == "wechat":
        params = {"grant_type": "client_credential", "appid": s.wechat_appid, "secret": s.wechat_secret}
        return f"{s.wechat_api}/cgi-bin/token", params, s.wechat_appid
    if api == "wecom":
        params = {"corpid": s.wecom_corpid, "corpsecret": s.wecom_secret}
        return f"{s.wecom_api}/cgi-bin/gettoken", params, f"{s.wecom_corpid}:{s.wecom_agentid}"
    raise ValueError(f"unknown api {api!r}")


async def access_token(
    svc: Services, http: aiohttp.ClientSession, api: str, *, stale: str | None = None
) -> str:
    """The shared access token of api, fetched once for every process; `stale` forces a new one."""
    url, params, ident = _token_request(svc, api)
    key = svc.store.key("token", api, ident)
    cached = await _cached_token(svc, key)
    if cached is not None and cached != stale:
        return cached
    try:
        async with svc.store.lock(f"token:{api}", timeout=30.0, wait=15.0):
            cached = await _cached_token(svc, key)  # another process may have fetched it meanwhile
            if cached is not None and cached != stale:
                return cached
            answer = await call_api(svc, http, "GET", url, params=params)
            token = answer.get("access_token")
            if errcode(answer) != 0 or not isinstance(token, str) or not token:
                raise Retry(f"{api} token: {describe(answer)}")
            expires_in = int(answer.get("expires_in", 7200) or 7200)
            ttl = max(60, expires_in - 300)
            expires_at = svc.clock.now().timestamp() + ttl
            await svc.store.set(key, {"token": token, "expires_at": expires_at}, ttl=ttl)
            log.info("access token fetched", extra=fields(api=api, expires_in=expires_in))
            return token
    except LockTimeout as exc:
        raise Retry(f"{api} token lock busy") from exc


async def _cached_token(svc: Services, key: str) -> str | None:
    """The cached token while it is fresh by the service's clock (the store's TTL only cleans up)."""
    cached = await svc.store.get(key)
    if not isinstance(cached, dict) or not isinstance(cached.get("token"), str):
        return None
    if float(cached.get("expires_at", 0)) <= svc.clock.now().timestamp():
        return None
    return str(cached["token"])


def api_base(svc: Services, api: str) -> str:
    """Base URL of api ('wechat' or 'wecom')."""
    return svc.settings.wechat_api if api == "wechat" else svc.settings.wecom_api


async def with_token(
    svc: Services, http: aiohttp.ClientSession, api: str, call: Callable[[str], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """call(token) with the shared token of api; refreshes it once when refused; Retry on -1."""
    token = await access_token(svc, http, api)
    answer = await call(token)
    if errcode(answer) in TOKEN_ERRCODES:
        log.info("access token refused, refreshing", extra=fields(api=api, errcode=errcode(answer)))
        token = await access_token(svc, http, api, stale=token)
        answer = await call(token)
        if errcode(answer) in TOKEN_ERRCODES:
            raise Retry(f"token refused twice: {describe(answer)}")
    if errcode(answer) == BUSY_ERRCODE:
        raise Retry(describe(answer))
    return answer


async def post_with_token(
    svc: Services, http: aiohttp.ClientSession, api: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST JSON to an API path with the shared token; refreshes it once when refused; Retry on -1."""
    url = f"{api_base(svc, api)}{path}"
    return await with_token(
        svc, http, api, lambda token: call_api(svc, http, "POST", url, params={"access_token": token}, body=body)
    )


# --- rate limits ------------------------------------------------------------------------------------


async def take_slots(
    svc: Services, name: str, limits: tuple[tuple[int, float], ...], decide: Callable[[int], int]
) -> tuple[int, datetime | None]:
    """Reserve sends in the sliding windows `limits` ((count, seconds), ...) of name, shared by all
    processes: decide(free) says how many to take; returns (taken, when a slot frees if none left)."""
    key = svc.store.key("rate", name)
    now = svc.clock.now().timestamp()
    longest = max(span for _, span in limits)
    async with svc.store.lock(f"rate:{name}", timeout=10.0, wait=10.0):
        stored = await svc.store.get(key)
        stamps = sorted(float(t) for t in (stored or []) if float(t) > now - longest)
        free = min(count - sum(1 for t in stamps if t > now - span) for count, span in limits)
        taken = max(0, min(free, decide(max(free, 0))))
        if taken:
            stamps.extend([now] * taken)
            await svc.store.set(key, stamps, ttl=longest)
    if free - taken > 0:
        return taken, None
    waits = []
    for count, span in limits:
        inside = [t for t in stamps if t > now - span]
        if len(inside) >= count:
            waits.append(inside[len(inside) - count] + span)
    until = max(waits) if waits else now + 1.0
    return taken, datetime.fromtimestamp(until, tz=timezone.utc)


# --- channels -------------------------------------------------------------------------------------


def template_data(svc: Services, payload: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Template message data: from payload['template'] (title, fields, remark) or from the text.

    Delivered as written, phone numbers included: a push to a resident is addressed to them (a
    service-centre number in a staff answer, their worker's phone). Masking is for what workers
    and the staff group read about residents, and for logs."""
    texts = svc.texts
    tpl = payload.get("template")
    if isinstance(tpl, dict):
        data = {"first": {"value": str(tpl.get("title") or texts.get("push.template_first"))}}
        n = 0
        for name, value in (tpl.get("fields") or {}).items():
            if name.isascii() and name.isidentifier():
                data[name] = {"value": str(value)}
            else:
                n += 1
                data[f"keyword{n}"] = {"value": f"{name}：{value}"}
        data.setdefault("remark", {"value": str(tpl.get("remark") or texts.get("push.template_remark"))})
        return data
    when = svc.clock.now().astimezone(ZoneInfo(svc.settings.timezone)).strftime("%Y-%m-%d %H:%M")
    return {
        "first": {"value": texts.get("push.template_first")},
        "keyword1": {"value": str(payload.get("text", ""))},
        "keyword2": {"value": when},
        "remark": {"value": texts.get("push.template_remark")},
    }


def _resident_text(payload: dict[str, Any]) -> str:
    """The text of a push to a resident, as written (see template_data)."""
    text = str(payload.get("text") or "")
    tpl = payload.get("template")
    if not text and isinstance(tpl, dict):
        lines = [str(tpl.get("title") or "")]
        lines += [f"{k}：{v}" for k, v in (tpl.get("fields") or {}).items()]
        text = "\n".join(line for line in lines if line)
    if not text:
        raise Fatal("empty push: no text and no template")
    return text


async def send_wechat(
    svc: Services, http: aiohttp.ClientSession, item: Claimed, window: cs_window.Window | None
) -> str:
    """Push to a resident: a customer-service message while a window is open (48 hours after a
    message, 1 minute after a follow, scan or menu click: bot.cs_window), else (or when WeChat
    refuses it with 45015/45047) a template message; returns 'custom' or 'template'."""
    text = _resident_text(item.payload)
    now = svc.clock.now()
    if cs_window.channel(window, now) == "custom":
        body = {"touser": item.target, "msgtype": "text", "text": {"content": text}}
        answer = await post_with_token(svc, http, "wechat", "/cgi-bin/message/custom/send", body)
        code = errcode(answer)
        if code == 0:
            return "custom"
        if code not in WINDOW_ERRCODES:
            raise Fatal(describe(answer))
        log.info(
            "custom message refused, sending a template",
            extra=fields(openid=hash_openid(item.target), errcode=code, outbox_id=item.id),
        )
    body = {
        "touser": item.target,
        "template_id": svc.settings.wechat_template_id,
        "data": template_data(svc, item.payload),
    }
    answer = await post_with_token(svc, http, "wechat", "/cgi-bin/message/template/send", body)
    if errcode(answer) != 0:
        raise Fatal(describe(answer))
    return "template"


def wecom_body(svc: Services, item: Claimed) -> dict[str, Any]:
    """The WeCom app message body for an outbox row (text, textcard or markdown)."""
    p = item.payload
    msgtype = str(p.get("msgtype") or "text")
    body: dict[str, Any] = {"touser": item.target, "msgtype": msgtype, "agentid": svc.settings.wecom_agentid}
    if msgtype == "text":
        body["text"] = {"content": mask_phone(str(p.get("text") or ""))}
        if not body["text"]["content"]:
            raise Fatal("empty WeCom text")
    elif msgtype == "textcard":
        body["textcard"] = {
            "title": mask_phone(str(p.get("title") or "")),
            "description": mask_phone(str(p.get("description") or "")),
            "url": str(p.get("url") or f"{svc.settings.self_url}/console"),
            "btntxt": str(p.get("btntxt") or "详情"),
        }
    elif msgtype == "markdown":
        body["markdown"] = {"content": mask_phone(str(p.get("content") or p.get("text") or ""))}
    else:
        raise Fatal(f"unknown WeCom msgtype {msgtype!r}")
    return body


async def send_wecom(svc: Services, http: aiohttp.ClientSession, item: Claimed) -> str:
    """Push to a grid worker or staff member in the WeCom app, within the per-member limits (a
    resident's photo: bot.channels.photos)."""
    if item.payload.get("msgtype") == "image":
        from bot.channels import photos  # it builds on this module's calls

        return await photos.send_photo(svc, http, item)
    return app_sent(item, await app_message(svc, http, item.target, wecom_body(svc, item)))


async def app_message(svc: Services, http: aiohttp.ClientSession, userid: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST one WeCom app message to userid within the per-member limits; WeCom's answer."""
    taken, until = await take_slots(svc, f"wecom:{userid}", WECOM_MEMBER_LIMITS, lambda free: 1)
    if not taken:
        assert until is not None
        raise RateLimited(until)
    return await post_with_token(svc, http, "wecom", "/cgi-bin/message/send", body)


def app_sent(item: Claimed, answer: dict[str, Any]) -> str:
    """'app' when WeCom took the message for item's member; Fatal otherwise."""
    if errcode(answer) != 0:
        raise Fatal(describe(answer))
    if item.target in str(answer.get("invaliduser") or "").split("|"):
        raise Fatal(f"invalid WeCom user {item.target}")
    return "app"


def fit_bytes(text: str, limit: int) -> str:
    """text cut (at a character boundary, with an ellipsis) to at most limit UTF-8 bytes."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[: limit - len("…".encode())].decode("utf-8", errors="ignore") + "…"


def pack_markdown(contents: list[str], posts: int) -> list[list[int]]:
    """Indexes of contents spread, in order, over at most `posts` markdown posts of ≤ 4,096 bytes
    (about the same number in each); what does not fit is left out for later."""
    if posts <= 0 or not contents:
        return []
    per_post = -(-len(contents) // posts)  # ceil
    room = MARKDOWN_MAX_BYTES - 200  # the batch header and separators
    groups: list[list[int]] = []
    size = 0
    for i, content in enumerate(contents):
        need = len(content.encode("utf-8")) + 2
        if groups and len(groups[-1]) < per_post and size + need <= room:
            groups[-1].append(i)
            size += need
            continue
        if len(groups) == posts:
            break
        groups.append([i])
        size = need
    return groups


async def send_group(
    svc: Services, http: aiohttp.ClientSession, items: list[Claimed]
) -> dict[int, str | Exception]:
    """Post to the staff group robot within 20/min, merging posts when more wait than fit;
    returns each row's outcome ('robot' or the exception)."""
    contents = [
        fit_bytes(mask_phone(str(i.payload.get("content") or i.payload.get("text") or "")), MARKDOWN_MAX_BYTES)
        for i in items
    ]
    plan: list[list[int]] = []

    def decide(free: int) -> int:
        if free >= len(items):
            plan[:] = [[n] for n in range(len(items))]
        elif free > 0:
            plan[:] = pack_markdown(contents, free)
        return len(plan)

    _taken, until = await take_slots(svc, f"group:{svc.settings.wecom_group_webhook_key}", GROUP_LIMITS, decide)
    outcomes: dict[int, str | Exception] = {}
    planned = {n for group in plan for n in group}
    later = until or svc.clock.now() + timedelta(seconds=60)
    for n, item in enumerate(items):
        if n not in planned:
            outcomes[item.id] = RateLimited(later)
    url = f"{svc.settings.wecom_api}/cgi-bin/webhook/send"
    params = {"key": svc.settings.wecom_group_webhook_key}
    for group in plan:
        if len(group) == 1:
            content = contents[group[0]]
        else:
            header = svc.texts.get("push.group_batch_header", count=len(group))
            content = fit_bytes("\n\n".join([header, *(contents[n] for n in group)]), MARKDOWN_MAX_BYTES)
        outcome: str | Exception
        try:
            answer = await call_api(
                svc, http, "POST", url, params=params,
                body={"msgtype": "markdown", "markdown": {"content": content}},
            )
            code = errcode(answer)
            if code == 0:
                outcome = "robot"
            elif code == ROBOT_FREQ_ERRCODE:
                outcome = RateLimited(svc.clock.now() + timedelta(seconds=60))
            elif code == BUSY_ERRCODE:
                outcome = Retry(describe(answer))
            else:
                outcome = Fatal(describe(answer))
        except (Retry, Fatal) as exc:
            outcome = exc
        for n in group:
            outcomes[items[n].id] = outcome
            if outcome == "robot":
                await finish(svc, items[n], "robot")
    return outcomes


# --- claiming and finishing -------------------------------------------------------------------------


def _due(now: Any) -> Any:
    return or_(
        and_(OutboxItem.state == "pending", OutboxItem.next_attempt_at <= now),
        and_(OutboxItem.state == "sending", OutboxItem.claimed_until < now),
    )


_OUTBOX = OutboxItem.__table__
# The sender's statements, fixed (storage.fastsql): a push costs a claim, a send and a settle, and
# through a session each of those cost more than the send's own bookkeeping.
_ANY_DUE = Prepared(select(_OUTBOX.c.id).where(_due(bindparam("now"))).limit(1))
_CLAIM = Prepared(
    update(_OUTBOX)
    .where(_OUTBOX.c.id.in_(
        select(_OUTBOX.c.id)
        .where(_due(bindparam("now")))
        .order_by(_OUTBOX.c.urgent.desc(), _OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
        .limit(bindparam("limit"))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    ))
    .values(state="sending", claimed_until=bindparam("lease"))
    .returning(_OUTBOX.c.id, _OUTBOX.c.channel, _OUTBOX.c.target, _OUTBOX.c.payload, _OUTBOX.c.attempts,
               _OUTBOX.c.urgent, _OUTBOX.c.last_error)
)


@functools.cache
def _settle_statement(columns: frozenset[str]) -> Prepared:
    """UPDATE one claimed row (still under this claim's lease) SET columns, once per column set."""
    return Prepared(
        update(_OUTBOX)
        .where(_OUTBOX.c.id == bindparam("v_id"), _OUTBOX.c.state == "sending",
               _OUTBOX.c.claimed_until == bindparam("v_lease"))
        .values({c: bindparam(c) for c in sorted(columns)})
    )


async def claim(svc: Services, limit: int = DRAIN_LIMIT) -> list[Claimed]:
    """Claim up to limit due rows (pending and due, or with an expired lease) for this process."""
    now = svc.clock.now()
    lease = now + timedelta(seconds=svc.settings.outbox_lease_s)
    async with svc.sessions.message() as tx:
        # Nothing due: no write, no row locks.
        if not (await fastsql.run(tx, _ANY_DUE, {"now": now})).rows:
            return []
        rows = (await fastsql.run(tx, _CLAIM, {"now": now, "limit": limit, "lease": lease})).rows
    rows.sort(key=lambda r: (not r["urgent"], r["id"]))
    return [Claimed(r["id"], r["channel"], r["target"], dict(r["payload"] or {}), r["attempts"], lease,
                    MAYBE_SENT in (r["last_error"] or "")) for r in rows]


def backoff_s(attempts: int) -> float:
    """Seconds before attempt number attempts+1: exponential from 5 s, capped at 1 h, with jitter."""
    raw = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(attempts - 1, 0))
    return raw * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security


async def _update_row(svc: Services, item: Claimed, **values: Any) -> bool:
    statement = _settle_statement(frozenset(values))
    async with svc.sessions.message() as tx:
        done = await fastsql.run(tx, statement, {"v_id": item.id, "v_lease": item.lease, **values})
    if not done.rowcount:
        log.warning("outbox row lost its lease before it was settled", extra=fields(outbox_id=item.id))
    return bool(done.rowcount)


async def finish(svc: Services, item: Claimed, via: str) -> None:
    """Mark a row sent, the moment the API's answer said so; one an earlier attempt of which timed
    out after sending keeps MAYBE_SENT as its last_error (it may have arrived twice)."""
    await _update_row(
        svc, item, state="sent", sent_via=via, sent_at=svc.clock.now(), claimed_until=None,
        last_error=MAYBE_SENT if item.maybe_sent else None,
    )
    metrics.OUTBOX_SENT.labels(item.channel, via).inc()
    target = hash_openid(item.target) if item.channel == "wechat" else item.target
    log.info("push sent", extra=fields(outbox_id=item.id, channel=item.channel, to=target, via=via,
                                       **({"maybe_delivered": "twice"} if item.maybe_sent else {})))


async def settle_failure(svc: Services, item: Claimed, exc: Exception) -> datetime | None:
    """Put a failed or rate-limited row back in the queue, or make it dead; when it is tried
    again (None: dead)."""
    now = svc.clock.now()
    if isinstance(exc, RateLimited):
        await _update_row(svc, item, state="pending", next_attempt_at=exc.until, claimed_until=None)
        return exc.until
    error = mask_phone(str(exc))[:1000]
    attempts = item.attempts + 1
    metrics.OUTBOX_FAILURES.labels(item.channel).inc()
    target = hash_openid(item.target) if item.channel == "wechat" else item.target
    maybe = isinstance(exc, Retry) and exc.maybe_sent
    if maybe:
        metrics.OUTBOX_MAYBE_DELIVERED.labels(item.channel).inc()
        log.warning("push timed out after sending: maybe delivered, a retry may deliver it again", extra=fields(
            outbox_id=item.id, channel=item.channel, to=target, attempts=attempts, maybe_delivered=True, error=error))
    if maybe or item.maybe_sent:  # the mark stays with the row, whatever fails next
        error = f"{error[:900]}; {MAYBE_SENT}"
    if isinstance(exc, Retry) and attempts < svc.settings.outbox_max_attempts:
        delay = backoff_s(attempts)
        again = now + timedelta(seconds=delay)
        await _update_row(
            svc, item, state="pending", attempts=attempts, last_error=error, claimed_until=None,
            next_attempt_at=again,
        )
        log.warning(
            "push failed, will retry",
            extra=fields(outbox_id=item.id, channel=item.channel, to=target, attempts=attempts,
                         retry_in_s=round(delay, 1), error=error),
        )
        return again
    if not await _update_row(svc, item, state="dead", attempts=attempts, last_error=error, claimed_until=None):
        return None  # another sender holds the row now
    metrics.OUTBOX_DEAD.labels(item.channel).inc()
    hint = IP_HINTS.get(error_code(error) or 0)
    log.error(
        "push dead", extra=fields(outbox_id=item.id, channel=item.channel, to=target, attempts=attempts, error=error,
                                  **({"hint": hint} if hint else {})),
    )
    if item.channel == "wecom" and item.payload.get("msgtype") != "image":  # a photo follows its card
        await tell_staff_push_dead(svc, item.id, error, attempts)
    return None


async def tell_staff_push_dead(svc: Services, outbox_id: int, error: str, attempts: int) -> None:
    """One staff-group post for a push to a worker given up: to whom, on which ticket, why in words
    (console.push_errors by errcode, or LEFT_ROSTER) and what it said; once per push. A push not
    sent to someone who left the roster is posted only while its ticket is still theirs and open
    (a 已改派 or 已撤销 notice to them needs nobody)."""
    t = svc.texts
    code = error_code(error)
    if error.startswith(LEFT_ROSTER):
        why = t.get("console.push_errors.left_roster")
    elif code is not None and t.has(f"console.push_errors.e{code}"):
        why = t.get(f"console.push_errors.e{code}")
    else:
        why = t.get("push.worker_dead_other", error=error[:200], attempts=attempts)
    async with svc.sessions() as session, session.begin():
        row = await session.get(OutboxItem, outbox_id)
        if row is None:
            return
        person = await session.get(Person, row.target)
        ticket = await session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
        if error.startswith(LEFT_ROSTER) and (
            ticket is None or ticket.assignee != row.target or ticket.status not in tickets.ACTIVE
        ):
            return
        lines = [t.get("push.worker_dead_title", name=notices.md_escape(person.name if person else row.target))]
        if ticket is not None:
            lines.append(t.get("push.worker_dead_ticket", number=ticket.number,
                               url=f"{svc.settings.self_url}/console/tickets/{ticket.number}"))
        lines.append(t.get("push.worker_dead_why", why=notices.md_escape(why)))
        said = notices.clip(notices.md_escape(shown_text(row.payload or {})), 300)
        if said:
            lines.append(t.get("push.worker_dead_text", text=said))
        lines.append(t.get("push.worker_dead_hint"))
        await outbox.push_group(session, "\n".join(lines), now=svc.clock.now(), ticket_id=row.ticket_id,
                                dedup_key=f"outbox:{outbox_id}:dead")
    notify(svc)


# --- draining ---------------------------------------------------------------------------------------


async def _windows(svc: Services, openids: set[str]) -> dict[str, cs_window.Window]:
    """The customer-service window of each resident (absent: not a follower we know)."""
    if not openids:
        return {}
    async with svc.sessions() as session:
        rows = await session.execute(
            select(Resident.openid, Resident.last_message_at, Resident.last_inbound_at, Resident.window_opened_by)
            .where(Resident.openid.in_(openids))
        )
        return {openid: cs_window.Window(message_at, inbound_at, by) for openid, message_at, inbound_at, by in rows}


async def _departed(svc: Services, userids: set[str]) -> set[str]:
    """Which of these WeCom userids are roster people no longer active (they left the roster)."""
    if not userids:
        return set()
    async with svc.sessions() as session:
        rows = await session.scalars(select(Person.id).where(Person.id.in_(userids), Person.active.is_(False)))
        return set(rows)


@dataclass(frozen=True)
class Recipients:
    """What the sender knows of a batch's recipients: residents' customer-service windows, and the
    WeCom userids who left the roster."""

    windows: dict[str, cs_window.Window]
    departed: set[str]


async def _send_one(
    svc: Services, http: aiohttp.ClientSession, item: Claimed, recipients: Recipients
) -> tuple[bool, datetime | None]:
    """Send one row and settle it: (sent, when it is tried again if it failed; None: dead)."""
    try:
        if item.channel == "wechat":
            via = await send_wechat(svc, http, item, recipients.windows.get(item.target))
        elif item.channel == "wecom":
            if item.target in recipients.departed:
                raise Fatal(LEFT_ROSTER)
            via = await send_wecom(svc, http, item)
        else:
            raise Fatal(f"unknown channel {item.channel!r}")
    except (Retry, Fatal, RateLimited) as exc:
        return False, await settle_failure(svc, item, exc)
    except LockTimeout as exc:
        return False, await settle_failure(svc, item, Retry(f"lock busy: {exc}"))
    await finish(svc, item, via)
    return True, None


async def _send_in_order(
    svc: Services, http: aiohttp.ClientSession, items: list[Claimed], recipients: Recipients, gate: asyncio.Semaphore,
) -> int:
    """One target's rows, oldest first (a resident reads them in the order they were written).
    A photo after a row that is to be tried again (its card, an earlier photo) waits until then,
    so it still follows it."""
    sent = 0
    async with gate:
        behind: datetime | None = None
        for item in items:
            if behind is not None and item.payload.get("msgtype") == "image":
                await _update_row(svc, item, state="pending", next_attempt_at=behind, claimed_until=None)
                continue
            done, again = await _send_one(svc, http, item, recipients)
            sent += done
            if again is not None:
                behind = max(behind or again, again)
    return sent


async def _send_group_rows(
    svc: Services, http: aiohttp.ClientSession, items: list[Claimed], gate: asyncio.Semaphore
) -> int:
    async with gate:
        try:
            outcomes = await send_group(svc, http, items)
        except LockTimeout as exc:
            outcomes = {i.id: Retry(f"lock busy: {exc}") for i in items}
        sent = 0
        for item in items:
            outcome = outcomes[item.id]
            if isinstance(outcome, Exception):
                await settle_failure(svc, item, outcome)
            else:
                sent += 1
        return sent


async def update_depth(svc: Services) -> int:
    """Count the pushes waiting (pending or being sent) into the OUTBOX_DEPTH gauge."""
    async with svc.sessions() as session:
        depth = int(
            await session.scalar(
                select(func.count()).select_from(OutboxItem).where(OutboxItem.state.in_(("pending", "sending")))
            )
            or 0
        )
    metrics.OUTBOX_DEPTH.set(depth)
    return depth


async def _depth_now_and_then(svc: Services) -> None:
    """update_depth at most every DEPTH_EVERY_S: a drain runs after every push committed, and
    counting the waiting rows each time cost more than the push's own bookkeeping."""
    now = time.monotonic()
    if now - svc.extras.get(DEPTH_AT_KEY, -DEPTH_EVERY_S) >= DEPTH_EVERY_S:
        svc.extras[DEPTH_AT_KEY] = now
        await update_depth(svc)


async def drain(svc: Services, http: aiohttp.ClientSession, *, limit: int = DRAIN_LIMIT) -> int:
    """Send what is due now (at most limit rows); returns how many rows were sent."""
    items = await claim(svc, limit)
    if not items:
        await _depth_now_and_then(svc)
        return 0
    recipients = Recipients(
        await _windows(svc, {i.target for i in items if i.channel == "wechat"}),
        await _departed(svc, {i.target for i in items if i.channel == "wecom"}),
    )
    by_target: dict[tuple[str, str], list[Claimed]] = {}
    group_rows: list[Claimed] = []
    for item in items:
        if item.channel == "group":
            group_rows.append(item)
        else:
            by_target.setdefault((item.channel, item.target), []).append(item)
    gate = asyncio.Semaphore(CONCURRENCY)
    jobs = [_send_in_order(svc, http, rows, recipients, gate) for rows in by_target.values()]
    if group_rows:
        jobs.append(_send_group_rows(svc, http, group_rows, gate))
    sent = sum(await asyncio.gather(*jobs))
    await _depth_now_and_then(svc)
    return sent


def notify(svc: Services) -> None:
    """Wake this process's sender now (call after committing a push); a no-op without a sender."""
    wake = svc.extras.get(WAKE_KEY)
    if isinstance(wake, asyncio.Event):
        wake.set()


async def run_sender(svc: Services, http: aiohttp.ClientSession, wake: asyncio.Event) -> None:
    """Drain the outbox until cancelled: again at once after a full batch, when woken, or every 0.5 s."""
    while True:
        wake.clear()
        try:
            sent = await drain(svc, http, limit=DRAIN_LIMIT)
        except Exception:  # the task's boundary: log and keep sending once the cause is gone
            log.exception("outbox drain failed")
            sent = 0
        if sent >= DRAIN_LIMIT:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), POLL_S)


async def _sender_ctx(app: web.Application) -> AsyncIterator[None]:
    from bot.app import HTTP, SERVICES

    svc = app[SERVICES]
    wake = asyncio.Event()
    svc.extras[WAKE_KEY] = wake
    task: asyncio.Task[None] | None = None
    if svc.settings.outbox_sender:
        task = asyncio.create_task(run_sender(svc, app[HTTP], wake), name="outbox-sender")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    svc.extras.pop(WAKE_KEY, None)


def setup(app: web.Application) -> None:
    """Run the outbox sender for the app's lifetime (unless settings.outbox_sender is off)."""
    app.cleanup_ctx.append(_sender_ctx)
