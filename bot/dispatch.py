"""Routing tickets to their owners, time limits, duplicates, and every status change's side effects.

- `dispatch_new` routes a new ticket (or links it to an active duplicate, or leaves it in the
  staff queue and tells the staff group), sets its time limits and queues the WeCom push (the
  card, then the resident's photos as images; a new owner gets them too).
- `photo_added` tells the owner of a photo the resident sent after the report, with the photo.
- `rebooked` / `unbooked` follow a booking moved or cancelled onto its ticket and tell its owner.
- `apply_action` is the one place a status change happens with its side effects.
- `escalate_to_staff` posts a ticket that needs a person to the staff group robot (an urgent
  ticket's post marked and sent first).
- `handle_due_reminder` acts on due breach checks (overdue → escalated); the scheduler calls it.

Everything works in the caller's session and transaction: ticket, events, pushes, reminders
commit together. Pushes the bot makes on its own (cards, status notices, reminders of what
changed) wait for the end of quiet hours unless the ticket is urgent (`schedule.held_until`),
and so do the time limits of a card held until then.
"""

from __future__ import annotations

import functools
import logging
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from sqlalchemy import BigInteger, bindparam, delete, exists, func, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot import notices, outbox, reminders, roster, schedule, tickets, volunteers
from bot.limits import Limits, load_limits
from bot.privacy import hash_openid
from bot.services import Services
from storage import fastsql
from storage.fastsql import Prepared
from storage.models import OutboxItem, Person, Reminder, Resident, Ticket, TicketEvent

log = logging.getLogger(__name__)

REMIND_KINDS = ("accept_remind", "resolve_remind")
BREACH_KINDS = ("accept_breach", "resolve_breach")
LIMIT_KINDS = REMIND_KINDS + BREACH_KINDS
WORKING = ("dispatched", "accepted", "reopened")  # statuses in which an owner has the ticket
# … and the statuses in which it is in the owner's hands: an escalated ticket still names them,
# and they may still take or finish it (我的工单 lists it).
HELD = WORKING + ("escalated",)
LOAD_STATUSES = ("dispatched", "accepted", "reopened", "escalated")
CASCADE = ("assign", "accept", "resolve", "close", "cancel", "return")  # what linked reports follow
URGENCIES = ("urgent", "utility", "normal", "complex")  # a ticket's urgency (storage.models.Ticket)
LINKED_EVERY = timedelta(minutes=30)  # at most one 又有居民反映 push per parent to its owner in this time
DUPLICATE_CANDIDATES = 20  # active jobs of one building and category weighed as the same problem
PHOTOS_PER_PUSH = 3  # a resident's photos an owner gets as WeCom images at once; the rest are named
# Kinds that are a job done for a resident, whose 办结 gets a satisfaction survey (满意率 rates
# those jobs); a volunteer signup is the coordinator's decision on a resident's offer of help.
SURVEYED_KINDS = ("complaint", "mediation", "elderly_service", "handoff")
GOOD_RATING = 3  # a survey's 基本满意 and above: the resident called the job done (survey.GOOD_FROM)
ROLE_OF_KIND = {
    "complaint": "grid_worker",
    "mediation": "mediator",
    "elderly_service": "provider",
    "volunteer_signup": "volunteer_coordinator",
}


@dataclass(frozen=True)
class DispatchResult:
    """What dispatch_new did: the ticket, the duplicate it was linked to, its owner and due time."""

    ticket: Ticket
    linked_to: Ticket | None
    assignee_name: str | None
    due_at: datetime | None


@dataclass(frozen=True)
class Route:
    """Who should own a ticket (None: nobody, with the reason) and its grid."""

    owner: Person | roster.PersonEntry | None
    grid: str | None
    why_none: str = ""


# --- routing -------------------------------------------------------------------------------------


# Statements of every new ticket, built once (building them is a good part of their cost). The
# reads run on the driver (storage.fastsql: ~0.01 ms, not ~0.19 through the ORM) after the
# session's pending changes are flushed, as an ORM query's autoflush would (_read).
_T = Ticket.__table__


def _fixed(values: tuple[str, ...]) -> list[Any]:
    """An IN list of fixed values (a fixed statement has no expanding IN)."""
    return [literal(value) for value in values]


@functools.cache
def _load_of(people: int) -> Prepared:
    """The open, unlinked tickets each of so many people holds (one statement per list length)."""
    return Prepared(
        select(_T.c.assignee, func.count().label("n"))
        .where(
            _T.c.assignee.in_([bindparam(f"p{i}", type_=_T.c.assignee.type) for i in range(people)]),
            _T.c.status.in_(_fixed(LOAD_STATUSES)),
            _T.c.parent_id.is_(None),
        )
        .group_by(_T.c.assignee)
    )


_DUPLICATE_LOCK = Prepared(text("SELECT pg_advisory_xact_lock(:k)").bindparams(bindparam("k", type_=BigInteger)))
# The earliest active reports of one category at one building in the window (the first of the
# same problem is taken: see same_problem): found by ix_tickets_duplicate (category, building_key,
# created_at), so its cost does not grow with a burst of reports of the same category elsewhere.
# Never one the same resident reported (theirs, or one their earlier report was linked to): that
# is no neighbour's report. Whether any is there (most reports have none) is asked on the driver;
# only then their words, row-locked, on the driver too, and the one of the same problem is loaded
# (a report linked writes to its job).
_T_LINKED = _T.alias("linked")
_DUPLICATE_OF = (
    _T.c.kind == literal("complaint"),
    _T.c.category == bindparam("category"),
    _T.c.building_key == bindparam("building_key"),
    _T.c.status.in_(_fixed(tickets.ACTIVE)),
    _T.c.parent_id.is_(None),
    _T.c.id != bindparam("ticket_id"),
    _T.c.created_at >= bindparam("since"),
    or_(_T.c.resident.is_(None), _T.c.resident != bindparam("resident")),
    ~exists().where(_T_LINKED.c.parent_id == _T.c.id, _T_LINKED.c.resident == bindparam("resident"),
                    _T_LINKED.c.status != literal("cancelled")),
)
_DUPLICATE = (
    select(_T.c.id, _T.c.summary, _T.c.fields).where(*_DUPLICATE_OF).order_by(_T.c.created_at, _T.c.id)
    .limit(DUPLICATE_CANDIDATES).with_for_update()
)
_ANY_DUPLICATE = select(_T.c.id).where(*_DUPLICATE_OF).limit(1)
# The places of the reports linked to a job and not withdrawn (see same_spot_as_linked): of its
# category and building, since the job (found by ix_tickets_duplicate as the job was). Only the
# distinct places, read out of the JSON by the database: a burst of one problem links hundreds of
# reports to a job, and each new one reads this.
_LINKED_PLACES = Prepared(select(
    *(_T.c.fields[name].as_string().label(name) for name in ("unit", "place", "landmark"))
).distinct().where(
    _T.c.category == bindparam("category"), _T.c.building_key == bindparam("building_key"),
    _T.c.created_at >= bindparam("since"), _T.c.parent_id == bindparam("parent_id"),
    _T.c.status != literal("cancelled")))
# The latest 又有居民反映 push of a parent to its owner (its photos' keys end :photos:n), and the
# new count written into it while it still waits. Pushes are written on the driver (bot.outbox),
# never through the session, so both run there too.
_O = OutboxItem.__table__
_LAST_LINKED = Prepared(
    select(_O.c.id, _O.c.state, _O.c.payload, _O.c.sent_at, _O.c.created_at)
    .where(_O.c.ticket_id == bindparam("ticket_id"), _O.c.target == bindparam("target"),
           _O.c.dedup_key.like(bindparam("pattern")), ~_O.c.dedup_key.like(literal("%:photos%")))
    .order_by(_O.c.id.desc())
    .limit(1)
    .with_for_update()
)
_LINKED_COUNT = Prepared(update(_O).where(_O.c.id == bindparam("item_id")).values(payload=bindparam("payload")))
# The outage alerts already posted about a ticket (see _many_reporters).
_E = TicketEvent.__table__
_OUTAGE_ALERTS = Prepared(select(_E.c.data).where(
    _E.c.ticket_id == bindparam("ticket_id"), _E.c.action == literal("outage_alert")
))
# The buildings of the other open jobs of one category within the duplicate window.
_SAME_ELSEWHERE = Prepared(select(_T.c.building_key).where(
    _T.c.kind == literal("complaint"), _T.c.category == bindparam("category"),
    _T.c.status.in_(_fixed(tickets.ACTIVE)), _T.c.parent_id.is_(None), _T.c.id != bindparam("ticket_id"),
    _T.c.building_key.is_not(None), _T.c.building_key != bindparam("building_key"),
    _T.c.created_at >= bindparam("since"),
).distinct())
_RESIDENT_PHONE = select(Resident.phone).where(Resident.openid == bindparam("openid"))
# An owner's other tickets in hand whose number ends alike (0001 of another day): the card then
# names the ticket with its day (1124-0001).
_SAME_SEQUENCE = Prepared(select(_T.c.number).where(
    _T.c.assignee == bindparam("owner"), _T.c.status.in_(_fixed(HELD)), _T.c.id != bindparam("ticket_id"),
    _T.c.number.like(bindparam("pattern")),
))


