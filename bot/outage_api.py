"""The outage API (bot.outages), behind the ticket API's gate (bearer token or console session):

    GET  /api/outages                    active ones and those ended in the last 7 days
    POST /api/outages                    {"kind", "buildings": [...] | "whole": true, "reason"?, "expected_end"?}
                                         (201 new, with "taken": the older ones it took buildings from;
                                         200 the same kind and buildings updated; a 全小区 one said
                                         again covers its left-out buildings again: "included_again")
    POST /api/outages/{id}               {"action": "update", "expected_end"} | {"action": "end", "buildings"?}

expected_end is ISO 8601 (without an offset: local time). 400 bad input (with the reason staff
would read), 404 an unknown outage, 409 one already ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from bot import api, outages
from bot.api_actions import _json_object as json_object
from bot.app import SERVICES
from bot.services import Services
from storage.db import row_id
from storage.models import Outage


def outage_json(svc: Services, row: Outage, registered: int) -> dict[str, Any]:
    """An outage as JSON: its facts, how many residents registered and the sentence residents read."""
    return {
        "id": row.id, "kind": row.kind, "buildings": list(row.buildings or ()), "whole": not row.buildings,
        "excluded": list(row.excluded or ()),
        "reason": row.reason, "status": row.status, "registered": registered,
        "expected_end": row.expected_end.isoformat() if row.expected_end else None,
        "ended_at": row.ended_at.isoformat() if row.ended_at else None,
        "created_by": row.created_by, "created_at": row.created_at.isoformat(),
        "text": outages.line(svc, outages.notice_of(row), svc.clock.now()),
    }


def _when(svc: Services, body: dict[str, Any]) -> datetime | None:
    """The body's expected_end as aware UTC (None when absent); ValueError when malformed."""
    value = body.get("expected_end")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("'expected_end' must be an ISO 8601 date and time")
    return outages.local_moment(svc, value)


def _buildings(body: dict[str, Any]) -> list[str]:
    value = body.get("buildings", [])
    if not isinstance(value, list) or not all(isinstance(b, (str, int)) and not isinstance(b, bool) for b in value):
        raise ValueError("'buildings' must be a list of building numbers")
    return [str(b) for b in value]


async def list_outages(request: web.Request, actor: str) -> web.Response:
    """GET /api/outages."""
    svc = request.app[SERVICES]
    async with svc.sessions() as session:
        rows = await outages.listed(session, svc.clock.now())
        counts = await outages.registered(session, [r.id for r in rows])
    return web.json_response([outage_json(svc, r, counts[r.id]) for r in rows])


async def announce(request: web.Request, actor: str) -> web.Response:
    """POST /api/outages: 201 a new announcement, 200 the same kind and buildings updated."""
    svc = request.app[SERVICES]
    body = await json_object(request)
    try:
        keys, whole = _buildings(body), body.get("whole", False)
        if not isinstance(whole, bool) or (whole and keys) or (not whole and not keys):
            raise ValueError("give 'buildings' (a non-empty list) or \"whole\": true")
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            raise ValueError("'reason' must be a string")
        end = _when(svc, body)
        async with svc.sessions() as session, session.begin():
            done = await outages.announce_full(svc, session, kind=str(body.get("kind", "")), buildings=keys,
                                               reason=reason, expected_end=end, actor=actor, via="api")
            counts = await outages.registered(session, [done.row.id, *(t.id for t in done.taken)])
            answer = outage_json(svc, done.row, counts[done.row.id])
            if done.taken:  # older announcements this one took buildings from, as they are now
                answer["taken"] = [outage_json(svc, t, counts[t.id]) for t in done.taken]
            if done.included:  # 全小区 again: the buildings left out of it covered again
                answer["included_again"] = list(done.included)
    except ValueError as exc:  # OutageRefused too: the reason staff read
        return api.error(400, str(exc))
    return web.json_response(answer, status=201 if done.new else 200)


async def change(request: web.Request, actor: str) -> web.Response:
    """POST /api/outages/{id}: update its expected end, or end it (registered residents told)."""
    svc = request.app[SERVICES]
    body = await json_object(request)
    action = body.get("action")
    if action not in ("update", "end"):
        return api.error(400, "action must be one of update, end")
    try:
        end = _when(svc, body) if action == "update" else None
        part = _buildings(body) if action == "end" else []
        if action == "update" and end is None:
            raise ValueError("'expected_end' is required for update")
    except ValueError as exc:
        return api.error(400, str(exc))
    async with svc.sessions() as session, session.begin():
        outage_id = row_id(request.match_info["outage_id"])
        row = None if outage_id is None else await session.get(Outage, outage_id, with_for_update=True)
        if row is None:
            return api.error(404, "no such outage")
        if row.status != "active":
            return api.error(409, svc.texts.get("outages.already_ended", line=outages.line(
                svc, outages.notice_of(row), svc.clock.now())))
        told = None
        try:
            async with session.begin_nested():
                if action == "end":
                    row, told = await outages.end(svc, session, row, actor=actor, via="api", buildings=part)
                else:
                    await outages.set_end(svc, session, row, end, actor=actor, via="api")
        except outages.OutageRefused as exc:
            return api.error(400, str(exc))
        answer = outage_json(svc, row, (await outages.registered(session, [row.id]))[row.id])
    return web.json_response({**answer, **({"told": told} if told is not None else {})})


def setup(app: web.Application) -> None:
    """Add the /api/outages routes."""
    app.router.add_get("/api/outages", api.guarded(list_outages))
    app.router.add_post("/api/outages", api.guarded(announce))
    app.router.add_post("/api/outages/{outage_id:\\d+}", api.guarded(change))
