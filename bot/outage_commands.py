"""What staff type in the WeCom app to announce an outage (bot.outages):

    停水 3 4 5 预计15:00 管道抢修      announce (or, for the same kind and buildings, move the end)
    停电 全小区 预计明天8:00           the whole community
    恢复 停水 3 4 5 / 停水 3 已恢复     ended; registered residents are told
    停水                               the current 停水 announcements and how to write one

Only staff and admins may; every change is audited (bot.outages) and the reply says what was
recorded, in the words residents will read.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bot import delivery_record, outages, roster, when
from bot.clock import local
from bot.intents.normalize import simplified
from bot.services import Services
from bot.staff_actions import audit
from storage.models import Outage, Person

_KIND = "|".join(outages.WORDS)
_ENDED_FIRST = re.compile(rf"^(?:已经?)?恢复(?:了)?\s*({_KIND})(.*)$", re.DOTALL)
_ENDED_LAST = re.compile(rf"^({_KIND})(.*?)(?:已经?|都)?恢复了?[!。.]*$", re.DOTALL)
_ANNOUNCE = re.compile(rf"^({_KIND})(?:通知)?(?=$|[\s\d:,;、。全])(.*)$", re.DOTALL)
_WHOLE = {"全小区", "全社区", "全部", "整个小区", "所有楼", "全部楼栋"}
_ONE = re.compile(r"^(\d{1,4}[a-z]?)(?:号楼|号|栋|幢|座|楼)?$", re.IGNORECASE)
_RANGE = re.compile(r"^(\d{1,3})(?:号楼|号|栋)?[-~至到](\d{1,3})(?:号楼|号|栋)?$")
_SPLIT = re.compile(r"[\s,;、，]+")
_TIME = r"(?:\d{1,2}[:]\d{2}|[0-9零一二两三四五六七八九十]{1,3}[点时](?:半|\d{1,2}分?)?)"
_DAY = r"(?:今天|今日|明天|明日|后天|\d{1,2}月\d{1,2}[日号]|\d{1,2}[-/.]\d{1,2}[日号]?)"
_PART = r"(?:凌晨|早上|早晨|上午|中午|下午|傍晚|晚上)"
_END = re.compile(rf"预计\s*({_DAY}?\s*{_PART}?\s*{_TIME}?)(?:左右|前后)?(?:恢复|来水|来电|通水|通电)?(?:供应)?")
_REASON_LEAD = re.compile(r"^(?:原因|因为|因)[:：]?\s*")
MAX_RANGE = 40


@dataclass(frozen=True)
class OutageCommand:
    """A parsed command: announce (with what was said) or end; buildings as typed keys."""

    action: str  # announce | end | show
    kind: str
    buildings: tuple[str, ...] = ()
    whole: bool = False
    end_said: str | None = None  # the words after 预计, when given
    reason: str = ""


def _normal(text: str) -> str:
    return simplified(unicodedata.normalize("NFKC", text)).strip()


def buildings_of(rest: str) -> tuple[tuple[str, ...], bool, str]:
    """The buildings at the start of rest (3 4 5, 3、4、5号楼, 3-5, 全小区): (keys, whole, what follows)."""
    keys: list[str] = []
    whole = False
    pos = 0
    for match in re.finditer(r"[^\s,;、，]+", rest):
        token = match.group(0)
        if token in _WHOLE:
            whole = True
        elif (one := _ONE.match(token)) is not None:
            keys.append(one.group(1).upper())
        elif (span := _RANGE.match(token)) is not None and 0 <= int(span.group(2)) - int(span.group(1)) < MAX_RANGE:
            keys.extend(str(n) for n in range(int(span.group(1)), int(span.group(2)) + 1))
        else:
            break
        pos = match.end()
    return tuple(dict.fromkeys(keys)), whole, rest[pos:]


def parse(text: str) -> OutageCommand | None:
    """Read a staff message as an outage command, or None when it is not one."""
    value = _normal(text)
    ended = None if "预计" in value else (_ENDED_FIRST.match(value) or _ENDED_LAST.match(value))
    if ended is not None:
        keys, whole, rest = buildings_of(ended.group(2).strip())
        if rest.strip(" 了都已经"):
            return None  # 停水 3 恢复得怎么样: words, not a command
        return OutageCommand("end", outages.WORDS[ended.group(1)], keys, whole)
    announced = _ANNOUNCE.match(value)
    if announced is None:
        return None
    kind, rest = outages.WORDS[announced.group(1)], announced.group(2).strip()
    if not rest:
        return OutageCommand("show", kind)
    keys, whole, rest = buildings_of(rest)
    end = _END.search(rest)
    end_said = None
    if end is not None:
        end_said = end.group(1).strip()
        rest = rest[:end.start()] + " " + rest[end.end():]
    elif "预计" in rest:
        end_said = rest.split("预计", 1)[1].strip()[:20]
        rest = rest.split("预计", 1)[0]
    reason = _REASON_LEAD.sub("", rest.strip(" ,;、，。")).strip(" ,;、，。")
    return OutageCommand("announce", kind, keys, whole, end_said, reason)


def expected_end(svc: Services, said: str) -> datetime | None:
    """The time after 预计 (15:00, 明天8点, 11月25日 8:00) as aware UTC, or None when it names no
    clock time. Without a day, the next such time (预计8:00 said at 22:00 is tomorrow's)."""
    now = svc.clock.now()
    today = local(now, svc.tz).date()
    at, _ = when.parse_time(said)
    if at is None:
        return None
    day = when.parse_day(said, today)
    moment = datetime.combine(day or today, at, ZoneInfo(svc.tz))
    if day is None and moment <= now:
        moment += timedelta(days=1)
    return moment.astimezone(ZoneInfo("UTC"))


def _example(svc: Services, row: Outage) -> str:
    kind = svc.texts.get(f"outages.kinds.{row.kind}")
    return f"{kind} {' '.join(row.buildings or ()) or svc.texts.get('outages.whole')}"


async def _show(svc: Services, session: AsyncSession, kind: str) -> str:
    t, now = svc.texts, svc.clock.now()
    rows = await outages.active(session, kind)
    name = t.get(f"outages.kinds.{kind}")
    if not rows:
        return t.get("outages.none_active", kind=name) + "\n" + t.get("outages.usage")
    counts = await outages.registered(session, [r.id for r in rows])
    lines = [t.get("outages.current_line", line=outages.line(svc, outages.notice_of(r), now), count=counts[r.id])
             for r in rows]
    return "\n".join([t.get("outages.current_head", kind=name), *lines, t.get("outages.usage")])


async def _announce(svc: Services, session: AsyncSession, who: Person, cmd: OutageCommand) -> str:
    t, now = svc.texts, svc.clock.now()
    if not cmd.buildings and not cmd.whole:
        return t.get("outages.no_buildings", kind=t.get(f"outages.kinds.{cmd.kind}"))
    end = None
    if cmd.end_said is not None:
        end = expected_end(svc, cmd.end_said)
        if end is None:
            return t.get("outages.bad_time", said=cmd.end_said or "预计")
    done = await outages.announce_full(svc, session, kind=cmd.kind, buildings=() if cmd.whole else cmd.buildings,
                                       reason=cmd.reason, expected_end=end, actor=who.id, via="wecom")
    row = done.row
    said = outages.line(svc, outages.notice_of(row), now)
    if not done.new:
        reply = t.get("outages.updated", line=said, count=(await outages.registered(session, [row.id]))[row.id])
        return "\n".join([reply, *included_again(svc, done), *(taken_line(svc, older) for older in done.taken)])
    reply = t.get("outages.announced", line=said, example=_example(svc, row))
    return "\n".join([reply, *(taken_line(svc, older) for older in done.taken)])


def included_again(svc: Services, done: outages.Announced) -> list[str]:
    """The line saying which left-out buildings a 全小区 announcement made again covers again."""
    if not done.included:
        return []
    return [svc.texts.get("outages.included_again", scope=outages.scope(svc, done.included))]


def taken_line(svc: Services, older: Outage) -> str:
    """What became of an older announcement a new one took buildings from."""
    if older.status == "merged":
        return svc.texts.get("outages.merged", line=outages.line(svc, outages.notice_of(older), svc.clock.now()))
    return svc.texts.get("outages.taken", line=outages.line(svc, outages.notice_of(older), svc.clock.now()))


async def _end(svc: Services, session: AsyncSession, who: Person, cmd: OutageCommand) -> str:
    t, now = svc.texts, svc.clock.now()
    name = t.get(f"outages.kinds.{cmd.kind}")
    rows = await outages.active(session, cmd.kind, for_update=True)
    named = {roster.normalize_building(b) for b in cmd.buildings}
    if named:  # 恢复 停水 3: the announcements covering 3 (a 全小区 one unless 3 is left out of it)
        rows = [r for r in rows if _ending(r, named)]
    if not rows:
        if named:
            return t.get("outages.none_active_at", kind=name, scope=outages.scope(svc, named))
        return t.get("outages.none_active", kind=name)
    if not named and not cmd.whole and len(rows) > 1:
        lines = "\n".join(outages.line(svc, outages.notice_of(r), now) for r in rows)
        return t.get("outages.several_active", kind=name, lines=lines, example=_example(svc, rows[0]))
    replies = []
    for row in rows:
        part = _ending(row, named)
        ended, told = await outages.end(svc, session, row, actor=who.id, via="wecom", buildings=part)
        replies.append(t.get("outages.ended", line=outages.line(svc, outages.notice_of(ended), now), count=told))
    return "\n".join(replies)


def _ending(row: Outage, named: set[str]) -> list[str]:
    """Which of the named buildings row covers (to end in it)."""
    if row.buildings:
        return sorted(named & set(row.buildings))
    return sorted(named - set(row.excluded or ()))


async def run(svc: Services, who: Person, cmd: OutageCommand) -> str:
    """Carry out an outage command for a roster person; the reply. Refused for anyone not staff."""
    t = svc.texts
    async with svc.sessions() as session, session.begin():
        if not roster.is_staff(who):
            audit(session, who.id, f"wecom.outage.{cmd.action}.refused", cmd.kind, svc.clock.now(), {"reason": "not staff"})
            reply = t.get("outages.staff_only")
        elif cmd.action == "show":
            reply = await _show(svc, session, cmd.kind)
        else:
            try:
                async with session.begin_nested():
                    reply = await (_announce if cmd.action == "announce" else _end)(svc, session, who, cmd)
            except outages.OutageRefused as exc:
                reply = str(exc)
        delivery_record.record(session, reply)
        return reply
