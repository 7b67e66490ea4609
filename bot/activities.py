"""Volunteer activities: defined in config/activities.toml, signed up for in chat ("报名 活动名",
"报名 2" by the number 近期活动 shows, "我想参加敬老院探访"), with a reminder the evening before, one
about an hour before it starts ([activities] remind_before_s) and a thank-you afterwards (durable
reminder rows). "我的报名" lists the resident's own signups.

A coordinator or staff calls one off in WeCom (取消活动 X 原因, `cancel_activity`): it is no longer
offered or listed, its reminders are dropped and each resident signed up is told once. One taken
out of the TOML file is cancelled quietly when nobody is signed up; with signups it is kept (and a
warning logged at each load) until someone sends 取消活动, so residents are never left untold."""

from __future__ import annotations

import logging
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import outbox, reminders
from bot.clock import local
from bot.config_files import read_toml
from bot.flows.commands import normalize
from bot.intents.normalize import simplified
from bot.privacy import hash_openid
from bot.schedule import (
    deliver_plain, held_until, load_schedule_config, parse_hhmm, quiet_until, register_kind_handler,
    register_timed_kind,
)
from bot.services import Services
from bot.tickets import ACTIVE
from bot.staff_actions import audit
from storage import fastsql
from storage.fastsql import Prepared, Transaction
from storage.models import Activity, ActivitySignup, Person, Reminder, Resident, Ticket

if TYPE_CHECKING:
    from bot.flows.base import Context

log = logging.getLogger(__name__)

CAUSE = "activity"
CONFIG = "config"  # cancelled_by of an activity taken out of the TOML file with nobody signed up
MAX_REASON = 100  # characters of a cancellation's reason (it is in every signed-up resident's push)
KINDS = ("activity_remind", "activity_soon", "activity_thanks")
REMINDED = ("activity_remind", "activity_soon")  # the reminders a 去不了了 may answer
LISTED = 5  # upcoming activities a listing shows, numbered for 报名 N
LOADED = "activities.loaded_keys"  # svc.extras: the keys of the file this process loaded last


@dataclass(frozen=True)
class ActivityDef:
    """One activity as config/activities.toml defines it (times aware UTC)."""

    key: str
    title: str
    place: str
    start_at: datetime
    end_at: datetime


@dataclass(frozen=True)
class SignupResult:
    """What a sign-up (or cancellation) did: signed, already, cancelled, not_signed, started,
    not_found; the activity when one was found; the reply for the resident."""

    status: str
    activity: Activity | None
    reply: str


def _parse_time(value: Any, tz: ZoneInfo, where: str) -> datetime:
    try:
        return datetime.strptime(str(value).strip(), "%Y-%m-%d %H:%M").replace(tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"{where}: time {value!r} is not 'YYYY-MM-DD HH:MM'") from exc


def read_activities(path: Path, tz: str) -> list[ActivityDef]:
    """The activities a TOML file defines; ValueError naming the entry on bad input."""
    data = read_toml(path)
    zone = ZoneInfo(tz)
    found: list[ActivityDef] = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("activities", [])):
        where = f"{path}: activities[{i}]"
        key, title = str(raw.get("key", "")).strip(), str(raw.get("title", "")).strip()
        if not key or not title:
            raise ValueError(f"{where}: key and title are required")
        if key in seen:
            raise ValueError(f"{where}: duplicate key {key!r}")
        seen.add(key)
        start = _parse_time(raw.get("start"), zone, where)
        end = _parse_time(raw.get("end"), zone, where)
        if end <= start:
            raise ValueError(f"{where}: end must be after start")
        found.append(ActivityDef(key, title, str(raw.get("place", "")).strip(), start, end))
    return found


async def load_activities(svc: Services, path: Path | None = None) -> int:
    """Upsert the configured activities by key (re-planning reminders when times change); how many."""
    path = path or load_schedule_config().activities_path
    if not path.exists():
        log.warning("no activities file at %s", path)
        return 0
    defs = read_activities(path, svc.settings.timezone)
    svc.extras[LOADED] = frozenset(item.key for item in defs)
    try:
        await _upsert(svc, defs)
    except IntegrityError:
        # Workers starting together on a new database both found an activity missing and both
        # added it: the other's row is there now, so this pass updates it instead.
        await _upsert(svc, defs)
    return len(defs)


async def _upsert(svc: Services, defs: list[ActivityDef]) -> None:
    now = svc.clock.now()
    async with svc.sessions() as session, session.begin():
        await _retire_removed(svc, session, {item.key for item in defs}, now)
        for item in defs:
            row = await session.scalar(select(Activity).where(Activity.key == item.key).with_for_update())
            if row is None:
                session.add(Activity(key=item.key, title=item.title, place=item.place,
                                     start_at=item.start_at, end_at=item.end_at, created_at=now))
                continue
            if row.cancelled_by == CONFIG:  # taken out of the file, now back in it: offered again
                row.cancelled_at = row.cancelled_by = row.cancel_reason = None
            moved = row.start_at != item.start_at or row.end_at != item.end_at
            row.title, row.place, row.start_at, row.end_at = item.title, item.place, item.start_at, item.end_at
            if moved and row.cancelled_at is None:
                await session.flush()
                signups = await session.scalars(
                    select(ActivitySignup).where(ActivitySignup.activity_id == row.id, ActivitySignup.status == "signed")
                )
                for signup in signups.all():
                    await reminders.drop_for_cause(session, CAUSE, signup.id)
                    await _plan(svc, session, row, signup)


async def _live_signups(session: AsyncSession, activity_id: int) -> list[ActivitySignup]:
    rows = await session.scalars(select(ActivitySignup).where(
        ActivitySignup.activity_id == activity_id, ActivitySignup.status == "signed").order_by(ActivitySignup.id))
    return list(rows)


