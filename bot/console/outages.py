"""The console's 停水停电 page: current and recent outage announcements (bot.outages), a form to
announce one, and per announcement a new expected end or 已恢复 (of all of it or of some of its
buildings, as 恢复 停水 3 does in WeCom). Staff and admins change them
(audited by bot.outages); read-only users see the list."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from multidict import MultiDictProxy

from bot import outages
from bot.console import queries
from bot.console.auth import ConsoleUser
from bot.console.common import back, page, render, services
from bot.outage_commands import buildings_of, included_again, taken_line
from bot.services import Services
from storage.db import row_id
from storage.models import Outage

routes = web.RouteTableDef()
PAGE = "/console/outages"


def _end_of(svc: Services, form: MultiDictProxy[str | bytes | web.FileField]) -> datetime | None:
    """The form's expected end (a datetime-local value, local time) as aware UTC; None when left
    empty; ValueError when not a date and time."""
    value = str(form.get("expected_end", "")).strip()
    return outages.local_moment(svc, value) if value else None


@routes.get(PAGE)
@page("readonly")
async def outages_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Active announcements and those ended in the last outages.LISTED_DAYS, with how many residents
    registered for each."""
    svc = services(request)
    now = svc.clock.now()
    async with svc.sessions() as session:
        rows = await outages.listed(session, now)
        counts = await outages.registered(session, [r.id for r in rows])
        told = {r.id: await outages.to_tell(session, r.id) for r in rows if r.status == "active"}
        names = await queries.names(session)
    items = [{"row": r, "line": outages.line(svc, outages.notice_of(r), now), "count": counts[r.id], "tell": told.get(r.id),
              "confirm": svc.texts.get("outages.console.confirm_end", count=told[r.id]) if r.id in told else ""}
             for r in rows]
    kinds = [(k, svc.texts.get(f"outages.kinds.{k}")) for k in outages.KINDS]
    return await render(request, "outages.html", {"items": items, "kinds": kinds, "names": names})


@routes.post(PAGE)
@page("staff")
async def announce(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Announce an outage (or move the end of the active one of that kind and those buildings)."""
    svc = services(request)
    t = svc.texts
    form = await request.post()
    keys, whole, rest = buildings_of(str(form.get("buildings", "")).strip())
    if form.get("whole") == "1" and keys:  # 全小区 chosen, buildings typed: which one is meant?
        await back(request, user, PAGE, t.get("outages.console.whole_and_buildings"), "error")
    whole = whole or form.get("whole") == "1"
    if rest.strip() or (not keys and not whole):
        await back(request, user, PAGE, t.get("outages.console.bad_buildings"), "error")
    try:
        end = _end_of(svc, form)
    except ValueError:
        await back(request, user, PAGE, t.get("outages.console.bad_end"), "error")
    try:
        async with svc.sessions() as session, session.begin():
            done = await outages.announce_full(
                svc, session, kind=str(form.get("kind", "")), buildings=() if whole else keys,
                reason=str(form.get("reason", "")), expected_end=end, actor=user.username, via="console",
            )
            said = [t.get("outages.console.created" if done.new else "outages.console.updated",
                          line=outages.line(svc, outages.notice_of(done.row), svc.clock.now())),
                    *included_again(svc, done), *(taken_line(svc, older) for older in done.taken)]
    except outages.OutageRefused as exc:
        await back(request, user, PAGE, str(exc), "error")
    await back(request, user, PAGE, " ".join(said))


@routes.get(PAGE + "/{outage_id:\\d+}/confirm")
@page("staff")
async def confirm_text(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """What the 已恢复 dialog asks, with how many residents the end of these buildings (the
    buildings query field; empty: the whole announcement) would tell, by the rule the end uses
    (outages.to_tell): {"confirm": text}; {"error": text} when the buildings are not buildings
    (the form sent as it is then gets the same words)."""
    svc = services(request)
    t = svc.texts
    part, whole, rest = buildings_of(request.query.get("buildings", "").strip()[:200])
    if rest.strip() or whole:
        return web.json_response({"error": t.get("outages.console.bad_end_buildings")})
    async with svc.sessions() as session:
        outage_id = row_id(request.match_info["outage_id"])
        row = None if outage_id is None else await session.get(Outage, outage_id)
        if row is None:
            return web.json_response({"error": t.get("outages.console.no_outage")}, status=404)
        count = await outages.to_tell(session, row.id, part or None)
    if not part:
        return web.json_response({"confirm": t.get("outages.console.confirm_end", count=count)})
    return web.json_response({"confirm": t.get("outages.console.confirm_end_part", count=count,
                                               buildings=outages.scope(svc, part))})


@routes.post(PAGE + "/{outage_id:\\d+}")
@page("staff")
async def change(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """A new expected end (op=end_time), or 已恢复 (op=end: registered residents are told) — of
    the whole announcement, or with buildings (some it covers) of those only, the rest staying on."""
    svc = services(request)
    t = svc.texts
    form = await request.post()
    op = str(form.get("op", ""))
    part, whole, rest = buildings_of(str(form.get("buildings", "")).strip()) if op == "end" else ((), False, "")
    if rest.strip() or whole:  # words, or 全小区 (the whole announcement is an empty field)
        await back(request, user, PAGE, t.get("outages.console.bad_end_buildings"), "error")
    try:
        end = _end_of(svc, form) if op == "end_time" else None
    except ValueError:
        await back(request, user, PAGE, t.get("outages.console.bad_end"), "error")
    try:
        async with svc.sessions() as session, session.begin():
            outage_id = row_id(request.match_info["outage_id"])
            row = None if outage_id is None else await session.get(Outage, outage_id, with_for_update=True)
            if row is None:
                raise web.HTTPNotFound(text=t.get("outages.console.no_outage"))
            if op == "end":
                ended, told = await outages.end(svc, session, row, actor=user.username, via="console",
                                                buildings=part)
                message = t.get("outages.console.ended", line=outages.line(svc, outages.notice_of(ended), svc.clock.now()),
                                count=told)
            elif op == "end_time":
                await outages.set_end(svc, session, row, end, actor=user.username, via="console")
                message = t.get("outages.console.updated", line=outages.line(svc, outages.notice_of(row), svc.clock.now()))
            else:
                raise outages.OutageRefused(t.get("console.errors.bad_user_change"))
    except outages.OutageRefused as exc:
        await back(request, user, PAGE, str(exc), "error")
    await back(request, user, PAGE, message)
