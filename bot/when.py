"""Dates and times as residents say them: 明天中午, 周三上午十点半, 11月25号下午3点, 2026-11-25 11:30.

Everything is resolved against a local 'today' (the caller converts from svc.clock.now() in
svc.settings.timezone). A part of the day (上午, 中午 …) without a clock time is kept as a range,
so a booking can take the first free slot inside it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, time, timedelta

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_RELATIVE = {"今天": 0, "今日": 0, "今儿": 0, "明天": 1, "明日": 1, "明儿": 1, "后天": 2, "後天": 2, "大后天": 3}

# Part of the day → (start, end) of the range it names, local time.
PARTS: dict[str, tuple[time, time]] = {
    "凌晨": (time(0, 0), time(6, 0)),
    "半夜": (time(0, 0), time(6, 0)),
    "深夜": (time(0, 0), time(6, 0)),
    "夜里": (time(0, 0), time(6, 0)),
    "早上": (time(6, 0), time(9, 0)),
    "早晨": (time(6, 0), time(9, 0)),
    "清早": (time(6, 0), time(9, 0)),
    "上午": (time(8, 0), time(12, 0)),
    "中午": (time(11, 0), time(13, 0)),
    "午饭": (time(11, 0), time(13, 0)),
    "下午": (time(13, 0), time(18, 0)),
    "傍晚": (time(17, 0), time(19, 0)),
    "晚上": (time(17, 0), time(21, 0)),
    "晚饭": (time(17, 0), time(19, 0)),
}
_PM_PARTS = ("下午", "傍晚", "晚上", "晚饭")
_NIGHT_PARTS = ("凌晨", "半夜", "深夜", "夜里")  # 半夜两点 is 02:00, 半夜十二点 00:00

_NUM = r"[0-9零〇一二两三四五六七八九十]{1,3}"
# Not inside a longer run of numbers: 3-2-502 is building 3, unit 2, room 502, not 2 March.
_ISO_DATE = re.compile(r"(?<![\d\-/.])(?:(\d{4})[-/年.])?(\d{1,2})[-/月.](\d{1,2})(?!\d|[-/.]\d)[日号]?")
# 号 followed by what it numbers is no day: 6号楼, 8号院, 5号门口, 3号线, 12号床, 2号单元.
_NOT_A_DAY = r"[楼院门线床房室铺库馆口位机窗柜车店栋座岗台桌]|单元|公寓|小区|大街|街|路"
_CN_DATE = re.compile(rf"(?:({_NUM})月)?({_NUM})(?:日|号(?!{_NOT_A_DAY}))")
_WEEKDAY = re.compile(r"(下下|下个?|这个?|本)?(?:周|星期|礼拜)([一二三四五六日天末])")
# 月底 / 这个月底 / 下个月底 / 12月底 / 下个月初 (not 正月初一, a lunar day): a month's last or first day.
_MONTH_EDGE = re.compile(rf"(?:(下个?|这个?|本)|({_NUM}))?月(底|末|初)(?![一二三四五六七八九十])")
_CLOCK = re.compile(r"(\d{1,2})[:：](\d{2})")
_HOUR = re.compile(rf"({_NUM})[点點时](?:(半)|(一刻)|(三刻)|({_NUM})分?)?")
_PART = re.compile("|".join(sorted(PARTS, key=len, reverse=True)))
# 一点 is "a little" as often as one o'clock: after these (少放一点盐, 晚一点来, 快一点, 有一点疼)
# or before these (一点儿, 一点点, 一点都不) it is no hour; 一点半, 一点十分, 一点钟, 下午一点 are.
_LITTLE_BEFORE = frozenset("放少多快慢早晚好有差稍再轻淡软烂热凉远近大小高低加减")
_LITTLE_AFTER = frozenset("儿点都也不没")


def cn_number(text: str) -> int | None:
    """'25', '二十五', '十', '两' → int; None when text is not a number up to 99."""
    if text.isdigit():
        return int(text)
    if not text or any(ch not in _DIGITS and ch != "十" for ch in text):
        return None
    if "十" in text:
        tens, _, ones = text.partition("十")
        high = 1 if tens == "" else _DIGITS.get(tens)
        low = 0 if ones == "" else _DIGITS.get(ones)
        if high is None or low is None or len(tens) > 1 or len(ones) > 1:
            return None
        return high * 10 + low
    if len(text) == 1:
        return _DIGITS[text]
    return None


@dataclass(frozen=True)
class When:
    """What a resident said about a date and a time; any part may be missing."""

    day: date | None = None
    at: time | None = None
    part: str | None = None  # 上午, 中午 … when said without a clock time
    # The other half of the day's reading of an hour said with no part of the day (七点: at 07:00,
    # other 19:00; 两点: at 14:00, other 02:00); None when the time says which (晚上七点, 19:30).
    other: time | None = field(default=None, compare=False)

    @property
    def empty(self) -> bool:
        """Nothing about a date or a time was found."""
        return self.day is None and self.at is None and self.part is None

    def window(self) -> tuple[time, time] | None:
        """The range of the part of day, when no clock time was given."""
        return PARTS[self.part] if self.part and self.at is None else None

    def merged(self, newer: When) -> When:
        """This answer completed by a newer one (its parts win where given)."""
        timed = newer.at is not None or bool(newer.part)
        return When(
            day=newer.day or self.day,
            at=newer.at if timed else self.at,
            part=newer.part if timed else self.part,
            other=newer.other if timed else self.other,
        )

    def within(self, fits: Callable[[time], bool]) -> When:
        """The reading a service can take: an hour said with no part of the day whose usual reading
        (1–6 the afternoon, 7–12 the morning) does not fit the service's hours, while the other half
        of the day's does, is that other (七点以后 for a talk with a mediator, 08:00–21:00, is
        19:00). When both or neither fit, the usual reading stays."""
        if self.at is None or self.other is None or fits(self.at) or not fits(self.other):
            return self
        return replace(self, at=self.other, other=self.at)


def _month_day(today: date, month: int, day: int, year: int | None = None) -> date | None:
    """The date with this month/day; without a year, the next one on or after today."""
    try:
        found = date(year or today.year, month, day)
        if year is None and found < today:
            found = date(today.year + 1, month, day)
    except ValueError:
        return None
    return found


def _day_of_month(today: date, day: int) -> date | None:
    """'25号' without a month: this month's, or next month's once it has passed."""
    try:
        found = today.replace(day=day)
    except ValueError:
        found = None
    if found is not None and found >= today:
        return found
    first_next = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    try:
        return first_next.replace(day=day)
    except ValueError:
        return None


def _month_edge(today: date, prefix: str, number: str | None, edge: str) -> date | None:
    """月底 (this month's last day), 下个月底, 12月底, 月初 / 下个月初 (the next month's first day;
    this month's start has passed), 12月初: the day meant, on or after today."""
    first_next = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    if number is not None:
        month = cn_number(number)
        start = _month_day(today.replace(day=1), month, 1) if month is not None and 1 <= month <= 12 else None
    elif prefix.startswith("下") or (edge == "初" and today.day > 1):
        start = first_next
    else:
        start = today.replace(day=1)
    if start is None:
        return None
    if edge == "初":
        return start if start >= today else None
    return (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def parse_day(text: str, today: date) -> date | None:
    """The date text names (relative, weekday, month/day or ISO), resolved against today."""
    for word in sorted(_RELATIVE, key=len, reverse=True):
        if word in text:
            return today + timedelta(days=_RELATIVE[word])
    m = _ISO_DATE.search(text)
    if m:
        year = int(m.group(1)) if m.group(1) else None
        return _month_day(today, int(m.group(2)), int(m.group(3)), year)
    m = _CN_DATE.search(text)
    if m:
        day = cn_number(m.group(2))
        if day is None:
            return None
        if m.group(1):
            month = cn_number(m.group(1))
            return None if month is None else _month_day(today, month, day)
        return _day_of_month(today, day)
    m = _MONTH_EDGE.search(text)
    if m:
        return _month_edge(today, m.group(1) or "", m.group(2), m.group(3))
    m = _WEEKDAY.search(text)
    if m:
        target = _WEEKDAYS[m.group(2)]
        prefix = m.group(1) or ""
        if prefix.startswith("下"):
            monday_next = today + timedelta(days=7 - today.weekday())
            extra = 7 if prefix.startswith("下下") else 0
            return monday_next + timedelta(days=target + extra)
        return today + timedelta(days=(target - today.weekday()) % 7)
    return None


def parse_time(text: str) -> tuple[time | None, str | None]:
    """(clock time, part of day) named in text; 下午3点 → 15:00, 中午 alone → (None, '中午')."""
    at, part, _other = _read_time(text)
    return at, part


def _read_time(text: str) -> tuple[time | None, str | None, time | None]:
    """parse_time's (clock time, part of day) and When.other: the other half of the day's reading
    of an hour 1–11 said with no part of the day (七点, 两点, 7:30)."""
    part_match = _PART.search(text)
    part = part_match.group(0) if part_match else None
    hour: int | None = None
    minute = 0
    m = _CLOCK.search(text)
    if m:
        hour, minute = int(m.group(1)), int(m.group(2))
    else:
        m = next(_hours(text), None)
        if m:
            hour = cn_number(m.group(1))
            if m.group(2):
                minute = 30
            elif m.group(3):
                minute = 15
            elif m.group(4):
                minute = 45
            elif m.group(5):
                minute = cn_number(m.group(5)) or 0
    if hour is None:
        return None, part, None
    said_hour = hour
    if part in _NIGHT_PARTS or (part in _PM_PARTS and hour == 12):  # 晚上十二点 is midnight too
        hour = 0 if hour == 12 else hour
    elif part in _PM_PARTS and hour < 12:
        hour += 12
    elif part == "中午" and hour < 6:
        hour += 12
    elif part is None and _CLOCK.search(text) is None and 1 <= hour <= 6:
        hour += 12  # 明天两点: nobody books a visit or a talk at 2 a.m.; 凌晨两点 says so
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None, part, None
    other = None
    if part is None and 1 <= said_hour <= 11:
        other = time(said_hour if hour != said_hour else said_hour + 12, minute)
    return time(hour, minute), None, other


def _is_hour(text: str, m: re.Match[str]) -> bool:
    """Whether an _HOUR match in text names an hour, not 一点 meaning "a little"."""
    if m.group(1) != "一" or m.group(2) or m.group(3) or m.group(4) or m.group(5):
        return True
    before = text[m.start() - 1] if m.start() else ""
    after = text[m.end()] if m.end() < len(text) else ""
    return before not in _LITTLE_BEFORE and after not in _LITTLE_AFTER


def _hours(text: str) -> Iterator[re.Match[str]]:
    """The _HOUR matches in text that name an hour."""
    return (m for m in _HOUR.finditer(text) if _is_hour(text, m))


_DAY_WORD = re.compile("|".join(sorted(_RELATIVE, key=len, reverse=True)))
_WHEN_PARTS = (_DAY_WORD, _ISO_DATE, _CN_DATE, _WEEKDAY, _CLOCK, _PART)


def without_when(text: str) -> str:
    """text with the dates and times it names replaced by spaces (明天上午我腿脚不好 → 我腿脚不好;
    少放一点盐 stays: its 一点 is no hour)."""
    for m in reversed(list(_hours(text))):
        text = text[:m.start()] + " " + text[m.end():]
    for pattern in _WHEN_PARTS:
        text = pattern.sub(" ", text)
    return text


def parse_when(text: str, today: date) -> When:
    """Date and time (or part of day) in one utterance, e.g. '明天中午' or '周三上午10点'."""
    at, part, other = _read_time(text)
    return When(day=parse_day(text, today), at=at, part=part, other=other)