async def _read(session: AsyncSession, prepared: Prepared, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a fixed read on the driver, in the session's transaction, seeing what an ORM
    query would: the session's pending changes are flushed first, as its autoflush does."""
    await session.flush()
    return (await fastsql.run(session, prepared, params)).rows


async def open_load(session: AsyncSession, ids: list[str]) -> dict[str, int]:
    """How many active, unlinked tickets each of ids holds."""
    if not ids:
        return {}
    rows = await _read(session, _load_of(len(ids)), {f"p{i}": person for i, person in enumerate(ids)})
    counts = {str(row["assignee"]): int(row["n"]) for row in rows}
    return {i: counts.get(i, 0) for i in ids}


Owner = TypeVar("Owner", Person, roster.PersonEntry)


async def least_loaded(session: AsyncSession, candidates: list[Owner]) -> Owner | None:
    """The candidate with the fewest open tickets (ties: the first listed)."""
    if not candidates:
        return None
    load = await open_load(session, [p.id for p in candidates])
    return min(candidates, key=lambda p: load[p.id])


async def route(svc: Services, session: AsyncSession, ticket: Ticket) -> Route:
    """Find the owner of a ticket by its kind (grid worker, mediator, provider, coordinator)."""
    t = svc.texts
    staff = await roster.snapshot(svc, session)
    grid = staff.grid_for(ticket)
    grid_id = grid.id if grid is not None else None
    role = ROLE_OF_KIND.get(ticket.kind)
    if role is None:
        return Route(None, grid_id, t.get("dispatch.why_handoff"))
    role_name = t.get(f"dispatch.roles.{role}")
    if ticket.kind == "complaint":
        if grid is None and ticket.building:
            return Route(None, None, t.get("dispatch.why_unknown_building", building=ticket.building))
        if grid is None:  # the staff group's post names the place on its 地点 line
            return Route(None, None, t.get("dispatch.why_unknown_place") if roster.landmark_of(ticket)
                         else t.get("dispatch.why_no_building"))
        workers = [p for p in staff.with_role(role) if p.id in grid.workers]
        workers.sort(key=lambda p: grid.workers.index(p.id))
        owner = await least_loaded(session, workers)
        return Route(owner, grid_id, "" if owner else t.get("dispatch.why_no_role", role=role_name))
    people = staff.with_role(role)
    if ticket.kind == "elderly_service":
        service = str((ticket.fields or {}).get("service") or "")
        people = [p for p in people if service and service in (p.services or [])]
        owner = await least_loaded(session, people)
        return Route(owner, grid_id, "" if owner else t.get("dispatch.why_no_service", service=service or "-"))
    owner = await least_loaded(session, people)
    return Route(owner, grid_id, "" if owner else t.get("dispatch.why_no_role", role=role_name))


# --- duplicates ----------------------------------------------------------------------------------


async def find_duplicate(svc: Services, session: AsyncSession, ticket: Ticket) -> Ticket | None:
    """An active complaint of the same category at the same building within the window, reported
    by another resident (a resident's own reports are never their neighbours'), no less pressing
    than this one (see _as_pressing), of the same problem (see same_problem), if any."""
    if ticket.kind != "complaint" or not ticket.category:
        return None
    limits = load_limits()
    since = svc.clock.now() - timedelta(hours=limits.duplicate_window_hours)
    if not ticket.building:
        return await _place_duplicate(svc, session, ticket, limits, since)
    key = ticket.building_key or roster.normalize_building(ticket.building)
    if not key:
        return None
    params = {"category": ticket.category, "building_key": key, "ticket_id": ticket.id, "since": since,
              "resident": ticket.resident or ""}
    batch: list[tuple[Prepared, dict[str, Any]]] = [(_any_duplicate_as(_as_pressing(limits, ticket)), params)]
    dialect = session.bind.dialect.name if session.bind is not None else ""
    if dialect == "postgresql":
        # Reports of one problem arriving together: the second waits for the first to commit.
        lock = zlib.crc32(f"dup:{key}:{ticket.category}".encode()) - 2**31
        batch.insert(0, (_DUPLICATE_LOCK, {"k": lock}))
    await session.flush()  # as the ORM query's autoflush would
    if not (await fastsql.run_many(session, batch))[-1].rows:
        return None
    found = await fastsql.run(session, _duplicate_as(_as_pressing(limits, ticket)), params)
    job = None
    for row in found.rows:
        if _same_problem(ticket, row["summary"], row["fields"]) and await same_spot_as_linked(
                session, said_of(ticket), ticket.fields, row["id"], category=ticket.category, building_key=key,
                since=since):
            job = row["id"]
            break
    if job is None:
        return None
    # The job's whole row on the driver, as an object in the session (session.get's identity map
    # first): _link changes it, flushed as one UPDATE.
    return await fastsql.get(session, Ticket, job)


async def _place_duplicate(
    svc: Services, session: AsyncSession, ticket: Ticket, limits: Limits, since: datetime,
) -> Ticket | None:
    """find_duplicate for a report at one of the roster's common places, with no building (小区西门
    路灯坏了: routed to the grid listing the place): the earliest active report of the same category
    at the same listed place within the window, by another resident, no less pressing, of the same
    problem as linking reads it (problem_of; a household's own problem is at no common place)."""
    staff = await roster.snapshot(svc, session)
    place = roster.listed_place(staff.grids, ticket)
    said = problem_of(said_of(ticket))
    if not place or said == HOUSEHOLD:
        return None
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # Reports of one problem arriving together: the second waits for the first to commit.
        lock = zlib.crc32(f"dup:@{place}:{ticket.category}".encode()) - 2**31
        await fastsql.run(session, _DUPLICATE_LOCK, {"k": lock})
    resident = ticket.resident or ""
    linked = aliased(Ticket)
    candidates = await session.scalars(
        select(Ticket).where(
            Ticket.kind == "complaint", Ticket.category == ticket.category, Ticket.building_key.is_(None),
            Ticket.status.in_(tickets.ACTIVE), Ticket.parent_id.is_(None), Ticket.id != ticket.id,
            Ticket.created_at >= since, Ticket.urgency.in_(_as_pressing(limits, ticket)),
            or_(Ticket.resident.is_(None), Ticket.resident != resident),
            ~exists().where(linked.parent_id == Ticket.id, linked.resident == resident, linked.status != "cancelled"),
        ).order_by(Ticket.created_at, Ticket.id).limit(DUPLICATE_CANDIDATES).with_for_update()
    )
    return next((job for job in candidates
                 if roster.listed_place(staff.grids, job) == place and problem_of(said_of(job)) == said), None)


async def same_spot_as_linked(
    target: AsyncSession | fastsql.Transaction, said: str, mine: dict[str, Any] | None, job: int, *,
    category: str, building_key: str, since: datetime,
) -> bool:
    """Whether a report naming a unit (said: its words; mine: its fields, or a dialog's slots) is
    at the spot of the reports already linked to a job that names none (3号楼楼道灯 linked with
    2单元's: 1单元's stairwell is not that job). Read only when the spot matters (a report naming a
    unit, of neither a building's nor a household's problem); pending changes are not flushed."""
    if not (mine or {}).get("unit") or problem_of(said):
        return True
    linked = await fastsql.run(target, _LINKED_PLACES, {
        "category": category, "building_key": building_key, "since": since, "parent_id": job,
    })
    return all(same_spot(mine, row) for row in linked.rows)


HOUSEHOLD, BUILDING_WIDE = "household", "building"


def _linking() -> dict[str, Any]:
    """config/flows.toml [linking]."""
    from bot.flows.config import flow_config  # config only: the flows package is not imported here

    return flow_config().get("linking") or {}


@functools.cache
def _problem_words() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """config/flows.toml [linking]: the words of a household's own problem, of a building's, and
    those in which a household word does not count (一滴水都没有)."""
    table = _linking()
    return (tuple(table.get("household") or ()), tuple(table.get("building_wide") or ()),
            tuple(table.get("not_household") or ()))


@functools.cache
def _spot_words() -> tuple[str, ...]:
    """config/flows.toml [linking] spots: the words that set a spot apart at a building (门口, 楼下)."""
    return tuple(_linking().get("spots") or ())


def _spot_of(place: dict[str, Any] | None) -> tuple[str, frozenset[str]]:
    """Where at its building a report is, as linking weighs it: its unit ('' when none is named)
    and the spot words its place names (3号楼门口: 门口). place: a report's fields (or a dialog's
    slots), read for unit, place and landmark."""
    place = place or {}
    unit = str(place.get("unit") or "").strip()
    said = "".join(f"{place.get('place') or ''}{place.get('landmark') or ''}".split())
    return unit, frozenset(word for word in _spot_words() if word in said)


def same_spot(mine: dict[str, Any] | None, theirs: dict[str, Any] | None) -> bool:
    """Whether two reports at one building may be at the same spot: not when they name two
    different units (the 1单元 and the 2单元 stairwell), nor when their places name different spot
    words (3号楼门口's street light and the 3号楼 stairwell's light; [linking] spots)."""
    (my_unit, my_words), (their_unit, their_words) = _spot_of(mine), _spot_of(theirs)
    return (not my_unit or not their_unit or my_unit == their_unit) and my_words == their_words


def problem_of(text: str) -> str:
    """Which problem a report's words name, as linking weighs it: HOUSEHOLD (楼上漏水, 天花板一直滴水:
    one flat's, first, since it stays one flat's when an outage is mentioned too), BUILDING_WIDE
    (停水, 没电, 暖气不热: the building's), or '' (neither: 楼道灯坏了)."""
    said = "".join(text.split())
    household, building, not_household = _problem_words()
    own = said
    for words in not_household:  # 一滴水都没有: no 滴水 of a leak
        own = own.replace(words, "")
    if any(word in own for word in household):
        return HOUSEHOLD
    if any(word in said for word in building):
        return BUILDING_WIDE
    return ""


def said_of(ticket: Ticket) -> str:
    """A report's words as linking reads them: its summary and the description it collected."""
    return said_in(ticket.summary, ticket.fields)


def said_in(summary: str | None, fields: dict[str, Any] | None) -> str:
    """said_of from a report's summary and fields as read on the driver."""
    return f"{summary} {(fields or {}).get('description') or ''}"


def _flat_of(fields: dict[str, Any] | None) -> tuple[str, str] | None:
    """The flat a report's fields name (unit, room), or None when they name no room."""
    fields = fields or {}
    room = str(fields.get("room") or "").strip()
    return (str(fields.get("unit") or "").strip(), room) if room else None


def same_problem(ticket: Ticket, job: Ticket) -> bool:
    """Whether a report of the same building and category is the job's very problem, so linked to
    it: both read the same way (problem_of), a household's problem (a leak into one flat) only
    with the same flat's report — a leak is never merged into the building's water cut — and any
    other but a building-wide one (停水) only at the same spot (same_spot: 3号楼门口's street light
    is not the stairwell's)."""
    return _same_problem(ticket, job.summary, job.fields)


def _same_problem(ticket: Ticket, summary: str | None, fields: dict[str, Any] | None) -> bool:
    """same_problem with the job's summary and fields as read on the driver."""
    said = said_of(ticket)
    return problem_of(said) == problem_of(said_in(summary, fields)) and same_place(said, ticket.fields, fields)


def same_place(said: str, mine: dict[str, Any] | None, theirs: dict[str, Any] | None) -> bool:
    """Whether a report of a problem at a building (said: its words; mine: its fields, or a
    dialog's slots) may be at the place of another's of that problem (theirs: its fields): any
    place for a building-wide problem (停水), the same flat for a household's (楼上漏水), else the
    same spot (same_spot)."""
    problem = problem_of(said)
    if problem == BUILDING_WIDE:
        return True
    if problem == HOUSEHOLD:
        flat = _flat_of(mine)
        return flat is not None and flat == _flat_of(theirs)
    return same_spot(mine, theirs)


def may_share(text: str, job: Ticket | str, *, own: bool = False) -> bool:
    """Whether an opening's words may be the job's problem (the dialog's 已经反映过 / 已有 N 位居民
    反映): read the same way, and, for a neighbour's job (own False), no household's problem,
    which links only with its own flat's. job: the job, or its words (said_in)."""
    mine = problem_of(text)
    return mine == problem_of(job if isinstance(job, str) else said_of(job)) and (own or mine != HOUSEHOLD)


def _as_pressing(limits: Limits, ticket: Ticket) -> tuple[str, ...]:
    """The urgencies a ticket the report may be linked to can have: those whose limit is no longer
    than the report's own. A person trapped in a lift is never linked to the 7-day ticket of its
    sticking button: the emergency is dispatched on its own, at once and urgent."""
    own = limits.resolve_limit(ticket.kind, ticket.urgency)
    return tuple(u for u in URGENCIES if limits.resolve_limit(ticket.kind, u) <= own)


@functools.cache
def _duplicate_as(urgencies: tuple[str, ...]) -> Prepared:
    """_DUPLICATE among tickets of these urgencies (built once for each set)."""
    return Prepared(_DUPLICATE.where(_T.c.urgency.in_(_fixed(urgencies))))


@functools.cache
def _any_duplicate_as(urgencies: tuple[str, ...]) -> Prepared:
    """_ANY_DUPLICATE among tickets of these urgencies (built once for each set)."""
    return Prepared(_ANY_DUPLICATE.where(_T.c.urgency.in_(_fixed(urgencies))))


async def _link(svc: Services, session: AsyncSession, ticket: Ticket, parent: Ticket) -> None:
    """Attach a new report to the active ticket it duplicates; it follows the parent's status, and
    the parent's owner is told another resident reported it, with that resident's photos."""
    now = svc.clock.now()
    parent.reporters += 1
    ticket.parent_id = parent.id
    ticket.grid, ticket.assignee = parent.grid, parent.assignee
    ticket.accept_due_at, ticket.due_at = parent.accept_due_at, parent.due_at
    await tickets.add_event(
        session, parent, "linked", "system", now,
        note=ticket.number, data={"child": ticket.number, "reporters": parent.reporters},
    )
    await tickets.add_event(session, ticket, "linked", "system", now, note=parent.number, data={"parent": parent.number})
    steps = {"dispatched": ("assign",), "accepted": ("assign", "accept")}.get(parent.status, ())
    for action in steps:
        await tickets.transition(session, ticket, action, "system", now, data={"via": parent.number})
    if parent.assignee and parent.status in HELD:
        await _linked_to_owner(svc, session, ticket, parent)
    await _many_reporters(svc, session, parent)


async def _many_reporters(svc: Services, session: AsyncSession, parent: Ticket) -> None:
    """The service centre told once when an open ticket reaches duplicates.alert_reporters
    reporters (a water-main burst reaches it within the hour): the ticket, its category, the count
    and the other buildings with an open ticket of the same category from within the duplicate
    window (one incident across buildings). The "outage_alert" event on the parent, written under
    its row lock, is the guard: a report linked at the same moment elsewhere finds it and posts
    nothing."""
    limits = load_limits()
    threshold = limits.duplicate_alert_reporters
    if threshold <= 0 or parent.reporters < threshold:
        return
    done = await _read(session, _OUTAGE_ALERTS, {"ticket_id": parent.id})
    if any((row["data"] or {}).get("threshold") == threshold for row in done):
        return
    t, now = svc.texts, svc.clock.now()
    elsewhere = await _read(session, _SAME_ELSEWHERE, {
        "category": parent.category, "ticket_id": parent.id, "building_key": parent.building_key or "",
        "since": now - timedelta(hours=limits.duplicate_window_hours),
    })
    keys = sorted({k for k in (row["building_key"] for row in elsewhere) if k},
                  key=lambda k: (not k.isdigit(), k.zfill(8)))
    others = t.get("dispatch.outage_staff_others", buildings="、".join(
        t.get("dispatch.outage_building", building=k) for k in keys
    )) if keys else ""
    reason = t.get(
        "dispatch.outage_staff", count=parent.reporters, others=others,
        category=parent.category or notices.kind_label(svc, parent.kind),
    )
    await tickets.add_event(session, parent, "outage_alert", "system", now, note=reason,
                            data={"threshold": threshold, "reporters": parent.reporters, "buildings": keys})
    await escalate_to_staff(svc, session, parent, reason)  # 【紧急】 only when the ticket is urgent


async def _linked_to_owner(svc: Services, session: AsyncSession, ticket: Ticket, parent: Ticket) -> None:
    """One short push to the parent's owner: another resident reported it (what they said, the
    count so far), then their photos as images, as a new ticket's follow its card. At most one
    such push per parent in LINKED_EVERY: while one is still waiting to go (held through the quiet
    hours, or for the window to pass) a neighbour's report only brings its count up to date."""
    now = svc.clock.now()
    urgent, held = _urgent(parent), held_until(svc, parent)
    photos = await resident_photos(session, ticket, new=True)
    found = await _read(session, _LAST_LINKED, {
        "ticket_id": parent.id, "target": parent.assignee, "pattern": f"ticket:{parent.id}:linked:%",
    })
    last = found[0] if found else None
    waiting = last is not None and last["state"] == "pending" and "text" in (last["payload"] or {})
    # Where each neighbour the push tells of is, as the card shows a place: the owner sees whether
    # it is the job's very spot (3栋1单元 and 3栋2单元 are two stairwells).
    places = list((last["payload"] or {}).get("places") or []) if waiting and last is not None else []
    place = notices.clip(notices.safe_text(notices.place_of(svc, ticket)), 30)
    places += [place] if place not in places else []
    text = svc.texts.get(
        "dispatch.linked_worker", number=parent.number, count=parent.reporters,
        what=notices.clip(notices.safe_text(_words_of(ticket)), 80) or "-",
        places=notices.clip("、".join(places), 80),
        photos=svc.texts.get("dispatch.linked_worker_photos", count=len(photos)) if photos else "",
    )
    key = f"ticket:{parent.id}:linked:{ticket.id}"
    if waiting and last is not None:
        # the latest count and every place, once
        await fastsql.run(session, _LINKED_COUNT, {
            "item_id": last["id"], "payload": {"msgtype": "text", "text": text, "places": places},
        })
    else:
        went = (last["sent_at"] or last["created_at"]) if last is not None else None
        if went is not None and went.tzinfo is None:
            went = went.replace(tzinfo=timezone.utc)
        if went is not None and went + LINKED_EVERY > now:
            held = max(held or now, went + LINKED_EVERY)
        await outbox.enqueue(
            session, "wecom", parent.assignee or "", {"msgtype": "text", "text": text, "places": places}, now=now,
            ticket_id=parent.id, dedup_key=key, urgent=urgent, not_before=held,
        )
    await _push_photos(svc, session, parent, parent.assignee, photos, key=f"{key}:photos", urgent=urgent, held=held)


def _words_of(ticket: Ticket) -> str:
    """What a reporter said, as the resident wrote it (a report's description: its summary also
    carries the category and the place, which the push names on their own), else what_of."""
    said = (ticket.fields or {}).get("description")
    return said.strip() if isinstance(said, str) and said.strip() else notices.what_of(ticket)


# --- assigning and time limits -------------------------------------------------------------------


HANDOFF_WORDS_SHOWN = 3  # a hand-off's card quotes the resident's last few messages


async def handoff_words(session: AsyncSession, ticket: Ticket) -> str:
    """What the resident of a hand-off wrote while waiting for a person (resident_wrote notes, phones
    masked: 我家老人摔倒了 起不来; not their chases, 催一下), the last few, for the owner it is given to (their card; its summary
    already quotes what was said before 人工); empty for any other kind. Without it a grid worker
    given the hand-off read only 居民要求人工服务."""
    if ticket.kind != "handoff":
        return ""
    rows = await session.execute(
        select(TicketEvent.note, TicketEvent.data).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.action == "resident_wrote").order_by(TicketEvent.id))
    # 催一下 (marked chase) is no news for the owner
    said = [str(n) for n, data in rows.all() if n and str(n).strip() and not (data or {}).get("chase")]
    return "；".join(notices.safe_text(x.strip()) for x in said[-HANDOFF_WORDS_SHOWN:])


