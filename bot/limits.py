"""Ticket time limits (config/limits.toml): when a dispatch must be taken and a ticket resolved."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.config_files import read_toml
from bot.settings import CONFIG_DIR

CLASSES = ("urgent", "utility", "normal", "complex")


@dataclass(frozen=True)
class Limits:
    """The configured limits: resolve hours per class, class per kind, reminder lead times, and
    how long after a booked service's start it is to be 办结."""

    resolve_hours: dict[str, float]
    kind_class: dict[str, str]
    accept_before_s: float
    resolve_before_fraction: float
    resolve_before_max_s: float
    duplicate_window_hours: float
    booking_resolve_hours: float = 24.0
    category_class: dict[str, str] = field(default_factory=dict)  # report category → class above normal
    duplicate_alert_reporters: int = 5  # residents on one open ticket that make the staff group told (0: never)

    def urgency_class(self, kind: str, urgency: str | None) -> str:
        """The class that sets a ticket's limit: its urgency, or its kind's class when 'normal'."""
        if urgency in ("urgent", "utility", "complex"):
            return urgency
        return self.kind_class.get(kind, "normal")

    def resolve_limit(self, kind: str, urgency: str | None) -> timedelta:
        """How long from dispatch to 办结 for a ticket of this kind and urgency."""
        return timedelta(hours=self.resolve_hours[self.urgency_class(kind, urgency)])

    def resolve_due(self, kind: str, urgency: str | None, now: datetime, booked: datetime | None = None) -> datetime:
        """When 办结 is due for a ticket dispatched (or reopened) now: the class's limit from now;
        for a booked service still to come, the booking limit from the booked start."""
        if booked is not None and booked > now:
            return booked + timedelta(hours=self.booking_resolve_hours)
        return now + self.resolve_limit(kind, urgency)

    def resolve_reminder_at(self, dispatched: datetime, due: datetime) -> datetime:
        """When to remind the worker that 办结 is due soon (dispatched: when the limit started
        running — a booking's start)."""
        span = (due - dispatched).total_seconds()
        lead = min(span * self.resolve_before_fraction, self.resolve_before_max_s)
        return due - timedelta(seconds=lead)

    def accept_reminder_at(self, dispatched: datetime, accept_due: datetime) -> datetime:
        """When to remind the worker to take the dispatch (never before the dispatch itself)."""
        return max(dispatched, accept_due - timedelta(seconds=self.accept_before_s))


def parse_limits(data: dict[str, Any]) -> Limits:
    """Validate the TOML tables into Limits; raises ValueError naming what is wrong."""
    hours = data.get("resolve_hours", {})
    missing = [c for c in CLASSES if c not in hours]
    if missing:
        raise ValueError(f"limits: resolve_hours lacks {', '.join(missing)}")
    for name, value in hours.items():
        if name not in CLASSES:
            raise ValueError(f"limits: unknown urgency class {name!r}")
        if not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"limits: resolve_hours.{name} must be a positive number")
    kind_class = dict(data.get("kind_class", {}))
    for kind, cls in kind_class.items():
        if cls not in CLASSES:
            raise ValueError(f"limits: kind_class.{kind} = {cls!r} is not one of {', '.join(CLASSES)}")
    category_class = dict(data.get("category_class", {}))
    for category, cls in category_class.items():
        if cls not in ("urgent", "utility"):
            raise ValueError(f"limits: category_class.{category} = {cls!r} is not urgent or utility")
    rem = data.get("reminders", {})
    dup = data.get("duplicates", {})
    booking_hours = data.get("booking", {}).get("resolve_after_start_hours", 24)
    if not isinstance(booking_hours, (int, float)) or booking_hours <= 0:
        raise ValueError("limits: booking.resolve_after_start_hours must be a positive number")
    alert_reporters = dup.get("alert_reporters", 5)
    if not isinstance(alert_reporters, int) or isinstance(alert_reporters, bool) or alert_reporters < 0:
        raise ValueError("limits: duplicates.alert_reporters must be a whole number, 0 or more")
    fraction = float(rem.get("resolve_before_fraction", 0.25))
    if not 0 <= fraction < 1:
        raise ValueError("limits: reminders.resolve_before_fraction must be in [0, 1)")
    return Limits(
        resolve_hours={k: float(v) for k, v in hours.items()},
        kind_class=kind_class,
        accept_before_s=float(rem.get("accept_before_s", 600)),
        resolve_before_fraction=fraction,
        resolve_before_max_s=float(rem.get("resolve_before_max_s", 86400)),
        duplicate_window_hours=float(dup.get("window_hours", 24)),
        booking_resolve_hours=float(booking_hours),
        duplicate_alert_reporters=alert_reporters,
        category_class=category_class,
    )


@lru_cache(maxsize=4)
def load_limits(path: Path = CONFIG_DIR / "limits.toml") -> Limits:
    """The limits in path (cached per path)."""
    return parse_limits(read_toml(path))
