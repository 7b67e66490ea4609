"""Helpers for conversation tests: read back tickets, reminders and dialog state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot.flows import state as flow_state
from bot.flows.state import DialogState
from bot.services import Services
from storage import fastsql
from storage.models import Booking, Message, OutboxItem, Reminder, Resident, Ticket

PHOTO = {"PicUrl": "http://example.invalid/lamp.jpg", "MediaId": "media-lamp-1"}
LOCATION = {"Location_X": 30.2741, "Location_Y": 120.1551, "Scale": 15, "Label": "望湖小区南门停车场"}


async def tickets_of(svc: Services, openid: str | None = None) -> list[Ticket]:
    """Tickets (of one resident), oldest first."""
    async with svc.sessions() as session:
        stmt = select(Ticket).order_by(Ticket.id)
        if openid is not None:
            stmt = stmt.where(Ticket.resident == openid)
        return list((await session.execute(stmt)).scalars())


async def bookings_of(svc: Services, openid: str) -> list[Booking]:
    """A resident's bookings, oldest first."""
    async with svc.sessions() as session:
        rows = await session.execute(select(Booking).where(Booking.resident == openid).order_by(Booking.id))
        return list(rows.scalars())


async def count(svc: Services, model: Any) -> int:
    """Rows in a table."""
    async with svc.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def reminders_of(svc: Services, kind: str) -> list[Reminder]:
    """Reminders of a kind, oldest first."""
    async with svc.sessions() as session:
        return list((await session.execute(select(Reminder).where(Reminder.kind == kind).order_by(Reminder.id))).scalars())


async def resident(svc: Services, openid: str) -> Resident | None:
    """The resident row."""
    async with svc.sessions() as session:
        return await session.scalar(select(Resident).where(Resident.openid == openid))


async def messages_of(svc: Services, openid: str) -> list[Message]:
    """A resident's conversation log, oldest first."""
    async with svc.sessions() as session:
        rows = await session.execute(select(Message).where(Message.openid == openid).order_by(Message.id))
        return list(rows.scalars())


async def group_posts(svc: Services) -> list[OutboxItem]:
    """Pushes queued for the staff group."""
    async with svc.sessions() as session:
        rows = await session.execute(select(OutboxItem).where(OutboxItem.channel == "group").order_by(OutboxItem.id))
        return list(rows.scalars())


async def dialog_of(svc: Services, openid: str) -> DialogState | None:
    """The resident's live dialog (none, or idle past flow_expire_s: None), as a message reads it."""
    async with svc.sessions() as session:
        return flow_state.live(svc, await flow_state.read(session, openid))


async def set_dialog(svc: Services, openid: str, state: DialogState | None) -> None:
    """Store a resident's dialog (None: none), as a message's transaction does."""
    async with svc.sessions() as session, session.begin():
        await fastsql.run(session, *flow_state.save_statement(openid, state))


async def answer_each(wx: Any, openid: str, opening: str, answers: dict[str, str], turns: int = 10) -> str:
    """A conversation from opening, each reply answered by the first of answers whose key it holds
    (keys in order); the first reply none answers."""
    reply = await wx.say(openid, opening)
    for _ in range(turns):
        said = next((a for k, a in answers.items() if k in reply), None)
        if said is None:
            return reply
        reply = await wx.say(openid, said)
    raise AssertionError(reply)
