"""The embedded database's driver runs inline on the event loop, and its calls other than
statements skip SQLAlchemy's greenlet round trip (storage.sqlite_inline)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import exc, select, text

from storage.db import make_engine, make_sessionmaker
from storage.migrate import upgrade_async
from storage.models import Resident
from storage.sqlite_inline import InlineConnection, Ready, _InlineAdapted


async def test_connections_are_inline_and_behave_like_sqlalchemys(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}"
    await upgrade_async(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    now = datetime.now(timezone.utc)
    try:
        # A bare connection's execute (the health check's) still awaits once per statement, as
        # AsyncConnection requires.
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 41 + 1"))).scalar_one() == 42
            raw = await conn.get_raw_connection()
            assert type(raw.dbapi_connection) is _InlineAdapted
            assert isinstance(raw.driver_connection, InlineConnection)
        async with sessions.begin() as session:
            session.add(Resident(openid="oInline", created_at=now, updated_at=now))
        # Errors come out as SQLAlchemy's, and the failed transaction leaves nothing behind.
        with pytest.raises(exc.IntegrityError):
            async with sessions.begin() as session:
                session.add(Resident(openid="oInline2", created_at=now, updated_at=now))
                await session.flush()
                session.add(Resident(openid="oInline", created_at=now, updated_at=now))
                await session.flush()
        async with sessions() as session:
            openids = list(await session.scalars(select(Resident.openid).order_by(Resident.openid)))
            assert openids == ["oInline"]
    finally:
        await engine.dispose()


async def test_ready_is_awaitable_for_code_that_awaits_it() -> None:
    assert await Ready(7) == 7
