"""Fixed Core statements run straight on the DB-API cursor of a session's connection.

Through an AsyncSession every statement pays SQLAlchemy's execution machinery (execution context,
cache lookup, result wrapping): ~0.15–0.25 ms of CPU per statement, measured, against ~0.02 ms for
the same statement on sqlite3 itself. The reply path runs the same few statements for every
message (the resident, the message log, the idle nudge), so they are compiled here once per
dialect and executed on the session's own connection, inside its transaction:

    TOUCH = Prepared(update(t).where(...).values(...).returning(...))
    rows = await run(session, TOUCH, {"v_openid": openid, ...})   # or run(tx, ...) on a message's
                                                                   # transaction (storage.message_tx)

On the embedded default a message's transaction runs them on sqlite3 itself (`run_on_driver`).

Parameters and results go through the columns' own type processors (UTC datetimes, JSON), so the
values are the ones SQLAlchemy would have written and read. Statements use named bind
parameters. A DB-API error that means the connection is gone invalidates it, as
SQLAlchemy does for its own statements, so the pool replaces it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import (Connection, Float, Numeric, Select, Table, TextClause, TextualSelect, bindparam, inspect, select,
                        update)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import InstanceState, Mapper, Session, configure_mappers, make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import UpdateBase

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    fixed: dict[str, Any]  # values the statement itself holds (literals in its WHERE clause)
    bind: tuple[Processor, ...]
    columns: tuple[str, ...]  # RETURNING columns, in order
    result: tuple[Processor, ...]


class Prepared:
    """An INSERT/UPDATE/DELETE (optionally RETURNING) or a SELECT of columns, compiled once per
    dialect; or a text() statement with typed bind parameters, for SQL that Core spells per
    dialect (ON CONFLICT), with .columns(...) when it returns rows. Every parameter is a named
    bindparam (no expanding IN lists)."""

    def __init__(self, statement: UpdateBase | Select[Any] | TextClause | TextualSelect) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        """The SQL string, parameter order and type processors for dialect."""
        done = self._compiled.get(dialect.name)
        if done is not None:
            return done
        compiled = self.statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())  # one per placeholder (a name may repeat)
        fixed = {n: b.value for n, b in compiled.binds.items() if not b.required}
        bind = tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)
        returning = [] if isinstance(self.statement, TextClause) else list(self.statement.exported_columns)
        columns = tuple(c.key for c in returning)
        result = tuple(_result_processor(c.type, dialect) for c in returning)
        done = _Compiled(compiled.string, names, fixed, bind, columns, result)
        self._compiled[dialect.name] = done
        return done


# PostgreSQL's type codes of a double precision float and a numeric (the DB-API's column type).
_PG_FLOAT8, _PG_NUMERIC = 701, 1700


def _result_processor(type_: Any, dialect: Dialect) -> Processor:
    """How a value of type_ read from dialect's driver becomes the column's value. A numeric
    type's processor depends on the column's type code in the result's description (asyncpg's
    refuses none), which here is the one the column's own type is created with."""
    coltype = None
    if dialect.name == "postgresql" and isinstance(type_, Numeric):
        coltype = _PG_FLOAT8 if isinstance(type_, Float) else _PG_NUMERIC
    return cast(Processor, type_.dialect_impl(dialect).result_processor(dialect, coltype))


@dataclass
class Outcome:
    """What one statement did: its RETURNING rows (column → value) and its row count."""

    rows: list[dict[str, Any]]
    rowcount: int


def _args(c: _Compiled, params: dict[str, Any]) -> tuple[Any, ...]:
    args = []
    for name, proc in zip(c.names, c.bind):
        value = params[name] if name in params else c.fixed[name]
        args.append(value if proc is None or value is None else proc(value))
    return tuple(args)


def _outcome(c: _Compiled, cursor: Any) -> Outcome:
    return _outcome_of(c, cursor.fetchall() if c.columns else (), cursor.rowcount)


def _outcome_of(c: _Compiled, records: Sequence[Any], rowcount: int) -> Outcome:
    """A statement's RETURNING rows (read through the columns' result processors) and row count."""
    rows: list[dict[str, Any]] = []
    if c.columns:
        for raw in records:
            rows.append({
                name: (value if proc is None else proc(value))
                for name, value, proc in zip(c.columns, raw, c.result)
            })
    return Outcome(rows, rowcount)


