"""Slots: what a message already says (where, when, who, what), read from normalised text.

Keys (other modules depend on them; a key is absent when the message does not say it):
building, unit, room, landmark, phone, date, time, when_text, service, category, urgency,
party, areas, party_member, ticket_number, age, for_whom.
Vocabularies come from the `[slots]` table of config/intents.toml.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from bot.intents.emergency import UrgencyContext

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST in China since 1991

_CN_DIGITS = {"零": 0, "〇": 0, "幺": 1, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"[0-9零〇一二两三四五六七八九十百幺]+"
_NUM2 = r"\d{1,2}|[零一二两三四五六七八九十]{1,3}"
_BUILDING_REF = rf"{_NUM}\s*(?:号楼|号院|栋|幢|座)"
_BUILDING = re.compile(rf"(?<![0-9])({_NUM})\s*(?:号楼|号院|栋|幢|座|号?楼(?=\s*{_NUM}\s*(?:单元|门洞)))")
# A building named as such wins over a courtyard: 3号院2号楼 is building 2.
_BUILDING_SURE = re.compile(rf"(?<![0-9])({_NUM})\s*(?:号楼|栋|幢|座|号?楼(?=\s*{_NUM}\s*(?:单元|门洞)))")
_UNIT = re.compile(rf"(?<![0-9])({_NUM})\s*(?:单元|门洞)")
_ROOM_AFTER = re.compile(r"(?:单元|号楼|栋|幢|座)\s*(\d{3,4}|[零〇一二三四五六七八九幺]{3,4})(?![0-9])")
_ROOM_SUFFIX = re.compile(r"(?<![0-9-])(\d{3,4})\s*(?:室|号房|房间)")
_SECOND_MATTER = re.compile(r"[，,。；;！!\s]*(?:还有|另外|另一个|而且|再就是|顺便)")
_DASHED = re.compile(r"(?<![\d-])(\d{1,2})-(\d{1,2})-(\d{3,4})(?![\d-])")
_MOBILE = re.compile(r"(?<![\d-])(1[3-9]\d(?:[ -]?\d){8})(?![\d])")
_LANDLINE = re.compile(r"(?<![\d-])(0\d{2,3})[- ]?(\d{7,8})(?![\d])")
# Someone else's number (物业电话是138…, 他手机139…, 隔壁老李的手机号…): who, then the phone word,
# right before the number. It is no contact of the resident's, so it fills no phone slot.
_OTHERS = (
    "他们", "她们", "他家", "她家", "他", "她", "对方", "人家", "别人", "那家", "那户", "邻居", "楼上", "楼下",
    "隔壁", "对门", "物业公司", "物业", "保安", "门卫", "师傅", "维修工", "工人", "房东", "租客", "租户", "房客",
    "商户", "商铺", "店铺", "门面", "饭店", "饭馆", "餐馆", "超市", "小卖部", "烧烤店", "老板", "店主", "网格员",
    "居委会", "社区", "调解员", "快递员", "快递", "外卖员", "外卖", "司机", "室友", "同事", "朋友", "装修队",
    "施工队", "中介",
)
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤"
_OTHERS_PHONE = re.compile(
    rf"(?<!其)(?:{'|'.join(_OTHERS)}|[老小][{_SURNAMES}]|[{_SURNAMES}](?:阿姨|大爷|大妈|大叔|大姐|大哥|师傅|奶奶|爷爷|老师|总|经理))"
    r"(?:家里?|那边|那儿|[0-9]{1,4}(?:室|号)?)?的?(?:值班|办公室?|服务|客服|维修|报修)?"
    r"(?:电话号码|手机号码|电话号|手机号|电话|手机|座机|号码|联系方式)(?:是|为)?[\s:：]*$"
)
_TICKET = re.compile(r"(?<![\d-])(20\d{2}[01]\d[0-3]\d)[-_ ]?(\d{4})(?![\d])")
# A ticket named by its last digits at the start of a message (0001怎么样了, 工单0001, 查一下12号工单):
# the digits, then what follows them. The digits end where the run of digits ends (12345 is none).
_TICKET_DIGITS = re.compile(
    r"^(?:查一?下|查询|请问)?(?:我的)?(?P<noun>工单|单号|编号)?(?:号)?(?P<seq>\d{1,4})(?!\d)(?:号)?(?:工单|单)?(?:的)?(?P<rest>.*)$"
)
_AGE = (
    re.compile(rf"({_NUM})\s*多?\s*周?岁"),
    re.compile(rf"(?:今年|已经|都)\s*({_NUM})\s*多?\s*(?:岁|了|$|\s)"),
    re.compile(rf"(?:老爷子|老太太|老人|爷爷|奶奶|老伴|外婆|外公|姥姥|姥爷|[爸妈])\s*({_NUM})\s*多?了"),
)

# Dates and times.
_ISO_DATE = re.compile(r"(20\d{2})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?")
_MONTH_DAY = re.compile(rf"({_NUM2})\s*月\s*({_NUM2})\s*[日号]")
_DAY_ONLY = re.compile(rf"(?<![0-9第])({_NUM2})\s*[日号](?!\s*(?:楼|院|线|门|床|单元|[0-9]))")
_RELATIVE = re.compile(r"大后天|后天|明天|明日|明儿|今天|今日|今儿")
_WEEKDAY = re.compile(r"(下下个?|下个?|这个?|本|上个?)?\s*(?:周|星期|礼拜)\s*([一二三四五六日天末])")
_CLOCK = re.compile(r"(?<![0-9])([01]?\d|2[0-3])[:：]([0-5]\d)(?![0-9])")
_HOUR = re.compile(rf"(?<![0-9])({_NUM2})\s*点\s*(?:(半)|(一刻)|(三刻)|(\d{{1,2}}|[一二三四五六七八九十]{{1,3}})\s*分?)?(钟)?")
_RELATIVE_DAYS = {"今天": 0, "今日": 0, "今儿": 0, "明天": 1, "明日": 1, "明儿": 1, "后天": 2, "大后天": 3}
_WEEKDAY_INDEX = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_PM_PERIODS = ("下午", "傍晚", "晚上", "夜里")
# Cheap gates: a text without any of these characters cannot hold the slots they guard.
_PLACE_CHARS = frozenset("楼栋幢座单元室房院洞-")
_WHEN_CHARS = frozenset("今明后天日号月周星期礼拜点午晚早夜傍凌:：年")
_DIGITS = frozenset("0123456789")


def ticket_digits(text: str) -> tuple[str, str] | None:
    """A ticket named by its last digits at the start of `text` (spaces removed): the digits as
    four ('0001' for 0001怎么样了, 工单1) and what follows them; None otherwise (12 alone is no
    ticket, 工单12 is)."""
    found = _TICKET_DIGITS.match(text)
    if found is None or (not found.group("noun") and len(found.group("seq")) < 3):
        return None
    return found.group("seq").zfill(4), found.group("rest")


def cn_to_int(text: str) -> int | None:
    """'302', '三零二', '十一', '二十五', '一百零五', '两' → int; None when not a number."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if all(ch in _CN_DIGITS for ch in text):
        value = 0
        for ch in text:
            value = value * 10 + _CN_DIGITS[ch]
        return value
    total, current = 0, 0
    for ch in text:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
        elif ch.isdigit():
            current = current * 10 + int(ch)
        else:
            return None
    return total + current


