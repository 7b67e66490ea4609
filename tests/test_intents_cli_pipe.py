"""`communitybot classify … | head`: a reader that stops early is no unreadable file. The command
stops quietly, as the Unix tools do, while a file that really cannot be read is still named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LABELLED = REPO / "tests" / "data" / "intents.jsonl"


def _classify_into_closed_pipe(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run classify with a stdout whose reader has already gone: every write meets EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "classify", *argv, "--now", "2026-11-23T10:00:00+08:00"],
            cwd=REPO, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "argv",
    [
        ["--eval", str(LABELLED)],
        ["--eval", str(LABELLED), "--errors"],
        ["--jsonl", str(LABELLED)],
        ["楼道灯坏了", "你好"],
    ],
)
def test_a_closed_output_pipe_ends_classify_quietly(argv: list[str]) -> None:
    done = _classify_into_closed_pipe(*argv)
    assert done.stderr == "", done.stderr  # not "cannot read …: Broken pipe", not a traceback
    assert done.returncode == 128 + signal.SIGPIPE


@pytest.mark.parametrize("flag", ["--eval", "--jsonl"])
def test_a_missing_or_unreadable_file_is_still_named_with_why(flag: str, tmp_path: Path) -> None:
    missing = tmp_path / "nonexist.jsonl"
    for path, why in ((missing, "No such file or directory"), (tmp_path, "Is a directory")):
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "classify", flag, str(path)],
            cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 2
        assert done.stderr.strip() == f"classify: cannot read {path}: {why}"