class Counter:
    """Statements run here since the process started (bench/ticket_bench.py counts them with
    the engine's own, which never see these); their SQL too, while watched()."""

    executed = 0
    seen: list[str] | None = None


@contextmanager
def watched() -> Iterator[list[str]]:
    """The SQL of every fixed statement run while inside, in order (the engine's listeners never
    see them): for tests and bench tools that look at what a message sent."""
    outer, Counter.seen = Counter.seen, []
    try:
        yield Counter.seen
    finally:
        Counter.seen = outer


def _execute(conn: Connection, prepared: Prepared, params: dict[str, Any]) -> Outcome:
    c = prepared.compiled(conn.dialect)
    return _execute_sql(conn, c.sql, _args(c, params), c)


def _execute_sql(conn: Connection, sql: str, args: tuple[Any, ...], answers: _Compiled) -> Outcome:
    """Run sql on the connection's DB-API cursor; its rows are read as answers' RETURNING columns."""
    dialect = conn.dialect
    Counter.executed += 1
    if Counter.seen is not None:
        Counter.seen.append(sql)
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(sql, args)
        return _outcome(answers, cursor)
    except dialect.loaded_dbapi.Error as exc:
        if dialect.is_disconnect(exc, dbapi_conn, cursor):
            _invalidate_pool(conn, exc)
            conn.invalidate(exc)
        raise
    finally:
        cursor.close()


def _invalidate_pool(conn: Connection | None, exc: BaseException) -> None:
    """A connection found gone: the pool's connections opened before it are replaced at their next
    checkout, as SQLAlchemy does when its own statement finds one gone (Connection.
    _handle_dbapi_exception). They died with it (the database restarted or was unreachable), and
    each would otherwise fail one more message once the database is back."""
    fairy = getattr(conn, "_dbapi_connection", None) if conn is not None else None
    if fairy is not None and conn is not None:
        conn.engine.pool._invalidate(fairy, exc, _checkin=False)


def _run_all(conn: Connection, batch: Sequence[tuple[Prepared, dict[str, Any]]]) -> list[Outcome]:
    return [_execute(conn, prepared, params) for prepared, params in batch]


def run_on_driver(raw: sqlite3.Connection, dialect: Dialect,
                  batch: Sequence[tuple[Prepared, dict[str, Any]]]) -> list[Outcome]:
    """Run prepared statements in order on a sqlite3 connection itself (storage.message_tx's
    inline transaction), compiled and typed for dialect."""
    done = []
    Counter.executed += len(batch)
    for prepared, params in batch:
        c = prepared.compiled(dialect)
        if Counter.seen is not None:
            Counter.seen.append(c.sql)
        cursor = raw.execute(c.sql, _args(c, params))
        try:
            done.append(_outcome(c, cursor))
        finally:
            cursor.close()
    return done


_PLACEHOLDER = re.compile(r"\$(\d+)")
_TOGETHER: dict[tuple[str, tuple[int, ...]], str] = {}


def _together_sql(dialect: Dialect, batch: Sequence[Prepared]) -> str:
    """One PostgreSQL statement running batch: every statement but the last as a data-modifying
    WITH query, the last as the main statement (its RETURNING rows and row count are the
    result). Placeholders ($n) are renumbered to follow one another; built once per batch shape."""
    key = (dialect.name, tuple(id(p) for p in batch))
    done = _TOGETHER.get(key)
    if done is not None:
        return done
    parts: list[str] = []
    offset = 0
    for prepared in batch:
        c = prepared.compiled(dialect)
        shift = offset
        parts.append(_PLACEHOLDER.sub(lambda m: f"${int(m.group(1)) + shift}", c.sql))
        offset += len(c.names)
    *first, last = parts
    done = "WITH " + ", ".join(f"w{i} AS ({sql})" for i, sql in enumerate(first)) + " " + last
    _TOGETHER[key] = done
    return done


def _run_together(conn: Connection, batch: Sequence[tuple[Prepared, dict[str, Any]]]) -> Outcome:
    dialect = conn.dialect
    if len(batch) == 1 or dialect.name != "postgresql" or dialect.paramstyle != "numeric_dollar":
        return _run_all(conn, batch)[-1]
    sql = _together_sql(dialect, [prepared for prepared, _ in batch])
    args = tuple(a for prepared, params in batch for a in _args(prepared.compiled(dialect), params))
    return _execute_sql(conn, sql, args, batch[-1][0].compiled(dialect))


