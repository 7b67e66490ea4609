"""The official account's custom menu: config/menu.toml, checked against WeChat's limits, turned
into the menu API's JSON and published (`communitybot menu publish`) with the shared access token.

The simulator's chat page draws the same menu from `load_menu()`; the dialog maps a CLICK key to
its service with `Menu.intents()`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot.config_files import read_toml
from bot.services import Services, open_services
from bot.settings import CONFIG_DIR, load_settings

MENU_FILE = CONFIG_DIR / "menu.toml"
MAX_BUTTONS = 3
MAX_SUB_BUTTONS = 5
TOP_NAME_BYTES = 16
SUB_NAME_BYTES = 60
KEY_BYTES = 128
URL_BYTES = 1024
BUTTON_TYPES = frozenset({"click", "view"})
INTENTS = frozenset({"complaint", "mediation", "elderly_service", "volunteer_signup", "ticket_status", "handoff"})
_LEAF_FIELDS = frozenset({"name", "type", "key", "url", "intent"})


class MenuApiError(Exception):
    """The menu API answered with an errcode other than 0."""


@dataclass(frozen=True)
class SubButton:
    """A button that does something: a CLICK (key, intent) or a VIEW (url)."""

    name: str
    type: str
    key: str = ""
    url: str = ""
    intent: str = ""

    def to_api(self) -> dict[str, str]:
        """The button as the menu API wants it."""
        if self.type == "click":
            return {"type": "click", "name": self.name, "key": self.key}
        return {"type": "view", "name": self.name, "url": self.url}


@dataclass(frozen=True)
class Button:
    """A top-level button: a group of sub-buttons, or (without them) a button itself (`leaf`)."""

    name: str
    sub_buttons: tuple[SubButton, ...] = ()
    leaf: SubButton | None = None

    def to_api(self) -> dict[str, Any]:
        """The top-level button as the menu API wants it."""
        if self.leaf is not None:
            return self.leaf.to_api()
        return {"name": self.name, "sub_button": [b.to_api() for b in self.sub_buttons]}

    def actions(self) -> tuple[SubButton, ...]:
        """The buttons a resident can press under this one (itself when it is a leaf)."""
        return (self.leaf,) if self.leaf is not None else self.sub_buttons


@dataclass(frozen=True)
class Menu:
    """The whole custom menu."""

    buttons: tuple[Button, ...]

    def clicks(self) -> tuple[SubButton, ...]:
        """Every CLICK button, in menu order."""
        return tuple(b for top in self.buttons for b in top.actions() if b.type == "click")

    def keys(self) -> dict[str, str]:
        """CLICK key → the service's name as the button shows it (MENU_COMPLAINT → 报事报修)."""
        return {b.key: b.name for b in self.clicks()}

    def intents(self) -> dict[str, str]:
        """CLICK key → the intent the bot starts for it (MENU_COMPLAINT → complaint)."""
        return {b.key: b.intent for b in self.clicks() if b.intent}

    def to_api(self) -> dict[str, Any]:
        """The body of POST /cgi-bin/menu/create."""
        return {"button": [b.to_api() for b in self.buttons]}


def _size(value: str) -> int:
    return len(value.encode("utf-8"))


def _string(raw: dict[str, Any], name: str, where: str) -> str:
    value = raw.get(name, "")
    if not isinstance(value, str):
        raise ValueError(f"{where}: {name} must be a string")
    return value.strip()


def _leaf(raw: dict[str, Any], where: str, name_limit: int) -> SubButton:
    unknown = set(raw) - _LEAF_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    name = _check_name(raw, where, name_limit)
    kind = _string(raw, "type", where)
    if kind not in BUTTON_TYPES:
        raise ValueError(f"{where}: type must be one of {', '.join(sorted(BUTTON_TYPES))}, not {kind!r}")
    key, url, intent = _string(raw, "key", where), _string(raw, "url", where), _string(raw, "intent", where)
    if kind == "click":
        if not key or _size(key) > KEY_BYTES:
            raise ValueError(f"{where}: a click button needs a key of 1–{KEY_BYTES} bytes")
        if url:
            raise ValueError(f"{where}: a click button has no url")
        if intent and intent not in INTENTS:
            raise ValueError(f"{where}: intent {intent!r} is not one of {', '.join(sorted(INTENTS))}")
    else:
        if not url.startswith(("http://", "https://")) or _size(url) > URL_BYTES:
            raise ValueError(f"{where}: a view button needs an http(s) url of at most {URL_BYTES} bytes")
        if key or intent:
            raise ValueError(f"{where}: a view button has no key or intent")
    return SubButton(name, kind, key, url, intent)


