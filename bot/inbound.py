"""What a resident sent, independent of how the webhook received it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Inbound:
    """One message or event from a resident, already verified and decrypted.

    `text` is the typed text, or the voice recognition text; empty for media without words.
    `msg_type` is WeChat's: text, voice, image, video, shortvideo, location, link, event.
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


class AlreadyHandled(Exception):
    """Raised by a producer whose delivery was already handled and committed; reply is the answer
    it was given then (None when it had none)."""

    def __init__(self, reply: str | None) -> None:
        super().__init__("delivery already handled")
        self.reply = reply
