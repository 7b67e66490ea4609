"""The service container handed to every entry point: settings, clock, database, state, texts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import Clock, SystemClock
from bot.settings import Settings
from bot.texts import Texts
from storage.db import SessionFactory, dispose, make_engine, make_sessionmaker
from storage.state import RedisStateStore, SqliteStateStore, SqlStateStore, StateStore


@dataclass
class Services:
    """Everything a request handler, a flow or a background task needs, opened once per process."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: SessionFactory
    store: StateStore
    texts: Texts
    extras: dict[str, Any] = field(default_factory=dict)  # per-feature singletons (roster cache …)

    @property
    def tz(self) -> str:
        """The community's timezone name."""
        return self.settings.timezone

    async def close(self) -> None:
        """Close the store and dispose of the engine."""
        await self.store.close()
        await self.sessions.close()
        await dispose(self.engine)


def open_services(settings: Settings, clock: Clock | None = None, texts: Texts | None = None) -> Services:
    """Open the engine and the state store the settings name: Redis when CB_REDIS_URL is set,
    else a SQLite file of its own beside the embedded database, else the database's kv table."""
    clock = clock or SystemClock()
    engine = make_engine(settings.db_url)
    sessions = make_sessionmaker(engine)
    store: StateStore
    if settings.redis_url:
        store = RedisStateStore.from_url(settings.redis_url)
    elif engine.dialect.name == "sqlite":
        settings.var_path.mkdir(parents=True, exist_ok=True)
        store = SqliteStateStore(str(settings.var_path / "state.db"), now=clock.now)
    else:
        store = SqlStateStore(engine, sessions, now=clock.now)
    return Services(settings, clock, engine, sessions, store, texts or Texts())
