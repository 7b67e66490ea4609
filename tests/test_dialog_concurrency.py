"""A process keeps at most TRANSACTIONS_AT_ONCE messages inside their transaction; the others
wait their turn and are all answered."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bot import dialog
from bot.inbound import Inbound
from bot.services import Services


async def test_messages_wait_their_turn_for_a_transaction(
    services: Services, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setattr(dialog, "TRANSACTIONS_AT_ONCE", 2)
    real_route = dialog.route
    inside = 0
    most = 0
    entered = 0

    async def counting_route(ctx: Any, state: Any) -> Any:
        nonlocal inside, most, entered
        inside += 1
        entered += 1
        most = max(most, inside)
        try:
            for _ in range(5):
                await asyncio.sleep(0)  # let the other messages run as far as they may
            # On PostgreSQL another message reaches this point after its own round trips, which
            # take longer than a few turns of the loop on a busy machine: wait for it (bounded).
            deadline = time.monotonic() + 2.0
            while backend != "embedded" and inside < 2 and entered < 10 and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
                most = max(most, inside)
            return await real_route(ctx, state)
        finally:
            inside -= 1

    monkeypatch.setattr(dialog, "route", counting_route)
    replies = await asyncio.gather(*(
        dialog.handle(services, Inbound(openid=f"oTurn{i}", msg_type="text", text="你好", msg_id=str(i)))
        for i in range(10)
    ))
    assert all(r and services.texts.get("menu.text") in r for r in replies)
    # On SQLite the sessions take turns anyway (one at a time); PostgreSQL's run side by side.
    assert most == (1 if backend == "embedded" else 2)
