"""PostgreSQL pool health: a pooled connection that died while idle is replaced before use."""

from __future__ import annotations

import asyncpg
from sqlalchemy import text

from storage.db import make_engine, ping_after_idle, side_engine
from tests.conftest import PG_ADMIN_URL


async def _terminate(pid: int) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def test_connection_killed_while_idle_is_replaced(pg_url: str) -> None:
    """No ping on a busy pool's checkouts, but one that sat idle is pinged: a backend killed
    meanwhile (a database restart) costs no failed query."""
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    ping_after_idle(engine, idle_s=0.0)  # every checkin counts as idle long enough here
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await _terminate(pid)
        async with engine.connect() as conn:
            again = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert again != pid
    finally:
        await engine.dispose()


async def test_side_engine_is_one_per_engine_and_disposed_with_it(pg_url: str) -> None:
    """The ticket counter's side pool: one per engine, on the same database."""
    from storage.db import dispose

    engine = make_engine(pg_url)
    side = side_engine(engine)
    assert side_engine(engine) is side
    async with side.connect() as conn:
        assert (await conn.execute(text("SELECT current_database()"))).scalar_one() == pg_url.rsplit("/", 1)[1]
    await dispose(engine)
    assert side_engine(engine) is not side  # a new one after disposal
    await dispose(engine)
