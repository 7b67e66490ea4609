"""jieba segmentation with the community lexicon, and the rule terms a message contains.

jieba's main dictionary is loaded once per process (from a cache file under var/, so a fresh
process starts fast); each rule generation gets its own Tokenizer sharing a copy of that
dictionary plus the lexicon and rule words, so a reload re-adds words without touching the old one.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jieba

from bot.intents.rules import RuleSet

VAR_DIR = Path(__file__).resolve().parents[2] / "var"
_BASE_LOCK = threading.Lock()


def _cache_dir() -> str:
    """<repo>/var when writable, else the system temp dir, for jieba's dictionary cache."""
    try:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
    except OSError:
        return tempfile.gettempdir()
    return str(VAR_DIR) if os.access(VAR_DIR, os.W_OK) else tempfile.gettempdir()


@lru_cache(maxsize=1)
def _base_tokenizer() -> jieba.Tokenizer:
    """jieba's default dictionary, loaded (or read from its cache file) once per process."""
    with _BASE_LOCK:
        jieba.setLogLevel(logging.WARNING)
        base = jieba.Tokenizer()
        base.tmp_dir = _cache_dir()
        base.initialize()
        return base


def _is_break(token: str) -> bool:
    return not any(ch.isalnum() for ch in token)


@dataclass(frozen=True)
class Segmenter:
    """A jieba Tokenizer holding the community words of one rule generation."""

    tokenizer: jieba.Tokenizer

    @classmethod
    def for_words(cls, words: tuple[tuple[str, int | None], ...]) -> Segmenter:
        """A tokenizer over jieba's dictionary plus `words` (word, frequency or None = suggested)."""
        return _segmenter(words)

    def cut(self, text: str) -> list[str]:
        """Segments of normalised text (jieba, no HMM: faster and steadier on short messages)."""
        return self.tokenizer.lcut(text, HMM=False)

    def terms(self, text: str, rules: RuleSet) -> set[str]:
        """Rule terms present in text: words, their @classes, and '!'-prefixed negated ones."""
        tokens = self.cut(text)
        count = len(tokens)
        index = rules.term_keys
        negation = rules.negation
        span = rules.max_term_tokens
        present: set[str] = set()
        clause_start = 0
        for i, token in enumerate(tokens):
            if _is_break(token) or token in negation.clause_breaks:
                clause_start = i + 1
                if _is_break(token):
                    continue
            found: list[tuple[str, ...]] = []
            joined = ""
            for j in range(i, min(count, i + span)):
                joined += tokens[j]
                keys = index.get(joined)
                if keys is not None:
                    found.append(keys)
            if len(token) > 2 and token not in index:
                found += _inner_terms(token, index)
            if not found:
                continue
            negated = _negated(tokens, i, clause_start, rules)
            for keys in found:
                present.update(("!" + k for k in keys) if negated else keys)
        return present


def _inner_terms(token: str, index: Mapping[str, tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Terms of two or more characters inside a segment jieba merged ('又坏了' → '坏了')."""
    found: list[tuple[str, ...]] = []
    lookup = index.get
    size = len(token)
    for start in range(size):
        for end in range(start + 2, size + 1):
            if end - start < size:
                keys = lookup(token[start:end])
                if keys is not None:
                    found.append(keys)
    return found


def _negated(tokens: list[str], i: int, clause_start: int, rules: RuleSet) -> bool:
    """True when a negation word stands before token i within the window of its clause."""
    negation = rules.negation
    for back in range(1, negation.window + 1):
        k = i - back
        if k < clause_start:
            return False
        token = tokens[k]
        if token in negation.words or (back == 1 and token in negation.adjacent_only):
            return not _rhetorical(tokens, i, negation.rhetorical_tails)
    return False


def _rhetorical(tokens: list[str], i: int, tails: frozenset[str]) -> bool:
    """A clause ending in 吗/嘛 ('这不是乱停车吗') asks rhetorically: its 不是 does not negate."""
    for token in tokens[i + 1:]:
        if _is_break(token):
            return token in tails
        if token in tails:
            return True
    return False


@lru_cache(maxsize=4)
def _segmenter(words: tuple[tuple[str, int | None], ...]) -> Segmenter:
    base = _base_tokenizer()
    tokenizer = jieba.Tokenizer()
    tokenizer.tmp_dir = base.tmp_dir
    tokenizer.FREQ = dict(base.FREQ)
    tokenizer.total = base.total
    tokenizer.initialized = True
    for word, freq in words:
        tokenizer.add_word(word, freq)
    return Segmenter(tokenizer)
