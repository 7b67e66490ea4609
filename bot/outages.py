"""Announced outages: staff say what they know (3、4、5号楼 停水，管道抢修，预计 15:00 恢复).

An outage has a kind (water, power, gas, heat), the buildings it affects (none listed: the whole
community), a reason and an expected end. Staff announce, move the end and mark it 已恢复 from the
WeCom app (bot.outage_commands) or the console (bot.console.outages); residents of those buildings
who ask or report are told (bot.outage_dialog), and those who register hear when it ends — one push
each through the outbox. The staff group is told once when an expected end passes without 已恢复
(a durable reminder of kind `overdue`, so exactly once across processes).

Residents' messages read the announcements from a per-process copy refreshed every CACHE_TTL and
dropped by this process's own changes: a message about water costs no query most of the time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, event, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot import outbox, reminders, roster
from bot.clock import local
from bot.notices import md_escape
from bot.schedule import held_until, register_kind_handler
from bot.services import Services
from bot.staff_actions import audit
from storage.models import Outage, OutageRegistration, Reminder, Resident

KINDS = ("water", "power", "gas", "heat")
WORDS = {"停水": "water", "停电": "power", "停气": "gas", "停暖": "heat"}  # what staff type
CACHE_KEY = "outages.current"
CACHE_TTL = timedelta(seconds=30)
RECENT = timedelta(hours=6)  # an outage ended this recently is still told (已恢复)
STILL_OUT = timedelta(hours=48)  # 我家还是没电 this long after a 恢复通知 is reported at the registered building
OVERDUE = "outage_overdue"  # the reminder kind of a passed expected end
MAX_REASON = 200
MAX_BUILDINGS = 60
LISTED_DAYS = 7  # the console and the API list ended outages this long


@dataclass(frozen=True)
class Notice:
    """An announcement as residents are told it (the cached form of an Outage row)."""

    id: int
    kind: str
    buildings: tuple[str, ...]  # building keys; () = the whole community
    reason: str
    expected_end: datetime | None
    ended_at: datetime | None
    excluded: tuple[str, ...] = ()  # the whole community but these (ended early, or announced apart)

    def covers(self, building: str | None) -> bool:
        """Whether a resident of this building (a key; None: not known) is affected."""
        if not self.buildings:
            return building is None or building not in self.excluded
        return building is not None and building in self.buildings

    @property
    def active(self) -> bool:
        """Not yet marked 已恢复."""
        return self.ended_at is None


def notice_of(row: Outage) -> Notice:
    """The announcement of a row."""
    return Notice(row.id, row.kind, tuple(str(b) for b in row.buildings or ()), row.reason or "",
                  row.expected_end, row.ended_at, tuple(str(b) for b in row.excluded or ()))


def scope_key(buildings: Iterable[str]) -> str:
    """The key of an announcement's stated buildings (outages.scope_key): "3,4,5"; "*" for 全小区."""
    return ",".join(sort_buildings(buildings)) or "*"


# --- wording ---------------------------------------------------------------------------------------


def sort_buildings(keys: Iterable[str]) -> list[str]:
    """Building keys in the order people read them (2 before 10), each once."""
    return sorted(set(keys), key=lambda k: (not k.isdigit(), k.zfill(8)))


def scope(svc: Services, buildings: Iterable[str], excluded: Iterable[str] = ()) -> str:
    """3、4、5号楼, 全小区, or 全小区（3号楼除外）."""
    keys = sort_buildings(buildings)
    t = svc.texts
    if not keys:
        left_out = sort_buildings(excluded)
        if left_out:
            return t.get("outages.whole_except", buildings=t.get("outages.joiner").join(left_out))
        return t.get("outages.whole")
    return t.get("outages.buildings", buildings=t.get("outages.joiner").join(keys))


def when_text(svc: Services, when: datetime, now: datetime) -> str:
    """今天 15:00, 明天 08:00, or 11月25日 08:00 (local time)."""
    at, today = local(when, svc.tz), local(now, svc.tz).date()
    clock = f"{at:%H:%M}"
    if at.date() == today:
        return svc.texts.get("outages.today", time=clock)
    if at.date() == today + timedelta(days=1):
        return svc.texts.get("outages.tomorrow", time=clock)
    return svc.texts.get("outages.day", month=at.month, day=at.day, time=clock)


