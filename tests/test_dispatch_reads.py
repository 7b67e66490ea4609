"""Dispatch's reads run on the driver (storage.fastsql), not through the ORM, yet see what an ORM
query would: the transaction's changes not yet flushed (a ticket given to someone else, closed)
count, as the ORM's autoflush made them count. On both backends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from bot import dispatch, notices, tickets
from bot.clock import FakeClock
from bot.services import Services
from storage.models import Ticket
from tests.wecom_driver import load_demo_roster, new_ticket


@pytest.fixture
async def svc(services: Services) -> Services:
    await load_demo_roster(services)
    return services


async def test_an_owners_load_counts_a_ticket_given_them_in_the_same_transaction(svc: Services) -> None:
    first = (await new_ticket(svc, resident="o1", building="5", category="照明")).ticket
    assert first.assignee == "lina"
    async with svc.sessions() as session, session.begin():
        assert await dispatch.open_load(session, ["lina", "zhaoqiang"]) == {"lina": 1, "zhaoqiang": 0}
        ticket = await session.get(Ticket, first.id)
        assert ticket is not None
        ticket.assignee = "zhaoqiang"  # not flushed yet
        assert await dispatch.open_load(session, ["lina", "zhaoqiang"]) == {"lina": 0, "zhaoqiang": 1}
        assert await dispatch.open_load(session, []) == {}


async def test_the_number_an_owner_types_sees_a_ticket_given_them_in_the_same_transaction(
    svc: Services, clock: FakeClock,
) -> None:
    yesterday = (await new_ticket(svc, resident="o1", building="5", category="照明")).ticket
    clock.advance(days=1)
    today = (await new_ticket(svc, resident="o2", building="5", category="水电气暖")).ticket
    assert (yesterday.assignee, today.assignee) == ("lina", "zhaoqiang")
    short = notices.short_number(today.number)
    assert short == notices.short_number(yesterday.number)
    async with svc.sessions() as session, session.begin():
        mine = await session.get(Ticket, today.id)
        assert mine is not None
        assert await dispatch.worker_ref(session, mine) == short
        other = await session.get(Ticket, yesterday.id)
        assert other is not None
        other.assignee = "zhaoqiang"  # not flushed yet: zhaoqiang now holds two tickets ending alike
        assert await dispatch.worker_ref(session, mine) == f"{today.number[4:8]}-{short}"


async def test_a_report_closed_in_the_same_transaction_is_no_duplicate(svc: Services) -> None:
    job = (await new_ticket(svc, resident="o1", building="3", category="水电气暖", summary="停水了")).ticket
    async with svc.sessions() as session, session.begin():
        report = await tickets.create_ticket(
            session, kind="complaint", resident="o2", fields={}, now=svc.clock.now(), tz=svc.tz, actor="test",
            summary="停水了", category="水电气暖", building="3",
        )
        found = await dispatch.find_duplicate(svc, session, report)
        assert found is not None and found.id == job.id
        found.status = "closed"  # not flushed yet
        assert await dispatch.find_duplicate(svc, session, report) is None


@contextmanager
def engine_statements(svc: Services) -> Iterator[list[str]]:
    """The statements sent through the engine (the ORM's, not the driver's) while inside."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(svc.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(svc.engine.sync_engine, "before_cursor_execute", record)


async def test_the_duplicate_search_weighs_its_candidates_words_on_the_driver(svc: Services) -> None:
    """A flat's leak and the building's water cut, both open (3号楼, water): a 停水了 is the water
    cut's, a leak into the same flat the leak's — the candidates' words read on the driver with
    their rows locked, the transaction's changes not yet flushed counting (a job's words edited, a
    job closed), and only the job chosen loaded (by its key; none when already at hand): the
    candidates were all loaded through the ORM for every report that had any."""
    leak = (await new_ticket(svc, resident="o1", building="3", category="水电气暖", summary="楼上漏水 天花板一直滴水",
                             fields={"unit": "2", "room": "201"})).ticket
    cut = (await new_ticket(svc, resident="o2", building="3", category="水电气暖", summary="停水了")).ticket
    assert cut.parent_id is None  # not the leak's
    async with svc.sessions() as session, session.begin():
        report = await tickets.create_ticket(
            session, kind="complaint", resident="o3", fields={}, now=svc.clock.now(), tz=svc.tz, actor="test",
            summary="家里停水了", category="水电气暖", building="3",
        )
        same_flat = await tickets.create_ticket(
            session, kind="complaint", resident="o4", fields={"unit": "2", "room": "201"}, now=svc.clock.now(),
            tz=svc.tz, actor="test", summary="天花板渗水", category="水电气暖", building="3",
        )
        found = await dispatch.find_duplicate(svc, session, report)
        assert found is not None and found.id == cut.id
        with engine_statements(svc) as seen:
            again = await dispatch.find_duplicate(svc, session, report)
            assert again is found
        assert seen == []  # the candidates on the driver; the job chosen already at hand
        flat = await dispatch.find_duplicate(svc, session, same_flat)
        assert flat is not None and flat.id == leak.id
        found.summary = "天花板漏水"  # not flushed yet: the water cut's words now a household's
        assert await dispatch.find_duplicate(svc, session, report) is None
        flat.summary = "停水了"  # not flushed yet
        assert (await dispatch.find_duplicate(svc, session, report)) is flat
