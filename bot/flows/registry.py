"""The flows this bot knows, by name, intent, menu key, menu digit and command.

Flow modules declare a class and decorate it with `@register`; `load()` imports the modules
named in FLOW_MODULES.
"""

from __future__ import annotations

import importlib

from bot.flows.base import Flow

FLOW_MODULES = (
    "bot.flows.complaint",
    "bot.flows.mediation",
    "bot.flows.elderly",
    "bot.flows.volunteer",
    "bot.flows.profile",
    "bot.flows.withdraw",
)

FLOWS: dict[str, Flow] = {}
_loaded = False


def register(cls: type[Flow]) -> type[Flow]:
    """Class decorator: make a flow available to the dialog; refuses a second flow of that name."""
    existing = FLOWS.get(cls.name)
    if existing is not None and type(existing).__qualname__ != cls.__qualname__:
        raise ValueError(f"a flow named {cls.name!r} is registered already ({type(existing).__name__})")
    FLOWS[cls.name] = cls()
    return cls


def load() -> dict[str, Flow]:
    """Import the flow modules once and return the registry."""
    global _loaded
    if not _loaded:
        for module in FLOW_MODULES:
            importlib.import_module(module)
        _loaded = True
    return FLOWS


def get(name: str) -> Flow | None:
    """The flow called name."""
    return load().get(name)


def for_intent(intent: str) -> Flow | None:
    """The flow a classifier intent starts."""
    return next((f for f in load().values() if intent in f.intents), None)


def for_menu_key(key: str) -> Flow | None:
    """The flow a menu CLICK key starts."""
    return next((f for f in load().values() if key in f.menu_keys), None)


def for_menu_number(digit: str) -> Flow | None:
    """The flow a digit of the service menu starts."""
    return next((f for f in load().values() if f.menu_number and f.menu_number == digit), None)


def for_command(command: str) -> Flow | None:
    """The flow a command (e.g. erase_info) starts."""
    return next((f for f in load().values() if command in f.commands), None)
