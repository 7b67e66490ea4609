"""What a resident sent, independent of how the webhook received it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


# Messages whose content the bot cannot read: a file ("file"), a sticker — WeChat delivers it to
# an official account as the text 【收到不支持的消息类型，暂无法显示】 ("unsupported") — and a
# message type WeChat added that is not handled here, such as a mini-program card ("other").
UNREADABLE = frozenset({"file", "unsupported", "other"})


@dataclass(frozen=True)
class Inbound:
    """One message or event from a resident, already verified and decrypted.

    `text` is the typed text, or the voice recognition text; empty for media without words.
    `msg_type` is WeChat's: text, voice, image, video, shortvideo, location, link, event; or one
    of UNREADABLE. A link's `text` is its title (recorded; an article's words, not the resident's).
    `event` is lower case for events (subscribe, unsubscribe, scan, click, view, location).
    """

    openid: str
    msg_type: str
    text: str = ""
    msg_id: str = ""
    event: str = ""
    event_key: str = ""
    media: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    @property
    def is_event(self) -> bool:
        """Whether this is an event rather than a message."""
        return self.msg_type == "event"

    @property
    def unreadable(self) -> bool:
        """Whether this is a message the bot cannot read (a file, a sticker, a mini-program card)."""
        return self.msg_type in UNREADABLE


class AlreadyHandled(Exception):
    """Raised by a producer whose delivery was already handled and committed; reply is the answer
    it was given then (None when it had none)."""

    def __init__(self, reply: str | None) -> None:
        super().__init__("delivery already handled")
        self.reply = reply
