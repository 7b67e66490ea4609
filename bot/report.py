"""The service figures streets are ranked on, for any range of local dates, in total and per grid,
worker and kind; and the `communitybot report` command that prints them (table, JSON, CSV).

Definitions (one set, used everywhere):
- population: tickets created in [since, until] (local dates, both included), with all that
  happened to them up to report time (one created before since and resolved inside is not in
  the range; it stays in the range it was created in). A linked duplicate
  (同一问题多人反映) is one problem with its parent, so problem counts skip it; its reporter's
  rating still counts among the ratings.
- 响应率 = taken in time / dispatched, per problem, from its dispatches (each `assign` event and
  its own 接单 limit: accept_due_at, which does not run in quiet hours for tickets that are not
  urgent). "taken": in the first dispatch taken (接单, or 办结 without 接单); a later 接单, after
  不满意 or a reassignment, does not replace it. "in time": that dispatch was taken by its own
  limit, never breached (escalated for it), and no dispatch before it was breached (missed, then
  reassigned and taken fast, is late; taken in time, then reassigned and the new owner late, is
  in time: the new owner's figures carry it). "dispatched": every problem given to an owner
  except one not taken whose latest 接单 window is still open, or was when it was cancelled
  (withdrawn by the resident or cancelled by staff) or closed: a cancellation does not erase a
  response already given or already missed. Hand-offs to staff count only once assigned to one.
- 解决率 = resolved (办结, including closed after resolution; not reopened since) / (created −
  cancelled); the cancelled are left out of both; a ticket closed without 办结 is not resolved.
- 满意率 = (ratings of 4–5 + 0.9 × ratings of 3) / ratings; this is DOMAIN's
  (满意 + 0.9 × 基本满意) / rated, since 满意 is 4–5, 基本满意 3, 不满意 1–2. 未评价 is no rating.
  One rating per reporter: the latest (不满意, finished again and rated 5 counts 5; silence on
  the second survey keeps the 不满意); each linked reporter's counts.
- overdue (超期): the 办结 limit missed — breached (escalated for it), resolved after its limit,
  or still open past it at report time. A missed 接单 limit is 响应率's, not 超期.
- average time to accept: the taking dispatch → taken; to resolve: created → resolved.
- per worker, 派单, 接单, 按时接单, 响应率 and the average time to accept count each dispatch (each
  `assign` event) against the worker it went to, from the ticket's events: taken is the first 接单
  or 办结 before the next dispatch or 退回; in time is by that dispatch's own accept limit, never
  breached while it was theirs. A ticket returned (退回) or reassigned after its limit passed untaken
  stays in the first owner's figures (a miss), and the new owner is measured from their own
  dispatch; one staff reassigned (改派) before its limit ran out, untaken, is not that owner's to
  count (their time was not up, as a cancellation's is not), as the community's figure measures
  the dispatch that was taken. The other figures of a worker
  are those of the tickets they own now; the totals and per-grid and per-kind rows are unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select

from bot import dispatch, notices, tickets
from bot.limits import load_limits
from bot.services import Services
from bot.settings import SettingsError, load_settings
from storage.db import describe_db_error
from storage.models import Grid, Person, Ticket, TicketEvent

BASIC_WEIGHT = 0.9
# The dates figures can be asked for (local_range overflows near years 1 and 9999).
EARLIEST = date(2000, 1, 1)
LATEST = date(2099, 12, 31)


@dataclass(frozen=True)
class Figures:
    """Counts and rates for one group of tickets (rates and averages None when undefined)."""

    created: int
    cancelled: int
    dispatched: int
    accepted: int
    accepted_in_time: int
    resolved: int
    rated: int
    satisfied: int
    basic: int
    unsatisfied: int
    unrated: int
    overdue: int
    open: int
    response_rate: float | None
    resolution_rate: float | None
    satisfaction_rate: float | None
    avg_accept_s: float | None
    avg_resolve_s: float | None


@dataclass(frozen=True)
class Row:
    """Figures of one grid, worker or kind."""

    key: str
    name: str
    figures: Figures


@dataclass(frozen=True)
class Report:
    """The figures for a date range: in total, and per grid, worker and kind."""

    since: date
    until: date
    generated_at: datetime
    total: Figures
    by_grid: tuple[Row, ...]
    by_worker: tuple[Row, ...]
    by_kind: tuple[Row, ...]

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON types."""
        def rows(items: tuple[Row, ...]) -> list[dict[str, Any]]:
            return [{"key": r.key, "name": r.name, **asdict(r.figures)} for r in items]

        return {
            "since": self.since.isoformat(), "until": self.until.isoformat(),
            "generated_at": self.generated_at.isoformat(), "total": asdict(self.total),
            "by_grid": rows(self.by_grid), "by_worker": rows(self.by_worker), "by_kind": rows(self.by_kind),
        }


