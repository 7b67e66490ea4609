"""Connections to PostgreSQL and Redis that notice a peer gone silent within WeChat's 5 seconds.

Behind a network cut, a firewall dropping packets or a host that lost power, nothing refuses a
connection: a statement sent simply never gets an answer, and the kernel's defaults wait ~15
minutes before giving up. A message would hang far past WeChat's 5 seconds. A timeout on the
statement itself cannot tell a silent server from a slow one (a loaded database, a row lock):
session 18 tried one and it cut healthy messages under load. TCP can tell them apart: a slow
server's kernel still acknowledges every segment and keepalive probe; a cut one acknowledges
nothing. So each connection gives up when what it sent stays unacknowledged for DEAD_PEER_MS
(TCP_USER_TIMEOUT), and probes an idle line every second (keepalive), which covers a statement
already acknowledged but never answered.

The database server is told the same about its side (`tcp_keepalives_*`, `tcp_user_timeout`), so
a transaction whose client vanished mid-way is rolled back within seconds, not the kernel's two
hours, and its row locks do not hold up the resident's resent message.

A new connection to a server that does not answer is given up on after CONNECT_TIMEOUT_S of this
process running freely (connect_within), not of wall-clock time, which a stalled event loop would
spend without ever looking at a connection that had in fact been made."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

DEAD_PEER_MS = 1500  # unacknowledged data or probes for this long: the peer is gone
CONNECT_TIMEOUT_S = 2.0  # opening a connection to a server that does not answer (connect_within)
CONNECT_TICK_S = 0.1
KEEPALIVE_IDLE_S = 1  # an idle connection is probed after this long
KEEPALIVE_INTERVAL_S = 1

# The database server's side of the same (PostgreSQL's per-session settings, PostgreSQL 12+).
PG_SERVER_SETTINGS = {
    "tcp_keepalives_idle": "2",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "3000",
}


def tcp_options() -> dict[int, int]:
    """The TCP-level socket options (option → value) that make a connection give up on a silent
    peer; empty where the platform has none of them (they are Linux's; macOS lacks some)."""
    wanted = {
        "TCP_KEEPIDLE": KEEPALIVE_IDLE_S,
        "TCP_KEEPINTVL": KEEPALIVE_INTERVAL_S,
        "TCP_KEEPCNT": 2,
        "TCP_USER_TIMEOUT": DEAD_PEER_MS,
    }
    return {getattr(socket, name): value for name, value in wanted.items() if hasattr(socket, name)}


def watch(sock: Any) -> None:
    """Set keepalive and the dead-peer timeout on sock, a TCP socket (a Unix socket is left as is:
    its peer cannot go silent behind a network)."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in tcp_options().items():
        sock.setsockopt(socket.IPPROTO_TCP, option, value)


def watch_asyncpg(connection: Any) -> None:
    """watch() the socket under an asyncpg connection. asyncpg opens its socket itself and offers
    no option for this, so the socket is read from its transport."""
    transport = getattr(connection, "_transport", None)
    watch(transport.get_extra_info("socket") if transport is not None else None)


async def connect_within(connecting: Awaitable[T], seconds: float | None = None, tick: float = CONNECT_TICK_S) -> T:
    """Await connecting (a new connection being opened), giving up with TimeoutError once this
    event loop has run freely for `seconds` without it completing.

    A plain timeout counts wall-clock time, so a loop that stalls while the connection is being
    made (a burst of messages' CPU, a full garbage collection, a starved machine) fails a
    connection that succeeded: the timer is due when the loop wakes and runs before the task that
    would see the connection (CI saw it fail Redis connections opened during a flood of
    deliveries, 2026-11-25). Here time is counted in ticks, and a tick that comes late counts as
    at most two: a stall adds no more than two ticks, while a server that stays silent with the
    loop running freely is given up on after `seconds` (CONNECT_TIMEOUT_S), as before."""
    seconds = CONNECT_TIMEOUT_S if seconds is None else seconds
    task = asyncio.ensure_future(connecting)
    loop = asyncio.get_running_loop()
    counted = 0.0
    try:
        while True:
            started = loop.time()
            done, _ = await asyncio.wait({task}, timeout=tick)
            if done:
                return task.result()
            counted += min(loop.time() - started, 2 * tick)
            if counted >= seconds:
                break
    except BaseException:
        task.cancel()
        raise
    task.cancel()
    await asyncio.wait({task})  # its end, raising nothing here (this task's own cancellation still does)
    if not task.cancelled() and task.exception() is None:
        return task.result()  # connected just as it was being given up on: used, not leaked
    raise TimeoutError(f"no connection within {seconds:.1f} s")


def asyncpg_creator(url: str, connect_args: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
    """SQLAlchemy's async_creator for url: asyncpg's connect with connect_args, under
    connect_within (asyncpg's own `timeout` counts wall-clock time; it is left, at a minute, as a
    backstop) and with the server told to watch its side (PG_SERVER_SETTINGS)."""
    from sqlalchemy import make_url
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    _args, params = dialect().create_connect_args(make_url(url))
    unsupported = {"prepared_statement_cache_size", "prepared_statement_name_func", "async_fallback"} & params.keys()
    if unsupported:  # SQLAlchemy's own connection options, which an async_creator cannot carry
        raise ValueError(f"unsupported in the database URL: {', '.join(sorted(unsupported))}")
    params.update(connect_args)
    params.setdefault("timeout", 60)
    params.setdefault("server_settings", dict(PG_SERVER_SETTINGS))

    async def connect() -> Any:
        import asyncpg

        return await connect_within(asyncpg.connect(**params))

    return connect


class _ConnectWithin:
    """Mixed into a redis-py connection class: its socket connection is opened under
    connect_within instead of redis-py's wall-clock socket_connect_timeout."""

    async def _connect(self) -> None:
        await connect_within(super()._connect())  # type: ignore[misc]


_REDIS_CLASSES: dict[type, type] = {}


def watch_redis_pool(pool: Any) -> None:
    """Make pool (a redis.asyncio ConnectionPool, before its first connection) open its TCP
    connections under connect_within; a Unix socket's is left as it is."""
    from redis.asyncio.connection import UnixDomainSocketConnection

    base = pool.connection_class
    if issubclass(base, (UnixDomainSocketConnection, _ConnectWithin)):
        return
    if base not in _REDIS_CLASSES:
        _REDIS_CLASSES[base] = type(f"ConnectWithin{base.__name__}", (_ConnectWithin, base), {})
    pool.connection_class = _REDIS_CLASSES[base]
