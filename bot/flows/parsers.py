"""Readers of answers: each takes an Answer and returns the slot value, or raises Invalid(hint)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace
from datetime import datetime, time
from typing import Any

from bot.clock import local
from bot.flows.base import Answer, Check, Context, Invalid
from bot.flows.commands import is_word, normalize
from bot.flows.config import words
from bot.intents.slots import address
from bot.when import parse_when

_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3}-?\d{7,8})(?!\d)")
_BUILDING = re.compile(r"([0-9]{1,3}|[一二三四五六七八九十]{1,3})\s*(?:号楼|栋|幢|座|号|[#＃]楼?)")  # 3#楼: 3号楼 as written
_UNIT = re.compile(r"([0-9]{1,2}|[一二三四五六七八九十]{1,2})\s*单元")
_ROOM = re.compile(r"(?<![0-9])([0-9]{3,4})(?:室|房|号房)?(?![0-9栋幢座号单#＃])")
_CN = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}


def _num(text: str) -> str:
    """'9' → '9', '十二' → '12' (building and unit numbers as residents say them)."""
    if text.isdigit():
        return str(int(text))
    if "十" in text:
        tens, _, ones = text.partition("十")
        return str((_CN.get(tens, 1) if tens else 1) * 10 + (_CN.get(ones, 0) if ones else 0))
    return str(_CN.get(text, text))


_SPOKEN_NUMBER = re.compile(r"[0-9零〇一二两三四五六七八九幺]{7,}")
_SPOKEN = str.maketrans("零〇一二两三四五六七八九幺", "0012234567891")


def phone(answer: Answer) -> str:
    """A mobile (11 digits) or landline number found in the answer, typed or said digit by digit
    (一三八…, 幺三九… from voice); of two or more, the first mobile (phones lists them all)."""
    compact = _compact_digits(answer.text)
    if not re.search(r"\d", compact):
        raise Invalid("flow.hint.phone_none")  # 否, 不说了: why it is asked, and how to stop
    found = phones(answer.text)
    if found:
        return found[0]
    raise Invalid("flow.hint.phone")


# The country code before a mobile, as a contact card copies it (+8613812345678, 0086 138…).
_COUNTRY_CODE = re.compile(r"(?:[+＋]|(?<!\d)00)86-?(?=1[3-9](?:-?\d){9}(?![-\d]))")


def _compact_digits(text: str) -> str:
    compact = re.sub(r"[\s\u3000，,、]", "", text)
    compact = _SPOKEN_NUMBER.sub(lambda m: m.group(0).translate(_SPOKEN), compact)
    return _COUNTRY_CODE.sub("", compact)


_BETWEEN_NUMBERS = re.compile(r"[，,、；;/]|或者|或是|还有|要不")


def phones(text: str) -> list[str]:
    """Every number an answer gives, mobiles first, each once: 电话13812345678 或者 13998765432,
    138…，0571-…, and two mobiles with only a space between them (one run once spaces go)."""
    mobiles: list[str] = []
    landlines: list[str] = []
    parts = _BETWEEN_NUMBERS.split(text)
    for part in parts if len(parts) > 1 else [text]:
        compact = _compact_digits(part)
        for run in re.findall(r"\d+", compact.replace("-", "")):
            chunks = [run[i:i + 11] for i in range(0, len(run), 11)] if len(run) % 11 == 0 else [run]
            if all(_MOBILE.fullmatch(chunk) for chunk in chunks):
                mobiles += [c for c in chunks if c not in mobiles]
        landlines += [m for m in _LANDLINE.findall(compact) if m not in mobiles + landlines]
    if not mobiles and not landlines and len(parts) > 1:
        return phones(_BETWEEN_NUMBERS.sub("", text))  # 138，1234，5678: one number said in parts
    return mobiles + landlines


# A message that is a phone number and nothing else: typed or said digit by digit (幺三八 一二三四
# 五六七八), with spaces and dashes, after at most a lead word (电话, 手机号, 我的电话是).
_ONLY_PHONE = re.compile(
    r"(?:(?:我的?|俺的?)?(?:联系)?(?:电话|手机|座机|联系方式)(?:号码|号)?(?:是|为)?[:：]?)?"
    r"(?P<number>[0-9零〇一二两三四五六七八九幺\s\u3000\-－—+()（），,、。.]+)"
)


def only_phone(answer: Answer) -> str | None:
    """The phone number when the answer is one and nothing else (幺三八 一二三四 五六七八,
    电话13812345678, 我的手机是138-1234-5678), else None; a reply of a few digits (2) is none."""
    said = unicodedata.normalize("NFKC", answer.text).strip().rstrip("。.！!")
    found = _ONLY_PHONE.fullmatch(said)
    if found is None or len(re.sub(r"[^0-9零〇一二两三四五六七八九幺]", "", found.group("number"))) < 7:
        return None
    try:
        return phone(replace(answer, text=said))
    except Invalid:
        return None


def address_parts(text: str) -> dict[str, str]:
    """Building, unit and room named in text ('9栋1单元502' → {'building': '9', ...})."""
    parts = dict(address(text))  # the classifier's reading: 3-2-502, 五零二, 3号院2号楼 …
    m = _BUILDING.search(text) if "building" not in parts else None
    if m:  # and a building as a plain 3号
        parts["building"] = _num(m.group(1))
    m = _UNIT.search(text) if "unit" not in parts else None
    if m:
        parts["unit"] = _num(m.group(1))
    m = _ROOM.search(text) if "room" not in parts else None
    if m and "building" in parts:
        parts["room"] = m.group(1)
    if "building" not in parts:
        parts.pop("room", None)  # a room without its building is no address
    return parts


_ADDRESS_WORDS = re.compile(r"[0-9零〇一二两三四五六七八九十幺]+|号楼|号院|单元|门洞|号房|房间|[栋幢座号室房楼\-－—#＃]")


# What residents say before a place where it is asked (住在, 我住在, 家住, 我家在, 我们家住在, 在,
# 就在, 我住的是, 我是): not part of the place. 住 before 宅/户 is a word of the place (住宅楼).
_PLACE_LEAD = re.compile(
    r"^(?:(?:(?:我们|俺们|咱们|他们|她们|我|俺|咱|他|她|老人家?|老伴)(?:妈|爸|父母|老伴|奶奶|爷爷)?家?|家)"
    r"(?:里|就|也|现在)?(?:住在|住的是|住|在|是)|就?住在|就?住(?![宅户])|就?在|是在)"
    r"[\s,，:：、]*"
)
# The 的 after an address (我是5号楼的, 住3栋2单元的): not part of it.
_PLACE_TAIL = re.compile(r"(?<=[0-9一二三四五六七八九十楼栋幢座号元室房])的[。.!！]?$")


def without_lead(text: str) -> str:
    """A place without the words said before it (住在12号楼1单元 → 12号楼1单元, 我家在7号楼 → 7号楼,
    在东门 → 东门) nor the 的 after an address (我是5号楼的 → 5号楼); text as it was when nothing is
    left after them."""
    said = text.strip()
    rest = _PLACE_TAIL.sub("", _PLACE_LEAD.sub("", said, count=1).strip())
    return rest if len(normalize(rest)) >= 2 else said


def only_address(text: str) -> dict[str, Any] | None:
    """The place when text is a building address and nothing else (6栋2单元302, 3-2-502, 在五号楼,
    我住在3栋: 3栋); None when it says more (what happened) or names no building."""
    said = without_lead(text)
    parts = address_parts(said)
    if "building" not in parts or len(normalize(_ADDRESS_WORDS.sub("", said))) > 2:
        return None
    return {"text": said, **parts}


_UNIT_ROOM_ONLY = re.compile(
    r"(?:([0-9]{1,2}|[一二三四五六七八九十]{1,2})\s*单元)?\s*(?:([0-9]{3,4})\s*(?:室|房|号房|号)?)?"
)


def place_more(place: Any, text: str) -> dict[str, Any] | None:
    """The place with the unit and room a message adds to it ('2单元502' after '3号楼', or the
    whole address of that building, '3号楼2单元502'); None unless text is only that (with 单元 or
    室 said, not a bare number) and place has a building."""
    if not isinstance(place, dict) or not place.get("building"):
        return None
    added = _unit_room_added(unfilled(text).rstrip("。.！!"), str(place["building"]))  # 嗯 就是说 三单元, by voice
    if added is None:
        return None
    unit, room = added
    kept = {k: v for k, v in place.items() if k not in ("text", "unit", "room", "landmark")}
    if unit or place.get("unit"):
        kept["unit"] = unit or place["unit"]
    if room:
        kept["room"] = room
    kept["text"] = place_text(kept)
    return kept


def _unit_room_added(norm: str, building: str) -> tuple[str | None, str | None] | None:
    """The unit and room a message says: alone (2单元502, 502室), or after the same building
    (7号楼1单元602 when 7号楼 was said); None when it says neither, or names another building."""
    m = _UNIT_ROOM_ONLY.fullmatch(norm)
    if m is not None and (m.group(1) or m.group(2)) and re.search(r"单元|室|房", norm):
        return (_num(m.group(1)) if m.group(1) else None), m.group(2)
    full = only_address(norm)
    if full is None or full["building"] != building or not (full.get("unit") or full.get("room")):
        return None
    return full.get("unit"), full.get("room")


def place_text(place: dict[str, Any]) -> str:
    """A place as residents read it."""
    if place.get("text"):
        return str(place["text"])
    landmark = str(place.get("landmark") or "")
    named = address_parts(landmark)  # 3号楼门口 names its building: not "3栋3号楼门口"
    text = ""
    if place.get("building") and named.get("building") != str(place["building"]):
        text += f"{place['building']}栋"
    if place.get("unit") and named.get("unit") != str(place["unit"]):
        text += f"{place['unit']}单元"
    if place.get("room") and named.get("room") != str(place["room"]):
        text += str(place["room"])
    return text + landmark


def not_an_answer(text: str) -> bool:
    """Courtesy or filler (谢谢, 好的, 不知道 …) that answers no free-text question."""
    return normalize(text) in {normalize(w) for w in words("answers", "not_an_answer")}


def says_nothing(text: str) -> bool:
    """Whether a free-text answer holds nothing to keep: empty, courtesy or filler, or a skip
    word (不用了, 没有照片), which the engine reads as skipping where a question may be skipped."""
    return not normalize(text) or not_an_answer(text) or is_word(text, "skip")


def unknown_said(text: str) -> bool:
    """Whether text says the resident does not know it (不知道叫啥, 记不清了: [answers] unknown)."""
    said = normalize(text)
    return any(normalize(w) in said for w in words("answers", "unknown"))


_NAME_SAID = re.compile(
    r"(?:叫|名叫|名字是|名字叫|姓名是|姓名)\s*(?P<name>[\u4e00-\u9fa5]{2,4}?)"
    r"(?=$|[\s，,。.、；;!！]|今年|住|家住|电话|手机|岁|已经|快|是|的|[0-9一二三四五六七八九十])"
)
_NOT_NAMES = ("什么", "这个", "那个", "一下", "人来", "不出")


def name_said(text: str) -> str | None:
    """A person's name said with 叫/名叫/名字是 (他叫李建国 今年八十五了 → 李建国), or None."""
    found = _NAME_SAID.search(text)
    if found is None or any(w in found.group("name") for w in _NOT_NAMES):
        return None
    return found.group("name")


