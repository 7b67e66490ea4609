"""Elderly-service bookings: slot checks against hours and capacity, creation, cancel/change,
the waitlist, and the booking reminders (the evening before and shortly before).

Capacity holds across processes: `hold_slot` takes a transaction-scoped lock per service and
local day (pg_advisory_xact_lock on PostgreSQL; on SQLite a write that takes the database's
single write lock), then counts the booked rows. Until the caller's transaction ends nobody else
can count or book that day, so the ticket and the booking that follow commit with the check.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import reminders, schedule, tickets
from bot.outbox import push_resident, push_worker
from bot.service_catalog import CN_WEEKDAYS, ServiceSpec, catalog_of
from bot.services import Services
from bot.when import When
from storage import fastsql
from storage.fastsql import Prepared
from storage.models import Booking, Reminder, Ticket

ACTIVE = ("booked", "waitlist")
REMINDER_KINDS = ("booking_evening", "booking_hour")
# An evening-before reminder due this soon after the booking was made, moved or confirmed off the
# waitlist tells nothing the resident was not just told (booked at 18:50: 明天… again at 19:00).
JUST_TOLD = timedelta(hours=2)

# Fixed statements (storage.fastsql): in a message's transaction they run on the driver itself,
# not through the ORM (the elderly-service 确认 sent seven statements through it).
_BOOKINGS = Booking.__table__
_BOOKED = Prepared(
    select(Booking.id, Booking.start_at).where(
        Booking.service == bindparam("service"), Booking.status == "booked",
        Booking.start_at >= bindparam("since", type_=_BOOKINGS.c.start_at.type),
        Booking.start_at < bindparam("until", type_=_BOOKINGS.c.start_at.type),
    )
)
_LOCK_PG = Prepared(text("SELECT pg_advisory_xact_lock(:k)").bindparams(bindparam("k", type_=BigInteger)))
# SQLite has one writer at a time: any write takes the lock until commit.
_LOCK_SQLITE = Prepared(update(_BOOKINGS).where(_BOOKINGS.c.id == -1).values(status=_BOOKINGS.c.status))
_BOOKING_COLUMNS = tuple(c.key for c in _BOOKINGS.c if c.key != "id")
_INSERT_BOOKING = Prepared(
    insert(_BOOKINGS).values({c: bindparam(c) for c in _BOOKING_COLUMNS}).returning(_BOOKINGS.c.id)
)
_REMINDERS = Reminder.__table__
# How many reminders of each kind a booking has had (a moved booking's keys are versioned).
_REMINDER_KINDS_USED = Prepared(
    select(_REMINDERS.c.kind, func.count(_REMINDERS.c.id).label("used"))
    .where(_REMINDERS.c.cause_type == "booking", _REMINDERS.c.cause_id == bindparam("booking_id", type_=BigInteger))
    .group_by(_REMINDERS.c.kind)
)


@dataclass(frozen=True)
class SlotCheck:
    """The answer to 'can this service be booked then?'.

    reason: ok | past | too_soon | too_far | closed | outside_hours | slot_full | day_full | no_day
    `start` is the slot asked for (aware UTC) when one was named; `alternatives` are the nearest
    free slot starts (aware UTC, in order) when it is not ok.
    """

    ok: bool
    reason: str
    start: datetime | None
    alternatives: tuple[datetime, ...] = ()


def zone(svc: Services) -> ZoneInfo:
    """The community's timezone."""
    return ZoneInfo(svc.settings.timezone)


def local_slot(svc: Services, day: date, at: time) -> datetime:
    """The aware UTC instant of a local date and clock time."""
    return datetime.combine(day, at, tzinfo=zone(svc)).astimezone(timezone.utc)


def describe(svc: Services, start: datetime) -> str:
    """A start time as residents read it: '11月24日（周二）11:30'."""
    local = start.astimezone(zone(svc))
    return f"{day_text(local.date())}{local:%H:%M}"


def day_text(day: date) -> str:
    """A date as residents read it: '12月1日（周二）'."""
    return f"{day.month}月{day.day}日（{CN_WEEKDAYS[day.weekday()]}）"


