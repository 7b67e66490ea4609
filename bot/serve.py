"""Serving: one process, or several worker processes sharing one port (SO_REUSEPORT).

Several workers need a shared database and state (PostgreSQL + Redis): the embedded SQLite
default is one process by design, so `--workers N` is refused there with a clear message. With
several, the parent supervises them: a worker that exits is logged and started again (after a
pause growing while it keeps failing; a worker that keeps exiting within seconds of starting stops
the whole service with a non-zero exit, for systemd to restart it), and their metrics are kept in
prometheus_client's multiprocess files, so /metrics adds up every worker whichever one answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_exits
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from bot import logs, metrics
from bot.config_files import read_text
from bot.metrics_dir import fresh_metrics_dir
from bot.settings import CONFIG_DIR, DEMO_CONSOLE_PASSWORD, DEMO_ROSTER, Settings, config_name, load_settings

log = logging.getLogger(__name__)

FAST_EXIT_S = 10.0  # a worker that exits sooner than this after starting is failing to run
MAX_FAST_EXITS = 5  # that many fast exits in a row of one worker, and the service gives up
RESTART_DELAY_S = 0.5  # the pause before a worker is started again, doubled per further fast exit …
MAX_RESTART_DELAY_S = 8.0  # … up to this


class ServeError(Exception):
    """What keeps the service from starting, in one line for the operator; nothing was changed."""


def check_address(host: str, port: int) -> None:
    """Bind host:port once and let it go, so a taken port or an impossible address is said
    before anything starts (and before the roster is loaded). The probe never shares the port
    (no SO_REUSEPORT, which the workers use among themselves): another serve's workers listening
    there make it fail, instead of the two services splitting the traffic."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, OverflowError) as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from exc
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                taken = " (another process is using it)" if exc.errno == 98 else ""
                raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{taken}") from exc


def check_var_dir(settings: Settings) -> None:
    """var/ (CB_VAR_DIR) exists and is writable: it holds the embedded database, the serving
    locks, the workers' metrics files, caches and generated secrets."""
    try:
        settings.var_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServeError(f"cannot create {settings.var_path} (CB_VAR_DIR): {exc.strerror or exc}") from exc
    if not os.access(settings.var_path, os.W_OK):
        raise ServeError(f"{settings.var_path} (CB_VAR_DIR) is not writable")


def _config_loaders(settings: Settings) -> list[tuple[Path, Callable[[], object]]]:
    """Every configuration file a serving process reads, with the loader it reads it with."""
    from bot import faq
    from bot.activities import read_activities
    from bot.console.canned import CANNED_PATH, load_canned
    from bot.flows.config import flow_config
    from bot.intents.rules import INTENTS_FILE, LEXICON_FILE, load_ruleset, parse_lexicon
    from bot.limits import load_limits
    from bot.roster import read_roster
    from bot.schedule import load_schedule_config
    from bot.service_catalog import load_catalog
    from bot.texts import Texts

    lexicon = CONFIG_DIR / LEXICON_FILE
    loaders: list[tuple[Path, Callable[[], object]]] = [
        (CONFIG_DIR / "messages.toml", Texts),
        (lexicon, lambda: parse_lexicon(read_text(lexicon)) if lexicon.exists() else []),
        (CONFIG_DIR / INTENTS_FILE, lambda: load_ruleset(CONFIG_DIR)),
        (CONFIG_DIR / "flows.toml", flow_config),
        (CONFIG_DIR / "limits.toml", load_limits),
        (CONFIG_DIR / "services.toml", load_catalog),
        (CONFIG_DIR / "schedule.toml", load_schedule_config),
        (faq.FAQ_FILE, faq.load),
        (CANNED_PATH, load_canned),
    ]
    try:
        activities = load_schedule_config().activities_path
    except Exception:  # said for schedule.toml itself
        activities = None
    if activities is not None:
        loaders.append((activities, lambda: read_activities(activities, settings.timezone)))
    if settings.roster_is_demo:
        loaders.append((DEMO_ROSTER, lambda: read_roster(DEMO_ROSTER)))
    if settings.simulator_on:  # the simulator's page shows the menu; `menu publish` checks it itself
        from bot.menu import MENU_FILE, load_menu

        loaders.append((MENU_FILE, load_menu))
    return loaders


