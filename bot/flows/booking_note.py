"""A care note for a booking already made, said outside any request (明天那个饭 少放点盐啊, or with one
booking ahead 少放点盐 or a word about the person alone, 我腿脚不好): added to
that booking's note, its provider told as a resident's addition is (masked, escaped), and the
resident told it was passed on — it was 没太明白 and the menu."""

from __future__ import annotations

from bot import bookings
from bot.clock import local
from bot.flows.base import Context
from bot.flows.commands import normalize
from bot.flows.config import words
from bot.flows.elderly import CATALOG, care_clauses
from bot.flows.status import added_detail
from bot.when import parse_when
from storage import fastsql
from storage.models import Booking, Ticket


def _only_note(text: str, note: str) -> bool:
    """Whether text says nothing but its care note and that tells how the person is (我腿脚不好,
    她耳背 眼睛也不好; [booking_note] person_words)."""
    if not any(w in normalize(note) for w in words("booking_note", "person_words")):
        return False
    rest = normalize(text)
    for clause in note.split("，"):
        rest = rest.replace(normalize(clause), "", 1)
    return not rest


def _named(ctx: Context, ahead: list[Booking], text: str, note: str) -> Booking | None:
    """The booking text is about: the one on the day it names and of the service it names (饭 is a
    meal's), else the only one ahead when the note starts as an instruction (少放点盐) or is all
    the message says (我腿脚不好: something for the provider to know about the visit); None when
    none or several fit."""
    tz = ctx.svc.tz
    said = normalize(text)
    when = parse_when(text, local(ctx.now, tz).date())
    spec = CATALOG.find(text)
    meal = any(w in said for w in words("booking_note", "meal_words"))
    fits = [b for b in ahead
            if (when.day is None or local(b.start_at, tz).date() == when.day)
            and (spec is None or b.service == spec.name)
            and (not meal or spec is not None or b.service == "助餐")]
    if when.day is None and spec is None and not meal:
        leads = words("booking_note", "leads")
        told = normalize(note).startswith(leads) or _only_note(text, note)
        return ahead[0] if len(ahead) == 1 and told else None
    return fits[0] if len(fits) == 1 else None


async def care_note(ctx: Context, text: str) -> str | None:
    """A care note for one of the resident's bookings ahead (see the module): added, the provider
    told, and what to tell the resident; None when text is no such note."""
    said = normalize(text)
    if not said or any(w in said for w in words("booking_note", "not_words")):
        return None
    note = care_clauses(text, local(ctx.now, ctx.svc.tz).date())
    if not note:
        return None
    ahead = await bookings.upcoming(ctx.svc, ctx.session, ctx.openid)
    booking = _named(ctx, ahead, text, note) if ahead else None
    ticket = await fastsql.get(ctx.session, Ticket, booking.ticket_id) if booking is not None else None
    if booking is None or ticket is None:
        return None
    note = note.removeprefix(booking.service).lstrip("的") or note  # 明天助餐少放盐: 少放盐
    bookings.add_note(ctx.svc, ticket, booking, note)
    await added_detail(ctx, f"补充一下{ticket.number}：{ctx.text('booking.summary_notes', notes=note)}")
    return ctx.text("booking.note_added", note=note, who=booking.for_name or ctx.text("booking.for_self"),
                    when=bookings.describe(ctx.svc, booking.start_at), service=booking.service)
