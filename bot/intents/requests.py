"""Two requests in one message (我想当志愿者 我上次报修的水管修了没有; 楼道灯坏了 还有我想约个理发).

The message is cut where a clause ends or another matter is announced (config/intents.toml
[two_requests]: 另外, 顺便, 对了 announce one; 还有 only joins) and each side read alone. It holds two
requests when both sides are confidently requests of different intents, bookings of two services
(给我妈订明天的午饭 再给我爸约个后天上午的理发), or complaints of different categories joined by a
connector (楼道灯坏了 还有 垃圾好几天没人收了; 我要投诉物业 垃圾好几天没人清 is one). Sides usually one matter told in two clauses are cut only where another is announced: a
problem and the dispute or report it led to (楼上天天吵 跟他说了也不听 想请社区调解, 我要投诉 上次投诉到
现在都没人理), an offer and whom it serves (我想当志愿者 帮老人送饭) — [two_requests] together. A
message naming an emergency is never cut: the emergency comes first, as the whole message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.config_files import read_toml
from bot.intents.normalize import simplified
from bot.intents.rules import INTENTS_FILE, config_stamp

_BREAK = re.compile(r"[\s,，。！？!?；;…~～、]+")
_EDGES = " ,，。！？!?；;…~～、"
MIN_SIDE_CHARS = 3  # 修灯, 理发: shorter sides are no request of their own
_ASKING = ("怎么", "咋", "多少", "什么", "啥", "吗", "收费", "哪")  # a side asking about a service books none


class _Read(Protocol):
    intent: str
    confidence: float
    slots: dict[str, Any]


@dataclass(frozen=True)
class TwoRequests:
    """A message's first request and the other one it holds, each as the resident said it."""

    first: str
    second: str


@dataclass(frozen=True)
class _Words:
    connectors: tuple[str, ...]  # announce another matter
    joining: tuple[str, ...]  # only join (还有)
    together: frozenset[frozenset[str]]
    intents: frozenset[str]
    min_confidence: float


_CACHE: dict[Path, tuple[tuple[int, ...], _Words]] = {}


def _words(config_dir: Path) -> _Words:
    """config/intents.toml [two_requests], read again when the rule files change."""
    stamp = config_stamp(config_dir)
    held = _CACHE.get(config_dir)
    if held is not None and held[0] == stamp:
        return held[1]
    table = read_toml(config_dir / INTENTS_FILE).get("two_requests", {})
    words = _Words(
        connectors=_longest_first(table.get("connectors", ())),
        joining=_longest_first(table.get("joining", ())),
        together=frozenset(frozenset(str(i) for i in pair) for pair in table.get("together", ())),
        intents=frozenset(str(i) for i in table.get("intents", ())),
        min_confidence=float(table.get("min_confidence", 0.5)),
    )
    _CACHE[config_dir] = (stamp, words)
    return words


def _longest_first(words: Any) -> tuple[str, ...]:
    return tuple(sorted((str(w) for w in words if w), key=len, reverse=True))


BARE, JOINED, ANNOUNCED = 0, 1, 2  # how a cut is marked: a clause break alone, 还有, 另外


def _cuts(text: str, words: _Words) -> list[tuple[str, str, int]]:
    """Every (before, after, mark) cut of text: at each clause break (a connector right after it
    dropped), and before each connector said inside a clause. Connectors are found in the
    simplified text (還有 is 还有, 另外 as typed in either script); the sides keep the resident's
    characters where simplifying kept the length (it nearly always does)."""
    heard = simplified(text)
    if len(heard) != len(text):
        text = heard
    marked = [(c, ANNOUNCED) for c in words.connectors] + [(c, JOINED) for c in words.joining]
    cuts: list[tuple[str, str, int]] = []
    for match in _BREAK.finditer(heard):
        after = heard[match.end():]
        said, mark = next(((c, m) for c, m in marked if after.startswith(c)), ("", BARE))
        cuts.append((text[:match.start()], text[match.end() + len(said):], mark))
    for connector, mark in marked:
        at = heard.find(connector)
        if at > 0 and not _BREAK.fullmatch(heard[at - 1]):
            cuts.append((text[:at], text[at + len(connector):], mark))
    return cuts


def two_requests(text: str, classify: Callable[[str], _Read], config_dir: Path) -> TwoRequests | None:
    """The two requests text holds, in the order said; None when it holds one (or none)."""
    words = _words(config_dir)
    min_confidence = words.min_confidence
    for before, after, mark in _cuts(text.strip(), words):
        first, second = before.strip(_EDGES), after.strip(_EDGES)
        if len(first) < MIN_SIDE_CHARS or len(second) < MIN_SIDE_CHARS:
            continue
        one = classify(first)
        if one.intent not in words.intents or one.confidence < min_confidence:
            continue
        other = classify(second)
        if other.intent not in words.intents or other.confidence < min_confidence:
            continue
        if "urgency" in one.slots or "urgency" in other.slots:
            return None  # an emergency is served as the whole message, before anything else
        if one.intent == other.intent == "elderly_service":
            services = one.slots.get("service"), other.slots.get("service")
            asks = any(w in simplified(second) for w in _ASKING)  # 顺便问下助浴怎么收费: a question, no booking
            if all(services) and services[0] != services[1] and not asks:  # 给我妈订午饭 再给我爸约个理发
                return TwoRequests(first, second)
            continue
        if one.intent == other.intent:
            kinds = one.slots.get("category"), other.slots.get("category")
            if one.intent != "complaint" or not all(kinds) or kinds[0] == kinds[1] or mark == BARE:
                continue
        elif mark != ANNOUNCED and frozenset((one.intent, other.intent)) in words.together:
            continue
        return TwoRequests(first, second)
    return None