class Transaction(Protocol):
    """What a message's transaction offers (storage.message_tx): its session, and fixed statements."""

    @property
    def session(self) -> AsyncSession: ...

    async def run_many(self, batch: Sequence[tuple[Prepared, dict[str, Any]]]) -> list[Outcome]: ...

    async def run_together(self, batch: Sequence[tuple[Prepared, dict[str, Any]]]) -> Outcome: ...


async def run(target: AsyncSession | Transaction, prepared: Prepared, params: dict[str, Any]) -> Outcome:
    """Run one prepared statement in target's transaction."""
    return (await run_many(target, [(prepared, params)]))[0]


def session_of(target: AsyncSession | Transaction) -> AsyncSession:
    """target's session: itself, or a message transaction's (which makes it on first use: ask
    only once it is needed)."""
    return target if isinstance(target, AsyncSession) else target.session


# session.info key of the message transaction (storage.message_tx.InlineTx) a session belongs to.
INLINE_TX = "fastsql.inline_tx"


async def run_many(target: AsyncSession | Transaction,
                   batch: Sequence[tuple[Prepared, dict[str, Any]]]) -> list[Outcome]:
    """Run prepared statements in order in target's transaction (one hop into the driver):
    a session's, or a message transaction's (storage.message_tx). A session made by a message's
    inline transaction runs them on that transaction's driver connection, as the transaction does.
    Pending ORM changes are not flushed first: flush when a statement depends on them."""
    tx = _transaction_of(target)
    if tx is not None:
        return await tx.run_many(batch)
    assert isinstance(target, AsyncSession)
    conn = await _connection(target)
    adapted = _asyncpg_of(conn)
    if adapted is not None:
        dialect = conn.dialect
        items = []
        for prepared, params in batch:
            c = prepared.compiled(dialect)
            items.append((c.sql, _args(c, params), c))
        return await _run_on_asyncpg(conn, adapted, items)
    return await conn.run_sync(_run_all, batch)


def _transaction_of(target: AsyncSession | Transaction) -> Transaction | None:
    """The message transaction that runs target's statements: target itself, or the inline one a
    session was made by; None for an ordinary session (they run on its connection)."""
    if not isinstance(target, AsyncSession):
        return target
    inline: Transaction | None = target.info.get(INLINE_TX)
    return inline


async def run_together(target: AsyncSession | Transaction,
                       batch: Sequence[tuple[Prepared, dict[str, Any]]]) -> Outcome:
    """Run independent write statements in target's transaction and return the last one's outcome.

    On PostgreSQL they go as one statement, in one round trip: the others as data-modifying WITH
    queries, which run on the same snapshot, in no defined order, and do not see one another's
    changes — so the statements must not depend on each other (none may read or write a row
    another writes, and serial ids say nothing of their order), and only the last's rows and
    count come back (a count of a RETURNING statement is the driver's: use its rows). Elsewhere
    (SQLite inline: no round trips to save) they run one after the other. A failure of any
    fails all, as in one transaction."""
    if not batch:
        raise ValueError("run_together needs at least one statement")
    tx = _transaction_of(target)
    if tx is not None:
        return await tx.run_together(batch)
    assert isinstance(target, AsyncSession)
    conn = await _connection(target)
    adapted = _asyncpg_of(conn)
    if adapted is not None and len(batch) > 1 and conn.dialect.paramstyle == "numeric_dollar":
        dialect = conn.dialect
        sql = _together_sql(dialect, [prepared for prepared, _ in batch])
        args = tuple(a for prepared, params in batch for a in _args(prepared.compiled(dialect), params))
        return (await _run_on_asyncpg(conn, adapted, [(sql, args, batch[-1][0].compiled(dialect))]))[0]
    if adapted is not None:
        return (await run_many(target, batch))[-1]
    return await conn.run_sync(_run_together, batch)


