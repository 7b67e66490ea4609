"""Operator input never ends in a traceback: bad settings, addresses, databases, files and
arguments are each said in one clear line, with a non-zero exit, and nothing is changed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import cli
from storage.migrate import upgrade
from tests.conftest import PG_ADMIN_URL

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No CB_* variable from the caller's shell; the embedded default under tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("CB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CB_VAR_DIR", str(tmp_path / "var"))
    yield


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("CB_QUIET_HOURS", "bad", "HH:MM-HH:MM"),
        ("CB_QUIET_HOURS", "21:00-25:00", "HH:MM-HH:MM"),
        ("CB_TIMEZONE", "Mars/X", "not a known time zone"),
        ("CB_WECHAT_AES_KEY", "tooshort", "43-character"),
        ("CB_WECOM_AES_KEY", "CHANGE-ME-43-CHARACTERS-ENCODING-AES-KEY-0000", "43-character"),
        ("CB_DAILY_PUSH_CAP", "-1", "0 or more"),
        ("CB_ACCEPT_SLA_S", "abc", "integer"),
        ("CB_SURVEY_DELAY_S", "0", "greater than 0"),
        ("CB_DATABASE_URL", "postgresql://communitybot@127.0.0.1/communitybot", "postgresql+asyncpg://"),
        ("CB_REDIS_URL", "127.0.0.1:6379", "redis://"),
        ("CB_WECHAT_TOKEN", "CHANGE-ME", "still CHANGE-ME"),
        ("CB_LOG_LEVEL", "LOUD", "not DEBUG"),
        ("CB_CONSOLE_ADMIN_PASSWORD", "short1", "at least 8 characters (the console's minimum), got 6"),
        ("CB_PUBLIC_BASE_URL", "bot.example-community.cn", "must start with https://"),
        ("CB_WECHAT_TOKEN", "", "must not be empty: it signs every message"),
        ("CB_WECOM_TOKEN", " ", "must not be empty: it signs every message"),
        ("CB_PORT", "80a", "got '80a'"),
        ("CB_SIMULATOR", "maybe", "valid boolean, unable to interpret input, got 'maybe'"),
        ("CB_OUTBOX_TIMEOUT_S", "10s", "got '10s'"),
        ("CB_TRUSTED_PROXIES", "nginx", "CB_TRUSTED_PROXIES: 'nginx' is not an IP address or network, e.g."),
    ],
)
@pytest.mark.parametrize("command", [["serve"], ["db", "upgrade"], ["roster", "import", "x.toml"]])
def test_a_bad_setting_is_refused_by_name_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    variable: str, value: str, said: str, command: list[str],
) -> None:
    monkeypatch.setenv(variable, value)
    code, out, err = _run(command, capsys)
    assert code == 2 and variable in err and said in err, err
    assert "Traceback" not in err and "serving on" not in out + err
    assert not (tmp_path / "var" / "communitybot.db").exists()


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["serve", "--port", "99999"], "CB_PORT: must be a port from 1 to 65535"),
        (["serve", "--port", "0"], "CB_PORT"),
        (["serve", "--host", "999.1.1.1"], "cannot listen on 999.1.1.1"),
    ],
)
def test_serve_on_an_impossible_address_says_so_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], said: str
) -> None:
    code, out, err = _run(argv, capsys)
    assert code == 2 and said in err, err
    assert "serving on" not in out + err
    assert not (tmp_path / "var" / "communitybot.db").exists()


def test_serve_on_a_taken_port_says_so_before_the_roster_is_touched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = _run(["serve", "--port", str(port)], capsys)
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "in use" in err, err
    assert "serving on" not in out + err
    import sqlite3

    db = sqlite3.connect(tmp_path / "var" / "communitybot.db")
    try:
        assert db.execute("SELECT count(*) FROM grids").fetchone() == (0,)
    finally:
        db.close()


def test_serve_on_a_never_migrated_database_says_to_run_db_upgrade(
    capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["serve", "--port", str(_free_port())], capsys)
    assert code == 2 and "not migrated" in err and "communitybot db upgrade" in err, err
    assert "no such table" not in err and "Traceback" not in err


def test_serve_with_unreachable_redis_or_unusable_var_dir_says_which(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    monkeypatch.setenv("CB_PORT", str(_free_port()))
    monkeypatch.setenv("CB_REDIS_URL", "redis://127.0.0.1:1/0")
    code, _out, err = _run(["serve"], capsys)
    assert code == 2 and "cannot reach Redis" in err and "CB_REDIS_URL" in err, err
    monkeypatch.delenv("CB_REDIS_URL")
    monkeypatch.setenv("CB_VAR_DIR", "/proc/communitybot-nowhere")
    code, _out, err = _run(["serve"], capsys)
    assert code == 2 and "CB_VAR_DIR" in err, err


def test_serve_whose_lock_file_cannot_be_opened_says_which_file_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An operator who tried `serve` as root leaves var/'s lock file to root; the service's own
    user then cannot open it. Said in one line naming the file, not a traceback."""
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    port = _free_port()
    monkeypatch.setenv("CB_PORT", str(port))
    lock = tmp_path / "var" / f"serve-127.0.0.1-{port}.lock"
    lock.mkdir()  # unopenable as a file even for root, as another user's file is for the service
    code, out, err = _run(["serve"], capsys)
    assert code == 2 and f"cannot open the serving lock {lock}" in err and "chown -R" in err, err
    assert "Traceback" not in err and "serving on" not in out + err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, ": cannot read it: No such file or directory"),
        (b"[[grids]\n", ": is not valid TOML: Expected ']]'"),
        (b'[[grids]]\nid = "G1"\nname = "x"\nbuildings = ["1"]\nworkers = ["nobody"]\n', ": grid 'G1': worker 'nobody'"),
    ],
)
def test_serve_with_an_unusable_cb_roster_names_the_file_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    content: bytes | None, said: str,
) -> None:
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    roster = tmp_path / "roster.toml"
    if content is not None:
        roster.write_bytes(content)
    monkeypatch.setenv("CB_ROSTER", str(roster))
    monkeypatch.setenv("CB_PORT", str(_free_port()))
    code, out, err = _run(["serve"], capsys)
    assert code == 2 and f"communitybot serve: CB_ROSTER {roster}{said}" in err, err
    assert err.count(str(roster)) == 1 and "serving on" not in out + err, err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg(user: str, database: str, port: int = 5432) -> str:
    host = PG_ADMIN_URL.split("@", 1)[1].rsplit("/", 1)[0].split(":")[0]
    return f"postgresql+asyncpg://{user}@{host}:{port}/{database}"


