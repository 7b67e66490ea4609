"""WeChat's customer-service window: when the account may send a resident a free-form message.

WeChat lets an official account send customer-service messages only after the resident did
something (DOMAIN.md):

- a message (text, voice, a photo, a location, ...) opens **48 hours**, at most **5** messages;
- a follow, a QR-code scan or a menu click opens **1 minute**, at most **3** messages.

Outside both, only a template message reaches the resident. Each allowance is counted from the
interaction that opened it, and an event does not close a message's window: a resident who wrote
an hour ago and then clicks the menu still has the rest of the 48 hours.

The resident's row keeps what is needed: `last_message_at` (the last message) and
`last_inbound_at` / `window_opened_by` (the last interaction of any kind and what it was). The
outbox sender and the console predict the channel from them; the console also counts the pushes
that use a window's quota (bot.staff_actions.custom_sent: sent as customer-service messages since
the window opened, however long they had waited in the outbox, and any still queued). The quota
itself is WeChat's to count, and a refusal (45015, 45047) still falls back to a template.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MESSAGE_WINDOW = timedelta(hours=48)
MESSAGE_QUOTA = 5
EVENT_WINDOW = timedelta(minutes=1)
EVENT_QUOTA = 3


@dataclass(frozen=True)
class Allowance:
    """One open window: customer-service messages sent since `since` count against `quota`."""

    since: datetime
    quota: int


@dataclass(frozen=True)
class Window:
    """What a resident last did, as far as the customer-service window is concerned."""

    last_message_at: datetime | None = None
    last_inbound_at: datetime | None = None
    opened_by: str | None = None  # message | subscribe | scan | click

    def allowances(self, now: datetime) -> list[Allowance]:
        """The windows open at now, the message's first."""
        open_: list[Allowance] = []
        if self.last_message_at is not None and now - self.last_message_at < MESSAGE_WINDOW:
            open_.append(Allowance(self.last_message_at, MESSAGE_QUOTA))
        if (
            self.opened_by not in (None, "message")
            and self.last_inbound_at is not None
            and now - self.last_inbound_at < EVENT_WINDOW
        ):
            open_.append(Allowance(self.last_inbound_at, EVENT_QUOTA))
        return open_

    def is_open(self, now: datetime) -> bool:
        """Whether a customer-service message may be tried at now."""
        return bool(self.allowances(now))


def channel(window: Window | None, now: datetime) -> str:
    """'custom' while a window is open, else 'template'."""
    return "custom" if window is not None and window.is_open(now) else "template"
