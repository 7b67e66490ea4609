"""Emergencies said of now: whether the words of an emergency in a message tell one happening now.

Not one long past (我去年在家摔了, 前几年中风过), feared or nearly had (差点摔倒, 万一着火), denied
(没摔着), over (摔了一下 没事了, 老人走丢了 已经找到了) or said to be no hurry (不是急事). The
classifier's urgency slot (config/intents.toml [slots.urgency]) and the dialog's emergencies
(config/flows.toml [[complaint.emergencies]], read by bot.flows.complaint) both ask this module;
the context words are [slots.urgency]'s past, present, feared, negated, resolved and not_urgent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# What is not a word: spaces and punctuation (the same marks bot.flows.commands.normalize drops).
_NOISE = r"\s\u3000,.!?;:，。！？；：、~～…\"'“”‘’()（）【】\[\]<>《》"
_WORDS = re.compile(rf"[^{_NOISE}]+")
_BREAK = re.compile(rf"[{_NOISE}]")
_QUESTION_TAILS = ("吗", "吧", "么", "嘛", "?", "？")


@dataclass(frozen=True)
class Said:
    """A message as emergency words are matched: the classifier's normal form without spaces and
    punctuation (水管 爆了 is 水管爆了), knowing where each character was in the normal form."""

    normal: str
    text: str
    origin: tuple[int, ...]  # origin[i]: the position of text[i] in normal

    @classmethod
    def of(cls, normal: str) -> Said:
        """The squeezed form of the classifier's normal form of a message."""
        text: list[str] = []
        origin: list[int] = []
        for match in _WORDS.finditer(normal):
            text.append(match.group(0))
            origin.extend(range(match.start(), match.end()))
        return cls(normal, "".join(text), tuple(origin))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Where text[start:end] is in the normal form."""
        return self.origin[start], self.origin[end - 1] + 1

    def occurrences(self, word: str) -> Iterable[tuple[int, int]]:
        """Every place word is said, as spans of the normal form."""
        at = self.text.find(word)
        while at >= 0:
            yield self.span(at, at + len(word))
            at = self.text.find(word, at + 1)


def _words(table: Mapping[str, Any], key: str) -> tuple[str, ...]:
    return tuple(str(w) for w in table.get(key, ()) if w)


def _stated(text: str, word: str) -> bool:
    """Whether word is said in text other than as a question (不是急事吧, 不着急吗)."""
    at = text.find(word)
    while at >= 0:
        if not text.startswith(_QUESTION_TAILS, at + len(word)):
            return True
        at = text.find(word, at + 1)
    return False


def _last(text: str, words: tuple[str, ...]) -> int:
    """Where the last of words ends in text (-1: none there)."""
    return max((text.rfind(w) + len(w) for w in words if w in text), default=-1)


@dataclass(frozen=True)
class UrgencyContext:
    """The words around an emergency word that say it is no emergency now."""

    past: tuple[str, ...] = ()  # before it in its clause, nearer than any present word: 去年
    present: tuple[str, ...] = ()  # 刚才, 今天, 现在, 又: what follows a past word is of now
    feared: tuple[str, ...] = ()  # right before it: 差点, 怕, 容易, 万一
    negated: tuple[str, ...] = ()  # at once before it: 没, 没有
    negated_not: tuple[str, ...] = ()  # …unless a question: 是不是, 有没有
    resolved: tuple[str, ...] = ()  # anywhere after it: 没事了, 不疼了, 已经好了, 找到了 (not 没事吧)
    not_urgent: tuple[str, ...] = ()  # anywhere in the message: 不是急事 (not 不是急事吧)
    past_window: int = 10
    feared_window: int = 3

    @classmethod
    def from_config(cls, table: Mapping[str, Any]) -> UrgencyContext:
        """The context words of [slots.urgency] in config/intents.toml."""
        return cls(
            past=_words(table, "past"), present=_words(table, "present"), feared=_words(table, "feared"),
            negated=_words(table, "negated"), negated_not=_words(table, "negated_not"),
            resolved=_words(table, "resolved"), not_urgent=_words(table, "not_urgent"),
            past_window=int(table.get("past_window", 10)), feared_window=int(table.get("feared_window", 3)),
        )

    def says_no_hurry(self, normal: str) -> bool:
        """Whether normal says what it tells is no hurry (不是急事; not 不是急事吧, asked)."""
        return any(_stated(normal, w) for w in self.not_urgent)

    def said_now(self, normal: str, start: int, end: int) -> bool:
        """Whether the emergency word at normal[start:end] tells something happening now."""
        if self.not_urgent and self.says_no_hurry(normal):
            return False
        breaks = [m.end() for m in _BREAK.finditer(normal, 0, start)]
        before = normal[breaks[-1] if breaks else 0:start]  # its clause up to the word
        if self.negated and before.endswith(self.negated) and not (
                self.negated_not and before.endswith(self.negated_not)):
            return False
        feared = _last(before, self.feared)
        if feared >= 0 and feared >= len(before) - self.feared_window:
            return False
        near = before[-self.past_window:]
        if _last(near, self.past) > _last(near, self.present):
            return False
        after = normal[end:]
        if after.startswith("过") and not after.startswith(("过来", "过去")):  # 摔倒过, 中风过
            return False
        return not any(_stated(after, w) for w in self.resolved)

    def any_now(self, normal: str, spans: Iterable[tuple[int, int]]) -> bool:
        """Whether any of the spans of normal is an emergency word said of now."""
        return any(self.said_now(normal, start, end) for start, end in spans)

    def found_now(self, pattern: re.Pattern[str], normal: str) -> bool:
        """Whether pattern finds an emergency said of now in normal; a group named w is the word
        itself, the rest what the pattern needs around it (我妈上个月摔了: w is 摔了, after 上个月)."""
        return self.any_now(normal, (core(m) for m in pattern.finditer(normal)))


def core(match: re.Match[str]) -> tuple[int, int]:
    """The span of a pattern's emergency word: its group w when it has one, else the match."""
    if "w" in match.re.groupindex and match.start("w") >= 0:
        return match.span("w")
    return match.span()


