"""The elderly services residents can book (config/services.toml): hours, slots, capacities.

The words residents name a service with are listed once, in config/intents.toml [slots.service]
(the classifier reads them there); a service's aliases are those words plus the few of its own
that only make sense once a booking is under way (吃饭, 扶手).

Pure data and slot arithmetic in local time; the database side lives in bot/bookings.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bot.config_files import read_toml
from bot.settings import CONFIG_DIR

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CN_WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


@dataclass(frozen=True)
class Window:
    """An opening window on one day, local time: [start, end)."""

    start: time
    end: time


@dataclass(frozen=True)
class ServiceSpec:
    """One bookable service and its rules."""

    name: str
    aliases: tuple[str, ...]
    slot_minutes: int
    slot_capacity: int
    daily_capacity: int
    book_ahead_days: int
    min_lead_minutes: int
    at_home: bool
    hours: tuple[tuple[Window, ...], ...]  # indexed by weekday, Monday = 0
    fee: str = ""  # what residents are told of its cost (要钱吗), in the operator's words; "" when unset

    def windows_on(self, day: date) -> tuple[Window, ...]:
        """The opening windows on a date (empty when closed)."""
        return self.hours[day.weekday()]

    def slots_on(self, day: date) -> list[time]:
        """Every slot start on a date, in order."""
        starts: list[time] = []
        step = timedelta(minutes=self.slot_minutes)
        for window in self.windows_on(day):
            cursor = datetime.combine(day, window.start)
            end = datetime.combine(day, window.end)
            while cursor + step <= end:
                starts.append(cursor.time())
                cursor += step
        return starts

    def days_text(self) -> str:
        """The days it is offered in words: '周二、周四、周六', '周一至周五', '每天'."""
        return _day_label([CN_WEEKDAYS[index] for index, windows in enumerate(self.hours) if windows])

    def hours_text(self) -> str:
        """Opening hours in words, e.g. '周二、周四、周六 09:00-12:00、13:00-16:00'."""
        groups: dict[tuple[Window, ...], list[str]] = {}
        for index, windows in enumerate(self.hours):
            if windows:
                groups.setdefault(windows, []).append(CN_WEEKDAYS[index])
        parts = []
        for windows, days in groups.items():
            label = _day_label(days)
            times = "、".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in windows)
            parts.append(f"{label} {times}")
        return "；".join(parts)


@dataclass(frozen=True)
class Catalog:
    """All services and the booking reminder offsets."""

    services: tuple[ServiceSpec, ...]
    evening_before: time
    before_minutes: int

    def get(self, name: str) -> ServiceSpec | None:
        """The service with this exact name."""
        return next((s for s in self.services if s.name == name), None)

    def find(self, text: str) -> ServiceSpec | None:
        """The service text names (its name first, then the longest alias found)."""
        text = text.strip()
        for spec in sorted(self.services, key=lambda s: len(s.name), reverse=True):
            if spec.name in text:
                return spec
        best: tuple[int, ServiceSpec] | None = None
        for spec in self.services:
            for alias in spec.aliases:
                if alias in text and (best is None or len(alias) > best[0]):
                    best = (len(alias), spec)
        return best[1] if best else None

    @property
    def names(self) -> tuple[str, ...]:
        """Service names in config order."""
        return tuple(s.name for s in self.services)


def _day_label(days: list[str]) -> str:
    """'每天', '周一至周五' for a run of three or more days, else '周二、周四'."""
    if len(days) == 7:
        return "每天"
    indexes = [CN_WEEKDAYS.index(d) for d in days]
    if len(days) >= 3 and indexes == list(range(indexes[0], indexes[-1] + 1)):
        return f"{days[0]}至{days[-1]}"
    return "、".join(days)


def _clock(value: str, where: str) -> time:
    try:
        hour, minute = (int(x) for x in value.strip().split(":"))
        return time(hour, minute)
    except ValueError as exc:
        raise ValueError(f"{where}: {value!r} is not HH:MM") from exc


def _days(value: Any, where: str) -> list[int]:
    if value == "daily":
        return list(range(7))
    if isinstance(value, str) and "-" in value:
        first, last = value.split("-")
        if first not in DAY_NAMES or last not in DAY_NAMES:
            raise ValueError(f"{where}: unknown day range {value!r}")
        return list(range(DAY_NAMES.index(first), DAY_NAMES.index(last) + 1))
    names = [value] if isinstance(value, str) else list(value)
    unknown = [n for n in names if n not in DAY_NAMES]
    if unknown:
        raise ValueError(f"{where}: unknown days {unknown}")
    return [DAY_NAMES.index(n) for n in names]


def _fee(value: Any, where: str) -> str:
    """A service's fee line: text, or nothing when the operator has not written one."""
    if not isinstance(value, str):
        raise ValueError(f"{where}: fee must be text (what residents are told it costs), got {value!r}")
    return value.strip()