def ticket_summary(svc: Services, fields: Mapping[str, Any], start: datetime, *, waitlist: bool) -> str:
    """A booking's ticket summary, what the provider's WeCom card shows as 事项: 候补 first while
    waitlisted, the service, the start, the person with the age, the care notes and what the
    opening asked for, each clipped (the card clips the whole):
    '助浴｜11月24日（周二）09:00｜张桂兰（85岁）｜备注：坐轮椅 需要两个人扶'."""
    t = svc.texts
    parts = [t.get("booking.summary_waitlist")] if waitlist else []
    parts += [str(fields.get("service") or ""), describe(svc, start)]
    name, age = str(fields.get("for_name") or ""), fields.get("age_said") or fields.get("age")  # 80多 as said
    if age:
        parts.append(t.get("booking.summary_age", name=name, age=age))
    elif name:
        parts.append(name)
    # The care notes before what the opening asked for, which mostly says the service again (我想给
    # 我老娘订个饭 …): the card clips the whole to fit WeCom's 512 bytes, and 不能吃辣 was cut off
    if fields.get("notes"):
        parts.append(t.get("booking.summary_notes", notes=str(fields["notes"])[:40]))
    if fields.get("request"):
        parts.append(str(fields["request"])[:60])
    return "｜".join(parts)


def earliest_start(svc: Services, spec: ServiceSpec) -> datetime:
    """The earliest instant a new booking of spec may start."""
    return svc.clock.now() + timedelta(minutes=spec.min_lead_minutes)


def last_day(svc: Services, spec: ServiceSpec) -> date:
    """The last local date spec can be booked for."""
    return svc.clock.now().astimezone(zone(svc)).date() + timedelta(days=spec.book_ahead_days)


def _day_bounds(svc: Services, day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=zone(svc))
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone(svc))
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


async def _booked(
    svc: Services, session: AsyncSession, service: str, first: date, last: date, exclude: int | None = None
) -> tuple[Counter[datetime], Counter[date]]:
    """Booked rows of a service between two local dates: per slot start and per local day."""
    since, _ = _day_bounds(svc, first)
    _, until = _day_bounds(svc, last)
    per_slot: Counter[datetime] = Counter()
    per_day: Counter[date] = Counter()
    # fastsql.read flushes the session's pending changes first, as the ORM query's autoflush did.
    for row in await fastsql.read(session, _BOOKED, {"service": service, "since": since, "until": until}):
        booking_id, start = row["id"], row["start_at"]
        if booking_id == exclude:
            continue
        per_slot[start] += 1
        per_day[start.astimezone(zone(svc)).date()] += 1
    return per_slot, per_day


async def lock_day(svc: Services, session: AsyncSession, service: str, day: date) -> None:
    """Hold the booking lock of service on a local day until the caller's transaction ends."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        key = zlib.crc32(f"{svc.store.prefix}:booking:{service}:{day.isoformat()}".encode()) - 2**31
        await fastsql.run(session, _LOCK_PG, {"k": key})
    else:
        await fastsql.run(session, _LOCK_SQLITE, {})


async def free_slots(
    svc: Services,
    session: AsyncSession,
    spec: ServiceSpec,
    around: datetime,
    *,
    limit: int = 3,
    exclude: int | None = None,
    within: tuple[datetime, datetime] | None = None,
) -> list[datetime]:
    """Up to `limit` free slot starts nearest to `around` (optionally inside `within`), in order."""
    earliest = earliest_start(svc, spec)
    today = svc.clock.now().astimezone(zone(svc)).date()
    final = last_day(svc, spec)
    per_slot, per_day = await _booked(svc, session, spec.name, today, final, exclude)
    candidates: list[datetime] = []
    day = today
    while day <= final:
        if per_day[day] < spec.daily_capacity:
            for at in spec.slots_on(day):
                start = local_slot(svc, day, at)
                if start < earliest or per_slot[start] >= spec.slot_capacity:
                    continue
                if within is not None and not (within[0] <= start < within[1]):
                    continue
                candidates.append(start)
        day += timedelta(days=1)
    nearest = sorted(candidates, key=lambda s: (abs((s - around).total_seconds()), s))[:limit]
    return sorted(nearest)


async def check_slot(
    svc: Services, session: AsyncSession, spec: ServiceSpec, when: When, *, exclude: int | None = None
) -> SlotCheck:
    """Whether spec can be booked at `when` (a date with a clock time or a part of day)."""
    if when.day is None:
        return SlotCheck(False, "no_day", None)
    if when.at is None:
        span = when.window()
        lo, hi = span if span else (time(0), time(23, 59))
        within = (local_slot(svc, when.day, lo), local_slot(svc, when.day, hi))
        first = await free_slots(svc, session, spec, within[0], limit=1, exclude=exclude, within=within)
        if first:
            return SlotCheck(True, "ok", first[0])
        reason = "closed" if not spec.slots_on(when.day) else "day_full"
        around = within[0]
        return SlotCheck(False, reason, None, tuple(await free_slots(svc, session, spec, around, exclude=exclude)))
    start = local_slot(svc, when.day, when.at)
    reason = await _refusal(svc, session, spec, when.day, when.at, start, exclude)
    if reason is None:
        return SlotCheck(True, "ok", start)
    alternatives = await free_slots(svc, session, spec, start, exclude=exclude)
    return SlotCheck(False, reason, start, tuple(alternatives))


def hours_refusal(spec: ServiceSpec, day: date, at: time | None, now_local: datetime) -> str | None:
    """Why a local date (and clock time) breaks the service's rules, before looking at capacity.

    Without a clock time only the day is judged (open that day, bookable that far ahead, and some
    slot of it still late enough). now_local is aware, in the community's timezone."""
    earliest = now_local + timedelta(minutes=spec.min_lead_minutes)
    tz = now_local.tzinfo
    if at is not None:
        start = datetime.combine(day, at, tzinfo=tz)
        if start <= now_local:
            return "past"
        if start < earliest:
            return "too_soon"
    elif day < now_local.date():
        return "past"
    if day > now_local.date() + timedelta(days=spec.book_ahead_days):
        return "too_far"
    if not spec.windows_on(day):
        return "closed"
    if at is not None and at not in spec.slots_on(day):
        return "outside_hours"
    if at is None and not any(datetime.combine(day, t, tzinfo=tz) >= earliest for t in spec.slots_on(day)):
        return "too_soon"
    return None


