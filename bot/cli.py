"""The `communitybot` command: serve, db upgrade, classify, roster import, report, menu, bench."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from bot.settings import SettingsError, load_settings

Command = Callable[[argparse.Namespace], int]


def _serve(args: argparse.Namespace) -> int:
    from bot.serve import ServeError, serve

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    try:
        return serve(overrides, workers=args.workers)
    except SettingsError:
        raise  # reported by main, as for every command
    except (ServeError, ValueError) as exc:
        print(f"communitybot serve: {exc}", file=sys.stderr)
        return 2


def _db_upgrade(_args: argparse.Namespace) -> int:
    from storage.db import describe_db_error, safe_url
    from storage.migrate import upgrade_reporting

    settings = load_settings()
    try:
        before, after = asyncio.run(upgrade_reporting(settings.db_url))
    except Exception as exc:  # the command's boundary: what the database said, in one line
        reason = describe_db_error(exc, settings.db_url)
        if reason is None:
            raise
        print(f"communitybot db upgrade: {reason}", file=sys.stderr)
        return 1
    if before == after:
        print(f"database already at schema {after} (the newest schema), nothing to do: {safe_url(settings.db_url)}")
    else:
        print(f"database migrated from {before or 'an empty database'} to schema {after} (the newest schema): "
              f"{safe_url(settings.db_url)}")
    return 0


def _add_commands(sub: argparse._SubParsersAction) -> dict[str, Command]:  # type: ignore[type-arg]
    commands: dict[str, Command] = {}

    serve = sub.add_parser("serve", help="serve the bot over HTTP")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (PostgreSQL + Redis only)")
    commands["serve"] = _serve

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="migrate to the newest schema")
    commands["db"] = _db_upgrade

    bench = sub.add_parser("bench", help="load benchmark against a bare echo webhook (bench/)")
    from bench.runner import add_arguments as add_bench_arguments
    from bench.runner import main as run_bench

    add_bench_arguments(bench)
    commands["bench"] = run_bench

    from bot.roster_cli import add_roster_arguments, run_roster

    roster = sub.add_parser("roster", help="the roster of grids, buildings and people")
    add_roster_arguments(roster)
    commands["roster"] = run_roster

    from bot.intents.cli import add_classify_arguments, run_classify

    classify = sub.add_parser("classify", help="classify residents' messages into intents")
    add_classify_arguments(classify)
    commands["classify"] = run_classify

    from bot.report import add_report_arguments, run_report

    report = sub.add_parser("report", help="service figures: 响应率, 解决率, 满意率 per grid, worker, kind")
    add_report_arguments(report)
    commands["report"] = run_report

    from bot.menu import add_arguments as add_menu_arguments
    from bot.menu import run as run_menu

    menu = sub.add_parser("menu", help="the official account's custom menu: show or publish")
    add_menu_arguments(menu)
    commands["menu"] = run_menu
    return commands


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="communitybot", description="community-bot")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = _add_commands(sub)
    args = parser.parse_args(argv)
    try:
        return commands[args.command](args)
    except SettingsError as exc:
        print(f"communitybot {args.command}: settings refused ({len(exc.problems)} problem(s)):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:
            raise
        # a file the command reads (config/messages.toml, limits.toml …) missing or unreadable
        print(f"communitybot {args.command}: cannot read {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
