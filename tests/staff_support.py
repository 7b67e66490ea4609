"""Helpers for the staff-side tests: a resident, a ticket in a given state, the demo roster."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot import roster, tickets
from bot.services import Services
from storage.models import AuditLog, OutboxItem, Resident


async def load_roster(svc: Services) -> None:
    """Load the demo roster (config/roster.toml)."""
    await roster.import_roster(svc, svc.settings.roster_path)


async def make_resident(
    svc: Services, openid: str, *, last_inbound_at: datetime | None = None, phone: str | None = "13812345678",
) -> None:
    """A resident who last wrote at last_inbound_at (default: now)."""
    now = svc.clock.now()
    async with svc.sessions() as session, session.begin():
        session.add(Resident(
            openid=openid, phone=phone, building="3", subscribed=True,
            last_message_at=last_inbound_at or now, last_inbound_at=last_inbound_at or now, window_opened_by="message", created_at=now, updated_at=now,
        ))


def filed_category(kind: str, summary: str, fields: dict[str, Any] | None = None) -> str | None:
    """The category the flows file a ticket of this kind and summary under: a complaint's is the
    classifier's name for what the words report (照明, 电梯, 水电气暖 …: config/intents.toml
    [slots.category]; its other_category when the words name none), a booking's is its service
    (上门护理), a hand-off and the rest have none — never a code such as "repair"."""
    if kind == "complaint":
        from bot.flows.complaint import OTHER
        from bot.intents.classifier import get_classifier

        return str(get_classifier().extract_slots(summary).get("category") or OTHER)
    if kind == "elderly_service":
        service = (fields or {}).get("service")
        return str(service) if service else summary.split("｜")[0]
    return None


async def make_ticket(
    svc: Services, openid: str | None, *, kind: str = "complaint", status: str = "escalated",
    summary: str = "3号楼楼道灯坏了", fields: dict[str, Any] | None = None, building: str | None = "3",
    category: str | None = None, urgency: str = "normal",
) -> str:
    """A ticket created open or escalated (a hand-off starts escalated); returns its number. Its
    category, unless given, is the one the flow files it under (filed_category: 照明 for a
    stairwell light, the service for a booking, none for a hand-off); a report's given one must be
    one the complaint flow files under (wecom_driver.report_categories), never a code."""
    from tests.wecom_driver import report_categories

    if kind == "complaint" and category is not None and category not in report_categories():
        raise ValueError(f"category {category!r} is none a report is filed under: {sorted(report_categories())}")
    async with svc.sessions() as session, session.begin():
        ticket = await tickets.create_ticket(
            session, kind=kind, resident=openid, fields=fields or {"description": summary}, now=svc.clock.now(),
            tz=svc.tz, actor="test", summary=summary, building=building, status=status, urgency=urgency,
            category=category if category is not None else filed_category(kind, summary, fields),
        )
        return ticket.number


async def outbox_rows(svc: Services, channel: str | None = None) -> list[OutboxItem]:
    """Every queued push (of a channel), oldest first."""
    async with svc.sessions() as session:
        stmt = select(OutboxItem).order_by(OutboxItem.id)
        if channel:
            stmt = stmt.where(OutboxItem.channel == channel)
        return list((await session.execute(stmt)).scalars())


async def audit_rows(svc: Services, action: str | None = None) -> list[AuditLog]:
    """Audit rows (of an action), oldest first."""
    async with svc.sessions() as session:
        stmt = select(AuditLog).order_by(AuditLog.id)
        if action:
            stmt = stmt.where(AuditLog.action == action)
        return list((await session.execute(stmt)).scalars())


async def count(svc: Services, model: Any) -> int:
    """Rows in a table."""
    async with svc.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF_FIELD.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def login(client: TestClient[Any, Any], username: str, password: str) -> ClientResponse:
    """Open the login page and submit it (without following the redirect)."""
    page = await client.get("/console/login")
    token = csrf_of(await page.text())
    return await client.post(
        "/console/login", data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
    )


async def logged_in(client: TestClient[Any, Any], username: str, password: str) -> str:
    """Log in and return the session's CSRF token (read from the queue page)."""
    resp = await login(client, username, password)
    assert resp.status == 303, await resp.text()
    page = await client.get("/console")
    assert page.status == 200
    return csrf_of(await page.text())
