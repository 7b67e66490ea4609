"""The dashboard: 响应率 / 解决率 / 满意率 (bot.report) and open / overdue counts per grid and worker."""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from bot import report
from bot.clock import local
from bot.console import queries
from bot.console.auth import ConsoleUser
from bot.console.chart import bar_chart
from bot.console.common import page, render, services

routes = web.RouteTableDef()
DEFAULT_DAYS = 30
MAX_DAYS = 366


def _date(raw: str | None, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return default


@routes.get("/console/dashboard")
@page("readonly")
async def dashboard(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Figures for a date range (default the last 30 days) and the current load, with charts."""
    svc = services(request)
    today = local(svc.clock.now(), svc.tz).date()
    until = _date(request.query.get("until"), today)
    since = _date(request.query.get("since"), until - timedelta(days=DEFAULT_DAYS - 1))
    if since > until:
        since, until = until, since
    since = max(since, until - timedelta(days=MAX_DAYS - 1))
    figures = await report.compute(svc, since, until)
    async with svc.sessions() as session:
        load = await queries.counts(session)
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
        "since": since.isoformat(), "until": until.isoformat(),
    })