def _named_in_intents(config_dir: Path) -> dict[str, tuple[str, ...]]:
    """Service name → the words residents name it with (intents.toml [slots.service]); {} without it."""
    try:
        table = read_toml(config_dir / "intents.toml").get("slots", {}).get("service", {})
    except FileNotFoundError:
        return {}
    return {str(name): tuple(str(w) for w in words) for name, words in table.items()}


def _spec(raw: dict[str, Any], named: tuple[str, ...] = ()) -> ServiceSpec:
    name = str(raw["name"])
    own = tuple(str(a) for a in raw.get("aliases", ()))
    hours: list[list[Window]] = [[] for _ in range(7)]
    for entry in raw.get("hours", []):
        for span in entry["times"]:
            start_s, end_s = span.split("-")
            window = Window(_clock(start_s, name), _clock(end_s, name))
            if window.end <= window.start:
                raise ValueError(f"{name}: window {span!r} ends before it starts")
            for day in _days(entry["days"], name):
                hours[day].append(window)
    spec = ServiceSpec(
        name=name,
        aliases=own + tuple(w for w in named if w not in own),
        slot_minutes=int(raw["slot_minutes"]),
        slot_capacity=int(raw["slot_capacity"]),
        daily_capacity=int(raw["daily_capacity"]),
        book_ahead_days=int(raw["book_ahead_days"]),
        min_lead_minutes=int(raw.get("min_lead_minutes", 0)),
        at_home=bool(raw.get("at_home", False)),
        hours=tuple(tuple(sorted(day, key=lambda w: w.start)) for day in hours),
        fee=_fee(raw.get("fee", ""), name),
    )
    if min(spec.slot_minutes, spec.slot_capacity, spec.daily_capacity, spec.book_ahead_days) <= 0:
        raise ValueError(f"{name}: slot_minutes, capacities and book_ahead_days must be positive")
    if not any(spec.slots_on(date(2026, 11, 23) + timedelta(days=d)) for d in range(7)):
        raise ValueError(f"{name}: no slot fits in its hours")
    return spec


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and check config/services.toml (with the service words of intents.toml beside it);
    raises ValueError on a bad configuration."""
    path = path or CONFIG_DIR / "services.toml"
    data = read_toml(path)
    reminders = data.get("reminders", {})
    named = _named_in_intents(path.parent)
    services = tuple(_spec(raw, named.get(str(raw.get("name")), ())) for raw in data.get("services", []))
    if len({s.name for s in services}) != len(services):
        raise ValueError("services.toml: duplicate service names")
    return Catalog(
        services=services,
        evening_before=_clock(str(reminders.get("evening_before", "19:00")), "reminders"),
        before_minutes=int(reminders.get("before_minutes", 60)),
    )


def catalog_of(extras: dict[str, Any]) -> Catalog:
    """The catalog cached in Services.extras (loaded on first use)."""
    cached = extras.get("service_catalog")
    if not isinstance(cached, Catalog):
        cached = load_catalog()
        extras["service_catalog"] = cached
    return cached