def _alternation(words: Mapping[str, str]) -> re.Pattern[str] | None:
    ordered = sorted(words, key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in ordered)) if ordered else None


@dataclass(frozen=True)
class _Vocabulary:
    """Words residents use → the canonical value, in config order (earlier = preferred)."""

    pattern: re.Pattern[str] | None
    canonical: Mapping[str, str]
    order: Mapping[str, int]

    @classmethod
    def of(cls, table: Mapping[str, list[str]], include_keys: bool = False,
           not_words: Iterable[str] = ()) -> _Vocabulary:
        """not_words hold a vocabulary word but name none of it (卫生间 is no 卫生 complaint): as
        the longer match they are found first, and then dropped."""
        canonical: dict[str, str] = {word: "" for word in not_words}
        for key, words in table.items():
            for word in ([key] if include_keys else []) + list(words):
                canonical.setdefault(word, key)
        return cls(_alternation(canonical), canonical, {k: i for i, k in enumerate(table)})

    def hits(self, text: str) -> list[str]:
        """Canonical values of every vocabulary word in text, in text order (repeats kept)."""
        return [value for _, value in self.words(text)]

    def words(self, text: str) -> list[tuple[str, str]]:
        """(word, canonical value) of every vocabulary word in text, in text order (repeats kept)."""
        if self.pattern is None:
            return []
        found = ((m.group(0), self.canonical[m.group(0)]) for m in self.pattern.finditer(text))
        return [(word, value) for word, value in found if value]


