"""A question about a booking already made, asked outside any request (几点来着, 谁来送啊, 多少钱,
我订了啥 — often the answer to a booking's reminder): the resident's bookings ahead, each with its
time, person and who provides it (and for 多少钱 the service's fee line). It was 没太明白 and the
menu. The questions are config/flows.toml [booking_asked]; the whole message must be one."""

from __future__ import annotations

import re

from bot import bookings
from bot.flows.base import Context
from bot.flows.commands import normalize
from bot.flows.config import words
from bot.flows.elderly import CATALOG
from bot.flows.booking_change import LIST_LIMIT
from bot.flows.status import status_line
from storage.models import Ticket

LONGEST = 14  # characters of a question about a booking; a longer message says something else
_LEAD = re.compile(r"^(?:请问|问一下|我想问一下|我想问问|那个|这个|喂)+")
_PARTICLES = re.compile(r"[啊吧呀哈嘛呢哦啦]+$")


def topic(text: str) -> str | None:
    """What a short question asks of the booking ahead: "what", "when", "who", "cost" or "move"
    (能晚点送吗: another time wished), the first of them it holds; None when text is none of them."""
    said = _PARTICLES.sub("", _LEAD.sub("", normalize(text).replace("啥", "什么")))
    if not said or len(said) > LONGEST:
        return None
    for name in ("what", "when", "who", "cost", "move"):
        if any(normalize(w).replace("啥", "什么") in said for w in words("booking_asked", name)):
            return name
    return None


async def answer(ctx: Context, text: str) -> str | None:
    """The answer to a question about the resident's bookings ahead (see the module); None when text
    is no such question, or (but for 我订了啥, told there is none) the resident has none ahead."""
    asked = topic(text)
    if asked is None:
        return None
    ahead = await bookings.upcoming(ctx.svc, ctx.session, ctx.openid)
    spec = CATALOG.find(text)
    named = [b for b in ahead if spec is not None and b.service == spec.name] or ahead
    if not named:
        return ctx.text("elderly.no_booking") if asked == "what" else None
    lines = []
    for booking in named[:LIST_LIMIT]:
        ticket = await ctx.session.get(Ticket, booking.ticket_id)
        if ticket is not None:
            lines.append(await status_line(ctx, ticket))
    said = [ctx.text("booking_asked.head", count=len(lines)), *lines]
    if asked == "cost":
        served = {b.service: CATALOG.get(b.service) for b in named[:LIST_LIMIT]}
        said += [ctx.text("elderly.fee", service=name, fee=found.fee) for name, found in served.items()
                 if found is not None and found.fee]
    said.append(ctx.text("booking_asked.how_to_move" if asked == "move" else "booking_asked.how_to_change"))
    return "\n".join(said)
