"""取消预约 / 改时间: a resident cancels or moves one of their bookings, in their own words.

bot.dialog begins these (begin) for a message bot.flows.elderly.booking_request reads as such (把助餐
取消了吧, 取消我的预约, 我想改个时间, 改到后天中午 …), before the classifier. The resident's upcoming
bookings (of the service named, when one is) are kept in the dialog: with one, the confirmation
names it (service, time, person); with several, they are listed and the resident picks one by its
number or its service (as bot/flows/withdraw.py lists tickets). A move asks the new time (a day
alone keeps the time of day) and checks it against the service's hours and capacity as it is
answered. 否 at the confirmation keeps the booking as it is.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import bindparam, literal, select

from bot import bookings
from bot.bookings import SlotCheck
from bot.clock import local
from bot.flows.base import Answer, Context, Flow, Invalid, Step
from bot.flows.commands import normalize
from bot.flows.elderly import (
    CATALOG, alternatives_text, as_when, booking_request, moved_when, when_text, when_value,
)
from bot.flows.engine import Outcome, start
from bot.flows.registry import register
from bot.intents.normalize import simplified
from bot.privacy import hash_openid
from bot.tickets import ACTIVE
from bot.when import When, cn_number, parse_when
from storage import fastsql
from storage.fastsql import Prepared
from storage.models import Booking, Reminder, Ticket

LIST_LIMIT = 5  # upcoming bookings listed to pick from
REMINDED_WITHIN = timedelta(hours=3)  # a bare 取消 this soon after a booking's reminder is about it


def _entry(ctx: Context, booking: Booking) -> dict[str, Any]:
    """A booking as the dialog keeps it: its id, and how it is named to the resident."""
    text = f"{booking.service} {bookings.describe(ctx.svc, booking.start_at)}"
    if booking.for_name:
        text += f"（{booking.for_name}）"
    if booking.status == "waitlist":
        text += ctx.text("elderly.listed_waitlist")
    return {"id": booking.id, "service": booking.service, "start": booking.start_at.isoformat(), "text": text}


def _listing(slots: dict[str, Any]) -> str:
    return "\n".join(f"{i}. {e['text']}" for i, e in enumerate(slots.get("listed") or (), 1))


def chosen(slots: dict[str, Any]) -> dict[str, Any] | None:
    """The booking picked: the only one listed, the one of the number, or the one of the service."""
    listed = list(slots.get("listed") or ())
    pick = slots.get("pick")
    if pick is None:
        return listed[0] if len(listed) == 1 else None
    if isinstance(pick, int):
        return listed[pick - 1] if 1 <= pick <= len(listed) else None
    if isinstance(pick, dict):  # a day (明天的, 周二那个): the one booking listed on it
        same = [e for e in listed if str(pick.get("day") or "-") in e["text"]]
    else:
        same = [e for e in listed if e["service"] == pick]
    return same[0] if len(same) == 1 else None


# A day alone as the pick (明天的, 周二那个, 24号那天的饭): nothing else said (我想把明天的改成晚上 is more).
_DAY_ALONE = re.compile(r"^(?:是|就)?(?P<day>.{1,6}?)(?:的|那个|那一个|那次|那天|那顿)*(?:饭|餐|预约|那个)?(?:吧|呀|啊)?$")


def _day_named(text: str, today: date) -> dict[str, str] | None:
    """The day a booking is named by (明天的, 周二那个, 24号的) as a pick, else None."""
    day = parse_when(text, today).day
    return {"day": bookings.day_text(day)} if day is not None else None


_PICK = re.compile(r"^(?:第|预约)?(?P<n>[0-9]|[一二三四五六七八九])(?:个|项|条|号)?(?:预约)?(?:吧|的)?$")
_NUMBERED = re.compile(r"(?:第|预约)(?P<n>[0-9]|[一二三四五六七八九])(?:个|项|条)?")  # 取消第二个, 取消预约2


def _pick(answer: Answer) -> int | str | dict[str, str]:
    """Which of the listed bookings: its number (2, 第二个), its service (助餐) or its day (明天的)."""
    found = _PICK.match(normalize(answer.text))
    if found is not None:
        return cn_number(found.group("n")) or 0
    spec = CATALOG.find(answer.text)
    if spec is not None:
        return spec.name
    alone = _DAY_ALONE.match(normalize(answer.text))
    day = _day_named(alone.group("day"), answer.now.date()) if alone is not None else None
    if day is None:
        raise Invalid("elderly.hint.pick")
    return day


async def _pick_check(ctx: Context, slots: dict[str, Any], value: Any) -> str | None:
    """A number that is not on the list, or a service with none or several there, is asked again."""
    return None if chosen({**slots, "pick": value}) is not None else ctx.text("elderly.hint.pick")


def _pick_step(question: str) -> Step:
    return Step(question, parse=_pick, check=_pick_check, label="elderly.labels.booking",
                ask_if=lambda slots: len(slots.get("listed") or ()) > 1,
                show=lambda v: f"第{v}个" if isinstance(v, int) else str(v.get("day") if isinstance(v, dict) else v or ""))


def _listed_values(ctx: Context, slots: dict[str, Any]) -> dict[str, str]:
    """{count}, {bookings} (numbered) and {booking}: the one picked, as the questions name them."""
    picked = chosen(slots)
    return {"count": str(len(slots.get("listed") or ())), "bookings": _listing(slots),
            "booking": picked["text"] if picked is not None else ctx.text("elderly.pick_unknown")}


async def _own(ctx: Context, entry: dict[str, Any] | None) -> Booking | None:
    """The resident's booking an entry names, while it is still ahead (not cancelled meanwhile)."""
    if entry is None:
        return None
    booking = await ctx.session.get(Booking, int(entry["id"]))
    if (booking is None or booking.resident != ctx.openid or booking.status not in bookings.ACTIVE
            or booking.start_at <= ctx.now):
        return None
    return booking