def handoff_urgency(limits: Limits, ticket: Ticket, owner: Person | roster.PersonEntry) -> str:
    """The urgency a hand-off takes when first given to an owner, which sets its limits as the job
    it became (config/limits.toml): an emergency's stays urgent (2 h); a mediator's (not a grid
    worker's) is a dispute, mediation's class ([kind_class], 15 days); a care provider's a service,
    elderly_service's class; anyone else's (the building's grid worker, staff) a report of the kind
    of problem the resident's words name (fields.category: 我家暖气不热, 水电气暖, 24 h by
    [category_class]), else general (7 days). Without it every hand-off given on was 一般 · 7天."""
    if ticket.urgency == "urgent" or (ticket.fields or {}).get("emergency"):
        return "urgent"
    roles = set(owner.roles or ())
    if "grid_worker" not in roles:
        for role, kind in (("mediator", "mediation"), ("provider", "elderly_service")):
            if role in roles:
                return limits.kind_class.get(kind, "normal")
    return limits.category_class.get(str((ticket.fields or {}).get("category") or ""), "normal")


async def turned_urgent(svc: Services, session: AsyncSession, ticket: Ticket, said: str, actor: str) -> bool:
    """A ticket an owner holds (派单) that an emergency has just made urgent (ticket.urgency set:
    a hand-off given to the grid worker, then 我家老人摔倒了起不来): its limits become the urgent
    job's, counted from now as if it had been urgent from the start — the 办结 limit (2 h) and, not
    yet taken, the 接单 limit brought forward (never put later), their reminders and checks
    rescheduled, urgent whatever the hour — a card still held by the quiet hours goes now, and the
    owner is told once, urgent (the words masked). False when no owner holds it."""
    if ticket.status not in WORKING or not ticket.assignee:
        return False
    now = svc.clock.now()
    limits = load_limits()
    urgency_class = limits.urgency_class(ticket.kind, ticket.urgency)
    due = limits.resolve_due(ticket.kind, ticket.urgency, now, booked_start(ticket))
    ticket.due_at = min(_aware(ticket.due_at), due) if ticket.due_at is not None else due
    taking = ticket.status == "dispatched"
    if taking:
        accept = accept_due(svc, now, urgency_class)
        ticket.accept_due_at = min(_aware(ticket.accept_due_at), accept) if ticket.accept_due_at else accept
    note = notices.clip(notices.safe_text(said.strip()), 200)
    event = await tickets.add_event(session, ticket, "note", actor, now, data={"urgency": ticket.urgency}, note=svc.texts.get(
        "dispatch.turned_urgent_note", due=notices.local_time(svc, ticket.due_at)))
    await reminders.drop_for_cause(session, "ticket", ticket.id, kinds=LIMIT_KINDS)
    ref = await worker_ref(session, ticket)
    await _schedule_limits(svc, session, ticket, event, accept=taking, ref=ref)
    await session.execute(update(OutboxItem).where(  # the card held for the morning goes now
        OutboxItem.ticket_id == ticket.id, OutboxItem.channel == "wecom", OutboxItem.target == ticket.assignee,
        OutboxItem.state == "pending", OutboxItem.attempts == 0, OutboxItem.next_attempt_at > now,
    ).values(next_attempt_at=now))
    text = svc.texts.get("dispatch.turned_urgent_worker", number=ticket.number, said=note or "-",
                         place=notices.safe_text(notices.place_of(svc, ticket)), short=ref,
                         due=notices.local_time(svc, ticket.due_at))
    await outbox.push_worker(session, ticket.assignee, text, now=now, ticket_id=ticket.id, urgent=True,
                             dedup_key=f"ticket:{ticket.id}:turned_urgent:{event.id}")
    return True