def name_phrase(text: str) -> str:
    """text without the words that said a name (他叫李建国), for what is left to read."""
    return _NAME_SAID.sub("", text)


_SELF = ("我自己", "自己", "本人", "我本人", "我")


def person_name(answer: Answer, hint: str) -> str:
    """A person's name: 1–20 characters, no digits, not 我自己, a yes or no (是, 不是: an answer to
    the question before, typed twice) nor a word that says nothing; the name alone when it is
    said with 叫 (他叫李建国 今年八十一了 → 李建国)."""
    text = name_said(answer.text) or answer.text.strip()
    if (says_nothing(text) or unknown_said(text) or normalize(text) in _SELF or is_word(text, "yes") or is_word(text, "no")
            or any(ch.isdigit() for ch in text) or len(text) > 20 or is_question(text)):  # 要钱吗 is no name
        raise Invalid(hint)
    return text


def _said(value: Any) -> str | None:
    """The words of a step's answer as the checks below judge them; None for a place read as one
    (9栋, 5号楼2单元) or a location sent, which no check questions."""
    if isinstance(value, dict):
        return None if value.get("building") or "latitude" in value else str(value.get("text") or "")
    return str(value)


def _has_place_word(said: str) -> bool:
    """Whether words name something of a place (门, 车库, 站 …: config/flows.toml's place_words)."""
    return any(w in said for w in words("answers", "place_words"))


