"""The async engine and session factory, with SQLite tuned for one busy process."""

from __future__ import annotations

import asyncio
import contextvars
import os
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, exc, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage import dead_peer
from storage.checkpoint import BACKSTOP_PAGES
from storage.fastsql import DriverSession, Transaction
from storage.message_tx import ReplyConnection, SessionTx
from storage.sqlite_inline import creator_for, in_sqlite_transaction, use_inline_await


def make_engine(url: str, *, inline_sqlite: bool = True, **kwargs: Any) -> AsyncEngine:
    """An async engine for url; SQLite gets WAL, a busy timeout, foreign keys, and runs inline
    on the event loop (storage.sqlite_inline) unless inline_sqlite is False."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:" and inline_sqlite:
            kwargs.setdefault("async_creator", creator_for(path))
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            use_inline_await(dbapi_conn)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")  # storage.checkpoint
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine.sync_engine, "savepoint")
        def _sqlite_savepoint(conn: Any, _name: Any) -> None:
            # pysqlite's own transaction control emits BEGIN only before an INSERT/UPDATE/DELETE:
            # a SAVEPOINT opened before the transaction's first write became the transaction
            # itself, and its RELEASE committed it — a later rollback of the outer transaction
            # (an outage command that failed after it, a due-reminder batch) no longer undid it
            # (SQLAlchemy's pysqlite docs, "Serializable isolation / Savepoints / Transactional
            # DDL"). The transaction is begun here first, deferred as pysqlite's own BEGIN is.
            # Reads before a transaction's first write still run outside it (the recipe that
            # begins every transaction explicitly made them hold a snapshot that a write of
            # another process then invalidates: "database is locked" at once, busy timeout or not).
            # A message's dialog reads nothing before its first write (dialog.arrive's INSERT
            # begins it): its decisions see one state, under the write lock. Other sessions read
            # before writing, but this process's sessions take turns (SessionFactory), so only
            # another process (`roster import`) could commit between. BEGIN IMMEDIATE at the first
            # read would not fail at once, but every read-only session would take the write lock:
            # a nested session of the same task (api.one_ticket asks who the caller is in one)
            # would then wait for its own task until the busy timeout, and this process's reads
            # would queue behind another process's write instead of reading the last commit.
            if not in_sqlite_transaction(conn.connection.dbapi_connection):
                conn.exec_driver_sql("BEGIN")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    if make_url(url).get_driver_name() == "asyncpg" and "async_creator" not in kwargs:
        kwargs["async_creator"] = dead_peer.asyncpg_creator(url, kwargs.pop("connect_args", {}))
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.driver == "asyncpg":
        @event.listens_for(engine.sync_engine, "connect")
        def _watch_peer(dbapi_conn: Any, _record: Any) -> None:
            dead_peer.watch_asyncpg(dbapi_conn.driver_connection)

    ping_after_idle(engine)
    return engine


PING_AFTER_IDLE_S = 5.0


def ping_after_idle(engine: AsyncEngine, idle_s: float = PING_AFTER_IDLE_S) -> None:
    """Check a pooled connection before use only when it has sat idle for idle_s: one that died
    meanwhile (a database restart) is replaced instead of failing a message.

    SQLAlchemy's pool_pre_ping pings on every checkout, a round trip that cost ~1.7 ms of CPU per
    message under load (PostgreSQL, 124 → 159 msg/s without it); under load connections go back
    and forth within milliseconds and need no ping. A connection that dies while busy still fails
    that one use, and the pool then replaces every connection older than the failure."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_s:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception:  # what a dead connection raises differs by driver
            alive = False
        if not alive:
            raise exc.DisconnectionError("connection died while idle")


_held: contextvars.ContextVar[int] = contextvars.ContextVar("sqlite_session_depth", default=0)


class SessionFactory:
    """Opens AsyncSessions: `async with svc.sessions() as session, session.begin(): ...`.

    On SQLite (the embedded default, one process) sessions of different tasks take turns through
    an asyncio lock, so writers queue in memory instead of in SQLite's sleeping busy handler; a
    task that opens a session inside its own session is let through (re-entrant per task).
    On PostgreSQL sessions run concurrently.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.maker = async_sessionmaker(engine, class_=DriverSession, expire_on_commit=False)
        self._lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self.reply = ReplyConnection(engine) if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        if self._lock is None or _held.get() > 0:
            async with self.maker() as session:
                yield session
            return
        async with self._lock:
            token = _held.set(_held.get() + 1)
            try:
                async with self.maker() as session:
                    yield session
            finally:
                _held.reset(token)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        """A session with a transaction begun, committed on success."""
        async with self() as session, session.begin():
            yield session

    @asynccontextmanager
    async def message(self) -> AsyncIterator[Transaction]:
        """One message's transaction (storage.message_tx), committed on success: on inline SQLite
        the reply path's own connection, with a session only when one is asked for; elsewhere,
        and inside another session of the same task, an ordinary session's."""
        if self.reply is None or self.reply.inline is False or _held.get() > 0:
            # Begun by its first use (one hop into SQLAlchemy's greenlet fewer than session.begin());
            # a failure leaves it to close(), which rolls it back.
            async with self() as session:
                yield SessionTx(session)
                await session.commit()
            return
        assert self._lock is not None
        async with self._lock:
            token = _held.set(_held.get() + 1)
            try:
                if await self.reply.usable():
                    async with self.reply.transaction() as tx:
                        yield tx
                else:
                    async with self.maker() as session, session.begin():
                        yield SessionTx(session)
            finally:
                _held.reset(token)

    async def close(self) -> None:
        """Close the reply path's own connection, if one is open."""
        if self.reply is not None:
            await self.reply.close()