def line(svc: Services, notice: Notice, now: datetime) -> str:
    """One announcement in a sentence: 3、4、5号楼停水（管道抢修），预计今天 15:00 恢复。"""
    t = svc.texts
    values: dict[str, Any] = {
        "scope": scope(svc, notice.buildings, notice.excluded), "kind": t.get(f"outages.kinds.{notice.kind}"),
        "reason": t.get("outages.reason", reason=notice.reason) if notice.reason else "",
    }
    if notice.ended_at is not None:
        return t.get("outages.ended_line", when=when_text(svc, notice.ended_at, now), **values)
    if notice.expected_end is None:
        end = t.get("outages.end_unknown")
    elif notice.expected_end > now:
        end = t.get("outages.end_at", when=when_text(svc, notice.expected_end, now))
    else:
        end = t.get("outages.end_passed", when=when_text(svc, notice.expected_end, now))
    return t.get("outages.line", end=end, **values)


# --- reading ---------------------------------------------------------------------------------------


_CURRENT = select(Outage).order_by(Outage.id)


def held(svc: Services) -> tuple[Notice, ...] | None:
    """Active announcements and those ended within RECENT, oldest first, from this process's copy
    while it is younger than CACHE_TTL; None when it must be read again (outages.current)."""
    now = svc.clock.now()
    copy = svc.extras.get(CACHE_KEY)
    if copy is None or now - copy[0] >= CACHE_TTL:
        return None
    return tuple(n for n in copy[1] if n.ended_at is None or n.ended_at >= now - RECENT)


async def current(svc: Services, session: AsyncSession) -> tuple[Notice, ...]:
    """Active announcements and those ended within RECENT, oldest first: this process's copy
    (held), else read (one indexed query) and kept for CACHE_TTL."""
    copy = held(svc)
    if copy is not None:
        return copy
    now = svc.clock.now()
    rows = await session.scalars(_CURRENT.where(or_(
        Outage.status == "active", (Outage.status == "ended") & (Outage.ended_at >= now - RECENT),
    )))
    notices = tuple(notice_of(r) for r in rows)
    svc.extras[CACHE_KEY] = (now, notices)
    return notices


def forget(svc: Services, session: AsyncSession) -> None:
    """Drop this process's copy now and again once session commits: a message read between the
    change and its commit would otherwise keep the old list for CACHE_TTL."""
    svc.extras.pop(CACHE_KEY, None)
    event.listen(session.sync_session, "after_commit", lambda _: svc.extras.pop(CACHE_KEY, None), once=True)


async def registered(session: AsyncSession, ids: Iterable[int]) -> dict[int, int]:
    """How many residents registered for each outage."""
    wanted = list(ids)
    if not wanted:
        return {}
    rows = await session.execute(
        select(OutageRegistration.outage_id, func.count()).where(OutageRegistration.outage_id.in_(wanted))
        .group_by(OutageRegistration.outage_id)
    )
    counts = {int(i): int(n) for i, n in rows.all()}
    return {i: counts.get(i, 0) for i in wanted}


async def active(session: AsyncSession, kind: str | None = None, *, for_update: bool = False) -> list[Outage]:
    """Active outages (of a kind), oldest first."""
    stmt = select(Outage).where(Outage.status == "active").order_by(Outage.id)
    if kind is not None:
        stmt = stmt.where(Outage.kind == kind)
    if for_update:
        stmt = stmt.with_for_update()
    return list((await session.scalars(stmt)).all())


async def listed(session: AsyncSession, now: datetime) -> list[Outage]:
    """What the console and the API list: active outages and those ended in the last LISTED_DAYS,
    active first, newest first."""
    since = now - timedelta(days=LISTED_DAYS)
    return list((await session.scalars(select(Outage).where(or_(
        Outage.status == "active", Outage.ended_at >= since,
    )).order_by(Outage.status, Outage.id.desc()))).all())