async def _retire_removed(svc: Services, session: AsyncSession, keys: set[str], now: datetime) -> None:
    """Activities not ended that the file no longer has: cancelled quietly when nobody is signed
    up; kept, with a warning, when residents are (only 取消活动 tells them)."""
    rows = await session.scalars(select(Activity).where(
        Activity.key.not_in(keys) if keys else Activity.id.is_not(None),
        Activity.cancelled_at.is_(None), Activity.end_at > now).with_for_update())
    for row in rows.all():
        signed = len(await _live_signups(session, row.id))
        if signed:
            log.warning(
                "activity %s (%s) is no longer in the activities file but %d resident(s) are signed up: "
                "it is kept, and still reminds them, until a coordinator sends 取消活动 %s",
                row.key, row.title, signed, row.key,
            )
            continue
        row.cancelled_at, row.cancelled_by = now, CONFIG
        log.info("activity %s removed from the activities file: no longer offered", row.key)


def configured_keys(svc: Services) -> frozenset[str] | None:
    """The keys of the activities file this process loaded (else of the configured file); None
    when that file cannot be read now (then nothing is said to be taken out of it)."""
    loaded = svc.extras.get(LOADED)
    if loaded is None:
        path = load_schedule_config().activities_path
        try:
            loaded = frozenset(a.key for a in read_activities(path, svc.settings.timezone))
        except (OSError, ValueError) as exc:  # tomllib's errors are ValueErrors
            log.warning("activities file %s not readable: %s", path, exc)
            return None
    return frozenset(loaded)


async def not_ended(session: AsyncSession, now: datetime) -> list[tuple[Activity, int]]:
    """Activities not ended, soonest first — cancelled ones too, but not those taken out of the file
    with nobody signed up — each with how many residents are signed up (the console's 活动 page)."""
    signed = (select(ActivitySignup.activity_id, func.count().label("n"))
              .where(ActivitySignup.status == "signed").group_by(ActivitySignup.activity_id).subquery())
    rows = await session.execute(
        select(Activity, func.coalesce(signed.c.n, 0)).outerjoin(signed, signed.c.activity_id == Activity.id)
        .where(Activity.end_at > now, or_(Activity.cancelled_by.is_(None), Activity.cancelled_by != CONFIG))
        .order_by(Activity.start_at, Activity.id))
    return [(a, int(n)) for a, n in rows.all()]


async def ended(session: AsyncSession, now: datetime, *, offset: int = 0,
                limit: int = 10) -> tuple[list[tuple[Activity, list[ActivitySignup]]], int]:
    """Activities ended, the latest first (offset, limit: a page of them) — cancelled ones too, but
    not those taken out of the file with nobody signed up — each with the residents still signed up
    at the end, in the order they signed up; and how many ended in all (the console's 活动 page).
    Who came is not recorded: a signup is all there is."""
    shown = and_(Activity.end_at <= now, or_(Activity.cancelled_by.is_(None), Activity.cancelled_by != CONFIG))
    total = int(await session.scalar(select(func.count()).select_from(Activity).where(shown)) or 0)
    rows = list(await session.scalars(
        select(Activity).where(shown).order_by(Activity.end_at.desc(), Activity.id.desc()).offset(offset).limit(limit)))
    signups: dict[int, list[ActivitySignup]] = {a.id: [] for a in rows}
    if rows:
        for signup in await session.scalars(select(ActivitySignup).where(
                ActivitySignup.activity_id.in_(list(signups)), ActivitySignup.status == "signed",
        ).order_by(ActivitySignup.created_at, ActivitySignup.id)):
            signups[signup.activity_id].append(signup)
    return [(a, signups[a.id]) for a in rows], total


async def list_upcoming(session: AsyncSession, now: datetime) -> list[Activity]:
    """Activities not yet started nor cancelled, soonest first."""
    rows = await session.scalars(select(Activity).where(
        Activity.start_at > now, Activity.cancelled_at.is_(None)).order_by(Activity.start_at))
    return list(rows)


_A = Activity.__table__
# Every activity but those taken out of the TOML file unused (whole rows, by start), on the driver
# (storage.fastsql): 报名 … on the reply path looked them up through the ORM.
_FINDABLE = Prepared(select(_A).where(or_(_A.c.cancelled_at.is_(None), _A.c.cancelled_by != literal(CONFIG)))
                     .order_by(_A.c.start_at))


async def activity_row(target: AsyncSession | Transaction, name: str, now: datetime) -> dict[str, Any] | None:
    """The activity a resident means, as its row (column → value): by key, by title, or by a part
    of the title (upcoming first); by its number among the upcoming ones listed (报名 2)."""
    name = name.strip()
    if not name:
        return None
    rows = await fastsql.read(target, _FINDABLE, {})
    number = _number(name)
    if number is not None:  # 报名 2: the second of the upcoming ones as 近期活动 lists them
        shown = [a for a in rows if a["start_at"] > now and a["cancelled_at"] is None][:LISTED]
        return shown[number - 1] if 1 <= number <= len(shown) else None
    for match in (
        lambda a: a["key"] == name,
        lambda a: a["title"] == name,
        lambda a: name in a["title"] or a["title"] in name,
    ):
        hits = [a for a in rows if match(a)]
        if hits:  # upcoming and held first; a cancelled one still found, so 报名 it says so
            upcoming = [a for a in hits if a["start_at"] > now]
            return min(upcoming or hits, key=lambda a: (a["cancelled_at"] is not None, a["start_at"]))
    return None