@dataclass(frozen=True)
class _Entry:
    """One kind of emergency of config/flows.toml: its words, where a word is no emergency (calm),
    the longer phrases inside which a calm context does not count (not_calm), and patterns."""

    table: Mapping[str, Any]
    words: tuple[str, ...]
    calm: Mapping[str, tuple[str, ...]]
    not_calm: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]

    def calm_text(self, text: str) -> str:
        """text with the not_calm phrases blanked, so a calm context inside one is not seen
        (老伴在厨房洗碗摔了: 洗碗摔 holds 碗摔, yet it is a person who fell)."""
        for phrase in self.not_calm:
            text = text.replace(phrase, "\0" * len(phrase))
        return text


@dataclass(frozen=True)
class Emergencies:
    """The emergencies of config/flows.toml [[complaint.emergencies]], first match wins."""

    entries: tuple[_Entry, ...]

    @classmethod
    def of(cls, tables: Iterable[Mapping[str, Any]]) -> Emergencies:
        """Read the emergency entries; a bad pattern is a ValueError naming it."""
        entries = []
        for table in tables:
            patterns = []
            for pattern in table.get("patterns", ()):
                try:
                    patterns.append(re.compile(str(pattern)))
                except re.error as exc:
                    raise ValueError(f"complaint.emergencies: bad pattern {pattern!r}: {exc}") from exc
            calm = {str(k): tuple(str(c) for c in v) for k, v in (table.get("calm") or {}).items()}
            entries.append(_Entry(table, tuple(str(w) for w in table.get("words", ())), calm,
                                  _words(table, "not_calm"), tuple(patterns)))
        return cls(tuple(entries))

    def find(self, said: Said, context: UrgencyContext) -> Mapping[str, Any] | None:
        """The first entry a word or pattern of which said names as happening now, else None."""
        text = said.text
        for entry in self.entries:
            calm_text: str | None = None
            for word in entry.words:
                if word not in text:
                    continue
                calm = entry.calm.get(word, ())
                if calm:
                    calm_text = entry.calm_text(text) if calm_text is None else calm_text
                    if any(c in calm_text for c in calm):
                        continue
                if context.any_now(said.normal, said.occurrences(word)):
                    return entry.table
            for pattern in entry.patterns:
                if context.found_now(pattern, said.normal):
                    return entry.table
        return None

    def calmed(self, said: Said) -> bool:
        """Whether said holds a context that makes some emergency word no emergency (油烟, 燃气灶,
        垃圾桶都爆了, 碗摔了)."""
        for entry in self.entries:
            text = entry.calm_text(said.text) if entry.calm else ""
            if any(c in text for contexts in entry.calm.values() for c in contexts):
                return True
        return False
