"""Text normalisation before segmentation: one canonical form of what a resident typed or said.

Order: NFKC (full-width → half-width), traditional → simplified (zhconv), emoji → words or
nothing, filler words out, known typos fixed, whitespace collapsed, ASCII lower-cased; a message
without Chinese characters then has its English words the rules know put in Chinese
(`[normalize.english]`: the light in my corridor is broken → the 灯 in my 楼道 is 坏了).
The word lists come from the `[normalize]` table of config/intents.toml.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import zhconv

# Pictographs, dingbats, symbols, variation selectors, joiners and tags: dropped once mapped.
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2190-\u21ff\u2300-\u23ff"
    "\ufe00-\ufe0f\u200d\u20e3\U000e0000-\U000e007f\u3030\u303d\u3297\u3299]+"
)
_SPACES = re.compile(r"\s+")
_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[a-z]{2,}", re.IGNORECASE)


def _traditional_chars() -> frozenset[str]:
    """Characters zhconv turns into another simplified one; text without them is left alone."""
    try:
        table = zhconv.zhconv.getdict("zh-cn")
    except AttributeError:  # a zhconv without the table accessor: convert every text
        return frozenset()
    return frozenset(k for k, v in table.items() if len(k) == 1 and k != v)


_TRADITIONAL = _traditional_chars()


def simplified(text: str) -> str:
    """text with its traditional characters made simplified (zhconv); text without any is
    returned as it is, so the common case costs a set check."""
    if text.isascii() or (_TRADITIONAL and _TRADITIONAL.isdisjoint(text)):
        return text
    return zhconv.convert(text, "zh-cn")

# A run of the same punctuation mark, e.g. "！！！" → "!".
_PUNCT_RUN = re.compile(r"([!?,.。，、~…])\1+")


def _alternation(words: tuple[str, ...]) -> str:
    """A regex alternation of literal words, longest first, so '喂喂' wins over '喂'."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True) if w)


@dataclass(frozen=True)
class Normalizer:
    """Turns raw resident text into the canonical form the rules and slots are written against."""

    fillers: tuple[str, ...] = ()
    lead_fillers: tuple[str, ...] = ()
    emoji_words: Mapping[str, str] = field(default_factory=dict)
    typos: Mapping[str, str] = field(default_factory=dict)
    english: Mapping[str, str] = field(default_factory=dict)
    english_alone: frozenset[str] = frozenset()
    _english_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _fillers_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _lead_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)
    _typo_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fillers = _alternation(self.fillers)
        lead = _alternation(self.lead_fillers)
        typos = _alternation(tuple(self.typos))
        object.__setattr__(self, "_fillers_re", re.compile(fillers) if fillers else None)
        # A lead filler only counts at the start of the text or of a clause.
        lead_re = re.compile(rf"(^|[\s,.!?;:，。！？；：、]+)(?:{lead})+") if lead else None
        object.__setattr__(self, "_lead_re", lead_re)
        object.__setattr__(self, "_typo_re", re.compile(typos) if typos else None)
        english = _alternation(tuple(self.english))
        # whole words only: 'hi' is no part of 'this', 'light' none of 'lights' unless listed
        object.__setattr__(self, "_english_re", re.compile(rf"(?<![a-z'])(?:{english})(?![a-z'])") if english else None)

    @classmethod
    def from_config(cls, table: Mapping[str, Any]) -> Normalizer:
        """Build a normaliser from the `[normalize]` table of intents.toml."""
        return cls(
            fillers=tuple(table.get("fillers", ())),
            lead_fillers=tuple(table.get("lead_fillers", ())),
            emoji_words=dict(table.get("emoji", {})),
            typos=dict(table.get("typos", {})),
            english={str(k).lower(): str(v) for k, v in table.get("english", {}).items()},
            english_alone=frozenset(str(w).lower() for w in table.get("english_alone", ())),
        )

    def in_english(self, text: str) -> bool:
        """Whether a message is written in English: no Chinese character, and two words or more
        of Latin letters (the light is broken, I need help) or one of `english_alone` (hello) —
        ok, wifi or a ticket number alone are not."""
        out = unicodedata.normalize("NFKC", text)
        if _CJK.search(out):
            return False
        words = _LATIN_WORD.findall(out)
        return len(words) >= 2 or (len(words) == 1 and words[0].lower() in self.english_alone)

    def __call__(self, text: str) -> str:
        """Return the normalised form of `text` (possibly empty)."""
        out = unicodedata.normalize("NFKC", text)
        if not out.isascii():
            out = simplified(out)
            for emoji, word in self.emoji_words.items():
                if emoji in out:
                    out = out.replace(emoji, f" {word} ")
            out = _EMOJI.sub(" ", out)
        if self._lead_re is not None:
            out = self._lead_re.sub(r"\1", out)
        if self._fillers_re is not None:
            out = self._fillers_re.sub(" ", out)
        if self._typo_re is not None:
            typos = self.typos
            out = self._typo_re.sub(lambda m: typos[m.group(0)], out)
        out = _PUNCT_RUN.sub(r"\1", out)
        out = _SPACES.sub(" ", out).strip().lower()
        if self._english_re is not None and not _CJK.search(out):
            english = self.english
            out = _SPACES.sub(" ", self._english_re.sub(lambda m: f" {english[m.group(0)]} ", out)).strip()
        return out
