"""Canned replies staff pick from when answering a resident (config/canned_replies.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bot.config_files import read_toml
from bot.settings import CONFIG_DIR

CANNED_PATH = CONFIG_DIR / "canned_replies.toml"


@dataclass(frozen=True)
class CannedReply:
    """A title to choose by and the answer text ({number} filled in per ticket)."""

    title: str
    text: str

    def for_ticket(self, number: str) -> str:
        """The text with the ticket number filled in."""
        return self.text.replace("{number}", number)


@lru_cache(maxsize=4)
def load_canned(path: Path = CANNED_PATH) -> tuple[CannedReply, ...]:
    """Read the canned replies; ValueError naming the entry when one is malformed."""
    data = read_toml(path)
    replies = []
    for i, entry in enumerate(data.get("replies", []), start=1):
        title, text = entry.get("title"), entry.get("text")
        if not isinstance(title, str) or not title.strip() or not isinstance(text, str) or not text.strip():
            raise ValueError(f"{path}: replies #{i} needs a non-empty title and text")
        replies.append(CannedReply(title.strip(), text.strip()))
    return tuple(replies)