def _aware(at: datetime) -> datetime:
    """A time read back from SQLite (naive, UTC) made comparable with the clock's."""
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


async def _phone_of(session: AsyncSession, ticket: Ticket) -> str | None:
    phone = (ticket.fields or {}).get("phone")
    if isinstance(phone, str) and phone.strip():
        return phone
    if ticket.resident:
        return await session.scalar(_RESIDENT_PHONE, {"openid": ticket.resident})
    return None


async def worker_ref(session: AsyncSession, ticket: Ticket, owner: str | None = None) -> str:
    """The number as the ticket's owner types it (notices.worker_ref): 0001 while no other ticket in
    their hands ends 0001 too, else with its day, 1124-0001."""
    owner = owner or ticket.assignee
    if not owner:
        return notices.short_number(ticket.number)
    pattern = f"%-{notices.short_number(ticket.number)}"
    others = await _read(session, _SAME_SEQUENCE, {"owner": owner, "ticket_id": ticket.id, "pattern": pattern})
    return notices.worker_ref(ticket.number, [row["number"] for row in others])


def _urgent(ticket: Ticket) -> bool:
    """Whether the ticket's limit is the urgent one (its pushes ignore quiet hours)."""
    return load_limits().urgency_class(ticket.kind, ticket.urgency) == "urgent"


def held_until(svc: Services, ticket: Ticket) -> datetime | None:
    """When the bot's own push about ticket may go: at once for an urgent one, else after the quiet
    hours now falls in (None: at once)."""
    return schedule.held_until(svc.clock.now(), svc.settings, urgent=_urgent(ticket))


async def _schedule_limits(
    svc: Services, session: AsyncSession, ticket: Ticket, event: TicketEvent, *, accept: bool,
    ref: str | None = None, since: datetime | None = None,
) -> None:
    """Reminders to the owner before the limits, and the breach checks at them (since: when the
    limit started running, for a card held through quiet hours their end; ref: the number as the
    owner types it)."""
    assert ticket.assignee is not None and ticket.due_at is not None
    now = svc.clock.now()
    since = max(since or now, now)
    limits = load_limits()
    texts = svc.texts
    values = {
        "number": ticket.number, "short": ref or await worker_ref(session, ticket),
        "place": notices.safe_text(notices.place_of(svc, ticket)),
    }
    urgent = _urgent(ticket)  # its reminders ignore quiet hours
    plan: list[tuple[str, datetime, str]] = []
    if accept and ticket.accept_due_at is not None:
        at = limits.accept_reminder_at(now, ticket.accept_due_at)
        if at > now:
            plan.append(("accept_remind", at, texts.get("dispatch.accept_remind", due=notices.local_time(svc, ticket.accept_due_at), **values)))
        plan.append(("accept_breach", ticket.accept_due_at, texts.get("dispatch.accept_breach", **values)))
    if ticket.due_at > now:  # a job reassigned past its 办结 limit is 超期 already, not sent back to staff
        at = limits.resolve_reminder_at(max(since, booked_start(ticket) or since), ticket.due_at)
        at = _remind_awake(svc, at, ticket.due_at, since, urgent=urgent)
        if at is not None and at > now:
            plan.append(("resolve_remind", at, texts.get("dispatch.resolve_remind", due=notices.local_time(svc, ticket.due_at), **values)))
        plan.append(("resolve_breach", ticket.due_at, texts.get("dispatch.resolve_breach", **values)))
    await reminders.schedule_many(session, [
        {
            "kind": kind, "due_at": due, "channel": "wecom", "target": ticket.assignee,
            "payload": {"msgtype": "text", "text": text}, "cause_type": "ticket", "cause_id": ticket.id,
            "dedup_key": f"ticket:{ticket.id}:{kind}:{event.id}", "urgent": kind in BREACH_KINDS or urgent,
        }
        for kind, due, text in plan
    ], now=now)


# A 办结 reminder that quiet hours would hold until its limit goes this long before they begin.
EVENING_LEAD = timedelta(minutes=30)


def _remind_awake(svc: Services, at: datetime, due: datetime, since: datetime, *, urgent: bool) -> datetime | None:
    """When the 办结 reminder planned for `at` is of use to its owner: `at`, unless quiet hours would
    hold it to the limit or later (a water job reported overnight, due at 08:00, reminded at 02:00,
    reached the owner at 08:00 with the overdue notice) — then the evening before, EVENING_LEAD
    before those quiet hours begin; None (no reminder: the overdue notice says it all) when that
    evening is not after `since` (the limit started running later)."""
    held = None if urgent else schedule.quiet_until(at, svc.settings)
    if (held or at) < due:
        return at
    if held is None:
        return None  # at the limit itself: the overdue notice goes then
    evening = schedule.quiet_began(at, svc.settings) - EVENING_LEAD
    return evening if evening > since else None


async def rebooked(svc: Services, session: AsyncSession, ticket: Ticket, start: datetime, event: TicketEvent) -> None:
    """A booking's ticket after its service moved to start: the booked start it carries, its 办结
    limit counted from the new start, the limit's reminder and check moved, and its owner told
    (before, the limit stayed at the old time: a check before a later service, or none after).
    A ticket already 办结 keeps its status, but its owner is still told the service's new time."""
    ticket.fields = {**(ticket.fields or {}), "start": start.isoformat()}
    if ticket.assignee is None or ticket.status not in (*HELD, "resolved", "closed"):
        return
    now = svc.clock.now()
    when = notices.local_time(svc, start)
    if ticket.status in HELD:
        ticket.due_at = load_limits().resolve_due(ticket.kind, ticket.urgency, now, start)
        await reminders.drop_for_cause(session, "ticket", ticket.id, kinds=("resolve_remind", "resolve_breach"))
        await _schedule_limits(svc, session, ticket, event, accept=False)
        text = svc.texts.get("dispatch.rebooked_worker", number=ticket.number, when=when,
                             due=notices.local_time(svc, ticket.due_at))
    else:
        text = svc.texts.get("dispatch.rebooked_after_resolve", number=ticket.number, when=when)
    await outbox.push_worker(session, ticket.assignee, text, now=now, ticket_id=ticket.id,
                             dedup_key=f"ticket:{ticket.id}:rebooked:{event.id}", not_before=held_until(svc, ticket))


async def unbooked(svc: Services, session: AsyncSession, ticket: Ticket, start: datetime, event: TicketEvent) -> None:
    """A booking cancelled whose ticket was already 办结 (or closed): its owner is told the
    service at start is off all the same. (A ticket still in hand is cancelled through
    apply_action, which tells the owner.)"""
    if ticket.assignee is None or ticket.status not in ("resolved", "closed"):
        return
    await outbox.push_worker(session, ticket.assignee, svc.texts.get(
        "dispatch.unbooked_after_resolve", number=ticket.number, when=notices.local_time(svc, start),
    ), now=svc.clock.now(), ticket_id=ticket.id, dedup_key=f"ticket:{ticket.id}:unbooked:{event.id}",
        not_before=held_until(svc, ticket))


def booked_start(ticket: Ticket) -> datetime | None:
    """The booked service's start an elderly-service booking's ticket carries (fields.start)."""
    value = (ticket.fields or {}).get("start") if ticket.kind == "elderly_service" else None
    if not isinstance(value, str):
        return None
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        return None
    return start if start.tzinfo is not None else start.replace(tzinfo=timezone.utc)


def accept_due(svc: Services, dispatched: datetime, urgency_class: str) -> datetime:
    """When a dispatch must be taken: accept_sla_s from dispatch; for a ticket that is not urgent
    the time does not run during quiet hours (the worker is not reminded then either)."""
    if urgency_class == "urgent":
        return dispatched + timedelta(seconds=svc.settings.accept_sla_s)
    return schedule.after_waking_time(dispatched, svc.settings.accept_sla_s, svc.settings)


