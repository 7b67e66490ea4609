"""Dispatch's reads run on the driver (storage.fastsql), not through the ORM, yet see what an ORM
query would: the transaction's changes not yet flushed (a ticket given to someone else, closed)
count, as the ORM's autoflush made them count. On both backends."""

from __future__ import annotations

import pytest

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
    first = (await new_ticket(svc, resident="o1", building="5", category="lighting")).ticket
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
    yesterday = (await new_ticket(svc, resident="o1", building="5", category="lighting")).ticket
    clock.advance(days=1)
    today = (await new_ticket(svc, resident="o2", building="5", category="water")).ticket
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
    job = (await new_ticket(svc, resident="o1", building="3", category="water", summary="停水了")).ticket
    async with svc.sessions() as session, session.begin():
        report = await tickets.create_ticket(
            session, kind="complaint", resident="o2", fields={}, now=svc.clock.now(), tz=svc.tz, actor="test",
            summary="停水了", category="water", building="3",
        )
        found = await dispatch.find_duplicate(svc, session, report)
        assert found is not None and found.id == job.id
        found.status = "closed"  # not flushed yet
        assert await dispatch.find_duplicate(svc, session, report) is None