async def _refusal(
    svc: Services, session: AsyncSession, spec: ServiceSpec, day: date, at: time, start: datetime,
    exclude: int | None,
) -> str | None:
    """Why this exact slot cannot be booked, or None when it can."""
    rule = hours_refusal(spec, day, at, svc.clock.now().astimezone(zone(svc)))
    if rule is not None:
        return rule
    per_slot, per_day = await _booked(svc, session, spec.name, day, day, exclude)
    if per_day[day] >= spec.daily_capacity:
        return "day_full"
    if per_slot[start] >= spec.slot_capacity:
        return "slot_full"
    return None


async def hold_slot(
    svc: Services, session: AsyncSession, spec: ServiceSpec, start: datetime, *, exclude: int | None = None
) -> SlotCheck:
    """Lock the slot's day and check it again; when ok, it stays free for this transaction."""
    local = start.astimezone(zone(svc))
    await lock_day(svc, session, spec.name, local.date())
    reason = await _refusal(svc, session, spec, local.date(), local.time(), start, exclude)
    if reason is None:
        return SlotCheck(True, "ok", start)
    return SlotCheck(False, reason, start, tuple(await free_slots(svc, session, spec, start, exclude=exclude)))


async def create_booking(
    svc: Services,
    session: AsyncSession,
    *,
    ticket: Ticket,
    resident: str | None,
    spec: ServiceSpec,
    start: datetime,
    for_name: str | None,
    for_age: int | None,
    address: str | None,
    notes: str | None,
    waitlist: bool = False,
    provider: str | None = None,
) -> Booking:
    """Write a booking (booked, after hold_slot said ok; or waitlist) and its reminders."""
    values: dict[str, Any] = {
        "ticket_id": ticket.id, "resident": resident, "service": spec.name, "provider": provider,
        "for_name": for_name, "for_age": for_age, "address": address, "start_at": start, "notes": notes,
        "status": "waitlist" if waitlist else "booked", "created_at": svc.clock.now(),
    }
    # A fixed INSERT, then the row handed to the session as if loaded (as tickets.create_ticket
    # does): every column is given, later changes (a provider, a status) are flushed as an UPDATE.
    await fastsql.flush(session)  # the caller's pending writes first, as the unit of work's flush would
    booking_id = (await fastsql.run(session, _INSERT_BOOKING, values)).rows[0]["id"]
    booking = fastsql.adopt(session, Booking, {"id": booking_id, **values})
    if not waitlist:
        await schedule_reminders(svc, session, booking)
    return booking


