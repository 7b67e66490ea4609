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


ASK_LEFT = 3  # characters besides the words asking for a person (我要转) a message that only asks keeps


def only_asks(text: str) -> bool:
    """Whether a message only asks for a person: the 人工 command, or config/flows.toml's
    [handoff] midflow_words with at most ASK_LEFT other characters (转人工, 我要跟人说话, 有人吗)."""
    if command_of(text) == "handoff":
        return True
    norm = left = normalize(text)
    for word in sorted((normalize(w) for w in flow_config()["handoff"].get("midflow_words", ())), key=len, reverse=True):
        left = left.replace(word, "")
    return len(left) <= ASK_LEFT and left != norm


_PARTS = re.compile(r"([\s，,。！!？?]+)")


def without_asking(text: str) -> str:
    """Words without the request for a person said before or after them (人工 我家水管爆了 6号楼 →
    我家水管爆了 6号楼, 我老伴晕倒了，转人工 → 我老伴晕倒了); words that only ask are kept whole."""
    parts = _PARTS.split(text.strip())
    kept = [i for i, part in enumerate(parts[::2]) if part and not only_asks(part)]
    return "".join(parts[2 * kept[0]:2 * kept[-1] + 1]) if kept else text.strip()


def leaves(flow_name: str, text: str) -> bool:
    """Whether the whole message is one of the words that leave this flow as 取消 does
    (config/flows.toml [leave]: 我不想去了 in the volunteer signup)."""
    norm = normalize(text)
    return bool(norm) and norm in _known(tuple(flow_config().get("leave", {}).get(flow_name, ())))


def declines_nudge(text: str) -> bool:
    """Whether the whole message declines the request an idle nudge reminded of
    (config/flows.toml [nudge] declined: 不用了, 算了)."""
    norm = normalize(text)
    return bool(norm) and norm in _known(words("nudge", "declined"))


# Voice and older residents' filler before the answer proper (嗯 没有照片, 就是说 没有, 那个 好的).
_FILLER = re.compile(r"^(?:嗯+|恩+|呃+|额+|啊+|哦+|噢+|唉+|哎+|那个|就是说?|这个|那)+")


def without_filler(norm: str) -> str:
    """A normalized message without the filler it starts with, unless nothing else is said (嗯 is
    a yes of its own)."""
    rest = _FILLER.sub("", norm)
    return rest or norm


def is_word(text: str, kind: str) -> bool:
    """Whether the whole message is one of the answer words of kind (yes, no, skip, done, modify),
    after any filler it starts with (嗯 没有照片)."""
    norm = normalize(text)
    if not norm:
        return False
    known = _known(tuple(words("answers", kind)))
    return norm in known or without_filler(norm) in known


@functools.lru_cache(maxsize=64)
def _known(listed: tuple[str, ...]) -> frozenset[str]:
    """A word list as compared (normalized), once per list."""
    return frozenset(normalize(w) for w in listed)
