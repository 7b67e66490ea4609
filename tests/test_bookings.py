"""Bookings: hours, capacity (also two residents racing for the last slot), nearest free slots,
the waitlist, cancel/change with their reminders, on both backends."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import bookings, reminders, tickets
from bot.clock import FakeClock
from bot.service_catalog import Catalog, load_catalog
from bot.services import Services
from bot.when import When, parse_when
from storage.models import Booking, OutboxItem, Reminder, Ticket

SH = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 23)  # a Monday; the clock fixture stands at 10:00 local

SMALL = """
[reminders]
evening_before = "19:00"
before_minutes = 60

[[services]]
name = "助餐"
slot_minutes = 30
slot_capacity = 2
daily_capacity = 3
book_ahead_days = 7
min_lead_minutes = 60
hours = [{ days = "daily", times = ["11:00-13:00", "17:00-18:30"] }]

[[services]]
name = "助浴"
slot_minutes = 60
slot_capacity = 1
daily_capacity = 6
book_ahead_days = 14
min_lead_minutes = 120
hours = [{ days = ["tue", "thu", "sat"], times = ["09:00-12:00"] }]
"""


def at(day: date, hh: int, mm: int = 0) -> datetime:
    """A local Shanghai time as aware UTC."""
    return datetime.combine(day, time(hh, mm), tzinfo=SH).astimezone(timezone.utc)


@pytest.fixture
def small(services: Services, tmp_path: Path) -> Catalog:
    """A catalog with small capacities, installed in the services."""
    path = tmp_path / "services.toml"
    path.write_text(SMALL, encoding="utf-8")
    cat = load_catalog(path)
    services.extras["service_catalog"] = cat
    return cat


async def book(svc: Services, service: str, start: datetime, openid: str = "o_res", waitlist: bool = False) -> Booking:
    """Hold the slot, write a ticket and the booking in one transaction (as the flow does)."""
    spec = bookings.catalog_of(svc.extras).get(service)
    assert spec is not None
    async with svc.sessions() as session, session.begin():
        if not waitlist:
            held = await bookings.hold_slot(svc, session, spec, start)
            assert held.ok, held
        ticket = await tickets.create_ticket(
            session, kind="elderly_service", resident=openid, fields={"service": service},
            now=svc.clock.now(), tz=svc.settings.timezone, actor="test",
        )
        return await bookings.create_booking(
            svc, session, ticket=ticket, resident=openid, spec=spec, start=start,
            for_name="王阿姨", for_age=78, address="3栋2单元301", notes=None, waitlist=waitlist,
        )


async def pending_reminders(svc: Services, booking_id: int) -> list[Reminder]:
    async with svc.sessions() as session:
        rows = await session.execute(
            select(Reminder).where(Reminder.cause_id == booking_id, Reminder.cause_type == "booking")
            .order_by(Reminder.id)
        )
        return list(rows.scalars())


# --- the catalog (config/services.toml) ------------------------------------------------------


def test_shipped_catalog_has_every_service_with_its_hours() -> None:
    cat = load_catalog()
    assert set(cat.names) >= {"助餐", "日托", "助浴", "助洁", "康复", "陪诊", "上门护理", "理发", "适老化改造"}
    meals = cat.get("助餐")
    assert meals is not None and meals.slots_on(TODAY)[0] == time(11, 0)
    assert time(18, 0) in meals.slots_on(TODAY) and time(18, 30) not in meals.slots_on(TODAY)
    daycare = cat.get("日托")
    assert daycare is not None and daycare.slots_on(TODAY) == [time(8, 0)]
    assert daycare.slots_on(date(2026, 11, 28)) == []  # Saturday
    bath = cat.get("助浴")
    assert bath is not None and bath.slots_on(TODAY) == [] and bath.slots_on(TODAY + timedelta(days=1))
    assert cat.evening_before == time(19, 0) and cat.before_minutes == 60
    assert cat.find("给我妈订个午饭") is meals and cat.find("想洗澡") is bath and cat.find("修电脑") is None


def test_bad_catalog_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(SMALL.replace('"tue", "thu", "sat"', '"tues"'), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown days"):
        load_catalog(path)
    path.write_text(SMALL.replace("11:00-13:00", "13:00-11:00"), encoding="utf-8")
    with pytest.raises(ValueError, match="ends before"):
        load_catalog(path)


def test_when_parses_what_residents_say() -> None:
    assert parse_when("明天中午", TODAY) == When(TODAY + timedelta(days=1), None, "中午")
    assert parse_when("周三上午十点半", TODAY) == When(date(2026, 11, 25), time(10, 30), None)
    assert parse_when("下周一下午3点", TODAY) == When(date(2026, 11, 30), time(15, 0), None)
    assert parse_when("12月1号 17:30", TODAY) == When(date(2026, 12, 1), time(17, 30), None)
    assert parse_when("5号", TODAY).day == date(2026, 12, 5)  # passed this month: next month's
    assert parse_when("随便", TODAY).empty
    # 两点 alone is the afternoon (before: 02:00, refused as outside the hours); 凌晨 says otherwise
    assert parse_when("明天两点", TODAY) == When(TODAY + timedelta(days=1), time(14, 0), None)
    assert parse_when("凌晨两点", TODAY).at == time(2, 0) and parse_when("2:00", TODAY).at == time(2, 0)
    assert parse_when("3-2-502", TODAY).empty  # an address, not 2 March


# --- checking a requested time --------------------------------------------------------------


async def test_times_outside_hours_or_limits_are_refused_with_alternatives(services: Services, small: Catalog) -> None:
    meals = small.get("助餐")
    assert meals is not None
    async with services.sessions() as session:
        tomorrow = TODAY + timedelta(days=1)
        ok = await bookings.check_slot(services, session, meals, When(tomorrow, time(11, 30)))
        assert ok.ok and ok.start == at(tomorrow, 11, 30)

        past = await bookings.check_slot(services, session, meals, When(TODAY, time(9, 0)))
        assert (past.ok, past.reason) == (False, "past")
        soon = await bookings.check_slot(services, session, meals, When(TODAY, time(10, 30)))
        assert soon.reason == "too_soon"
        outside = await bookings.check_slot(services, session, meals, When(tomorrow, time(15, 0)))
        assert outside.reason == "outside_hours"
        # Nearest free slots to 15:00 tomorrow: 13:00 is not a start (12:30 is the last at noon).
        assert outside.alternatives == (at(tomorrow, 12, 30), at(tomorrow, 17, 0), at(tomorrow, 17, 30))
        far = await bookings.check_slot(services, session, meals, When(TODAY + timedelta(days=9), time(11, 0)))
        assert far.reason == "too_far" and far.alternatives
        assert max(far.alternatives) < at(TODAY + timedelta(days=8), 0, 0)

        bath = small.get("助浴")
        assert bath is not None
        closed = await bookings.check_slot(services, session, bath, When(TODAY + timedelta(days=2), time(9, 0)))
        assert closed.reason == "closed"
        tuesday = TODAY + timedelta(days=1)  # nearest to Wednesday 9:00; a tie goes to the earlier
        assert closed.alternatives == (at(tuesday, 9, 0), at(tuesday, 10, 0), at(tuesday, 11, 0))


async def test_part_of_day_takes_the_first_free_slot_in_it(services: Services, small: Catalog) -> None:
    meals = small.get("助餐")
    assert meals is not None
    tomorrow = TODAY + timedelta(days=1)
    await book(services, "助餐", at(tomorrow, 11, 0))
    await book(services, "助餐", at(tomorrow, 11, 0), openid="o_other")
    async with services.sessions() as session:
        noon = await bookings.check_slot(services, session, meals, parse_when("明天中午", TODAY))
        evening = await bookings.check_slot(services, session, meals, parse_when("明天晚上", TODAY))
    assert noon.ok and noon.start == at(tomorrow, 11, 30)  # 11:00 is full (slot capacity 2)
    assert evening.ok and evening.start == at(tomorrow, 17, 0)


async def test_capacity_per_slot_and_per_day(services: Services, small: Catalog) -> None:
    meals = small.get("助餐")
    assert meals is not None
    day = TODAY + timedelta(days=2)
    await book(services, "助餐", at(day, 11, 0), "o_a")
    await book(services, "助餐", at(day, 11, 0), "o_b")
    async with services.sessions() as session:
        full_slot = await bookings.check_slot(services, session, meals, When(day, time(11, 0)))
    assert full_slot.reason == "slot_full"
    assert full_slot.alternatives == (at(day, 11, 30), at(day, 12, 0), at(day, 12, 30))

    await book(services, "助餐", at(day, 17, 0), "o_c")  # the third of the day's three
    async with services.sessions() as session:
        full_day = await bookings.check_slot(services, session, meals, When(day, time(12, 0)))
    assert full_day.reason == "day_full"
    assert all(a.astimezone(SH).date() != day for a in full_day.alternatives)
    assert len(full_day.alternatives) == 3

    # Cancelled rows do not count.
    async with services.sessions() as session, session.begin():
        first = await session.scalar(select(Booking).where(Booking.resident == "o_a"))
        assert first is not None
        await bookings.cancel_booking(services, session, first, "resident:test")
    async with services.sessions() as session:
        again = await bookings.check_slot(services, session, meals, When(day, time(11, 0)))
    assert again.ok


async def test_two_residents_racing_for_the_last_slot(services: Services, small: Catalog, backend: str) -> None:
    bath = small.get("助浴")
    assert bath is not None
    start = at(TODAY + timedelta(days=1), 9, 0)
    both_checked = asyncio.Barrier(2)

    async def attempt(openid: str) -> bool:
        async with services.sessions() as session, session.begin():
            first = await bookings.check_slot(services, session, bath, When(TODAY + timedelta(days=1), time(9)))
            if backend == "pg_redis":  # PostgreSQL sessions overlap: both see the slot free first
                assert first.ok
                await both_checked.wait()  # (SQLite sessions take turns in-process)
            held = await bookings.hold_slot(services, session, bath, start)
            if not held.ok:
                assert held.reason == "slot_full" and held.alternatives
                return False
            ticket = await tickets.create_ticket(
                session, kind="elderly_service", resident=openid, fields={}, now=services.clock.now(),
                tz=services.settings.timezone, actor="test",
            )
            await bookings.create_booking(
                services, session, ticket=ticket, resident=openid, spec=bath, start=start,
                for_name=None, for_age=None, address=None, notes=None,
            )
            return True

    results = await asyncio.gather(attempt("o_one"), attempt("o_two"))
    assert sorted(results) == [False, True]
    async with services.sessions() as session:
        rows = (await session.execute(select(Booking).where(Booking.start_at == start))).scalars().all()
        assert [b.status for b in rows] == ["booked"]
        assert await session.scalar(select(Ticket.id).where(Ticket.resident == "o_two" if results[0] else Ticket.resident == "o_one")) is None


# --- reminders ---------------------------------------------------------------------------


async def test_booking_reminders_at_the_right_times_with_dedup_keys(services: Services, small: Catalog) -> None:
    start = at(TODAY + timedelta(days=2), 11, 30)
    booking = await book(services, "助餐", start)
    rows = await pending_reminders(services, booking.id)
    assert [(r.kind, r.due_at, r.dedup_key, r.state) for r in rows] == [
        ("booking_evening", at(TODAY + timedelta(days=1), 19, 0), f"booking:{booking.id}:booking_evening", "pending"),
        ("booking_hour", at(TODAY + timedelta(days=2), 10, 30), f"booking:{booking.id}:booking_hour", "pending"),
    ]
    for row in rows:
        assert row.target == "o_res" and row.payload["channel"] == "wechat"
        body = row.payload["message"]["text"]
        assert "助餐" in body and "11:30" in body and "取消预约" in body and "改时间" in body
    async with services.sessions() as session:
        assert all([await bookings.booking_still_due(session, r) for r in rows])
        assert reminders.CAUSE_CHECKS["booking"] is bookings.booking_still_due


async def test_a_booking_made_late_gets_only_the_reminders_still_ahead(
    services: Services, small: Catalog, clock: FakeClock
) -> None:
    clock.set(at(TODAY, 20, 0))
    booking = await book(services, "助餐", at(TODAY + timedelta(days=1), 11, 0))
    assert [r.kind for r in await pending_reminders(services, booking.id)] == ["booking_hour"]


async def test_cancel_drops_reminders_and_promotes_the_waitlist(services: Services, small: Catalog) -> None:
    bath = small.get("助浴")
    assert bath is not None
    start = at(TODAY + timedelta(days=1), 10, 0)
    first = await book(services, "助浴", start, "o_first")
    waiting = await book(services, "助浴", start, "o_waiting", waitlist=True)
    assert waiting.status == "waitlist" and await pending_reminders(services, waiting.id) == []

    async with services.sessions() as session, session.begin():
        row = await session.get(Booking, first.id)
        assert row is not None
        promoted = await bookings.cancel_booking(services, session, row, "resident:test")
        assert promoted is not None and promoted.id == waiting.id
    assert {r.state for r in await pending_reminders(services, first.id)} == {"dropped"}
    promoted_rows = await pending_reminders(services, waiting.id)
    assert [r.kind for r in promoted_rows] == ["booking_evening", "booking_hour"]
    async with services.sessions() as session:
        assert (await session.get(Booking, waiting.id)).status == "booked"  # type: ignore[union-attr]
        old = (await pending_reminders(services, first.id))[0]
        assert not await bookings.booking_still_due(session, old)
        push = await session.scalar(select(OutboxItem).where(OutboxItem.target == "o_waiting"))
        assert push is not None and "已为您约上" in push.payload["text"]
        events = await tickets.events_of(session, await session.get(Ticket, first.ticket_id))  # type: ignore[arg-type]
        assert [e.action for e in events] == ["created", "booking_cancelled"]


async def test_change_moves_the_booking_and_reschedules_reminders(services: Services, small: Catalog) -> None:
    meals = small.get("助餐")
    assert meals is not None
    start = at(TODAY + timedelta(days=2), 11, 0)
    booking = await book(services, "助餐", start)
    old_rows = await pending_reminders(services, booking.id)
    new_start = at(TODAY + timedelta(days=3), 17, 30)
    async with services.sessions() as session, session.begin():
        row = await session.get(Booking, booking.id)
        assert row is not None
        result = await bookings.change_booking(services, session, row, new_start, "resident:test")
        assert result.ok
    rows = await pending_reminders(services, booking.id)
    assert [(r.kind, r.state) for r in rows[:2]] == [("booking_evening", "dropped"), ("booking_hour", "dropped")]
    fresh = rows[2:]
    assert [(r.kind, r.due_at, r.state) for r in fresh] == [
        ("booking_evening", at(TODAY + timedelta(days=2), 19, 0), "pending"),
        ("booking_hour", at(TODAY + timedelta(days=3), 16, 30), "pending"),
    ]
    assert {r.dedup_key for r in fresh}.isdisjoint({r.dedup_key for r in old_rows})
    async with services.sessions() as session:
        assert [await bookings.booking_still_due(session, r) for r in rows] == [False, False, True, True]

    # Changing back and forth keeps producing fresh, unique reminder rows.
    for target in (start, new_start):
        async with services.sessions() as session, session.begin():
            row = await session.get(Booking, booking.id)
            assert row is not None and (await bookings.change_booking(services, session, row, target, "r")).ok
    assert len([r for r in await pending_reminders(services, booking.id) if r.state == "pending"]) == 2


async def test_change_to_a_full_slot_is_refused_and_keeps_the_booking(services: Services, small: Catalog) -> None:
    bath = small.get("助浴")
    assert bath is not None
    taken = at(TODAY + timedelta(days=1), 9, 0)
    await book(services, "助浴", taken, "o_a")
    mine = await book(services, "助浴", at(TODAY + timedelta(days=1), 11, 0), "o_b")
    async with services.sessions() as session, session.begin():
        row = await session.get(Booking, mine.id)
        assert row is not None
        result = await bookings.change_booking(services, session, row, taken, "resident:test")
    assert (result.ok, result.reason) == (False, "slot_full")
    assert at(TODAY + timedelta(days=1), 10, 0) in result.alternatives
    assert [r.state for r in await pending_reminders(services, mine.id)] == ["pending", "pending"]
    async with services.sessions() as session:
        assert (await session.get(Booking, mine.id)).start_at == at(TODAY + timedelta(days=1), 11, 0)  # type: ignore[union-attr]


async def test_upcoming_lists_a_residents_active_bookings(services: Services, small: Catalog) -> None:
    later = await book(services, "助餐", at(TODAY + timedelta(days=3), 11, 0))
    sooner = await book(services, "助餐", at(TODAY + timedelta(days=1), 12, 0))
    await book(services, "助餐", at(TODAY + timedelta(days=1), 12, 0), "o_someone_else")
    async with services.sessions() as session:
        found = await bookings.upcoming(services, session, "o_res")
    assert [b.id for b in found] == [sooner.id, later.id]


async def test_a_place_freed_at_night_is_told_in_the_morning(services: Services, small: Catalog, clock: FakeClock) -> None:
    """A cancellation at 22:00 frees a waitlisted resident's place: that resident and the provider
    are told after the quiet hours (08:00), not at 22:00."""
    start = at(TODAY + timedelta(days=1), 10, 0)
    first = await book(services, "助浴", start, "o_night_first")
    waiting = await book(services, "助浴", start, "o_night_waiting", waitlist=True)
    clock.set(at(TODAY, 22, 0))
    async with services.sessions() as session, session.begin():
        row = await session.get(Booking, first.id)
        assert row is not None
        promoted = await bookings.cancel_booking(services, session, row, "resident:test")
        assert promoted is not None and promoted.id == waiting.id
    async with services.sessions() as session:
        push = await session.scalar(select(OutboxItem).where(OutboxItem.target == "o_night_waiting"))
    assert push is not None and "已为您约上" in push.payload["text"]
    assert push.next_attempt_at.replace(tzinfo=push.next_attempt_at.tzinfo or timezone.utc) == at(TODAY + timedelta(days=1), 8, 0)
