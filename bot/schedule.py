"""The durable schedule: APScheduler is the clock, the reminders table is the store.

A periodic job calls `run_due`, which claims due reminder rows (`FOR UPDATE SKIP LOCKED` on
PostgreSQL, one guarded transaction on SQLite), checks each one's cause, applies quiet hours and
the per-resident daily cap, and hands the message to the outbox (or to the handler registered for
its kind) — marking the row in the same transaction, so every reminder goes out exactly once
across processes and restarts. A reminder whose delivery raises is retried later (each in its own
savepoint, so one bad row never holds up the others) and marked failed after a few attempts.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import outbox
from bot.config_files import read_toml
from bot.privacy import hash_openid
from bot.reminders import CAUSE_CHECKS
from bot.settings import CONFIG_DIR, REPO_ROOT, Settings
from bot.services import Services
from storage.models import InboundDedup, OutboxItem, Reminder, Resident

log = logging.getLogger(__name__)

# kind → async handler(svc, session, reminder) → True when delivered (done), False when it no
# longer applies (dropped). Handlers write in the given session; deferred work that must happen
# after the commit (state store writes) goes through `after_commit`.
KindHandler = Callable[[Services, AsyncSession, Reminder], Awaitable[bool]]
KIND_HANDLERS: dict[str, KindHandler] = {}
AfterCommit = Callable[[], Awaitable[None]]
# Kinds whose message names a time (a booking's 明天 11:00, an activity's 明天 09:00): the daily
# push cap does not hold them to the next morning, where they would come late or after the fact.
TIMED_KINDS: set[str] = set()

# Channels that reach a person's phone: these respect quiet hours; the staff group does not.
QUIET_CHANNELS = ("wechat", "wecom")


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SurveyTimes:
    """How long a survey waits for an answer, before one reminder and before 未评价, and how long
    after 未评价 an answer still counts."""

    remind_after_s: int = 172800
    expire_after_s: int = 86400
    comment_window_s: int = 86400
    late_answer_s: int = 604800  # after 未评价, a rating still counts this long


@dataclass(frozen=True)
class ActivityTimes:
    """Where activities are defined, when signed-up residents are reminded and thanked."""

    file: str = "config/activities.toml"
    remind_at: str = "19:00"
    remind_before_s: int = 3600  # and this long before the start (0: not)
    thanks_after_s: int = 3600


@dataclass(frozen=True)
class HotspotRule:
    """The same category at one place reported `threshold` times in `window_days` is a hotspot."""

    threshold: int = 3
    window_days: int = 7
    run_at: str = "07:30"


@dataclass(frozen=True)
class ScheduleConfig:
    """config/schedule.toml."""

    poll_s: float = 5.0
    batch: int = 200
    max_attempts: int = 5
    retry_s: int = 60
    survey: SurveyTimes = SurveyTimes()
    activities: ActivityTimes = ActivityTimes()
    hotspots: HotspotRule = HotspotRule()

    @property
    def activities_path(self) -> Path:
        """The activities TOML file."""
        path = Path(self.activities.file)
        return path if path.is_absolute() else REPO_ROOT / path


def parse_hhmm(value: str) -> time:
    """'19:00' → time(19, 0); ValueError on anything else."""
    hours, _, minutes = value.strip().partition(":")
    return time(int(hours), int(minutes or 0))


@lru_cache(maxsize=4)
def load_schedule_config(path: Path = CONFIG_DIR / "schedule.toml") -> ScheduleConfig:
    """Read config/schedule.toml (missing keys keep their defaults); ValueError on bad values."""
    data: dict[str, Any] = read_toml(path)
    try:
        config = ScheduleConfig(
            poll_s=float(data.get("poll_s", 5)),
            batch=int(data.get("batch", 200)),
            max_attempts=int(data.get("max_attempts", 5)),
            retry_s=int(data.get("retry_s", 60)),
            survey=SurveyTimes(**data.get("survey", {})),
            activities=ActivityTimes(**data.get("activities", {})),
            hotspots=HotspotRule(**data.get("hotspots", {})),
        )
        parse_hhmm(config.activities.remind_at)
        parse_hhmm(config.hotspots.run_at)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if config.poll_s <= 0 or config.batch < 1 or config.hotspots.threshold < 2:
        raise ValueError(f"{path}: poll_s > 0, batch ≥ 1 and hotspots.threshold ≥ 2 are required")
    return config


# --- registry and hooks ---------------------------------------------------------------------------


def register_kind_handler(kind: str, handler: KindHandler) -> None:
    """Deliver reminders of `kind` with handler instead of as a plain outbox message."""
    KIND_HANDLERS[kind] = handler


def register_timed_kind(kind: str) -> None:
    """Declare that reminders of kind name a time: quiet hours hold them, the daily cap does not."""
    TIMED_KINDS.add(kind)


def after_commit(session: AsyncSession, hook: AfterCommit) -> None:
    """Run hook once run_due's transaction has committed (for state-store writes)."""
    session.info.setdefault("schedule_after_commit", []).append(hook)


