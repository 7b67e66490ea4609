"""CPU per ticket: the flows' ticket path alone, and whole conversations to a ticket.

    .venv/bin/python -m bench.ticket_bench [--backend embedded|pg_redis] [--n 300] [--rounds 3] [--calls]

Services are opened as the test fixtures open them (a migrated SQLite file on a temp dir with
the embedded store, or a fresh PostgreSQL database dropped afterwards with Redis under a
throw-away key prefix), the demo roster is loaded, and the clock is a FakeClock. Figures are
`time.process_time()` deltas (this process only: on PostgreSQL the server's own CPU is not
counted), after a warm-up of the same work, the best of a few rounds; on a shared machine they
vary run to run, so `--calls` adds two figures that do not: SQL statements and Python function
calls per ticket.

1. `create_and_dispatch` with a realistic Context, one transaction per ticket, as the complaint
   flow calls it: "routed" tickets (buildings and categories cycle, and the clock passes the
   duplicate window after each cycle, so each is assigned or queued for staff) and "linked"
   tickets (the same building and category, so each joins the first as a duplicate).
2. Conversations to a ticket (six complaints, one mediation; bench/conversations.py's scripts,
   a fresh resident each) through `bot.dialog.handle`: CPU per message, and for the
   confirmation message that writes the ticket.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event

from bot.clock import FakeClock
from bot.services import Services, open_services
from bot.settings import load_settings
from storage import fastsql

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("CB_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CB_TEST_REDIS", "redis://127.0.0.1:6379/0")
CATEGORIES = ("lighting", "water", "lift", "noise", "garbage", "parking", "drain", "other")
BUILDINGS = tuple(str(b) for b in range(1, 13)) + ("99",)  # 99: in no grid, queued for staff


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def bench_services(backend: str, tmp: Path, clock: FakeClock) -> AsyncIterator[Services]:
    """Migrated services on backend with the demo roster loaded; the database is removed after."""
    from bot import roster
    from storage.migrate import upgrade_async

    pg_name = ""
    if backend == "pg_redis":
        pg_name = f"cb_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        await _pg_admin(f'CREATE DATABASE "{pg_name}"')
        url, redis_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{pg_name}", REDIS_URL
    else:
        url, redis_url = f"sqlite+aiosqlite:///{tmp / 'bot.db'}", ""
    try:
        await upgrade_async(url)
        settings = load_settings(
            database_url=url, redis_url=redis_url, var_dir=str(tmp / "var"), simulator=False,
            outbox_sender=False, scheduler=False, roster=str(REPO / "config" / "roster.toml"),
        )
        svc = open_services(settings, clock=clock)
        svc.store.with_prefix(f"cbb{uuid.uuid4().hex[:8]}")
        try:
            await roster.import_roster(svc, settings.roster_path)
            yield svc
        finally:
            await svc.close()
    finally:
        if pg_name:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


async def _cpu_ms_each(n: int, one: Callable[[int], Awaitable[None]], start_at: int = 0) -> float:
    """CPU milliseconds per call of one(i), for i in range(start_at, start_at + n)."""
    start = time.process_time()
    for i in range(start_at, start_at + n):
        await one(i)
    return 1000 * (time.process_time() - start) / n


async def _best_of(rounds: int, n: int, one: Callable[[int], Awaitable[None]]) -> float:
    """The lowest CPU ms per call over rounds of n calls (the least disturbed by the machine)."""
    return min([await _cpu_ms_each(n, one, r * n) for r in range(rounds)])


async def _function_calls_each(n: int, one: Callable[[int], Awaitable[None]], start_at: int) -> float:
    """Python function calls (cProfile's count) per call of one(i): steady where CPU time is noisy."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    for i in range(start_at, start_at + n):
        await one(i)
    profile.disable()
    return pstats.Stats(profile).total_calls / n  # type: ignore[attr-defined]


class StatementCounter:
    """Counts the SQL statements sent (a figure that does not vary run to run): the engine's,
    and the fixed statements storage.fastsql runs on the driver, which the engine never sees."""

    def __init__(self, svc: Services) -> None:
        self._engine = 0
        self._fixed_at_start = fastsql.Counter.executed
        event.listen(svc.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: object) -> None:
        self._engine += 1

    @property
    def count(self) -> int:
        """Statements so far."""
        return self._engine + fastsql.Counter.executed - self._fixed_at_start

    @property
    def engine(self) -> int:
        """Of those, the statements the engine sent (an ORM query or flush, a Core execute)."""
        return self._engine


async def ticket_path(
    svc: Services, clock: FakeClock, n: int, rounds: int = 3, calls: bool = False
) -> dict[str, float]:
    """CPU ms per create_and_dispatch (best of rounds), for routed and for linked tickets; with
    calls, also the function calls per ticket of one more round of each."""
    from bot.flows import registry
    from bot.flows.base import Context
    from bot.flows.finish import create_and_dispatch
    from bot.inbound import Inbound
    from storage.models import Resident

    flow = registry.get("complaint")
    assert flow is not None
    cycle = len(BUILDINGS) * len(CATEGORIES)
    window = timedelta(days=7)  # past the duplicate window (24 h); same weekday and hour

    async def create(i: int, building: str, category: str) -> None:
        openid = f"oBench{i:06d}"
        now = clock.now()
        async with svc.sessions() as session, session.begin():
            resident = Resident(openid=openid, created_at=now, updated_at=now)
            ctx = Context(svc, session, resident, Inbound(openid=openid, msg_type="text", text="确认"), now)
            await create_and_dispatch(
                ctx, flow, summary=f"{category}｜{building}号楼2单元楼道｜灯坏了，晚上黑乎乎的",
                category=category, building=building,
                fields={
                    "category": category, "place": f"{building}号楼2单元楼道", "building": building,
                    "unit": "2", "room": None, "landmark": None, "location": None,
                    "description": "灯坏了，晚上黑乎乎的", "photos": [], "urgency": None,
                    "phone": "13800138001",
                },
            )

    async def routed(i: int) -> None:
        if i and i % cycle == 0:
            clock.advance(window.total_seconds())
        await create(i, BUILDINGS[i % len(BUILDINGS)], CATEGORIES[(i // len(BUILDINGS)) % len(CATEGORIES)])

    async def linked(i: int) -> None:
        await create(2 * 10**6 + i, "3", "lighting")

    statements = StatementCounter(svc)
    await _cpu_ms_each(min(n, 50), routed, 10**6)  # warm-up: statement caches, imports
    clock.advance(window.total_seconds())
    before = statements.count
    routed_ms = await _best_of(rounds, n, routed)
    routed_sql = (statements.count - before) / (rounds * n)
    routed_calls = await _function_calls_each(n, routed, rounds * n) if calls else 0.0
    clock.advance(window.total_seconds())
    await _cpu_ms_each(min(n, 50), linked, 10**6)
    before = statements.count
    linked_ms = await _best_of(rounds, n, linked)
    linked_sql = (statements.count - before) / (rounds * n)
    linked_calls = await _function_calls_each(n, linked, rounds * n) if calls else 0.0
    return {
        "routed": routed_ms, "linked": linked_ms, "routed_sql": routed_sql, "linked_sql": linked_sql,
        "routed_calls": routed_calls, "linked_calls": linked_calls,
    }


async def conversations(svc: Services, clock: FakeClock, n: int) -> dict[str, float]:
    """CPU ms per message of whole conversations to a ticket (complaints, a mediation), and of
    their confirmation message."""
    from bench.conversations import SCRIPTS, TICKET
    from bot import dialog
    from bot.inbound import Inbound

    # The first seven scripts that end confirmed: six complaints and one mediation.
    complaints = [s.messages for s in SCRIPTS if s.expect == TICKET and s.messages[-1] == "确认"][:7]
    total = {"messages": 0, "all": 0.0, "confirm": 0.0, "tickets": 0}

    async def run(i: int) -> None:
        openid = f"oBenchChat{i:06d}"
        script = complaints[i % len(complaints)]
        if i and i % len(complaints) == 0:
            clock.advance(days=7)  # a new round routes again instead of linking
        for j, text in enumerate(script):
            start = time.process_time()
            reply = await dialog.handle(
                svc, Inbound(openid=openid, msg_type="text", text=text, msg_id=f"{i}-{j}", created_at=clock.now())
            )
            spent = time.process_time() - start
            total["messages"] += 1
            total["all"] += spent
            if j == len(script) - 1:
                total["confirm"] += spent
                total["tickets"] += TICKET in (reply or "")

    await _cpu_ms_each(min(n, 30), run, 10**6)  # warm-up
    for key in total:
        total[key] = 0
    await _cpu_ms_each(n, run)
    return {
        "per_message": 1000 * total["all"] / total["messages"],
        "confirm": 1000 * total["confirm"] / n,
        "other": 1000 * (total["all"] - total["confirm"]) / (total["messages"] - n),
        "tickets": total["tickets"],
        "messages": total["messages"],
    }


async def duplicate_search(svc: Services, clock: FakeClock, others: int, searches: int = 50) -> float:
    """CPU ms of one duplicate search (dispatch.find_duplicate) for a new complaint while `others`
    active reports of its category stand at other buildings: a burst of one kind of problem."""
    from bot import dispatch, tickets

    async with svc.sessions() as session, session.begin():
        for i in range(others):
            await tickets.create_ticket(
                session, kind="complaint", resident=f"oBurst{i:06d}", fields={}, now=clock.now(), tz=svc.tz,
                actor="bench", category="water", building=f"{100 + i}号楼",
            )
    async with svc.sessions() as session, session.begin():
        new = await tickets.create_ticket(
            session, kind="complaint", resident="oBurstNew", fields={}, now=clock.now(), tz=svc.tz,
            actor="bench", category="water", building="3号楼",
        )
        for _ in range(3):  # warm-up
            await dispatch.find_duplicate(svc, session, new)
        start = time.process_time()
        for _ in range(searches):
            assert await dispatch.find_duplicate(svc, session, new) is None
        spent = time.process_time() - start
        await session.rollback()
    return 1000 * spent / searches


async def main_async(backend: str, n: int, rounds: int, calls: bool = False, burst: int = 0) -> None:
    """Run both measurements on backend and print the figures."""
    with tempfile.TemporaryDirectory(prefix="ticket-bench-") as tmp:
        clock = FakeClock()
        async with bench_services(backend, Path(tmp), clock) as svc:
            path = await ticket_path(svc, clock, n, rounds, calls)
            chat = await conversations(svc, clock, max(n // 5, 10))
            if burst:
                clock.advance(days=7)
                search_ms = await duplicate_search(svc, clock, burst)
    print(f"backend {backend}, n={n}, best of {rounds} rounds: CPU ms (this process)")
    print(f"  create_and_dispatch, routed:  {path['routed']:.2f} ms/ticket "
          f"({path['routed_sql']:.1f} SQL statements/ticket incl. begin/commit)")
    print(f"  create_and_dispatch, linked:  {path['linked']:.2f} ms/ticket "
          f"({path['linked_sql']:.1f} SQL statements/ticket)")
    if calls:
        print(f"  function calls/ticket: routed {path['routed_calls']:,.0f}, linked {path['linked_calls']:,.0f}")
    print(f"  conversations to a ticket:    {chat['per_message']:.2f} ms/message "
          f"({chat['messages']} messages, {chat['tickets']} tickets)")
    print(f"    confirmation (writes the ticket): {chat['confirm']:.2f} ms; other messages {chat['other']:.2f} ms")
    if burst:
        print(f"  duplicate search with {burst:,} active reports of the category elsewhere: {search_ms:.3f} ms")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("embedded", "pg_redis"), default="embedded")
    parser.add_argument("--n", type=int, default=300, help="tickets per measured round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per phase; the best is shown")
    parser.add_argument("--calls", action="store_true", help="also count function calls per ticket (cProfile)")
    parser.add_argument("--burst", type=int, default=0, metavar="N",
                        help="also time the duplicate search with N active reports of one category elsewhere")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.backend, args.n, args.rounds, args.calls, args.burst))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
