"""What every flow does at the end: write the ticket, route it, and tell the resident what's next."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import Any

from bot.clock import local
from bot.flows.base import Context, Flow
from bot.privacy import hash_openid
from bot.tickets import create_ticket
from storage.models import Ticket


@dataclass(frozen=True)
class Created:
    """A ticket just written and routed: the duplicate it joined, who has it and by when."""

    ticket: Ticket
    linked_to: Ticket | None
    assignee_name: str | None
    due_at: datetime | None


def dispatch_module() -> ModuleType | None:
    """bot.dispatch when it is installed (routing is another feature's), else None."""
    try:
        return importlib.import_module("bot.dispatch")
    except ModuleNotFoundError as exc:
        if exc.name != "bot.dispatch":
            raise
        return None


async def create_and_dispatch(
    ctx: Context,
    flow: Flow,
    *,
    fields: dict[str, Any],
    summary: str,
    category: str | None = None,
    urgency: str = "normal",
    building: str | None = None,
) -> Created:
    """Write the flow's ticket and route it, in ctx.session's transaction."""
    ticket = await create_ticket(
        ctx.session, kind=flow.kind, resident=ctx.openid, fields=fields, now=ctx.now,
        tz=ctx.svc.tz, actor=f"resident:{hash_openid(ctx.openid)}", summary=summary,
        category=category, urgency=urgency, building=building,
    )
    ctx.tickets.append(ticket)
    dispatch = dispatch_module()
    if dispatch is None:
        return Created(ticket, None, None, None)
    result = await dispatch.dispatch_new(ctx.svc, ctx.session, ticket)
    return Created(result.ticket, result.linked_to, result.assignee_name, result.due_at)


def format_due(ctx: Context, due_at: datetime | None) -> str:
    """A due time as residents read it: 11月23日 12:00."""
    if due_at is None:
        return ""
    at = local(due_at, ctx.svc.tz)
    return f"{at.month}月{at.day}日 {at:%H:%M}"


def created_reply(ctx: Context, created: Created, *, head: str = "flow.created", with_due: bool = True) -> str:
    """The reply after a ticket: its number and what happens next (without the handling time
    limit when with_due is False: a booking's own time was just said, another date would confuse)."""
    lines = [ctx.text(head, number=created.ticket.number)]
    if created.linked_to is not None:
        lines.append(ctx.text("flow.next.linked", number=created.linked_to.number))
    elif created.assignee_name:
        due = format_due(ctx, created.due_at) if with_due else ""
        key = "flow.next.assigned_due" if due else "flow.next.assigned"
        role = ctx.text(f"flow.owner_role.{created.ticket.kind}") if ctx.svc.texts.has(
            f"flow.owner_role.{created.ticket.kind}") else ctx.text("flow.owner_role.default")
        lines.append(ctx.text(key, name=created.assignee_name, due=due, role=role))
    else:
        lines.append(ctx.text("flow.next.queued"))
    lines.append(ctx.text("flow.next.status_hint", number=created.ticket.number))
    return "\n".join(lines)