# Modules that register kind handlers or cause checks when imported. A process that claims
# reminders must know every check, or a reminder whose cause went away could still go out.
REGISTRARS = ("bot.dispatch", "bot.bookings", "bot.activities", "bot.flows.survey", "bot.outages")


def _ensure_handlers() -> None:
    for name in REGISTRARS:
        importlib.import_module(name)
    from bot import dispatch

    for kind in dispatch.BREACH_KINDS:  # overdue checks act on the ticket, not just a message
        KIND_HANDLERS.setdefault(kind, dispatch.handle_due_reminder)


# --- quiet hours and the daily cap ----------------------------------------------------------------


def _quiet_bounds(settings: Settings) -> tuple[time, time]:
    (sh, sm), (eh, em) = settings.quiet_window
    return time(sh, sm), time(eh, em)


def _time_of_day(moment: datetime, at: time, settings: Settings, *, after: bool) -> datetime:
    """The local time of day `at` nearest moment: the first strictly after it (after=True) or the
    last at or before it (after=False), as aware UTC."""
    tz = ZoneInfo(settings.timezone)
    local = moment.astimezone(tz)
    found = datetime.combine(local.date(), at, tz)
    if after and found <= local:
        found = datetime.combine(local.date() + timedelta(days=1), at, tz)
    elif not after and found > local:
        found = datetime.combine(local.date() - timedelta(days=1), at, tz)
    return found.astimezone(timezone.utc)


def quiet_until(now: datetime, settings: Settings) -> datetime | None:
    """The end of the quiet hours `now` falls in (aware UTC), or None outside quiet hours."""
    start, end = _quiet_bounds(settings)
    if start == end:
        return None
    tz = ZoneInfo(settings.timezone)
    local = now.astimezone(tz)
    moment = local.time()
    inside = (start <= moment < end) if start < end else (moment >= start or moment < end)
    if not inside:
        return None
    return _time_of_day(now, end, settings, after=True)


def quiet_began(moment: datetime, settings: Settings) -> datetime:
    """The start of the quiet hours moment falls in (the latest start at or before it), aware UTC."""
    start, _ = _quiet_bounds(settings)
    return _time_of_day(moment, start, settings, after=False)


def held_until(now: datetime, settings: Settings, *, urgent: bool = False) -> datetime | None:
    """When an automatic push queued now may go (its outbox row's not_before): None, at once, for
    an urgent one or outside quiet hours; else the end of the quiet hours now falls in."""
    return None if urgent else quiet_until(now, settings)


def _next_quiet_start(moment: datetime, settings: Settings) -> datetime:
    """The next start of quiet hours after moment (outside them), as aware UTC."""
    start, _ = _quiet_bounds(settings)
    return _time_of_day(moment, start, settings, after=True)


