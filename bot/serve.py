"""Serving: one process, or several worker processes sharing one port (SO_REUSEPORT).

Several workers need a shared database and state (PostgreSQL + Redis): the embedded SQLite
default is one process by design, so `--workers N` is refused there with a clear message.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import signal
import socket
import sys
from typing import Any

from aiohttp import web

from bot import logs
from bot.settings import DEMO_CONSOLE_PASSWORD, Settings, load_settings


class ServeError(Exception):
    """What keeps the service from starting, in one line for the operator; nothing was changed."""


def check_address(host: str, port: int, reuse_port: bool) -> None:
    """Bind host:port once and let it go, so a taken port or an impossible address is said
    before anything starts (and before the roster is loaded)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, OverflowError) as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from exc
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port and hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                taken = " (another process is using it)" if exc.errno == 98 else ""
                raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{taken}") from exc


async def check_backends(settings: Settings) -> list[str]:
    """Check the database (reachable, migrated to the newest schema), Redis and the roster file
    before serving; ServeError for what stops the start, warnings (lines) for what should not
    go unnoticed."""
    from storage.db import describe_db_error
    from storage.migrate import current_revision, head_revision

    if settings.embedded:
        try:
            settings.var_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ServeError(f"cannot create {settings.var_path} (CB_VAR_DIR): {exc.strerror or exc}") from exc
        if not os.access(settings.var_path, os.W_OK):
            raise ServeError(f"{settings.var_path} (CB_VAR_DIR) is not writable")
    try:
        revision = await current_revision(settings.db_url)
    except Exception as exc:  # the start's boundary: what the database said, in one line
        reason = describe_db_error(exc, settings.db_url)
        if reason is None:
            raise
        raise ServeError(reason) from exc
    head = head_revision()
    if revision != head:
        state = "is not migrated" if revision is None else f"is at schema {revision}, the newest is {head}"
        raise ServeError(f"the database {state}: run `communitybot db upgrade` first")
    if settings.redis_url:
        await _ping_redis(settings.redis_url)
    if not settings.roster_is_demo:
        from bot.roster import RosterError, read_roster

        try:
            read_roster(settings.roster_path)
        except RosterError as exc:
            raise ServeError(f"CB_ROSTER {settings.roster_path}: " + "; ".join(exc.problems)) from exc
    return await _console_warnings(settings)


async def _ping_redis(url: str) -> None:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=5)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        raise ServeError(f"cannot reach Redis at {url.split('@')[-1]} (CB_REDIS_URL): {exc}") from exc
    finally:
        await client.aclose()


async def _console_warnings(settings: Settings) -> list[str]:
    """Outside the embedded demo, a console whose admin has (or would be created with) the demo
    password is said loudly."""
    if settings.embedded or settings.console_admin_password != DEMO_CONSOLE_PASSWORD:
        return []
    from sqlalchemy import select

    from bot.console.auth import check_password
    from storage.db import make_engine
    from storage.models import StaffUser

    engine = make_engine(settings.db_url, inline_sqlite=False)
    try:
        async with engine.connect() as conn:
            users = (await conn.execute(select(StaffUser.username, StaffUser.password_hash))).all()
    finally:
        await engine.dispose()
    if not users:
        return [f"WARNING: the first console login creates admin / {DEMO_CONSOLE_PASSWORD}, the demo password: "
                "set CB_CONSOLE_ADMIN_PASSWORD before anyone opens /console"]
    if any(name == "admin" and check_password(DEMO_CONSOLE_PASSWORD, hashed) for name, hashed in users):
        return [f"WARNING: console user admin still has the demo password {DEMO_CONSOLE_PASSWORD}: change it now"]
    return []


_SERVING_LOCK: list[Any] = []  # the lock file held for the serving process's life