def typed_place(value: Any) -> bool:
    """Whether a place answer was typed and says where: a building (3号楼2单元) or a landmark
    with a place word (小区南门, 东门垃圾站, 地下车库); not a location sent, nor words with nothing
    of a place in them (就是不管)."""
    if not isinstance(value, dict) or "latitude" in value:
        return False
    return bool(value.get("building")) or _has_place_word(str(value.get("landmark") or ""))


def place_building(slots: dict[str, Any]) -> str | None:
    """The building of a request's place slot as it was read (the 3 of 3号楼2单元); None while no
    place is known, or the place has no building (小区南门, a location sent)."""
    place = slots.get("place")
    said = place.get("building") if isinstance(place, dict) else None
    return str(said) if said else None


def not_a_time(label: str) -> Check:
    """A step's check: an answer that reads as a time ('改成后天', '下周三上午十点', '周六上午',
    given where a name, a person or a place is asked) is refused once, with what was asked; said
    again, it is taken (a name such as 刘明天 exists)."""

    async def check(ctx: Context, _slots: dict[str, Any], value: Any) -> str | None:
        said = _said(value)
        if said is None:
            return None
        when = parse_when(said, local(ctx.now, ctx.svc.tz).date())
        if when.day is None and when.at is None and when.part is None:
            return None
        return ctx.text("flow.looks_like_time", value=said, asked=ctx.text(label))

    return check


