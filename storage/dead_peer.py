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
hours, and its row locks do not hold up the resident's resent message."""

from __future__ import annotations

import socket
from typing import Any

DEAD_PEER_MS = 1500  # unacknowledged data or probes for this long: the peer is gone
CONNECT_TIMEOUT_S = 2.0  # opening a connection to a server that does not answer
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
