"""The console's 活动 page: the volunteer activities not yet ended (title, time, place, how many
signed up, status), those taken out of config/activities.toml while residents are still signed up
marked so, and per activity 取消活动 with a reason — the same cancellation as WeCom's 取消活动
(bot.activities.call_off: residents told once, reminders dropped, audited). Staff and admins
cancel; read-only users see the list. Below, the ended ones, latest first, a page at a time
(?ended=N), each with who was signed up at its end (name, address, phone masked)."""

from __future__ import annotations

from datetime import datetime
from math import ceil
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot import activities
from bot.console import auth, queries
from bot.console.auth import ConsoleUser
from bot.console.common import back, claim_form, page, refuse, release_form, render, services
from bot.privacy import mask_phone
from storage.db import row_id
from storage.models import Resident

routes = web.RouteTableDef()
PAGE = "/console/activities"
ENDED_PAGE = 10  # ended activities shown at a time


@routes.get(PAGE)
@page("readonly")
async def activities_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    svc = services(request)
    now = svc.clock.now()
    keys = activities.configured_keys(svc)
    ended_page = queries.page_number(request.query, "ended")
    async with svc.sessions() as session:
        rows = await activities.not_ended(session, now)
        past, past_total = await activities.ended(session, now, offset=(ended_page - 1) * ENDED_PAGE, limit=ENDED_PAGE)
        cancelled = any(r.cancelled_by for r, _ in rows) or any(a.cancelled_by for a, _ in past)
        names = await queries.names(session) if cancelled else {}
        openids = {s.openid for _, signups in past for s in signups}
        residents = {r.openid: r for r in await session.scalars(
            select(Resident).where(Resident.openid.in_(openids)))} if openids else {}
    items: list[dict[str, Any]] = []
    for row, signed in rows:
        if row.cancelled_at is not None:
            status = "cancelled"
        elif row.start_at <= now:
            status = "started"
        else:
            status = "open"
        items.append({"row": row, "signed": signed, "status": status, "when": activities.when_text(svc, row),
                      "removed": keys is not None and row.key not in keys and row.cancelled_at is None,
                      "by": names.get(row.cancelled_by or "", row.cancelled_by or "")})
    ended = [{"row": a, "when": activities.when_text(svc, a), "by": names.get(a.cancelled_by or "", a.cancelled_by or ""),
              "signed": [_signed(residents.get(s.openid), s.created_at) for s in signups]} for a, signups in past]
    return await render(request, "activities.html", {
        "items": items, "limit": activities.MAX_REASON, "ended": ended, "ended_total": past_total,
        "ended_page": ended_page, "ended_pages": max(1, ceil(past_total / ENDED_PAGE)),
    })


def _signed(resident: Resident | None, at: datetime) -> dict[str, Any]:
    """One resident signed up for an ended activity as the page lists them: name, address and
    phone (masked: a list to count and thank, not to call from) as registered in 我的信息, ''
    where unknown; erased: their information deleted."""
    if resident is None or resident.erased_at is not None:
        return {"at": at, "erased": resident is not None, "name": "", "address": "", "phone": ""}
    address = (f"{resident.building}号楼" + (f"{resident.unit}单元" if resident.unit else "")
               + (resident.room or "")) if resident.building else ""
    return {"at": at, "erased": False, "name": resident.name or "", "address": address,
            "phone": mask_phone(resident.phone or "")}


@routes.post(PAGE + "/{activity_id:\\d+}/cancel")
@page("staff")
async def cancel(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """取消活动: the activity called off with the form's reason (may be empty, at most
    activities.MAX_REASON characters); a form sent twice does nothing the second time."""
    svc = services(request)
    t = svc.texts
    form = await request.post()
    if not await claim_form(request, user, form):
        await auth.add_flash(svc, user, t.get("console.flash.resent"))
        raise web.HTTPSeeOther(PAGE)
    reason = " ".join(str(form.get("reason", "")).split())
    if len(reason) > activities.MAX_REASON:
        await release_form(request, user, form)
        await back(request, user, PAGE, t.get("activities.cancel_reason_long", limit=activities.MAX_REASON), "error")
    activity_id = row_id(request.match_info["activity_id"])
    try:
        if activity_id is None:
            raise LookupError(request.match_info["activity_id"])
        async with svc.sessions() as session, session.begin():
            done, said = await activities.call_off(svc, session, activity_id,
                                                   user.username, reason, "console")
    except LookupError:
        return await refuse(request, 404, t.get("activities.console_unknown"))
    await back(request, user, PAGE, said, "ok" if done else "error")