def _config_problem(path: Path, exc: Exception) -> str:
    """One line for a configuration file that cannot be used: the file, then what is wrong (with
    the line for a TOML syntax error)."""
    from bot.roster import RosterError

    name = config_name(path)
    if isinstance(exc, RosterError):
        reason = "; ".join(exc.problems)
    elif isinstance(exc, UnicodeDecodeError):
        reason = f"is not UTF-8 text (byte {getattr(exc, 'byte', exc.start)}); save it as UTF-8"
    elif isinstance(exc, OSError):
        reason = f"cannot read it: {exc.strerror or exc}"
    elif isinstance(exc, KeyError):
        reason = f"{exc.args[0] if exc.args else exc} is missing"
    else:
        reason = str(exc)
    for prefix in (f"{path}: ", f"{path.resolve()}: ", f"{name}: ", f"{path.name}: "):
        reason = reason.removeprefix(prefix)
    return f"{name}: {reason}"


def check_config(settings: Settings) -> None:
    """Read and check every configuration file serving needs, so that a typo in one (messages,
    intents, limits, services, schedule …) stops the start in one line naming the file, before
    anything is served, instead of every worker failing after it."""
    problems: list[str] = []
    for path, load in _config_loaders(settings):
        try:
            load()
        except Exception as exc:  # the start's boundary: whatever the loader refused, said with its file
            problems.append(_config_problem(path, exc))
    if problems:
        raise ServeError("; ".join(problems))


async def check_backends(settings: Settings) -> list[str]:
    """Check var/, every configuration file, the database (reachable, migrated to the newest
    schema), Redis and the roster file before serving; ServeError for what stops the start,
    warnings (lines) for what should not go unnoticed."""
    from storage.db import describe_db_error
    from storage.migrate import current_revision, head_revision

    check_var_dir(settings)
    check_config(settings)
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
            path = str(settings.roster_path)
            said = [problem.removeprefix(f"{path} ").replace(f"read {path}: ", "read it: ") for problem in exc.problems]
            raise ServeError(f"CB_ROSTER {path}: " + "; ".join(said)) from exc
    return _public_url_warnings(settings) + await _console_warnings(settings)


def _public_url_warnings(settings: Settings) -> list[str]:
    """Links staff follow (WeCom cards, the staff group's posts) are built on CB_PUBLIC_BASE_URL:
    unset outside the simulator, they point at the address serve listens on."""
    if settings.public_base_url or settings.simulator_on:
        return []
    return [f"WARNING: CB_PUBLIC_BASE_URL is not set: links in WeCom cards and staff-group posts point at "
            f"{settings.self_url}; set it to the address staff open, e.g. https://bot.example-community.cn"]


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


_HELD_LOCKS: dict[str, IO[str]] = {}  # lock files held for the serving process's life, by path


def _hold_lock(path: str) -> str | None:
    """Take an exclusive lock on the file at path, held open (and naming this process) until the
    process ends or release_locks; None when taken, else the pid written by its holder;
    ServeError, in one line, when the file cannot be opened."""
    import fcntl

    if path in _HELD_LOCKS:
        return None
    try:
        handle = open(path, "a+")  # noqa: SIM115 - held open for the process's life
    except OSError as exc:  # left by another user (serve tried as root, then run as the service's user)
        raise ServeError(
            f"cannot open the serving lock {path}: {exc.strerror or exc}; serve as the user that owns "
            f"{Path(path).parent} and its files (chown -R that directory to it)"
        ) from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        return pid
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _HELD_LOCKS[path] = handle
    return None


def release_locks() -> None:
    """Let go of every lock this process holds (serve returning)."""
    while _HELD_LOCKS:
        _path, handle = _HELD_LOCKS.popitem()
        handle.close()


def hold_single_process_lock(settings: Settings) -> None:
    """Without Redis, dialogs' locks and retries' de-duplication live in the serving process:
    a second process on the same SQLite file (a second `serve`, gunicorn with several workers)
    would answer the same resident twice at once. Take an exclusive lock beside the database
    file, held until the process ends, so that second process is refused in one line."""
    if settings.redis_url:
        return
    from sqlalchemy.engine import make_url

    url = make_url(settings.db_url)
    if not url.get_backend_name() == "sqlite" or not url.database or url.database == ":memory:":
        return
    holder = _hold_lock(f"{url.database}.serving")
    if holder is not None:
        raise ServeError(
            f"another process (pid {holder}) is serving {url.database}: without Redis the bot is one "
            "process; stop that one, or set CB_DATABASE_URL (PostgreSQL) and CB_REDIS_URL for several"
        )


