"""Ticket numbers, creation and the status machine, on both databases."""

from __future__ import annotations

import asyncio

import pytest

from bot import tickets
from bot.clock import FakeClock
from bot.services import Services


async def _create(svc: Services, kind: str = "complaint") -> str:
    async with svc.sessions() as session, session.begin():
        t = await tickets.create_ticket(
            session, kind=kind, resident="o1", fields={"place": "3号楼"}, now=svc.clock.now(),
            tz=svc.tz, actor="test",
        )
        return t.number


async def test_numbers_are_daily_and_unique_under_concurrency(services: Services, clock: FakeClock) -> None:
    numbers = await asyncio.gather(*(_create(services) for _ in range(12)))
    assert len(set(numbers)) == 12
    assert all(n.startswith("20261123-") for n in numbers)
    assert sorted(int(n.split("-")[1]) for n in numbers) == list(range(1, 13))
    clock.advance(hours=24)
    assert await _create(services) == "20261124-0001"


async def test_transitions_and_history(services: Services) -> None:
    number = await _create(services)
    now = services.clock.now()
    async with services.sessions() as session, session.begin():
        t = await tickets.get_by_number(session, number, for_update=True)
        assert t is not None
        await tickets.transition(session, t, "assign", "staff", now)
        await tickets.transition(session, t, "accept", "wangwei", now)
        with pytest.raises(tickets.TransitionError):
            await tickets.transition(session, t, "accept", "wangwei", now)
        await tickets.transition(session, t, "resolve", "wangwei", now, note="已更换灯泡")
        events = await tickets.events_of(session, t)
    assert [e.action for e in events] == ["created", "assign", "accept", "resolve"]
    assert events[-1].from_status == "accepted" and events[-1].to_status == "resolved"
    assert tickets.ticket_json(t)["status"] == "resolved"


async def test_bad_kind_refused(services: Services) -> None:
    with pytest.raises(ValueError):
        await _create(services, kind="nonsense")


async def test_a_new_ticket_is_in_the_session_as_written_and_changes_flush_as_an_update(services: Services) -> None:
    """create_ticket writes the row with a fixed INSERT and hands the session the ticket as if
    loaded: every column is readable without a query, nothing is pending, and a later change
    (routing does this) is written by the ORM when the transaction commits."""
    from sqlalchemy import inspect, select

    from storage.models import Ticket

    now = services.clock.now()
    async with services.sessions() as session, session.begin():
        t = await tickets.create_ticket(
            session, kind="complaint", resident="o1", fields={"place": "３号楼", "photos": ["m1"]}, now=now,
            tz=services.tz, actor="test", summary="灯坏了", category="lighting", building="３号楼",
        )
        state = inspect(t)
        assert state.persistent and not state.expired_attributes and not state.unloaded - {"events"}
        assert t in session and t not in session.dirty and t not in session.new
        assert (t.status, t.reporters, t.overdue, t.proactive, t.assignee) == ("open", 1, False, False, None)
        assert t.building_key == "3" and t.created_at == now and t.created_at.tzinfo is not None
        t.assignee, t.status = "wangwei", "dispatched"
        assert t in session.dirty
    async with services.sessions() as session:
        row = (await session.scalars(select(Ticket).where(Ticket.id == t.id))).one()
        assert (row.number, row.assignee, row.status) == (t.number, "wangwei", "dispatched")
        assert row.fields == {"place": "３号楼", "photos": ["m1"]} and row.summary == "灯坏了"
        assert row.created_at == now and row.building_key == "3"
        assert [e.action for e in await tickets.events_of(session, row)] == ["created"]
