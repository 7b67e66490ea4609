"""The dashboard says 超期 for one thing — the 办结 limit missed, as the figures (bot.report) count
it — in its table, its current load (KPI, chart, per grid and owner) and its CSV: a ticket only
late to be taken (接单, 响应率's) is not 超期 now either. Both backends."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.services import Services
from storage.models import Ticket
from tests.staff_support import make_ticket
from tests.test_report_cases import dashboard

Client = TestClient[Any, Any]


async def test_the_current_load_counts_overdue_as_the_figures_do(
    client: Client, services: Services, monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = services.clock.now()
    past_resolve = await make_ticket(services, None, status="open", summary="5号楼楼道灯不亮")
    past_accept = await make_ticket(services, None, status="open", summary="3号楼门禁坏了")
    await make_ticket(services, None, status="open", summary="垃圾没清")
    async with services.sessions() as session, session.begin():
        rows = {t.number: t for t in await session.scalars(select(Ticket))}
        rows[past_resolve].overdue, rows[past_resolve].due_at = True, now - timedelta(hours=1)
        late = rows[past_accept]  # its 接单 limit missed (the flag is set), its 办结 limit still ahead
        late.overdue, late.accept_due_at, late.due_at = True, now - timedelta(hours=1), now + timedelta(days=2)
    day = now.date().isoformat()
    page = await dashboard(client, services, monkeypatch, day, day)
    assert re.search(r"其中超期 1 ·", page) and 'id="kpi-open">3<' in page
    assert "当前超期</th>" in page and "各网格 在办 / 超期" in page and "在办、超期为此刻的数字" in page
    for word in ("当前超时", "其中超时", "在办 / 超时", "在办与超时", "在办、超时"):
        assert word not in page, word
    csv = await (await client.get(f"/console/dashboard.csv?since={day}&until={day}")).text()
    assert "超期" in csv.splitlines()[0] and "超时" not in csv.splitlines()[0]
