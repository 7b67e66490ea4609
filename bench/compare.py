"""Before and after, alternately: the bot at an earlier commit against the checkout, same load.

    .venv/bin/python -m bench.compare --before c1d8b42 [--after REV] [--pairs 3] [--duration 15] [--residents 40]
        [--backend embedded|pg_redis]

On a shared machine the speed drifts by tens of percent within minutes, so two figures taken
apart compare the machine as much as the code. This runs the two versions in turns (before,
after, before, after, ...), each as `communitybot serve` on the embedded default from its own
tree (the earlier commit in a temporary git worktree; with --after, the later one too, so that
uncommitted work in the checkout stays out of the figures) with a fresh database, under the closed
loop of `communitybot bench` after a warm-up, and prints each run's messages per second and the
bot's CPU per message (its process tree's user + system time over the messages answered), then
the medians. The API stand-ins of bench/echo_server.py take the outbox's pushes. With
`--backend pg_redis` each run is one worker on a fresh PostgreSQL database and a flushed Redis
database (as `communitybot bench --backend pg_redis`); the figure is still the worker's own CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.load import Driver
from bench.runner import REDIS_BENCH, _admin_sql, _flush_redis, echo_server, free_port, process, tree_cpu_s, wait_http
from bot.settings import load_settings
from bot.sim.wechat_client import WeChatSigner

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    """One measured run of one side."""

    side: str
    rate: float  # messages answered per second
    cpu_ms: float  # bot CPU per message


Measure = Callable[[str], Awaitable[Run]]


async def alternate(sides: tuple[str, str], pairs: int, measure: Measure) -> list[Run]:
    """pairs rounds of both sides in turn, the first side first in every round."""
    runs = []
    for _ in range(pairs):
        for side in sides:
            runs.append(await measure(side))
    return runs


def medians(runs: list[Run]) -> dict[str, tuple[float, float]]:
    """side → (median msg/s, median CPU ms per message)."""
    out = {}
    for side in dict.fromkeys(r.side for r in runs):
        mine = [r for r in runs if r.side == side]
        out[side] = (statistics.median(r.rate for r in mine), statistics.median(r.cpu_ms for r in mine))
    return out


@contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A detached git worktree of rev in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="cb-compare-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path), rev], check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False)


async def measure_tree(root: Path, side: str, api_base: str, args: argparse.Namespace, tmp: Path) -> Run:
    """Serve the bot from root (its own code first on the path), drive it, stop it."""
    settings = load_settings()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(root), "CB_PORT": str(port), "CB_SIMULATOR": "0",
           "CB_VAR_DIR": str(tmp / f"var-{side}-{port}"), "CB_WECHAT_API_BASE": api_base,
           "CB_WECOM_API_BASE": api_base, "CB_LOG_LEVEL": "WARNING"}
    for name in ("CB_DATABASE_URL", "CB_REDIS_URL"):
        env.pop(name, None)
    db_name = None
    if getattr(args, "backend", "embedded") == "pg_redis":
        db_name = f"cb_compare_{port}"
        await _admin_sql(f'CREATE DATABASE "{db_name}"')
        await _flush_redis()
        env["CB_DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db_name}"
        env["CB_REDIS_URL"] = REDIS_BENCH
    exe = [sys.executable, "-m", "bot.cli"]  # run from root: `-m` puts the working directory first
    try:
        subprocess.run([*exe, "db", "upgrade"], env=env, cwd=root, check=True, capture_output=True)
        with process([*exe, "serve"], env, tmp / f"bot-{side}-{port}.log", cwd=root) as proc:
            await wait_http(f"http://127.0.0.1:{port}/healthz")
            signer = WeChatSigner(settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key)
            driver = Driver(f"http://127.0.0.1:{port}/wechat", signer, encrypt=False, retry_share=0.05, seed=7)
            await driver.closed_loop(args.residents, 3.0)  # warm-up
            before = tree_cpu_s(proc.pid)
            stats = await driver.closed_loop(args.residents, args.duration)
            spent = tree_cpu_s(proc.pid) - before
    finally:
        if db_name is not None:
            await _admin_sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    return Run(side, stats.rate, 1000 * spent / stats.messages if stats.messages else 0.0)


async def main_async(args: argparse.Namespace) -> list[Run]:
    """Measure both sides alternately and print the figures."""
    after = args.after or "checkout"
    with ExitStack() as trees, tempfile.TemporaryDirectory(prefix="cb-compare-") as tmpdir:
        roots = {args.before: trees.enter_context(worktree(args.before)),
                 after: trees.enter_context(worktree(args.after)) if args.after else REPO}
        tmp = Path(tmpdir)
        async with echo_server(tmp) as echo:
            api_base = echo.base
            runs = await alternate(
                (args.before, after), args.pairs,
                lambda side: measure_tree(roots[side], side, api_base, args, tmp),
            )
    for run in runs:
        print(f"  {run.side:>12}: {run.rate:7.1f} msg/s, bot CPU {run.cpu_ms:5.2f} ms per message")
    for side, (rate, cpu) in medians(runs).items():
        print(f"median {side:>12}: {rate:7.1f} msg/s, bot CPU {cpu:5.2f} ms per message")
    return runs


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--after", help="the later commit (default: the checkout as it is, uncommitted work included)")
    parser.add_argument("--pairs", type=int, default=3, help="rounds of before-then-after")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of closed loop per run")
    parser.add_argument("--residents", type=int, default=40, help="concurrent residents")
    parser.add_argument("--backend", choices=("embedded", "pg_redis"), default="embedded",
                        help="pg_redis: one worker on PostgreSQL + Redis (a fresh database per run)")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