def after_waking_time(since: datetime, seconds: float, settings: Settings) -> datetime:
    """When `seconds` outside quiet hours have passed since `since`: a time limit that does not
    run at night (dispatched at 20:55 with 30 minutes and quiet hours 21:00-08:00 → 08:25)."""
    start, end = _quiet_bounds(settings)
    left = timedelta(seconds=seconds)
    if start == end:
        return since + left
    moment = since
    for _ in range(400):  # a limit of up to about a year of days
        woken = quiet_until(moment, settings)
        if woken is not None:
            moment = woken
        night = _next_quiet_start(moment, settings)
        if moment + left <= night:
            return moment + left
        left -= night - moment
        moment = night
    raise ValueError(f"a limit of {seconds} s is too long to count outside quiet hours")


def next_morning(now: datetime, settings: Settings) -> datetime:
    """Tomorrow (local) at the end of quiet hours, as aware UTC."""
    _, end = _quiet_bounds(settings)
    tz = ZoneInfo(settings.timezone)
    day = now.astimezone(tz).date() + timedelta(days=1)
    return datetime.combine(day, end, tz).astimezone(timezone.utc)


def local_day_start(now: datetime, tz: str) -> datetime:
    """Midnight of now's local date, as aware UTC."""
    zone = ZoneInfo(tz)
    return datetime.combine(now.astimezone(zone).date(), time(0), zone).astimezone(timezone.utc)


async def pushes_today(session: AsyncSession, openid: str, now: datetime, tz: str) -> int:
    """How many pushes to this resident were queued since local midnight."""
    count = await session.scalar(
        select(func.count(OutboxItem.id)).where(
            OutboxItem.channel == "wechat",
            OutboxItem.target == openid,
            OutboxItem.created_at >= local_day_start(now, tz),
        )
    )
    return int(count or 0)


# --- claiming and delivering ----------------------------------------------------------------------


@dataclass(frozen=True)
class DueResult:
    """What happened to one claimed reminder."""

    reminder_id: int
    kind: str
    outcome: str  # done | dropped | deferred | retry | failed
    due_at: datetime | None = None  # the new due time when deferred or retried


def _channel(reminder: Reminder) -> str:
    return str((reminder.payload or {}).get("channel", ""))


def _urgent(reminder: Reminder) -> bool:
    return bool((reminder.payload or {}).get("urgent", False))


def _who(reminder: Reminder) -> str:
    return hash_openid(reminder.target) if _channel(reminder) == "wechat" else reminder.target


async def _hold_time(svc: Services, session: AsyncSession, reminder: Reminder, now: datetime) -> datetime | None:
    """When a non-urgent reminder must wait (quiet hours; the daily cap, unless it names a time):
    the time to move it to."""
    if _urgent(reminder) or _channel(reminder) not in QUIET_CHANNELS:
        return None
    later = quiet_until(now, svc.settings)
    if later is not None:
        return later
    if _channel(reminder) == "wechat" and reminder.kind not in TIMED_KINDS:
        sent = await pushes_today(session, reminder.target, now, svc.settings.timezone)
        if sent >= svc.settings.daily_push_cap:
            return next_morning(now, svc.settings)
    return None


async def follows(session: AsyncSession, openid: str) -> bool:
    """Whether a resident can still be pushed: not unfollowed (WeChat refuses every message, 43004)
    nor erased. One the residents table does not know is given the benefit of the doubt."""
    row = (await session.execute(
        select(Resident.subscribed, Resident.erased_at).where(Resident.openid == openid)
    )).first()
    return row is None or (bool(row.subscribed) and row.erased_at is None)


async def deliver_plain(session: AsyncSession, reminder: Reminder, now: datetime) -> bool:
    """Hand a reminder's ready message to the outbox (idempotent by reminder id); False, nothing
    queued, for a resident who unfollowed the account or was erased (the push could only fail)."""
    payload = reminder.payload or {}
    message = payload.get("message")
    if not isinstance(message, dict) or not message:
        raise ValueError(f"reminder {reminder.id} of kind {reminder.kind!r} carries no message")
    if payload.get("channel") == "wechat" and not await follows(session, reminder.target):
        log.info("reminder not pushed: the resident no longer follows",
                 extra={"fields": {"id": reminder.id, "kind": reminder.kind, "to": hash_openid(reminder.target)}})
        return False
    ticket_id = payload.get("ticket_id")
    await outbox.enqueue(
        session, str(payload.get("channel", "")), reminder.target, message, now=now,
        dedup_key=f"reminder:{reminder.id}", urgent=_urgent(reminder),
        ticket_id=int(ticket_id) if isinstance(ticket_id, int) else None,
    )
    return True


