"""The roster: grids, their buildings and workers, and the people who own tickets.

Loaded from TOML (format in CONTRACT) at start and by `communitybot roster import`. An import
adds and updates what the file names and keeps the rest (merge); with replace the file is the whole
roster: grids not in it are removed, people not in it are deactivated. The open tickets a
deactivated person holds go to the staff queue in the same transaction (escalated, the staff
group told: 承办人已离开名册), so none waits on someone who is gone; the import lists them. A
roster with any problem, in itself or merged with what is kept, is refused as a whole, naming
every problem.

At start, CB_ROSTER (the operator's file) is loaded as the whole roster; left unset, the shipped
demo roster is loaded only while the database holds no roster, never over an operator's import.
"""

from __future__ import annotations

import logging
import re
import time
import tomllib
import unicodedata
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config_files import NotUtf8, read_text
from bot.services import Services
from bot.texts import Texts
from storage.models import AuditLog, Grid, Person, Ticket

log = logging.getLogger(__name__)

ROLES = ("grid_worker", "mediator", "provider", "volunteer_coordinator", "staff", "admin")
STAFF_ROLES = ("staff", "admin")
_BUILDING_SUFFIX = re.compile(r"(号楼|号|栋|幢|楼)$")


class RosterError(ValueError):
    """A roster that cannot be loaded; the message names every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("roster refused: " + "; ".join(problems))


@dataclass(frozen=True)
class GridEntry:
    """One grid as the file describes it."""

    id: str
    name: str
    buildings: tuple[str, ...]
    workers: tuple[str, ...]
    places: tuple[str, ...] = ()  # common places it covers: 小区西门, 中心广场 (normalize_place)


@dataclass(frozen=True)
class PersonEntry:
    """One person as the file describes it."""

    id: str
    name: str
    roles: tuple[str, ...]
    services: tuple[str, ...] = ()
    phone: str | None = None


@dataclass(frozen=True)
class RosterFile:
    """A validated roster."""

    grids: tuple[GridEntry, ...]
    people: tuple[PersonEntry, ...]
    # The file's line of each table, ("grids" | "people", i) -> line, for problems found once merged
    lines: dict[tuple[str, int], int] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RosterChanges:
    """What an import changed, by id."""

    grids_added: tuple[str, ...] = ()
    grids_updated: tuple[str, ...] = ()
    grids_removed: tuple[str, ...] = ()
    people_added: tuple[str, ...] = ()
    people_updated: tuple[str, ...] = ()
    people_deactivated: tuple[str, ...] = ()
    unchanged: int = 0
    grids_kept: tuple[str, ...] = ()  # merge: in the database, not in the file, left as they are
    people_kept: tuple[str, ...] = ()
    # (person, ticket number): open tickets of people deactivated, which go to the staff queue
    tickets_to_staff: tuple[tuple[str, str], ...] = ()
    # (ticket number, from, to, grid): open reports held by a worker the import took out of the
    # grid of their building (on leave, moved to another grid), given to a worker that grid has
    # now; to '' (the staff queue) when it has none
    tickets_moved: tuple[tuple[str, str, str, str], ...] = ()

    @property
    def changed(self) -> bool:
        """Whether anything differs from before."""
        return any(
            (self.grids_added, self.grids_updated, self.grids_removed, self.people_added,
             self.people_updated, self.people_deactivated)
        )

    def lines(self) -> list[str]:
        """Human-readable summary lines, one per kind of change."""
        out: list[str] = []
        for label, ids in (
            ("grids added", self.grids_added), ("grids updated", self.grids_updated),
            ("grids removed", self.grids_removed), ("people added", self.people_added),
            ("people updated", self.people_updated), ("people deactivated", self.people_deactivated),
        ):
            if ids:
                out.append(f"{label}: {', '.join(ids)}")
        out.append(f"unchanged: {self.unchanged}")
        kept = [f"{label} {', '.join(ids)}" for label, ids in (("grids", self.grids_kept), ("people", self.people_kept)) if ids]
        if kept:
            out.append(f"kept, not in the file (--replace removes them): {'; '.join(kept)}")
        if self.tickets_to_staff:
            out.append(f"open tickets of people deactivated, to the staff queue (承办人已离开名册): {self.held_text()}")
        if self.tickets_moved:
            moved = ", ".join(f"{number} {was} → {to or 'the staff queue'}" for number, was, to, _ in self.tickets_moved)
            out.append(f"open tickets of workers taken out of their grid, moved with the grid: {moved}")
        return out

    def audit_lines(self, texts: Texts, people: dict[str, str], grids: dict[str, str]) -> list[str]:
        """The same summary in a clerk's words for the audit log ([console.roster_changes]): 新增网格：…,
        未变动：5 项, …; people and grids by name as the other pages show them (钱丽, not qianli), with
        the id only where two share that name (王伟（wangwei2）)."""
        def t(key: str, **values: object) -> str:
            return texts.get(f"console.roster_changes.{key}", **values)

        def named(ids: Iterable[str], names: dict[str, str]) -> str:
            shared = {n for n in names.values() if list(names.values()).count(n) > 1}
            return "、".join(i if not names.get(i) else t("named", name=names[i], id=i) if names[i] in shared
                            else names[i] for i in ids)

        out = [t(key, ids=named(ids, names)) for key, ids, names in (
            ("grids_added", self.grids_added, grids), ("grids_updated", self.grids_updated, grids),
            ("grids_removed", self.grids_removed, grids), ("people_added", self.people_added, people),
            ("people_updated", self.people_updated, people), ("people_deactivated", self.people_deactivated, people),
        ) if ids]
        out.append(t("unchanged", n=self.unchanged))
        kept = [t(key, ids=named(ids, names)) for key, ids, names in (
            ("kept_grids", self.grids_kept, grids), ("kept_people", self.people_kept, people)) if ids]
        if kept:
            out.append(t("kept", what="；".join(kept)))
        if self.tickets_to_staff:
            by_person: dict[str, list[str]] = {}
            for person_id, number in self.tickets_to_staff:
                by_person.setdefault(person_id, []).append(number)
            held = "；".join(f"{named([pid], people)} {'、'.join(numbers)}" for pid, numbers in by_person.items())
            out.append(t("to_staff", held=held))
        if self.tickets_moved:
            moved = "；".join(t("moved_one", number=number, was=named([was], people),
                                to=named([to], people) if to else t("staff_queue"))
                             for number, was, to, _ in self.tickets_moved)
            out.append(t("moved", moved=moved))
        return out

    def held_text(self) -> str:
        """The open tickets of people deactivated, by person: 'qianli 20261123-0001, 20261123-0004'."""
        by_person: dict[str, list[str]] = {}
        for person_id, number in self.tickets_to_staff:
            by_person.setdefault(person_id, []).append(number)
        return "; ".join(f"{pid} {', '.join(numbers)}" for pid, numbers in by_person.items())


def normalize_building(text: str) -> str:
    """A building as residents say it, reduced to its key: '３号楼' → '3', ' 12栋 ' → '12'."""
    value = unicodedata.normalize("NFKC", str(text)).strip()
    return _BUILDING_SUFFIX.sub("", value).strip()


def normalize_place(text: str) -> str:
    """A common place as the roster names it and as residents say it, reduced to its key:
    '小区西门' → '西门', ' 中心广场 ' → '中心广场', full-width characters folded."""
    value = "".join(unicodedata.normalize("NFKC", str(text)).split())
    return value.removeprefix("小区") or value


def _strings(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
        problems.append(f"{where} must be a list of strings")
        return ()
    return tuple(str(v).strip() for v in value)


def _text(entry: dict[str, Any], key: str, where: str, problems: list[str]) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where} needs a non-empty {key}")
        return ""
    return value.strip()


def _head(raw: Any, key: str, i: int, noun: str, problems: list[str]) -> tuple[str, str, str] | None:
    """The i-th [[key]] table's id, how its problems name it (person 'w1', else people[2]) and its
    name, each missing one a problem; None, a problem too, when the entry is not a table."""
    where = f"{key}[{i}]"
    if not isinstance(raw, dict):
        problems.append(f"{where} is not a table")
        return None
    found = _text(raw, "id", where, problems)
    where = f"{noun} {found!r}" if found else where
    return found, where, _text(raw, "name", where, problems)


def _claim(keys: Iterable[str], noun: str, owners: dict[str, str], gid: str, where: str, problems: list[str],
           file_line: dict[str, int]) -> None:
    """A grid's buildings (or places) taken into owners, key → grid: an empty one, or one another
    grid holds, is a problem. file_line: the file's line of each grid it has (a grid the
    database holds, merged after the file's, has none: the clash is said at the other's line)."""
    for key in keys:
        if not key:
            problems.append(f"{where} has an empty {noun}")
        elif key in owners and owners[key] != gid:
            other = owners[key]
            at = f" (at line {file_line[other]})" if gid not in file_line and other in file_line else ""
            problems.append(f"{noun} {key!r} is in two grids: {other!r} and {gid!r}{at}")
        owners.setdefault(key, gid)


_TABLE_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*(grids|people)[ \t]*\]\]", re.MULTILINE)


def table_lines(text: str) -> dict[tuple[str, int], int]:
    """The line of each [[grids]] and [[people]] table header of a roster file's text:
    ("grids" | "people", i) -> line number of the i-th one."""
    found: dict[tuple[str, int], int] = {}
    counts = {"grids": 0, "people": 0}
    for match in _TABLE_HEADER.finditer(text):
        key = match.group(1)
        found[(key, counts[key])] = text.count("\n", 0, match.start()) + 1
        counts[key] += 1
    return found


def _at_line(problems: list[str], start: int, line: int | None) -> None:
    """Say the line of the table they were found in after each problem from start on."""
    if line is not None:
        problems[start:] = [f"{problem} (at line {line})" for problem in problems[start:]]


def parse_roster(data: dict[str, Any], *, whole: bool = True,
                 lines: dict[tuple[str, int], int] | None = None) -> RosterFile:
    """Validate a roster's TOML tables; raises RosterError listing every problem, each with the
    line of its table when lines (table_lines) are given. whole: the tables are the whole roster,
    so a grid's workers must be among its people; a file to be merged (whole=False) may name
    people the database holds, checked once merged (_merged)."""
    lines = lines or {}
    problems: list[str] = []
    extra = sorted(set(data) - {"grids", "people"})
    if extra:
        problems.append(f"unknown top-level key(s): {', '.join(extra)}")
    for key, header in (("grids", "[[grids]]"), ("people", "[[people]]")):
        if not isinstance(data.get(key, []), list):
            problems.append(f"{key} must be tables written {header}, not {type(data[key]).__name__} {data[key]!r}")
            data = {**data, key: []}
    people: list[PersonEntry] = []
    seen_people: set[str] = set()
    for i, raw in enumerate(data.get("people", [])):
        start = len(problems)
        head = _head(raw, "people", i, "person", problems)
        if head is None:
            _at_line(problems, start, lines.get(("people", i)))
            continue
        pid, where, name = head
        roles = _strings(raw.get("roles"), f"{where}: roles", problems)
        for role in roles:
            if role not in ROLES:
                problems.append(f"{where}: unknown role {role!r} (roles are {', '.join(ROLES)})")
        if not roles:
            problems.append(f"{where} has no roles")
        services = _strings(raw.get("services"), f"{where}: services", problems)
        if services and "provider" not in roles:
            problems.append(f"{where} lists services but is not a provider")
        if "provider" in roles and not services:
            problems.append(f"{where} is a provider without services")
        phone = raw.get("phone")
        if phone is not None and not isinstance(phone, str):
            problems.append(f"{where}: phone must be a string")
            phone = None
        if pid in seen_people:
            problems.append(f"person {pid!r} appears twice")
        seen_people.add(pid)
        people.append(PersonEntry(pid, name, roles, services, phone))
        _at_line(problems, start, lines.get(("people", i)))
    by_id = {p.id: p for p in people}
    grids: list[GridEntry] = []
    seen_grids: set[str] = set()
    building_grid: dict[str, str] = {}
    place_grid: dict[str, str] = {}
    grid_line: dict[str, int] = {}
    for i, raw in enumerate(data.get("grids", [])):
        start = len(problems)
        head = _head(raw, "grids", i, "grid", problems)
        if head is None:
            _at_line(problems, start, lines.get(("grids", i)))
            continue
        gid, where, name = head
        if ("grids", i) in lines:
            grid_line.setdefault(gid, lines[("grids", i)])
        buildings = tuple(normalize_building(b) for b in _strings(raw.get("buildings"), f"{where}: buildings", problems))
        workers = _strings(raw.get("workers"), f"{where}: workers", problems)
        places = tuple(normalize_place(p) for p in _strings(raw.get("places"), f"{where}: places", problems))
        if gid in seen_grids:
            problems.append(f"grid {gid!r} appears twice")
        seen_grids.add(gid)
        _claim(buildings, "building", building_grid, gid, where, problems, grid_line)
        _claim(places, "place", place_grid, gid, where, problems, grid_line)
        for w in workers:
            if w not in by_id:
                if whole:
                    problems.append(f"{where}: worker {w!r} is not among people")
            elif "grid_worker" not in by_id[w].roles:
                problems.append(f"{where}: worker {w!r} does not have the grid_worker role")
        grids.append(GridEntry(gid, name, buildings, workers, tuple(dict.fromkeys(p for p in places if p))))
        _at_line(problems, start, lines.get(("grids", i)))
    if problems:
        raise RosterError(problems)
    return RosterFile(tuple(grids), tuple(people), lines)


def read_roster(path: Path, *, whole: bool = True) -> RosterFile:
    """Read and validate a roster file; RosterError for unreadable or invalid ones (whole: as in
    parse_roster)."""
    try:
        text = read_text(path)  # Windows Notepad saves UTF-8 with a BOM
        data = tomllib.loads(text)
    except OSError as exc:
        raise RosterError([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise RosterError([f"{path} is not valid TOML: {exc}"]) from exc
    except NotUtf8 as exc:
        raise RosterError([str(exc)]) from exc
    return parse_roster(data, whole=whole, lines=table_lines(text))


def _upsert(session: AsyncSession, model: type[Any], row: Any, key: str, values: dict[str, Any]) -> str:
    """Add a roster row or bring an existing one up to values: 'added', 'updated' or 'same'."""
    if row is None:
        session.add(model(id=key, **values))
        return "added"
    if all(getattr(row, k) == v for k, v in values.items()):
        return "same"
    for k, v in values.items():
        setattr(row, k, v)
    return "updated"


def _merged(roster: RosterFile, old_grids: dict[str, Grid], old_people: dict[str, Person]) -> RosterFile:
    """The file's entries with the database's active ones it does not name, validated together
    (a building now in two grids, a kept grid's worker who lost the role, a worker neither in the
    file nor active in the database, are refused)."""
    named_grids = {g.id for g in roster.grids}
    named_people = {p.id for p in roster.people}
    data = {
        "people": [
            {"id": p.id, "name": p.name, "roles": list(p.roles), "services": list(p.services),
             **({"phone": p.phone} if p.phone is not None else {})}
            for p in roster.people
        ] + [
            {"id": p.id, "name": p.name, "roles": list(p.roles or ()), "services": list(p.services or ()),
             **({"phone": p.phone} if p.phone is not None else {})}
            for pid, p in old_people.items() if pid not in named_people and p.active
        ],
        "grids": [
            {"id": g.id, "name": g.name, "buildings": list(g.buildings), "workers": list(g.workers),
             "places": list(g.places)}
            for g in roster.grids
        ] + [
            {"id": g.id, "name": g.name, "buildings": list(g.buildings or ()), "workers": list(g.workers or ()),
             "places": list(g.places or ())}
            for gid, g in old_grids.items() if gid not in named_grids
        ],
    }
    return parse_roster(data, lines=roster.lines)  # the file's tables come first, in its order


async def apply_roster(
    session: AsyncSession, roster: RosterFile, actor: str, now: datetime, texts: Texts, *, replace: bool = True
) -> RosterChanges:
    """Upsert a validated roster in the caller's transaction and audit it (in a clerk's words:
    texts); returns the changes. replace: the file is the whole roster; otherwise what it does not
    name is kept."""
    old_grids = {g.id: g for g in (await session.execute(select(Grid))).scalars()}
    old_people = {p.id: p for p in (await session.execute(select(Person))).scalars()}
    old_workers = {gid: tuple(g.workers or ()) for gid, g in old_grids.items()}  # the upserts change the rows
    kept_grids: tuple[str, ...] = ()
    kept_people: tuple[str, ...] = ()
    if not replace:
        named = {g.id for g in roster.grids} | {p.id for p in roster.people}
        roster = _merged(roster, old_grids, old_people)
        kept_grids = tuple(g.id for g in roster.grids if g.id not in named)
        kept_people = tuple(p.id for p in roster.people if p.id not in named)
    changes: dict[str, list[str]] = {k: [] for k in ("ga", "gu", "gr", "pa", "pu", "pd")}
    unchanged = 0
    for p in roster.people:
        values = {"name": p.name, "roles": list(p.roles), "services": list(p.services), "phone": p.phone, "active": True}
        outcome = _upsert(session, Person, old_people.get(p.id), p.id, values)
        if outcome == "same":
            unchanged += 1
        else:
            changes["pa" if outcome == "added" else "pu"].append(p.id)
    listed = {p.id for p in roster.people}
    for pid, row in old_people.items():
        if pid not in listed and row.active:
            row.active = False
            changes["pd"].append(pid)
    for g in roster.grids:
        values = {"name": g.name, "buildings": list(g.buildings), "workers": list(g.workers), "places": list(g.places)}
        outcome = _upsert(session, Grid, old_grids.get(g.id), g.id, values)
        if outcome == "same":
            unchanged += 1
        else:
            changes["ga" if outcome == "added" else "gu"].append(g.id)
    gone = [gid for gid in old_grids if gid not in {g.id for g in roster.grids}]
    if gone:
        await session.execute(delete(Grid).where(Grid.id.in_(gone)))
        changes["gr"].extend(gone)
    held = await held_by(session, changes["pd"])
    await session.flush()
    moved = await _grid_moves(session, old_workers, {g.id: g for g in roster.grids}, set(changes["pd"]))
    result = RosterChanges(
        tuple(changes["ga"]), tuple(changes["gu"]), tuple(changes["gr"]), tuple(changes["pa"]),
        tuple(changes["pu"]), tuple(changes["pd"]), unchanged - len(kept_grids) - len(kept_people),
        kept_grids, kept_people, tuple((str(t.assignee), t.number) for t in held), moved,
    )
    if result.changed:
        people = {p.id: p.name for p in old_people.values()} | {p.id: p.name for p in roster.people}
        grids = {g.id: g.name for g in old_grids.values()} | {g.id: g.name for g in roster.grids}
        session.add(AuditLog(actor=actor, action="roster.import" if replace else "roster.merge", target="roster",
                             detail={"changes": result.audit_lines(texts, people, grids)}, created_at=now))
    await session.flush()
    return result


async def _grid_moves(
    session: AsyncSession, old_workers: dict[str, tuple[str, ...]], new_grids: dict[str, GridEntry],
    deactivated: set[str],
) -> tuple[tuple[str, str, str, str], ...]:
    """Where the open reports go whose holder this import takes out of the grid of their building
    (on leave, moved to another grid) and keeps in the roster (the deactivated go to the staff
    queue: hand_to_staff): (number, holder, to, the building's grid now). To the grid's active
    worker holding the fewest open tickets, counting those moved before; to '' (the staff queue)
    when the building is in no grid or its grid has no worker. Only a holder who was a worker of
    the ticket's grid is moved from: a report staff gave someone else stays theirs."""
    from bot.dispatch import HELD, open_load  # dispatch routes by the roster: imported here

    rows = await session.scalars(
        select(Ticket).where(Ticket.grid.in_(list(old_workers)), Ticket.status.in_(HELD), Ticket.parent_id.is_(None),
                             Ticket.kind == "complaint").order_by(Ticket.id)
    )
    found = []
    for ticket in rows:
        holder, now_in = ticket.assignee, _covering(new_grids.values(), ticket.building, landmark_of(ticket))
        if holder and holder not in deactivated and holder in old_workers[str(ticket.grid)] and (
                now_in is None or holder not in now_in.workers):
            found.append((ticket, now_in))
    if not found:
        return ()
    active = {p.id for p in (await session.scalars(select(Person).where(Person.active.is_(True))))
              if "grid_worker" in (p.roles or ())}
    load = await open_load(session, sorted(active))
    moves = []
    for ticket, grid in found:
        workers = [w for w in grid.workers if w in active] if grid is not None else []
        to = min(workers, key=lambda w: load.get(w, 0)) if workers else ""
        if to:
            load[to] = load.get(to, 0) + 1
        moves.append((ticket.number, str(ticket.assignee), to, grid.id if grid is not None else ""))
    return tuple(moves)


async def move_with_grid(svc: Services, session: AsyncSession, moves: Iterable[tuple[str, str, str, str]],
                         actor: str) -> None:
    """Carry out _grid_moves: each report given to its grid's worker (their card; its limits run
    again from now; the worker taken out told 已改派他人, as for a reassignment in the console), or
    sent to the staff queue with why."""
    from bot import dispatch, tickets

    for number, was, to, grid in moves:
        ticket = await tickets.get_by_number(session, number, for_update=True)
        if ticket is None or ticket.assignee != was or ticket.status not in dispatch.HELD:
            continue
        if to:
            ticket.grid = grid
            await dispatch.apply_action(svc, session, ticket, "assign", actor, assignee=to,
                                        note=svc.texts.get("roster.moved_with_grid"), data={"moved_from": was})
        elif ticket.status == "escalated":
            await dispatch.escalate_to_staff(svc, session, ticket, svc.texts.get("roster.owner_moved"))
        else:
            await dispatch.apply_action(svc, session, ticket, "escalate", actor, note=svc.texts.get("roster.owner_moved"),
                                        data={"moved_from": was})


async def held_by(session: AsyncSession, people: Iterable[str]) -> list[Ticket]:
    """The open tickets in these people's hands (dispatch.HELD, linked reports aside: they follow
    their parent), row-locked, oldest first."""
    from bot.dispatch import HELD  # dispatch routes by the roster: imported here, not at the top

    ids = list(people)
    if not ids:
        return []
    rows = await session.scalars(
        select(Ticket).where(Ticket.assignee.in_(ids), Ticket.status.in_(HELD), Ticket.parent_id.is_(None))
        .order_by(Ticket.id).with_for_update()
    )
    return list(rows)


async def hand_to_staff(svc: Services, session: AsyncSession, people: Iterable[str], actor: str) -> None:
    """The open tickets of people no longer in the roster go to the staff queue: escalated (their
    reminders dropped, the staff group told 承办人已离开名册); one already escalated has the staff
    group told again, with that reason. Nothing goes to the person who left."""
    from bot import dispatch, reminders

    reason = svc.texts.get("roster.owner_left")
    for ticket in await held_by(session, people):
        if ticket.status == "escalated":
            await reminders.drop_for_cause(session, "ticket", ticket.id, kinds=dispatch.LIMIT_KINDS)
            await dispatch.escalate_to_staff(svc, session, ticket, reason)
        else:
            await dispatch.apply_action(svc, session, ticket, "escalate", actor, note=reason,
                                        data={"owner_left": ticket.assignee})


class _DryRun(Exception):
    """Rolls a dry run's transaction back, carrying what it would have changed."""

    def __init__(self, changes: RosterChanges) -> None:
        self.changes = changes


async def import_roster(
    svc: Services, path: Path, actor: str = "system", *, replace: bool = True, dry_run: bool = False
) -> RosterChanges:
    """Validate path and load it into grids/people in one transaction (nothing half-loaded):
    replace, the file is the whole roster; else it is merged into the one there. The open tickets
    of people it deactivates go to the staff queue in that transaction (hand_to_staff), and those
    of a worker it takes out of a grid go to the grid's worker (move_with_grid). dry_run:
    say what would change and change nothing. A change is announced to every process's routing
    snapshot (see snapshot) once committed."""
    roster = read_roster(path, whole=replace)  # merged: its workers may be people the database holds
    async with svc.store.lock("roster-import", timeout=60, wait=60):
        try:
            async with svc.sessions() as session, session.begin():
                changes = await apply_roster(session, roster, actor, svc.clock.now(), svc.texts, replace=replace)
                if dry_run:
                    raise _DryRun(changes)
                await hand_to_staff(svc, session, changes.people_deactivated, actor)
                await move_with_grid(svc, session, changes.tickets_moved, actor)
        except _DryRun as done:
            return done.changes
    if changes.changed:
        svc.extras.pop(_SNAPSHOT, None)
        await svc.store.set(svc.store.key(*_VERSION), uuid.uuid4().hex)
    return changes


# --- the roster as routing reads it -------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The active people and the grids, read once and shared by the tickets that follow (as
    entries of the roster file: plain frozen records, never changed)."""

    version: str | None
    taken_at: float  # time.monotonic()
    people: tuple[PersonEntry, ...]  # the active ones, ordered by id
    grids: tuple[GridEntry, ...]  # ordered by id

    def with_role(self, role: str) -> list[PersonEntry]:
        """Active people having role, ordered by id."""
        return _having_role(self.people, role)

    def grid_for(self, ticket: Ticket) -> GridEntry | None:
        """The grid a ticket belongs to: its building's, else the one covering the common place it
        names (小区西门那个路灯: the grid listing 西门), or None."""
        return _covering(self.grids, ticket.building, landmark_of(ticket))

    def person(self, person_id: str | None) -> PersonEntry | None:
        """An active person by WeCom userid, or None (inactive people are not held)."""
        return next((p for p in self.people if p.id == person_id), None) if person_id else None


_Holder = TypeVar("_Holder", Grid, GridEntry)
_Member = TypeVar("_Member", Person, PersonEntry)


def _having_role(people: Iterable[_Member], role: str) -> list[_Member]:
    return [p for p in people if role in (p.roles or ())]


def _holding(grids: Iterable[_Holder], building: str | None) -> _Holder | None:
    if not building:
        return None
    key = normalize_building(building)
    return next((g for g in grids if key in (g.buildings or ())), None)


def landmark_of(ticket: Ticket) -> str:
    """The common place a ticket names (its landmark, else its place in words: 小区西门, 南门停车场),
    or ""."""
    fields = ticket.fields if isinstance(ticket.fields, dict) else {}
    place = fields.get("place")
    named = fields.get("landmark") or (place.get("landmark") if isinstance(place, dict) else place)
    return str(named or "")


def _at_place(grids: Iterable[_Holder], landmark: str) -> _Holder | None:
    """The grid covering the place a resident named: the grid whose listed place is the longest
    one found in the words (南门停车场 is the grid listing 南门停车场 before the one listing 南门)."""
    found = _listed_place(grids, landmark)
    return found[1] if found else None


def _listed_place(grids: Iterable[_Holder], landmark: str) -> tuple[str, _Holder] | None:
    """The roster's listed place (its key: 西门) the words name, the longest found, with its grid."""
    said = normalize_place(landmark) if landmark else ""
    if not said:
        return None
    best: tuple[str, _Holder] | None = None
    for grid in grids:
        for place in grid.places or ():
            if place and place in said and (best is None or len(place) > len(best[0])):
                best = (place, grid)
    return best