def _next_key(booking: Booking, kind: str, used: int) -> str:
    """booking:{id}:{kind} the first time; a versioned key after a change of time."""
    base = f"booking:{booking.id}:{kind}"
    return base if not used else f"{base}:v{used + 1}"


def _in_quiet_hours(svc: Services, when: datetime) -> bool:
    (sh, sm), (eh, em) = svc.settings.quiet_window
    clock = when.astimezone(zone(svc)).time()
    start, end = time(sh, sm), time(eh, em)
    return (clock >= start or clock < end) if start > end else (start <= clock < end)


async def schedule_reminders(svc: Services, session: AsyncSession, booking: Booking) -> None:
    """The evening-before and shortly-before reminders of a booked booking (those still ahead; not
    the evening one when it would come within JUST_TOLD of now), in one INSERT that skips a row
    whose dedup key exists already, after one read of the kinds the booking has had."""
    if booking.resident is None:
        return
    cat = catalog_of(svc.extras)
    now = svc.clock.now()
    local = booking.start_at.astimezone(zone(svc))
    evening = datetime.combine(local.date() - timedelta(days=1), cat.evening_before, tzinfo=zone(svc))
    plan = (
        ("booking_evening", evening.astimezone(timezone.utc)),
        ("booking_hour", booking.start_at - timedelta(minutes=cat.before_minutes)),
    )
    wanted = [(kind, due) for kind, due in plan
              if not (due <= now or (kind == "booking_evening" and due - now < JUST_TOLD))]
    if not wanted:
        return
    used = {row["kind"]: int(row["used"]) for row in
            (await fastsql.run(session, _REMINDER_KINDS_USED, {"booking_id": booking.id})).rows}
    for_self = await booked_for_self(session, booking)
    rows = [
        {
            "kind": kind, "due_at": due, "channel": "wechat", "target": booking.resident,
            "payload": {"text": reminder_text(svc, booking, kind, due, for_self=for_self),
                        "booking_start": booking.start_at.isoformat()},
            "cause_type": "booking", "cause_id": booking.id, "dedup_key": _next_key(booking, kind, used.get(kind, 0)),
            "urgent": kind == "booking_hour" and _in_quiet_hours(svc, due),
        }
        for kind, due in wanted
    ]
    await reminders.schedule_many(session, rows, now=now)


REMINDER_KEYS = {"booking_evening": "booking.reminder_evening", "booking_hour": "booking.reminder_hour"}
SOON_WHOLE = timedelta(minutes=2)  # this near a whole or half hour, it is said as one (一小时后)


def _soon(svc: Services, left: timedelta) -> str:
    """How long until the start, as said: 一小时后, 半小时后, 两个半小时后, else 45分钟后."""
    t = svc.texts
    minutes = max(1, round(left.total_seconds() / 60))
    halves = round(minutes / 30)
    hours, half = divmod(halves, 2)
    words = t.get("booking.hour_words")
    if halves < 1 or abs(minutes - halves * 30) * 60 > SOON_WHOLE.total_seconds() or hours > len(words):
        return t.get("booking.soon_minutes", minutes=minutes)
    if not hours:
        return t.get("booking.soon_half")
    return t.get("booking.soon_hours_half" if half else "booking.soon_hours", hours=words[hours - 1])


def _day_said(svc: Services, day: date, at: datetime) -> str:
    """A booking's day as said at `at`: 今天, 明天, else 11月26日（周四）."""
    today = at.astimezone(zone(svc)).date()
    if day == today:
        return svc.texts.get("booking.day_today")
    if day == today + timedelta(days=1):
        return svc.texts.get("booking.day_tomorrow")
    return day_text(day)


FOR_SELF = "本人"  # a booking's ticket field for_whom when the resident booked for themselves


async def booked_for_self(session: AsyncSession, booking: Booking) -> bool:
    """Whether the resident booked for themselves (给谁预约: 我自己): reminded as 您, not by name."""
    ticket = await session.get(Ticket, booking.ticket_id)
    return ticket is not None and (ticket.fields or {}).get("for_whom") == FOR_SELF