async def find_activity(session: AsyncSession, name: str, now: datetime) -> Activity | None:
    """The activity a resident means (activity_row), as the session's object."""
    row = await activity_row(session, name, now)
    return fastsql.adopt(session, Activity, row) if row is not None else None


_ORDINAL = re.compile(r"^(?:第)?(?P<n>\d{1,2}|[一二三四五六七八九十])(?:个|项)?(?:活动)?$")
_DIGITS = "一二三四五六七八九十"


def _number(name: str) -> int | None:
    """The number an activity is picked by: 1, 第一个, 第2个; None for a name."""
    found = _ORDINAL.match(normalize(name))
    if found is None:
        return None
    said = found.group("n")
    return int(said) if said.isdigit() else _DIGITS.index(said) + 1


def _when(svc: Services, activity: Activity) -> str:
    start, end = local(activity.start_at, svc.tz), local(activity.end_at, svc.tz)
    return f"{start.month}月{start.day}日 {start:%H:%M}–{end:%H:%M}"


when_text = _when  # an activity's time as residents read it (1月30日 09:00–12:00, not 01月30日)


async def _upcoming_text(svc: Services, session: AsyncSession, now: datetime) -> str:
    rows = await list_upcoming(session, now)
    if not rows:
        return svc.texts.get("activities.none_upcoming")
    return "\n".join(
        svc.texts.get("activities.upcoming_line", n=i, title=a.title, when=_when(svc, a), place=a.place or "-")
        for i, a in enumerate(rows[:LISTED], 1)
    )


async def _not_found(svc: Services, session: AsyncSession, name: str, now: datetime) -> str:
    """No activity of that name: the upcoming ones, or that there are none for now."""
    if not await list_upcoming(session, now):
        return svc.texts.get("activities.not_found_none", name=name.strip()[:30])
    return svc.texts.get("activities.not_found", name=name.strip()[:30], upcoming=await _upcoming_text(svc, session, now))


def _day_word(svc: Services, day: date, at: datetime) -> str:
    """day as said at `at` (local dates): 今天, 明天, 昨天, or 11月26日."""
    today = local(at, svc.tz).date()
    for offset, key in ((0, "day_today"), (1, "day_tomorrow"), (-1, "day_yesterday")):
        if day == today + timedelta(days=offset):
            return svc.texts.get(f"activities.{key}")
    return svc.texts.get("activities.day_date", month=day.month, day=day.day)


def _message(svc: Services, activity: Activity, key: str, at: datetime) -> dict[str, Any]:
    """A reminder or thank-you as read at `at`: the day said from that moment (明天 19:00 the evening
    before; 昨天 for a thank-you the quiet hours held to the next morning) and the minutes left."""
    t = svc.texts
    start = local(activity.start_at, svc.tz)
    day = (local(activity.end_at, svc.tz) if key == "thanks" else start).date()
    return {
        "text": t.get(f"activities.{key}", title=activity.title, time=f"{start:%H:%M}", place=activity.place or "-",
                      minutes=max(1, round((activity.start_at - at).total_seconds() / 60)),
                      day=_day_word(svc, day, at)),
        "template": {
            "title": t.get("activities.template_title"),
            "fields": {
                t.get("activities.field_title"): activity.title,
                t.get("activities.field_when"): _when(svc, activity),
                t.get("activities.field_place"): activity.place or "-",
            },
        },
    }


async def _plan(svc: Services, session: AsyncSession, activity: Activity, signup: ActivitySignup) -> None:
    """The evening-before reminder and the one shortly before the start (each when still ahead:
    a resident signing up within the hour gets no "starts in an hour"), and the thank-you, for one
    signup. The shortly-before one goes at its time even in quiet hours (an early activity), as a
    booking's does: held to their end it would come late or after the start."""
    times = load_schedule_config().activities
    now = svc.clock.now()
    zone = ZoneInfo(svc.tz)
    eve = local(activity.start_at, svc.tz).date() - timedelta(days=1)
    remind_at = datetime.combine(eve, parse_hhmm(times.remind_at), zone)
    soon_at = activity.start_at - timedelta(seconds=times.remind_before_s)
    thanks_at = activity.end_at + timedelta(seconds=times.thanks_after_s)
    generation = f"{int(signup.created_at.timestamp())}:{int(activity.start_at.timestamp())}"
    plan = []
    if remind_at > now:
        plan.append(("activity_remind", remind_at, "reminder"))
    if times.remind_before_s > 0 and soon_at > now and soon_at > remind_at:
        plan.append(("activity_soon", soon_at, "reminder_soon"))
    plan.append(("activity_thanks", thanks_at, "thanks"))
    for kind, due, key in plan:
        reminder = await reminders.schedule(
            session, kind=kind, due_at=due, channel="wechat", target=signup.openid,
            payload=_message(svc, activity, key, due), now=now, cause_type=CAUSE,
            cause_id=signup.id, dedup_key=f"activity:{signup.id}:{kind}:{generation}",
            urgent=kind == "activity_soon" and quiet_until(due, svc.settings) is not None,
        )
        if reminder is not None:
            reminder.payload = {**reminder.payload, "generation": generation}


async def _signup_live(session: AsyncSession, reminder: Reminder) -> bool:
    """Cause check: the signup still stands, for the activity at the time the reminder was made for."""
    signup = await session.get(ActivitySignup, reminder.cause_id) if reminder.cause_id is not None else None
    if signup is None or signup.status != "signed":
        return False
    activity = await session.get(Activity, signup.activity_id)
    if activity is None or activity.cancelled_at is not None:
        return False
    generation = f"{int(signup.created_at.timestamp())}:{int(activity.start_at.timestamp())}"
    return (reminder.payload or {}).get("generation") == generation