def local_moment(svc: Services, value: str) -> datetime:
    """An ISO 8601 date and time as aware UTC; one without an offset is local time (a form's
    datetime-local). ValueError when it is not one."""
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(svc.tz))).astimezone(ZoneInfo("UTC"))


async def unknown_buildings(svc: Services, session: AsyncSession, buildings: Iterable[str]) -> list[str]:
    """The buildings no grid of the roster holds (none when the roster lists no buildings)."""
    staff = await roster.snapshot(svc, session)
    known = {roster.normalize_building(b) for g in staff.grids for b in g.buildings}
    return [b for b in buildings if known and b not in known]


# --- changing ----------------------------------------------------------------------------------------


class OutageRefused(ValueError):
    """An announcement or change refused, with the reason to show staff."""


def check_reason(svc: Services, reason: str) -> str:
    """The reason, trimmed; OutageRefused when too long."""
    text = " ".join(reason.split())
    if len(text) > MAX_REASON:
        raise OutageRefused(svc.texts.get("outages.reason_too_long", limit=MAX_REASON))
    return text


def check_end(svc: Services, expected_end: datetime | None) -> None:
    """OutageRefused when the expected end has passed already."""
    now = svc.clock.now()
    if expected_end is not None and expected_end <= now:
        raise OutageRefused(svc.texts.get("outages.past_time", when=when_text(svc, expected_end, now)))


@dataclass(frozen=True)
class Announced:
    """What an announcement did: its row, whether it is new, and the older announcements of that
    kind it took buildings from (each as it reads now; merged ones are gone into this one)."""

    row: Outage
    new: bool
    taken: tuple[Outage, ...] = ()
    included: tuple[str, ...] = ()  # buildings a 全小区 one announced again covers again (left out before)


async def announce(
    svc: Services, session: AsyncSession, *, kind: str, buildings: Iterable[str], reason: str,
    expected_end: datetime | None, actor: str, via: str,
) -> tuple[Outage, bool]:
    """Announce an outage, or update the active one of the same kind and buildings: (the row,
    whether it is new). See announce_full."""
    done = await announce_full(svc, session, kind=kind, buildings=buildings, reason=reason,
                               expected_end=expected_end, actor=actor, via=via)
    return done.row, done.new


async def announce_full(
    svc: Services, session: AsyncSession, *, kind: str, buildings: Iterable[str], reason: str,
    expected_end: datetime | None, actor: str, via: str,
) -> Announced:
    """Announce an outage, or update the active one of the same kind and buildings (its expected
    end, and its reason when one is given). The newest word on a building holds: a new one takes
    its buildings out of older active ones of that kind (a 全小区 one leaves them out, an emptied
    one is merged into it), their registrations with them. The same announcement made at once in
    two processes is one row (the unique index over active kind + buildings). Audited."""
    if kind not in KINDS:
        raise OutageRefused(svc.texts.get("outages.bad_kind"))
    keys = sort_buildings(roster.normalize_building(b) for b in buildings)
    if len(keys) > MAX_BUILDINGS:
        raise OutageRefused(svc.texts.get("outages.too_many_buildings", limit=MAX_BUILDINGS))
    unknown = await unknown_buildings(svc, session, keys)
    if unknown:
        raise OutageRefused(svc.texts.get("outages.unknown_buildings", buildings=scope(svc, unknown)))
    reason = check_reason(svc, reason)
    check_end(svc, expected_end)
    now, key = svc.clock.now(), scope_key(keys)
    same = await _same(session, kind, key)
    made = None if same is not None else await session.scalar(_insert(session, dict(
        kind=kind, buildings=keys, scope_key=key, excluded=[], reason=reason, expected_end=expected_end,
        status="active", created_by=actor, created_at=now, updated_at=now)))
    if made is None:  # announced before, or by another process meanwhile (its insert won): updated
        same = same or await _same(session, kind, key)
        if same is None:
            raise OutageRefused(svc.texts.get("outages.busy"))
        # 全小区 said again where buildings were left out (ended early, announced apart): it is
        # off everywhere again, as a new 全小区 announcement would be (the others merged into it)
        included = sort_buildings(same.excluded or ()) if not same.buildings else []
        if included:
            same.excluded = []
        await set_end(svc, session, same, expected_end, actor=actor, via=via, reason=reason or None,
                      detail={"included_again": included} if included else None)
        taken = await _take_buildings(svc, session, same, actor=actor, via=via) if included else []
        return Announced(same, False, tuple(taken), tuple(included))
    row = await session.get_one(Outage, made)
    await _watch_end(svc, session, row)
    taken = await _take_buildings(svc, session, row, actor=actor, via=via)
    audit(session, actor, "outage.announce", f"outage:{row.id}", now,
          {"via": via, "kind": kind, "buildings": keys, "reason": reason,
           "expected_end": expected_end.isoformat() if expected_end else None,
           **({"taken_from": [t.id for t in taken]} if taken else {})})
    forget(svc, session)
    return Announced(row, True, tuple(taken))