# PostgreSQL not usable: a user or a database not created, a server not answering.
_PG_UNUSABLE = [
    (_pg(f"nobody_{uuid.uuid4().hex[:6]}", "postgres"), "create the database user first"),
    (_pg("postgres", f"cb_missing_{uuid.uuid4().hex[:6]}"), "create the database first"),
    (_pg("postgres", "postgres", port=1), "cannot reach the database server"),
]


@pytest.mark.parametrize(
    ("url", "said"),
    [*_PG_UNUSABLE, ("sqlite+aiosqlite:////proc/communitybot-nowhere/bot.db", "cannot use the SQLite file")],
)
def test_db_upgrade_says_in_one_line_why_the_database_cannot_be_used(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, said: str
) -> None:
    monkeypatch.setenv("CB_DATABASE_URL", url)
    code, out, err = _run(["db", "upgrade"], capsys)
    assert code == 1 and said in err and len(err.strip().splitlines()) == 1, err
    assert "newest schema" not in out


@pytest.mark.parametrize(("url", "said"), [*_PG_UNUSABLE, ("", "no such table: ")])
@pytest.mark.parametrize("command", [["report"], ["roster", "import", "--dry-run", str(REPO / "config" / "roster.toml")]])
def test_report_and_roster_import_say_in_one_line_why_the_database_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str], url: str, said: str
) -> None:
    """A server down, a database or user not created: one line, no traceback (report printed one);
    a never-migrated SQLite file says to run db upgrade, a server not reached does not."""
    if url:
        monkeypatch.setenv("CB_DATABASE_URL", url)
    code, out, err = _run(command, capsys)
    lines = [line for line in err.strip().splitlines() if "(local dates" not in line]  # report's range
    assert code == 1 and said in err and "Traceback" not in err and len(lines) == 1, err
    assert ("communitybot db upgrade" in err) == (url == ""), err
    assert "is it running?; " not in err and out == "", (out, err)