MESSAGE_KEYS = {"activity_remind": "reminder", "activity_soon": "reminder_soon", "activity_thanks": "thanks"}


async def _deliver(svc: Services, session: AsyncSession, reminder: Reminder) -> bool:
    """An activity's reminder or thank-you, worded as it goes out (held by quiet hours or a stopped
    scheduler, 明天 and 今天 would be wrong): a reminder claimed once the activity has started is
    dropped, not sent as 约60分钟后 to someone already there."""
    signup = await session.get(ActivitySignup, reminder.cause_id) if reminder.cause_id is not None else None
    activity = await session.get(Activity, signup.activity_id) if signup is not None else None
    now = svc.clock.now()
    if activity is None or (reminder.kind in REMINDED and activity.start_at <= now):
        return False
    message = _message(svc, activity, MESSAGE_KEYS[reminder.kind], now)
    reminder.payload = {**(reminder.payload or {}), "message": message}
    return await deliver_plain(session, reminder, now)


reminders.register_cause_check(CAUSE, _signup_live)
for _kind in KINDS:  # 明天 09:00 开始, 今天的志愿活动: said the next morning, they would be wrong
    register_timed_kind(_kind)
    register_kind_handler(_kind, _deliver)


async def upcoming_reply(svc: Services, session: AsyncSession) -> str:
    """The residents' answer to 近期活动: what can be signed up for, soonest first."""
    rows = await list_upcoming(session, svc.clock.now())
    if not rows:
        return svc.texts.get("activities.none_upcoming")
    return svc.texts.get("activities.upcoming", upcoming=await _upcoming_text(svc, session, svc.clock.now()))


async def _named(svc: Services, session: AsyncSession, activity_key: str, now: datetime) -> Activity | SignupResult:
    """The activity a sign-up or a cancellation names, or the not_found result (the upcoming ones)."""
    activity = await find_activity(session, activity_key, now)
    if activity is None:
        return SignupResult("not_found", None, await _not_found(svc, session, activity_key, now))
    return activity


async def _signup_of(session: AsyncSession, activity: Activity, openid: str) -> ActivitySignup | None:
    """A resident's signup row for an activity (signed or cancelled), or None."""
    return await session.scalar(
        select(ActivitySignup).where(ActivitySignup.activity_id == activity.id, ActivitySignup.openid == openid)
    )


async def sign_up(svc: Services, session: AsyncSession, openid: str, activity_key: str) -> SignupResult:
    """Sign a resident up for an activity (by key or title) and plan its reminders; with the reply."""
    t = svc.texts
    now = svc.clock.now()
    activity = await _named(svc, session, activity_key, now)
    if isinstance(activity, SignupResult):
        return activity
    if activity.cancelled_at is not None:
        return SignupResult("called_off", activity, t.get(
            "activities.called_off", title=activity.title, upcoming=await _upcoming_text(svc, session, now)))
    if activity.start_at <= now:
        return SignupResult("started", activity, t.get(
            "activities.started", title=activity.title, upcoming=await _upcoming_text(svc, session, now)))
    signup = await _signup_of(session, activity, openid)
    values = {"title": activity.title, "when": _when(svc, activity), "place": activity.place or "-"}
    if signup is not None and signup.status == "signed":
        return SignupResult("already", activity, t.get("activities.already", **values))
    if signup is None:
        signup = ActivitySignup(activity_id=activity.id, openid=openid, status="signed", created_at=now)
        session.add(signup)
    else:
        signup.status, signup.created_at = "signed", now
    await session.flush()
    await _plan(svc, session, activity, signup)
    log.info("activity signup", extra={"fields": {"activity": activity.key, "openid": hash_openid(openid)}})
    return SignupResult("signed", activity, t.get("activities.signed", **values))


async def cancel_signup(svc: Services, session: AsyncSession, openid: str, activity_key: str) -> SignupResult:
    """Withdraw a resident's signup; its pending reminders are dropped."""
    t = svc.texts
    now = svc.clock.now()
    activity = await _named(svc, session, activity_key, now)
    if isinstance(activity, SignupResult):
        return activity
    signup = await _signup_of(session, activity, openid)
    if signup is None or signup.status != "signed":
        return SignupResult("not_signed", activity, t.get("activities.not_signed", title=activity.title))
    signup.status = "cancelled"
    await reminders.drop_for_cause(session, CAUSE, signup.id)
    return SignupResult("cancelled", activity, t.get("activities.cancelled", title=activity.title))


async def signed_activities(session: AsyncSession, openid: str, now: datetime) -> list[Activity]:
    """The activities a resident is signed up for that have not ended yet, soonest first."""
    rows = await session.scalars(
        select(Activity)
        .join(ActivitySignup, ActivitySignup.activity_id == Activity.id)
        .where(ActivitySignup.openid == openid, ActivitySignup.status == "signed", Activity.end_at > now,
               Activity.cancelled_at.is_(None))
        .order_by(Activity.start_at)
    )
    return list(rows)


async def my_signups_reply(svc: Services, session: AsyncSession, openid: str) -> str:
    """The resident's answer to 我的报名: their signups with how to cancel one, or that there are none."""
    rows = await signed_activities(session, openid, svc.clock.now())
    if not rows:
        return svc.texts.get("activities.mine_none")
    lines = "\n".join(
        svc.texts.get("activities.mine_line", title=a.title, when=_when(svc, a), place=a.place or "-") for a in rows
    )
    return svc.texts.get("activities.mine", lines=lines, title=rows[0].title)


