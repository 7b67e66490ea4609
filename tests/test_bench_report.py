"""The benchmark's report: each run's ratio is taken against the echo baseline measured around it."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from bench.load import Stats
from bench.runner import report


def _stats(rate: float, p99_ms: float = 10.0) -> Stats:
    return Stats(messages=int(rate * 10), elapsed=10.0, latencies=[p99_ms / 1000] * 100)


def test_ratios_use_the_baselines_measured_around_each_run(tmp_path: Path) -> None:
    args = argparse.Namespace(residents=40, duration=10.0, aes=False, backend="pg_redis", retry_share=0.05,
                              cpu_per_worker=0.0, json_out=str(tmp_path / "out.json"))
    runs = [
        {"workers": 1, "max": _stats(100), "half": _stats(50), "echo_after": _stats(3000), "rss_mb": 150.0,
         "errors": [], "throttled_s": 0.0, "cpu_ms_per_msg": 2.5},
        {"workers": 2, "max": _stats(180), "half": _stats(90), "echo_after": _stats(4000), "rss_mb": 400.0,
         "errors": [], "throttled_s": 0.0},
    ]
    out = report(args, _stats(2000), runs)
    assert [r["baseline_reference"] for r in out["runs"]] == [2500.0, 3500.0]  # before+after, halved
    assert [r["ratio_to_baseline"] for r in out["runs"]] == [0.04, round(180 / 3500, 3)]
    assert out["scaling"] == 1.8
    assert [r["bot_cpu_ms_per_msg"] for r in out["runs"]] == [2.5, 0.0]  # 0.0: not measured
    assert out["scaling_over_baselines"] == round(round(180 / 3500, 3) / 0.04, 3)  # the drift taken out
    assert out["targets"]["2 workers >= 1.6x one"] is True
    assert out["targets"]["throughput >= 35% of baseline (1 process)"] is False
    assert json.loads(Path(args.json_out).read_text())["runs"][1]["baseline_after"]["msgs_per_s"] == 4000.0


def test_with_a_cpu_budget_the_throughput_target_is_not_judged(tmp_path: Path) -> None:
    args = argparse.Namespace(residents=40, duration=10.0, aes=False, backend="pg_redis", retry_share=0.05,
                              cpu_per_worker=0.5, json_out=None)
    runs = [{"workers": w, "max": _stats(90 * w), "half": _stats(45 * w), "echo_after": _stats(3000),
             "rss_mb": 150.0, "errors": [], "throttled_s": 3.0} for w in (1, 2)]
    out = report(args, _stats(3000), runs)
    assert "throughput >= 35% of baseline (1 process)" not in out["targets"]
    assert out["targets"]["2 workers >= 1.6x one, 0.5 core each"] is True
    assert out["config"]["cpu_per_worker"] == 0.5 and out["runs"][0]["throttled_s"] == 3.0


def test_cpu_of_a_process_tree_counts_its_children() -> None:
    import os
    import subprocess
    import sys

    from bench.runner import tree_cpu_s

    before = tree_cpu_s(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ninput()"],
                             stdin=subprocess.PIPE)
    try:
        for _ in range(100):  # until the child has spun its 0.3 s
            if tree_cpu_s(os.getpid()) - before >= 0.3:
                break
            import time
            time.sleep(0.05)
        assert tree_cpu_s(os.getpid()) - before >= 0.3
    finally:
        child.communicate(b"\n", timeout=10)


def test_the_shell_and_the_echos_cpu_are_reported(tmp_path: Path) -> None:
    args = argparse.Namespace(residents=40, duration=10.0, aes=False, backend="embedded", retry_share=0.05,
                              cpu_per_worker=0.0, json_out=str(tmp_path / "out.json"))
    runs = [{"workers": 1, "max": _stats(300), "half": _stats(150), "echo_after": _stats(3000), "rss_mb": 150.0,
             "errors": [], "throttled_s": 0.0, "cpu_ms_per_msg": 3.0}]
    out = report(args, _stats(3000), runs, echo_cpu_ms=0.2, shell={"max": _stats(1500), "cpu_ms_per_msg": 0.4})
    assert out["baseline_cpu_ms_per_msg"] == 0.2
    assert out["shell"] == {"max": _stats(1500).summary(), "ratio_to_baseline": 0.5, "cpu_ms_per_msg": 0.4}
    assert json.loads(Path(args.json_out).read_text())["shell"]["ratio_to_baseline"] == 0.5
    assert "shell" not in report(args, _stats(3000), runs)


async def test_the_shell_serves_the_webhook_without_the_dialog(tmp_path: Path) -> None:
    """bench/shell_server.py under load: every message answered, retries included; the reply is
    the fixed one, not the dialog's."""
    import os
    import subprocess
    import sys
    import time

    import aiohttp

    from bench import shell_server
    from bench.runner import echo_server, free_port, measure_shell, process, wait_http
    from bot.settings import load_settings
    from bot.sim.wechat_client import WeChatSigner, message_xml

    settings = load_settings()
    signer = WeChatSigner(settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key)
    args = argparse.Namespace(residents=4, duration=1.0, aes=False, retry_share=0.2)
    async with echo_server(tmp_path) as echo:
        shell = await measure_shell(args, echo.base, tmp_path, signer)
    top: Stats = shell["max"]
    assert top.messages > 0 and top.errors == 0
    assert shell["cpu_ms_per_msg"] > 0

    port = free_port()
    env = {**os.environ, "CB_PORT": str(port), "CB_VAR_DIR": str(tmp_path / "var"), "CB_SIMULATOR": "0",
           "CB_LOG_LEVEL": "WARNING"}
    subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, check=True, capture_output=True)
    with process([sys.executable, "-m", "bench.shell_server"], env, tmp_path / "shell.log"):
        base = f"http://127.0.0.1:{port}"
        await wait_http(f"{base}/healthz")
        timestamp, nonce = str(int(time.time())), "n1"
        params = {"signature": signer.sign(timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
        body = message_xml("text", "oShell", msg_id=1, Content="楼道灯坏了")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/wechat", params=params, data=body) as resp:
                assert resp.status == 200
                reply = await resp.text()
    assert f"<![CDATA[{shell_server.FIXED_REPLY}]]>" in reply


def test_the_machines_cpu_is_split_by_process(tmp_path: Path) -> None:
    """The load generator's own CPU is counted as such, and the cores kept busy add up."""
    import os
    import time

    from bench.runner import MachineCpu

    machine = MachineCpu(os.getpid())
    started = time.perf_counter()
    end = time.process_time() + 0.2
    while time.process_time() < end:
        pass
    split = machine.per_message_ms(10, time.perf_counter() - started)
    assert split["load_generator"] >= 19.0  # 0.2 s over 10 messages
    # The "bot" here is this same process, read from /proc in clock ticks (10 ms) where the load
    # generator's figure is process_time: equal within two ticks over 10 messages.
    assert abs(split["bot"] - split["load_generator"]) <= 3.0
    assert set(split) == {"bot", "load_generator", "postgres", "redis", "cores_busy"}
    assert 0 < split["cores_busy"] <= 2 * (os.cpu_count() or 1) + 1  # this process counted twice, plus the servers

    args = argparse.Namespace(residents=40, duration=10.0, aes=False, backend="pg_redis", retry_share=0.05,
                              cpu_per_worker=0.0, json_out=None)
    runs = [{"workers": 1, "max": _stats(300), "half": _stats(150), "echo_after": _stats(3000), "rss_mb": 150.0,
             "errors": [], "throttled_s": 0.0, "cpu_ms_per_msg": 3.0, "machine": split}]
    assert report(args, _stats(3000), runs)["runs"][0]["machine_cpu_ms_per_msg"] == split


def test_the_scaling_is_printed_beside_what_the_machine_allows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two workers over one, beside the machine's own figure for busy processes and the ceiling
    that the services' and load generator's share of the cores leaves."""
    args = argparse.Namespace(residents=40, duration=10.0, aes=False, backend="pg_redis", retry_share=0.05,
                              cpu_per_worker=0.0, json_out=None)
    split = {"bot": 3.0, "postgres": 0.6, "redis": 0.1, "load_generator": 0.3, "cores_busy": 1.3}
    runs = [{"workers": w, "max": _stats(100 * w), "half": _stats(50 * w), "echo_after": _stats(3000),
             "rss_mb": 150.0, "errors": [], "throttled_s": 0.0, "cpu_ms_per_msg": 3.0, "machine": split}
            for w in (1, 2)]
    out = report(args, _stats(3000), runs, parallel=1.93)
    assert out["machine_parallel"] == 1.93
    cores = os.cpu_count() or 1
    assert out["shared_ceiling"] == round(min(2.0, cores * 3.0 / 4.0), 3)
    printed = capsys.readouterr().out
    assert "2 CPU-bound processes at once do 1.93x one" in printed and f"{out['shared_ceiling']:.2f}x at most" in printed


def test_the_machines_parallel_speedup_is_measured_by_spinning_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each process spins and counts its loop turns, all of them summed; the speedup is the median
    over rounds of all together against one alone. (What the machine gives is not asserted: a
    machine whose speed moves between the two phases reports more than two per core, as the
    bench printed 2.27× on 2026-11-25, and CI failed on a bound of 2.3.)"""
    from bench import machine
    from bench.machine import parallel_speedup, shared_ceiling

    assert machine._run(2, 0.2) > machine._run(1, 0.0) == 0
    counts = iter([100, 190, 100, 150, 100, 210])
    calls: list[int] = []

    def run(processes: int, seconds: float) -> int:
        calls.append(processes)
        return next(counts)

    monkeypatch.setattr(machine, "_run", run)
    assert parallel_speedup(2, seconds=0.01, rounds=3) == 1.9
    assert calls == [1, 2, 1, 2, 1, 2]
    assert shared_ceiling(3.0, 1.0, 2, 2) == 1.5 and shared_ceiling(3.0, 0.0, 2, 4) == 2.0