async def _assign(
    svc: Services, session: AsyncSession, ticket: Ticket, owner: Person | roster.PersonEntry, actor: str,
    *, grid: str | None = None, note: str = "", data: dict[str, Any] | None = None, new: bool = False,
    note_on_card: bool = False,
) -> TicketEvent:
    """Give a ticket to owner: transition, times, reminders, the WeCom card; tell a previous owner.
    A card that is not urgent waits for the end of quiet hours, and its limits run from then.

    new: the ticket was created in this transaction, so it has no time-limit reminders to drop.
    note_on_card: the note is staff's word to the owner (服务中心交代：…), on the card."""
    now = svc.clock.now()
    limits = load_limits()
    previous = ticket.assignee
    taken = ticket.status == "accepted"  # by the previous owner, who may be on the way
    event = await tickets.transition(
        session, ticket, "assign", actor, now, note=note, data={**(data or {}), "assignee": owner.id}
    )
    ticket.assignee = owner.id
    if grid is not None:
        ticket.grid = grid
    elif ticket.grid is None:
        owner_grid = (await roster.snapshot(svc, session)).grid_for(ticket)
        ticket.grid = owner_grid.id if owner_grid else None
    if ticket.kind == "handoff" and (new or ticket.due_at is None):  # first given on: the job it became
        ticket.urgency = handoff_urgency(limits, ticket, owner)
    urgency_class = limits.urgency_class(ticket.kind, ticket.urgency)
    urgent = urgency_class == "urgent"
    held = schedule.held_until(now, svc.settings, urgent=urgent)
    booked = booked_start(ticket)
    ticket.accept_due_at = accept_due(svc, now, urgency_class)  # runs only outside quiet hours
    # The resident's 办结 limit runs from the first dispatch (or the last reopen, or the booked
    # start): staff giving the job to someone else (派单 / 改派, a 退回 given on) does not move it —
    # a job reassigned past it stays 超期 — only the new owner's 接单 limit is new.
    if new or ticket.due_at is None:
        ticket.due_at = limits.resolve_due(ticket.kind, ticket.urgency, held or now, booked)
    if not new:
        await reminders.drop_for_cause(session, "ticket", ticket.id, kinds=LIMIT_KINDS)
    ref = await worker_ref(session, ticket, owner.id)
    await _schedule_limits(svc, session, ticket, event, accept=True, ref=ref, since=held)
    shown = "booking" if booked is not None and booked > now else urgency_class  # its limit named on the card
    photos = await resident_photos(session, ticket, new=new)
    card = notices.dispatch_card(svc, ticket, await _phone_of(session, ticket), shown, photos=len(photos), short=ref,
                                 staff_note=note if note_on_card else "", said=await handoff_words(session, ticket))
    await outbox.enqueue(
        session, "wecom", owner.id, card, now=now, ticket_id=ticket.id,
        dedup_key=f"ticket:{ticket.id}:card:{event.id}", urgent=urgent, not_before=held,
    )
    await _push_photos(svc, session, ticket, owner.id, photos, key=f"ticket:{ticket.id}:photos:{event.id}",
                       urgent=urgent, held=held)
    # A card still held for the previous owner is taken back; unless they took the job all the same
    # (from 我的工单), they never heard of it, so nothing is said either.
    if previous and previous != owner.id and (not await _retract_unsent(session, ticket, previous, now) or taken):
        # 不用上门 waits for no quiet hours when they had taken the job: they may be going there now
        await outbox.push_worker(
            session, previous, svc.texts.get("dispatch.reassigned_away_push", number=ticket.number,
                                             place=notices.safe_text(notices.place_of(svc, ticket))),
            now=now, ticket_id=ticket.id, not_before=None if taken else held,
        )
    return event


async def _retract_unsent(session: AsyncSession, ticket: Ticket, previous: str, now: datetime) -> bool:
    """A job reassigned before its card reached the previous owner (held by the quiet hours):
    that card, and every push about the job still held for them, is taken back, so at 08:00
    they are not given a job that is no longer theirs; True when the card was taken back (a push
    already being sent is left alone)."""
    held = list(await session.scalars(select(OutboxItem).where(
        OutboxItem.ticket_id == ticket.id, OutboxItem.channel == "wecom", OutboxItem.target == previous,
        OutboxItem.state == "pending", OutboxItem.attempts == 0, OutboxItem.next_attempt_at > now,
    )))
    if not any((row.dedup_key or "").startswith(f"ticket:{ticket.id}:card:") for row in held):
        return False
    gone = await session.execute(delete(OutboxItem).where(
        OutboxItem.id.in_([row.id for row in held]), OutboxItem.state == "pending",
    ))
    return bool(gone.rowcount)  # type: ignore[attr-defined]


# --- residents' photos ----------------------------------------------------------------------------


def photo_media_id(media: Any) -> str | None:
    """The official-account MediaId of a resident's photo as a ticket keeps it (fields.photos, a
    photo event's data); None for what is no photo (a video)."""
    if not isinstance(media, dict) or media.get("type", "image") != "image":
        return None
    value = media.get("media_id")
    return value if isinstance(value, str) and value else None


_PHOTO_EVENTS = (
    select(TicketEvent.data)
    .where(TicketEvent.ticket_id == bindparam("ticket_id"), TicketEvent.action == "photo",
           TicketEvent.actor.like("resident:%"))
    .order_by(TicketEvent.id)
)


async def resident_photos(session: AsyncSession, ticket: Ticket, *, new: bool = False) -> list[str]:
    """The MediaIds of the photos the resident sent with the report and after it (oldest first).

    new: the ticket was created in this transaction, so no photo came after it yet."""
    found = [photo_media_id(m) for m in (ticket.fields or {}).get("photos") or []]
    if not new:
        found += [photo_media_id(data) for data in (await session.scalars(_PHOTO_EVENTS, {"ticket_id": ticket.id}))]
    return list(dict.fromkeys(m for m in found if m))


async def _push_photos(
    svc: Services, session: AsyncSession, ticket: Ticket, userid: str, photos: list[str], *, key: str,
    urgent: bool, held: datetime | None = None,
) -> None:
    """The resident's photos to the owner after the card (as urgent and held as long as the card,
    so sent after it): at most PHOTOS_PER_PUSH images, the rest named in a text."""
    now = svc.clock.now()
    for n, media_id in enumerate(photos[:PHOTOS_PER_PUSH]):
        await outbox.push_photo(
            session, userid, media_id, ticket.number, now=now, ticket_id=ticket.id, dedup_key=f"{key}:{n}",
            urgent=urgent, not_before=held,
        )
    rest = len(photos) - PHOTOS_PER_PUSH
    if rest > 0:
        await outbox.push_worker(
            session, userid, svc.texts.get("worker_photos.more", number=ticket.number, count=rest),
            now=now, ticket_id=ticket.id, dedup_key=f"{key}:more", urgent=urgent, not_before=held,
        )


async def photo_added(svc: Services, session: AsyncSession, ticket: Ticket, event: TicketEvent) -> None:
    """A photo the resident sent after the report (its `photo` event): the owner told, with the
    photo itself as a WeCom image for the first PHOTOS_PER_PUSH sent after the report (a worker
    is not sent a stream of photos; the console has them all)."""
    assert ticket.assignee is not None
    now = svc.clock.now()
    values = {"number": ticket.number, "short": await worker_ref(session, ticket)}
    job = await session.get(Ticket, ticket.parent_id) if ticket.parent_id is not None else None
    if job is not None:  # a neighbour's report: the owner works on the job, and is told which
        values["number"] += svc.texts.get("dispatch.merged_with", parent=job.number)
    media_id = photo_media_id(event.data)
    if media_id is not None:
        later = [photo_media_id(data) for data in await session.scalars(_PHOTO_EVENTS, {"ticket_id": ticket.id})]
        if sum(1 for m in later if m) > PHOTOS_PER_PUSH:
            media_id = None
    key = f"ticket:{ticket.id}:photo:{event.id}"
    text = svc.texts.get("worker_photos.added" if media_id else "worker_photos.added_unshown", **values)
    held = held_until(svc, ticket)
    await outbox.push_worker(session, ticket.assignee, text, now=now, ticket_id=ticket.id, dedup_key=key,
                             not_before=held)
    if media_id is not None:
        await outbox.push_photo(
            session, ticket.assignee, media_id, ticket.number, now=now, ticket_id=ticket.id, dedup_key=f"{key}:0",
            not_before=held,
        )


async def _name_of(svc: Services, session: AsyncSession, person_id: str | None) -> str | None:
    """An owner's name: from the routing snapshot (no query, so the link's pending changes are
    flushed once, at commit), or the database for someone no longer active."""
    held = (await roster.snapshot(svc, session)).person(person_id)
    if held is not None:
        return held.name
    owner = await roster.person(session, person_id)
    return owner.name if owner else None


async def dispatch_new(svc: Services, session: AsyncSession, ticket: Ticket) -> DispatchResult:
    """Route a new ticket: link it to an active duplicate, assign its owner, or queue it for staff."""
    parent = await find_duplicate(svc, session, ticket)
    if parent is not None:
        await _link(svc, session, ticket, parent)
        return DispatchResult(ticket, parent, await _name_of(svc, session, parent.assignee), parent.due_at)
    found = await route(svc, session, ticket)
    if found.grid is not None:
        ticket.grid = found.grid
    if found.owner is None:
        reason = svc.texts.get("dispatch.reason_no_owner", why=found.why_none)
        await tickets.add_event(session, ticket, "queued", "system", svc.clock.now(), note=reason)
        await escalate_to_staff(svc, session, ticket, reason)
        return DispatchResult(ticket, None, None, None)
    await _assign(svc, session, ticket, found.owner, "system", grid=found.grid, new=True)
    return DispatchResult(ticket, None, found.owner.name, ticket.due_at)


@dataclass(frozen=True)
class Chase:
    """What an emergency said again did: who has its job (None: the staff group), when they were
    chased last (now, or within emergency_chase_every before), and whether they were just now."""

    who: str | None
    at: datetime
    now: bool


@functools.cache
def emergency_chase_every() -> timedelta:
    """config/flows.toml [complaint] emergency_chase_minutes: an emergency said again chases its
    job's holder at most once in this time (0: every time)."""
    from bot.flows.config import flow_config  # config only: the flows package is not imported here

    value = (flow_config().get("complaint") or {}).get("emergency_chase_minutes", 3)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"config/flows.toml [complaint] emergency_chase_minutes: minutes (≥ 0), not {value!r}")
    return timedelta(minutes=value)


# The job's row locked (two residents' words about one emergency at once chase it once), and its
# resident's chases since a time (`urged`, data: emergency, to whom, whether pushed).
_JOB_LOCK = Prepared(select(_T.c.id).where(_T.c.id == bindparam("ticket_id")).with_for_update())
_CHASES_SINCE = Prepared(select(_E.c.data, _E.c.created_at).where(
    _E.c.ticket_id == bindparam("ticket_id"), _E.c.action == literal("urged"), _E.c.created_at >= bindparam("since"),
).order_by(_E.c.id.desc()))