def reminder_text(svc: Services, booking: Booking, kind: str, at: datetime, *, for_self: bool = False) -> str:
    """A booking reminder as read when it goes out at `at`: its day said from then (明天 the
    evening before, 今天 if a stopped scheduler sends it on the day) and the time left
    (一小时后, not 60分钟后); for_self: 您预约的, not the resident's own name."""
    start = booking.start_at.astimezone(zone(svc))
    who = svc.texts.get("booking.for_self") if for_self or not booking.for_name else booking.for_name
    return svc.texts.get(
        REMINDER_KEYS[kind], service=booking.service, who=who,
        day=_day_said(svc, start.date(), at), time=f"{start:%H:%M}", soon=_soon(svc, booking.start_at - at),
    )


async def booking_still_due(session: AsyncSession, reminder: Reminder) -> bool:
    """Cause check: a booking reminder goes out only while booked at the start it names."""
    if reminder.cause_id is None:
        return False
    booking = await session.get(Booking, reminder.cause_id)
    if booking is None or booking.status != "booked":
        return False
    named = (reminder.payload.get("message") or {}).get("booking_start")
    return named is None or datetime.fromisoformat(named) == booking.start_at


reminders.register_cause_check("booking", booking_still_due)


async def deliver_reminder(svc: Services, session: AsyncSession, reminder: Reminder) -> bool:
    """A booking's reminder goes out only before the booking starts: one claimed after it (the
    scheduler stopped for a while) is dropped, not sent to someone already served; it is worded
    as it goes out (reminder_text)."""
    booking = await session.get(Booking, reminder.cause_id) if reminder.cause_id is not None else None
    now = svc.clock.now()
    if booking is None or booking.start_at <= now:
        return False
    payload = reminder.payload or {}
    text = reminder_text(svc, booking, reminder.kind, now, for_self=await booked_for_self(session, booking))
    message = {**(payload.get("message") or {}), "text": text}
    reminder.payload = {**payload, "message": message}
    return await schedule.deliver_plain(session, reminder, now)


for _kind in REMINDER_KINDS:
    schedule.register_kind_handler(_kind, deliver_reminder)
    schedule.register_timed_kind(_kind)


async def upcoming(svc: Services, session: AsyncSession, openid: str) -> list[Booking]:
    """A resident's booked or waitlisted bookings that have not started yet, soonest first."""
    rows = await session.execute(
        select(Booking)
        .where(Booking.resident == openid, Booking.status.in_(ACTIVE), Booking.start_at > svc.clock.now())
        .order_by(Booking.start_at, Booking.id)
    )
    return list(rows.scalars())


async def cancel_booking(svc: Services, session: AsyncSession, booking: Booking, actor: str) -> Booking | None:
    """Cancel a booking, drop its reminders and promote the first waitlisted one that now fits."""
    was_booked = booking.status == "booked"
    booking.status = "cancelled"
    await reminders.drop_for_cause(session, "booking", booking.id)
    ticket = await session.get(Ticket, booking.ticket_id)
    if ticket is not None:
        event = await tickets.add_event(
            session, ticket, "booking_cancelled", actor, svc.clock.now(),
            data={"booking": booking.id, "start": booking.start_at.isoformat()},
        )
        from bot import dispatch  # imported here, as in change_booking; tells the owner of a 办结 ticket

        await dispatch.unbooked(svc, session, ticket, booking.start_at, event)
    await session.flush()
    return await promote_waitlist(svc, session, booking.service, booking.start_at) if was_booked else None


async def promote_waitlist(svc: Services, session: AsyncSession, service: str, start: datetime) -> Booking | None:
    """Book the longest-waiting waitlisted booking on that local day whose slot has room again;
    the resident and the ticket's owner (the provider) are told, and the ticket loses its 候补."""
    spec = catalog_of(svc.extras).get(service)
    if spec is None:
        return None
    day = start.astimezone(zone(svc)).date()
    await lock_day(svc, session, service, day)
    since, until = _day_bounds(svc, day)
    waiting = await session.execute(
        select(Booking)
        .where(
            Booking.service == service, Booking.status == "waitlist",
            Booking.start_at >= max(since, svc.clock.now()), Booking.start_at < until,
        )
        .order_by(Booking.created_at, Booking.id)
    )
    for candidate in waiting.scalars():
        local = candidate.start_at.astimezone(zone(svc))
        if await _refusal(svc, session, spec, day, local.time(), candidate.start_at, None) is None:
            candidate.status = "booked"
            await schedule_reminders(svc, session, candidate)
            ticket = await session.get(Ticket, candidate.ticket_id)
            if ticket is not None:
                await tickets.add_event(
                    session, ticket, "booking_confirmed", "system", svc.clock.now(),
                    data={"booking": candidate.id, "from": "waitlist"},
                )
                await _confirmed_to_provider(svc, session, ticket, candidate)
            if candidate.resident:
                await push_resident(
                    session, candidate.resident,
                    svc.texts.get("booking.promoted", service=service, when=describe(svc, candidate.start_at)),
                    now=svc.clock.now(), ticket_id=candidate.ticket_id,
                    dedup_key=f"booking:{candidate.id}:promoted", not_before=_held(svc, ticket),
                )
            return candidate
    return None


