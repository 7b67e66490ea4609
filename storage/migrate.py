"""Alembic migrations run from code: `communitybot db upgrade` and the test fixtures."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration pointing at our scripts and the given database URL."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_dir(url: str) -> None:
    """Create the directory of a SQLite file (the database file itself is created on connecting)."""
    if url.startswith("sqlite"):
        db_file = url.split("///", 1)[-1]
        if db_file and db_file != ":memory:":
            Path(db_file).parent.mkdir(parents=True, exist_ok=True)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at url to revision (blocking; call from a thread inside a loop)."""
    _sqlite_dir(url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(url), revision)
        return
    # Alembic's env runs its own event loop: inside a running loop, do it on a worker thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, alembic_config(url), revision).result()


async def upgrade_async(url: str, revision: str = "head") -> None:
    """Migrate from inside a running event loop (Alembic's env runs its own loop)."""
    await asyncio.to_thread(upgrade, url, revision)


async def upgrade_reporting(url: str) -> tuple[str | None, str | None]:
    """Migrate to the newest schema; the revisions before (None: never migrated) and after."""
    _sqlite_dir(url)
    before = await current_revision(url)
    await upgrade_async(url)
    return before, await current_revision(url)


def head_revision() -> str:
    """The newest schema revision the migrations know."""
    return str(ScriptDirectory.from_config(alembic_config("")).get_current_head())


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def current_revision(url: str) -> str | None:
    """The revision the database at url is at; None when it was never migrated."""
    from storage.db import make_engine

    engine = make_engine(url, inline_sqlite=False)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        await engine.dispose()
