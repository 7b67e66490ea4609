"""The console's 消息未送达 page: pushes of the last LISTED_DAYS that never arrived (outbox rows
gone dead) or may have arrived twice (an attempt timed out after sending), with the ticket, who
they were for by name (never an openid or WeCom account), when, why in plain words and what they
said (phones masked, escaped); a 重发 for one given up, which puts it back in the queue as it was
(audited outbox.resend). Staff and admins only: it shows what residents were told."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels import push
from bot.console import queries
from bot.console.auth import ConsoleUser
from bot.console.common import back, page, render, services
from bot.privacy import mask_phone
from bot.staff_actions import audit
from storage.db import row_id
from storage.models import OutboxItem, Person, Resident, Ticket

routes = web.RouteTableDef()
PAGE = "/console/pushes"
LISTED_DAYS = 7
SHOWN_CHARS = 200  # of what a push said


def _labels(request: web.Request) -> dict[str, str]:
    """The words for a recipient not known by name."""
    t = services(request).texts
    return {k: t.get(f"console.pushes.recipient_{k}") for k in ("resident", "worker", "group")}


@routes.get(PAGE)
@page("staff")
async def pushes_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Failed and maybe-twice-delivered pushes of the last LISTED_DAYS, newest first."""
    svc = services(request)
    since = svc.clock.now() - timedelta(days=LISTED_DAYS)
    async with svc.sessions() as session:
        rows = await queries.undelivered(session, since, _labels(request))
    items = [{"row": r, "said": mask_phone(r.text)[:SHOWN_CHARS] + ("…" if len(r.text) > SHOWN_CHARS else ""),
              "why": _why(request, r), "resend": r.state == "dead" and not r.left_roster}
             for r in rows]
    return await render(request, "pushes.html", {"items": items, "days": LISTED_DAYS})


def _why(request: web.Request, row: queries.UndeliveredPush) -> str:
    """Why a push is on the page, in plain words."""
    t = services(request).texts
    if row.left_roster:
        return t.get("console.push_errors.left_roster")
    if row.state == "dead":
        key = f"console.push_errors.e{row.errcode}"
        why = t.get(key) if row.errcode is not None and t.has(key) else t.get("console.push_errors.other",
                                                                              attempts=row.attempts)
        return why + (t.get("console.pushes.maybe_too") if row.maybe else "")
    return t.get("console.pushes.maybe_sent" if row.state == "sent" else "console.pushes.maybe_retrying")


@routes.post(PAGE + "/{outbox_id:\\d+}/resend")
@page("staff")
async def resend(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """重发: a push given up goes back in the queue as it was (tried again from its first attempt,
    the sender woken), audited outbox.resend with whom it was for by name; one already sent again
    (a double click, a colleague) or not sendable (its worker left the roster) is refused, audited."""
    svc = services(request)
    t = svc.texts
    now = svc.clock.now()
    async with svc.sessions() as session, session.begin():
        outbox_id = row_id(request.match_info["outbox_id"])
        row = None if outbox_id is None else await session.get(OutboxItem, outbox_id, with_for_update=True)
        if row is None:
            raise web.HTTPNotFound(text=t.get("console.pushes.no_push"))
        ticket = await session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
        target = ticket.number if ticket is not None else f"outbox:{row.id}"
        recipient = await _recipient(request, session, row)
        refused = ("not_dead" if row.state != "dead"
                   else "left_roster" if (row.last_error or "").startswith(push.LEFT_ROSTER) else None)
        if refused is None:
            row.state, row.attempts, row.next_attempt_at, row.claimed_until = "pending", 0, now, None
            audit(session, user.username, "outbox.resend", target, now, {"outbox": row.id, "recipient": recipient})
        else:
            audit(session, user.username, "outbox.resend.refused", target, now,
                  {"outbox": row.id, "recipient": recipient, "reason": refused})
    if refused is not None:
        await back(request, user, PAGE, t.get(f"console.pushes.refused_{refused}"), "error")
    push.notify(svc)
    await back(request, user, PAGE, t.get("console.pushes.resent", recipient=recipient))


async def _recipient(request: web.Request, session: AsyncSession, row: OutboxItem) -> str:
    """Whom a push was for, by name as the page shows it (never the openid or account)."""
    labels = _labels(request)
    if row.channel == "wechat":
        name = await session.scalar(select(Resident.name).where(Resident.openid == row.target))
        return name or labels["resident"]
    if row.channel == "wecom":
        person = await session.get(Person, row.target)
        return person.name if person is not None else labels["worker"]
    return labels["group"]