def _any_of(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching wherever any of patterns does (their named groups made plain, since a
    name may repeat across them; none is referred back to), to test them all in one search."""
    plain = [p.replace("(?P<w>", "(?:") for p in patterns]
    if any("(?P" in p for p in plain):
        raise ValueError(f"[slots.urgency] patterns: only the group (?P<w>…) may be named: {plain}")
    return re.compile("|".join(f"(?:{p})" for p in plain)) if plain else None


@dataclass(frozen=True)
class SlotExtractor:
    """Reads the slot keys from normalised text, with vocabularies from config."""

    service: _Vocabulary
    service_patterns: tuple[tuple[re.Pattern[str], str], ...]
    category: _Vocabulary
    category_weak: frozenset[str]  # words that only tell a state (不亮): half a hit
    party: _Vocabulary
    areas: _Vocabulary
    for_whom: _Vocabulary
    party_member: re.Pattern[str] | None
    urgent_words: re.Pattern[str] | None
    urgent_patterns: tuple[re.Pattern[str], ...]
    urgent_any: re.Pattern[str] | None  # matches where any of urgent_patterns does
    urgency_context: UrgencyContext
    landmarks: tuple[re.Pattern[str], ...]  # place + position first, then a bare place
    periods: Mapping[str, time]
    period_re: re.Pattern[str] | None

    @classmethod
    def from_config(cls, slots: Mapping[str, Any]) -> SlotExtractor:
        """Build an extractor from the `[slots]` table of intents.toml."""
        urgency = slots.get("urgency", {})
        landmark = slots.get("landmark", {})
        places = "|".join(re.escape(p) for p in sorted(landmark.get("places", ()), key=len, reverse=True))
        positions = "|".join(re.escape(p) for p in sorted(landmark.get("positions", ()), key=len, reverse=True))
        landmarks: tuple[re.Pattern[str], ...] = ()
        if places and positions:
            landmarks = (
                re.compile(rf"(?:小区)?(?:{_BUILDING_REF}|{places})(?:的)?(?:{positions})"),
                re.compile(rf"(?:小区)?(?:{places})"),
            )
        periods = {k: time.fromisoformat(v) for k, v in slots.get("periods", {}).items()}
        member_terms = {t: "1" for t in slots.get("party_member", {}).get("terms", ())}
        return cls(
            service=_Vocabulary.of(slots.get("service", {}), include_keys=True),
            service_patterns=tuple(
                (re.compile(p), name)
                for name, patterns in slots.get("service_patterns", {}).items()
                for p in patterns
            ),
            category=_Vocabulary.of(slots.get("category", {}), not_words=slots.get("category_not", {}).get("terms", ())),
            category_weak=frozenset(slots.get("category_weak", {}).get("terms", ())),
            party=_Vocabulary.of(slots.get("party", {})),
            areas=_Vocabulary.of(slots.get("areas", {})),
            for_whom=_Vocabulary.of(slots.get("for_whom", {})),
            party_member=_alternation(member_terms),
            urgent_words=_alternation({t: "1" for t in urgency.get("terms", ())}),
            urgent_patterns=tuple(re.compile(p) for p in urgency.get("patterns", ())),
            urgent_any=_any_of(urgency.get("patterns", ())),
            urgency_context=UrgencyContext.from_config(urgency),
            landmarks=landmarks,
            periods=periods,
            period_re=_alternation({p: p for p in periods}),
        )

    def extract(self, text: str, now: datetime) -> dict[str, Any]:
        """All slots found in normalised `text`; relative dates resolve against `now`."""
        slots: dict[str, Any] = {}
        chars = frozenset(text)
        has_digits = not _DIGITS.isdisjoint(chars)
        self._place(text, slots, not _PLACE_CHARS.isdisjoint(chars))
        self._contact(text, slots, has_digits)
        if has_digits or not _WHEN_CHARS.isdisjoint(chars):
            slots.update(_when(text, now.astimezone(SHANGHAI), self.periods, self.period_re))
        self._vocabulary(text, slots)
        return slots

    def _place(self, text: str, slots: dict[str, Any], maybe_address: bool) -> None:
        if maybe_address:
            self._address(text, slots)
        for pattern in self.landmarks:
            match = pattern.search(text)
            if match:
                start, end = match.span()
                # joined with the places overlapping or touching it (a grid's places route by it):
                # 地下车库入口那里 is 地下车库 and 车库入口那里, 南门停车场 is 南门 and 停车场
                for other in self.landmarks:
                    for m in other.finditer(text):
                        if m.start() <= end and m.end() >= start:
                            start, end = min(start, m.start()), max(end, m.end())
                slots["landmark"] = text[start:end].strip()
                break

    def _address(self, text: str, slots: dict[str, Any]) -> None:
        slots.update(address(text))

    def _contact(self, text: str, slots: dict[str, Any], has_digits: bool) -> None:
        if has_digits:
            ticket = _TICKET.search(text)
            if ticket:
                slots["ticket_number"] = f"{ticket.group(1)}-{ticket.group(2)}"
            mobile = _own(_MOBILE, text)
            if mobile:
                slots["phone"] = re.sub(r"\D", "", mobile.group(1))
            else:
                landline = _own(_LANDLINE, text)
                if landline:
                    slots["phone"] = f"{landline.group(1)}-{landline.group(2)}"
        for number, pattern in enumerate(_AGE):
            match = pattern.search(text)
            value = cn_to_int(match.group(1)) if match else None
            low = 1 if number == 0 else 50
            if value is not None and low <= value <= 120:
                slots["age"] = value
                break

    def _urgent(self, text: str) -> bool:
        """Whether an urgency word or pattern is said of something happening now (not 去年摔了,
        差点摔倒, 摔了一下 没事了: bot.intents.emergency)."""
        now = self.urgency_context.any_now
        if self.urgent_words and self.urgent_words.search(text) and now(
                text, (m.span() for m in self.urgent_words.finditer(text))):
            return True
        if self.urgent_any is None or not self.urgent_any.search(text):
            return False  # no pattern matches at all (most messages): none looked at one by one
        found = self.urgency_context.found_now
        return any(found(p, text) for p in self.urgent_patterns)

    def unhurried(self, text: str) -> bool:
        """Whether an emergency of now is said with no hurry (3号楼冒烟了 不是急事): no emergency,
        yet something to report, as the words without 不是急事 would be."""
        context = self.urgency_context
        # Without a no-hurry word said, both readings agree: nothing is unhurried (most messages,
        # which are then read once, not three times).
        if not context.says_no_hurry(text) or self._urgent(text):
            return False
        return replace(self, urgency_context=replace(context, not_urgent=()))._urgent(text)

    def _vocabulary(self, text: str, slots: dict[str, Any]) -> None:
        services = self.service.hits(text)
        if services:
            slots["service"] = services[0]
        else:
            for pattern, name in self.service_patterns:
                if pattern.search(text):
                    slots["service"] = name
                    break
        first = _SECOND_MATTER.split(text, maxsplit=1)[0]  # 水管漏水了 还有楼道灯也不亮: the first said
        categories = self.category.words(first) or self.category.words(text)
        if categories:
            # A word that only tells a state counts half: 电梯按钮不亮了 names the lift, not a light.
            scores: dict[str, float] = {}
            for word, name in categories:
                scores[name] = scores.get(name, 0) + (0.5 if word in self.category_weak else 1)
            slots["category"] = max(scores, key=lambda n: (scores[n], -self.category.order[n]))
        if self._urgent(text):
            slots["urgency"] = "urgent"
        parties = self.party.hits(text)
        if parties:
            slots["party"] = min(parties, key=lambda n: self.party.order[n])
        areas = set(self.areas.hits(text))
        if areas:
            slots["areas"] = sorted(areas, key=lambda n: self.areas.order[n])
        if self.party_member and self.party_member.search(text):
            slots["party_member"] = True
        whom = self.for_whom.hits(text)
        if whom:
            slots["for_whom"] = whom[0]


def _own(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The first number of pattern in text not said to be someone else's (物业电话是138…: the
    property company's; 我电话139…, 电话是139…, 联系我139…: the resident's own)."""
    for found in pattern.finditer(text):
        if not _OTHERS_PHONE.search(text[max(0, found.start() - 16):found.start()]):
            return found
    return None


def _resolve_weekday(prefix: str, day: str, today: date) -> date:
    index = _WEEKDAY_INDEX[day]
    monday = today - timedelta(days=today.weekday())
    if prefix.startswith("下下"):
        return monday + timedelta(days=14 + index)
    if prefix.startswith("下"):
        return monday + timedelta(days=7 + index)
    if prefix.startswith("上"):
        return monday - timedelta(days=7 - index)
    if prefix:
        return monday + timedelta(days=index)
    ahead = (index - today.weekday()) % 7
    return today + timedelta(days=ahead)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _date_candidates(text: str, today: date) -> list[tuple[int, int, date]]:
    found: list[tuple[int, int, date]] = []
    taken: list[tuple[int, int]] = []

    def add(match: re.Match[str], value: date | None) -> None:
        span = match.span()
        if value is None or any(s < span[1] and span[0] < e for s, e in taken):
            return
        taken.append(span)
        found.append((span[0], span[1], value))

    for m in _ISO_DATE.finditer(text):
        add(m, _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
    for m in _MONTH_DAY.finditer(text):
        month, day = cn_to_int(m.group(1)), cn_to_int(m.group(2))
        value = _safe_date(today.year, month or 0, day or 0)
        if value is not None and value < today:
            value = _safe_date(today.year + 1, month or 0, day or 0)
        add(m, value)
    for m in _RELATIVE.finditer(text):
        add(m, today + timedelta(days=_RELATIVE_DAYS[m.group(0)]))
    for m in _WEEKDAY.finditer(text):
        add(m, _resolve_weekday(m.group(1) or "", m.group(2), today))
    for m in _DAY_ONLY.finditer(text):
        day = cn_to_int(m.group(1)) or 0
        value = _safe_date(today.year, today.month, day)
        if value is not None and value < today:
            nxt = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
            value = _safe_date(nxt.year, nxt.month, day)
        add(m, value)
    return found


def _time_candidates(
    text: str, periods: Mapping[str, time], period_re: re.Pattern[str] | None
) -> list[tuple[int, int, str, int | None, int]]:
    """(start, end, period or '', hour or None, minute) for clock times and periods of the day."""
    found: list[tuple[int, int, str, int | None, int]] = []
    if period_re is not None:
        found += [(m.start(), m.end(), m.group(0), None, 0) for m in period_re.finditer(text)]
    for m in _CLOCK.finditer(text):
        found.append((m.start(), m.end(), "", int(m.group(1)), int(m.group(2))))
    for m in _HOUR.finditer(text):
        hour = cn_to_int(m.group(1))
        if hour is None or hour > 24:
            continue
        minute = 30 if m.group(2) else 15 if m.group(3) else 45 if m.group(4) else 0
        if m.group(5):
            minute = cn_to_int(m.group(5)) or 0
        explicit = m.group(1).isdigit() or m.group(2) or m.group(5) or m.group(6)
        found.append((m.start(), m.end(), "" if explicit else "?", hour, min(minute, 59)))
    return found


def _when(
    text: str, now: datetime, periods: Mapping[str, time], period_re: re.Pattern[str] | None
) -> dict[str, Any]:
    """date (YYYY-MM-DD), time (HH:MM) and when_text for the first date/time phrase in text."""
    today = now.date()
    dates = [(s, e, "date", d) for s, e, d in _date_candidates(text, today)]
    times = [(s, e, "time", t) for s, e, *t in _time_candidates(text, periods, period_re)]
    parts = sorted(dates + times, key=lambda p: p[0])
    if not parts:
        return {}
    cluster = [parts[0]]
    for part in parts[1:]:
        gap = text[cluster[-1][1]:part[0]]
        if part[0] >= cluster[-1][1] and len(gap.strip(" 的")) == 0 and len(gap) <= 2:
            cluster.append(part)
        elif part[0] >= cluster[-1][1]:
            break
    day = next((p[3] for p in cluster if p[2] == "date"), None)
    period = next((p[3][0] for p in cluster if p[2] == "time" and p[3][1] is None), "")
    clock = next((p[3] for p in cluster if p[2] == "time" and p[3][1] is not None), None)
    if clock is not None and clock[0] == "?" and not period and day is None:
        clock = None  # '一点' alone is more likely 'a little' than one o'clock
    at: time | None = None
    if clock is not None:
        hour, minute = int(clock[1]), clock[2]
        if period in _PM_PERIODS and hour < 12:
            hour += 12
        elif period == "中午" and hour < 6:
            hour += 12
        at = time(hour % 24, minute)
    elif period:
        at = periods[period]
    kept = [p for p in cluster if p[2] == "date" or p[3][1] is not None or p[3][0] == period]
    if day is None and at is None:
        return {}
    if day is None:
        assert at is not None
        day = today if datetime.combine(today, at, now.tzinfo) > now else today + timedelta(days=1)
    result: dict[str, Any] = {"date": day.isoformat(), "when_text": text[kept[0][0]:kept[-1][1]].strip()}
    if at is not None:
        result["time"] = at.strftime("%H:%M")
    return result


def address(text: str) -> dict[str, str]:
    """Building, unit and room in text: 9栋1单元502, 3-2-502, 三号楼二单元五零二, 3号院2号楼."""
    found: dict[str, str] = {}
    dashed = _DASHED.search(text)
    if dashed:
        return {"building": str(int(dashed.group(1))), "unit": str(int(dashed.group(2))), "room": dashed.group(3)}
    for key, match in (("building", _BUILDING_SURE.search(text) or _BUILDING.search(text)), ("unit", _UNIT.search(text))):
        if match:
            value = cn_to_int(match.group(1))
            if value is not None and 0 < value < 1000:
                found[key] = str(value)
    match = _ROOM_AFTER.search(text) or _ROOM_SUFFIX.search(text)
    if match:
        value = cn_to_int(match.group(1))
        if value is not None:
            found["room"] = str(value)
    return found
