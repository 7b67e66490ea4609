"""One message's transaction: fixed statements on the driver, an ORM session only when asked for.

Most messages (a step of a flow, a greeting, the menu) write four fixed rows — the resident
touched, the message in, the reply, the idle nudge — and need no ORM at all; a few (a ticket, a
status query, a survey answer) need a session. Opening, committing and closing an `AsyncSession`
costs ~0.5 ms of CPU on its own (measured: 0.70 ms for the four statements through a session
against 0.18 ms on the driver), a large part of a plain message. So:

    async with svc.sessions.message() as tx:
        await fastsql.run_many(tx, [...])      # on the driver, in the transaction
        tx.session                             # an AsyncSession in the same transaction, on first use

On the embedded default (SQLite run inline, storage.sqlite_inline) the transaction is held on one
connection kept for the reply path: fixed statements run on sqlite3 itself, and `tx.session` is an
AsyncSession bound to that same connection, so ORM writes and fixed statements commit together or
not at all. Elsewhere (PostgreSQL, where messages run concurrently on pooled connections) `tx` is
an ordinary session's transaction, as before.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage import fastsql
from storage.fastsql import Outcome, Prepared
from storage.sqlite_inline import InlineConnection

log = logging.getLogger(__name__)


class SessionTx:
    """A message's transaction as an ordinary session's (PostgreSQL; SQLite not run inline)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def run_many(self, batch: Sequence[tuple[Prepared, dict[str, Any]]]) -> list[Outcome]:
        return await fastsql.run_many(self.session, batch)

    async def run_together(self, batch: Sequence[tuple[Prepared, dict[str, Any]]]) -> Outcome:
        return await fastsql.run_together(self.session, batch)


class InlineTx:
    """A message's transaction on the reply path's own SQLite connection (one at a time: the
    session factory's lock is held around it)."""

    def __init__(self, conn: AsyncConnection, raw: sqlite3.Connection) -> None:
        self._conn = conn
        self._raw = raw
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        """An AsyncSession in this transaction, made on first use."""
        if self._session is None:
            self._session = fastsql.DriverSession(bind=self._conn, expire_on_commit=False)
            # fastsql.run(session, ...) from code that holds only the session (the ticket path)
            # runs on sqlite3 here too, not through the session's connection (~60 µs, not ~170).
            self._session.info[fastsql.INLINE_TX] = self
        return self._session

    @property
    def session_used(self) -> bool:
        """Whether the session was asked for and did anything (a query, an object added)."""
        session = self._session
        return session is not None and (
            session.in_transaction() or bool(session.identity_map) or bool(session.new) or bool(session.deleted)
        )

    async def run_many(self, batch: Sequence[tuple[Prepared, dict[str, Any]]]) -> list[Outcome]:
        # Statements run inline on sqlite3 (microseconds); a pending ORM change that a statement
        # depends on is flushed by the flow first (as fastsql on a session requires too).
        return fastsql.run_on_driver(self._raw, self._conn.dialect, batch)

    async def run_together(self, batch: Sequence[tuple[Prepared, dict[str, Any]]]) -> Outcome:
        return fastsql.run_on_driver(self._raw, self._conn.dialect, batch)[-1]

    # A session asked for but never used (a survey check that found none pending) is left alone:
    # its commit and close alone cost ~0.15 ms.
    async def commit(self) -> None:
        if self._session is not None and self.session_used:
            # Objects only changed (a booking's provider, a ticket's status) are written on the
            # driver; the session's commit then has nothing left to flush.
            await fastsql.flush(self._session)
            await self._session.commit()  # commits the same sqlite3 transaction
        if self._raw.in_transaction:
            self._raw.commit()

    async def rollback(self) -> None:
        try:
            if self._session is not None and self.session_used:
                await self._session.rollback()
        finally:
            if self._raw.in_transaction:
                self._raw.rollback()

    async def close(self) -> None:
        if self._session is not None and self.session_used:
            await self._session.close()  # its objects are detached: nothing lazy-loads later


class ReplyConnection:
    """The connection the reply path keeps on an inline SQLite database, opened on first use and
    replaced when a transaction on it could not be ended cleanly."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None
        self._raw: sqlite3.Connection | None = None
        self.inline: bool | None = None  # unknown until the first connection is looked at

    async def _open(self) -> tuple[AsyncConnection, sqlite3.Connection] | None:
        if self._conn is not None and self._raw is not None:
            return self._conn, self._raw
        conn = await self.engine.connect()
        driver = (await conn.get_raw_connection()).driver_connection
        if not isinstance(driver, InlineConnection):
            await conn.close()
            self.inline = False
            return None
        self.inline = True
        self._conn, self._raw = conn, driver.sqlite
        return conn, driver.sqlite

    async def usable(self) -> bool:
        """Whether the database is SQLite run inline, so messages take this connection."""
        return await self._open() is not None

    async def discard(self) -> None:
        conn, self._conn, self._raw = self._conn, None, None
        if conn is not None:
            try:
                await conn.invalidate()
            finally:
                await conn.close()

    async def close(self) -> None:
        conn, self._conn, self._raw = self._conn, None, None
        if conn is not None:
            await conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[InlineTx]:
        """An InlineTx, committed on success and rolled back on error (the caller holds the lock)."""
        opened = await self._open()
        assert opened is not None, "transaction() is for inline SQLite only"
        tx = InlineTx(*opened)
        try:
            yield tx
            await tx.commit()
        except BaseException:
            try:
                await tx.rollback()
            except Exception:  # the connection is in no state to reuse: the next message opens another
                log.warning("reply connection replaced after a failed rollback", exc_info=True)
                await tx.close()
                await self.discard()
            raise
        finally:
            await tx.close()
