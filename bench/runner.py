"""`communitybot bench`: the bot against a bare echo webhook under the same load, in one run.

Starts the baseline (bench/echo_server.py) and the bot (`communitybot serve`, embedded or on
PostgreSQL + Redis, one or more workers) as separate processes on loopback, drives both with the
same residents' conversations, and prints throughput, latency percentiles, errors, peak memory and
the ratio of the bot's throughput to the baseline's — the headline figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench import machine
from bench.cpu_budget import CpuBudget
from bench.load import Driver, Stats
from bot.settings import load_settings
from bot.sim.wechat_client import WeChatSigner

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_BENCH = "redis://127.0.0.1:6379/15"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench subcommand's options."""
    parser.add_argument("--residents", type=int, default=40, help="concurrent residents")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measured phase")
    parser.add_argument("--aes", action="store_true", help="safe mode (AES) messages")
    parser.add_argument("--backend", choices=("embedded", "pg_redis"), default="embedded")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--compare-workers", type=int, default=0, metavar="N",
                        help="on pg_redis: also run N workers and report the scaling over one")
    parser.add_argument("--cpu-per-worker", type=float, default=0.0, metavar="CORES",
                        help="cap every bot worker at this much CPU (cgroup quota), e.g. 0.5: "
                             "scaling measured with the shared services and load generator not starved")
    parser.add_argument("--retry-share", type=float, default=0.05, help="share of messages WeChat retries")
    parser.add_argument("--shell", action="store_true",
                        help="also measure the bot's webhook with the dialog replaced by a fixed reply "
                             "(bench/shell_server.py, embedded): the ceiling the webhook itself sets")
    parser.add_argument("--json", dest="json_out", help="also write the figures to this file")


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_http(url: str, timeout: float = 60.0) -> None:
    """Wait until url answers 200."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f}s")


@contextmanager
def process(
    cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process whose output goes to log, terminated on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class RssSampler:
    """Peak resident memory of a process tree, sampled in the background."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> int:
        """Current RSS of the process and its children, in bytes."""
        total = 0
        for proc in [self.root, *self.root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        self.peak = max(self.peak, total)
        return total

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.2)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children."""
    total = 0.0
    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class MachineCpu:
    """Where the machine's CPU goes while the bot runs at its maximum: the bot's process tree, the
    PostgreSQL and Redis servers (whatever they serve; on this machine, the bench), and this load
    generator. On PostgreSQL + Redis a worker is one of several busy processes sharing the cores,
    which bounds what a second worker can add."""

    SERVERS = {"postgres": ("postgres",), "redis": ("redis-server",)}

    def __init__(self, bot_pid: int) -> None:
        self._bot_pid = bot_pid
        self._start = self._sample()

    def _sample(self) -> dict[str, float]:
        taken = {"bot": tree_cpu_s(self._bot_pid), "load_generator": time.process_time()}
        for name in self.SERVERS:
            taken[name] = 0.0
        for proc in psutil.process_iter(["name"]):
            for name, prefixes in self.SERVERS.items():
                if (proc.info["name"] or "").startswith(prefixes):
                    try:
                        times = proc.cpu_times()
                    except psutil.Error:
                        continue
                    taken[name] += times.user + times.system
        return taken

    def per_message_ms(self, messages: int, elapsed_s: float) -> dict[str, float]:
        """CPU ms per message of each, and the cores they kept busy together."""
        end = self._sample()
        spent = {name: end[name] - self._start[name] for name in end}
        out = {name: round(1000 * s / messages, 3) if messages else 0.0 for name, s in spent.items()}
        out["cores_busy"] = round(sum(spent.values()) / elapsed_s, 2) if elapsed_s else 0.0
        return out


async def _admin_sql(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _flush_redis() -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_BENCH)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


async def measure_bot(
    args: argparse.Namespace, workers: int, api_base: str, tmp: Path, echo: Driver
) -> dict[str, Any]:
    """Start the bot, measure max throughput, the echo baseline again right after it (the
    machine's speed drifts), then latency at half of the bot's maximum; stop it."""
    settings = load_settings()
    port = free_port()
    env = {
        **os.environ,
        "CB_PORT": str(port),
        "CB_VAR_DIR": str(tmp / f"var-{workers}-{port}"),
        "CB_SIMULATOR": "0",
        "CB_WECHAT_API_BASE": api_base,
        "CB_WECOM_API_BASE": api_base,
        "CB_LOG_LEVEL": "WARNING",
    }
    db_name = None
    if args.backend == "pg_redis":
        db_name = f"cb_bench_{uuid.uuid4().hex[:8]}"
        await _admin_sql(f'CREATE DATABASE "{db_name}"')
        await _flush_redis()
        env["CB_DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db_name}"
        env["CB_REDIS_URL"] = REDIS_BENCH
    exe = [sys.executable, "-m", "bot.cli"]
    try:
        subprocess.run([*exe, "db", "upgrade"], env=env, check=True, capture_output=True)
        with process([*exe, "serve", "--workers", str(workers)], env, tmp / f"bot-{workers}.log") as proc, \
                CpuBudget(args.cpu_per_worker or 1.0) as budget:
            base = f"http://127.0.0.1:{port}"
            await wait_http(f"{base}/healthz")
            if args.cpu_per_worker:
                for pid in _worker_pids(proc.pid, workers):
                    budget.add(pid)
            signer = WeChatSigner(settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key)
            driver = Driver(f"{base}/wechat", signer, encrypt=args.aes, retry_share=args.retry_share, seed=7)
            await driver.closed_loop(args.residents, min(3.0, args.duration))  # warm-up
            with RssSampler(proc.pid) as rss:
                cpu_before = tree_cpu_s(proc.pid)
                machine = MachineCpu(proc.pid)
                top = await driver.closed_loop(args.residents, args.duration)
                cpu_ms = 1000 * (tree_cpu_s(proc.pid) - cpu_before) / top.messages if top.messages else 0.0
                split = machine.per_message_ms(top.messages, top.elapsed)
                echo_after = await echo.closed_loop(args.residents, args.duration)
                half = await driver.paced(max(1.0, top.rate / 2), args.duration, args.residents * 4)
            return {"workers": workers, "max": top, "half": half, "rss_mb": rss.peak / 2**20, "echo_after": echo_after,
                    "cpu_ms_per_msg": cpu_ms, "machine": split,
                    "errors": top.error_samples + half.error_samples, "throttled_s": budget.throttled_s()}
    finally:
        if db_name:
            await _admin_sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _worker_pids(pid: int, workers: int, wait_s: float = 20.0) -> list[int]:
    """The processes serving requests: the process itself for one worker, else its children.
    The first worker up answers /healthz while the others may still be starting: wait for all."""
    if workers == 1:
        return [pid]
    deadline = time.monotonic() + wait_s
    while True:
        children = [child for child in psutil.Process(pid).children()  # not multiprocessing's helper
                    if not any("resource_tracker" in part for part in child.cmdline())]
        if len(children) == workers or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if len(children) != workers:
        raise RuntimeError(f"expected {workers} worker processes under {pid}, found {len(children)}")
    return [child.pid for child in children]


@dataclass(frozen=True)
class Echo:
    """The running echo baseline: its base URL and its process."""

    base: str
    pid: int


@asynccontextmanager
async def echo_server(tmp: Path) -> AsyncIterator[Echo]:
    """The echo baseline (bench/echo_server.py, with its API stand-ins) running."""
    settings = load_settings()
    port = free_port()
    cmd = [sys.executable, "-m", "bench.echo_server", "--port", str(port), "--token", settings.wechat_token,
           "--appid", settings.wechat_appid, "--aes-key", settings.wechat_aes_key]
    with process(cmd, dict(os.environ), tmp / "echo.log") as proc:
        base = f"http://127.0.0.1:{port}"
        await wait_http(f"{base}/cgi-bin/token")
        yield Echo(base, proc.pid)


async def measure_shell(args: argparse.Namespace, api_base: str, tmp: Path, signer: WeChatSigner) -> dict[str, Any]:
    """The bot's webhook with the dialog replaced by a fixed reply (bench/shell_server.py), on the
    embedded default, at its maximum: what the webhook alone costs."""
    port = free_port()
    env = {**os.environ, "CB_PORT": str(port), "CB_VAR_DIR": str(tmp / f"var-shell-{port}"), "CB_SIMULATOR": "0",
           "CB_WECHAT_API_BASE": api_base, "CB_WECOM_API_BASE": api_base, "CB_LOG_LEVEL": "WARNING"}
    for name in ("CB_DATABASE_URL", "CB_REDIS_URL"):
        env.pop(name, None)
    subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, check=True, capture_output=True)
    with process([sys.executable, "-m", "bench.shell_server"], env, tmp / "shell.log") as proc:
        base = f"http://127.0.0.1:{port}"
        await wait_http(f"{base}/healthz")
        driver = Driver(f"{base}/wechat", signer, encrypt=args.aes, retry_share=args.retry_share, seed=7)
        await driver.closed_loop(args.residents, min(3.0, args.duration))  # warm-up
        cpu_before = tree_cpu_s(proc.pid)
        top = await driver.closed_loop(args.residents, args.duration)
        cpu_ms = 1000 * (tree_cpu_s(proc.pid) - cpu_before) / top.messages if top.messages else 0.0
    return {"max": top, "cpu_ms_per_msg": cpu_ms}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the figures."""
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="cb-bench-") as tmpdir:
        tmp = Path(tmpdir)
        async with echo_server(tmp) as echo:
            signer = WeChatSigner(settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key)
            driver = Driver(f"{echo.base}/wechat", signer, encrypt=args.aes, retry_share=args.retry_share, seed=7)
            await driver.closed_loop(args.residents, min(3.0, args.duration))
            cpu_before = tree_cpu_s(echo.pid)
            baseline = await driver.closed_loop(args.residents, args.duration)
            echo_cpu_ms = 1000 * (tree_cpu_s(echo.pid) - cpu_before) / baseline.messages if baseline.messages else 0.0
            shell = await measure_shell(args, echo.base, tmp, signer) if args.shell else None
            runs = [await measure_bot(args, args.workers, echo.base, tmp, driver)]
            parallel = None
            if args.compare_workers and args.compare_workers != args.workers:
                runs.append(await measure_bot(args, args.compare_workers, echo.base, tmp, driver))
                # What the machine allows, in the same minutes: busy processes sharing nothing.
                parallel = await asyncio.to_thread(machine.parallel_speedup, max(args.workers, args.compare_workers))
    return report(args, baseline, runs, echo_cpu_ms=echo_cpu_ms, shell=shell, parallel=parallel)


