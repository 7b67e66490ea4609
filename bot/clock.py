"""An injectable clock, so tests move time instead of sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        return datetime.now(timezone.utc)


class FakeClock:
    """A clock tests set and advance by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)

    def now(self) -> datetime:
        """The current (fake) time."""
        return self._now

    def advance(self, seconds: float = 0, **kwargs: float) -> datetime:
        """Move time forward by seconds (and/or timedelta keyword arguments)."""
        self._now += timedelta(seconds=seconds, **kwargs)
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to an absolute aware time."""
        self._now = when.astimezone(timezone.utc)


def local(dt: datetime, tz: str) -> datetime:
    """The same instant in the community's local timezone."""
    return dt.astimezone(ZoneInfo(tz))
