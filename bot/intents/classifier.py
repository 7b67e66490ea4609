"""Deciding what a resident's message means: normalise, segment with jieba, score intents, read slots.

The rules live in config/intents.toml and config/lexicon.txt and are reloaded when either file
changes (checked at most once a second), so an operator can tune wording without a restart.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from time import monotonic
from typing import Any

from bot.intents.emergency import UrgencyContext
from bot.intents.requests import TwoRequests, two_requests
from bot.intents.rules import ACTIONABLE, RuleSet, config_stamp, load_ruleset
from bot.intents.segment import Segmenter
from bot.intents.slots import SHANGHAI, SlotExtractor, ticket_digits

log = logging.getLogger(__name__)

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
RELOAD_CHECK_S = 1.0
_SPACES = re.compile(r"\s+")
# Slots that only make sense for one intent; dropped from a classification of another.
_INTENT_ONLY_SLOTS = {"party": "mediation", "areas": "volunteer_signup", "party_member": "volunteer_signup"}


@dataclass(frozen=True)
class Classification:
    """The meaning of one message: intent, confidence in 0..1 and the slots it already fills.

    For `unknown` the confidence says how sure the classifier is that no intent applies."""

    text: str
    intent: str
    confidence: float
    slots: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of the CLI and logs: {"text", "intent", "confidence", "slots"}."""
        return {"text": self.text, "intent": self.intent, "confidence": self.confidence, "slots": self.slots}


@dataclass(frozen=True)
class _Loaded:
    """One generation of rules with the segmenter and slot extractor built from them."""

    rules: RuleSet
    segmenter: Segmenter
    slots: SlotExtractor
    stamp: tuple[int, ...]


def _load(config_dir: Path) -> _Loaded:
    stamp = config_stamp(config_dir)
    rules = load_ruleset(config_dir)
    return _Loaded(rules, Segmenter.for_words(rules.words), SlotExtractor.from_config(rules.slots), stamp)


