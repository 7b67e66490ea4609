"""The console says 超期 where the figures do (bot.report.past_resolve_limit: the 办结 limit
missed — breached, resolved after it, or open past it) and 接单超时 for a missed 接单 limit
(响应率's), never the old 超时: in the tickets list's badges and its 时限 filter, on the ticket
page (badges, limit rows, the timeline's breach events) and in the queue. Both backends."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot import report, tickets
from bot.services import Services
from storage.models import Ticket, TicketEvent
from tests.staff_support import logged_in, make_ticket

Client = TestClient[Any, Any]


async def _cases(services: Services) -> dict[str, str]:
    """One ticket per way of missing (or keeping) a limit; returns their numbers by name."""
    now = services.clock.now()
    numbers = {name: await make_ticket(services, None, status="open", summary=f"{name} 楼道灯不亮")
               for name in ("breached", "accept", "open_past", "resolved_late", "in_time", "legacy")}
    async with services.sessions() as session, session.begin():
        rows = {t.number: t for t in await session.scalars(select(Ticket))}
        breached = rows[numbers["breached"]]  # escalated by its 办结 check
        breached.overdue, breached.status, breached.due_at = True, "escalated", now - timedelta(hours=2)
        await tickets.add_event(session, breached, "overdue", "system", now, note="超过办结时限未办结",
                                data={"limit": "resolve_breach"})
        accept = rows[numbers["accept"]]  # escalated by its 接单 check, its 办结 limit ahead
        accept.overdue, accept.status, accept.due_at = True, "escalated", now + timedelta(days=2)
        await tickets.add_event(session, accept, "overdue", "system", now, note="超过接单时限未接单",
                                data={"limit": "accept_breach"})
        rows[numbers["open_past"]].due_at = now - timedelta(minutes=1)  # its check not run yet
        late = rows[numbers["resolved_late"]]
        late.status, late.due_at, late.resolved_at = "resolved", now - timedelta(days=1), now - timedelta(hours=1)
        kept = rows[numbers["in_time"]]
        kept.status, kept.due_at, kept.resolved_at = "resolved", now + timedelta(days=1), now - timedelta(hours=1)
        legacy = rows[numbers["legacy"]]  # flagged before events named their limit: only 接单 is left
        legacy.overdue, legacy.status, legacy.due_at = True, "escalated", now + timedelta(days=1)
    return numbers


def _listed(page: str) -> set[str]:
    return set(re.findall(r'<td><a href="/console/tickets/([0-9-]+)">', page))


async def test_the_tickets_list_and_its_filter_follow_the_figures_rule(client: Client, services: Services) -> None:
    numbers = await _cases(services)
    await logged_in(client, "admin", services.settings.console_admin_password)
    page = await (await client.get("/console/tickets")).text()
    assert "超时" not in page.replace("接单超时", "")
    rows = {n: page[page.index(f'>{n}</a>'):page.index("</tr>", page.index(f'>{n}</a>'))] for n in numbers.values()}
    for name in ("breached", "open_past", "resolved_late"):
        assert '<span class="badge overdue">超期</span>' in rows[numbers[name]], name
    for name in ("accept", "legacy"):
        assert '<span class="badge overdue">接单超时</span>' in rows[numbers[name]], name
        assert "超期" not in rows[numbers[name]], name
    assert "badge overdue" not in rows[numbers["in_time"]]
    assert '<option value="resolve_breach" >超期</option>' in page and '<option value="accept_breach" >接单超时</option>' in page

    # the filter lists exactly what report.past_resolve_limit calls 超期
    async with services.sessions() as session:
        all_rows = list(await session.scalars(select(Ticket)))
        late = {e.ticket_id for e in await session.scalars(select(TicketEvent)) if report.breach(e, "resolve_breach")}
    rule = {t.number for t in all_rows if report.past_resolve_limit(t, services.clock.now(), late)}
    assert rule == {numbers[n] for n in ("breached", "open_past", "resolved_late")}
    for query in ("overdue=resolve_breach", "overdue=1"):  # the old checkbox's address still works
        got = await (await client.get(f"/console/tickets?{query}")).text()
        assert _listed(got) == rule and 'value="resolve_breach" selected' in got, query
    accept = await (await client.get("/console/tickets?overdue=accept_breach")).text()
    assert _listed(accept) == {numbers["accept"], numbers["legacy"]}
    assert _listed(await (await client.get("/console/tickets?overdue=nonsense")).text()) == set(numbers.values())


async def test_the_ticket_page_and_the_queue_name_the_limit_missed(client: Client, services: Services) -> None:
    numbers = await _cases(services)
    await logged_in(client, "admin", services.settings.console_admin_password)
    page = await (await client.get(f"/console/tickets/{numbers['breached']}")).text()
    due = page[page.index("<dt>办结时限</dt>"):page.index("</dd>", page.index("<dt>办结时限</dt>"))]
    assert '<span class="badge overdue">超期</span>' in due
    assert '<span class="ev">超期</span>' in page  # the breach in the timeline, by the limit it names
    assert "超时" not in page.replace("接单超时", "")
    page = await (await client.get(f"/console/tickets/{numbers['accept']}")).text()
    accept = page[page.index("<dt>接单时限</dt>"):page.index("</dd>", page.index("<dt>接单时限</dt>"))]
    assert '<span class="badge overdue">接单超时</span>' in accept and '<span class="ev">接单超时</span>' in page
    assert "超期" not in page
    page = await (await client.get(f"/console/tickets/{numbers['resolved_late']}")).text()
    assert '<span class="badge overdue">超期</span>' in page  # resolved after its limit: the figures' 超期

    queue = await (await client.get("/console")).text()
    assert "超时" not in queue.replace("接单超时", "")
    cards = {n: queue[queue.index(f'data-number="{n}"'):queue.index("</li>", queue.index(f'data-number="{n}"'))]
             for n in (numbers["breached"], numbers["accept"], numbers["legacy"])}
    assert '<span class="badge reason r-resolve_breach">超期</span>' in cards[numbers["breached"]]
    assert '<span class="badge reason r-accept_breach">接单超时</span>' in cards[numbers["accept"]]
    assert '<span class="badge reason r-accept_breach">接单超时</span>' in cards[numbers["legacy"]]
