"""`communitybot roster import FILE.toml`: validate a roster and load it, printing what changed."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.roster import RosterChanges, RosterError, import_roster
from bot.services import open_services
from bot.settings import load_settings


def add_roster_arguments(parser: argparse.ArgumentParser) -> None:
    """The `roster` subcommands."""
    sub = parser.add_subparsers(dest="roster_command", required=True)
    imp = sub.add_parser("import", help="load or update grids, buildings, workers, providers, staff")
    imp.add_argument("file", type=Path, help="roster TOML (format in CONTRACT)")


async def _import(path: Path) -> RosterChanges:
    svc = open_services(load_settings())
    try:
        return await import_roster(svc, path, actor="cli")
    finally:
        await svc.close()


def run_roster(args: argparse.Namespace) -> int:
    """Run `roster import`: 0 when loaded, 2 when the roster is refused, 1 on a database error."""
    try:
        changes = asyncio.run(_import(args.file))
    except RosterError as exc:
        print(f"roster refused, nothing loaded ({len(exc.problems)} problem(s)):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"roster not loaded: database error ({type(exc).__name__}); "
              "is it migrated (`communitybot db upgrade`)?", file=sys.stderr)
        return 1
    print(f"roster {args.file} loaded" + ("" if changes.changed else " (no changes)"))
    for line in changes.lines():
        print(f"  {line}")
    return 0
