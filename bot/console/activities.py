"""The console's 活动 page: the volunteer activities not yet ended (title, time, place, how many
signed up, status), those taken out of config/activities.toml while residents are still signed up
marked so, and per activity 取消活动 with a reason — the same cancellation as WeCom's 取消活动
(bot.activities.call_off: residents told once, reminders dropped, audited). Staff and admins
cancel; read-only users see the list."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot import activities
from bot.console import auth, queries
from bot.console.auth import ConsoleUser
from bot.console.common import back, claim_form, page, refuse, release_form, render, services
from storage.db import row_id

routes = web.RouteTableDef()
PAGE = "/console/activities"


@routes.get(PAGE)
@page("readonly")
async def activities_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    svc = services(request)
    now = svc.clock.now()
    keys = activities.configured_keys(svc)
    async with svc.sessions() as session:
        rows = await activities.not_ended(session, now)
        names = await queries.names(session) if any(r.cancelled_by for r, _ in rows) else {}
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
    return await render(request, "activities.html", {"items": items, "limit": activities.MAX_REASON})


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