async def _chased_lately(session: AsyncSession, job: Ticket, to: str, since: datetime) -> datetime | None:
    """When to (an owner's id, or "staff") was last pushed an emergency of job said again, since."""
    await session.flush()  # as the ORM query's autoflush would
    params = {"ticket_id": job.id}
    *_, found = await fastsql.run_many(session, [(_JOB_LOCK, params), (_CHASES_SINCE, {**params, "since": since})])
    for row in found.rows:
        data = row["data"] or {}
        if data.get("emergency") and data.get("to") == to and data.get("chased", True):
            at: datetime = row["created_at"]
            return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)
    return None


async def emergency_again(svc: Services, session: AsyncSession, ticket: Ticket, said: str, actor: str) -> Chase:
    """The resident's emergency said again while their urgent report of it is open (电梯困人 twice
    within minutes): no second job — the owner of its job (the report's own, or the one it is linked
    to) is chased at once, urgent and whatever the hour, with the words (masked); the staff group,
    marked 【紧急】, when no one in the roster has it in hand. Then at most once in
    emergency_chase_every (a panicking resident sending it ten times in a minute pushes them once):
    said again before, it is only recorded. Recorded as `urged` on the report (and its job)."""
    now = svc.clock.now()
    job = await session.get(Ticket, ticket.parent_id) if ticket.parent_id is not None else None
    job = job or ticket
    note = notices.clip(notices.safe_text(said.strip()), 200)
    owner = await roster.person(session, job.assignee) if job.status in WORKING else None
    if owner is not None and not owner.active:
        owner = None
    to = owner.id if owner is not None else "staff"
    every = emergency_chase_every()
    last = await _chased_lately(session, job, to, now - every) if every else None
    for own in dict.fromkeys((ticket, job)):
        await tickets.add_event(session, own, "urged", actor, now, note=note, data={
            "emergency": True, "to": to, "chased": last is None,
            **({"via": ticket.number} if own is not ticket else {}),
        })
    who = owner.name if owner is not None else None
    if last is not None:
        return Chase(who, last, False)
    if owner is not None:
        text = svc.texts.get(
            "dispatch.emergency_again_worker", number=job.number, said=note or "-",
            place=notices.safe_text(notices.place_of(svc, job)), short=await worker_ref(session, job, owner.id),
        )
        await outbox.push_worker(session, owner.id, text, now=now, ticket_id=job.id, urgent=True)
    else:
        await escalate_to_staff(svc, session, job, svc.texts.get("dispatch.emergency_again_staff", said=note or "-"),
                                urgent=True)
    return Chase(who, now, True)


ANSWER_CHASED_WITHIN = timedelta(hours=24)  # a chase after a 回复 this recent reaches who answered too


async def urged_unanswered(session: AsyncSession, ticket_ids: set[int], since: datetime) -> bool:
    """Whether the resident chased one of these tickets (`urged`) since a time with no 回复 to them
    after that chase: a chase after staff's answer (已经安排网格员今天下午过去, then nobody came) is
    news, and reaches someone again."""
    last = await session.scalar(select(func.max(TicketEvent.created_at)).where(
        TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.action == "urged", TicketEvent.created_at >= since))
    if last is None:
        return False
    answered = await session.scalar(select(TicketEvent.id).where(
        TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.action == "reply", TicketEvent.created_at > last,
    ).limit(1))
    return answered is None


async def urge_answerer(
    svc: Services, session: AsyncSession, report: Ticket, job: Ticket, owner: str | None, said: str,
) -> str | None:
    """A resident's chase (催一下, 怎么还没人来) passed on to whoever last answered them with 回复 on the
    report or its job within ANSWER_CHASED_WITHIN, besides the job's owner: a member of staff (or a
    former owner) who answered from WeCom is pushed there, with the 回复 N to go on; an answer from
    the console, the staff group (where the desk hears of its residents), unless the chase went to
    the group already. Returns who was told ("staff" for the group), None when nobody else."""
    now = svc.clock.now()
    found = (await session.execute(
        select(TicketEvent.ticket_id, TicketEvent.actor, TicketEvent.data)
        .where(TicketEvent.ticket_id.in_({report.id, job.id}), TicketEvent.action == "reply",
               TicketEvent.created_at >= now - ANSWER_CHASED_WITHIN)
        .order_by(TicketEvent.id.desc()).limit(1)
    )).first()
    if found is None:
        return None
    answered = report if found.ticket_id == report.id else job
    what = notices.clip(notices.safe_text(notices.what_of(job)), 60)
    words = notices.clip(notices.safe_text(said.strip()), 200) or "-"
    if (found.data or {}).get("source") == "wecom":
        person = await roster.person(session, str(found.actor))
        if person is None or not person.active or person.id == owner:
            return None  # the owner was chased already; one who left the roster hears nothing
        await outbox.push_worker(session, person.id, svc.texts.get(
            "dispatch.urge_answerer", number=answered.number, what=what, said=words,
            short=notices.short_number(answered.number)), now=now, ticket_id=answered.id)
        return person.id
    if owner is None:
        return None  # the chase went to the staff group already
    await outbox.push_group(session, svc.texts.get(
        "dispatch.urge_answered_staff", number=answered.number, what=notices.md_escape(what),
        said=notices.md_escape(words)), now=now, ticket_id=answered.id)
    return "staff"


_P = Person.__table__
# The latest 回复 to a resident on an open ticket of theirs since a time: the ticket, who sent it,
# how (data.source), and whether they are still on the roster — read on the driver, as the
# resident's greeting (好的 我下来了) or unread answer comes through the dialog's other reads.
_LAST_ANSWER = Prepared(
    select(_T.c.id, _T.c.number, _T.c.assignee, _E.c.actor, _E.c.data, _P.c.active)
    .select_from(_E.join(_T, _T.c.id == _E.c.ticket_id).outerjoin(_P, _P.c.id == _E.c.actor))
    .where(_T.c.resident == bindparam("openid"), _T.c.status.in_(_fixed(tickets.ACTIVE)),
           _E.c.action == literal("reply"), _E.c.created_at >= bindparam("since"))
    .order_by(_E.c.id.desc())
    .limit(1)
)


async def last_answer(target: AsyncSession | fastsql.Transaction, openid: str, since: datetime) -> dict[str, Any] | None:
    """The latest 回复 to the resident on an open ticket of theirs since a time (id, number,
    assignee, actor, data, active), None when nobody answered them since."""
    rows = await fastsql.read(target, _LAST_ANSWER, {"openid": openid, "since": since})
    return rows[0] if rows else None


async def tell_answerer(svc: Services, session: AsyncSession, answer: dict[str, Any], said: str) -> str | None:
    """What a resident wrote after a 回复 (last_answer) passed on to whoever answered from WeCom,
    with 回复 N to go on, when they are not the ticket's owner (the owner hears it as a 补充) and
    are still on the roster: a member of staff who wrote 请问是几号楼 hears the answer there, as
    a chase reaches them (urge_answerer). Returns who was told, None when nobody else."""
    actor = str(answer["actor"])
    if (answer["data"] or {}).get("source") != "wecom" or not answer["active"] or actor == answer["assignee"]:
        return None
    words = notices.clip(notices.safe_text(said.strip()), 200) or "-"
    await outbox.push_worker(session, actor, svc.texts.get(
        "dispatch.resident_answered", number=answer["number"], said=words,
        short=notices.short_number(answer["number"])), now=svc.clock.now(), ticket_id=answer["id"])
    return actor


# --- status changes ------------------------------------------------------------------------------


async def children_of(session: AsyncSession, ticket: Ticket) -> list[Ticket]:
    """The later reports linked to this ticket (同一问题多人反映) and not withdrawn, oldest first: a
    neighbour who withdrew theirs is no longer told of the job, nor answered with its reporters."""
    rows = await session.execute(select(Ticket).where(
        Ticket.parent_id == ticket.id, Ticket.status != "cancelled").order_by(Ticket.id))
    return list(rows.scalars())


async def _withdrawn_from(svc: Services, session: AsyncSession, ticket: Ticket, job: Ticket, actor: str) -> None:
    """A neighbour's report linked to a job withdrawn (撤销): the job counts one reporter fewer (its
    card, 我的工单, the staff group's count), its history says so; the report stays marked as
    having been merged into it."""
    job.reporters = max(1, job.reporters - 1)
    await tickets.add_event(session, job, "linked_withdrawn", actor, svc.clock.now(), note=ticket.number,
                            data={"child": ticket.number, "reporters": job.reporters})


async def _tell_residents(
    svc: Services, session: AsyncSession, ticket: Ticket, kids: list[Ticket], event: TicketEvent, key: str,
    *, skip_rated: bool = False, skip_asker: bool = False, **values: Any,
) -> None:
    """Push the text of key to the ticket's resident and every linked reporter, once each, each
    with their own number (a linked reporter's followed by （与工单 … 合并处理）, the number the
    work goes by): after the quiet hours now falls in, unless the ticket is urgent or the resident
    made the change (an answer to what they just said). skip_rated: not those who rated the job
    done (a neighbour's reopen is no news to them). skip_asker: not the resident who made the
    change, whose chat reply already said it (a push would repeat it and spend one of the five
    messages WeChat's 48-hour window allows)."""
    now = svc.clock.now()
    held = held_until(svc, ticket)
    seen: set[str] = set()
    for own in [ticket, *kids]:
        if not own.resident or own.resident in seen:
            continue
        seen.add(own.resident)
        asked = event.actor == f"resident:{hash_openid(own.resident)}"
        if (skip_rated and not asked and rated_done(own)) or (skip_asker and asked):
            continue
        number = own.number
        if own is not ticket:
            number += svc.texts.get("dispatch.merged_with", parent=ticket.number)
        await outbox.push_resident(
            session, own.resident, svc.texts.get(key, number=number, **values), now=now, ticket_id=own.id,
            dedup_key=f"ticket:{ticket.id}:ev{event.id}:{own.id}", not_before=None if asked else held,
        )


