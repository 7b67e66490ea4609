"""storage.message_tx: one message's transaction — fixed statements and, when asked for, an ORM
session — commits together or not at all, on both databases; on inline SQLite a plain message
opens no session and a failure leaves the reply connection fit for the next message."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot import dialog
from bot.inbound import Inbound
from bot.services import Services
from storage.message_tx import InlineTx, SessionTx
from storage.models import Message, Resident, TicketCounter


class Boom(RuntimeError):
    """A flow's failure in the middle of a message."""


async def _count(svc: Services, openid: str) -> tuple[int, int]:
    async with svc.sessions() as session:
        residents = await session.scalar(select(func.count()).select_from(Resident).where(Resident.openid == openid))
        messages = await session.scalar(select(func.count()).select_from(Message).where(Message.openid == openid))
    return int(residents or 0), int(messages or 0)


async def test_fixed_statements_and_orm_writes_commit_together(services: Services) -> None:
    now = services.clock.now()
    inbound = Inbound(openid="oTx1", msg_type="text", text="你好")
    async with services.sessions.message() as tx:
        row = await dialog.arrive(tx, inbound, now)
        tx.session.add(TicketCounter(day="20991231", value=7))
        await tx.session.flush()
        resident = await tx.session.get(Resident, row["id"])  # the ORM sees the driver's rows
        assert resident is not None and resident.last_inbound_at == now
    assert await _count(services, "oTx1") == (1, 1)
    async with services.sessions() as session:
        assert (await session.get(TicketCounter, "20991231")) is not None


@pytest.mark.parametrize("with_session", [False, True])
async def test_a_failure_rolls_back_both_and_the_next_message_goes_through(
    services: Services, with_session: bool
) -> None:
    now = services.clock.now()
    inbound = Inbound(openid="oTx2", msg_type="text", text="楼道灯坏了")
    with pytest.raises(Boom):
        async with services.sessions.message() as tx:
            await dialog.arrive(tx, inbound, now)
            if with_session:
                tx.session.add(TicketCounter(day="20991230", value=1))
                await tx.session.flush()
            raise Boom
    assert await _count(services, "oTx2") == (0, 0)  # nothing half-written
    async with services.sessions() as session:
        assert (await session.get(TicketCounter, "20991230")) is None
    async with services.sessions.message() as tx:
        await dialog.arrive(tx, inbound, now)
    assert await _count(services, "oTx2") == (1, 1)


async def test_a_plain_message_opens_no_session_on_inline_sqlite(services: Services, backend: str) -> None:
    inbound = Inbound(openid="oTx3", msg_type="text", text="你好")
    async with services.sessions.message() as tx:
        await dialog.arrive(tx, inbound, services.clock.now())
        kind = type(tx)
        opened = tx.session_used if isinstance(tx, InlineTx) else True
    if backend == "embedded":
        assert kind is InlineTx and not opened
    else:
        assert kind is SessionTx  # PostgreSQL: messages run concurrently on pooled sessions


async def test_a_message_inside_a_session_of_the_same_task_takes_a_session(services: Services) -> None:
    """The reply connection holds one transaction at a time; a nested message gets a session."""
    async with services.sessions() as _outer, services.sessions.message() as tx:
        assert isinstance(tx, SessionTx)


async def test_whole_messages_through_handle_still_write_their_rows(services: Services) -> None:
    reply = await dialog.handle(services, Inbound(openid="oTx4", msg_type="text", text="你好"))
    assert reply
    assert await _count(services, "oTx4") == (1, 2)  # the message in and the reply


async def test_a_connection_that_cannot_roll_back_is_replaced(
    services: Services, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "embedded":
        assert services.sessions.reply is None  # PostgreSQL: pooled sessions, no reply connection
        return
    inbound = Inbound(openid="oTx5", msg_type="text", text="你好")
    async with services.sessions.message() as tx:
        await dialog.arrive(tx, inbound, services.clock.now())
    reply = services.sessions.reply
    assert reply is not None
    first = reply._raw

    async def broken(_self: InlineTx) -> None:
        raise OSError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(InlineTx, "rollback", broken)
        with pytest.raises(Boom):  # the message's own error, not the rollback's
            async with services.sessions.message() as tx:
                await dialog.arrive(tx, Inbound(openid="oTx6", msg_type="text", text="在吗"), services.clock.now())
                raise Boom
    assert reply._raw is None
    async with services.sessions.message() as tx:
        await dialog.arrive(tx, inbound, services.clock.now())
    assert reply._raw is not None and reply._raw is not first
    assert await _count(services, "oTx5") == (1, 2) and await _count(services, "oTx6") == (0, 0)


async def test_a_session_asked_for_but_unused_is_not_committed(services: Services, backend: str) -> None:
    """A survey check that finds nothing pending asks for ctx.session and never uses it."""
    inbound = Inbound(openid="oTx7", msg_type="text", text="你好")
    async with services.sessions.message() as tx:
        await dialog.arrive(tx, inbound, services.clock.now())
        session = tx.session
        assert not tx.session_used if isinstance(tx, InlineTx) else session is tx.session
    async with services.sessions.message() as tx:
        tx.session.add(TicketCounter(day="20991229", value=3))  # added, never flushed by hand
        assert isinstance(tx, SessionTx) or tx.session_used
    async with services.sessions() as check:
        assert (await check.get(TicketCounter, "20991229")) is not None
    assert await _count(services, "oTx7") == (1, 1)