def hold_single_process_lock(settings: Settings) -> None:
    """Without Redis, dialogs' locks and retries' de-duplication live in the serving process:
    a second process on the same SQLite file (a second `serve`, gunicorn with several workers)
    would answer the same resident twice at once. Take an exclusive lock beside the database
    file, held until the process ends, so that second process is refused in one line."""
    if settings.redis_url or _SERVING_LOCK:
        return
    from sqlalchemy.engine import make_url

    url = make_url(settings.db_url)
    if not url.get_backend_name() == "sqlite" or not url.database or url.database == ":memory:":
        return
    import fcntl

    path = f"{url.database}.serving"
    handle = open(path, "a+")  # noqa: SIM115 - held open for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise ServeError(
            f"another process (pid {pid}) is serving {url.database}: without Redis the bot is one "
            "process; stop that one, or set CB_DATABASE_URL (PostgreSQL) and CB_REDIS_URL for several"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _SERVING_LOCK.append(handle)


def check_workers(settings: Settings, workers: int) -> None:
    """Refuse configurations that cannot run several workers correctly."""
    if workers < 1:
        raise ValueError("--workers must be at least 1")
    if workers > 1 and (settings.embedded or not settings.redis_url):
        raise ValueError(
            "several workers share dialogs, locks and de-duplication: set CB_DATABASE_URL "
            "(PostgreSQL) and CB_REDIS_URL, or run one worker on the embedded default"
        )


async def freeze_startup_heap(_app: web.Application) -> None:
    """Move everything alive once the app has started (jieba's dictionary, modules, config) out
    of the garbage collector's sight.

    A full collection has to walk jieba's 350,000-word dictionary: ~66 ms measured, a pause every
    resident in flight waits through (the p99). Frozen objects are never collected, which is
    right for what lives as long as the process; so this runs in a serving process only, not
    where apps come and go (tests)."""
    gc.collect()
    gc.freeze()


def worker_app(settings: Settings) -> web.Application:
    """The app a serving process runs: every feature, then the startup heap frozen."""
    from bot.app import create_app

    app = create_app(settings)
    app.on_startup.append(freeze_startup_heap)  # runs after every feature's startup
    return app


def run_worker(overrides: dict[str, Any], reuse_port: bool) -> None:
    """One worker process: build the app and serve until SIGTERM/SIGINT."""
    settings = load_settings(**overrides)
    logs.configure(settings.log_level)
    web.run_app(
        worker_app(settings), host=settings.host, port=settings.port, reuse_port=reuse_port,
        print=None, handle_signals=True,
    )


def serve(overrides: dict[str, Any], workers: int = 1) -> int:
    """Serve with `workers` processes; the parent supervises and forwards termination."""
    settings = load_settings(**overrides)
    check_workers(settings, workers)
    check_address(settings.host, settings.port, reuse_port=workers > 1)
    warnings = asyncio.run(check_backends(settings))
    hold_single_process_lock(settings)
    banner(settings, workers, warnings)
    if workers == 1:
        run_worker(overrides, reuse_port=False)
        return 0
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=run_worker, args=(overrides, True), daemon=False) for _ in range(workers)]
    for proc in procs:
        proc.start()

    def _stop(signum: int, _frame: Any) -> None:
        for proc in procs:
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    for proc in procs:
        proc.join()
    return max((proc.exitcode or 0) for proc in procs)


def banner(settings: Settings, workers: int, warnings: tuple[str, ...] | list[str] = ()) -> None:
    """Tell the operator where things are."""
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        f"community-bot serving on {base} ({workers} worker{'s' if workers > 1 else ''}; "
        f"database {'SQLite under ' + str(settings.var_path) if settings.embedded else 'configured'}; "
        f"state {'Redis' if settings.redis_url else 'embedded'})",
        f"  official-account webhook: {base}/wechat",
        f"  staff console:            {base}/console",
    ]
    if settings.simulator_on:
        lines.insert(1, f"  resident chat simulator:  {base}/sim")
    password = settings.console_admin_password
    if settings.embedded:
        lines.append(f"  console login:            admin / {password}")
    else:
        lines.append("  console login:            admin / CB_CONSOLE_ADMIN_PASSWORD (created at the first login while no user exists)")
    lines.extend(f"  {warning}" for warning in warnings)
    print("\n".join(lines), file=sys.stderr, flush=True)