async def _process(svc: Services, session: AsyncSession, reminder: Reminder, now: datetime) -> DueResult:
    check = CAUSE_CHECKS.get(reminder.cause_type or "")
    if check is not None and not await check(session, reminder):
        reminder.state = "dropped"
        reminder.done_at = now
        return DueResult(reminder.id, reminder.kind, "dropped")
    hold = await _hold_time(svc, session, reminder, now)
    if hold is not None:
        reminder.due_at = hold
        return DueResult(reminder.id, reminder.kind, "deferred", hold)
    handler = KIND_HANDLERS.get(reminder.kind)
    delivered = await (handler(svc, session, reminder) if handler else deliver_plain(session, reminder, now))
    reminder.attempts += 1
    reminder.state = "done" if delivered else "dropped"
    reminder.done_at = now
    return DueResult(reminder.id, reminder.kind, reminder.state)


async def _failed(
    svc: Services, session: AsyncSession, rid: int, attempts: int, exc: Exception, now: datetime
) -> DueResult:
    config = load_schedule_config()
    attempts += 1
    give_up = attempts >= config.max_attempts
    retry_at = now + timedelta(seconds=config.retry_s * attempts)
    values: dict[str, Any] = {"attempts": attempts, "last_error": f"{type(exc).__name__}: {exc}"[:500]}
    values.update({"state": "failed", "done_at": now} if give_up else {"due_at": retry_at})
    await session.execute(update(Reminder).where(Reminder.id == rid).values(**values))
    return DueResult(rid, "", "failed" if give_up else "retry", None if give_up else retry_at)


def _sqlite_guard(svc: Services) -> asyncio.Lock:
    lock = svc.extras.get("schedule.sqlite_lock")
    if not isinstance(lock, asyncio.Lock):
        lock = asyncio.Lock()
        svc.extras["schedule.sqlite_lock"] = lock
    return lock


async def claim_and_process(svc: Services, *, limit: int = 200) -> list[DueResult]:
    """Claim due reminders and settle each (sent, dropped, deferred, retried); one transaction."""
    _ensure_handlers()
    now = svc.clock.now()
    hooks: list[AfterCommit] = []
    results: list[DueResult] = []
    async with svc.sessions() as session, session.begin():
        stmt = (
            select(Reminder)
            .where(Reminder.state == "pending", Reminder.due_at <= now)
            .order_by(Reminder.due_at, Reminder.id)
            .limit(limit)
        )
        if svc.engine.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        for reminder in (await session.scalars(stmt)).all():
            rid, attempts, kind, who = reminder.id, reminder.attempts, reminder.kind, _who(reminder)
            mark = len(session.info.get("schedule_after_commit", []))
            try:
                async with session.begin_nested():
                    result = await _process(svc, session, reminder, now)
            except Exception as exc:  # one bad reminder is retried later, never blocks the batch
                del session.info.get("schedule_after_commit", [])[mark:]
                log.exception("reminder delivery failed", extra={"fields": {"id": rid, "kind": kind, "to": who}})
                result = await _failed(svc, session, rid, attempts, exc, now)
            results.append(result)
        hooks = list(session.info.pop("schedule_after_commit", []))
    for hook in hooks:
        await hook()
    for result in results:
        log.info("reminder %s", result.outcome, extra={"fields": {"id": result.reminder_id, "kind": result.kind}})
    return results


async def run_due(svc: Services, *, limit: int = 200) -> int:
    """Claim and settle due reminders exactly once; returns how many rows were claimed."""
    if svc.engine.dialect.name == "postgresql":
        return len(await claim_and_process(svc, limit=limit))
    async with _sqlite_guard(svc):
        return len(await claim_and_process(svc, limit=limit))


# --- the clock ----------------------------------------------------------------------------------