async def _registration(ctx: Context) -> str | None:
    """The resident's volunteer registration (志愿者报名, 党员报到) still under review, as 我报名了什么
    names it too (it was only 您目前没有报名的志愿活动, minutes after they registered); None when
    none waits (the coordinator's decision reaches them by itself)."""
    ticket = await ctx.session.scalar(
        select(Ticket).where(Ticket.resident == ctx.openid, Ticket.kind == "volunteer_signup",
                             Ticket.status.in_(ACTIVE)).order_by(Ticket.id.desc()).limit(1))
    return None if ticket is None else ctx.svc.texts.get("activities.registered_open", number=ticket.number)


# 我的报名, 我报名了哪些活动, 我报名了啥: the resident's signups.
_MINE = re.compile(
    r"^(?:查看|查一下|看看)?(?:我的报名|我的活动|我报名的活动|我(?:都)?报名了(?:哪些|什么|啥|几个)(?:志愿)?(?:活动)?|"
    r"我(?:都)?报了(?:哪些|什么|啥|几个)(?:志愿)?活动|"  # 我报了啥 alone may be a report (报修)
    r"(?:我)?参加了(?:哪些|什么|啥)活动)(?:呢|啊|吗)?$"
)


async def reminded_drop(ctx: Context) -> str | None:
    """去不了了 / 不去了 alone (bot.flows.booking_change.drops_reminded) after an activity's reminder
    and before it starts: that signup withdrawn, as 取消报名 would, with how to sign up again. None
    when no activity was reminded of, or its signup no longer stands."""
    activity = await _reminded(ctx)
    return await _withdrawn(ctx, activity) if activity is not None else None


async def reminded(ctx: Context) -> Activity | None:
    """The activity the resident was last reminded of, while their signup stands and it has not
    started (好的 准时到 to its reminder: bot.flows.reminded_ack); None otherwise."""
    return await _reminded(ctx)


async def _reminded(ctx: Context) -> Activity | None:
    """The activity of the resident's latest activity reminder, while their signup stands and it
    has not started; None otherwise."""
    signup_id = await ctx.session.scalar(
        select(Reminder.cause_id).where(
            Reminder.target == ctx.openid, Reminder.kind.in_(REMINDED), Reminder.cause_type == CAUSE,
            Reminder.state == "done",
        ).order_by(Reminder.done_at.desc(), Reminder.id.desc()).limit(1)
    )
    signup = await ctx.session.get(ActivitySignup, signup_id) if signup_id is not None else None
    activity = await ctx.session.get(Activity, signup.activity_id) if signup is not None else None
    if (signup is None or activity is None or signup.status != "signed" or activity.start_at <= ctx.now
            or activity.cancelled_at is not None):
        return None
    return activity


async def reminded_move(ctx: Context, text: str) -> str | None:
    """改到下午 / 能不能改个时间 to an activity's reminder, with no booking ahead to move: an
    activity's time is the organisers', so it is said it stays, with how to withdraw — it was told
    there was no elderly-service booking, as if the reminder had been about one. None otherwise."""
    from bot import bookings
    from bot.flows.elderly import booking_request

    asked = booking_request(text)
    if asked is None or asked[0] != "change" or await bookings.upcoming(ctx.svc, ctx.session, ctx.openid):
        return None
    activity = await _reminded(ctx)
    if activity is None:
        return None
    return ctx.svc.texts.get("activities.time_fixed", title=activity.title, when=_when(ctx.svc, activity))


# 我不想去了, 不参加了, 算了不报了: a signup dropped without naming it.
_DROP_BARE = re.compile(
    r"^(?:那|那就|那我|算了|还是|唉|哎|这次|这回|我|俺|我们|[，,\s])*(?:还是|就|也)*"
    r"(?:不想去了|不去了|不想参加了|不参加了|不去参加了|去不了了?|参加不了了?|不报了|不报名了|不想报了|退出了?)"
    r"(?:吧|啦|呀|啊|哈)?$"
)
JUST_SIGNED = timedelta(hours=2)  # a bare 不去了 this soon after a signup (no reminder yet) drops it


async def bare_drop(ctx: Context, text: str) -> str | None:
    """我不想去了 / 不参加了 alone, from a resident who was reminded of an activity (reminded_drop)
    or signed up for one in the last JUST_SIGNED: that signup withdrawn, as 取消报名 would; with
    several signed up that soon, their signups listed with how to cancel one. None otherwise."""
    if not _DROP_BARE.match(normalize(text)):
        return None
    reminded = await reminded_drop(ctx)
    if reminded is not None:
        return reminded
    rows = await ctx.session.scalars(
        select(Activity)
        .join(ActivitySignup, ActivitySignup.activity_id == Activity.id)
        .where(ActivitySignup.openid == ctx.openid, ActivitySignup.status == "signed",
               ActivitySignup.created_at >= ctx.now - JUST_SIGNED, Activity.start_at > ctx.now,
               Activity.cancelled_at.is_(None))
    )
    just = list(rows)
    if not just:
        return None
    if len(just) == 1:
        return await _withdrawn(ctx, just[0])
    return ctx.svc.texts.get("activities.drop_which") + "\n" + await my_signups_reply(ctx.svc, ctx.session, ctx.openid)


# 楼道清洁我不去了, 退出楼道清洁, 不参加敬老院探访了: an activity named with a drop word.
_DROP_NAMED = (
    re.compile(r"^(?:我|俺)?(?:要|想)?(?:退出|不参加|不去|去不了|参加不了)(?P<name>.+?)(?:活动)?(?:了|啦|吧)*$"),
    re.compile(r"^(?P<name>.+?)(?:活动)?(?:我|俺)?也?就?(?:不去了|不参加了|去不了了?|参加不了了?|退出了?|不报了)"
               r"(?:吧|啦|呀)?$"),
)