def test_db_upgrade_on_a_fresh_sqlite_still_works(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _err = _run(["db", "upgrade"], capsys)
    assert code == 0 and "newest schema" in out


def test_db_upgrade_says_what_it_did_or_that_there_was_nothing_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from storage.migrate import head_revision

    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}", "0004")
    head = head_revision()
    code, out, _err = _run(["db", "upgrade"], capsys)
    assert code == 0 and f"database migrated from 0004 to schema {head} (the newest schema)" in out, out
    code, out, _err = _run(["db", "upgrade"], capsys)
    assert code == 0 and f"database already at schema {head} (the newest schema), nothing to do" in out, out
    assert "migrated" not in out


def test_the_shipped_env_example_is_refused_naming_every_value_to_fill_in_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy/env.example as copied: every CHANGE-ME is named in the first refusal, the AES keys
    (which are also not 43 characters) included, so the operator fixes them in one go."""
    placeholders = []
    for line in (REPO / "deploy" / "env.example").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
            if "CHANGE-ME" in value:
                placeholders.append(name)
    # the account ids too: a made-up AppID / corp id / AgentId started, and every push failed
    assert {"CB_WECHAT_APPID", "CB_WECOM_CORPID", "CB_WECOM_AGENTID"} <= set(placeholders)
    code, _out, err = _run(["serve"], capsys)
    assert code == 2 and f"settings refused ({len(placeholders)} problem(s))" in err, err
    for name in placeholders:
        assert f"  - {name}: still CHANGE-ME from deploy/env.example" in err, (name, err)
    assert "CB_WECHAT_AES_KEY: still CHANGE-ME from deploy/env.example; fill in the real value (must be the " \
           "43-character EncodingAESKey" in err, err


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('[[people]]\nid = "w1"\nname = "张三"\nroles = ["grid_worker"]\n'.encode("gbk"), "is not UTF-8 text"),
        (b"grids = 5\n", "grids must be tables written [[grids]]"),
        (b'people = "w1"\n', "people must be tables written [[people]]"),
    ],
)
def test_roster_import_of_an_unreadable_file_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, said: str
) -> None:
    path = tmp_path / "roster.toml"
    path.write_bytes(content)
    code, _out, err = _run(["roster", "import", str(path)], capsys)
    assert code == 2 and said in err and "Traceback" not in err, err


def test_a_refused_roster_names_the_line_of_each_problems_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """What is wrong in a table is said with the line the table starts at, in the file as given
    and once merged with the grids the database holds (a building a kept grid has)."""
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    first = tmp_path / "first.toml"
    first.write_text('[[grids]]\nid = "G1"\nname = "一"\nbuildings = ["1"]\nworkers = ["w1"]\n\n'
                     '[[people]]\nid = "w1"\nname = "甲"\nroles = ["grid_worker"]\n', encoding="utf-8")
    assert _run(["roster", "import", str(first)], capsys)[0] == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('# 第二批\n\n[[grids]]\nid = "G2"\nname = "二"\nbuildings = ["2"]\nworkers = ["w2"]\n\n'
                   '[[grids]]\nid = "G3"\nname = "三"\nbuildings = ["2"]\nworkers = []\n\n'
                   '[[people]]\nid = "w2"\nname = "乙"\nroles = ["grid_worker", "boss"]\n', encoding="utf-8")
    code, _out, err = _run(["roster", "import", str(bad)], capsys)
    assert code == 2 and "nothing loaded" in err, err
    assert "person 'w2': unknown role 'boss'" in err and "staff, admin) (at line 15)" in err, err
    assert "building '2' is in two grids: 'G2' and 'G3' (at line 9)" in err, err
    clash = tmp_path / "clash.toml"
    clash.write_text('\n[[grids]]\nid = "G4"\nname = "四"\nbuildings = ["1"]\nworkers = ["w1"]\n', encoding="utf-8")
    code, _out, err = _run(["roster", "import", str(clash)], capsys)
    assert code == 2 and "building '1' is in two grids: 'G4' and 'G1' (at line 2)" in err, err


def test_a_roster_saved_by_windows_notepad_with_a_bom_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """UTF-8 with a byte-order mark (Notepad's UTF-8) and CRLF line ends: imported, not refused as
    'Invalid statement (at line 1, column 1)'."""
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    path = tmp_path / "roster.toml"
    text = '[[grids]]\nid = "G1"\nname = "一"\nbuildings = ["1"]\nworkers = ["w1"]\n\n' \
           '[[people]]\nid = "w1"\nname = "甲"\nroles = ["grid_worker"]\n'
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    code, out, err = _run(["roster", "import", str(path)], capsys)
    assert code == 0 and "grids added: G1" in out and "people added: w1" in out, (out, err)


def test_menu_with_a_missing_file_says_which_in_a_sentence(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "menu.toml"
    for verb in ("show", "publish"):
        code, out, err = _run(["menu", verb, "--file", str(missing)], capsys)
        assert code == 2 and out == "", (out, err)
        assert err.strip() == f"communitybot menu: cannot read {missing}: No such file or directory", err


def test_classify_with_a_missing_file_or_an_unlabelled_line_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = str(tmp_path / "nonexist.jsonl")
    for flag in ("--jsonl", "--eval"):
        code, _out, err = _run(["classify", flag, missing], capsys)
        assert code == 2 and f"cannot read {missing}" in err, err
    labelled = tmp_path / "set.jsonl"
    labelled.write_text(json.dumps({"text": "路灯坏了", "intent": "complaint"}, ensure_ascii=False) + "\n"
                        + json.dumps({"text": "你好"}, ensure_ascii=False) + "\n", encoding="utf-8")
    code, _out, err = _run(["classify", "--eval", str(labelled)], capsys)
    assert code == 2 and "line 2" in err and '"intent"' in err, err
    labelled.write_text("not json\n", encoding="utf-8")
    code, _out, err = _run(["classify", "--eval", str(labelled)], capsys)
    assert code == 2 and "line 1: invalid JSON" in err, err


def test_classify_with_unusable_rules_or_a_bad_now_says_so_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--config naming no rules directory, or one whose intents.toml does not parse, and --now not
    a time: one line and exit 2, no traceback."""
    broken = tmp_path / "rules"
    broken.mkdir()
    (broken / "intents.toml").write_text("[scoring\n", encoding="utf-8")
    cases = [
        (["--config", str(tmp_path / "nowhere"), "路灯坏了"], f"cannot read the rules in {tmp_path / 'nowhere'}"),
        (["--config", str(broken), "路灯坏了"], f"{broken / 'intents.toml'} is not valid TOML"),
        (["--now", "yesterday", "路灯坏了"], "--now 'yesterday' is not an ISO 8601 time, e.g. 2026-11-23T10:00:00+08:00"),
    ]
    for argv, said in cases:
        code, out, err = _run(["classify", *argv], capsys)
        assert code == 2 and said in err and len(err.strip().splitlines()) == 1 and out == "", (argv, err)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--duration", "-5"], "--duration must be more than 0"),
        (["--residents", "0"], "--residents must be at least 1"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--retry-share", "1.5"], "--retry-share must be from 0 to 1"),
    ],
)
def test_bench_refuses_numbers_that_measure_nothing(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    code, _out, err = _run(["bench", *argv], capsys)
    assert code == 2 and said in err, err


def _checkout_copy(tmp_path: Path) -> Path:
    """The code and config/ copied, as an operator's checkout whose config files can be broken
    without touching this one's."""
    app = tmp_path / "app"
    for part in ("bot", "storage", "bench", "config"):
        shutil.copytree(REPO / part, app / part, ignore=shutil.ignore_patterns("__pycache__"))
    return app


@pytest.mark.parametrize(
    ("name", "typo", "said"),
    [
        ("messages.toml", 'welcome_typo = "少了引号\n', "Illegal character '\\n' (at line "),
        ("intents.toml", "[[oops\n", "(at line "),
        ("limits.toml", "x = \n", "Invalid value (at line "),
        ("services.toml", "[[services]]\nname = \"助餐\"\n", "is missing"),
        ("schedule.toml", "poll_s = 5 ", "poll_s > 0"),  # made poll_s = -1
        ("settings.toml", "port 8080\n", "(at line "),
    ],
)
def test_a_typo_in_a_config_file_stops_serve_before_it_starts_naming_the_file(
    tmp_path: Path, name: str, typo: str, said: str
) -> None:
    """With --workers 2 on PostgreSQL + Redis, as production runs: one line naming the file (and the
    line of a syntax error), exit 2, no banner and no worker's traceback."""
    app = _checkout_copy(tmp_path)
    path = app / "config" / name
    text = path.read_text(encoding="utf-8")
    broken = text.replace(typo, "poll_s = -1 ") if name == "schedule.toml" else text + "\n" + typo
    assert broken != text
    path.write_text(broken, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CB_")}
    env.update({"CB_VAR_DIR": str(tmp_path / "var"), "CB_PORT": str(_free_port()),
                "CB_DATABASE_URL": _pg("postgres", "postgres"), "CB_REDIS_URL": "redis://127.0.0.1:6379/0",
                "CB_CONSOLE_ADMIN_PASSWORD": "a-real-password-1"})
    done = subprocess.run([sys.executable, "-m", "bot.cli", "serve", "--workers", "2"], cwd=app, env=env,
                          capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert f"config/{name}: " in done.stderr and said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "serving on" not in done.stderr
    assert len(lines) == (2 if name == "settings.toml" else 1), lines  # settings: the heading, then the line


def test_a_missing_config_file_is_named_not_taken_for_the_database(tmp_path: Path) -> None:
    """report and roster import read config/messages.toml: without it they name that file, not
    'cannot use the SQLite file … (is its directory writable?)' of a database that is fine."""
    app = _checkout_copy(tmp_path)
    (app / "config" / "messages.toml").unlink()
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'communitybot.db'}")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CB_")}
    env["CB_VAR_DIR"] = str(tmp_path / "var")
    for argv in (["report"], ["roster", "import", "--dry-run", str(app / "config" / "roster.toml")]):
        done = subprocess.run([sys.executable, "-m", "bot.cli", *argv], cwd=app, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, (argv, done.stderr)
        assert f"cannot read {app / 'config' / 'messages.toml'}: No such file or directory" in done.stderr, done.stderr
        assert "SQLite" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_texts_name_their_file_when_it_does_not_parse(tmp_path: Path) -> None:
    import tomllib

    from bot.texts import Texts

    path = tmp_path / "messages.toml"
    path.write_text('[welcome]\nsubscribe = "欢迎\n', encoding="utf-8")
    with pytest.raises(tomllib.TOMLDecodeError, match=rf"^{path}: Illegal character .*\(at line 2, column 16\)"):
        Texts(path)
