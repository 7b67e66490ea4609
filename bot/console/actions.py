"""The console's ticket actions (forms on the ticket page): answer, transition, reassign, note.

Each posts a CSRF-checked form, calls bot.staff_actions, and redirects back with a message.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot import staff_actions, tickets
from bot.clock import local
from bot.console import auth, queries
from bot.console.auth import ConsoleUser
from bot.console.common import back, claim_form, page, refuse, release_form, services
from bot.privacy import mask_phone

routes = web.RouteTableDef()


def _here(number: str) -> str:
    return f"/console/tickets/{number}"


def _seen(form: Any) -> staff_actions.Seen:
    """What the page showed of the ticket (status, owner), as long as such values can be."""
    return staff_actions.Seen(str(form["seen_status"])[:16], str(form.get("seen_assignee", ""))[:64] or None)


async def _posted(request: web.Request, user: ConsoleUser) -> tuple[str, Any]:
    """The ticket number and the form of an action on it, sent for the first time: a form sent
    before (a double click, a page sent again) goes back to the ticket page, which says so, and
    nothing is done twice."""
    number = request.match_info["number"]
    form = await request.post()
    if not await claim_form(request, user, form):
        await auth.add_flash(services(request), user, services(request).texts.get("console.flash.resent"))
        raise web.HTTPSeeOther(_here(number))
    return number, form


async def _answered_meanwhile(request: web.Request, user: ConsoleUser, number: str, form: Any) -> str | None:
    """Why an answer is held back: a colleague answered the ticket's resident (alone, or with every
    reporter of the job) after the page the clerk wrote on was shown (its seen_answer), in words;
    None when nobody did."""
    shown = str(form.get("seen_answer", ""))
    if not shown.isdigit() or len(shown) > 18:  # not a message id this page could have shown
        return None
    svc = services(request)
    async with svc.sessions() as session:
        ticket = await tickets.get_by_number(session, number)
        newer = await queries.answer_since(session, ticket, int(shown), user.username) if ticket else None
        if newer is None:
            return None
        who = (await queries.names(session)).get(newer.author or "", newer.author or "")
    text = (newer.content or "").replace("\n", " ")
    return svc.texts.get("console.errors.answered_meanwhile", who=who, at=local(newer.created_at, svc.tz).strftime("%H:%M"),
                         text=text if len(text) <= 60 else text[:60] + "…")


@routes.post("/console/tickets/{number}/reply")
@page("staff")
async def reply(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Answer the resident; says whether it goes as a customer-service or a template message.
    to=all (a ticket with linked reports): every resident who reported the problem, refused as
    stale when the ticket's status, owner or number of reporters is not what the page showed."""
    svc = services(request)
    number, form = await _posted(request, user)
    text = str(form.get("text", ""))
    held = await _answered_meanwhile(request, user, number, form)  # to one or to all reporters
    if held is not None:  # the clerk reads the colleague's answer first; a second press sends hers
        await staff_actions.record_refusal(svc, user.username, "reply_all" if form.get("to") == "all" else "reply",
                                           number, "answered_meanwhile", mask_phone(held))
        await release_form(request, user, form)
        await auth.keep_draft(svc, user, number, text)
        return await back(request, user, _here(number), held, "error")
    try:
        if form.get("to") == "all":
            seen = None
            if "seen_status" in form:
                seen = _seen(form)
            shown = str(form.get("seen_reporters", ""))
            done = await staff_actions.staff_reply_all(
                svc, number, text, user.username, seen=seen, reporters=int(shown) if shown.isdigit() else None,
            )
            said = svc.texts.get("console.flash.reply_all", reached=done.reached, custom=done.custom,
                                 template=done.template, missed=done.missed)
        else:
            via = await staff_actions.staff_reply(svc, number, text, user.username)
            said = svc.texts.get(f"console.flash.reply_{via}")
    except LookupError as exc:
        return await refuse(request, 404, str(exc))
    except ValueError as exc:  # ActionRefused, StaleView, ResidentUnreachable: the typed text comes back in the box
        await release_form(request, user, form)
        await auth.keep_draft(svc, user, number, text)
        return await back(request, user, _here(number), str(exc), "error")
    await auth.mark_sent(svc, user, number)  # the page it comes back to drops the browser's draft
    return await back(request, user, _here(number), said)


@routes.post("/console/tickets/{number}/transition")
@page("staff")
async def transition(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Change the ticket's status (assign/reassign included) through dispatch.apply_action."""
    svc = services(request)
    number, form = await _posted(request, user)
    action = str(form.get("action", ""))
    assignee = str(form.get("assignee", "")) or None
    seen = None  # what the page showed: refused if another clerk changed it meanwhile
    if "seen_status" in form:
        seen = _seen(form)
    try:
        done = await staff_actions.staff_transition_told(
            svc, number, action, user.username, assignee=assignee, note=str(form.get("note", "")), seen=seen,
            reason_required=True,
        )
    except LookupError as exc:
        return await refuse(request, 404, str(exc))
    except (tickets.TransitionError, ValueError) as exc:
        await release_form(request, user, form)
        return await back(request, user, _here(number), str(exc), "error")
    status = staff_actions.label(svc, "status", done.ticket.status)
    said = svc.texts.get("console.flash.transition", action=staff_actions.label(svc, "action", action), status=status)
    if done.owner_told or (action == "assign" and done.ticket.assignee):
        async with svc.sessions() as session:
            names = await queries.names(session)
        if action == "assign" and done.ticket.assignee:  # to whom, as the page's history says it
            key = "console.flash.reassigned" if form.get("seen_assignee") else "console.flash.assigned"
            said = svc.texts.get(key, name=names.get(done.ticket.assignee, done.ticket.assignee), status=status)
        if done.owner_told:  # the owner who held the job was pushed that it ended: the clerk needn't call
            said += svc.texts.get("console.flash.owner_told", name=names.get(done.owner_told, done.owner_told))
    return await back(request, user, _here(number), said)


@routes.post("/console/tickets/{number}/note")
@page("staff")
async def note(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Add an internal note (never shown to the resident)."""
    svc = services(request)
    number, form = await _posted(request, user)
    try:
        await staff_actions.add_note(svc, number, str(form.get("text", "")), user.username)
    except LookupError as exc:
        return await refuse(request, 404, str(exc))
    except ValueError as exc:
        await release_form(request, user, form)
        return await back(request, user, _here(number), str(exc), "error")
    return await back(request, user, _here(number), svc.texts.get("console.flash.note"))
