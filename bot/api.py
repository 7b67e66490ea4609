"""The ticket API (/api/tickets …) as CONTRACT describes it, behind CB_API_TOKEN or a console login.

Every route lives in `setup(app)`; `authorized(request)` is the one gate, answering who is asking
(or None → 401). Bad query values answer 400, an unknown number 404 — never a 500.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.console import phone_views
from bot.privacy import mask_phone
from bot.services import Services
from bot.tickets import KINDS, STATUSES, event_json, events_of, get_by_number, ticket_json
from storage.models import Message, Ticket

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
FILTERS = ("kind", "status", "resident", "assignee")

Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def _services(request: web.Request) -> Services:
    from bot.app import SERVICES

    return request.app[SERVICES]


async def authorized(request: web.Request) -> str | None:
    """Who is calling: 'api' for the bearer token; None when not allowed (the console adds its session)."""
    token = _services(request).settings.api_token
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return "api"
    from bot.console.common import api_caller  # a console session (CSRF-checked on writes)

    return await api_caller(request)


def error(status: int, message: str) -> web.Response:
    """A JSON error answer."""
    return web.json_response({"error": message}, status=status)


def guarded(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a handler so it runs only for an authorized caller (401 otherwise)."""

    async def run(request: web.Request) -> web.StreamResponse:
        actor = await authorized(request)
        if actor is None:
            return web.json_response(
                {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return await handler(request, actor)

    return run


async def _reveals(request: web.Request, actor: str) -> bool:
    """Whether the caller sees phone numbers whole: the bearer token (an integration the office
    set up) and staff do; a read-only console user sees them masked, as on the console's pages."""
    if actor == "api":
        return True
    from bot.console.common import api_caller_can

    return await api_caller_can(request, "staff")


def _masked(value: Any) -> Any:
    """value with every phone number in its text masked (dicts and lists walked)."""
    if isinstance(value, str):
        return mask_phone(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


_RESIDENT_TEXT = ("fields", "summary", "rating_comment", "conversation", "events")


def _for(body: dict[str, Any], reveal: bool) -> dict[str, Any]:
    """A ticket's JSON as this caller may see it (the resident's words masked for read-only users)."""
    return body if reveal else {k: _masked(v) if k in _RESIDENT_TEXT else v for k, v in body.items()}


def _int(query: Any, name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ValueError(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


async def list_tickets(request: web.Request, actor: str) -> web.Response:
    """GET /api/tickets?kind=&status=&resident=&assignee=&limit=&offset= — newest first."""
    query = request.query
    try:
        limit = _int(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _int(query, "offset", 0, 0, 10**9)
    except ValueError as exc:
        return error(400, str(exc))
    stmt = select(Ticket)
    for name in FILTERS:
        value = query.get(name)
        if value is None or value == "":
            continue
        if name == "kind" and value not in KINDS:
            return error(400, f"kind must be one of {', '.join(KINDS)}")
        if name == "status" and value not in STATUSES:
            return error(400, f"status must be one of {', '.join(STATUSES)}")
        if len(value) > 64:
            return error(400, f"{name} is too long")
        stmt = stmt.where(getattr(Ticket, name) == value)
    stmt = stmt.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit).offset(offset)
    async with _services(request).sessions() as session:
        rows = (await session.execute(stmt)).scalars().all()
        reveal = await _reveals(request, actor)
        body = [(t, _for(ticket_json(t), reveal)) for t in rows]
    if reveal and actor != "api":  # a person saw these phones whole (the token is the office's own tool)
        await phone_views.record(_services(request), actor, "api",
                                 [t for t, shown in body if phone_views.shows_phone(*(shown.get(k) for k in _RESIDENT_TEXT))])
    return web.json_response([shown for _, shown in body])


def _message_json(message: Message) -> dict[str, Any]:
    return {
        "direction": message.direction, "type": message.msg_type, "text": message.content,
        "media": message.media, "author": message.author, "at": message.created_at.isoformat(),
    }


async def one_ticket(request: web.Request, actor: str) -> web.Response:
    """GET /api/tickets/{number} — the ticket with its events and its conversation."""
    number = request.match_info["number"]
    if len(number) > 20:
        return error(404, "no such ticket")
    async with _services(request).sessions() as session:
        ticket = await get_by_number(session, number)
        if ticket is None:
            return error(404, "no such ticket")
        events = await events_of(session, ticket)
        messages = (
            await session.execute(select(Message).where(Message.ticket_id == ticket.id).order_by(Message.id))
        ).scalars().all()
        body = ticket_json(ticket)
        body["events"] = [event_json(e) for e in events]
        body["conversation"] = [_message_json(m) for m in messages]
        reveal = await _reveals(request, actor)
    if reveal and actor != "api" and phone_views.shows_phone(*(body.get(k) for k in _RESIDENT_TEXT)):
        await phone_views.record(_services(request), actor, "api", [ticket])
    return web.json_response(_for(body, reveal))


def setup(app: web.Application) -> None:
    """Add the /api/tickets routes."""
    app.router.add_get("/api/tickets", guarded(list_tickets))
    app.router.add_get("/api/tickets/{number}", guarded(one_ticket))