@register
class BookingCancel(Flow):
    """取消预约: one of the resident's bookings cancelled after a confirmation naming it."""

    name = "booking_cancel"
    title = "elderly.cancel_title"
    confirm_prompt = "elderly.cancel_confirm"
    declined = "elderly.cancel_kept"
    confirm_words = ("取消", "取消预约", "确认取消", "取消吧", "取消了吧", "取消掉")  # 要取消这个预约吗？ 取消

    pick = _pick_step("elderly.ask.pick_cancel")

    def opening(self, slots: dict[str, Any], text: str) -> dict[str, Any]:
        """The bookings listed and the one picked, as begin() found them."""
        return {k: slots[k] for k in ("listed", "pick") if k in slots}

    def prompt_values(self, ctx: Context, slots: dict[str, Any]) -> dict[str, str]:
        """The bookings listed and the one picked."""
        return _listed_values(ctx, slots)

    async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
        """Cancel the booking and its ticket (the provider is told; the resident only here)."""
        booking = await _own(ctx, chosen(slots))
        if booking is None:
            return ctx.text("elderly.pick_gone")
        actor = f"resident:{hash_openid(ctx.openid)}"
        from bot.flows.booking_undo import keep_booking, undo_minutes  # it reads this module's flows' slots

        await keep_booking(ctx, booking)  # 那还是订吧 makes it again
        await bookings.cancel_booking(ctx.svc, ctx.session, booking, actor)
        await _cancel_ticket(ctx, booking, actor)
        return ctx.text("elderly.cancelled", service=booking.service, when=bookings.describe(ctx.svc, booking.start_at),
                        minutes=undo_minutes())


def _new_time(answer: Answer) -> dict[str, Any]:
    """A new date and/or time for a booking, as said (completed from the booking's own: _moved)."""
    when = parse_when(answer.text.strip(), answer.now.date())
    if when.empty:
        raise Invalid("elderly.hint.new_time")
    return _said_time(when.day, when.at, when.part)


def _said_time(day: date | None, at: time | None, part: str | None) -> dict[str, Any]:
    return {"day": day.isoformat() if day else None, "at": at.strftime("%H:%M") if at else None,
            "part": part if at is None else None}


def _moved(ctx: Context, entry: dict[str, Any], said: dict[str, Any]) -> When:
    """The booking's new time: what was said, completed by the booking's own day (改到下午3点) or
    time of day (改到后天)."""
    was = local(datetime.fromisoformat(entry["start"]), ctx.svc.tz)
    new = When(date.fromisoformat(said["day"]) if said.get("day") else None,
               time.fromisoformat(said["at"]) if said.get("at") else None, said.get("part"))
    return moved_when({"day": was.date().isoformat(), "at": f"{was:%H:%M}"}, new)


async def _move_checked(ctx: Context, slots: dict[str, Any], said: Any) -> tuple[Booking, SlotCheck] | str:
    """The booking picked and its new time's slot, checked against its service's hours, lead time
    and capacity; or why it cannot move (a full slot: with the nearest free times)."""
    entry = chosen(slots)
    booking = await _own(ctx, entry)
    spec = CATALOG.get(booking.service) if booking is not None else None
    if booking is None or spec is None or entry is None or not isinstance(said, dict):
        return ctx.text("elderly.pick_gone")
    try:
        wanted = when_value(spec, _moved(ctx, entry, said), local(ctx.now, ctx.svc.tz))
    except Invalid as exc:
        return ctx.text("elderly.change_refused_why", service=spec.name, why=ctx.text(exc.hint, **exc.values))
    found = await bookings.check_slot(ctx.svc, ctx.session, spec, as_when(wanted), exclude=booking.id)
    if not found.ok or found.start is None:
        return "\n".join([ctx.text("elderly.change_refused", service=spec.name),
                          alternatives_text(ctx, found.alternatives)])
    return booking, found


