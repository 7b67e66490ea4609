"""Loading config/intents.toml and config/lexicon.txt into immutable rule sets.

A *term* in the rules is a word (matched against jieba segments), `@class` (any word of a word
class), `!word` / `!@class` (the word said under a negation such as 不是, 不想, 不需要), or
`#slot` (the message fills that slot, e.g. `#ticket_number`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config_files import read_text, read_toml
from bot.intents.normalize import Normalizer

INTENTS_FILE = "intents.toml"
LEXICON_FILE = "lexicon.txt"
ACTIONABLE = ("complaint", "mediation", "elderly_service", "volunteer_signup", "ticket_status", "handoff")
INTENTS = (*ACTIONABLE, "greeting", "unknown")


@dataclass(frozen=True)
class Combo:
    """Adds `weight` when every `all` term, at least one `any` term and no `none` term is present."""

    weight: float
    all: frozenset[str]
    any: frozenset[str]
    none: frozenset[str]

    def fires(self, present: frozenset[str] | set[str]) -> bool:
        """True when the combination holds for the present terms."""
        return (
            self.all.issubset(present)
            and (not self.any or not self.any.isdisjoint(present))
            and self.none.isdisjoint(present)
        )


@dataclass(frozen=True)
class IntentRule:
    """The evidence for one intent: weighted terms, combinations, regex phrases, must/must-not."""

    name: str
    keywords: Mapping[str, float]
    combos: tuple[Combo, ...]
    patterns: tuple[tuple[re.Pattern[str], float], ...]
    must_any: frozenset[str]
    must_not: frozenset[str]

    def allows(self, present: frozenset[str] | set[str]) -> bool:
        """False when a must-have term is missing or a must-not term is present."""
        if self.must_any and self.must_any.isdisjoint(present):
            return False
        return self.must_not.isdisjoint(present)


@dataclass(frozen=True)
class Scoring:
    """Numbers that turn scores into a decision and a confidence."""

    threshold: float
    actionable_min: float
    scale: float
    margin_share: float


@dataclass(frozen=True)
class Negation:
    """Which words negate the terms after them, and how far."""

    words: frozenset[str]
    adjacent_only: frozenset[str]
    window: int
    clause_breaks: frozenset[str]
    rhetorical_tails: frozenset[str]


@dataclass(frozen=True)
class RuleSet:
    """Everything the classifier and slot extractor read from config, loaded once per change."""

    normalizer: Normalizer
    scoring: Scoring
    negation: Negation
    classes: Mapping[str, frozenset[str]]
    term_keys: Mapping[str, tuple[str, ...]]  # word → the terms it stands for (itself, @classes)
    negated_term_keys: Mapping[str, tuple[str, ...]]  # word → the same terms with "!" in front
    intents: tuple[IntentRule, ...]
    keyword_index: Mapping[str, tuple[tuple[int, float], ...]]  # term → (intent position, weight)
    words: tuple[tuple[str, int | None], ...]  # words for jieba: (word, frequency or None)
    max_term_tokens: int
    max_term_chars: int
    slots: Mapping[str, Any]

    def scores(self, present: set[str], text: str) -> dict[str, float]:
        """Evidence per intent: keyword weights + combinations + patterns, 0 where must/must-not fail."""
        totals = [0.0] * len(self.intents)
        for term in present:
            for position, weight in self.keyword_index.get(term, ()):
                totals[position] += weight
        allowed = [rule.allows(present) for rule in self.intents]
        for position, rule in enumerate(self.intents):
            if not allowed[position]:
                totals[position] = 0.0
                continue
            for combo in rule.combos:
                if combo.all.issubset(present) and combo.fires(present):
                    totals[position] += combo.weight
            for pattern, weight in rule.patterns:
                if pattern.search(text):
                    totals[position] += weight
        return {rule.name: totals[i] for i, rule in enumerate(self.intents)}


def _terms(values: Any) -> frozenset[str]:
    return frozenset(str(v) for v in (values or ()))


def _intent(name: str, table: Mapping[str, Any]) -> IntentRule:
    combos = tuple(
        Combo(
            weight=float(c["weight"]),
            all=_terms(c.get("all")),
            any=_terms(c.get("any")),
            none=_terms(c.get("none")),
        )
        for c in table.get("combos", ())
    )
    patterns = tuple((re.compile(p["re"]), float(p["weight"])) for p in table.get("patterns", ()))
    return IntentRule(
        name=name,
        keywords={str(k): float(v) for k, v in table.get("keywords", {}).items()},
        combos=combos,
        patterns=patterns,
        must_any=_terms(table.get("must_any")),
        must_not=_terms(table.get("must_not")),
    )


def _slot_classes(slots: Mapping[str, Any]) -> dict[str, set[str]]:
    """Word classes derived from the slot vocabularies, so a word is listed once in config."""
    derived: dict[str, set[str]] = {}
    for key in ("service", "category", "party", "areas", "for_whom"):
        table = slots.get(key, {})
        words = derived.setdefault(key, set())
        for canonical, synonyms in table.items():
            if key == "service":
                words.add(canonical)
            words.update(synonyms)
    derived["urgent"] = set(slots.get("urgency", {}).get("terms", ()))
    derived["party_member"] = set(slots.get("party_member", {}).get("terms", ()))
    return derived


def parse_lexicon(text: str) -> list[tuple[str, int | None]]:
    """Lines of a jieba user dictionary ('word [freq] [tag]', '#' comments) → (word, freq)."""
    words: list[tuple[str, int | None]] = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        words.append((parts[0], freq))
    return words


def _referenced_words(term: str) -> str | None:
    bare = term.lstrip("!")
    return None if bare.startswith(("@", "#")) or not bare else bare


def _slot_words(table: Mapping[str, Any]) -> set[str]:
    """Every word the slot vocabularies list (their Chinese keys too, 助餐 or 早上), less the regexes."""
    words: set[str] = set()
    for key, value in table.items():
        if key == "patterns" or key.endswith("_patterns"):
            continue
        if not key.isascii():
            words.add(key)
        if isinstance(value, Mapping):
            words |= _slot_words(value)
        elif isinstance(value, list):
            words.update(str(v) for v in value)
    return words


def _refuse_unreachable(normalizer: Normalizer, words: set[str]) -> None:
    """ValueError naming rule words the normaliser rewrites inside a sentence (俺爹 is read 我爹,
    哈喽 lost its 哈): the rules see only normalised text, so such a word could never match."""
    unreachable = []
    for word in sorted(words):
        said = normalizer(f"我{word}")  # inside a sentence: a lead filler counts only at its start
        if said != f"我{word.lower()}":
            unreachable.append(f"{word} (read as {said[1:].strip() or 'nothing'})")
    if unreachable:
        raise ValueError(
            "intents.toml names words no normalised message can hold ([normalize] rewrites them): "
            + ", ".join(unreachable)
        )


def build_ruleset(config: Mapping[str, Any], lexicon: list[tuple[str, int | None]]) -> RuleSet:
    """Build a RuleSet from parsed intents.toml and lexicon entries; ValueError on bad config."""
    unknown = set(config.get("intents", {})) - set(ACTIONABLE) - {"greeting"}
    if unknown:
        raise ValueError(f"intents.toml names unknown intents: {sorted(unknown)}")
    slots = config.get("slots", {})
    classes: dict[str, set[str]] = _slot_classes(slots)
    for name, words in config.get("classes", {}).items():
        classes.setdefault(name, set()).update(words)
    intents = tuple(_intent(name, table) for name, table in config.get("intents", {}).items())

    term_keys: dict[str, set[str]] = {}
    for cls, words in classes.items():
        for word in words:
            term_keys.setdefault(word, {word}).add(f"@{cls}")
    for rule in intents:
        referenced = set(rule.keywords) | rule.must_any | rule.must_not
        for combo in rule.combos:
            referenced |= combo.all | combo.any | combo.none
        for term in referenced:
            if term.lstrip("!").startswith("@") and term.lstrip("!")[1:] not in classes:
                raise ValueError(f"intent {rule.name!r} uses undefined word class {term!r}")
            word = _referenced_words(term)
            if word:
                term_keys.setdefault(word, {word})

    keyword_index: dict[str, list[tuple[int, float]]] = {}
    for position, rule in enumerate(intents):
        for term, weight in rule.keywords.items():
            keyword_index.setdefault(term, []).append((position, weight))

    normalizer = Normalizer.from_config(config.get("normalize", {}))
    _refuse_unreachable(normalizer, set(term_keys) | _slot_words(slots))
    neg = config.get("negation", {})
    scoring = config.get("scoring", {})
    seen = {w for w, _ in lexicon}
    extra = set(term_keys) | set(neg.get("words", ())) | set(neg.get("clause_breaks", ()))
    words = list(lexicon) + [(w, None) for w in sorted(extra) if w not in seen and len(w) > 1]
    return RuleSet(
        normalizer=normalizer,
        scoring=Scoring(
            threshold=float(scoring.get("threshold", 0.35)),
            actionable_min=float(scoring.get("actionable_min", 1.5)),
            scale=float(scoring.get("scale", 2.0)),
            margin_share=float(scoring.get("margin_share", 0.45)),
        ),
        negation=Negation(
            words=_terms(neg.get("words")),
            adjacent_only=_terms(neg.get("adjacent_only")),
            window=int(neg.get("window", 3)),
            clause_breaks=_terms(neg.get("clause_breaks")),
            rhetorical_tails=_terms(neg.get("rhetorical_tails")),
        ),
        classes={k: frozenset(v) for k, v in classes.items()},
        term_keys={k: tuple(sorted(v)) for k, v in term_keys.items()},
        negated_term_keys={k: tuple(sorted("!" + t for t in v)) for k, v in term_keys.items()},
        intents=intents,
        keyword_index={k: tuple(v) for k, v in keyword_index.items()},
        words=tuple(words),
        max_term_tokens=int(scoring.get("max_term_tokens", 4)),
        max_term_chars=max((len(w) for w in term_keys), default=1),
        slots=slots,
    )


def load_ruleset(config_dir: Path) -> RuleSet:
    """Read intents.toml and lexicon.txt from `config_dir` into a RuleSet."""
    config = read_toml(config_dir / INTENTS_FILE)
    lexicon_path = config_dir / LEXICON_FILE
    lexicon = parse_lexicon(read_text(lexicon_path)) if lexicon_path.exists() else []
    return build_ruleset(config, lexicon)


def config_stamp(config_dir: Path) -> tuple[int, ...]:
    """Modification time and size of the two rule files (zeros when missing), to notice edits."""
    stamp: list[int] = []
    for name in (INTENTS_FILE, LEXICON_FILE):
        try:
            stat = (config_dir / name).stat()
        except FileNotFoundError:
            stamp += [0, 0]
        else:
            stamp += [stat.st_mtime_ns, stat.st_size]
    return tuple(stamp)
