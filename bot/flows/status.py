"""查询进度: the resident's open tickets (status, who has them, by when), or one by its number."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.flows.base import Context
from bot.flows.finish import format_due
from bot.tickets import ACTIVE, get_by_number
from storage.models import Person, Ticket

NUMBER = re.compile(r"(?<!\d)(\d{8}-\d{4})(?!\d)")
LIST_LIMIT = 5
BOOKED_KINDS = ("elderly_service",)  # the booked time is in the summary: no "done by" date beside it


def number_in(text: str) -> str | None:
    """A ticket number written in text (20261123-0007), if any."""
    m = NUMBER.search(text.replace("－", "-").replace("—", "-"))
    return m.group(1) if m else None


async def _line(ctx: Context, ticket: Ticket) -> str:
    status = ctx.text(f"status.labels.{ticket.status}")
    kind = ctx.text(f"flow.titles.{ticket.kind}")
    line = ctx.text("status.line", number=ticket.number, kind=kind, status=status, summary=(ticket.summary or "")[:40])
    if ticket.assignee:
        person = await ctx.session.get(Person, ticket.assignee)
        if person is not None:
            line += ctx.text("status.who", name=person.name)
    if ticket.due_at is not None and ticket.status in ACTIVE and ticket.kind not in BOOKED_KINDS:
        line += ctx.text("status.due", due=format_due(ctx, ticket.due_at))
    return line


async def status_reply(ctx: Context, number: str | None) -> str:
    """The answer to a status question, about one ticket or all open ones."""
    if number:
        ticket = await get_by_number(ctx.session, number)
        if ticket is None or ticket.resident != ctx.openid:
            return ctx.text("status.not_found", number=number)
        return await _line(ctx, ticket)
    rows = await ctx.session.execute(
        select(Ticket).where(Ticket.resident == ctx.openid, Ticket.status.in_(ACTIVE))
        .order_by(Ticket.id.desc()).limit(LIST_LIMIT + 1)
    )
    tickets = list(rows.scalars())
    if not tickets:
        return ctx.text("status.none")
    lines = [await _line(ctx, t) for t in tickets[:LIST_LIMIT]]
    head = ctx.text("status.head", count=len(lines))
    tail = ctx.text("status.more") if len(tickets) > LIST_LIMIT else ctx.text("status.one_hint")
    return "\n".join([head, *lines, tail])
