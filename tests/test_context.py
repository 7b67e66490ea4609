"""Context.resident: the resident row read on arrival becomes an ORM object only when asked for,
and never overwrites what the session already holds."""

from __future__ import annotations

from sqlalchemy import select

from bot import dialog
from bot.flows.base import Context
from bot.inbound import Inbound
from bot.services import Services
from storage.models import Resident


async def test_the_row_becomes_the_sessions_object_on_first_use(services: Services) -> None:
    now = services.clock.now()
    inbound = Inbound(openid="oCtx1", msg_type="text", text="你好")
    async with services.sessions.begin() as session:
        row = await dialog.arrive(session, inbound, now)
        ctx = Context(services, session, row, inbound, now)
        assert ctx.profile.last_inbound_at == now and "resident" not in vars(ctx)  # read without an object
        ctx.resident.phone = "13800138000"
        assert ctx.resident is ctx.resident and ctx.profile is ctx.resident
    async with services.sessions() as session:
        stored = await session.scalar(select(Resident).where(Resident.openid == "oCtx1"))
        assert stored is not None and stored.phone == "13800138000" and stored.last_inbound_at == now


async def test_a_resident_the_session_already_changed_is_not_overwritten(services: Services) -> None:
    now = services.clock.now()
    inbound = Inbound(openid="oCtx2", msg_type="text", text="我的信息")
    async with services.sessions.begin() as session:
        row = await dialog.arrive(session, inbound, now)
        queried = await session.scalar(select(Resident).where(Resident.openid == "oCtx2"))
        assert queried is not None
        queried.building = "7"  # a flow's pending change, made on its own query's object
        ctx = Context(services, session, row, inbound, now)
        assert ctx.resident is queried and ctx.resident.building == "7"
    async with services.sessions() as session:
        stored = await session.scalar(select(Resident).where(Resident.openid == "oCtx2"))
        assert stored is not None and stored.building == "7"