def listed_place(grids: Iterable[_Holder], ticket: Ticket) -> str:
    """The roster's common place a ticket with no building is at (西门 for 小区西门那个路灯), as its
    grid was found by it; "" for a ticket naming a building or no listed place."""
    if ticket.building:
        return ""
    found = _listed_place(grids, landmark_of(ticket))
    return found[0] if found else ""


def _covering(grids: Iterable[_Holder], building: str | None, landmark: str) -> _Holder | None:
    """A ticket's grid: its building's when it names one, else the one covering its place."""
    grids = list(grids)
    if building:
        return _holding(grids, building)
    return _at_place(grids, landmark)


_SNAPSHOT = "roster.snapshot"  # svc.extras key
_VERSION = ("roster", "version")  # store key parts: changed by every import that changed something
SNAPSHOT_MAX_AGE_S = 60.0  # read again at least this often, whatever the version says


async def snapshot(svc: Services, session: AsyncSession) -> Snapshot:
    """The roster for routing, read from the database only when an import changed it (in any
    process: the version is in the shared store) or after SNAPSHOT_MAX_AGE_S. Every ticket reads
    the roster; reading it anew each time was a third of a ticket's CPU."""
    version = await svc.store.get(svc.store.key(*_VERSION))
    held: Snapshot | None = svc.extras.get(_SNAPSHOT)
    if held is not None and held.version == version and time.monotonic() - held.taken_at < SNAPSHOT_MAX_AGE_S:
        return held
    people = tuple(
        PersonEntry(p.id, p.name, tuple(p.roles or ()), tuple(p.services or ()), p.phone)
        for p in (await session.execute(_ACTIVE_PEOPLE)).scalars()
    )
    grids = tuple(
        GridEntry(g.id, g.name, tuple(g.buildings or ()), tuple(g.workers or ()), tuple(g.places or ()))
        for g in (await session.execute(_GRIDS)).scalars()
    )
    fresh = Snapshot(version, time.monotonic(), people, grids)
    svc.extras[_SNAPSHOT] = fresh
    return fresh