def _insert(session: AsyncSession, values: dict[str, Any]) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id on the unique index of active announcements:
    no id when an active one of that kind and buildings exists (committed by another process
    meanwhile; PostgreSQL waits for one being written). No savepoint needed (SQLite's would commit)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert(Outage).values(**values).on_conflict_do_nothing(
        index_elements=["kind", "scope_key"], index_where=Outage.status == "active").returning(Outage.id)


async def _same(session: AsyncSession, kind: str, key: str) -> Outage | None:
    """The active announcement of this kind and stated buildings, locked."""
    return await session.scalar(select(Outage).where(
        Outage.status == "active", Outage.kind == kind, Outage.scope_key == key).with_for_update())


async def _take_buildings(svc: Services, session: AsyncSession, row: Outage, *, actor: str, via: str) -> list[Outage]:
    """Take row's buildings out of the older active announcements of its kind (bot.outages.announce_full);
    the ones changed, as they are now."""
    now, mine = svc.clock.now(), set(row.buildings or ())
    changed: list[Outage] = []
    for older in await active(session, row.kind, for_update=True):
        if older.id == row.id:
            continue
        held = set(older.buildings or ())
        if not mine:  # a 全小区 announcement: every older one of that kind is merged into it
            moved: set[str] | None = None
            older.status = "merged"
        elif not held:  # an older 全小区 one: these buildings left out of it
            moved = mine - set(older.excluded or ())
            if not moved:
                continue
            older.excluded = sort_buildings(set(older.excluded or ()) | moved)
        else:
            moved = held & mine
            if not moved:
                continue
            if moved == held:
                older.status = "merged"
            else:
                older.buildings = sort_buildings(held - moved)
                older.scope_key = scope_key(older.buildings)
        older.updated_at = now
        await _move_registrations(session, older.id, row.id, moved)
        if older.status == "merged":
            await reminders.drop_for_cause(session, "outage", older.id, kinds=(OVERDUE,))
        audit(session, actor, "outage.update", f"outage:{older.id}", now, {
            "via": via, **({"merged_into": row.id} if older.status == "merged" else
                           {"buildings_to": row.id, "buildings": sort_buildings(moved or ())})})
        changed.append(older)
    await session.flush()
    return changed


async def _move_registrations(session: AsyncSession, source: int, target: int, buildings: set[str] | None) -> None:
    """Registrations of source (those of these buildings; None: all) moved to target; a resident
    registered for both keeps the one of target."""
    there = select(OutageRegistration.openid).where(OutageRegistration.outage_id == target).scalar_subquery()
    mine = OutageRegistration.outage_id == source
    if buildings is not None:
        mine = mine & OutageRegistration.building.in_(sorted(buildings))
    await session.execute(delete(OutageRegistration).where(mine, OutageRegistration.openid.in_(there)))
    await session.execute(update(OutageRegistration).where(mine).values(outage_id=target))


