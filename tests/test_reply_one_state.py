"""On the embedded SQLite backend a message's transaction begins at its first statement, a write
(dialog.arrive), so every decision of the reply reads one state, under the write lock: nothing it
reads can change before it commits. pysqlite begins a transaction only before a write, and reads
before one run outside it (storage/db.py says why it stays so); this holds the reply path to
writing first. SQLite only: the property is of SQLite's transactions."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from bot.services import Services
from tests.conftest import WeChat


@pytest.fixture
def backend() -> str:
    return "embedded"


async def test_a_message_reads_nothing_outside_its_transaction(wx: WeChat, services: Services) -> None:
    outside: list[str] = []

    def traced(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        raw = dbapi_conn.driver_connection.sqlite
        raw.set_trace_callback(lambda sql: outside.append(sql) if not raw.in_transaction else None)

    assert services.sessions.reply is not None
    await services.sessions.reply.close()  # reopened, and traced, by the next message
    event.listen(services.engine.sync_engine, "checkout", traced)
    try:
        for said in ("你好", "3号楼楼道灯坏了", "晚上一直不亮", "我的工单", "人工"):
            assert await wx.say("o_one_state", said)
    finally:
        event.remove(services.engine.sync_engine, "checkout", traced)
    reads = [sql for sql in outside if sql.lstrip().upper().startswith("SELECT")]
    assert reads == []