def report(
    args: argparse.Namespace, baseline: Stats, runs: list[dict[str, Any]], *,
    echo_cpu_ms: float = 0.0, shell: dict[str, Any] | None = None, parallel: float | None = None,
) -> dict[str, Any]:
    """Print the figures with the targets, and return them."""
    out: dict[str, Any] = {
        "config": {"residents": args.residents, "duration_s": args.duration, "aes": args.aes,
                   "backend": args.backend, "retry_share": args.retry_share, "cores": os.cpu_count(),
                   "cpu_per_worker": args.cpu_per_worker or None},
        "baseline": baseline.summary(),
        "baseline_cpu_ms_per_msg": round(echo_cpu_ms, 3),
        "runs": [],
    }
    if args.cpu_per_worker:
        print(f"\nevery bot worker capped at {args.cpu_per_worker:g} core(s) of CPU (cgroup quota)")
    print(f"\nbaseline (bare aiohttp + wechatpy echo): {baseline.rate:,.0f} msg/s, p99 {baseline.pct(99):.1f} ms; "
          f"echo CPU {echo_cpu_ms:.3f} ms per message")
    if shell is not None:
        # Against the baseline measured just before it (the shell runs right after the baseline).
        top_shell: Stats = shell["max"]
        share = top_shell.rate / baseline.rate if baseline.rate else 0.0
        out["shell"] = {"max": top_shell.summary(), "ratio_to_baseline": round(share, 3),
                        "cpu_ms_per_msg": round(shell["cpu_ms_per_msg"], 3)}
        print(f"webhook shell (the bot's webhook, the dialog replaced by a fixed reply; embedded): "
              f"{top_shell.rate:,.0f} msg/s = {share:.1%} of baseline; "
              f"CPU {shell['cpu_ms_per_msg']:.3f} ms per message")
    before = baseline
    for run_ in runs:
        top: Stats = run_["max"]
        half: Stats = run_["half"]
        after: Stats = run_["echo_after"]
        # The baseline measured just before and just after this run's maximum, averaged: on a
        # shared machine the echo's own rate drifts by tens of percent within minutes.
        reference = (before.rate + after.rate) / 2
        ratio = top.rate / reference if reference else 0.0
        print(f"  echo baseline around this run: {before.rate:,.0f} before, {after.rate:,.0f} after")
        before = after
        row = {"workers": run_["workers"], "max": top.summary(), "half_rate": half.summary(),
               "baseline_after": after.summary(), "baseline_reference": round(reference, 1),
               "ratio_to_baseline": round(ratio, 3), "peak_rss_mb": round(run_["rss_mb"], 1),
               "error_samples": run_["errors"], "throttled_s": round(run_["throttled_s"], 1),
               "bot_cpu_ms_per_msg": round(run_.get("cpu_ms_per_msg", 0.0), 2),
               "machine_cpu_ms_per_msg": run_.get("machine", {})}
        out["runs"].append(row)
        print(f"bot, {args.backend}, {run_['workers']} worker(s): {top.rate:,.0f} msg/s "
              f"= {ratio:.1%} of baseline; p50/p95/p99 at max {top.pct(50):.1f}/{top.pct(95):.1f}/{top.pct(99):.1f} ms; "
              f"at half rate ({half.rate:,.0f} msg/s) p99 {half.pct(99):.1f} ms; "
              f"errors {top.errors + half.errors}; peak RSS {run_['rss_mb']:.0f} MB; "
              f"bot CPU {row['bot_cpu_ms_per_msg']:.2f} ms per message at max")
        split = run_.get("machine")
        if split:
            print(f"    machine CPU per message at max: bot {split['bot']:.2f}, PostgreSQL {split['postgres']:.2f}, "
                  f"Redis {split['redis']:.2f}, load generator {split['load_generator']:.2f} ms; "
                  f"{split['cores_busy']:.2f} of {os.cpu_count()} cores busy")
    if len(runs) == 2:
        scale = runs[1]["max"].rate / runs[0]["max"].rate if runs[0]["max"].rate else 0.0
        out["scaling"] = round(scale, 3)
        first_ratio, second_ratio = (r["ratio_to_baseline"] for r in out["runs"])
        # The same over each run's own baseline: what is left once the machine's drift between
        # the two runs is taken out (the target is judged on the plain figure).
        out["scaling_over_baselines"] = round(second_ratio / first_ratio, 3) if first_ratio else 0.0
        print(f"scaling {runs[1]['workers']} workers over {runs[0]['workers']}: {scale:.2f}x "
              f"({out['scaling_over_baselines']:.2f}x over each run's own baseline)")
        # What the machine allows: busy processes that share nothing (measured by the caller in
        # the same minutes), and the share of the cores the 1-worker run left for more workers.
        lines = []
        if parallel is not None:
            out["machine_parallel"] = round(parallel, 3)
            lines.append(f"{runs[1]['workers']} CPU-bound processes at once do {parallel:.2f}x one")
        split = runs[0].get("machine")
        if split and not args.cpu_per_worker:
            others = split["postgres"] + split["redis"] + split["load_generator"]
            cores = os.cpu_count() or 1
            out["shared_ceiling"] = round(machine.shared_ceiling(split["bot"], others, runs[1]["workers"], cores), 3)
            lines.append(f"with the 1-worker run's CPU per message (bot {split['bot']:.2f}, PostgreSQL + Redis + "
                         f"load generator {others:.2f} ms), {runs[1]['workers']} workers sharing {cores} cores "
                         f"reach {out['shared_ceiling']:.2f}x at most")
        if lines:
            print("  machine: " + "; ".join(lines))
    first = out["runs"][0]
    checks = {} if args.cpu_per_worker else {  # a capped worker's throughput is not the process's
        "throughput >= 35% of baseline (1 process)": first["ratio_to_baseline"] >= 0.35,
    }
    checks |= {
        "p99 < 100 ms at half of max rate": first["half_rate"]["p99_ms"] < 100,
        "peak RSS < 200 MB": first["peak_rss_mb"] < 200 * max(1, runs[0]["workers"]),
        "no errors": all(r["max"]["errors"] == 0 and r["half_rate"]["errors"] == 0 for r in out["runs"]),
    }
    if "scaling" in out:
        budget = f", {args.cpu_per_worker:g} core each" if args.cpu_per_worker else ""
        checks[f"2 workers >= 1.6x one{budget}"] = out["scaling"] >= 1.6
    out["targets"] = checks
    for name, ok in checks.items():
        print(f"  [{'met' if ok else 'MISSED'}] {name}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, ensure_ascii=False, indent=2))
    return out


def main(args: argparse.Namespace) -> int:
    """Entry point of `communitybot bench`."""
    problems = [
        message for bad, message in (
            (args.residents < 1, f"--residents must be at least 1, got {args.residents}"),
            (not args.duration > 0, f"--duration must be more than 0 seconds, got {args.duration}"),
            (args.workers < 1, f"--workers must be at least 1, got {args.workers}"),
            (args.compare_workers < 0, f"--compare-workers must be 0 or more, got {args.compare_workers}"),
            (args.cpu_per_worker < 0, f"--cpu-per-worker must be 0 (no cap) or more, got {args.cpu_per_worker}"),
            (not 0 <= args.retry_share <= 1, f"--retry-share must be from 0 to 1, got {args.retry_share}"),
        ) if bad
    ]
    for message in problems:
        print(f"communitybot bench: {message}", file=sys.stderr)
    if problems:
        return 2
    if args.compare_workers and args.backend != "pg_redis":
        print("communitybot bench: --compare-workers needs --backend pg_redis", file=sys.stderr)
        return 2
    asyncio.run(run(args))
    return 0
