"""The ticket list (全部工单) as a CSV download: the rows the clerk's filters select, for the
weekly meeting's spreadsheet. Excel-readable (UTF-8 with a BOM), phones masked as in pushes
(138****5678: the file leaves the console), the resident's words kept from running as a formula
(a cell starting = + - @ is prefixed with '), and every export audited with what it selected."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from urllib.parse import quote

from aiohttp import web

from bot import report
from bot.clock import local
from bot.console import queries
from bot.console.auth import ConsoleUser
from bot.console.common import SECURITY_HEADERS, page, services
from bot.console.labels import Labels
from bot.notices import safe_text
from bot.staff_actions import audit
from bot.texts import Texts
from storage.models import Ticket

routes = web.RouteTableDef()
EXPORT_LIMIT = 10_000  # rows in one file at most: the newest (as the list orders them); the page says so
COLUMNS = ("number", "created", "kind", "category", "urgency", "status", "missed", "summary", "building", "grid",
           "assignee", "due", "resolved", "rating", "reporters", "parent")


def _filter_words(texts: Texts, filters: queries.Filters, grids: dict[str, str], people: dict[str, str]) -> str:
    """What the export selected, in the list's own words (类型：投诉报修；状态：已派单), for its audit
    row; a search is masked as the log masks phones."""
    labels = Labels(texts, "UTC")
    said: list[tuple[str, str]] = [
        ("kind", labels.kind(filters.kind) if filters.kind else ""),
        ("status", labels.status(filters.status) if filters.status else ""),
        ("grid", grids.get(filters.grid, filters.grid)),
        ("assignee", texts.get("console.export.nobody") if filters.assignee == "-" else people.get(filters.assignee, filters.assignee)),
        ("missed", labels.reason(filters.missed) if filters.missed else ""),
        ("queue", texts.get("console.fields.yes") if filters.needs_person else ""),
        ("q", safe_text(filters.q)),
        ("of", filters.of),
    ]
    words = [texts.get(f"console.export.filter_{k}", value=v) for k, v in said if v]
    return "；".join(words) or texts.get("console.export.filter_none")


def render_csv(texts: Texts, tz: str, rows: list[Ticket], missed: dict[int, tuple[str, ...]],
               parents: dict[int, str], names: dict[str, str]) -> str:
    """The tickets as CSV lines under Chinese headers: what the list shows and a little more (办结时限,
    办结时间, 评价), local times, phones masked, every cell safe from formulas."""
    labels = Labels(texts, tz)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([texts.get(f"console.export.col_{c}") for c in COLUMNS])

    def when(at: datetime | None) -> str:
        return local(at, tz).strftime("%Y-%m-%d %H:%M") if at is not None else ""

    for t in rows:
        rating = t.satisfaction_label or ""
        if rating and t.rating_comment:
            rating = f"{rating}：{t.rating_comment}"
        values: dict[str, Any] = {
            "number": t.number, "created": when(t.created_at), "kind": labels.kind(t.kind),
            "category": t.category or "", "urgency": labels.urgency(t.urgency),
            "status": labels.status(t.status), "missed": "、".join(labels.reason(m) for m in missed.get(t.id, ())),
            "summary": t.summary or "", "building": t.building or "",
            "grid": names.get(t.grid, t.grid) if t.grid else "",
            "assignee": names.get(t.assignee, t.assignee) if t.assignee else "",
            "due": when(t.due_at), "resolved": when(t.resolved_at), "rating": rating,
            "reporters": t.reporters if (t.reporters or 0) > 1 else "",
            "parent": parents.get(t.parent_id, "") if t.parent_id else "",
        }
        writer.writerow([report.csv_cell(safe_text(v)) if isinstance(v, str) else v for v in (values[c] for c in COLUMNS)])
    return buf.getvalue()


@routes.get("/console/tickets.csv")
@page("readonly")
async def tickets_csv(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """The ticket list as the filters select it (every page, at most EXPORT_LIMIT), as a CSV
    download Excel opens; audited (who, what was selected, how many rows)."""
    svc = services(request)
    filters = queries.Filters.parse(request.query)
    now = svc.clock.now()
    async with svc.sessions() as session:
        rows, total = await queries.ticket_list(session, filters, now, limit=EXPORT_LIMIT)
        missed = await queries.missed_limits(session, rows, now)
        parents = await queries.parent_numbers(session, rows)
        grids, people = await queries.grids_and_people(session)
        names = await queries.names(session)
    body = render_csv(svc.texts, svc.tz, rows, missed, parents, names).encode(report.EXCEL_ENCODING)
    chosen = _filter_words(svc.texts, filters, {g.id: g.name for g in grids}, {p.id: p.name for p in people})
    async with svc.sessions() as session, session.begin():
        audit(session, user.username, "ticket.export", "", now,
              {"filter": chosen, "rows": len(rows), "total": total})
    stamp = local(now, svc.tz).strftime("%Y%m%d-%H%M")
    name = svc.texts.get("console.export.file_name", stamp=stamp)
    return web.Response(body=body, headers={
        **SECURITY_HEADERS, "Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
        "Content-Disposition": f"attachment; filename=\"tickets-{stamp}.csv\"; filename*=UTF-8''{quote(name)}",
    })
