"""未诉先办: the same category at one building (or grid) reported N times in M days opens one
proactive ticket for the grid's worker, and not again while it is open."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot import dispatch, hotspots, tickets
from bot.clock import FakeClock
from bot.services import Services
from storage.models import Ticket
from tests.wecom_driver import load_demo_roster, new_ticket


@pytest.fixture
async def svc(services: Services) -> Services:
    await load_demo_roster(services)
    return services


async def report_and_close(
    svc: Services, clock: FakeClock, building: str, category: str, n: int, step_h: float = 24
) -> list[str]:
    """n separate incidents (each resolved and closed before the next, so none is a duplicate)."""
    numbers = []
    for i in range(n):
        t = (await new_ticket(svc, resident=f"o_{building}_{category}_{i}", building=building, category=category)).ticket
        async with svc.sessions() as session, session.begin():
            row = await tickets.get_by_number(session, t.number, for_update=True)
            assert row is not None
            await dispatch.apply_action(svc, session, row, "close", "staff")
        numbers.append(t.number)
        clock.advance(hours=step_h)
    return numbers


async def proactive(svc: Services) -> list[Ticket]:
    async with svc.sessions() as session:
        return list(await session.scalars(select(Ticket).where(Ticket.proactive.is_(True)).order_by(Ticket.id)))


async def test_three_reports_in_a_week_open_one_proactive_ticket(svc: Services, clock: FakeClock) -> None:
    sources = await report_and_close(svc, clock, "3", "照明", 3)
    [opened] = await hotspots.open_hotspot_tickets(svc)
    assert opened.hotspot.scope == "building" and opened.assignee == "wangwei"
    [t] = await proactive(svc)
    assert (t.kind, t.category, t.building, t.grid, t.status, t.resident) == (
        "complaint", "照明", "3", "G1", "dispatched", None)
    assert t.fields["sources"] == sources and t.fields["source"] == "主动治理"
    assert "主动治理" in t.summary and "3号楼" in t.summary and "3次" in t.summary
    assert await hotspots.open_hotspot_tickets(svc) == []  # not again while it is open


async def test_no_hotspot_below_the_threshold_or_outside_the_window(svc: Services, clock: FakeClock) -> None:
    await report_and_close(svc, clock, "3", "照明", 2)
    assert await hotspots.open_hotspot_tickets(svc) == []
    clock.advance(days=10)
    await report_and_close(svc, clock, "3", "照明", 1)
    assert await hotspots.open_hotspot_tickets(svc) == []  # the first two are out of the 7 days
    await report_and_close(svc, clock, "3", "水电气暖", 2)
    assert await hotspots.open_hotspot_tickets(svc) == []  # another category


async def test_a_grid_wide_hotspot_across_buildings(svc: Services, clock: FakeClock) -> None:
    for building in ("4", "5", "6"):
        await report_and_close(svc, clock, building, "环境卫生", 1)
    [opened] = await hotspots.open_hotspot_tickets(svc)
    assert (opened.hotspot.scope, opened.hotspot.place) == ("grid", "G2")
    [t] = await proactive(svc)
    assert (t.grid, t.building, t.status) == ("G2", None, "dispatched") and t.assignee in ("lina", "zhaoqiang")
    assert "望湖第二网格" in t.summary


async def test_reports_behind_a_closed_proactive_ticket_do_not_count_again(svc: Services, clock: FakeClock) -> None:
    await report_and_close(svc, clock, "8", "电梯", 3)
    [first] = await hotspots.open_hotspot_tickets(svc)
    async with svc.sessions() as session, session.begin():
        row = await tickets.get_by_number(session, first.number, for_update=True)
        assert row is not None
        await dispatch.apply_action(svc, session, row, "close", "staff")
    assert await hotspots.open_hotspot_tickets(svc) == []
    await report_and_close(svc, clock, "8", "电梯", 3)
    [second] = await hotspots.open_hotspot_tickets(svc)
    assert second.number != first.number and second.hotspot.key == first.hotspot.key


async def test_the_daily_job_runs_once_a_day(svc: Services, clock: FakeClock) -> None:
    await report_and_close(svc, clock, "3", "照明", 3)
    assert [o.hotspot.key for o in await hotspots.run_daily(svc)] == ["building:3:照明"]
    await report_and_close(svc, clock, "4", "噪音", 3, step_h=1)
    assert await hotspots.run_daily(svc) == []  # today's run is done (in any process)
    clock.advance(days=1)
    assert [o.hotspot.key for o in await hotspots.run_daily(svc)] == ["building:4:噪音"]


async def test_linked_duplicates_count_once(svc: Services, clock: FakeClock) -> None:
    for i in range(3):  # three neighbours report the same broken light at once: one incident
        await new_ticket(svc, resident=f"o_same_{i}", building="2", category="照明")
    clock.advance(timedelta(hours=1).total_seconds())
    assert await hotspots.open_hotspot_tickets(svc) == []