_POINTER = re.compile(r"(?:的)?(?:那个|这个|那次|这次)?(?:活动)?$")  # 敬老院那个: 敬老院


async def named_drop(ctx: Context, text: str) -> str | None:
    """楼道清洁我不去了 / 退出楼道清洁 from a resident signed up for it: that signup withdrawn, as
    取消报名 would (清洁 in it is no 助洁 booking to cancel). None when no signup of theirs is named."""
    said = normalize(text)
    found = next((m for m in (p.match(said) for p in _DROP_NAMED) if m is not None), None)
    name = _POINTER.sub("", found.group("name")) if found is not None else ""
    if len(name) < 2 or _number(name) is not None:
        return None
    signed = await signed_activities(ctx.session, ctx.openid, ctx.now)
    activity = next((a for a in signed if name in a.title or a.title in name), None)
    if activity is None:
        return None
    return await _withdrawn(ctx, activity)


async def _withdrawn(ctx: Context, activity: Activity) -> str:
    """The resident's signup to activity withdrawn (取消报名), with how to sign up again."""
    result = await cancel_signup(ctx.svc, ctx.session, ctx.openid, activity.key)
    return result.reply + "\n" + ctx.svc.texts.get("activities.sign_up_again", title=activity.title)


def asks_mine(text: str) -> bool:
    """Whether text asks for the resident's own signups (我的报名, 我报名了哪些活动)."""
    return bool(_MINE.match(normalize(text)))


# A bare 取消报名: the only signup is cancelled; with several, which one? (the list says how).
_CANCEL_BARE = re.compile(r"^(?:我)?(?:要|想)?取消(?:一下)?(?:我的)?(?:活动)?报名(?:吧|了|呢|啊)?$")
# 我要参加楼道清洁, 我想参加敬老院探访活动, 敬老院探访 报名: a real activity named is a signup.
_JOIN = re.compile(r"^(?:我|我们)?(?:也)?(?:要|想|想要|可以|能)?(?:去)?参加(?:一下)?(?P<name>.+)$")
# 我想去写春联: only right after 近期活动's list (我想去敬老院 alone may be about a care home).
_GO = re.compile(r"^(?:我|我们)?(?:也)?(?:要|想|想要|可以|能)去(?:一下)?(?P<name>.+)$")
# What a signup message says after the activity (我想去写春联 我和我老伴两个人): another clause.
_CLAUSE = re.compile(r"[\s,，。；;！!]+")
# Someone coming along (我和我老伴两个人, 带上孙子, 我们一家三口): each signs up on their own WeChat.
_COMPANY = re.compile(r"两个人|两人|俩人|三个人|几个人|一家|全家|我们家|带上|带着|带我|和我老伴|跟我老伴|我和|我跟|我们俩|我们两")
# A bare number right after 近期活动 listed them (4, 第四个): that activity, not the menu's 4.
PICK_AFTER_LIST_S = 600
_TRAILING = re.compile(r"^(?P<name>.+?)(?:活动)?(?:我要|我想)?报(?:个)?名$")
_NOT_ACTIVITIES = ("志愿", "义工", "党员", "报到")  # 参加志愿服务: the volunteer signup, not an activity


# 写春联几点开始, 敬老院探访在哪集合, 楼道清洁什么时候: an activity's time and place asked.
_ASKED_WHEN = re.compile(
    r"^(?P<name>.+?)(?:的?(?:那个|这个)|的)?(?:活动)?(?:是)?(?:几点|什么时候|啥时候|哪天|几号|在哪儿?|在哪里|在什么地方|在啥地方|地点在哪|时间)"
    r"(?:开始|集合|举行|办|去|见)?(?:啊|呀|呢|吗|哦)?$"
)


# 几点开始来着, 在哪集合 with no activity named: the one reminded of, else the only one signed up for.
_ASKED_BARE = re.compile(
    r"^(?:活动)?(?:是)?(?:几点|什么时候|啥时候|哪天|几号|在哪儿?|在哪里|在什么地方|在啥地方|地点在哪)"
    r"(?:开始|集合|举行)(?:来着)?(?:啊|呀|呢|吗|哦)?$"
)


async def asked_when(ctx: Context, said: str) -> str | None:
    """写春联几点开始: the activity's time and place, and whether the resident is signed up for it
    (else how to sign up); 几点开始来着 / 在哪集合 naming none, the activity reminded of or the only
    one signed up for (it was 没太明白 and the menu). None when no activity is named or meant so."""
    if _ASKED_BARE.match(said):
        signed = await signed_activities(ctx.session, ctx.openid, ctx.now)
        activity = await _reminded(ctx) or (signed[0] if len(signed) == 1 else None)
        if activity is None:
            return None
    else:
        found = _ASKED_WHEN.match(said)
        name = found.group("name") if found is not None else ""
        if len(name) < 2 or _number(name) is not None:
            return None
        activity = await find_activity(ctx.session, name, ctx.now)
    if activity is None or activity.cancelled_at is not None:
        return None
    signed = any(a.id == activity.id for a in await signed_activities(ctx.session, ctx.openid, ctx.now))
    tail = "activities.about_signed" if signed else "activities.about_unsigned"
    return ctx.svc.texts.get("activities.about", title=activity.title, when=_when(ctx.svc, activity),
                             place=activity.place or "-") + "\n" + ctx.svc.texts.get(tail, title=activity.title)