MAX_ROW_ID = 2**63 - 1  # BigId: PostgreSQL's bigint, SQLite's INTEGER


def row_id(said: str) -> int | None:
    """A row id said in a path (digits), None when no row can have it: a number past the largest
    id goes to the database as a value it cannot hold (an error there, not "no such row")."""
    value = int(said)
    return value if value <= MAX_ROW_ID else None


def make_sessionmaker(engine: AsyncEngine) -> SessionFactory:
    """The session factory for engine (sessions keep loaded attributes after commit)."""
    return SessionFactory(engine)


def is_postgres(engine: AsyncEngine) -> bool:
    """Whether the engine talks to PostgreSQL (row locks with SKIP LOCKED are available)."""
    return engine.dialect.name == "postgresql"


_SIDE: weakref.WeakKeyDictionary[AsyncEngine, AsyncEngine] = weakref.WeakKeyDictionary()


def side_engine(engine: AsyncEngine) -> AsyncEngine:
    """A small second pool on engine's database, for short transactions of their own (the ticket
    counter) run while a session of engine is open. Taken from engine's own pool they could
    deadlock: every connection held by a session waiting for one more."""
    side = _SIDE.get(engine)
    if side is None:
        side = make_engine(engine.url.render_as_string(hide_password=False), pool_size=2, max_overflow=2)
        _SIDE[engine] = side
    return side


def safe_url(url: str) -> str:
    """url with its password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "(unreadable URL)"


def _names_db_file(filename: str, url: str) -> bool:
    """Whether filename is url's SQLite file (with its -wal/-journal files) or a directory
    above it; a server's database has no file."""
    try:
        database = make_url(url).database
    except (exc.ArgumentError, ValueError):
        return False
    if not url.startswith("sqlite") or not database:
        return False
    db_file, named = os.path.abspath(database), os.path.abspath(filename)
    return named.startswith(db_file) or db_file.startswith(named.rstrip(os.sep) + os.sep)


def describe_db_error(error: BaseException, url: str, *, migrate_hint: bool = False) -> str | None:
    """One line telling an operator why the database at url could not be used (a missing role or
    database, a server that does not answer, a file that cannot be written), or None when error
    is not about reaching the database. migrate_hint: a statement the database refused (a table
    missing) also says to run `communitybot db upgrade`; a server not reached does not."""
    where = safe_url(url)
    cause: BaseException = getattr(error, "orig", None) or error
    kind = type(cause).__name__
    if type(cause).__module__.startswith("asyncpg"):
        hint = {
            "InvalidCatalogNameError": "create the database first (README, Production)",
            "InvalidAuthorizationSpecificationError": "create the database user first (README, Production)",
            "InvalidPasswordError": "check the password in CB_DATABASE_URL",
        }.get(kind, "")
        return f"database {where}: {cause}" + (f"; {hint}" if hint else "")
    if isinstance(cause, OSError):
        if cause.filename is not None and not _names_db_file(str(cause.filename), url):
            return None  # another file (a config file the command reads), not the database
        if url.startswith("sqlite"):
            return f"cannot use the SQLite file of {where}: {cause.strerror or cause} (is its directory writable?)"
        return f"cannot reach the database server of {where}: {cause.strerror or cause}; is it running?"
    if isinstance(error, exc.DBAPIError):
        text = str(cause).splitlines()[0] if str(cause) else kind
        if url.startswith("sqlite") and "unable to open" in text:
            text += " (is its directory writable?)"
        elif migrate_hint:
            text += "; is it migrated (`communitybot db upgrade`)?"
        return f"database {where}: {text}"
    if isinstance(error, exc.SQLAlchemyError):
        return f"database {where}: {str(error).splitlines()[0] or kind}"
    return None


async def dispose(engine: AsyncEngine) -> None:
    """Close engine's connections, and its side pool's."""
    side = _SIDE.pop(engine, None)
    if side is not None:
        await side.dispose()
    await engine.dispose()