def _rate(part: float, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _mean(values: list[float]) -> float | None:
    return None if not values else sum(values) / len(values)


@dataclass(frozen=True)
class History:
    """What the figures read from the tickets' events: each problem's dispatches (dispatches_of)
    by ticket id, and the ids of those whose 办结 limit was breached (escalated for it)."""

    sent: Mapping[int, list[Dispatch]]
    late: frozenset[int] = frozenset()


def past_resolve_limit(t: Ticket, now: datetime, late: Collection[int]) -> bool:
    """超期: t's 办结 limit missed — breached (its id in late: escalated for it), resolved after it,
    or still open past it at now. A missed 接单 limit is 响应率's (the ticket's overdue flag marks
    either)."""
    if t.id in late:
        return True
    if t.due_at is None:
        return False
    if t.resolved_at is not None:
        return t.resolved_at > t.due_at
    return t.status in tickets.ACTIVE and now > t.due_at


def past_resolve_limit_where(now: datetime) -> Any:
    """past_resolve_limit as a SQL condition on tickets, for lists filtered by it (the console's
    超期): the same three ways — breached (a resolve_breach event), resolved after the limit, or
    still open past it at now."""
    late = select(TicketEvent.ticket_id).where(
        TicketEvent.action == "overdue", TicketEvent.data["limit"].as_string() == "resolve_breach",
    )
    return or_(
        Ticket.id.in_(late),
        and_(Ticket.due_at.is_not(None), Ticket.resolved_at.is_not(None), Ticket.resolved_at > Ticket.due_at),
        and_(Ticket.due_at.is_not(None), Ticket.resolved_at.is_(None), Ticket.status.in_(tickets.ACTIVE),
             Ticket.due_at < now),
    )


def figures_of(items: Iterable[Ticket], now: datetime, history: History) -> Figures:
    """The figures of a set of tickets (linked duplicates count only for ratings; see the module
    docstring)."""
    items = list(items)
    problems = [t for t in items if t.parent_id is None]
    live = [t for t in problems if t.status != "cancelled"]
    answers = [a for a in (response_of(history.sent.get(t.id, []), now) for t in problems) if a is not None]
    taken = [a for a in answers if a.taken is not None]

    resolved = [t for t in live if t.resolved_at is not None]
    cancelled = len(problems) - len(live)
    scores = [t.satisfaction for t in items if t.satisfaction is not None]
    satisfied = sum(1 for s in scores if s >= 4)
    basic = sum(1 for s in scores if s == 3)
    in_time_count = sum(1 for a in answers if a.in_time)
    return Figures(
        created=len(problems),
        cancelled=cancelled,
        dispatched=len(answers),
        accepted=len(taken),
        accepted_in_time=in_time_count,
        resolved=len(resolved),
        rated=len(scores),
        satisfied=satisfied,
        basic=basic,
        unsatisfied=len(scores) - satisfied - basic,
        unrated=sum(1 for t in items if t.satisfaction is None and t.satisfaction_label == "未评价"),
        overdue=sum(1 for t in problems if past_resolve_limit(t, now, history.late)),
        open=sum(1 for t in problems if t.status in tickets.ACTIVE),
        response_rate=_rate(in_time_count, len(answers)),
        resolution_rate=_rate(len(resolved), len(live)),
        satisfaction_rate=_rate(satisfied + BASIC_WEIGHT * basic, len(scores)),
        avg_accept_s=_mean([a.taken.wait_s for a in taken if a.taken.wait_s >= 0]),  # type: ignore[union-attr]
        avg_resolve_s=_mean([(t.resolved_at - t.created_at).total_seconds() for t in resolved]),  # type: ignore[operator]
    )


@dataclass(frozen=True)
class Dispatch:
    """One dispatch of a ticket (an `assign` event): the worker it went to, when, its 接单 limit,
    when that worker took it (None: not taken before the next dispatch or 退回), whether its
    limit was breached (escalated for it) while it was theirs, when the ticket was cancelled
    or closed while it was theirs, untaken (its window ended there), and when staff gave it to
    someone else (改派) before it was taken."""

    worker: str
    at: datetime
    limit: datetime
    taken_at: datetime | None
    breached: bool
    current: bool  # the ticket's latest dispatch, neither handed on nor returned
    ended_at: datetime | None = None
    handed_on_at: datetime | None = None  # reassigned (the next `assign`) untaken

    @property
    def handed_on_in_time(self) -> bool:
        """Reassigned untaken before its 接单 limit ran out and never breached: its owner's time
        was not up, so it is neither taken nor missed for them."""
        return (self.taken_at is None and not self.breached and self.handed_on_at is not None
                and self.handed_on_at < self.limit)

    @property
    def in_time(self) -> bool:
        """Taken at or before its own limit, which was never breached."""
        return self.taken_at is not None and self.taken_at <= self.limit and not self.breached

    @property
    def wait_s(self) -> float:
        """Seconds from dispatch to taking (taken ones only)."""
        assert self.taken_at is not None
        return (self.taken_at - self.at).total_seconds()

    def window_open(self, now: datetime) -> bool:
        """Not taken, not breached, and its 接单 limit still ahead (now, or when the ticket was
        cancelled or closed): too early to count it, or cancelled before it could be missed."""
        end = min(now, self.ended_at) if self.ended_at is not None else now
        return self.taken_at is None and not self.breached and end < self.limit


@dataclass(frozen=True)
class Response:
    """How a ticket was answered, for the community's 响应率: the dispatch it was first taken in
    (None: never taken), and whether that was in time with no earlier dispatch breached."""

    taken: Dispatch | None
    in_time: bool


def response_of(sent: list[Dispatch], now: datetime) -> Response | None:
    """A ticket's response from its dispatches (None: not counted — never dispatched, or its
    latest 接单 window still open, or closed by a cancellation before it passed). Taken: the first
    dispatch taken (接单, or 办结 without 接单); a later one, after 不满意 or a reassignment, does
    not replace it. In time: that dispatch was taken by its own limit, and no dispatch before it
    was breached."""
    for n, one in enumerate(sent):
        if one.taken_at is not None:
            return Response(one, one.in_time and not any(d.breached for d in sent[:n]))
    if not sent or (not any(d.breached for d in sent) and sent[-1].window_open(now)):
        return None
    return Response(None, False)


# The events that make up a ticket's dispatches.
DISPATCH_EVENTS = ("assign", "accept", "resolve", "return", "overdue", "cancel", "close")


def breach(event: TicketEvent, limit: str = "accept_breach") -> bool:
    """Whether event is the breach of a limit ('accept_breach' or 'resolve_breach')."""
    return event.action == "overdue" and (event.data or {}).get("limit") == limit


def dispatches_of(svc: Services, ticket: Ticket, events: list[TicketEvent]) -> list[Dispatch]:
    """A ticket's dispatches from its events (oldest first). The latest one's limit is the ticket's
    accept_due_at; an earlier one's is what dispatch.accept_due gave at its time. A ticket whose
    events name no assignee (written before they did) counts as one dispatch to its owner, read
    from the ticket."""
    sla = timedelta(seconds=svc.settings.accept_sla_s)
    assigns = [e for e in events if e.action == "assign" and isinstance((e.data or {}).get("assignee"), str)]
    if not assigns:
        if ticket.assignee is None or ticket.dispatched_at is None:
            return []
        ended = ticket.closed_at if ticket.status in ("cancelled", "closed") and ticket.accepted_at is None else None
        return [Dispatch(ticket.assignee, ticket.dispatched_at, ticket.accept_due_at or ticket.dispatched_at + sla,
                         ticket.accepted_at, any(breach(e) for e in events), current=True, ended_at=ended)]
    urgency_class = load_limits().urgency_class(ticket.kind, ticket.urgency)
    found: list[Dispatch] = []
    open_one: dict[str, Any] | None = None  # the dispatch being read
    for event in events:
        if event.action in ("assign", "return"):
            if open_one is not None:
                handed_on = event.created_at if event.action == "assign" and open_one["taken_at"] is None else None
                found.append(Dispatch(**open_one, current=False, handed_on_at=handed_on))
                open_one = None
            if event in assigns:
                if event is assigns[-1]:
                    limit = ticket.accept_due_at or event.created_at + sla
                else:
                    limit = dispatch.accept_due(svc, event.created_at, urgency_class)
                open_one = {"worker": event.data["assignee"], "at": event.created_at, "limit": limit,  # type: ignore[index]
                            "taken_at": None, "breached": False, "ended_at": None}
        elif event.action in ("cancel", "close"):
            # Its window ends here; a returned one's too (cancelled in the staff queue).
            if open_one is not None and open_one["taken_at"] is None:
                open_one["ended_at"] = open_one["ended_at"] or event.created_at
            elif open_one is None and found and found[-1].taken_at is None and found[-1].ended_at is None:
                found[-1] = replace(found[-1], ended_at=event.created_at)
        elif open_one is None:
            continue
        elif event.action in ("accept", "resolve"):
            open_one["taken_at"] = open_one["taken_at"] or event.created_at
        elif breach(event):
            open_one["breached"] = True
    if open_one is not None:
        found.append(Dispatch(**open_one, current=True))
    return found


def worker_dispatch_figures(figures: Figures, items: Iterable[Dispatch], now: datetime) -> Figures:
    """figures with 派单, 接单, 按时接单, 响应率 and the average time to accept of a worker's
    dispatches (one still theirs, not taken, whose limit is ahead — or was when the ticket was
    cancelled — is not counted, nor one reassigned untaken before its limit ran out)."""
    counted = [d for d in items if not (d.current and d.window_open(now)) and not d.handed_on_in_time]
    taken = [d for d in counted if d.taken_at is not None]
    in_time = sum(1 for d in counted if d.in_time)
    return replace(
        figures, dispatched=len(counted), accepted=len(taken), accepted_in_time=in_time,
        response_rate=_rate(in_time, len(counted)),
        avg_accept_s=_mean([d.wait_s for d in taken if d.wait_s >= 0]),
    )


def local_range(since: date, until: date, tz: str) -> tuple[datetime, datetime]:
    """[since 00:00, until+1 00:00) in local time, as aware UTC."""
    zone = ZoneInfo(tz)
    start = datetime.combine(since, time(0), zone).astimezone(timezone.utc)
    end = datetime.combine(until + timedelta(days=1), time(0), zone).astimezone(timezone.utc)
    return start, end


def _rows(
    items: list[Ticket], key: Callable[[Ticket], str | None], name: Callable[[str | None], str],
    now: datetime, history: History,
) -> tuple[Row, ...]:
    groups: dict[str | None, list[Ticket]] = defaultdict(list)
    for ticket in items:
        groups[key(ticket)].append(ticket)
    ordered = sorted(groups, key=lambda k: (k is None, k or ""))
    return tuple(Row(k or "", name(k), figures_of(groups[k], now, history)) for k in ordered)


async def compute(svc: Services, since: date, until: date) -> Report:
    """The figures for tickets created between two local dates (both included)."""
    if since > until:
        raise ValueError(f"since {since} is after until {until}")
    if since < EARLIEST or until > LATEST:
        raise ValueError(f"dates from {EARLIEST} to {LATEST} only, not {since} to {until}")
    start, end = local_range(since, until, svc.tz)
    now = svc.clock.now()
    async with svc.sessions() as session:
        items = list(await session.scalars(
            select(Ticket).where(Ticket.created_at >= start, Ticket.created_at < end).order_by(Ticket.id)
        ))
        events: dict[int, list[TicketEvent]] = defaultdict(list)
        for event in await session.scalars(
            select(TicketEvent)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(Ticket.created_at >= start, Ticket.created_at < end, TicketEvent.action.in_(DISPATCH_EVENTS))
            .order_by(TicketEvent.id)
        ):
            events[event.ticket_id].append(event)
        grids = {g.id: g.name for g in await session.scalars(select(Grid))}
        people = {p.id: p.name for p in await session.scalars(select(Person))}
    # A linked duplicate is its parent's problem: it has no dispatches of its own.
    history = History(
        sent={t.id: dispatches_of(svc, t, events.get(t.id, [])) for t in items if t.parent_id is None},
        late=frozenset(tid for tid, own in events.items() if any(breach(e, "resolve_breach") for e in own)),
    )
    t = svc.texts
    return Report(
        since=since, until=until, generated_at=now,
        total=figures_of(items, now, history),
        by_grid=_rows(items, lambda x: x.grid, lambda k: grids.get(k, k) if k else t.get("report.no_grid"), now, history),
        by_worker=_by_worker(items, history, now, lambda k: people.get(k, k) if k else t.get("report.no_worker")),
        by_kind=_rows(items, lambda x: x.kind, lambda k: notices.kind_label(svc, k or ""), now, history),
    )


def _by_worker(
    items: list[Ticket], history: History, now: datetime, name: Callable[[str | None], str],
) -> tuple[Row, ...]:
    """The rows per worker: the tickets each owns now, with 派单 … 响应率 from the dispatches each got
    (a worker who handed every ticket on still has a row)."""
    got: dict[str, list[Dispatch]] = defaultdict(list)
    for dispatches in history.sent.values():
        for one in dispatches:
            got[one.worker].append(one)
    owned: dict[str | None, list[Ticket]] = defaultdict(list)
    for ticket in items:
        owned[ticket.assignee].append(ticket)
    keys = sorted(set(owned) | set(got), key=lambda k: (k is None, k or ""))
    return tuple(
        Row(k or "", name(k), worker_dispatch_figures(figures_of(owned.get(k, []), now, history), got.get(k or "", []), now))
        for k in keys
    )


# --- formatting -----------------------------------------------------------------------------------

COLUMNS = (
    "created", "dispatched", "accepted_in_time", "response_rate", "resolved", "resolution_rate",
    "rated", "satisfaction_rate", "overdue", "open", "avg_accept", "avg_resolve",
)


def percent(value: float | None, none: str = "—") -> str:
    """0.875 → '87.5%'."""
    return none if value is None else f"{value * 100:.1f}%"


def duration(seconds: float | None, none: str = "—") -> str:
    """A duration as people read it: 2天3小时, 1小时05分, 35分."""
    if seconds is None:
        return none
    minutes = int(round(seconds / 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时"
    if hours:
        return f"{hours}小时{mins:02d}分"
    return f"{mins}分"


def _cells(f: Figures, none: str) -> list[str]:
    return [
        str(f.created), str(f.dispatched), str(f.accepted_in_time), percent(f.response_rate, none),
        str(f.resolved), percent(f.resolution_rate, none), str(f.rated),
        percent(f.satisfaction_rate, none), str(f.overdue), str(f.open),
        duration(f.avg_accept_s, none), duration(f.avg_resolve_s, none),
    ]


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * (width - _width(text))
    return gap + text if right else text + gap


def _grid_text(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for n, row in enumerate([header, *rows]):
        lines.append("  ".join(_pad(c, widths[i], right=i > 0) for i, c in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def render_table(svc: Services, report: Report) -> str:
    """The report as aligned text tables with Chinese headers."""
    t = svc.texts
    none = t.get("report.none")
    header = [t.get("report.col_name")] + [t.get(f"report.col_{c}") for c in COLUMNS]
    out = [t.get("report.title", since=report.since.isoformat(), until=report.until.isoformat()), ""]
    out += _grid_text(header, [[t.get("report.total"), *_cells(report.total, none)]])
    for title, rows in (("report.by_grid", report.by_grid), ("report.by_worker", report.by_worker),
                        ("report.by_kind", report.by_kind)):
        out += ["", t.get(title)]
        out += _grid_text(header, [[r.name, *_cells(r.figures, none)] for r in rows]) if rows else [t.get("report.empty")]
    out += ["", t.get("report.note")]
    return "\n".join(out) + "\n"


# The CSV's columns after 分组, 代码 and 名称: Figures fields, headed by report.col_<field>.
CSV_FIELDS = (
    "created", "cancelled", "dispatched", "accepted", "accepted_in_time", "response_rate", "resolved",
    "resolution_rate", "rated", "satisfied", "basic", "unsatisfied", "unrated", "satisfaction_rate",
    "overdue", "open", "avg_accept_s", "avg_resolve_s",
)


def _csv_value(field: str, value: int | float | None) -> str | int:
    """A CSV cell: counts as they are, rates to 4 places, averages in whole seconds, none empty."""
    if value is None:
        return ""
    if field.endswith("_rate"):
        return f"{value:.4f}"
    if field.endswith("_s"):
        return round(value)
    return value


# Excel on Windows reads a CSV as the system's code page (GBK) unless it starts with a UTF-8 BOM:
# what is written for a person to open (a file, a console download) carries one; stdout does not.
EXCEL_ENCODING = "utf-8-sig"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell as a spreadsheet will not run it: a name (or a resident's words) starting like a
    formula (=, +, -, @, a tab or a carriage return) is kept as text with a leading apostrophe."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value


def render_csv(svc: Services, report: Report) -> str:
    """The report as CSV for spreadsheets: one line per group, raw numbers, Chinese headers."""
    t = svc.texts
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([t.get("report.col_group"), t.get("report.col_key"), t.get("report.col_name"),
                     *(t.get(f"report.col_{f}") for f in CSV_FIELDS)])

    def line(group: str, key: str, name: str, f: Figures) -> list[Any]:
        return [csv_cell(group), csv_cell(key), csv_cell(name), *(_csv_value(c, getattr(f, c)) for c in CSV_FIELDS)]

    writer.writerow(line(t.get("report.total"), "", t.get("report.total"), report.total))
    for title, rows in (("report.by_grid", report.by_grid), ("report.by_worker", report.by_worker),
                        ("report.by_kind", report.by_kind)):
        for r in rows:
            writer.writerow(line(t.get(title), r.key, r.name, r.figures))
    return buf.getvalue()


# --- the command ----------------------------------------------------------------------------------


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from exc


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `communitybot report`."""
    parser.add_argument("--since", type=_date,
                        help="first local date (default: the last 30 days up to --until, as the console dashboard)")
    parser.add_argument("--until", type=_date, help="last local date, included (default: today)")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--output", metavar="FILE",
                        help="write to FILE instead of stdout (UTF-8; a CSV with a BOM, so Excel reads its Chinese)")


def _range(args: argparse.Namespace, tz: str) -> tuple[date, date]:
    """The dates asked for: until defaults to today (local), since to the console dashboard's
    default (the DEFAULT_DAYS days up to until), so both show the same figures out of the box."""
    from bot.clock import SystemClock
    from bot.console.dashboard import DEFAULT_DAYS

    until: date = args.until or SystemClock().now().astimezone(ZoneInfo(tz)).date()
    for given in (args.since, until):
        if given is not None and not EARLIEST <= given <= LATEST:
            raise ValueError(f"{given} is outside the dates the figures can be asked for ({EARLIEST} to {LATEST})")
    since: date = args.since or max(EARLIEST, until - timedelta(days=DEFAULT_DAYS - 1))
    if since > until:
        raise ValueError(f"--since {since} is after --until {until}")
    return since, until


async def _report_text(args: argparse.Namespace) -> str:
    from bot.services import open_services

    settings = load_settings()
    since, until = _range(args, settings.timezone)
    # The range on stderr too: json and csv carry no title, and a default range is easily mistaken.
    print(f"communitybot report: {since} to {until} (local dates, both included)", file=sys.stderr)
    svc = open_services(settings)
    try:
        report = await compute(svc, since, until)
        if args.format == "json":
            return json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n"
        if args.format == "csv":
            return render_csv(svc, report)
        return render_table(svc, report)
    finally:
        await svc.close()


def _write(path: str, text: str, fmt: str) -> None:
    """The report into a file: a CSV with a BOM (Excel), anything else plain UTF-8."""
    with open(path, "w", encoding=EXCEL_ENCODING if fmt == "csv" else "utf-8", newline="") as out:
        out.write(text)


def run_report(args: argparse.Namespace) -> int:
    """`communitybot report`: print the figures (or write them to --output); 2 with a message on
    a bad range or a file that cannot be written, 1 with one line saying why the database cannot be
    read (not reached, not created, not migrated)."""
    try:
        text = asyncio.run(_report_text(args))
    except SettingsError:
        raise  # said by the command line's boundary, as for every command
    except ValueError as exc:
        print(f"communitybot report: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the command's boundary: why the database cannot be read, in one line
        reason = describe_db_error(exc, load_settings().db_url, migrate_hint=True)
        if reason is None:
            raise
        print(f"communitybot report: {reason}", file=sys.stderr)
        return 1
    output = getattr(args, "output", None)
    if not output or output == "-":
        sys.stdout.write(text)
        return 0
    try:
        _write(output, text, args.format)
    except OSError as exc:
        print(f"communitybot report: cannot write {output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"communitybot report: written to {output}", file=sys.stderr)
    return 0