class Classifier:
    """Rule-based intent classifier and slot reader over jieba segments."""

    def __init__(self, config_dir: Path) -> None:
        self._config_dir = Path(config_dir)
        self._lock = threading.Lock()
        self._loaded = _load(self._config_dir)
        self._checked_at = monotonic()
        self._refused_stamp: object = None  # the files' stamp a reload refused (logged once)

    def _current(self) -> _Loaded:
        """The rules in force, reloaded first when a rule file changed since the last look."""
        now = monotonic()
        if now - self._checked_at < RELOAD_CHECK_S:
            return self._loaded
        with self._lock:
            if now - self._checked_at >= RELOAD_CHECK_S:
                self._checked_at = now
                stamp = config_stamp(self._config_dir)
                if stamp not in (self._loaded.stamp, self._refused_stamp):
                    try:
                        self._loaded = _load(self._config_dir)
                    except Exception as exc:  # noqa: BLE001 — any fault in an edited rule file
                        # the rules in force stay: residents keep being answered while it is fixed
                        self._refused_stamp = stamp
                        log.error("rule files not reloaded, the previous rules stay in force: %s", exc)
        return self._loaded

    def classify(self, text: str, now: datetime | None = None) -> Classification:
        """Intent, confidence and slots of one message; `unknown` below the confidence threshold."""
        loaded = self._current()
        normal = loaded.rules.normalizer(text)
        slots = loaded.slots.extract(normal, now or datetime.now(SHANGHAI))
        present = loaded.segmenter.terms(normal, loaded.rules)
        present.update(f"#{key}" for key in slots)  # rules may say "#ticket_number", "#phone" …
        if ticket_digits(_SPACES.sub("", normal)) is not None:
            present.add("#ticket_digits")  # 0001咋样了: a ticket named by its last digits
        if "urgency" not in slots and not loaded.slots.unhurried(normal):
            # 晕倒了 已经好了, 去年摔倒在…: urgency words of no emergency now, nothing to report; said
            # to be no hurry (3号楼冒烟了 不是急事), what they name is still a report, not urgent
            present.discard("@urgent")
        intent, confidence = _decide(loaded.rules, present, normal)
        for key, owner in _INTENT_ONLY_SLOTS.items():
            if key in slots and intent != owner:
                del slots[key]
        return Classification(text=text, intent=intent, confidence=confidence, slots=slots)

    def two_requests(self, text: str, now: datetime | None = None) -> TwoRequests | None:
        """The two requests a message holds (楼道灯坏了 还有我想约个理发: config/intents.toml
        [two_requests]); None when it holds one or none."""
        return two_requests(text, lambda side: self.classify(side, now), self._config_dir)

    def extract_slots(self, text: str, now: datetime | None = None) -> dict[str, Any]:
        """Only the slots of a message, e.g. a resident's answer to one dialog question."""
        loaded = self._current()
        return loaded.slots.extract(loaded.rules.normalizer(text), now or datetime.now(SHANGHAI))

    def terms(self, text: str) -> set[str]:
        """The terms the rules see in a message: its words and the @classes they belong to."""
        loaded = self._current()
        return set(loaded.segmenter.terms(loaded.rules.normalizer(text), loaded.rules))

    def urgency_context(self) -> UrgencyContext:
        """The words around an emergency word that say it is none now (config/intents.toml
        [slots.urgency]: 去年, 差点, 没事了 …), for the dialog's emergencies too."""
        return self._current().slots.urgency_context

    def normalize(self, text: str) -> str:
        """The normalised text the rules see (for operators tuning rules, and tests)."""
        return self._current().rules.normalizer(text)

    def in_english(self, text: str) -> bool:
        """Whether a message is written in English (no Chinese, a few Latin words: config/intents.toml
        [normalize] english_alone for a word alone); the dialog hands such a message to a person."""
        return self._current().rules.normalizer.in_english(text)

    def segments(self, text: str) -> list[str]:
        """The jieba segments of the normalised text (for operators tuning the lexicon, and tests)."""
        loaded = self._current()
        return loaded.segmenter.cut(loaded.rules.normalizer(text))


def _confidence(rules: RuleSet, best: float, runner_up: float) -> float:
    """Grows with the evidence and with its lead over the next intent; in 0..1."""
    scoring = rules.scoring
    strength = 1.0 - math.exp(-best / scoring.scale)
    lead = 1.0 - math.exp(-(best - max(runner_up, 0.0)) / scoring.scale)
    return round(max(0.0, min(1.0, strength * (1.0 - scoring.margin_share + scoring.margin_share * lead))), 3)


def _decide(rules: RuleSet, present: set[str], text: str) -> tuple[str, float]:
    """Pick the actionable intent with the most evidence, else greeting, else unknown."""
    scores = rules.scores(present, text)
    actionable = sorted(((scores.get(n, 0.0), n) for n in ACTIONABLE), reverse=True)
    (best, name), (second, _) = actionable[0], actionable[1]
    greeting = scores.get("greeting", 0.0)
    if best >= rules.scoring.actionable_min:
        intent, confidence = name, _confidence(rules, best, second)
    elif greeting > 0:
        intent, confidence = "greeting", _confidence(rules, greeting, best)
    else:
        return "unknown", round(1.0 - _confidence(rules, max(best, 0.0) or 1e-9, 0.0), 3)
    if confidence < rules.scoring.threshold:
        return "unknown", round(1.0 - confidence, 3)
    return intent, confidence


_SINGLETON: Classifier | None = None
_SINGLETON_LOCK = threading.Lock()


def get_classifier(config_dir: Path | None = None) -> Classifier:
    """The process-wide classifier (built on first use); default rules from <repo>/config."""
    global _SINGLETON
    wanted = Path(config_dir) if config_dir is not None else DEFAULT_CONFIG_DIR
    with _SINGLETON_LOCK:
        if _SINGLETON is None or _SINGLETON._config_dir != wanted:
            _SINGLETON = Classifier(wanted)
        return _SINGLETON
