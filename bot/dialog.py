"""One message in: record it, lock the resident, and decide the reply.

The flow engine (bot/flows/) takes over here once a flow is running; until then a resident gets
the welcome on following, and the service menu otherwise.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import metrics
from bot.inbound import Inbound
from bot.services import Services
from storage.models import Message, Resident


async def touch_resident(session: AsyncSession, inbound: Inbound, now: datetime) -> Resident:
    """The resident row for this openid (created on first contact), with the 48-hour window opened."""
    resident = await session.scalar(select(Resident).where(Resident.openid == inbound.openid))
    if resident is None:
        resident = Resident(openid=inbound.openid, subscribed=True, created_at=now, updated_at=now)
        session.add(resident)
    if inbound.event == "unsubscribe":
        resident.subscribed = False
    elif inbound.event != "view":
        # Messages, follows, scans and clicks open the customer-service window.
        resident.subscribed = True
        resident.last_inbound_at = now
        resident.window_opened_by = "message" if not inbound.is_event else inbound.event
    resident.updated_at = now
    return resident


def log_inbound(session: AsyncSession, inbound: Inbound, now: datetime) -> None:
    """Append the resident's message to the conversation log."""
    content = inbound.text or (f"[{inbound.event}] {inbound.event_key}".strip() if inbound.is_event else "")
    session.add(
        Message(
            openid=inbound.openid, direction="in", msg_type=inbound.msg_type if not inbound.is_event
            else f"event:{inbound.event}", content=content, media=inbound.media or None, created_at=now,
        )
    )


def log_outbound(session: AsyncSession, openid: str, text: str, now: datetime, ticket_id: int | None = None) -> None:
    """Append the bot's passive reply to the conversation log."""
    session.add(Message(openid=openid, direction="out", msg_type="reply", content=text, ticket_id=ticket_id, created_at=now))


def menu_text(svc: Services) -> str:
    """The service menu, as residents read it."""
    return svc.texts.get("menu.text")


async def handle(svc: Services, inbound: Inbound) -> str | None:
    """Handle one inbound message for a resident, one at a time per resident; returns the reply."""
    async with svc.store.lock(f"resident:{inbound.openid}"):
        now = svc.clock.now()
        async with svc.sessions() as session, session.begin():
            await touch_resident(session, inbound, now)
            log_inbound(session, inbound, now)
            reply = _reply(svc, inbound)
            metrics.MESSAGES.labels(inbound.msg_type, "-").inc()
            if reply is not None:
                log_outbound(session, inbound.openid, reply, now)
        return reply


def _reply(svc: Services, inbound: Inbound) -> str | None:
    if inbound.event == "subscribe":
        return svc.texts.get("welcome.subscribe", menu=menu_text(svc))
    if inbound.event in ("unsubscribe", "view", "location"):
        return None
    if inbound.msg_type == "voice" and not inbound.text:
        return svc.texts.get("voice.unrecognized")
    return menu_text(svc)