# Built once: routing reads the roster for every ticket, and building a statement costs more
# than running it.
_ACTIVE_PEOPLE = select(Person).where(Person.active.is_(True)).order_by(Person.id)
_GRIDS = select(Grid).order_by(Grid.id)


async def people_with_role(session: AsyncSession, role: str) -> list[Person]:
    """Active people having role, ordered by id."""
    return _having_role((await session.execute(_ACTIVE_PEOPLE)).scalars(), role)


async def grid_of_building(session: AsyncSession, building: str | None) -> Grid | None:
    """The grid that holds a building ('3', '3号楼', '３栋' alike), or None."""
    if not building:
        return None
    return _holding((await session.execute(_GRIDS)).scalars(), building)


async def grid_of_ticket(session: AsyncSession, ticket: Ticket) -> Grid | None:
    """The grid of a ticket's building, else of the common place it names (Snapshot.grid_for)."""
    if not ticket.building and not landmark_of(ticket):
        return None
    return _covering((await session.execute(_GRIDS)).scalars(), ticket.building, landmark_of(ticket))


async def grid(session: AsyncSession, grid_id: str | None) -> Grid | None:
    """A grid by id."""
    return None if not grid_id else await session.get(Grid, grid_id)


async def person(session: AsyncSession, person_id: str | None) -> Person | None:
    """A person by WeCom userid (active or not), or None."""
    return None if not person_id else await session.get(Person, person_id)


