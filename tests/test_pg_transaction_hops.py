"""A message's transaction on PostgreSQL is begun by its first statement, not by session.begin():
one hop fewer into SQLAlchemy's greenlet per message (each ~0.05–0.1 ms of CPU), counted on the
real database; what it writes commits or rolls back as before (tests/test_message_tx.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import engine as async_engine
from sqlalchemy.ext.asyncio import session as async_session

from bot import dialog
from bot.inbound import Inbound
from bot.services import Services
from storage.message_tx import SessionTx


def _count_hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every hop of the async session and connection into SQLAlchemy's greenlet."""
    hops: list[str] = []
    for module in (async_session, async_engine):
        real: Callable[..., Any] = module.greenlet_spawn

        async def counted(fn: Callable[..., Any], *args: Any, _real: Callable[..., Any] = real, **kw: Any) -> Any:
            hops.append(getattr(fn, "__qualname__", repr(fn)))
            return await _real(fn, *args, **kw)

        monkeypatch.setattr(module, "greenlet_spawn", counted)
    return hops


@pytest.mark.parametrize("backend", ["pg_redis"], indirect=True)
async def test_a_plain_message_transaction_takes_three_hops(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    inbound = Inbound(openid="oHops", msg_type="text", text="你好")
    async with services.sessions.message() as tx:  # a first message: the pool's connection made
        await dialog.arrive(tx, inbound, services.clock.now())
    hops = _count_hops(monkeypatch)
    async with services.sessions.message() as tx:
        assert isinstance(tx, SessionTx)
        await dialog.arrive(tx, inbound, services.clock.now())
    assert len(hops) == 3, hops  # the connection, the commit, the close (and no begin)
