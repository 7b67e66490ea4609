"""Common questions (办公时间, 居住证, 大件垃圾 …) answered from config/faq.toml, which the
community's operators edit. Only a message that is none of the services reaches here."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from bot.config_files import read_toml
from bot.flows.commands import normalize
from bot.settings import CONFIG_DIR

FAQ_FILE = CONFIG_DIR / "faq.toml"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One question: the words that ask it and its answer."""

    words: tuple[str, ...]
    answer: str
    before_services: bool = False  # asked in words a report also uses (什么时候停水): answered first
    fallback: bool = False  # a kind of question (怎么申请, 需要什么材料): only when no other entry answers
    # words that name no subject (几点关门): the entry's only in a message that says nothing but
    # them, its subject and the file's plain words (你们周末几点关门, not 小区大门晚上几点关门)
    asks: tuple[str, ...] = ()
    besides: tuple[str, ...] = ()  # what else such a message may say, longest first

    def asked(self, said: str) -> bool:
        """Whether said asks this entry's question in one of its asks words, about its subject."""
        if not any(w in said for w in self.asks):
            return False
        for word in self.besides:  # longest first: 几点关门 before 几点
            said = said.replace(word, "")
        return not said

    def asks_of_another(self, said: str) -> bool:
        """Whether said asks in one of the asks words about something else (超市几点关门)."""
        return any(w in said for w in self.asks) and not self.asked(said)


def parse(data: dict[str, object], where: str) -> tuple[Entry, ...]:
    """The entries of a parsed faq.toml; ValueError naming what is wrong."""
    raw = data.get("faq", [])
    if not isinstance(raw, list):
        raise ValueError(f"{where}: [[faq]] entries expected")
    plain = _word_list(data.get("plain", []), f"{where}: plain")
    entries = []
    for n, item in enumerate(raw, 1):
        words = item.get("words", []) if isinstance(item, dict) else None
        answer = item.get("answer") if isinstance(item, dict) else None
        asks = _word_list(item.get("asks", []), f"{where}: entry {n}: asks") if isinstance(item, dict) else ()
        subject = _word_list(item.get("subject", []), f"{where}: entry {n}: subject") if asks else ()
        if asks and not subject:
            raise ValueError(f"{where}: entry {n}: asks needs the subject the message may name")
        if (not isinstance(words, list) or not (words or asks)
                or not all(isinstance(w, str) and normalize(w) for w in words)):
            raise ValueError(f"{where}: entry {n} needs a non-empty list of words")
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError(f"{where}: entry {n} needs an answer")
        first = item.get("before_services", False)
        if not isinstance(first, bool):
            raise ValueError(f"{where}: entry {n}: before_services is true or false")
        last = item.get("fallback", False)
        if not isinstance(last, bool):
            raise ValueError(f"{where}: entry {n}: fallback is true or false")
        if first and last:
            raise ValueError(f"{where}: entry {n}: before_services and fallback exclude each other")
        if asks and (first or last):
            raise ValueError(f"{where}: entry {n}: asks is for an entry read among the others only")
        said = tuple(normalize(w) for w in words)
        besides = tuple(sorted({*said, *asks, *subject, *plain}, key=len, reverse=True)) if asks else ()
        entries.append(Entry(said, answer.strip(), first, last, asks, besides))
    return tuple(entries)


def _word_list(raw: object, where: str) -> tuple[str, ...]:
    """A list of words, normalized; ValueError naming where when it is no such list."""
    if not isinstance(raw, list) or not all(isinstance(w, str) and normalize(w) for w in raw):
        raise ValueError(f"{where}: a list of words expected")
    return tuple(normalize(w) for w in raw)


_cache: dict[Path, tuple[float, tuple[Entry, ...]]] = {}


def load(path: Path = FAQ_FILE) -> tuple[Entry, ...]:
    """The entries of path, read again when the file changed (none when there is no file)."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return ()
    cached = _cache.get(path)
    if cached is None or cached[0] != mtime:
        try:
            cached = (mtime, parse(read_toml(path), str(path)))
        except (OSError, ValueError) as exc:  # a typo while an operator edits it (TOMLDecodeError too)
            # the answers in force stay (none before a first good read); said once per change
            log.error("%s not reloaded, the previous answers stay in force: %s", path, exc)
            cached = (mtime, cached[1] if cached is not None else ())
        _cache[path] = cached
    return cached[1]


def answer(text: str, path: Path = FAQ_FILE, *, before_services: bool = False) -> str | None:
    """The answer to the question text asks, if one of the entries' words is in it (the longest
    word found wins: 居住证明 is a certificate, not a residence permit); with before_services,
    among the entries marked so only (a question a report's words would otherwise take). An entry
    marked fallback (低保怎么申请 with no entry on 低保: a person answers) is read only when no
    other entry's words are in text, and never with before_services. An entry's asks words (几点关门)
    answer only about its subject: asked of something else (小区大门晚上几点关门) no entry answers,
    so the fallback's answer (a person) is given, not the office's hours."""
    said = normalize(text)
    entries = load(path)
    if before_services:
        return _best(said, [e for e in entries if e.before_services])
    found = _best(said, [e for e in entries if not e.fallback])
    if found is not None:
        return found
    fallbacks = [e for e in entries if e.fallback]
    found = _best(said, fallbacks)
    if found is None and fallbacks and any(e.asks_of_another(said) for e in entries):
        return fallbacks[0].answer
    return found


def _best(said: str, entries: list[Entry]) -> str | None:
    """The answer of the entry with the longest word found in said (an asks word only where the
    entry is asked about its subject), if any."""
    best: tuple[int, str] | None = None
    for entry in entries:
        asked = entry.asked(said)
        for word in (*entry.words, *(entry.asks if asked else ())):
            if word in said and (best is None or len(word) > best[0]):
                best = (len(word), entry.answer)
    return best[1] if best else None
