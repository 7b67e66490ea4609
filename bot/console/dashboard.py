"""The dashboard: 响应率 / 解决率 / 满意率 (bot.report) and open / overdue counts per grid and worker."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import report, tickets
from bot.clock import local
from bot.console import queries
from bot.console.auth import ConsoleUser
from bot.console.chart import bar_chart
from bot.console.common import SECURITY_HEADERS, page, render, services
from bot.staff_actions import audit
from bot.texts import Texts
from storage.models import Ticket, TicketEvent

routes = web.RouteTableDef()
DEFAULT_DAYS = 30
MAX_DAYS = 366
EARLIEST, LATEST = report.EARLIEST, report.LATEST  # the dates the figures can be asked for


def _date(texts: Texts, raw: str | None, default: date, notices: list[str]) -> date:
    """A date from the query, or default with a notice saying why (unreadable, out of range)."""
    if not raw:
        return default
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        notices.append(texts.get("console.dashboard.bad_date", raw=raw[:20]))
        return default
    if not EARLIEST <= day <= LATEST:
        notices.append(texts.get("console.dashboard.date_out_of_range", raw=raw[:20], earliest=EARLIEST.isoformat(),
                                 latest=LATEST.isoformat()))
        return default
    return day


def _range(request: web.Request, notices: list[str]) -> tuple[date, date]:
    """The dates asked for (since, until), default the last DEFAULT_DAYS days, at most MAX_DAYS,
    with a notice for what was changed."""
    svc = services(request)
    today = local(svc.clock.now(), svc.tz).date()
    until = _date(svc.texts, request.query.get("until"), today, notices)
    since = _date(svc.texts, request.query.get("since"), max(EARLIEST, until - timedelta(days=DEFAULT_DAYS - 1)), notices)
    if since > until:
        since, until = until, since
    if since < until - timedelta(days=MAX_DAYS - 1):
        since = until - timedelta(days=MAX_DAYS - 1)
        notices.append(svc.texts.get("console.dashboard.range_cut", days=MAX_DAYS, since=since.isoformat(),
                                     until=until.isoformat()))
    return since, until


def month_ranges(today: date) -> list[tuple[str, date, date]]:
    """The dashboard's quick ranges ('this' month so far, the whole of 'last' month) — the street
    ranks communities by month, and a clerk reading the month report picked both days by hand."""
    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    return [
        ("this", first, today),
        ("last", last_month_end.replace(day=1), last_month_end),
    ]


@routes.get("/console/dashboard.csv")
@page("readonly")
async def dashboard_csv(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """The dashboard's figures as a CSV download (`communitybot report --format csv`), with a
    UTF-8 BOM so Excel shows its Chinese headers when a clerk double-clicks it; audited."""
    svc = services(request)
    since, until = _range(request, [])
    figures = await report.compute(svc, since, until)
    body = report.render_csv(svc, figures).encode(report.EXCEL_ENCODING)
    async with svc.sessions() as session, session.begin():
        audit(session, user.username, "report.download", f"{since}..{until}", svc.clock.now(),
              {"since": since.isoformat(), "until": until.isoformat()})
    name = svc.texts.get("console.dashboard.csv_name", since=since.isoformat(), until=until.isoformat())
    return web.Response(body=body, headers={
        **SECURITY_HEADERS, "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f"attachment; filename=\"figures-{since}-{until}.csv\"; filename*=UTF-8''{quote(name)}",
    })


async def _load(session: AsyncSession, now: datetime) -> queries.Counts:
    """The open tickets per grid and owner, their overdue ones counted as the figures count 超期
    (bot.report: the 办结 limit missed — breached, or open past it), not by the ticket's overdue
    flag, which a missed 接单 limit (响应率's) also sets."""
    load = await queries.counts(session, now)
    open_ = list(await session.scalars(
        select(Ticket).where(Ticket.status.in_(tickets.ACTIVE), Ticket.parent_id.is_(None))
    ))
    breached = {e.ticket_id for e in await session.scalars(
        select(TicketEvent).where(TicketEvent.action == "overdue", TicketEvent.ticket_id.in_([t.id for t in open_]))
    ) if report.breach(e, "resolve_breach")}
    late = [t for t in open_ if report.past_resolve_limit(t, now, breached)]

    def recount(rows: list[queries.Load], key: str) -> list[queries.Load]:
        return [replace(r, overdue=sum(1 for t in late if (getattr(t, key) or "-") == r.key)) for r in rows]

    grids = recount(load.grids, "grid")
    return replace(load, grids=grids, workers=recount(load.workers, "assignee"), overdue=sum(g.overdue for g in grids))


@routes.get("/console/dashboard")
@page("readonly")
async def dashboard(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Figures for a date range (default the last 30 days) and the current load, with charts."""
    svc = services(request)
    notices: list[str] = []
    since, until = _range(request, notices)
    figures = await report.compute(svc, since, until)
    async with svc.sessions() as session:
        load = await _load(session, svc.clock.now())
    L = svc.texts
    rates = bar_chart(
        [(r.name, [r.figures.response_rate, r.figures.resolution_rate, r.figures.satisfaction_rate]) for r in figures.by_grid],
        [L.get("console.dashboard.response"), L.get("console.dashboard.resolution"), L.get("console.dashboard.satisfaction")],
        maximum=1.0, percent=True,
    )
    load_chart = bar_chart(
        [(g.name or L.get("console.dashboard.no_grid"), [float(g.open), float(g.overdue)]) for g in load.grids],
        [L.get("console.dashboard.open"), L.get("console.dashboard.overdue")],
    )
    return await render(request, "dashboard.html", {
        "report": figures, "load": load, "rates_chart": rates, "load_chart": load_chart,
        "load_by_grid": {g.key: g for g in load.grids}, "load_by_worker": {w.key: w for w in load.workers},
        "since": since.isoformat(), "until": until.isoformat(), "notices": notices, "note": L.get("report.note"),
        "months": [(which, a.month, a.isoformat(), b.isoformat(), (a, b) == (since, until))
                   for which, a, b in month_ranges(local(svc.clock.now(), svc.tz).date())],
    })