def rated_done(ticket: Ticket) -> bool:
    """Whether the ticket's resident rated the job done (基本满意 or better): they are not surveyed
    again, nor told of a reopen a neighbour asked for."""
    return ticket.satisfaction is not None and ticket.satisfaction >= GOOD_RATING


async def _schedule_survey(svc: Services, session: AsyncSession, ticket: Ticket) -> None:
    """The survey of a resolution, unless its resident already rated the job done (a neighbour's
    reopen of a shared report does not ask them twice)."""
    if ticket.kind not in SURVEYED_KINDS or rated_done(ticket):
        return
    try:
        from bot.flows import survey
    except ImportError:  # the survey flow is written alongside; until it lands no survey is sent
        log.warning("bot.flows.survey not available; no survey scheduled for %s", ticket.number)
        return
    await survey.schedule_survey(svc, session, ticket)


# A command changes a ticket only as it read it (compare-and-set): the row still in the status
# and hands the command decided on. Run before the change, in its transaction; a row that matched
# stays locked (PostgreSQL's row lock, SQLite's write lock) until the command commits. No owner
# (a hand-off, a job in the staff queue) matches a row without one.
_CLAIM = Prepared(
    update(_T).where(_T.c.id == bindparam("ticket_id"), _T.c.status == bindparam("status"),
                     _T.c.assignee.is_not_distinct_from(bindparam("owner", type_=_T.c.assignee.type)))
    .values(status=_T.c.status)  # changes nothing: takes the lock
)


async def claim(session: AsyncSession, ticket: Ticket, owner: str | None) -> bool:
    """Whether ticket's row still has the status and owner it was read with (then it is held for
    this transaction); False when another change (staff 改派, a roster import, a withdrawal) was
    committed since it was read — the caller reads it again (session.refresh) and decides anew."""
    done = await fastsql.run(session, _CLAIM, {"ticket_id": ticket.id, "status": ticket.status, "owner": owner})
    return done.rowcount == 1


async def hold(session: AsyncSession, ticket: Ticket) -> bool:
    """Hold ticket's row for this transaction as it now is, before deciding on it: claimed as it was
    read, or read again under the lock when another process committed a change since (SQLite reads
    a transaction's rows before it takes the write lock; PostgreSQL's FOR UPDATE read held it
    already). True when it was read again: what the caller was shown may no longer be so."""
    if await claim(session, ticket, ticket.assignee):
        return False
    await session.refresh(ticket, with_for_update=True)
    return True


async def apply_action(
    svc: Services,
    session: AsyncSession,
    ticket: Ticket,
    action: str,
    actor: str,
    *,
    note: str = "",
    assignee: str | None = None,
    data: dict[str, Any] | None = None,
    note_on_card: bool = False,
) -> TicketEvent:
    """Change a ticket's status with all side effects; raises TransitionError or ValueError.

    On a volunteer signup, 办结 approves the volunteer and 退回 by its owner (the coordinator)
    declines them: see _decide_signup. data["comment"] on a reopen: the resident's words, which
    the owner is sent with it. note_on_card: a 派单's note is staff's word to the new owner (the
    console's 说明), carried on their card."""
    now = svc.clock.now()
    t = svc.texts
    if ticket.kind == "volunteer_signup" and (action == "resolve" or (action == "return" and actor == ticket.assignee)):
        return await _decide_signup(svc, session, ticket, actor, approved=action == "resolve", note=note, data=data)
    holder = ticket.assignee  # 退回 clears it
    if action == "assign":
        owner = await roster.person(session, assignee)
        if owner is None or not owner.active:
            raise ValueError(f"unknown or inactive assignee {assignee!r}")
        event = await _assign(svc, session, ticket, owner, actor, note=note, data=data, note_on_card=note_on_card)
    else:
        event = await tickets.transition(session, ticket, action, actor, now, note=note, data=data)
    kids = await children_of(session, ticket) if ticket.parent_id is None else []
    if action in CASCADE:
        for kid in kids:
            if kid.status in tickets.TRANSITIONS[action].sources:
                await tickets.transition(session, kid, action, actor, now, note=note, data={"via": ticket.number})
                if action == "assign":
                    kid.assignee, kid.grid = ticket.assignee, ticket.grid
                    kid.accept_due_at, kid.due_at = ticket.accept_due_at, ticket.due_at
                if action == "resolve":
                    await _schedule_survey(svc, session, kid)
    owner = await roster.person(session, ticket.assignee)
    if event.from_status == "escalated" and action in ("accept", "resolve") and actor == ticket.assignee:
        await _late_work(svc, session, ticket, event, action, owner.name if owner else actor)
    if action == "accept":
        await reminders.drop_for_cause(session, "ticket", ticket.id, kinds=("accept_remind", "accept_breach"))
        name = owner.name if owner else actor
        role = notices.role_label(svc, owner.roles if owner else [])
        await _tell_residents(svc, session, ticket, kids, event, "dispatch.resident_accepted", role=role, name=name)
    elif action == "resolve":
        await reminders.drop_for_cause(session, "ticket", ticket.id, kinds=LIMIT_KINDS)
        if note.strip():
            await _tell_residents(svc, session, ticket, kids, event, "dispatch.resident_resolved", skip_rated=True, note=note)
        else:
            await _tell_residents(svc, session, ticket, kids, event, "dispatch.resident_resolved_no_note", skip_rated=True)
        await _schedule_survey(svc, session, ticket)
    elif action == "reopen":
        # Those who rated the job done are not told: a neighbour's reopen is no news to them.
        # The resident whose 不满意 reopened it was answered in the chat (survey.bad_ask …).
        await _tell_residents(svc, session, ticket, kids, event, "dispatch.resident_reopened", skip_rated=True,
                              skip_asker=True)
        # A linked report reopened alone (its resident was not satisfied, the job itself stays
        # done) becomes its owner's own job; one whose job is active again follows the job.
        job = await session.get(Ticket, ticket.parent_id) if ticket.parent_id is not None else None
        if job is not None and job.status not in tickets.ACTIVE:
            await _unlink(svc, session, ticket, job, actor)
        if ticket.assignee and ticket.parent_id is None:  # a job to do again: its 办结 limit runs from now
            ticket.due_at = load_limits().resolve_due(ticket.kind, ticket.urgency, held_until(svc, ticket) or now,
                                                      booked_start(ticket))
        if ticket.assignee and ticket.parent_id is None and (owner is None or not owner.active):
            # Its owner left the roster since 办结: to the staff queue at once, the staff group told
            # (as roster.hand_to_staff does with open tickets), nothing pushed to who left.
            await apply_action(svc, session, ticket, "escalate", "system", note=t.get("roster.owner_left"),
                               data={"owner_left": ticket.assignee})
        elif ticket.assignee and ticket.parent_id is None:
            held = held_until(svc, ticket)
            await reminders.drop_for_cause(session, "ticket", ticket.id, kinds=LIMIT_KINDS)
            await _schedule_limits(svc, session, ticket, event, accept=False, since=held)
            short = await worker_ref(session, ticket)
            text = _reopened_text(svc, ticket, note, data, short if job is None else None)
            if job is not None:  # its own lines say what to send
                text += svc.texts.get(
                    "dispatch.reopened_worker_unlinked", parent=job.number, short=short,
                    place=notices.safe_text(notices.place_of(svc, ticket)),
                )
            await outbox.push_worker(session, ticket.assignee, text, now=now, ticket_id=ticket.id, not_before=held)
    elif action in ("close", "cancel"):
        await reminders.drop_for_cause(session, "ticket", ticket.id)
        for kid in kids:
            await reminders.drop_for_cause(session, "ticket", kid.id)
        if action == "cancel":
            if (data or {}).get("by") != "resident":  # a resident who withdrew it was answered in the chat
                await _tell_residents(svc, session, ticket, kids, event, "dispatch.resident_cancelled", note=note)
            job = await session.scalar(
                select(Ticket).where(Ticket.id == ticket.parent_id).with_for_update()
                .execution_options(populate_existing=True)
            ) if ticket.parent_id is not None else None
            if job is not None:
                await _withdrawn_from(svc, session, ticket, job, actor)
            if ticket.assignee:
                # A neighbour's report withdrawn: the job it was linked to goes on, and is named.
                text = (t.get("dispatch.cancelled_linked_worker", number=ticket.number, parent=job.number)
                        if job is not None and job.status in tickets.ACTIVE
                        else t.get("dispatch.cancelled_worker_push", number=ticket.number,
                                   place=notices.safe_text(notices.place_of(svc, ticket))))
                await outbox.push_worker(session, ticket.assignee, text, now=now, ticket_id=ticket.id,
                                         not_before=held_until(svc, ticket))
    elif action == "escalate":
        await reminders.drop_for_cause(session, "ticket", ticket.id, kinds=LIMIT_KINDS)
        await escalate_to_staff(svc, session, ticket, note or action)
    elif action == "return":
        await reminders.drop_for_cause(session, "ticket", ticket.id, kinds=LIMIT_KINDS)
        who = await roster.person(session, actor) or await roster.person(session, holder)
        role = notices.role_label(svc, who.roles if who else [])
        await escalate_to_staff(svc, session, ticket, t.get("dispatch.reason_return", role=role, note=note or "-"))
    return event


# A report's latest unlinking or 办结: the job it was linked to is still "its job" only while no
# 办结 of its own has come since (see linked_job).
_UNLINKED = (
    select(TicketEvent.action, TicketEvent.data)
    .where(TicketEvent.ticket_id == bindparam("ticket_id"), TicketEvent.action.in_(("unlinked", "resolve")))
    .order_by(TicketEvent.id.desc())
    .limit(1)
)


async def _unlink(svc: Services, session: AsyncSession, ticket: Ticket, job: Ticket, actor: str) -> None:
    """A linked report reopened on its own while its job stays done (its resident not satisfied,
    the neighbours' problem fixed) becomes its owner's own job: no longer linked, so it is in
    their 我的工单, taken and finished by its own number, with its own limit, its resident told
    and surveyed. The job counts one reporter fewer; both histories say so."""
    now = svc.clock.now()
    ticket.parent_id = None
    job.reporters = max(1, job.reporters - 1)
    await tickets.add_event(session, job, "unlinked", actor, now, note=ticket.number,
                            data={"child": ticket.number, "reporters": job.reporters})
    await tickets.add_event(session, ticket, "unlinked", actor, now, note=job.number,
                            data={"parent": job.number, "parent_id": job.id})


