"""CPU per message for every step of the benchmark's conversations, in process (no HTTP).

    .venv/bin/python -m bench.steps_bench [--backend embedded|pg_redis] [--rounds 30] [--top 25]

Every script of bench/conversations.py runs to its end (with the closing 取消), a fresh resident
each round, through `bot.dialog.handle` with its delivery key, as the webhook calls it; the clock
moves 30 hours between rounds, so duplicates and bookings meet the earlier rounds' rows as the
load benchmark's do. Prints the CPU per message of all steps together, then the steps that cost
the most: CPU ms per message (`time.process_time()`, this process only), SQL statements per
message (the engine's and the fixed ones), and the step's share of the whole. The costly steps
are where to look first; the statement count does not vary run to run where CPU time does.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.conversations import SCRIPTS
from bench.ticket_bench import StatementCounter, bench_services
from bot import dialog
from bot.clock import FakeClock
from bot.inbound import Inbound
from bot.services import Services

Step = tuple[int, int, str]  # script index, message index, the message's first characters


@dataclass
class StepCosts:
    """What the measured rounds cost, step by step."""

    cpu_s: dict[Step, float]
    statements: Counter[Step]
    count: Counter[Step]
    engine: Counter[Step] = field(default_factory=Counter)  # of statements, the engine's

    @property
    def messages(self) -> int:
        """Messages measured."""
        return sum(self.count.values())

    def per_message_ms(self) -> float:
        """CPU milliseconds per message, all steps together."""
        return 1000 * sum(self.cpu_s.values()) / self.messages if self.messages else 0.0

    def statements_per_message(self) -> float:
        """SQL statements per message, all steps together."""
        return sum(self.statements.values()) / self.messages if self.messages else 0.0

    def engine_statements_per_message(self) -> float:
        """Of those, the statements sent through the engine (SQLAlchemy's execution machinery:
        ORM queries and flushes), per message."""
        return sum(self.engine.values()) / self.messages if self.messages else 0.0

    def costliest(self, top: int) -> list[tuple[Step, float, float, float]]:
        """(step, CPU ms per message, statements per message, share of all CPU), costliest first."""
        total = sum(self.cpu_s.values()) or 1.0
        ranked = sorted(self.cpu_s, key=lambda s: -self.cpu_s[s])[:top]
        return [(s, 1000 * self.cpu_s[s] / self.count[s], self.statements[s] / self.count[s], self.cpu_s[s] / total)
                for s in ranked]


async def measure(svc: Services, clock: FakeClock, rounds: int, warm_up: int = 3) -> StepCosts:
    """Run every script `warm_up` rounds unmeasured, then `rounds` rounds measured."""
    counter = StatementCounter(svc)
    costs = StepCosts(defaultdict(float), Counter(), Counter())
    tag = uuid.uuid4().hex[:6]  # residents of this call only (a delivery is handled once)

    async def run(round_: int, record: bool) -> None:
        for n, script in enumerate(SCRIPTS):
            openid = f"oSteps{tag}{round_:05d}x{n:02d}"
            for i, text in enumerate([*script.messages, "取消"]):
                before, engine, started = counter.count, counter.engine, time.process_time()
                await dialog.handle(
                    svc, Inbound(openid=openid, msg_type="text", text=text, msg_id=f"{round_}-{n}-{i}",
                                 created_at=clock.now()),
                    delivery=f"{openid}:{i}",
                )
                if record:
                    step = (n, i, text[:8])
                    costs.cpu_s[step] += time.process_time() - started
                    costs.statements[step] += counter.count - before
                    costs.engine[step] += counter.engine - engine
                    costs.count[step] += 1
        clock.advance(hours=30)

    for round_ in range(warm_up):
        await run(round_, record=False)
    for round_ in range(warm_up, warm_up + rounds):
        await run(round_, record=True)
    return costs


async def main_async(backend: str, rounds: int, top: int) -> None:
    """Measure on backend and print the figures."""
    with tempfile.TemporaryDirectory(prefix="steps-bench-") as tmp:
        clock = FakeClock()
        async with bench_services(backend, Path(tmp), clock) as svc:
            costs = await measure(svc, clock, rounds)
    print(f"backend {backend}, {rounds} rounds, {costs.messages} messages: "
          f"{costs.per_message_ms():.2f} ms CPU and {costs.statements_per_message():.2f} SQL statements per message "
          f"({costs.engine_statements_per_message():.3f} through the engine)")
    print("  CPU ms  statements  share  step (script, message, text)")
    for (n, i, text), ms, statements, share in costs.costliest(top):
        print(f"  {ms:6.2f}  {statements:10.1f}  {share:5.1%}  {n:2d} {i:2d} {text}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("embedded", "pg_redis"), default="embedded")
    parser.add_argument("--rounds", type=int, default=30, help="measured rounds of every script")
    parser.add_argument("--top", type=int, default=25, help="how many of the costliest steps to list")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args.backend, args.rounds, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
