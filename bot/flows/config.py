"""The words the dialog recognises (config/flows.toml), read once."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from bot.config_files import read_toml
from bot.flows.base import Choice
from bot.settings import CONFIG_DIR


@lru_cache(maxsize=1)
def flow_config() -> dict[str, Any]:
    """The parsed config/flows.toml (as Notepad saves it too: bot.config_files)."""
    return read_toml(CONFIG_DIR / "flows.toml")


def words(section: str, key: str) -> tuple[str, ...]:
    """A word list, e.g. words('answers', 'yes')."""
    return tuple(flow_config()[section][key])


def choices(section: str, key: str) -> tuple[Choice, ...]:
    """Numbered choices declared as [[section.key]] tables (value, label, synonyms)."""
    return tuple(
        Choice(str(c["value"]), str(c["label"]), tuple(c.get("synonyms", ())))
        for c in flow_config()[section][key]
    )


def vocabulary_choices(section: str, extra: str = "") -> tuple[Choice, ...]:
    """Choices named by the classifier's vocabulary (config/intents.toml [slots.<section>]): the
    name is value and label, its words are synonyms; `extra` adds a last catch-all choice."""
    table = read_toml(CONFIG_DIR / "intents.toml")["slots"][section]
    found = [Choice(str(name), str(name), tuple(str(w) for w in terms)) for name, terms in table.items()]
    if extra:
        found.append(Choice(extra, extra))
    return tuple(found)
