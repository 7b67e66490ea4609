"""好的 准时到 · 一定到 · 知道了 到时见 said to a booking's or a volunteer activity's reminder: an
acknowledgement fitting what was reminded of (好的，到时见 with its time), where it got 不客气 as if
it were thanks, or 好的，有需要随时找我. The words are `[reminded] attend` in config/flows.toml."""

from __future__ import annotations

import re

from bot import activities, bookings
from bot.flows.base import Context
from bot.flows.booking_change import reminded_booking
from bot.flows.commands import normalize
from bot.flows.config import words

_SPACES = re.compile(r"[\s,，。.!！~～]+")


def attends(text: str) -> bool:
    """Whether text says only that the resident will be there, or has taken the reminder in
    (好的 准时到, 一定到, 知道了 谢谢提醒), with at least one word of attending or noting."""
    rest = _SPACES.sub("", normalize(text))
    said = False
    for word in sorted((normalize(w) for w in words("reminded", "attend")), key=len, reverse=True):
        if word and word in rest:
            rest, said = rest.replace(word, ""), True
    for word in sorted((normalize(w) for w in words("reminded", "around")), key=len, reverse=True):
        rest = rest.replace(word, "") if word else rest
    return said and not rest


async def answer(ctx: Context, text: str) -> str | None:
    """The acknowledgement of a reminder's 好的 准时到 (see the module); None when text is no such
    answer or no booking or activity ahead was reminded of lately."""
    if not attends(text):
        return None
    booking = await reminded_booking(ctx)
    if booking is not None:
        who = booking.for_name or ctx.text("booking.for_self")
        return ctx.text("reminded.booking", service=booking.service, who=who,
                        when=bookings.describe(ctx.svc, booking.start_at))
    activity = await activities.reminded(ctx)
    if activity is not None:
        return ctx.text("reminded.activity", title=activity.title, when=activities.when_text(ctx.svc, activity))
    return None
