"""Commands that work at every step (取消, 返回, 重新开始, 人工, 帮助 …) and answer words."""

from __future__ import annotations

import functools
import re
import unicodedata

from bot.flows.config import flow_config, words
from bot.intents.normalize import simplified

COMMANDS = ("cancel", "back", "restart", "handoff", "help", "my_info", "erase_info")

_NOISE = re.compile(r"[\s\u3000,.!?;:，。！？；：、~～…\"'“”‘’()（）【】\[\]<>《》]+")


@functools.lru_cache(maxsize=8192)
def normalize(text: str) -> str:
    """Text as compared against word lists: NFKC, simplified characters (確認 is 确认), lower case,
    without spaces and punctuation.

    Memoised: every message compares its text against dozens of configured words."""
    folded = simplified(unicodedata.normalize("NFKC", text)).lower().strip()
    stripped = _NOISE.sub("", folded)
    return stripped or folded


def command_of(text: str) -> str | None:
    """The command a message is (only when the whole message is the command), else None."""
    norm = normalize(text)
    if not norm:
        return None
    table = flow_config()["commands"]
    for name in COMMANDS:
        if norm in (normalize(w) for w in table.get(name, ())):
            return name
    return None


def is_word(text: str, kind: str) -> bool:
    """Whether the whole message is one of the answer words of kind (yes, no, skip, done, modify)."""
    norm = normalize(text)
    return bool(norm) and norm in (normalize(w) for w in words("answers", kind))