async def _confirmed_to_provider(svc: Services, session: AsyncSession, ticket: Ticket, booking: Booking) -> None:
    """A waitlisted booking now booked: its ticket no longer says 候补, and its owner (the
    provider, who was dispatched the waitlisted request) is told it is on for its time."""
    _rewrite_summary(svc, ticket, booking)
    if ticket.assignee and ticket.status in tickets.ACTIVE:
        await push_worker(
            session, ticket.assignee,
            svc.texts.get("booking.promoted_worker", number=ticket.number, when=describe(svc, booking.start_at)),
            now=svc.clock.now(), ticket_id=ticket.id, dedup_key=f"booking:{booking.id}:promoted_worker",
            not_before=_held(svc, ticket),
        )


def _held(svc: Services, ticket: Ticket | None) -> datetime | None:
    """When a push the bot sends on its own about a booking may go: after the quiet hours (a place
    freed by another resident's cancelling at 22:00 is told at 08:00)."""
    from bot import dispatch  # dispatch reads bookings' tickets

    return dispatch.held_until(svc, ticket) if ticket is not None else schedule.held_until(svc.clock.now(), svc.settings)


NOTES_MAX = 200  # characters of a booking's note


def add_note(svc: Services, ticket: Ticket, booking: Booking, note: str) -> None:
    """A care note added to a booking made (少放点盐): its notes, its ticket's and the summary the
    provider's card and 我的工单 read."""
    booking.notes = (f"{booking.notes}，{note}" if booking.notes else note)[:NOTES_MAX]
    ticket.fields = {**(ticket.fields or {}), "notes": booking.notes}
    _rewrite_summary(svc, ticket, booking)


def _rewrite_summary(svc: Services, ticket: Ticket, booking: Booking) -> None:
    """A booking ticket's time, waitlist mark and summary after its booking moved or was confirmed."""
    waitlist = booking.status == "waitlist"
    fields = {**(ticket.fields or {}), "when": describe(svc, booking.start_at), "waitlist": waitlist}
    ticket.fields = fields
    said = {"service": booking.service, "for_name": booking.for_name, "age": booking.for_age,
            "age_said": fields.get("age_said"), "notes": booking.notes, "request": fields.get("request")}
    ticket.summary = ticket_summary(svc, said, booking.start_at, waitlist=waitlist)


async def change_booking(
    svc: Services, session: AsyncSession, booking: Booking, start: datetime, actor: str
) -> SlotCheck:
    """Move a booking to a new start if that slot is free: new reminders, old ones dropped."""
    spec = catalog_of(svc.extras).get(booking.service)
    if spec is None:
        raise ValueError(f"booking {booking.id} names unknown service {booking.service!r}")
    # Both days locked in one order, so two opposite changes cannot deadlock.
    days = sorted({booking.start_at.astimezone(zone(svc)).date(), start.astimezone(zone(svc)).date()})
    for day in days:
        await lock_day(svc, session, spec.name, day)
    held = await hold_slot(svc, session, spec, start, exclude=booking.id)
    if not held.ok:
        return held
    before = booking.start_at
    was_booked = booking.status == "booked"
    booking.start_at = start
    booking.status = "booked"
    await reminders.drop_for_cause(session, "booking", booking.id)
    await schedule_reminders(svc, session, booking)
    ticket = await session.get(Ticket, booking.ticket_id)
    if ticket is not None:
        _rewrite_summary(svc, ticket, booking)
        event = await tickets.add_event(
            session, ticket, "booking_changed", actor, svc.clock.now(),
            data={"booking": booking.id, "from": before.isoformat(), "to": start.isoformat()},
        )
        from bot import dispatch  # dispatch reads bookings' tickets; imported when a booking moves

        await dispatch.rebooked(svc, session, ticket, start, event)
    if was_booked and before != start:
        await promote_waitlist(svc, session, booking.service, before)
    return held
