"""Classifier speed: messages per second on one core after warm-up, and first-message latency.

    .venv/bin/python -m bench.classify_bench [--seconds 5] [--data tests/data/intents.jsonl]

The throughput run classifies the labelled messages over and over (distinct texts, no caching
of results) after a warm-up pass; the latency run starts a fresh interpreter and times import,
rule loading and the first classification (jieba's dictionary cache file under var/ is reused
once it exists, as in production).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "tests" / "data" / "intents.jsonl"

_FIRST_MESSAGE = """
import time
start = time.perf_counter()
from bot.intents.classifier import get_classifier
result = get_classifier().classify("3号楼2单元302电梯坏了 有人被困 电话13812345678")
print(time.perf_counter() - start, result.intent)
"""


def _texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def throughput(texts: list[str], seconds: float) -> tuple[float, float, int]:
    """Messages per wall-clock second and per CPU second classifying `texts` round-robin for
    about `seconds` after a warm-up (CPU seconds leave out time the process waited for a core)."""
    from bot.intents.classifier import get_classifier

    classifier = get_classifier()
    for text in texts:  # warm-up: regexes compiled, caches of jieba and CPython settled
        classifier.classify(text)
    done = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for text in texts:
            classifier.classify(text)
        done += len(texts)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return done / wall, done / cpu, done


def first_message_latency(runs: int) -> list[float]:
    """Seconds from interpreter start of `import` to the first answer, in fresh processes."""
    timings = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _FIRST_MESSAGE], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
        timings.append(float(out[0]))
    return timings


def calibration_loop() -> float:
    """Seconds for a plain 10M-iteration Python loop, to compare figures across machines."""
    start = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Print messages/s after warm-up and first-message latency in fresh processes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes for the latency figure")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args(argv)
    texts = _texts(args.data)
    latencies = first_message_latency(args.runs)
    rate, cpu_rate, done = throughput(texts, args.seconds)
    mean_len = sum(map(len, texts)) / len(texts)
    print(f"throughput: {rate:,.0f} messages/s wall clock, {cpu_rate:,.0f} per CPU second, one core "
          f"({done} classifications of {len(texts)} distinct messages, mean {mean_len:.1f} characters)")
    print(f"first message in a fresh process: {min(latencies):.3f} s best, {max(latencies):.3f} s worst "
          f"of {len(latencies)}")
    print(f"machine: a 10M-iteration Python loop takes {calibration_loop():.2f} s here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
