"""那还是订吧: a booking the resident just dropped — a booking request cancelled before its summary
was confirmed (取消, 不订了), or a booking already made and cancelled (取消预约) — brought back,
instead of 没太明白 and the menu, or every question asked again from the start.

What was dropped is kept in the state store for `[elderly] undo_minutes`; the words that bring it
back are `[elderly] undo_words` (config/flows.toml)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import bookings
from bot.clock import local
from bot.flows import engine
from bot.flows.base import Context, Flow, Invalid
from bot.flows.config import flow_config
from bot.flows.elderly import CATALOG, books_after_all, when_value
from bot.flows.engine import Outcome
from bot.flows.state import DialogState, new_state, touched
from bot.when import When
from storage.models import Booking, Ticket

_FLOW = "elderly_service"


def _key(ctx: Context) -> str:
    return ctx.svc.store.key("booking_undo", ctx.openid)


def undo_minutes() -> int:
    """How long a dropped booking can be brought back (`[elderly] undo_minutes`), as said to residents."""
    return int(flow_config()["elderly"]["undo_minutes"])


def _ttl_s() -> float:
    return undo_minutes() * 60.0


async def keep_request(ctx: Context, state: DialogState) -> None:
    """Keep a booking request being cancelled (its answers and the question it was at)."""
    if state.flow == _FLOW:
        await ctx.svc.store.set(_key(ctx), {"state": state.to_json(), "at": ctx.now.isoformat()}, ttl=_ttl_s())


async def keep_booking(ctx: Context, booking: Booking) -> None:
    """Keep what a booking being cancelled was made with, to make it again at the same time."""
    ticket = await ctx.session.get(Ticket, booking.ticket_id)
    fields = dict((ticket.fields or {}) if ticket is not None else {})
    start = local(booking.start_at, ctx.svc.tz)
    address = {k: str(fields[k]) for k in ("building", "unit", "room") if fields.get(k)}
    if fields.get("address"):
        address["text"] = str(fields["address"])
    slots: dict[str, Any] = {
        "service": booking.service, "for_whom": fields.get("for_whom"), "for_name": fields.get("for_name"),
        "age": fields.get("age_said") or fields.get("age"), "address": address or None,
        "notes": fields.get("notes") or booking.notes or "", "phone": fields.get("phone"),
        "request": fields.get("request"), "start": start.isoformat(),
        # Not offered again: bound then (the prefill sees it), or declined then.
        "bind_phone": None if fields.get("phone") == ctx.profile.phone else "no",
    }
    kept = {k: v for k, v in slots.items() if v not in (None, "", {}) or k == "notes"}  # none: not asked
    await ctx.svc.store.set(_key(ctx), {"booking": kept, "at": ctx.now.isoformat()}, ttl=_ttl_s())


async def forget(ctx: Context) -> None:
    """Nothing to bring back any more (a booking was made, or something else begun)."""
    await ctx.svc.store.delete(_key(ctx))


async def bring_back(ctx: Context, flow: Flow, text: str) -> Outcome | None:
    """The dropped booking taken up again, when text says to book after all and one is kept:
    a request goes on at the question it was at (the summary: the summary), a cancelled booking
    comes back as its summary to confirm (its time asked again when it can no longer be booked).
    None otherwise."""
    if not books_after_all(text):
        return None
    kept = await ctx.svc.store.get(_key(ctx))
    if not isinstance(kept, dict):
        return None
    await forget(ctx)
    if (ctx.now - datetime.fromisoformat(str(kept["at"]))).total_seconds() > _ttl_s():
        return None  # the store's own expiry runs on its clock, not the message's
    if "state" in kept:
        state = touched(DialogState.from_json(kept["state"]), ctx.now)
        return engine.resume(ctx, flow, state, ctx.text("elderly.undo_request"))
    slots = dict(kept["booking"])
    start = datetime.fromisoformat(str(slots.pop("start")))
    spec = CATALOG.get(str(slots.get("service") or ""))
    if spec is not None:
        try:
            at = When(start.date(), start.time().replace(tzinfo=None), None)
            slots[f"when_{CATALOG.services.index(spec)}"] = when_value(spec, at, local(ctx.now, ctx.svc.tz))
        except Invalid:
            pass  # too soon now, or no longer a slot: the time is asked
    state = new_state(flow.name, flow.state(flow.steps[0].slot), ctx.now, slots)
    lead = ctx.text("elderly.undo_booking", service=str(slots.get("service") or ""),
                    when=bookings.describe(ctx.svc, start))
    return engine.advance(ctx, flow, state, lead=lead)
