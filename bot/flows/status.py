"""查询进度: the resident's open tickets (status, who has them, by when), or one by its number."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.flows.base import Context
from bot.flows.commands import normalize
from bot.flows.finish import format_due
from bot.intents.classifier import get_classifier
from bot.tickets import ACTIVE, get_by_number
from storage.models import Person, Ticket

NUMBER = re.compile(r"(?<!\d)(\d{8}-\d{4})(?!\d)")
LIST_LIMIT = 5
BOOKED_KINDS = ("elderly_service",)  # the booked time is in the summary: no "done by" date beside it


# A ticket named by its last digits (0001怎么样了, 工单0001, 查一下12号工单): the digits, and what
# follows them (nothing, or a question about progress).
_SHORT = re.compile(
    r"^(?:查一?下|查询|请问)?(?:我的)?(?P<noun>工单|单号|编号)?(?:号)?(?P<seq>\d{1,4})(?:号)?(?:工单|单)?(?:的)?(?P<rest>.*)$"
)


def digits_asked(text: str) -> str | None:
    """The last digits of a ticket a message asks about and nothing else ('0001' for 0001怎么样了)."""
    found = _SHORT.match(normalize(text))
    if found is None or (not found.group("noun") and len(found.group("seq")) < 3):
        return None  # 12 alone is no ticket; 工单12 is
    rest = found.group("rest")
    if rest and not get_classifier().terms(rest) & {"@progress", "@status_question"}:
        return None
    return found.group("seq").zfill(4)


async def short_reply(ctx: Context, text: str) -> str | None:
    """The status of the resident's own ticket the message names by its last digits (the newest,
    when several days' numbers end alike); None when the message is not such a question."""
    seq = digits_asked(text)
    if seq is None:
        return None
    number = await ctx.session.scalar(
        select(Ticket.number).where(Ticket.resident == ctx.openid, Ticket.number.like(f"%-{seq}"))
        .order_by(Ticket.id.desc()).limit(1)
    )
    if number is None:
        return "\n".join([ctx.text("status.not_found_digits", digits=seq), await status_reply(ctx, None)])
    return await status_reply(ctx, number)


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