async def set_end(
    svc: Services, session: AsyncSession, row: Outage, expected_end: datetime | None, *, actor: str, via: str,
    reason: str | None = None, detail: dict[str, Any] | None = None,
) -> None:
    """Move an active outage's expected end (and its reason, when given); audited (with detail)."""
    if row.status != "active":
        raise OutageRefused(svc.texts.get("outages.already_ended", line=line(svc, notice_of(row), svc.clock.now())))
    check_end(svc, expected_end)
    now = svc.clock.now()
    before = row.expected_end
    row.expected_end, row.updated_at = expected_end, now
    if reason is not None:
        row.reason = check_reason(svc, reason)
    await reminders.drop_for_cause(session, "outage", row.id, kinds=(OVERDUE,))
    await _watch_end(svc, session, row)
    audit(session, actor, "outage.update", f"outage:{row.id}", now,
          {"via": via, "from": before.isoformat() if before else None,
           "to": expected_end.isoformat() if expected_end else None, "reason": row.reason, **(detail or {})})
    forget(svc, session)


async def end(
    svc: Services, session: AsyncSession, row: Outage, *, actor: str, via: str, buildings: Iterable[str] = (),
) -> tuple[Outage, int]:
    """Mark an outage 已恢复 and queue a push to every resident registered for it: (the ended
    row, how many were told). With buildings (some of those it covers; of a 全小区 one, any not
    left out yet), only those are ended: they become an ended outage of their own, taking their
    registrations, and the rest stays on (a 全小区 one leaves them out)."""
    now = svc.clock.now()
    if row.status != "active":
        raise OutageRefused(svc.texts.get("outages.already_ended", line=line(svc, notice_of(row), now)))
    part = set(sort_buildings(roster.normalize_building(b) for b in buildings))
    covered = set(row.buildings or ())
    whole = not covered
    if whole:
        unknown = await unknown_buildings(svc, session, sorted(part))
        if unknown:
            raise OutageRefused(svc.texts.get("outages.unknown_buildings", buildings=scope(svc, unknown)))
        gone = part & set(row.excluded or ())
        if gone:
            raise OutageRefused(svc.texts.get("outages.not_covered", buildings=scope(svc, gone),
                                              line=line(svc, notice_of(row), now)))
    if part and part != covered:
        if not whole and not part < covered:
            raise OutageRefused(svc.texts.get("outages.not_covered", buildings=scope(svc, part - covered),
                                              line=line(svc, notice_of(row), now)))
        keys = sort_buildings(part)
        ended = Outage(kind=row.kind, buildings=keys, scope_key=scope_key(keys), excluded=[], reason=row.reason,
                       expected_end=row.expected_end, status="ended", created_by=row.created_by,
                       created_at=row.created_at, updated_at=now)
        session.add(ended)
        await session.flush()
        await _move_registrations(session, row.id, ended.id, part)
        if whole:
            row.excluded = sort_buildings(set(row.excluded or ()) | part)
        else:
            row.buildings = sort_buildings(covered - part)
            row.scope_key = scope_key(row.buildings)
        row.updated_at = now
    else:
        ended = row
        await reminders.drop_for_cause(session, "outage", row.id, kinds=(OVERDUE,))
    ended.status, ended.ended_at, ended.ended_by, ended.updated_at = "ended", now, actor, now
    told = await _tell_registered(svc, session, ended)
    audit(session, actor, "outage.end", f"outage:{ended.id}", now,
          {"via": via, "kind": ended.kind, "buildings": list(ended.buildings or ()), "told": told,
           **({"split_from": row.id} if ended is not row else {})})
    forget(svc, session)
    return ended, told


def _to_tell(outage_id: int, buildings: Iterable[str] | None = None) -> Any:
    """The registrations an end of the outage tells (of these buildings only, when given: what a
    partial end takes along): not told yet, of a resident who still follows the account."""
    stmt = select(OutageRegistration.id, OutageRegistration.openid).join(
        Resident, Resident.openid == OutageRegistration.openid
    ).where(
        OutageRegistration.outage_id == outage_id, OutageRegistration.notified_at.is_(None),
        Resident.subscribed.is_(True), Resident.erased_at.is_(None),
    )
    if buildings is not None:
        stmt = stmt.where(OutageRegistration.building.in_(
            sort_buildings({roster.normalize_building(b) for b in buildings})))
    return stmt