# --- PostgreSQL: fixed statements on asyncpg itself ---------------------------------------------------
#
# Through conn.run_sync every batch crosses into a greenlet, and every statement in it goes through
# SQLAlchemy's adapted DB-API cursor, which awaits asyncpg by switching back out of the greenlet:
# ~0.13 ms of CPU per statement more than asyncpg's own prepared statement (measured: four fixed
# statements in a message's transaction 1.59 → 1.09 ms). The statements are the same prepared
# statements, taken from the same per-connection cache, in the same transaction, started the same
# lazy way the adapter starts it (asyncpg's transaction, begun before the first statement), with
# errors translated by the adapter into its DB-API errors and a connection gone invalidated as
# before. It reads the adapter's internals (SQLAlchemy 2.0's asyncpg dialect); any other driver,
# or a connection not checked out, goes through run_sync as before.

_CONNECTION = "fastsql.connection"  # session.info: (its transaction, its AsyncConnection in it)


async def _connection(session: AsyncSession) -> AsyncConnection:
    """session.connection(), kept for the session's transaction: asking the session again costs a
    hop into a greenlet (~0.1 ms of CPU on PostgreSQL) for the connection it already holds."""
    sync = session.sync_session
    kept = session.info.get(_CONNECTION)
    if kept is not None:
        tx, conn = kept
        if tx is sync._transaction and tx.is_active and not conn.closed and not conn.invalidated:
            return conn  # type: ignore[no-any-return]
    conn = await session.connection()
    session.info[_CONNECTION] = (sync._transaction, conn)
    return conn


_STATUS_COUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


def _asyncpg_of(conn: AsyncConnection) -> Any | None:
    """The SQLAlchemy asyncpg adapter conn holds checked out, or None (another driver, or none held:
    getting one is I/O that belongs in run_sync)."""
    if conn.dialect.driver != "asyncpg":
        return None
    sync = conn.sync_connection
    fairy = getattr(sync, "_dbapi_connection", None) if sync is not None else None
    if fairy is None or sync is None or sync.invalidated:
        return None
    adapted = fairy.dbapi_connection
    needed = ("_execute_mutex", "_started", "_start_transaction", "_prepare", "_handle_exception")
    return adapted if all(hasattr(adapted, name) for name in needed) else None


async def _run_on_asyncpg(
    conn: AsyncConnection, adapted: Any, items: Sequence[tuple[str, tuple[Any, ...], _Compiled]]
) -> list[Outcome]:
    dialect = conn.dialect
    asof = getattr(dialect, "_invalidate_schema_cache_asof", 0)
    done: list[Outcome] = []
    failed: BaseException | None = None
    async with adapted._execute_mutex:
        for sql, args, answers in items:
            Counter.executed += 1
            if Counter.seen is not None:
                Counter.seen.append(sql)
            try:
                try:
                    if not adapted._started:
                        await adapted._start_transaction()  # translates its own errors
                    statement, _ = await adapted._prepare(sql, asof)
                    records = await statement.fetch(*args)
                except dialect.loaded_dbapi.Error:
                    raise
                except Exception as error:
                    adapted._handle_exception(error)  # raises it as the adapter's DB-API error
                    raise
            except dialect.loaded_dbapi.Error as exc:
                failed = exc
                break
            count = _STATUS_COUNT.match(statement.get_statusmsg() or "")
            done.append(_outcome_of(answers, records, int(count.group(1)) if count else -1))
    if failed is not None:
        if dialect.is_disconnect(failed, adapted, None):
            _invalidate_pool(conn.sync_connection, failed)
            await conn.invalidate(failed)
        raise failed
    return done



def _pending_session(target: AsyncSession | Transaction) -> AsyncSession | None:
    """The session of target's transaction when it holds ORM changes not yet flushed; None when
    it has none, or was never opened (a message's inline transaction makes it on first use:
    asking for it here would make one)."""
    if isinstance(target, AsyncSession):
        session = target
    elif getattr(target, "session_used", True):
        session = target.session
    else:
        return None
    return session if session.new or session.dirty or session.deleted else None