def checked_place(label: str) -> Check:
    """The place steps' check: a time (not_a_time), or words with nothing of a place in them
    (就是不管, 你们自己看: none of config/flows.toml's place_words), is refused once; said again,
    it is taken."""
    as_time = not_a_time(label)

    async def check(ctx: Context, slots: dict[str, Any], value: Any) -> str | None:
        said = _said(value)
        if said is None:
            return None
        placed = _has_place_word(said)
        refused = await as_time(ctx, slots, value)
        if refused is not None and placed:
            when = parse_when(said, local(ctx.now, ctx.svc.tz).date())
            if when.day is None and when.at is None:  # 家门口那个灯 晚上黑乎乎的: a place, said with when
                return None
        if refused is not None or placed:
            return refused
        return ctx.text("flow.not_a_place", value=said)

    return check


def place(answer: Answer) -> dict[str, Any]:
    """A place: building/unit/room, a landmark in words, or a location message's point and label."""
    media = answer.inbound.media
    text = answer.text.strip()
    if answer.inbound.msg_type == "location" and "latitude" in media:
        label = str(media.get("label") or "")
        value: dict[str, Any] = {
            "text": label or f"位置({media['latitude']}, {media['longitude']})",
            "latitude": media["latitude"], "longitude": media["longitude"],
        }
        value.update(address_parts(label))
        return value
    if re.fullmatch(r"[0-9]{3,4}", normalize(text)):
        raise Invalid("flow.hint.room_only", room=normalize(text))  # 502: the room, without its building
    if len(normalize(text)) < 2 or normalize(text).isdigit() or says_nothing(text) or is_word(text, "yes"):
        raise Invalid("flow.hint.place")  # 确认 (said twice, it was taken as the place)
    said = without_lead(unfilled(text))  # 就是 三号楼 那个 二单元: 三号楼 二单元; 我住在3栋: 3栋
    value = {"text": said, **address_parts(said)}
    unit_room = _UNIT_ROOM_ONLY.fullmatch(normalize(said))
    if "building" not in value and unit_room is not None and unit_room.group(1):
        raise Invalid("flow.hint.unit_only", unit=said)  # 3单元502: no building, no grid worker knows it
    if "building" not in value:
        value["landmark"] = said
    return value


# Filler voice input keeps (嗯, 呃, 那个, 就是说), standing alone between spaces or punctuation: at
# the start (嗯，那个，3号楼…), between the parts of a place (三号楼 那个 二单元) or of a sentence.
_FILLER_SEP = r"[\s,，、。.…~～!！]"
_FILLER_ALONE = re.compile(
    rf"(^|{_FILLER_SEP}+)(?:(?:嗯+|恩+|呃+|额+|唉+|哎呀|哎+|哦+|噢+|喂+|啊+|那个|这个|就是说?|然后){_FILLER_SEP}+)+"
)
# Interjections that are never part of a word, dropped at the start even when glued to what
# follows (嗯那个3号楼…: 那个3号楼…); 那个/这个 glued stay (这个月的水费, 那个人).
_FILLER_LEAD = re.compile(r"^(?:嗯+|恩+|呃+|唉+|哎+|喂+|哦+|噢+)+")


