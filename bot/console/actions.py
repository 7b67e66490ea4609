"""The console's ticket actions (forms on the ticket page): answer, transition, reassign, note.

Each posts a CSRF-checked form, calls bot.staff_actions, and redirects back with a message.
"""

from __future__ import annotations

from aiohttp import web

from bot import staff_actions, tickets
from bot.console import auth
from bot.console.auth import ConsoleUser
from bot.console.common import back, page, refuse, services

routes = web.RouteTableDef()


def _here(number: str) -> str:
    return f"/console/tickets/{number}"


@routes.post("/console/tickets/{number}/reply")
@page("staff")
async def reply(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Answer the resident; says whether it goes as a customer-service or a template message.
    to=all (a ticket with linked reports): every resident who reported the problem, refused as
    stale when the ticket's status, owner or number of reporters is not what the page showed."""
    svc = services(request)
    number = request.match_info["number"]
    form = await request.post()
    text = str(form.get("text", ""))
    try:
        if form.get("to") == "all":
            seen = None
            if "seen_status" in form:
                seen = staff_actions.Seen(str(form["seen_status"]), str(form.get("seen_assignee", "")) or None)
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
        await auth.keep_draft(svc, user, number, text)
        return await back(request, user, _here(number), str(exc), "error")
    await auth.mark_sent(svc, user, number)  # the page it comes back to drops the browser's draft
    return await back(request, user, _here(number), said)


@routes.post("/console/tickets/{number}/transition")
@page("staff")
async def transition(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Change the ticket's status (assign/reassign included) through dispatch.apply_action."""
    svc = services(request)
    number = request.match_info["number"]
    form = await request.post()
    action = str(form.get("action", ""))
    assignee = str(form.get("assignee", "")) or None
    seen = None  # what the page showed: refused if another clerk changed it meanwhile
    if "seen_status" in form:
        seen = staff_actions.Seen(str(form["seen_status"]), str(form.get("seen_assignee", "")) or None)
    try:
        ticket = await staff_actions.staff_transition(
            svc, number, action, user.username, assignee=assignee, note=str(form.get("note", "")), seen=seen,
        )
    except LookupError as exc:
        return await refuse(request, 404, str(exc))
    except (tickets.TransitionError, ValueError) as exc:
        return await back(request, user, _here(number), str(exc), "error")
    done = svc.texts.get(
        "console.flash.transition", action=staff_actions.label(svc, "action", action),
        status=staff_actions.label(svc, "status", ticket.status),
    )
    return await back(request, user, _here(number), done)


@routes.post("/console/tickets/{number}/note")
@page("staff")
async def note(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Add an internal note (never shown to the resident)."""
    svc = services(request)
    number = request.match_info["number"]
    form = await request.post()
    try:
        await staff_actions.add_note(svc, number, str(form.get("text", "")), user.username)
    except LookupError as exc:
        return await refuse(request, 404, str(exc))
    except ValueError as exc:
        return await back(request, user, _here(number), str(exc), "error")
    return await back(request, user, _here(number), svc.texts.get("console.flash.note"))
