"""The words the dialog recognises (config/flows.toml), read once."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from typing import Any

from bot.flows.base import Choice
from bot.settings import CONFIG_DIR


@lru_cache(maxsize=1)
def flow_config() -> dict[str, Any]:
    """The parsed config/flows.toml."""
    with (CONFIG_DIR / "flows.toml").open("rb") as fh:
        return tomllib.load(fh)


def words(section: str, key: str) -> tuple[str, ...]:
    """A word list, e.g. words('answers', 'yes')."""
    return tuple(flow_config()[section][key])


def choices(section: str, key: str) -> tuple[Choice, ...]:
    """Numbered choices declared as [[section.key]] tables (value, label, synonyms)."""
    return tuple(
        Choice(str(c["value"]), str(c["label"]), tuple(c.get("synonyms", ())))
        for c in flow_config()[section][key]
    )