def _check_name(raw: dict[str, Any], where: str, limit: int) -> str:
    name = _string(raw, "name", where)
    if not name:
        raise ValueError(f"{where}: name missing")
    if _size(name) > limit:
        raise ValueError(f"{where}: name {name!r} is {_size(name)} bytes, WeChat allows {limit}")
    return name


def _button(raw: Any, where: str) -> Button:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a table")
    subs = raw.get("sub_button")
    if subs is None:
        leaf = _leaf(raw, where, TOP_NAME_BYTES)
        return Button(leaf.name, leaf=leaf)
    unknown = set(raw) - {"name", "sub_button"}
    if unknown:
        raise ValueError(f"{where}: a group has only name and sub_button, not {', '.join(sorted(unknown))}")
    name = _check_name(raw, where, TOP_NAME_BYTES)
    if not isinstance(subs, list) or not 1 <= len(subs) <= MAX_SUB_BUTTONS:
        raise ValueError(f"{where} ({name}): 1–{MAX_SUB_BUTTONS} sub-buttons, WeChat allows no more")
    items = []
    for j, sub in enumerate(subs, 1):
        if not isinstance(sub, dict):
            raise ValueError(f"{where} ({name}) sub-button {j}: must be a table")
        items.append(_leaf(sub, f"{where} ({name}) sub-button {j}", SUB_NAME_BYTES))
    return Button(name, tuple(items))


def parse_menu(data: dict[str, Any], source: str = "menu") -> Menu:
    """A Menu from TOML data; ValueError naming the button and the rule it breaks."""
    unknown = set(data) - {"button"}
    if unknown:
        raise ValueError(f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    raw = data.get("button")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BUTTONS:
        raise ValueError(f"{source}: 1–{MAX_BUTTONS} [[button]] tables, WeChat allows no more")
    menu = Menu(tuple(_button(b, f"{source}: button {i}") for i, b in enumerate(raw, 1)))
    seen: set[str] = set()
    for click in menu.clicks():
        if click.key in seen:
            raise ValueError(f"{source}: key {click.key} is used twice")
        seen.add(click.key)
    return menu


def load_menu(path: Path | str | None = None) -> Menu:
    """The menu in path (config/menu.toml by default), validated against WeChat's limits."""
    file = Path(path) if path is not None else MENU_FILE
    try:
        data = read_toml(file)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{file}: not valid TOML ({exc})") from exc
    return parse_menu(data, str(file))


async def publish(svc: Services, http: aiohttp.ClientSession, menu: Menu) -> dict[str, Any]:
    """POST the menu to {wechat_api}/cgi-bin/menu/create with the shared token; the API's answer."""
    from bot.channels.push import describe, errcode, post_with_token

    answer = await post_with_token(svc, http, "wechat", "/cgi-bin/menu/create", menu.to_api())
    if errcode(answer) != 0:
        raise MenuApiError(describe(answer))
    return answer


async def _publish_configured(menu: Menu) -> dict[str, Any]:
    svc = open_services(load_settings())
    try:
        async with aiohttp.ClientSession() as http:
            return await publish(svc, http, menu)
    finally:
        await svc.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`menu show|publish [--file FILE]`."""
    sub = parser.add_subparsers(dest="menu_command", required=True)
    for name, text in (("show", "print the menu API's JSON"), ("publish", "push the menu to the official account")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--file", help="menu TOML (default config/menu.toml)")


def run(args: argparse.Namespace) -> int:
    """The `menu` command: 0 on success, 1 when the API refused, 2 when the menu file is wrong."""
    from bot.channels.push import Fatal, Retry

    try:
        menu = load_menu(args.file)
    except OSError as exc:
        print(f"communitybot menu: cannot read {exc.filename or args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"communitybot menu: {exc}", file=sys.stderr)
        return 2
    if args.menu_command == "show":
        print(json.dumps(menu.to_api(), ensure_ascii=False, indent=2))
        return 0
    try:
        answer = asyncio.run(_publish_configured(menu))
    except (MenuApiError, Retry, Fatal) as exc:
        print(f"communitybot menu publish: the menu API refused: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(answer, ensure_ascii=False))
    return 0
