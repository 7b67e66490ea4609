"""WAL checkpoints of the embedded files run on a thread, not inside a message's commit."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.services import Services
from storage import checkpoint
from tests.conftest import WeChat


@pytest.fixture
def backend() -> str:
    return "embedded"


def test_a_checkpoint_copies_the_log_back(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("CREATE TABLE t (x TEXT)")
        for i in range(200):
            db.execute("INSERT INTO t VALUES (?)", ("x" * 500 + str(i),))
        busy, pages, done = checkpoint.checkpoint(path)
        assert busy == 0 and pages > 10 and done == pages
        assert db.execute("SELECT count(*) FROM t").fetchone() == (200,)
    finally:
        db.close()


async def test_every_connection_keeps_only_a_backstop(services: Services) -> None:
    async with services.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection.sqlite  # type: ignore[union-attr]
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone() == (checkpoint.BACKSTOP_PAGES,)
    store_db = services.store._db  # type: ignore[attr-defined]
    assert store_db.execute("PRAGMA wal_autocheckpoint").fetchone() == (checkpoint.BACKSTOP_PAGES,)


async def test_the_serving_app_checkpoints_both_files_on_a_thread(
    monkeypatch: pytest.MonkeyPatch, services: Services, tmp_path: Path
) -> None:
    import threading

    from aiohttp.test_utils import TestServer

    from bot.app import create_app, sqlite_files

    seen: list[tuple[str, str, tuple[int, int, int]]] = []
    original = checkpoint.checkpoint

    def recording(path: Any) -> tuple[int, int, int]:
        result = original(path)
        seen.append((str(path), threading.current_thread().name, result))
        return result

    monkeypatch.setattr(checkpoint, "checkpoint", recording)
    monkeypatch.setattr(checkpoint, "CHECKPOINT_EVERY_S", 0.05)
    async with TestClient(TestServer(create_app(services.settings, services=services))) as client:
        wx = WeChat(client, services.settings)
        for i in range(5):
            await wx.say(f"oCheckpoint{i}", "你好")
        await asyncio.sleep(0.3)
    files = sqlite_files(services)
    assert len(files) == 2 and files[0].endswith(".db") and files[1].endswith("state.db")
    assert {path for path, _, _ in seen} == set(files)
    assert all(thread != threading.main_thread().name for _, thread, _ in seen)
    assert all(done <= pages for _, _, (_, pages, done) in seen)  # a message may write meanwhile
    # Once the messages stopped, their pages were all copied back.
    assert any(busy == 0 and 0 < done == pages for _, _, (busy, pages, done) in seen)