def hold_address_lock(settings: Settings) -> None:
    """One `serve` per address: its workers share the port (SO_REUSEPORT), so a second serve
    started there would silently split the traffic with the first. A lock per host:port under
    var/, held by the serving parent, refuses it naming the first."""
    name = re.sub(r"[^A-Za-z0-9.-]", "_", f"{settings.host}-{settings.port}")
    holder = _hold_lock(str(settings.var_path / f"serve-{name}.lock"))
    if holder is not None:
        raise ServeError(
            f"another communitybot serve is listening on {settings.host}:{settings.port} (pid {holder})"
        )


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


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when its serving parent dies (SIGKILL, the OOM
    killer), so no orphaned worker goes on holding the port unsupervised, where a new `serve`
    cannot listen; a parent gone before this ran is seen by its pid. Linux only (prctl)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        raise SystemExit(0)


def run_worker(
    overrides: dict[str, Any], reuse_port: bool, parent: int | None = None, ready_pipe: Connection | None = None,
    *, listening: Callable[[], None] | None = None,
) -> None:
    """One worker process: build the app and serve until SIGTERM/SIGINT (or, started by a
    supervising parent, until that parent dies). Once its port accepts connections it says so:
    its pid sent down ready_pipe (to the supervising parent), or listening() called."""
    if parent is not None:
        die_with_parent(parent)
    settings = load_settings(**overrides)
    logs.configure(settings.log_level)

    def listens(*_said: Any) -> None:  # run_app's print hook: called once every site is listening
        if ready_pipe is not None:
            with contextlib.suppress(BrokenPipeError):  # the parent is gone: this worker is told to stop
                ready_pipe.send(os.getpid())
        if listening is not None:
            listening()

    web.run_app(
        worker_app(settings), host=settings.host, port=settings.port, reuse_port=reuse_port,
        print=listens, handle_signals=True,
    )


def serve(overrides: dict[str, Any], workers: int = 1) -> int:
    """Serve with `workers` processes; the parent supervises them and forwards termination."""
    settings = load_settings(**overrides)
    check_workers(settings, workers)
    try:
        check_var_dir(settings)
        hold_address_lock(settings)
        check_address(settings.host, settings.port)
        warnings = asyncio.run(check_backends(settings))
        hold_single_process_lock(settings)
        announce = lambda: banner(settings, workers, warnings)  # noqa: E731 - said once the port accepts
        if workers == 1:
            run_worker(overrides, reuse_port=False, listening=announce)
            return 0
        logs.configure(settings.log_level)
        metrics_dir = fresh_metrics_dir(settings.var_path / "prometheus")
        os.environ[metrics.MULTIPROC_ENV] = str(metrics_dir)  # before the workers start: they read it at import
        try:
            ctx = multiprocessing.get_context("spawn")
            heard, told = ctx.Pipe(duplex=False)
            return Supervisor(lambda: ctx.Process(target=run_worker, args=(overrides, True, os.getpid(), told)),
                              workers, metrics_dir, ready=heard, on_ready=announce).run()
        finally:
            os.environ.pop(metrics.MULTIPROC_ENV, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)
    finally:
        release_locks()


def _exit_text(code: int | None) -> str:
    """A worker's exit status as the operator reads it: code 1, or code -9 (SIGKILL)."""
    if code is not None and code < 0:
        try:
            return f"code {code}, {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"code {code}"


@dataclass
class _Slot:
    """One worker position (1..N) and the process filling it now."""

    number: int
    proc: BaseProcess | None = None
    started: float = 0.0
    fast_exits: int = 0
    restart_at: float = 0.0


