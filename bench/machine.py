"""How much two busy processes get out of this machine at once, against one alone.

The scaling target asks two workers for 1.6× one. On a machine whose two virtual cores share a
physical core, or a host busy with other guests, two CPU-bound processes at once do well under 2×
one, whatever they run; this measures that ceiling in the same minute as the workers, with a
pure-Python loop that shares nothing (no lock, no I/O, no memory traffic to speak of)."""

from __future__ import annotations

import multiprocessing
import statistics
import time


def _spin(seconds: float, out: multiprocessing.queues.Queue) -> None:  # type: ignore[name-defined]
    """Count loop turns for `seconds` of wall time and put the count on out."""
    turns, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(10_000):
            pass
        turns += 1
    out.put(turns)


def _run(processes: int, seconds: float) -> int:
    """Loop turns of `processes` spinning at once, summed."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_spin, args=(seconds, out)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    counts = [out.get(timeout=seconds + 30) for _ in procs]
    for proc in procs:
        proc.join()
    return sum(counts)


def parallel_speedup(processes: int = 2, seconds: float = 2.0, rounds: int = 2) -> float:
    """What `processes` CPU-bound processes at once do against one alone (2.0 on two idle cores of
    their own); the median of `rounds` alternations, one alone then all together."""
    ratios = []
    for _ in range(rounds):
        alone = _run(1, seconds)
        together = _run(processes, seconds)
        ratios.append(together / alone if alone else 0.0)
    return statistics.median(ratios)


def shared_ceiling(worker_ms: float, others_ms: float, workers: int = 2, cores: int = 2) -> float:
    """The most `workers` workers can do over one when they share `cores` with the services and
    the load generator: a message costs worker_ms in a worker and others_ms elsewhere (PostgreSQL,
    Redis, the load generator), one worker at its maximum keeps one core busy, and the cores are
    shared out by CPU: min(workers, cores × worker_ms / (worker_ms + others_ms))."""
    if worker_ms <= 0:
        return 0.0
    return min(float(workers), cores * worker_ms / (worker_ms + others_ms))


if __name__ == "__main__":
    print(f"two CPU-bound processes at once: {parallel_speedup():.2f}x one")
