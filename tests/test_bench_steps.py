"""bench/steps_bench.py: every step of the benchmark's conversations measured, statements counted
whether the engine or the fixed-statement path sent them."""

from __future__ import annotations

import pytest

from bench import steps_bench
from bench.conversations import SCRIPTS, TICKET
from bot import roster
from bot.clock import FakeClock
from bot.services import Services


@pytest.fixture
def backend() -> str:
    return "embedded"


async def test_every_step_is_measured_with_its_statements(services: Services, clock: FakeClock) -> None:
    await roster.import_roster(services, services.settings.roster_path)
    costs = await steps_bench.measure(services, clock, rounds=1, warm_up=0)

    assert costs.messages == sum(len(s.messages) + 1 for s in SCRIPTS)  # each script, then 取消
    assert all(n == 1 for n in costs.count.values())
    by_step = {(n, i): costs.statements[step] for step in costs.count for n, i, _text in [step]}
    # A plain step writes its fixed rows (resident, message in, reply, nudge): counted, though the
    # engine never sees them.
    assert by_step[(0, 2)] >= 4  # the phone number of the first complaint
    # A confirmation that writes a ticket sends several times what a plain step does.
    confirmations = [(n, len(s.messages) - 1) for n, s in enumerate(SCRIPTS)
                     if s.expect == TICKET and s.messages[-1] == "确认"]
    assert confirmations and all(by_step[c] > 2 * by_step[(0, 2)] for c in confirmations)
    top = costs.costliest(3)
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1] > 0
    assert 0 < costs.per_message_ms() and 0 < costs.statements_per_message()


async def test_the_duplicate_search_is_timed_against_a_burst(services: Services, clock: FakeClock) -> None:
    """bench.ticket_bench --burst: the reports of the burst are written, the search finds none of
    them (they are at other buildings), and its CPU is measured."""
    from sqlalchemy import func, select

    from bench.ticket_bench import duplicate_search
    from storage.models import Ticket

    ms = await duplicate_search(services, clock, others=20, searches=5)
    assert ms > 0
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Ticket).where(Ticket.category == "water")) == 20
