"""What residents, workers and staff read: wording lives in config/messages.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from bot.config_files import read_toml
from bot.settings import CONFIG_DIR, config_name


class Texts:
    """Message templates by dotted key, formatted with str.format keywords."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or CONFIG_DIR / "messages.toml"
        try:
            self._data: dict[str, Any] = read_toml(self.path)
        except tomllib.TOMLDecodeError as exc:  # said with the file: a typo there stops the service
            raise tomllib.TOMLDecodeError(f"{config_name(self.path)}: {exc}") from exc

    def get(self, key: str, **values: Any) -> str:
        """The text at a dotted key (e.g. 'welcome.subscribe'), formatted with values."""
        node: Any = self._data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"no message {key!r} in {self.path}")
            node = node[part]
        if not isinstance(node, str):
            raise KeyError(f"message {key!r} is not a string")
        return node.format(**values) if values else node

    def section(self, key: str) -> dict[str, Any]:
        """A whole table of messages (e.g. the prompts of one flow)."""
        node: Any = self._data
        for part in key.split("."):
            node = node[part]
        if not isinstance(node, dict):
            raise KeyError(f"message section {key!r} is not a table")
        return node

    def has(self, key: str) -> bool:
        """Whether a dotted key exists."""
        try:
            self.get(key)
        except KeyError:
            return False
        return True