async def request(ctx: Context, text: str) -> str | None:
    """What the resident says about activities beyond 近期活动 / 报名 X / 取消报名 X (which the
    dialog reads itself): 我的报名 lists their signups, 写春联几点开始 is answered (asked_when), and so does a bare 取消报名 with several (with
    one, it is cancelled); 我要参加 X and X 报名
    sign up for X when X is a real activity. None when text is none of these, so it goes on to
    the classifier (我要参加志愿服务 is the volunteer signup)."""
    said = normalize(text)
    if _CANCEL_BARE.match(said):
        signed = await signed_activities(ctx.session, ctx.openid, ctx.now)
        if len(signed) == 1:
            return await _withdrawn(ctx, signed[0])
        return await my_signups_reply(ctx.svc, ctx.session, ctx.openid)
    if _MINE.match(said):
        mine = await my_signups_reply(ctx.svc, ctx.session, ctx.openid)
        registered = await _registration(ctx)
        return f"{registered}\n{mine}" if registered else mine
    about = await asked_when(ctx, said)
    if about is not None:  # 写春联几点开始
        return about
    first = normalize(_CLAUSE.split(text.strip())[0]) if text.strip() else ""
    found = _JOIN.match(said) or _TRAILING.match(said) or (_JOIN.match(first) if first != said else None)
    going = _GO.match(first) if found is None else None
    if going is not None and await ctx.svc.store.get(ctx.svc.store.key("activities_listed", ctx.openid)) is not None:
        found = going
    if found is None:
        return None
    name = found.group("name")
    if len(name) < 2 or any(w in name for w in _NOT_ACTIVITIES) or _number(name) is not None:
        return None
    if await activity_row(ctx.tx, name, ctx.now) is None:
        return None
    result = await sign_up(ctx.svc, ctx.session, ctx.openid, name)
    if result.status == "signed" and _COMPANY.search(said):
        return result.reply + "\n" + ctx.svc.texts.get("activities.company")
    return result.reply


async def listed(ctx: Context) -> None:
    """近期活动 was just listed to this resident: a bare number next picks from it (picked)."""
    await ctx.svc.store.set(ctx.svc.store.key("activities_listed", ctx.openid), {"at": ctx.now.isoformat()},
                            ttl=PICK_AFTER_LIST_S)


async def picked(ctx: Context, text: str) -> str | None:
    """4 / 第四个 within PICK_AFTER_LIST_S of 近期活动's list: the signup for that one (it started the
    menu's 4, 志愿者报名, while the list on the screen said 4. 迎新春写春联). None otherwise."""
    number = _number(text)
    if number is None:
        return None
    key = ctx.svc.store.key("activities_listed", ctx.openid)
    if await ctx.svc.store.get(key) is None:
        return None
    name = str(number)
    if await activity_row(ctx.tx, name, ctx.now) is None:
        return None  # 9 with four listed: the menu's, as before
    await ctx.svc.store.delete(key)
    return (await sign_up(ctx.svc, ctx.session, ctx.openid, name)).reply


# --- 取消活动: a coordinator or staff calls an activity off (WeCom) --------------------------------

_CALL_OFF = re.compile(r"^取消活动(?:[\s:：,，]+(?P<rest>.*))?$", re.DOTALL)
_SEP = re.compile(r"[\s,，;；:：。]+")
_DATE = re.compile(
    r"^(?:(?P<y>\d{4})[-/.年])?(?P<m>\d{1,2})(?:[-/.]|月)(?P<d>\d{1,2})(?:日|号)?(?:的)?(?P<name>.*)$")
_REASON_LEAD = re.compile(r"^(?:原因|因为|由于|因)[:：]?\s*")
CANCELLERS = ("volunteer_coordinator", "staff", "admin")


# 活动 / 活动报名 / 报名情况 / 活动名单 (WeCom, coordinator or staff): the activities not ended, with
# how many are signed up.
_OVERVIEW = re.compile(r"^(?:查看?|看看?)?(?:活动(?:列表|报名(?:情况)?|名单|情况)?|报名(?:情况|名单|人数))[?？]?$")


def asks_overview(text: str, who: Person) -> bool:
    """Whether text asks for the activities' signups (活动, 报名情况 …) from a coordinator or staff."""
    return who.active and any(r in CANCELLERS for r in who.roles or ()) and _OVERVIEW.match(
        simplified(unicodedata.normalize("NFKC", text)).strip()) is not None


async def overview(svc: Services, session: AsyncSession) -> str:
    """The activities not ended, soonest first: key, title, time, place and how many residents are
    signed up (a cancelled one marked so), then how to call one off."""
    t = svc.texts
    rows = await not_ended(session, svc.clock.now())
    if not rows:
        return t.get("activities.overview_none")
    lines = [t.get("activities.overview_line", ref=a.key, title=a.title, when=_when(svc, a), place=a.place or "-",
                   count=n, cancelled=t.get("activities.overview_cancelled") if a.cancelled_at is not None else "")
             for a, n in rows[:LISTED * 2]]
    return t.get("activities.overview", count=len(rows), lines="\n".join(lines))


def parse_cancel(text: str) -> str | None:
    """What follows 取消活动 (the activity, then the reason), '' for nothing; None when text is
    not that command."""
    found = _CALL_OFF.match(simplified(unicodedata.normalize("NFKC", text)).strip())
    return None if found is None else (found.group("rest") or "").strip()


def _split(rest: str) -> tuple[str, str]:
    """The activity named (its first word) and the reason (the rest, without 因为/原因)."""
    parts = _SEP.split(rest, maxsplit=1)
    ref = parts[0].strip()
    reason = _REASON_LEAD.sub("", parts[1].strip()) if len(parts) > 1 else ""
    return ref, reason.strip("。. ")