def is_staff(who: Person | None) -> bool:
    """Whether a roster person may act as service-centre staff."""
    return who is not None and who.active and any(r in STAFF_ROLES for r in who.roles or [])


async def holds_roster(svc: Services) -> bool:
    """Whether the database holds any grid or person (an import happened)."""
    async with svc.sessions() as session:
        grids = await session.scalar(select(Grid.id).limit(1))
        people = await session.scalar(select(Person.id).limit(1))
    return grids is not None or people is not None


async def _startup_ctx(app: web.Application) -> AsyncIterator[None]:
    from bot.app import SERVICES

    svc = app[SERVICES]
    path = svc.settings.roster_path
    if svc.settings.roster_is_demo:
        if not path.exists():
            log.warning("demo roster %s not found; keeping the roster in the database", path)
        elif await holds_roster(svc):
            log.info("demo roster %s not loaded: the database holds a roster already "
                     "(CB_ROSTER names a file to load at every start; `communitybot roster import` loads one now)", path)
        else:
            changes = await import_roster(svc, path)
            log.info("demo roster loaded from %s (the database held none): %s", path, "; ".join(changes.lines()))
    else:
        changes = await import_roster(svc, path)  # CB_ROSTER: the whole roster; invalid stops the start, loudly
        if changes.people_deactivated:
            # Often an operator's `roster import` undone by this reload: said loudly, with the
            # tickets it sent to the staff queue.
            log.warning(
                "roster loaded from %s (CB_ROSTER) deactivated %s; their open tickets went to the staff queue: %s "
                "(to keep someone, add them to %s)", path, ", ".join(changes.people_deactivated),
                changes.held_text() or "none", path,
            )
        log.info("roster loaded from %s (CB_ROSTER): %s", path, "; ".join(changes.lines()))
    yield


def setup(app: web.Application) -> None:
    """Load the configured roster when the app starts."""
    app.cleanup_ctx.append(_startup_ctx)