def unfilled(text: str) -> str:
    """What a resident said without the filler voice input keeps (嗯 那个 3号楼楼道的灯坏了 →
    3号楼楼道的灯坏了; 就是 三号楼 那个 二单元 → 三号楼 二单元): interjections at the start, and 嗯,
    那个, 就是说 … standing alone between spaces or punctuation; every other word kept as said."""
    said = _FILLER_LEAD.sub("", text.strip())
    said = _FILLER_ALONE.sub(lambda m: m.group(1)[:1], f"{said} ")  # the separator before it stays
    said = re.sub(r"\s+", " ", said).strip().lstrip("，,、。.…~～!！ ")
    return said or text.strip()


def description(answer: Answer) -> str:
    """What happened, in the resident's words without voice filler (at least a few characters)."""
    text = unfilled(answer.text)
    if len(normalize(text)) < 4 or says_nothing(text):
        raise Invalid("flow.hint.text_short")
    return text


def short_text(answer: Answer) -> str:
    """Any short answer that says something (a note, when one is free)."""
    text = answer.text.strip()
    if says_nothing(text):
        raise Invalid("flow.hint.default")
    return text[:200]


def future_time(answer: Answer, hours: tuple[time, time] | None = None) -> dict[str, Any]:
    """A preferred time: {'any': True} for 都可以/随时, else a local date with a time or part of day.
    With the service's hours, an hour said with no part of the day is read in the half of the day
    that is inside them and still ahead (When.within: 明天七点 with a mediator is 19:00)."""
    text = answer.text.strip()
    norm = normalize(text)
    if norm in ("都可以", "随时", "随时都行", "都行", "什么时候都可以", "无所谓") or is_word(text, "skip"):
        return {"any": True, "text": "时间都可以"}
    when = parse_when(text, answer.now.date())  # the raw text: normalising drops the ':' of 11:30
    if when.day is None and when.at is None and when.part is None:
        raise Invalid("flow.hint.time")
    day = when.day or answer.now.date()
    if hours is not None:
        first, last = hours
        when = when.within(
            lambda t: first <= t <= last and datetime.combine(day, t, tzinfo=answer.now.tzinfo) > answer.now)
    at = when.at or (when.window()[0] if when.window() else time(9, 0))
    start = datetime.combine(day, at, tzinfo=answer.now.tzinfo)
    if start <= answer.now:
        raise Invalid("flow.hint.time_past")
    said = f"{day.month}月{day.day}日" + (f" {when.at:%H:%M}" if when.at else (when.part or ""))
    return {"any": False, "at": start.isoformat(), "text": said}


# Words that only say "I want help with something", not what it is.
_BARE = (
    "我要", "我想", "想要", "需要", "请", "帮忙", "帮我", "我", "要", "想", "报修", "投诉", "报事", "反映",
    "问题", "一下", "一个", "个", "有", "事情", "找你们", "你好", "您好", "调解", "纠纷", "矛盾", "申请",
)


# 没有 alone is no question (修了没有 is): the answer "no" where a place or a photo is asked.
_QUESTION = re.compile(r"(?:吗|么|呢|(?<=[^\s，,。.!！])没有?|[?？])[\s。.!！~～]*$")


def is_question(text: str) -> bool:
    """Whether a message ends as a question (灯修好了吗, 不用修了？)."""
    return _QUESTION.search(text) is not None


# Words that ask, said without 吗 or ？ (小区大门晚上几点锁啊, 低保怎么申请); not after 不知道 (不知道什么
# 时候坏的 tells, it does not ask).
_ASKING = re.compile(
    r"(?<!不知道)(?<!不清楚)(?<!不晓得)(?<!不记得)"
    r"(?:几点|什么时候|啥时候|怎么办|怎么弄|在哪|哪里|多少钱|能不能|可不可以|有没有"
    r"|怎么申请|咋申请|怎么交|咋交|怎么领|咋领|什么材料|啥材料)"
)
_ASKED_AT_END = re.compile(r"多少[钱号]?[啊呀呢哇啦嘛]?\s*$")  # 物业电话多少: a question without ？


def asks(text: str) -> bool:
    """Whether a message asks something: ends as a question (is_question), or asks with its words
    (几点, 什么时候, 怎么申请, 物业电话多少) without 吗 or ？."""
    return is_question(text) or _ASKING.search(text) is not None or _ASKED_AT_END.search(text) is not None


def says_what(text: str) -> bool:
    """Whether an opening message says what the matter is (not only '我要报修', '申请调解', nor
    嗯 那个 就是 我想反映个事儿 by voice: its filler says nothing either)."""
    rest = normalize(unfilled(text))
    for bare in sorted(_BARE, key=len, reverse=True):
        rest = rest.replace(bare, "")
    return len(rest) >= 3