async def _refused_time(ctx: Context, slots: dict[str, Any], value: Any) -> str | None:
    """The new time question's check: why the booking cannot move then, or None."""
    checked = await _move_checked(ctx, slots, value)
    return checked if isinstance(checked, str) else None


def _cancel_instead(ctx: Context, slots: dict[str, Any], text: str) -> Outcome | None:
    """取消预约 (预约不要了, 不去了) said while a booking's move is asked or confirmed: the booking
    itself is meant, as a desk clerk would take it, so the move is dropped and the booking's
    cancellation asked (否 there keeps it at its time). None when text asks no cancellation."""
    asked = booking_request(text)
    if asked is None or asked[0] != "cancel":
        return None
    kept = {k: slots[k] for k in ("listed", "pick") if k in slots}
    return start(ctx, BookingCancel(), kept, text, lead=ctx.text("elderly.change_dropped"))


@register
class BookingChange(Flow):
    """改时间: one of the resident's bookings moved to a new time after a confirmation naming both."""

    name = "booking_change"
    title = "elderly.change_title"
    confirm_prompt = "elderly.change_confirm"
    declined = "elderly.change_kept"

    pick = _pick_step("elderly.ask.pick_change")
    new_time = Step("elderly.ask.new_time", parse=_new_time, check=_refused_time, label="elderly.labels.new_time",
                    edit_words=("改时间", "时间不对", "时间错了"))

    def opening(self, slots: dict[str, Any], text: str) -> dict[str, Any]:
        """The bookings listed, the one picked and the new time, as begin() found them."""
        return {k: slots[k] for k in ("listed", "pick", "new_time") if k in slots}

    async def midway(
        self, ctx: Context, slots: dict[str, Any], step: Step, text: str
    ) -> tuple[dict[str, Any], str] | Outcome | None:
        """取消预约 while which booking or its new time is asked: its cancellation (_cancel_instead)."""
        return _cancel_instead(ctx, slots, text)

    async def at_summary(self, ctx: Context, slots: dict[str, Any], text: str) -> Outcome | None:
        """取消预约 at 要把这个预约改到…吗: its cancellation asked instead (_cancel_instead)."""
        return _cancel_instead(ctx, slots, text)

    def prompt_values(self, ctx: Context, slots: dict[str, Any]) -> dict[str, str]:
        """The bookings listed, the one picked, and {new}: its new time in full."""
        values = _listed_values(ctx, slots)
        entry, said = chosen(slots), slots.get("new_time")
        if entry is not None and isinstance(said, dict):
            new = _moved(ctx, entry, said)
            values["new"] = when_text(new.day, new.at, new.part) if new.day is not None else ""
        return values

    async def finish(self, ctx: Context, slots: dict[str, Any]) -> str:
        """Move the booking (its reminders, its ticket's time and 办结 limit; the provider told), or
        say why it cannot move, with the nearest free times."""
        checked = await _move_checked(ctx, slots, slots.get("new_time"))
        if isinstance(checked, str):
            return checked
        booking, found = checked
        assert found.start is not None
        moved = await bookings.change_booking(ctx.svc, ctx.session, booking, found.start,
                                              f"resident:{hash_openid(ctx.openid)}")
        if not moved.ok:
            return "\n".join([ctx.text("elderly.change_refused", service=booking.service),
                              alternatives_text(ctx, moved.alternatives)])
        return ctx.text("elderly.changed", service=booking.service, when=bookings.describe(ctx.svc, found.start))


async def _cancel_ticket(ctx: Context, booking: Booking, actor: str) -> None:
    """The booking's ticket cancelled as the resident's own (as 撤销工单: answered in the chat, no
    push to them; the provider is told)."""
    from bot.flows.finish import dispatch_module
    from bot.tickets import TRANSITIONS, transition
    from storage.models import Ticket

    ticket = await ctx.session.get(Ticket, booking.ticket_id)
    if ticket is None or ticket.status not in TRANSITIONS["cancel"].sources:
        return
    dispatch = dispatch_module()
    note = ctx.text("elderly.cancel_note")
    if dispatch is not None:
        await dispatch.apply_action(ctx.svc, ctx.session, ticket, "cancel", actor, note=note, data={"by": "resident"})
    else:
        await transition(ctx.session, ticket, "cancel", actor, ctx.now, note=note)