class Supervisor:
    """Run `count` worker processes made by `make`, start again one that exits (logged, after
    a growing pause), and stop them all on SIGTERM/SIGINT; give up (exit 1) when a worker keeps
    exiting within FAST_EXIT_S of starting, so that systemd restarts the whole service.
    Workers send their pid down `ready` once they listen: on_ready is called once, when every
    worker running then does (the banner: "serving on" only when it is so)."""

    def __init__(
        self, make: Callable[[], BaseProcess], count: int, metrics_dir: Path | None = None, *,
        ready: Connection | None = None, on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.make = make
        self.slots = [_Slot(n) for n in range(1, count + 1)]
        self.metrics_dir = metrics_dir
        self.stopping = False
        self._told: set[int] = set()  # the workers sent SIGTERM (once: a second cuts their shutdown short)
        self.ready = ready
        self.on_ready = on_ready
        self._listening: set[int] = set()  # pids of workers that said they listen

    def _heard(self) -> None:
        """Take the workers' "listening" messages waiting on the pipe; on_ready once all listen."""
        assert self.ready is not None
        while self.ready.poll():
            self._listening.add(self.ready.recv())
        pids = {slot.proc.pid for slot in self.slots if slot.proc is not None}
        if self.on_ready is not None and pids and all(slot.proc is not None for slot in self.slots) \
                and pids <= self._listening:
            self.on_ready()
            self.on_ready = None

    def _start(self, slot: _Slot) -> None:
        slot.proc = self.make()
        slot.proc.start()
        slot.started = time.monotonic()

    def _stop(self, _signum: int = 0, _frame: Any = None) -> None:
        self.stopping = True
        for slot in self.slots:
            pid = slot.proc.pid if slot.proc is not None else None
            if pid and pid not in self._told and slot.proc is not None and slot.proc.is_alive():
                self._told.add(pid)
                os.kill(pid, signal.SIGTERM)

    def _ended(self, slot: _Slot) -> int | None:
        """The exit code of the slot's process, which has ended; its metrics' live files removed."""
        assert slot.proc is not None
        slot.proc.join()
        code, pid = slot.proc.exitcode, slot.proc.pid
        slot.proc.close()
        slot.proc = None
        if self.metrics_dir is not None and pid:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid, str(self.metrics_dir))
        return code

    def run(self) -> int:
        """Supervise until stopped (0, or the workers' worst exit code) or given up (1)."""
        for slot in self.slots:
            self._start(slot)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        worst = 0
        while True:
            running = [slot for slot in self.slots if slot.proc is not None]
            if self.stopping:
                self._stop()  # also a worker started again just as the signal came
                for slot in running:
                    worst = max(worst, self._ended(slot) or 0)
                return worst
            pending = [slot.restart_at for slot in self.slots if slot.proc is None]
            timeout = max(0.0, min(pending) - time.monotonic()) if pending else None
            waits: list[Any] = [slot.proc.sentinel for slot in running if slot.proc is not None]
            if self.ready is not None:
                waits.append(self.ready)
            wait_for_exits(waits, timeout)
            if self.ready is not None:
                self._heard()
            for slot in running:
                if slot.proc is not None and not self.stopping and slot.proc.exitcode is not None:
                    if not self._worker_exited(slot):
                        self._stop()
                        for other in self.slots:
                            if other.proc is not None:
                                self._ended(other)
                        return 1
            for slot in self.slots:
                if slot.proc is None and not self.stopping and slot.restart_at <= time.monotonic():
                    self._start(slot)

    def _worker_exited(self, slot: _Slot) -> bool:
        """Log a worker's exit and plan its restart; False when it keeps failing to run."""
        pid = slot.proc.pid if slot.proc is not None else None
        ran = time.monotonic() - slot.started
        code = self._ended(slot)
        slot.fast_exits = slot.fast_exits + 1 if ran < FAST_EXIT_S else 0
        extra = logs.fields(worker=slot.number, pid=pid, code=code, ran_s=round(ran, 1))
        if slot.fast_exits >= MAX_FAST_EXITS:
            log.critical(
                "worker %d exited (%s), %d times in a row within %.0f s of starting: stopping the service",
                slot.number, _exit_text(code), slot.fast_exits, FAST_EXIT_S, extra=extra,
            )
            return False
        delay = min(RESTART_DELAY_S * 2 ** max(slot.fast_exits - 1, 0), MAX_RESTART_DELAY_S)
        slot.restart_at = time.monotonic() + delay
        log.error("worker %d exited (%s); starting it again in %.1f s", slot.number, _exit_text(code), delay,
                  extra=extra)
        return True


def banner(settings: Settings, workers: int, warnings: tuple[str, ...] | list[str] = ()) -> None:
    """Tell the operator where things are."""
    from storage.db import safe_url

    base = f"http://{settings.host}:{settings.port}"
    database = f"SQLite under {settings.var_path}" if settings.embedded else safe_url(settings.db_url)
    state = f"Redis {safe_url(settings.redis_url)}" if settings.redis_url else "embedded"
    lines = [
        f"community-bot serving on {base} ({workers} worker{'s' if workers > 1 else ''}; "
        f"database {database}; state {state})",
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
