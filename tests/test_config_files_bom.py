"""Configuration files saved by Windows Notepad (UTF-8 with a byte-order mark, CRLF line ends) are
read, every one by the one reader the roster's import uses (bot.config_files): messages.toml,
intents.toml, lexicon.txt, settings.toml … were refused ('Invalid statement (at line 1, column 1)')
and stopped serve. A file that is not UTF-8 is named: a lexicon saved as GBK was 'the rules in DIR
are not UTF-8 text', the operator left to guess which of the two files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config_files import NotUtf8, read_lines, read_text, read_toml

REPO = Path(__file__).resolve().parents[1]


def _notepad(path: Path) -> None:
    """Save path again as Notepad's UTF-8 does."""
    text = path.read_text(encoding="utf-8")
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CB_")}
    env["CB_VAR_DIR"] = str(tmp_path / "var")
    return env


def test_every_config_file_saved_by_notepad_is_read_by_serve_and_classify(tmp_path: Path) -> None:
    app = tmp_path / "app"
    for part in ("bot", "storage", "bench", "config"):
        shutil.copytree(REPO / part, app / part, ignore=shutil.ignore_patterns("__pycache__"))
    saved = []
    for path in sorted((app / "config").iterdir()):
        if path.suffix in (".toml", ".txt"):
            _notepad(path)
            saved.append(path.name)
    assert {"messages.toml", "intents.toml", "flows.toml", "lexicon.txt", "settings.toml", "roster.toml"} <= set(saved)
    check = ("from bot.serve import check_config; from bot.settings import load_settings; "
             "check_config(load_settings()); from bot.flows.config import flow_config, vocabulary_choices; "
             "flow_config(); vocabulary_choices('category'); print('config read')")
    done = subprocess.run([sys.executable, "-c", check], cwd=app, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "config read", done.stderr
    lines = tmp_path / "said.jsonl"
    lines.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(json.dumps({"text": t}, ensure_ascii=False)
                                                      for t in ("3号楼楼道灯坏了", "我想报名当志愿者")).encode("utf-8"))
    done = subprocess.run([sys.executable, "-m", "bot.cli", "classify", "--jsonl", str(lines)], cwd=app,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = [json.loads(line)["intent"] for line in done.stdout.splitlines()]
    assert got == ["complaint", "volunteer_signup"], done.stdout


def test_a_lexicon_that_is_not_utf8_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot import cli

    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(REPO / "config" / "intents.toml", rules / "intents.toml")
    (rules / "lexicon.txt").write_bytes("路灯 10\n楼道灯 10\n".encode("gbk"))  # 路 (C2 B7) passes as UTF-8, 灯 not
    assert cli.main(["classify", "--config", str(rules), "路灯坏了"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"classify: {rules / 'lexicon.txt'} is not UTF-8 text (byte 2); save it as UTF-8 "
                           "(e.g. iconv -f GBK -t UTF-8)"), err


def test_classify_input_that_is_not_utf8_names_the_file_and_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot import cli

    source = tmp_path / "said.jsonl"
    first = (json.dumps({"text": "路灯坏了"}, ensure_ascii=False) + "\n").encode("utf-8")
    source.write_bytes(first + json.dumps({"text": "楼道灯坏了"}, ensure_ascii=False).encode("gbk") + b"\n")
    assert cli.main(["classify", "--jsonl", str(source)]) == 2  # {"text": " then 楼 (C2 A5, UTF-8 too), 道 not
    out, err = capsys.readouterr()
    assert err.strip() == f"classify: {source} is not UTF-8 text (byte {len(first) + 12}); save it as UTF-8 " \
                          "(e.g. iconv -f GBK -t UTF-8)", err
    assert json.loads(out.splitlines()[0])["text"] == "路灯坏了"  # the lines before it were answered


def test_the_reader_drops_the_mark_and_crlf_and_names_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_bytes(b"\xef\xbb\xbf" + 'a = "甲"\r\nb = 2\r\n'.encode("utf-8"))
    assert read_toml(path) == {"a": "甲", "b": 2} and read_text(path) == 'a = "甲"\nb = 2\n'
    path.write_bytes(b"\xef\xbb\xbfline one\r\n" + "第二行".encode("gbk"))
    assert next(read_lines(path)) == "line one\r\n"
    with pytest.raises(NotUtf8) as caught:
        list(read_lines(path))
    assert caught.value.path == path and caught.value.byte == len(b"\xef\xbb\xbfline one\r\n")
    with pytest.raises(UnicodeDecodeError, match=rf"^{path} is not UTF-8 text \(byte 13\)"):
        read_text(path)