async def begin(ctx: Context, text: str) -> Outcome | None:
    """The answer to a request to cancel or move a booking (booking_request), outside any flow:
    none ahead is said at once; else the confirmation, or the list to pick from, or the new time
    asked. None when text is no such request."""
    asked = booking_request(text)
    if asked is None:
        return None
    kind, said_time = asked
    ahead = await bookings.upcoming(ctx.svc, ctx.session, ctx.openid)
    if not ahead and kind == "change":
        session = await _mediation_session(ctx)
        if session is not None:  # 改到周六 to a mediation's reminder: not "no elderly-service booking"
            return Outcome(ctx.text("elderly.mediation_moved", number=session.number), None)
    if not ahead:
        return Outcome(ctx.text("elderly.no_booking"), None)
    said = simplified(text)  # 禮拜一那個陪診: the service and the day read as 礼拜一那个陪诊
    spec = CATALOG.find(said)
    named = [b for b in ahead if spec is not None and b.service == spec.name]
    slots: dict[str, Any] = {"listed": [_entry(ctx, b) for b in (named or ahead)[:LIST_LIMIT]]}
    number = _NUMBERED.search(normalize(text))
    if number is not None and chosen({**slots, "pick": cn_number(number.group("n"))}) is not None:
        slots["pick"] = cn_number(number.group("n"))
    day = _day_named(said, local(ctx.now, ctx.svc.tz).date()) if kind == "cancel" else None
    if "pick" not in slots and day is not None and chosen({**slots, "pick": day}) is not None:
        slots["pick"] = day  # 明天的饭不要了: the one booked for tomorrow
    lead = ""
    if kind == "change" and said_time:
        when = parse_when(said_time, local(ctx.now, ctx.svc.tz).date())
        slots["new_time"] = _said_time(when.day, when.at, when.part)
        refused = await _refused_time(ctx, slots, slots["new_time"]) if chosen(slots) is not None else None
        if refused is not None:  # said with the question, as the question would have said it
            lead = refused
            del slots["new_time"]
    flow = BookingChange() if kind == "change" else BookingCancel()
    return start(ctx, flow, slots, text, lead=lead)


async def _mediation_session(ctx: Context) -> Ticket | None:
    """The resident's newest open mediation with a session time, whose time a 改到… may be about."""
    rows = await ctx.session.scalars(
        select(Ticket).where(Ticket.resident == ctx.openid, Ticket.kind == "mediation", Ticket.status.in_(ACTIVE))
        .order_by(Ticket.id.desc()).limit(5))
    return next((t for t in rows if (t.fields or {}).get("session_time")), None)


_REMINDERS = Reminder.__table__
# Built once and run on the driver (storage.fastsql): a bare 取消 ends every conversation, so this
# runs often (ix_reminders_target_kind), and through the session it opened one for most of them.
_REMINDED = Prepared(
    select(_REMINDERS.c.cause_id).where(
        _REMINDERS.c.target == bindparam("target"),
        _REMINDERS.c.kind.in_([literal(kind) for kind in bookings.REMINDER_KINDS]),  # no expanding IN
        _REMINDERS.c.cause_type == "booking", _REMINDERS.c.state == "done",
        _REMINDERS.c.done_at >= bindparam("since"),
    ).order_by(_REMINDERS.c.done_at.desc()).limit(1)
)


# What an older resident answers a reminder with when they no longer want it (不要了, 明天不去了,
# 来不了了): outside any request, soon after a booking's reminder, a cancellation to confirm.
_DROP_ALONE = re.compile(
    r"^(?:那|那就|那我|我|俺|我们|今天|明天|后天|这次|这回)*就?"
    r"(?:不要了|不需要了|不用送了|不用来了|别送了|别来了|不吃了|不去了|不来了|去不了了?|来不了了?|不做了)"
    r"(?:吧|啦|呀|啊|哈)?(?:谢谢|谢谢你|谢谢您|谢谢你们|谢了|麻烦了|麻烦你了)?$"  # 不要了 谢谢: still no longer wanted
)


def drops_reminded(text: str) -> bool:
    """Whether text alone says the resident no longer wants what they were reminded of (不要了)."""
    return bool(_DROP_ALONE.match(normalize(text)))


async def reminded_booking(ctx: Context) -> Booking | None:
    """The booking of a reminder that reached the resident within REMINDED_WITHIN, while it is
    still ahead; None otherwise."""
    found = await fastsql.run(ctx.tx, _REMINDED, {"target": ctx.openid, "since": ctx.now - REMINDED_WITHIN})
    return await _own(ctx, {"id": found.rows[0]["cause_id"]}) if found.rows else None


async def reminded_cancel(ctx: Context) -> Outcome | None:
    """A bare 取消 outside any request, soon after a booking's reminder reached the resident: the
    confirmation to cancel that booking (刚才提醒过您这个预约), instead of "nothing to cancel".
    None when no reminder was sent lately, or its booking is no longer ahead."""
    booking = await reminded_booking(ctx)
    if booking is None:
        return None
    return start(ctx, BookingCancel(), {"listed": [_entry(ctx, booking)]}, lead=ctx.text("elderly.reminded"))