def _matches(svc: Services, rows: list[Activity], ref: str) -> list[Activity]:
    """The activities ref means: its key, its title, a part of its title, or its date (12月5日,
    12-05, 2026-12-05, 12月5日楼道清洁)."""
    for match in (lambda a: a.key == ref, lambda a: a.title == ref, lambda a: ref in a.title or a.title in ref):
        hits = [a for a in rows if match(a)]
        if hits:
            return hits
    dated = _DATE.match(ref)
    if dated is None:
        return []
    name = dated.group("name").strip()
    hits = []
    for a in rows:
        day = local(a.start_at, svc.tz).date()
        if (day.month, day.day) != (int(dated.group("m")), int(dated.group("d"))):
            continue
        if dated.group("y") and day.year != int(dated.group("y")):
            continue
        if name and name not in a.title and a.title not in name:
            continue
        hits.append(a)
    return hits


def _candidates(svc: Services, rows: list[Activity]) -> str:
    return "\n".join(svc.texts.get("activities.cancel_line", ref=a.key, title=a.title, when=_when(svc, a))
                     for a in rows) or svc.texts.get("activities.cancel_none_open")


async def cancel_activity(svc: Services, session: AsyncSession, who: Person, rest: str) -> str:
    """取消活动 <key, title or date> [reason] from a roster person: the activity cancelled (audited),
    its reminders dropped, each resident signed up told once through the outbox; the reply says
    how many were told. Refused (audited) for anyone not a coordinator or staff."""
    t = svc.texts
    now = svc.clock.now()
    if not who.active or not any(r in CANCELLERS for r in who.roles or ()):
        audit(session, who.id, "activity.cancel.refused", rest[:64], now, {"reason": "not_coordinator"})
        return t.get("activities.cancel_refused")
    open_rows = list(await session.scalars(select(Activity).where(
        Activity.cancelled_at.is_(None), Activity.end_at > now).order_by(Activity.start_at)))
    ref, reason = _split(rest)
    if not ref:
        return t.get("activities.cancel_usage", candidates=_candidates(svc, open_rows))
    if len(reason) > MAX_REASON:
        return t.get("activities.cancel_reason_long", limit=MAX_REASON)
    hits = _matches(svc, open_rows, ref)
    if not hits:
        done = _matches(svc, list(await session.scalars(select(Activity).where(
            or_(Activity.cancelled_at.is_not(None), Activity.end_at <= now)).order_by(Activity.start_at))), ref)
        if len(done) == 1 and done[0].cancelled_at is not None and done[0].cancelled_by != CONFIG:
            return t.get("activities.cancel_already", title=done[0].title,
                         at=f"{local(done[0].cancelled_at, svc.tz):%m月%d日 %H:%M}")
        if len(done) == 1 and done[0].end_at <= now and done[0].cancelled_at is None:
            return t.get("activities.cancel_ended", title=done[0].title)
        return t.get("activities.cancel_unknown", name=ref[:30], candidates=_candidates(svc, open_rows))
    if len(hits) > 1:
        return t.get("activities.cancel_ambiguous", name=ref[:30], candidates=_candidates(svc, hits))
    return (await call_off(svc, session, hits[0].id, who.id, reason, "wecom"))[1]


async def call_off(
    svc: Services, session: AsyncSession, activity_id: int, actor: str, reason: str, via: str,
) -> tuple[bool, str]:
    """Cancel one activity (row-locked): marked cancelled by actor with the reason, its reminders
    dropped and each resident signed up told once (_tell_called_off), audited activity.cancel
    (via wecom or console); the words for who cancelled it. One already cancelled (meanwhile, by
    someone else, or a form sent twice) or ended is said so, nothing done again: (done, words).
    The core of 取消活动 in WeCom and of the console's 活动 page."""
    t = svc.texts
    now = svc.clock.now()
    activity = await session.scalar(select(Activity).where(Activity.id == activity_id).with_for_update()
                                    .execution_options(populate_existing=True))
    if activity is None:
        raise LookupError(activity_id)
    if activity.cancelled_at is not None:
        return False, t.get("activities.cancel_already", title=activity.title,
                            at=f"{local(activity.cancelled_at, svc.tz):%m月%d日 %H:%M}")
    if activity.end_at <= now:
        return False, t.get("activities.cancel_ended", title=activity.title)
    activity.cancelled_at, activity.cancelled_by, activity.cancel_reason = now, actor, reason or None
    told = await _tell_called_off(svc, session, activity, reason, now)
    audit(session, actor, "activity.cancel", activity.key, now,
          {"title": activity.title, "reason": reason, "told": told, "via": via})
    log.info("activity cancelled", extra={"fields": {"activity": activity.key, "by": actor, "told": told, "via": via}})
    return True, t.get("activities.cancel_done", title=activity.title, when=_when(svc, activity), told=told,
                       reason=reason or t.get("activities.cancel_no_reason"))


async def _tell_called_off(svc: Services, session: AsyncSession, activity: Activity, reason: str,
                           now: datetime) -> int:
    """Drop each signup's reminders and push its resident, once, that the activity is off (after
    the quiet hours now falls in); how many residents were told (unsubscribed or erased: not)."""
    t = svc.texts
    text = t.get("activities.called_off_push", title=activity.title, when=_when(svc, activity),
                 place=activity.place or "-",
                 reason=t.get("activities.called_off_reason", reason=reason) if reason else "")
    held = held_until(now, svc.settings)
    told = 0
    for signup in await _live_signups(session, activity.id):
        await reminders.drop_for_cause(session, CAUSE, signup.id)
        resident = await session.scalar(select(Resident).where(Resident.openid == signup.openid))
        if resident is not None and (not resident.subscribed or resident.erased_at is not None):
            continue
        await outbox.push_resident(session, signup.openid, text, now=now, not_before=held,
                                   dedup_key=f"activity:{activity.id}:called_off:{signup.id}")
        told += 1
    return told
