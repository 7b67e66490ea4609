"""The ticket API's write side: POST /api/tickets/{number}/reply and /transition (CONTRACT).

Behind the same gate as the read side (`bot.api.guarded`: bearer token or console session, the
latter CSRF-checked on writes). 400 malformed JSON, missing fields or an invalid action; 404 an
unknown ticket; 409 a transition the status forbids or a resident who can no longer be answered.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot import api, staff_actions, tickets
from bot.app import SERVICES
from bot.services import Services

MAX_BODY = 64 * 1024


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; raises a 400/413 JSON answer otherwise."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY, request.content_length, text='{"error": "body too large"}',
                                            content_type="application/json")
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY, len(raw), text='{"error": "body too large"}',
                                            content_type="application/json")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise web.HTTPBadRequest(text='{"error": "body is not valid JSON"}', content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "body must be a JSON object"}', content_type="application/json")
    return body


def _string(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"'{name}' must be a non-empty string"}), content_type="application/json",
        )
    return value


def _expect(body: dict[str, Any]) -> staff_actions.Seen | None:
    """The optional "expect" of a write: what the client last saw of the ticket; raises a 400."""
    if "expect" not in body:
        return None
    expect = body["expect"]
    if (not isinstance(expect, dict) or not isinstance(expect.get("status"), str) or "assignee" not in expect
            or not isinstance(expect["assignee"], (str, type(None)))):
        raise web.HTTPBadRequest(text=json.dumps({"error": "'expect' must be {\"status\": string, \"assignee\": string or null}"}),
                                 content_type="application/json")
    return staff_actions.Seen(expect["status"], expect["assignee"])


# What the ticket's state forbids now (another clerk acted, its status, no resident to answer): 409.
_CONFLICTS = (staff_actions.StaleView, tickets.TransitionError, staff_actions.ResidentUnreachable)


def _refused(exc: LookupError | ValueError) -> web.Response:
    """A staff action's refusal as both writes answer it: 404 an unknown ticket, 409 a conflict
    with the ticket's state (_CONFLICTS), 400 anything else wrong with what was asked."""
    if isinstance(exc, LookupError):
        return api.error(404, "no such ticket")
    return api.error(409 if isinstance(exc, _CONFLICTS) else 400, str(exc))


async def reply(request: web.Request, actor: str) -> web.Response:
    """POST /api/tickets/{number}/reply {"text": ...} — the staff answer, queued for the resident.
    With "all": true, every resident who reported the problem (the job and its linked reports) is
    answered, each through their own channel; "expect" ({"status", "assignee"}, and optionally
    "reporters": how many the client showed) makes it 409 when the ticket changed meanwhile."""
    body = await _json_object(request)
    text = _string(body, "text", required=True) or ""
    every = body.get("all", False)
    if not isinstance(every, bool):
        return api.error(400, "'all' must be true or false")
    number = request.match_info["number"]
    svc = request.app[SERVICES]
    try:
        if every:
            seen = _expect(body)
            reporters = body["expect"].get("reporters") if seen is not None else None
            if reporters is not None and (not isinstance(reporters, int) or isinstance(reporters, bool)):
                return api.error(400, "'expect.reporters' must be an integer")
            done = await staff_actions.staff_reply_all(svc, number, text, actor, seen=seen, reporters=reporters)
            return web.json_response({
                "number": done.number, "queued": True, "all": True, "reached": done.reached, "missed": done.missed,
                "via": {"custom": done.custom, "template": done.template},
            })
        via = await staff_actions.staff_reply(svc, number, text, actor)
    except (LookupError, ValueError) as exc:
        return _refused(exc)
    return web.json_response({"number": number, "queued": True, "via": via})


async def _as_it_is(svc: Services, number: str) -> staff_actions.Seen | None:
    """The ticket's status and owner as this request found it on arrival (None: no such ticket)."""
    async with svc.sessions() as session:
        ticket = await tickets.get_by_number(session, number.strip())
        return None if ticket is None else staff_actions.Seen(ticket.status, ticket.assignee, "api")


async def _conflict(svc: Services, number: str, exc: ValueError) -> web.Response:
    """A transition's 409, with the ticket as it now is (what the caller decides on next)."""
    async with svc.sessions() as session:
        ticket = await tickets.get_by_number(session, number.strip())
        now = tickets.ticket_json(ticket) if ticket is not None else None
    return web.json_response({"error": str(exc), "ticket": now}, status=409)


async def transition(request: web.Request, actor: str) -> web.Response:
    """POST /api/tickets/{number}/transition {"action": ..., "assignee"?: ..., "note"?: ...,
    "expect"?: {"status": ..., "assignee": ... or null}}: with expect, the action is refused (409)
    when the ticket's status or owner is no longer what the client last saw (another clerk acted).
    Without it the action is decided on the ticket as the request found it: one that lost a race
    (another caller, a worker's 接单, a roster import changed the ticket while it waited for the
    row) is refused the same way, not carried out on a state its caller never saw. A 409 carries
    the ticket as it now is ("ticket")."""
    body = await _json_object(request)
    action = _string(body, "action", required=True) or ""
    assignee = _string(body, "assignee", required=False)
    note = _string(body, "note", required=False) or ""
    seen = _expect(body)
    if action not in staff_actions.STAFF_ACTIONS:
        return api.error(400, f"action must be one of {', '.join(staff_actions.STAFF_ACTIONS)}")
    if action == "assign" and not assignee:
        return api.error(400, "'assignee' is required for assign")
    svc = request.app[SERVICES]
    number = request.match_info["number"]
    if seen is None:
        seen = await _as_it_is(svc, number)
    try:
        ticket = await staff_actions.staff_transition(
            svc, number, action, actor, assignee=assignee, note=note, seen=seen,
        )
    except (LookupError, ValueError) as exc:
        if isinstance(exc, _CONFLICTS):
            return await _conflict(svc, number, exc)
        return _refused(exc)
    return web.json_response(tickets.ticket_json(ticket))


def setup(app: web.Application) -> None:
    """Add the /api/tickets write routes."""
    app.router.add_post("/api/tickets/{number}/reply", api.guarded(reply))
    app.router.add_post("/api/tickets/{number}/transition", api.guarded(transition))
