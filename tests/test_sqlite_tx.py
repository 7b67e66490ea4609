"""Savepoints on the embedded SQLite backend are inside their transaction, as on PostgreSQL: one
released before the transaction's first write is undone with it when the transaction rolls back
(the outage commands, the console's outage changes and the due-reminder run rely on that), and a
message's fixed statements and ORM writes roll back together. Both backends; the SQLite engine
not run inline (aiosqlite's thread) too."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.services import Services
from storage import fastsql
from storage.db import make_engine, make_sessionmaker
from storage.models import TicketCounter


class Boom(RuntimeError):
    """A failure after the savepoint was released."""


async def _counter(svc: Services, day: str) -> int | None:
    async with svc.sessions() as session:
        row = await session.get(TicketCounter, day)
        return None if row is None else row.value


async def test_released_savepoint_before_any_write_rolls_back_with_its_transaction(services: Services) -> None:
    """The savepoint opens before the transaction's first write: its RELEASE must not commit."""
    with pytest.raises(Boom):
        async with services.sessions() as session, session.begin():
            await session.scalar(select(TicketCounter.value).where(TicketCounter.day == "20990101"))
            async with session.begin_nested():
                session.add(TicketCounter(day="20990101", value=1))
            raise Boom
    assert await _counter(services, "20990101") is None


async def test_released_savepoint_commits_with_its_transaction(services: Services) -> None:
    async with services.sessions() as session, session.begin():
        async with session.begin_nested():
            session.add(TicketCounter(day="20990102", value=2))
        with pytest.raises(Boom):
            async with session.begin_nested():
                session.add(TicketCounter(day="20990103", value=3))
                await session.flush()
                raise Boom
    assert await _counter(services, "20990102") == 2
    assert await _counter(services, "20990103") is None


async def test_fixed_statements_in_a_session_roll_back_with_it(services: Services) -> None:
    """storage.fastsql runs on the session's DB-API connection: inside the session's transaction."""
    bump = fastsql.Prepared(
        TicketCounter.__table__.insert().values(day="20990104", value=4)  # type: ignore[attr-defined]
    )
    with pytest.raises(Boom):
        async with services.sessions() as session, session.begin():
            await session.scalar(select(TicketCounter.value).where(TicketCounter.day == "x"))
            await fastsql.run(session, bump, {})
            raise Boom
    assert await _counter(services, "20990104") is None
    async with services.sessions() as session, session.begin():
        await fastsql.run(session, bump, {})
    assert await _counter(services, "20990104") == 4


async def test_message_fixed_statements_and_session_roll_back_together(services: Services) -> None:
    """A message's transaction (the reply path's own connection on SQLite): a failure after a
    fixed statement and an ORM write leaves neither."""
    bump = fastsql.Prepared(
        TicketCounter.__table__.insert().values(day="20990105", value=5)  # type: ignore[attr-defined]
    )
    with pytest.raises(Boom):
        async with services.sessions.message() as tx:
            await fastsql.run(tx, bump, {})
            async with tx.session.begin_nested():
                tx.session.add(TicketCounter(day="20990106", value=6))
            raise Boom
    assert await _counter(services, "20990105") is None
    assert await _counter(services, "20990106") is None
    async with services.sessions.message() as tx:
        await fastsql.run(tx, bump, {})
        tx.session.add(TicketCounter(day="20990106", value=6))
    assert await _counter(services, "20990105") == 5
    assert await _counter(services, "20990106") == 6


@pytest.mark.parametrize("inline", [True, False])
async def test_a_savepoint_first_is_undone_with_its_transaction_inline_or_on_aiosqlite(
    tmp_path: Path, inline: bool,
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'tx.db'}", inline_sqlite=inline)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions.begin() as session:
            await session.execute(text("CREATE TABLE t (v INTEGER)"))
        with pytest.raises(Boom):
            async with sessions.begin() as session:
                async with session.begin_nested():
                    await session.execute(text("INSERT INTO t VALUES (1)"))
                raise Boom
        async with sessions.begin() as session:
            async with session.begin_nested():
                await session.execute(text("INSERT INTO t VALUES (2)"))
        async with sessions() as session:
            assert list(await session.scalars(text("SELECT v FROM t"))) == [2]
    finally:
        await sessions.close()
        await engine.dispose()
