"""`communitybot roster import FILE.toml [--replace] [--dry-run]`: validate a roster and load it,
printing what changed.

By default the file is merged: what it names is added or updated, the rest is kept (and listed).
`--replace` makes the file the whole roster: grids not in it are removed, people not in it are
deactivated, and the open tickets they hold go to the staff queue (listed). `--dry-run` prints
what would change and changes nothing.

With CB_ROSTER naming another file, every start loads that file as the whole roster, undoing
what this import changed: the command says so.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from redis.exceptions import RedisError

from bot.roster import RosterChanges, RosterError, import_roster
from bot.services import open_services
from bot.settings import Settings, SettingsError, load_settings
from storage.db import describe_db_error


def add_roster_arguments(parser: argparse.ArgumentParser) -> None:
    """The `roster` subcommands."""
    sub = parser.add_subparsers(dest="roster_command", required=True)
    imp = sub.add_parser("import", help="load or update grids, buildings, workers, providers, staff")
    imp.add_argument("file", type=Path, help="roster TOML (format in CONTRACT)")
    imp.add_argument("--replace", action="store_true",
                     help="the file is the whole roster: remove grids and deactivate people it does not name")
    imp.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")


async def _import(path: Path, replace: bool, dry_run: bool) -> RosterChanges:
    settings = load_settings()
    svc = open_services(settings)
    try:
        return await import_roster(svc, path, actor="cli", replace=replace, dry_run=dry_run)
    finally:
        await svc.close()


def undone_at_start(settings: Settings, path: Path) -> str | None:
    """The warning for an import that the next start undoes (CB_ROSTER names another file, loaded
    at every start as the whole roster), or None."""
    if settings.roster_is_demo:
        return None
    configured = settings.roster_path
    if configured.resolve() == path.resolve():
        return None
    return (f"warning: CB_ROSTER is {configured}: the next start reloads {configured} as the whole roster and "
            f"undoes this: edit {configured} instead, or import {configured} (at that start, people it does "
            f"not name are deactivated and their open tickets go to the staff queue)")


def run_roster(args: argparse.Namespace) -> int:
    """Run `roster import`: 0 when loaded, 2 when the roster is refused, 1 on a database error."""
    try:
        changes = asyncio.run(_import(args.file, args.replace, args.dry_run))
    except RosterError as exc:
        print(f"roster refused, nothing loaded ({len(exc.problems)} problem(s)):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except SettingsError:
        raise  # said by the command line's boundary, as for every command
    except RedisError as exc:
        print(f"roster not loaded: cannot reach Redis (CB_REDIS_URL): {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the command's boundary: what the database said, in one line
        reason = describe_db_error(exc, load_settings().db_url, migrate_hint=True)
        if reason is None:
            raise
        print(f"roster not loaded: {reason}", file=sys.stderr)
        return 1
    mode = "the whole roster, --replace" if args.replace else "merged"
    done = "not loaded (--dry-run); it would change" if args.dry_run else "loaded"
    print(f"roster {args.file} {done} ({mode})" + ("" if changes.changed else ": no changes"))
    for line in changes.lines():
        print(f"  {line}")
    warning = undone_at_start(load_settings(), args.file)
    if warning is not None:
        print(warning, file=sys.stderr)
    return 0