async def read(target: AsyncSession | Transaction, prepared: Prepared, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one fixed read in target's transaction, seeing what an ORM query would: the
    session's pending changes are flushed first, as its autoflush does (and only then: a message
    that used no session opens none)."""
    pending = _pending_session(target)
    if pending is not None:
        await flush(pending)
    return (await run(target, prepared, params)).rows


T = TypeVar("T")


def loaded(cls: type[T], values: dict[str, Any]) -> T:
    """An instance of the mapped class cls holding values as if read from its row, made without
    the ORM's constructor (which fires an attribute event for each value: ~25 µs for a ticket's
    columns, ~10 µs for an event's or a push's). For rows just written by a fixed statement: not
    in any session; values must name mapped attributes only."""
    manager = _MANAGERS.get(cls)
    if manager is None:
        configure_mappers()  # as the constructor's first use does: the attributes' instrumentation
        manager = _MANAGERS[cls] = inspect(cls).class_manager
    instance: T = manager.new_instance()
    instance.__dict__.update(values)
    return instance


_MANAGERS: dict[type[Any], Any] = {}


def adopt(session: AsyncSession, cls: type[T], values: dict[str, Any]) -> T:
    """The row of cls just read or written on the driver (every mapped column's value, the primary
    key's included) as an object in session, as if a query had loaded it: clean, so only later
    changes are flushed (as an UPDATE). When the session holds that row's object already, that
    object is the one, changes and all, as session.get would return it."""
    mapper = inspect(cls)
    found = held(session, cls, *(values[c.key] for c in mapper.primary_key))
    if found is not None:
        return found
    needed = _ATTRIBUTES.get(cls)
    if needed is None:
        needed = _ATTRIBUTES[cls] = frozenset(a.key for a in mapper.column_attrs)
    if not needed <= values.keys():  # an attribute left out would be loaded lazily: no I/O there
        raise ValueError(f"{cls.__name__} row without {sorted(needed - values.keys())}")
    instance = loaded(cls, values)
    make_transient_to_detached(instance)
    session.sync_session.add(instance)
    return instance


_ATTRIBUTES: dict[type[Any], frozenset[str]] = {}


def held(session: AsyncSession, cls: type[T], *key: Any) -> T | None:
    """The object of cls with that primary key when session holds it already (no SQL), else None."""
    sync = session.sync_session
    return cast("T | None", sync.identity_map.get(sync.identity_key(cls, key)))


_BY_KEY: dict[type[Any], tuple[Prepared, tuple[str, ...]]] = {}  # the SELECT by primary key, its parameters


async def get(session: AsyncSession, cls: type[T], *key: Any) -> T | None:
    """session.get(cls, key) on the driver: the object the session holds already (no SQL), else
    its whole row read by one fixed SELECT and adopted (a clean object, later changes flushed as
    an UPDATE); None when there is no such row. Like session.get, pending changes are not flushed
    first."""
    found = held(session, cls, *key)
    if found is not None:
        return found
    by_key = _BY_KEY.get(cls)
    if by_key is None:
        mapper = inspect(cls)
        table = mapper.local_table
        assert isinstance(table, Table)
        names = tuple(f"pk_{c.key}" for c in mapper.primary_key)
        by_key = _BY_KEY[cls] = (Prepared(select(table).where(
            *[c == bindparam(name) for c, name in zip(mapper.primary_key, names)])), names)
    prepared, names = by_key
    rows = (await run(session, prepared, dict(zip(names, key)))).rows
    return adopt(session, cls, rows[0]) if rows else None


# --- the session's changed objects written on the driver -------------------------------------------
#
# A ticket routed in a message is changed after its row was written (status, owner, limits), and
# a read that must see it flushes it: through the unit of work, ~0.3–0.5 ms of CPU for one UPDATE.
# flush() writes such changes itself: an UPDATE of the changed columns by primary key, run like
# the fixed statements, then the object marked as flushed exactly as the unit of work marks it.
# Anything the unit of work does more than that (new or deleted objects, a relationship or a
# primary key changed, version counters, column defaults on update, flush or mapper events, SQL
# expressions as values) goes through session.flush() as before. It reads and marks the session's
# state as SQLAlchemy 2.0's flush does (identity_map._modified, committed_state,
# _commit_all_states, _register_altered); tests/test_fastsql.py holds it to the ORM's behaviour.

_UPDATES: dict[tuple[int, frozenset[str]], Prepared] = {}
_SIMPLE: dict[int, dict[str, str] | None] = {}  # id(mapper) -> attribute key -> column key, or None


def _simple_columns(mapper: Mapper[Any]) -> dict[str, str] | None:
    """For a mapper whose objects' changes are plain column UPDATEs, its attribute → column keys
    (primary key columns left out); None when the unit of work does more for it."""
    key = id(mapper)
    if key in _SIMPLE:
        return _SIMPLE[key]
    table = mapper.local_table
    simple: dict[str, str] | None = None
    if (
        isinstance(table, Table) and mapper.persist_selectable is table and mapper.inherits is None
        and mapper.version_id_col is None and not mapper.polymorphic_map
        and not any(c.onupdate is not None or c.server_onupdate is not None for c in table.c)
        and not (mapper.dispatch.before_update or mapper.dispatch.after_update)
    ):
        simple = {}
        for prop in mapper.column_attrs:
            columns = prop.columns
            if len(columns) == 1 and columns[0].table is table and not columns[0].primary_key:
                simple[prop.key] = columns[0].key
    _SIMPLE[key] = simple
    return simple


def _update_of(mapper: Mapper[Any], columns: frozenset[str]) -> Prepared:
    """UPDATE mapper's table SET columns WHERE its primary key (one bind parameter per column)."""
    key = (id(mapper), columns)
    done = _UPDATES.get(key)
    if done is None:
        table = mapper.local_table
        assert isinstance(table, Table)
        stmt = (update(table).where(*[c == bindparam(f"pk_{c.key}") for c in mapper.primary_key])
                .values({c: bindparam(c) for c in sorted(columns)}))
        done = _UPDATES[key] = Prepared(stmt)
    return done


def _driver_updates(sync: Session) -> list[tuple[InstanceState[Any], Prepared, dict[str, Any]]] | None:
    """The UPDATEs the unit of work would send for the session's changed objects, or None when it
    would do anything else (see above)."""
    if sync._new or sync._deleted or sync.dispatch.before_flush or sync.dispatch.after_flush \
            or sync.dispatch.after_flush_postexec:
        return None
    updates = []
    for state in sync.identity_map._modified:
        mapper = state.mapper
        simple = _simple_columns(mapper)
        if simple is None or state.key is None:
            return None
        values: dict[str, Any] = {}
        dict_ = state.dict
        for attr, committed in state.committed_state.items():
            column = simple.get(attr)
            if column is None:
                return None  # a relationship, a primary key: the unit of work's job
            if attr not in dict_:
                return None
            value = dict_[attr]
            if isinstance(value, ClauseElement) or hasattr(value, "__clause_element__"):
                return None
            if state.manager[attr].impl.is_equal(value, committed) is not True:
                values[column] = value
        if values:
            for column, pk in zip(mapper.primary_key, state.key[1]):  # the identity key's order
                values[f"pk_{column.key}"] = pk
            updates.append((state, _update_of(mapper, frozenset(k for k in values if not k.startswith("pk_"))),
                            values))
    return updates


async def flush(session: AsyncSession) -> None:
    """Write the session's pending changes in its transaction, as session.flush() does: changed
    columns of objects it holds as UPDATEs on the driver, anything more through the unit of work."""
    sync = session.sync_session
    if not sync.identity_map._modified and not sync._new and not sync._deleted:
        return
    updates = _driver_updates(sync)
    if updates is None:
        await AsyncSession.flush(session)
        return
    if updates:
        if sync._transaction is None:
            sync.begin()  # as the unit of work's flush would (a rollback then expires the objects)
        done = await run_many(session, [(prepared, values) for _, prepared, values in updates])
        for (state, _, _), outcome in zip(updates, done):
            if outcome.rowcount not in (1, -1):
                raise StaleDataError(
                    f"UPDATE of {state.mapper.local_table} expected to match 1 row, matched {outcome.rowcount}")
    states = list(sync.identity_map._modified)
    InstanceState._commit_all_states([(s, s.dict) for s in states], sync.identity_map)
    sync._register_altered(states)


class DriverSession(AsyncSession):
    """The sessions storage.db and storage.message_tx make: an AsyncSession whose flush() is
    flush() above (a read on the driver flushes first, as dispatch's do: a routed ticket's
    changes are one UPDATE there, not the unit of work's). An ORM query's autoflush and the
    commit's own flush are the unit of work's, as before."""

    async def flush(self, objects: Sequence[Any] | None = None) -> None:
        """Flush pending changes (only objects', when given: always the unit of work's)."""
        if objects is not None:
            await AsyncSession.flush(self, objects)
        else:
            await flush(self)
