"""未诉先办: find problems that keep coming back and open one proactive ticket for each.

A hotspot is the same category reported at the same building (or, failing that, anywhere in the
same grid) `threshold` times within `window_days` (config/schedule.toml). Reports are distinct
incidents: linked duplicates (同一问题多人反映) count once, through their parent. Each hotspot
opens ONE proactive complaint ("主动治理", fields listing the source tickets) for the grid's
worker, and none again while it is open; a report behind one proactive ticket never counts again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import dispatch, roster, tickets
from bot.clock import local
from bot.schedule import HotspotRule, load_schedule_config
from bot.services import Services
from storage.models import Ticket

log = logging.getLogger(__name__)

ACTOR = "system:hotspots"


@dataclass(frozen=True)
class Hotspot:
    """A recurring problem: scope ('building' or 'grid'), place, category and its source tickets."""

    scope: str
    place: str
    grid: str | None
    category: str
    numbers: tuple[str, ...]

    @property
    def key(self) -> str:
        """Identifies the hotspot across runs: scope, place and category."""
        return f"{self.scope}:{self.place}:{self.category}"


@dataclass(frozen=True)
class Opened:
    """A proactive ticket opened for a hotspot, and who it went to (None: the staff queue)."""

    hotspot: Hotspot
    number: str
    assignee: str | None


async def _proactive(session: AsyncSession) -> tuple[set[str], set[str]]:
    """Report numbers already behind a proactive ticket, and the hotspot keys still open."""
    rows = await session.scalars(select(Ticket).where(Ticket.proactive.is_(True)))
    used: set[str] = set()
    active: set[str] = set()
    for ticket in rows:
        fields = ticket.fields or {}
        used.update(str(n) for n in fields.get("sources", []) or [])
        if fields.get("hotspot") and ticket.status in tickets.ACTIVE:
            active.add(str(fields["hotspot"]))
    return used, active


async def find_hotspots(session: AsyncSession, now: datetime, rule: HotspotRule) -> list[Hotspot]:
    """Hotspots as of now, from reports not yet behind a proactive ticket: per building first,
    then per grid from the reports no building hotspot took."""
    since = now - timedelta(days=rule.window_days)
    rows = await session.scalars(
        select(Ticket)
        .where(
            Ticket.kind == "complaint", Ticket.proactive.is_(False), Ticket.parent_id.is_(None),
            Ticket.status != "cancelled", Ticket.category.is_not(None), Ticket.created_at >= since,
        )
        .order_by(Ticket.created_at, Ticket.id)
    )
    used, _ = await _proactive(session)
    reports = [t for t in rows if t.number not in used]
    grid_of: dict[int, str | None] = {}
    cache: dict[str, str | None] = {}
    by_building: dict[tuple[str, str], list[Ticket]] = defaultdict(list)
    for ticket in reports:
        building = roster.normalize_building(ticket.building) if ticket.building else ""
        grid = ticket.grid
        if grid is None and building:
            if building not in cache:
                found = await roster.grid_of_building(session, building)
                cache[building] = found.id if found else None
            grid = cache[building]
        grid_of[ticket.id] = grid
        if building:
            by_building[(building, str(ticket.category))].append(ticket)

    spots: list[Hotspot] = []
    taken: set[int] = set()
    for (building, category), group in by_building.items():
        if len(group) >= rule.threshold:
            grid = grid_of[group[-1].id]
            spots.append(Hotspot("building", building, grid, category, tuple(t.number for t in group)))
            taken.update(t.id for t in group)
    by_grid: dict[tuple[str, str], list[Ticket]] = defaultdict(list)
    for ticket in reports:
        grid = grid_of[ticket.id]
        if grid and ticket.id not in taken:
            by_grid[(grid, str(ticket.category))].append(ticket)
    for (grid, category), group in by_grid.items():
        if len(group) >= rule.threshold:
            spots.append(Hotspot("grid", grid, grid, category, tuple(t.number for t in group)))
    return spots


async def _open_one(svc: Services, session: AsyncSession, spot: Hotspot) -> Opened:
    t = svc.texts
    now = svc.clock.now()
    rule = load_schedule_config().hotspots
    grid = await roster.grid(session, spot.grid)
    place = (
        t.get("hotspots.place_building", building=spot.place) if spot.scope == "building"
        else t.get("hotspots.place_grid", grid=grid.name if grid else spot.place)
    )
    summary = t.get("hotspots.summary", place=place, category=spot.category, days=rule.window_days, count=len(spot.numbers))
    ticket = await tickets.create_ticket(
        session, kind="complaint", resident=None, now=now, tz=svc.tz, actor=ACTOR, summary=summary,
        # The category is set after routing, so dispatch's duplicate check does not fold the
        # proactive ticket into one of its own source reports.
        category=None, building=spot.place if spot.scope == "building" else None, proactive=True,
        fields={
            "source": t.get("hotspots.source"), "hotspot": spot.key, "scope": spot.scope,
            "place": place, "category": spot.category, "sources": list(spot.numbers),
            "description": summary,
        },
    )
    if spot.scope == "building":
        await dispatch.dispatch_new(svc, session, ticket)
    else:
        ticket.grid = spot.grid
        candidates = [p for p in await roster.people_with_role(session, "grid_worker") if grid and p.id in (grid.workers or [])]
        owner = await dispatch.least_loaded(session, candidates)
        if owner is not None:
            await dispatch.apply_action(svc, session, ticket, "assign", ACTOR, assignee=owner.id,
                                        note=t.get("hotspots.reason"))
        else:
            await dispatch.escalate_to_staff(svc, session, ticket, t.get("hotspots.reason"))
    ticket.category = spot.category
    log.info("hotspot ticket opened", extra={"fields": {"hotspot": spot.key, "number": ticket.number}})
    return Opened(spot, ticket.number, ticket.assignee)


async def open_hotspot_tickets(svc: Services) -> list[Opened]:
    """Find today's hotspots and open one proactive ticket for each not already open."""
    rule = load_schedule_config().hotspots
    opened: list[Opened] = []
    async with svc.sessions() as session, session.begin():
        spots = await find_hotspots(session, svc.clock.now(), rule)
        _, active = await _proactive(session)
        for spot in spots:
            if spot.key not in active:
                opened.append(await _open_one(svc, session, spot))
    return opened


async def run_daily(svc: Services) -> list[Opened]:
    """The daily job: once per local day across every process (a state-store claim), open tickets."""
    day = local(svc.clock.now(), svc.tz).strftime("%Y%m%d")
    if not await svc.store.set_if_absent(svc.store.key("hotspots", day), 1, ttl=2 * 86400):
        return []
    return await open_hotspot_tickets(svc)
