"""Chinese labels and local times for console templates (wording from config/messages.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.clock import local
from bot.texts import Texts


@dataclass(frozen=True)
class Labels:
    """What templates call to show statuses, kinds, actions, reasons, roles and times."""

    texts: Texts
    tz: str

    def _get(self, key: str, name: str) -> str:
        full = f"{key}.{name}"
        return self.texts.get(full) if self.texts.has(full) else name

    def status(self, name: str | None) -> str:
        """A ticket status, e.g. 已派单."""
        return self._get("staff_actions.status", name or "")

    def action(self, name: str) -> str:
        """A staff action or ticket event, e.g. 派单, 备注."""
        if self.texts.has(f"staff_actions.action.{name}"):
            return self.texts.get(f"staff_actions.action.{name}")
        return self._get("console.events", name)

    def kind(self, name: str | None) -> str:
        """A ticket kind, e.g. 投诉报修."""
        return self._get("dispatch.kinds", name or "")

    def reason(self, name: str) -> str:
        """Why a ticket is in the queue."""
        return self._get("console.reasons", name)

    def role(self, name: str) -> str:
        """A console role."""
        return self._get("console.roles", name)

    def urgency(self, name: str | None) -> str:
        """A ticket's urgency."""
        return self._get("console.urgency", name or "")

    def text(self, key: str, **values: object) -> str:
        """Any console wording by key under console."""
        return self.texts.get(f"console.{key}", **values)

    def time(self, when: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
        """A time in the community's timezone ('' for none)."""
        return "" if when is None else local(when, self.tz).strftime(fmt)