async def to_tell(session: AsyncSession, outage_id: int, buildings: Iterable[str] | None = None) -> int:
    """How many residents ending the outage (of these buildings only, when given) would tell now:
    the number the console's confirm dialog says, by the rule end uses."""
    return int(await session.scalar(select(func.count()).select_from(_to_tell(outage_id, buildings).subquery())) or 0)


async def _tell_registered(svc: Services, session: AsyncSession, row: Outage) -> int:
    """One push to each resident registered for an ended outage who still follows the account
    (after the quiet hours now falls in); marks them told."""
    now = svc.clock.now()
    rows = await session.execute(_to_tell(row.id).order_by(OutageRegistration.id))
    found = rows.all()
    text = svc.texts.get("outages.restored_push", line=line(svc, notice_of(row), now))
    held = held_until(now, svc.settings)
    for reg_id, openid in found:
        await outbox.push_resident(session, openid, text, now=now, dedup_key=f"outage:{row.id}:ended:{reg_id}",
                                   not_before=held)
    if found:
        await session.execute(update(OutageRegistration).where(
            OutageRegistration.id.in_([r for r, _ in found])).values(notified_at=now))
    return len(found)


async def register(session: AsyncSession, notice: Notice, openid: str, building: str | None, now: datetime) -> bool:
    """Record a resident to be told when the outage ends; False when they were already."""
    known = await session.scalar(select(OutageRegistration.id).where(
        OutageRegistration.outage_id == notice.id, OutageRegistration.openid == openid))
    if known is not None:
        return False
    session.add(OutageRegistration(outage_id=notice.id, openid=openid, building=building, created_at=now))
    await session.flush()
    return True


async def told_building(session: AsyncSession, openid: str, kind: str, since: datetime) -> str | None:
    """The building a resident registered with for an outage of this kind whose end they were
    told of since `since` (the newest such), or None: where their home is, as far as the outage knew."""
    return await session.scalar(
        select(OutageRegistration.building).join(Outage, Outage.id == OutageRegistration.outage_id).where(
            OutageRegistration.openid == openid, OutageRegistration.building.is_not(None),
            OutageRegistration.notified_at >= since, Outage.kind == kind, Outage.status == "ended",
        ).order_by(OutageRegistration.notified_at.desc(), OutageRegistration.id.desc()).limit(1))


async def erase(session: AsyncSession, openid: str) -> int:
    """Remove a resident's registrations (删除我的信息, bot.flows.profile); how many there were."""
    done = await session.execute(delete(OutageRegistration).where(OutageRegistration.openid == openid))
    return int(done.rowcount or 0)  # type: ignore[attr-defined]


# --- the passed expected end -------------------------------------------------------------------------


async def _watch_end(svc: Services, session: AsyncSession, row: Outage) -> None:
    """A reminder at the expected end: the staff group is told then if it is still not 已恢复."""
    if row.expected_end is None:
        return
    await reminders.schedule(
        session, kind=OVERDUE, due_at=row.expected_end, channel="group", target="staff",
        payload={"outage": row.id}, now=svc.clock.now(), cause_type="outage", cause_id=row.id,
        dedup_key=f"outage:{row.id}:overdue:{row.expected_end.isoformat()}",
    )


async def _overdue(svc: Services, session: AsyncSession, reminder: Reminder) -> bool:
    """The expected end passed: the staff group told once to update or end the outage; nothing
    when it ended or its end was moved since."""
    row = await session.get(Outage, reminder.cause_id)
    if row is None or row.status != "active" or row.expected_end != reminder.due_at:
        return False
    t, now = svc.texts, svc.clock.now()
    count = (await registered(session, [row.id]))[row.id]
    kind = t.get(f"outages.kinds.{row.kind}")
    words = " ".join(row.buildings or ()) or t.get("outages.whole")
    await outbox.push_group(session, t.get(
        "outages.overdue_staff", kind=kind, line=md_escape(line(svc, notice_of(row), now)), count=count,
        example=f"{kind} {words}",
    ), now=now, dedup_key=f"outage:{row.id}:overdue:{reminder.id}")
    return True


register_kind_handler(OVERDUE, _overdue)