async def unlink_moved(svc: Services, session: AsyncSession, ticket: Ticket, actor: str) -> bool:
    """A report linked to a job that its resident has since placed elsewhere (不对，是5号楼: the
    neighbours' job is at 3号楼) is no longer that job's: unlinked as a report reopened on its own is
    (_unlink), to be routed as its own. Returns whether it was linked."""
    job = await session.get(Ticket, ticket.parent_id) if ticket.parent_id is not None else None
    if job is None:
        return False
    await _unlink(svc, session, ticket, job, actor)
    return True


async def linked_job(session: AsyncSession, ticket: Ticket) -> Ticket | None:
    """The job a report is linked to, or was until it was reopened on its own and not 办结 since
    (row-locked)."""
    job_id = ticket.parent_id
    if job_id is None:
        last = (await session.execute(_UNLINKED, {"ticket_id": ticket.id})).first()
        job_id = (last.data or {}).get("parent_id") if last is not None and last.action == "unlinked" else None
    if not isinstance(job_id, int):
        return None
    return await session.scalar(select(Ticket).where(Ticket.id == job_id).with_for_update())


async def relink(svc: Services, session: AsyncSession, ticket: Ticket, job: Ticket, actor: str) -> None:
    """A report reopened on its own (_unlink) whose resident then says the problem itself is still
    there: it follows the job again (the caller reopens the job), its own limits dropped, and its
    owner told it needs no 办结 of its own."""
    now = svc.clock.now()
    ticket.parent_id = job.id
    job.reporters += 1
    held_by = ticket.assignee
    ticket.assignee, ticket.grid = job.assignee, job.grid
    ticket.accept_due_at, ticket.due_at = job.accept_due_at, job.due_at
    await reminders.drop_for_cause(session, "ticket", ticket.id, kinds=LIMIT_KINDS)
    await tickets.add_event(session, job, "linked", actor, now, note=ticket.number,
                            data={"child": ticket.number, "reporters": job.reporters, "again": True})
    await tickets.add_event(session, ticket, "linked", actor, now, note=job.number,
                            data={"parent": job.number, "again": True})
    if held_by:
        await outbox.push_worker(
            session, held_by, svc.texts.get("dispatch.relinked_worker", number=ticket.number, parent=job.number),
            now=now, ticket_id=ticket.id, not_before=held_until(svc, ticket),
        )


def _reopened_text(svc: Services, ticket: Ticket, note: str, data: dict[str, Any] | None, short: str | None) -> str:
    """What the owner of a reopened ticket reads: which job (its number and place: a worker with
    several knows them by where they are), its new limit, and why — the resident's words
    (data["comment"], from the survey) or the note of whoever reopened it — masked and clipped;
    short: the number as the owner types it, for what to send when done (None: said elsewhere)."""
    t = svc.texts
    text = t.get("dispatch.reopened_worker", number=ticket.number, due=notices.local_time(svc, ticket.due_at),
                 place=notices.clip(notices.safe_text(notices.place_of(svc, ticket)), 30))
    if data is not None and "comment" in data:
        said, key = str(data.get("comment") or ""), "dispatch.reopened_worker_comment"
    else:
        said, key = note, "dispatch.reopened_worker_note"
    said = notices.clip(notices.safe_text(said.strip()), 200)
    text = text + t.get(key, text=said) if said else text
    return text + "\n" + t.get("dispatch.reopened_worker_howto", short=short) if short else text


async def _decide_signup(
    svc: Services, session: AsyncSession, ticket: Ticket, actor: str, *, approved: bool, note: str,
    data: dict[str, Any] | None,
) -> TicketEvent:
    """A volunteer signup decided: 办结 approves it, 退回 by the coordinator declines it. Either way
    the signup is dealt with, so the ticket is 办结 with the decision and closed at once — without
    a satisfaction survey (满意率 rates jobs done for residents) and without the staff queue — the
    volunteer record says 已通过 / 未通过 (a declined resident may sign up again), and the resident
    is told, with the coordinator's words (the reason of a decline)."""
    now = svc.clock.now()
    t = svc.texts
    decision = "approved" if approved else "rejected"
    event = await tickets.transition(
        session, ticket, "resolve", actor, now, note=note, data={**(data or {}), "decision": decision}
    )
    if event.from_status == "escalated" and actor == ticket.assignee:
        owner = await roster.person(session, ticket.assignee)
        await _late_work(svc, session, ticket, event, "resolve", owner.name if owner else actor)
    await tickets.transition(session, ticket, "close", actor, now, note=t.get(f"dispatch.signup_{decision}"))
    await reminders.drop_for_cause(session, "ticket", ticket.id)
    if ticket.resident:
        await volunteers.decide(session, ticket.resident, ticket.id, decision)
    said = t.get(f"dispatch.signup_said_{decision}", note=note.strip()) if note.strip() else ""
    await _tell_residents(svc, session, ticket, [], event, f"dispatch.resident_signup_{decision}", said=said)
    return event


async def _late_work(
    svc: Services, session: AsyncSession, ticket: Ticket, event: TicketEvent, action: str, name: str
) -> None:
    """The owner took or finished a ticket after it was escalated: staff hear it, and a taken
    one gets its 办结 reminder and check again while its limit is still ahead."""
    now = svc.clock.now()
    verb = svc.texts.get(f"wecom.verbs.{action}")
    await outbox.push_group(
        session, svc.texts.get("dispatch.staff_late_work", number=ticket.number, name=name, verb=verb),
        now=now, ticket_id=ticket.id, dedup_key=f"ticket:{ticket.id}:late:{event.id}",
    )
    if action == "accept" and ticket.due_at is not None and ticket.due_at > now:
        await _schedule_limits(svc, session, ticket, event, accept=False)


async def whistle_again(
    svc: Services, session: AsyncSession, ticket: Ticket, actor: str, *, note: str, data: dict[str, Any]
) -> TicketEvent:
    """吹哨 on a ticket already escalated: recorded, and the staff group is told once more."""
    event = await tickets.add_event(session, ticket, "whistle", actor, svc.clock.now(), note=note, data=data)
    await escalate_to_staff(svc, session, ticket, note)
    return event


async def escalate_to_staff(
    svc: Services, session: AsyncSession, ticket: Ticket, reason: str, *, urgent: bool | None = None
) -> None:
    """Post the ticket to the staff group robot (markdown, escaped, phone masked) and note it.
    urgent (by default: whether the ticket's limit is the urgent one, as an emergency hand-off's
    is): the post is titled 【紧急】 and sent before the pushes that are not."""
    now = svc.clock.now()
    urgent = _urgent(ticket) if urgent is None else urgent
    owner = await roster.person(session, ticket.assignee)
    content = notices.staff_markdown(svc, ticket, reason, owner.name if owner else None, urgent=urgent)
    await outbox.push_group(session, content, now=now, ticket_id=ticket.id, urgent=urgent)
    await tickets.add_event(session, ticket, "staff_alerted", "system", now, note=notices.safe_text(reason))


# --- time limits: the scheduler's side -----------------------------------------------------------


def limit_still_pending(ticket: Ticket, kind: str, target: str) -> bool:
    """Whether a time-limit reminder of kind still applies: same owner, limit not yet met."""
    if ticket.assignee != target:
        return False
    if kind in ("accept_remind", "accept_breach"):
        return ticket.status == "dispatched"  # taken since this dispatch: accepted (or further)
    return ticket.status in WORKING


async def _ticket_cause_check(session: AsyncSession, reminder: Reminder) -> bool:
    """Reminders caused by a ticket: time limits while they still apply; others while it is active."""
    if reminder.cause_id is None:
        return False
    ticket = await session.get(Ticket, reminder.cause_id)
    if ticket is None:
        return False
    if reminder.kind in LIMIT_KINDS:
        return limit_still_pending(ticket, reminder.kind, reminder.target)
    # A reminder to the resident about the job (a mediation's session): only while it is still
    # to be done (not after 办结, closing or withdrawing it; a reopened one is to be done again).
    return ticket.status in tickets.ACTIVE and ticket.resident is not None


reminders.register_cause_check("ticket", _ticket_cause_check)


async def deliver_limit_reminder(svc: Services, session: AsyncSession, reminder: Reminder) -> bool:
    """A reminder before a 接单 or 办结 limit (请在 10:00 前接单): delivered while the limit is still
    ahead. One the scheduler reaches only at or after it (catching up after the service stood
    still) is dropped: the breach check due at the limit tells the owner it was missed, and the
    reminder of a time already past came beside it as a second, contradictory order."""
    ticket = await session.get(Ticket, reminder.cause_id) if reminder.cause_id is not None else None
    now = svc.clock.now()
    due = None if ticket is None else ticket.accept_due_at if reminder.kind == "accept_remind" else ticket.due_at
    if due is not None and due <= now:
        return False
    return await schedule.deliver_plain(session, reminder, now)


for _kind in REMIND_KINDS:
    schedule.register_kind_handler(_kind, deliver_limit_reminder)


async def handle_due_reminder(svc: Services, session: AsyncSession, reminder: Reminder) -> bool:
    """Act on a due breach check: mark overdue, escalate, tell staff and the owner.

    True when the breach was acted on; False when the reminder is not a breach check or the
    limit was met in the meantime (the scheduler then marks it dropped).
    """
    if reminder.kind not in BREACH_KINDS or reminder.cause_type != "ticket" or reminder.cause_id is None:
        return False
    ticket = await session.scalar(select(Ticket).where(Ticket.id == reminder.cause_id).with_for_update())
    if ticket is None or not limit_still_pending(ticket, reminder.kind, reminder.target):
        return False
    now = svc.clock.now()
    due = ticket.accept_due_at if reminder.kind == "accept_breach" else ticket.due_at
    reason = svc.texts.get(f"dispatch.reason_{reminder.kind}", due=notices.local_time(svc, due))
    ticket.overdue = True
    await tickets.add_event(session, ticket, "overdue", "system", now, note=reason, data={"limit": reminder.kind})
    await apply_action(svc, session, ticket, "escalate", "system", note=reason, data={"limit": reminder.kind})
    message = (reminder.payload or {}).get("message")
    if isinstance(message, dict):
        await outbox.enqueue(
            session, "wecom", reminder.target, message, now=now, ticket_id=ticket.id,
            dedup_key=f"reminder:{reminder.id}",
        )
    return True