async def poll(svc: Services) -> None:
    """One tick of the periodic job: drain what is due, batch after batch."""
    config = load_schedule_config()
    while await run_due(svc, limit=config.batch) >= config.batch:
        pass


async def _tick(svc: Services) -> None:
    try:
        await poll(svc)
    except Exception:  # the job's boundary: log it, the next tick tries again
        log.exception("schedule poll failed")


async def _daily(svc: Services) -> None:
    from bot.hotspots import run_daily

    try:
        await run_daily(svc)
    except Exception:  # the job's boundary: log it, tomorrow's run tries again
        log.exception("daily hotspot search failed")


async def purge_state(svc: Services) -> int:
    """Delete the state store's expired entries (retries' answers, finished locks' marks): on the
    embedded store every message leaves one, which get() ignores once expired but the file kept.
    WeCom deliveries' answers kept in the database (InboundDedup) go after dedup_ttl_s too."""
    try:
        purged = await svc.store.purge_expired()
        since = svc.clock.now() - timedelta(seconds=svc.settings.dedup_ttl_s)
        async with svc.sessions() as session, session.begin():
            records = await session.execute(delete(InboundDedup).where(InboundDedup.created_at < since))
        purged += int(records.rowcount or 0)  # type: ignore[attr-defined]
    except Exception:  # the job's boundary: log it, the next run tries again
        log.exception("state store purge failed")
        return 0
    if purged:
        log.info("state store: %d expired entries purged", purged)
    return purged


class _InFlight:
    """The scheduler's job runs still going, so that stopping can wait for them: a run cut off at
    shutdown would leave its transaction open on a connection nobody returns."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def wrap(self, job: Callable[[Services], Awaitable[Any]]) -> Callable[[Services], Awaitable[None]]:
        async def run(svc: Services) -> None:
            task = asyncio.current_task()
            if task is not None:
                self.tasks.add(task)
            try:
                await job(svc)
            finally:
                self.tasks.discard(task)  # type: ignore[arg-type]

        run.__name__ = getattr(job, "__name__", "job")
        return run

    async def wait(self, timeout: float) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=timeout)


def make_scheduler(svc: Services, in_flight: _InFlight | None = None) -> Any:
    """An AsyncIOScheduler with the poll job, the daily hotspot job and the hourly purge of the
    state store's expired entries (not started)."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    config = load_schedule_config()
    scheduler = AsyncIOScheduler(timezone=ZoneInfo(svc.settings.timezone))
    in_flight = in_flight or _InFlight()
    scheduler.add_job(
        in_flight.wrap(_tick), IntervalTrigger(seconds=config.poll_s), args=[svc], id="reminders",
        max_instances=1, coalesce=True, next_run_time=datetime.now(timezone.utc),
    )
    run_at = parse_hhmm(config.hotspots.run_at)
    scheduler.add_job(
        in_flight.wrap(_daily), CronTrigger(hour=run_at.hour, minute=run_at.minute), args=[svc],
        id="hotspots",
        max_instances=1, coalesce=True, misfire_grace_time=3600,
    )
    scheduler.add_job(
        in_flight.wrap(purge_state), IntervalTrigger(hours=1), args=[svc], id="purge_state",
        max_instances=1, coalesce=True,
    )
    return scheduler


SCHEDULER = web.AppKey("scheduler", object)


def setup(app: web.Application) -> None:
    """Load the activities and run the scheduler while the app runs (when settings.scheduler)."""
    from bot.app import SERVICES

    async def scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
        from bot.activities import load_activities

        svc = app[SERVICES]
        await load_activities(svc)
        in_flight = _InFlight()
        scheduler = make_scheduler(svc, in_flight) if svc.settings.scheduler else None
        if scheduler is not None:
            scheduler.start()
        app[SCHEDULER] = scheduler
        yield
        if scheduler is not None:
            # No new runs, then let the ones going finish their transaction: shutting down first
            # would cancel them (APScheduler's asyncio executor cancels what is still running).
            scheduler.pause()
            await in_flight.wait(timeout=30.0)
            scheduler.shutdown(wait=False)

    app.cleanup_ctx.append(scheduler_ctx)
