"""jieba segmentation with the community lexicon, and the rule terms a message contains.

jieba's main dictionary, less its rarest words (MIN_FREQUENCY), is loaded once per process from
a cache file under var/, so a fresh process starts fast; each rule generation gets its own
Tokenizer with a copy of that dictionary plus the lexicon and rule words, so a reload re-adds
the words without touching the tokenizer in use.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jieba

from bot.intents.rules import RuleSet

VAR_DIR = Path(__file__).resolve().parents[2] / "var"
# Words jieba's dictionary has seen fewer times than this are left out: a third of the entries,
# a third of the start-up time; what they would have joined is still cut into known words.
MIN_FREQUENCY = 5
_BASE_LOCK = threading.Lock()


def _cache_dir() -> str:
    """<repo>/var when writable, else the system temp dir, for jieba's dictionary cache."""
    try:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
    except OSError:
        return tempfile.gettempdir()
    return str(VAR_DIR) if os.access(VAR_DIR, os.W_OK) else tempfile.gettempdir()


def _trimmed_dictionary(directory: str) -> str:
    """Path of jieba's dictionary without its rarest words, written once under `directory`."""
    source = Path(jieba.__file__).resolve().parent / "dict.txt"
    target = Path(directory) / f"jieba.min{MIN_FREQUENCY}.dict.txt"
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return str(target)
    kept = []
    with source.open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and int(parts[1]) >= MIN_FREQUENCY:
                kept.append(line if line.endswith("\n") else line + "\n")
    handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.writelines(kept)
    os.replace(temporary, target)
    return str(target)


@lru_cache(maxsize=1)
def _base_tokenizer() -> jieba.Tokenizer:
    """jieba over its trimmed dictionary, read from jieba's cache file once per process."""
    with _BASE_LOCK:
        jieba.setLogLevel(logging.WARNING)
        directory = _cache_dir()
        base = jieba.Tokenizer(dictionary=_trimmed_dictionary(directory))
        base.tmp_dir = directory
        base.initialize()
        return base


def _is_break(token: str) -> bool:
    return not any(ch.isalnum() for ch in token)


@dataclass(frozen=True)
class Segmenter:
    """A jieba Tokenizer holding the community words of one rule generation.

    `cut` runs jieba's own no-HMM algorithm (max-probability path over the prefix dictionary)
    on the tokenizer's dictionary with local variables and a log-frequency cache: the same
    segments as `tokenizer.lcut(text, HMM=False)` (a test holds them equal) at about twice the
    speed.
    """

    tokenizer: jieba.Tokenizer
    logs: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def for_words(cls, words: tuple[tuple[str, int | None], ...]) -> Segmenter:
        """A tokenizer over jieba's dictionary plus `words` (word, frequency or None = suggested)."""
        return _segmenter(words)

    def cut(self, text: str) -> list[str]:
        """Segments of normalised text (jieba, no HMM: faster and steadier on short messages)."""
        out: list[str] = []
        freq = self.tokenizer.FREQ
        logs = self.logs
        if not logs:
            logs[""] = math.log(self.tokenizer.total)
        for block in jieba.re_han_default.split(text):
            if not block:
                continue
            if jieba.re_han_default.match(block):
                _cut_block(block, freq, logs, out)
            else:
                for part in jieba.re_skip_default.split(block):
                    if jieba.re_skip_default.match(part):
                        out.append(part)
                    else:
                        out.extend(part)
        return out

    def terms(self, text: str, rules: RuleSet) -> set[str]:
        """Rule terms present in text: words, their @classes, and '!'-prefixed negated ones."""
        tokens = self.cut(text)
        count = len(tokens)
        index = rules.term_keys
        negated_index = rules.negated_term_keys
        breaks = rules.negation.clause_breaks
        span = rules.max_term_tokens
        longest = rules.max_term_chars
        present: set[str] = set()
        clause_start = 0
        for i in range(count):
            token = tokens[i]
            if not token.isalnum() and _is_break(token):
                clause_start = i + 1
                continue
            if token in breaks:
                clause_start = i + 1
            hits: list[str] = []
            joined = token
            j = i
            while True:
                if joined in index:
                    hits.append(joined)
                j += 1
                if j >= count or j - i >= span:
                    break
                joined += tokens[j]
                if len(joined) > longest:
                    break
            if len(token) > 2 and token not in index and not token.isascii():
                hits += _inner_terms(token, index)
            if not hits or _inside_a_latin_word(tokens, i):  # jieba's 'br' 'ok' 'en': no 'ok' said
                continue
            chosen = negated_index if _negated(tokens, i, clause_start, rules) else index
            for word in hits:
                present.update(chosen[word])
        return present


def _latin(token: str) -> bool:
    return token.isascii() and token.isalpha()


def _inside_a_latin_word(tokens: list[str], i: int) -> bool:
    """Whether tokens[i] is letters jieba cut out of a longer Latin word (ok in broken)."""
    return _latin(tokens[i]) and (
        (i > 0 and _latin(tokens[i - 1])) or (i + 1 < len(tokens) and _latin(tokens[i + 1]))
    )


def _inner_terms(token: str, index: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Words of two or more characters inside a segment jieba merged ('又坏了' → '坏了')."""
    found: list[str] = []
    size = len(token)
    for start in range(size):
        for end in range(start + 2, size + 1):
            if end - start < size and token[start:end] in index:
                found.append(token[start:end])
    return found


def _cut_block(sentence: str, freq: dict[str, int], logs: dict[str, float], out: list[str]) -> None:
    """jieba's __cut_DAG_NO_HMM for one block of Han/alphanumeric text, appended to `out`.

    `logs` caches word → log(frequency) − log(total); its "" entry holds log(total)."""
    size = len(sentence)
    logtotal = logs[""]
    best = [0.0] * (size + 1)
    end = [0] * (size + 1)
    for idx in range(size - 1, -1, -1):
        top = -math.inf
        top_end = idx
        k = idx
        frag = sentence[idx]
        matched = False
        while k < size:
            count = freq.get(frag)
            if count is None:
                break
            if count:
                matched = True
                lp = logs.get(frag)
                if lp is None:
                    lp = logs[frag] = math.log(count) - logtotal
                lp += best[k + 1]
                if lp >= top:  # jieba's max over (p, end) lets the longer word win a tie
                    top, top_end = lp, k
            k += 1
            frag = sentence[idx:k + 1]
        if not matched:
            top = math.log(freq.get(sentence[idx]) or 1) - logtotal + best[idx + 1]
            top_end = idx
        best[idx] = top
        end[idx] = top_end
    x = 0
    buf = ""
    while x < size:
        y = end[x] + 1
        word = sentence[x:y]
        if y - x == 1 and jieba.re_eng.match(word):
            buf += word
        else:
            if buf:
                out.append(buf)
                buf = ""
            out.append(word)
        x = y
    if buf:
        out.append(buf)


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
