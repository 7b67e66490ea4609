"""The custom menu: config/menu.toml within WeChat's limits, and `communitybot menu publish` against a
stand-in of the official-account API started by the test (token fetch, JSON sent, errcodes)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.menu import Menu, MenuApiError, load_menu, parse_menu, publish
from bot.services import Services

SERVICES = {
    "MENU_COMPLAINT": ("报事报修", "complaint"),
    "MENU_MEDIATION": ("矛盾调解", "mediation"),
    "MENU_ELDERLY": ("养老服务", "elderly_service"),
    "MENU_VOLUNTEER": ("志愿报名", "volunteer_signup"),
    "MENU_MY_TICKETS": ("我的工单", "ticket_status"),
    "MENU_HANDOFF": ("人工服务", "handoff"),
}


def test_configured_menu_fits_wechat_and_names_every_service() -> None:
    menu = load_menu()
    assert isinstance(menu, Menu)
    assert [b.name for b in menu.buttons] == ["办事", "服务", "我的"]
    assert all(1 <= len(b.sub_buttons) <= 5 for b in menu.buttons)
    assert menu.keys() == {k: name for k, (name, _) in SERVICES.items()}
    assert menu.intents() == {k: intent for k, (_, intent) in SERVICES.items()}
    api = menu.to_api()
    assert api["button"][0] == {
        "name": "办事",
        "sub_button": [
            {"type": "click", "name": "报事报修", "key": "MENU_COMPLAINT"},
            {"type": "click", "name": "矛盾调解", "key": "MENU_MEDIATION"},
        ],
    }


def _sub(name: str = "报事报修", **kw: Any) -> dict[str, Any]:
    return {"name": name, "type": "click", "key": kw.pop("key", f"K_{name}"), **kw}


BAD_MENUS: dict[str, tuple[dict[str, Any], str]] = {
    "no_buttons": ({"button": []}, "1–3 [[button]]"),
    "four_buttons": ({"button": [_sub(f"按钮{i}", key=f"K{i}") for i in range(4)]}, "1–3 [[button]]"),
    "six_sub_buttons": (
        {"button": [{"name": "办事", "sub_button": [_sub(f"事{i}", key=f"K{i}") for i in range(6)]}]}, "1–5 sub-buttons"),
    "empty_group": ({"button": [{"name": "办事", "sub_button": []}]}, "1–5 sub-buttons"),
    "top_name_too_long": ({"button": [{"name": "社区服务中心", "sub_button": [_sub()]}]}, "WeChat allows 16"),
    "sub_name_too_long": ({"button": [{"name": "办事", "sub_button": [_sub("报" * 21)]}]}, "WeChat allows 60"),
    "no_name": ({"button": [{"name": " ", "sub_button": [_sub()]}]}, "name missing"),
    "click_without_key": ({"button": [{"name": "办事", "type": "click"}]}, "needs a key"),
    "key_too_long": ({"button": [_sub(key="K" * 129)]}, "needs a key"),
    "duplicate_key": ({"button": [_sub("甲", key="SAME"), _sub("乙", key="SAME")]}, "used twice"),
    "view_without_url": ({"button": [{"name": "通知", "type": "view"}]}, "http(s) url"),
    "view_with_key": ({"button": [{"name": "通知", "type": "view", "url": "https://a.cn", "key": "K"}]}, "no key"),
    "unknown_type": ({"button": [{"name": "扫码", "type": "scancode_push", "key": "K"}]}, "type must be one of"),
    "unknown_field": ({"button": [_sub(colour="red")]}, "unknown field(s) colour"),
    "group_with_type": ({"button": [{"name": "办事", "type": "click", "sub_button": [_sub()]}]}, "only name and sub_button"),
    "bad_intent": ({"button": [_sub(intent="shopping")]}, "intent 'shopping'"),
    "name_not_string": ({"button": [{"name": 7, "sub_button": [_sub()]}]}, "name must be a string"),
    "stray_top_level_key": ({"button": [_sub()], "colour": "red"}, "unknown top-level key(s) colour"),
}


@pytest.mark.parametrize("case", sorted(BAD_MENUS))
def test_menu_breaking_wechat_rules_is_refused_clearly(case: str) -> None:
    data, message = BAD_MENUS[case]
    with pytest.raises(ValueError) as err:
        parse_menu(data, "menu.toml")
    assert message in str(err.value), str(err.value)


def test_not_toml_is_a_value_error(tmp_path: Path) -> None:
    bad = tmp_path / "menu.toml"
    bad.write_text("[[button]\nname = ", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_menu(bad)


# --- the menu API stand-in ---------------------------------------------------------------------


@dataclass
class StandIn:
    """A tiny official-account API: token and menu/create, recording what it receives."""

    server: TestServer
    token_answers: list[dict[str, Any]] = field(default_factory=list)
    menu_answers: list[dict[str, Any]] = field(default_factory=list)
    token_queries: list[dict[str, str]] = field(default_factory=list)
    menus: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Base URL, as CB_WECHAT_API_BASE."""
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    holder: dict[str, StandIn] = {}

    async def token(request: web.Request) -> web.Response:
        s = holder["s"]
        s.token_queries.append(dict(request.query))
        answer = s.token_answers.pop(0) if s.token_answers else {"access_token": f"TOKEN-{len(s.token_queries)}", "expires_in": 7200}
        return web.json_response(answer)

    async def menu_create(request: web.Request) -> web.Response:
        s = holder["s"]
        s.menus.append((dict(request.query), await request.read()))
        answer = s.menu_answers.pop(0) if s.menu_answers else {"errcode": 0, "errmsg": "ok"}
        return web.json_response(answer)

    app = web.Application()
    app.router.add_get("/cgi-bin/token", token)
    app.router.add_post("/cgi-bin/menu/create", menu_create)
    server = TestServer(app)
    await server.start_server()
    holder["s"] = StandIn(server)
    yield holder["s"]
    await server.close()


@pytest.fixture
def settings_overrides(standin: StandIn) -> dict[str, Any]:
    """Point the services' official-account API at the stand-in."""
    return {"wechat_api_base": standin.url}


async def test_publish_fetches_a_token_and_posts_the_menu(services: Services, standin: StandIn) -> None:
    menu = load_menu()
    async with aiohttp.ClientSession() as http:
        answer = await publish(services, http, menu)
        again = await publish(services, http, menu)
    assert answer == again == {"errcode": 0, "errmsg": "ok"}
    s = services.settings
    assert standin.token_queries == [
        {"grant_type": "client_credential", "appid": s.wechat_appid, "secret": s.wechat_secret}
    ]  # once: the second publish used the shared token
    assert [q for q, _ in standin.menus] == [{"access_token": "TOKEN-1"}] * 2
    raw = standin.menus[0][1]
    assert json.loads(raw) == menu.to_api()
    assert "报事报修".encode() in raw  # UTF-8 as is, not \u escapes


async def test_publish_errcode_raises_with_the_message(services: Services, standin: StandIn) -> None:
    standin.menu_answers.append({"errcode": 40017, "errmsg": "invalid button type"})
    async with aiohttp.ClientSession() as http:
        with pytest.raises(MenuApiError, match="errcode 40017: invalid button type"):
            await publish(services, http, load_menu())


async def test_publish_refreshes_an_expired_token(services: Services, standin: StandIn) -> None:
    standin.menu_answers.append({"errcode": 42001, "errmsg": "access_token expired"})
    async with aiohttp.ClientSession() as http:
        assert (await publish(services, http, load_menu()))["errcode"] == 0
    assert [q["access_token"] for q, _ in standin.menus] == ["TOKEN-1", "TOKEN-2"]


# --- the command ------------------------------------------------------------------------------


async def _cli(standin: StandIn, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """Run `communitybot menu ...` as a process while this loop keeps serving the stand-in."""
    env = dict(
        os.environ,
        CB_WECHAT_API_BASE=standin.url,
        CB_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        CB_VAR_DIR=str(tmp_path / "var"),
        CB_REDIS_URL="",
        CB_SIMULATOR="false",
    )
    exe = str(Path(sys.executable).parent / "communitybot")
    proc = await asyncio.create_subprocess_exec(
        exe, "menu", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return int(proc.returncode or 0), out.decode(), err.decode()


async def test_cli_publish_prints_the_answer(standin: StandIn, tmp_path: Path) -> None:
    code, out, err = await _cli(standin, tmp_path, "publish")
    assert code == 0, err
    assert json.loads(out) == {"errcode": 0, "errmsg": "ok"}
    assert json.loads(standin.menus[0][1]) == load_menu().to_api()
    assert standin.token_queries[0]["grant_type"] == "client_credential"


async def test_cli_errcode_exits_non_zero_with_the_message(standin: StandIn, tmp_path: Path) -> None:
    standin.menu_answers.append({"errcode": 65303, "errmsg": "there is no selfmenu"})
    code, out, err = await _cli(standin, tmp_path, "publish")
    assert code == 1 and out == ""
    assert "errcode 65303: there is no selfmenu" in err


async def test_cli_token_refused_exits_non_zero(standin: StandIn, tmp_path: Path) -> None:
    standin.token_answers.append({"errcode": 40125, "errmsg": "invalid appsecret"})
    code, _, err = await _cli(standin, tmp_path, "publish")
    assert code == 1 and "invalid appsecret" in err
    assert standin.menus == []


async def test_cli_bad_menu_file_exits_2_before_any_call(standin: StandIn, tmp_path: Path) -> None:
    bad = tmp_path / "menu.toml"
    bad.write_text('[[button]]\nname = "社区服务中心"\ntype = "click"\nkey = "K"\n', encoding="utf-8")
    code, _, err = await _cli(standin, tmp_path, "publish", "--file", str(bad))
    assert code == 2 and "WeChat allows 16" in err
    assert standin.token_queries == [] and standin.menus == []


async def test_cli_show_prints_the_api_json(standin: StandIn, tmp_path: Path) -> None:
    code, out, _ = await _cli(standin, tmp_path, "show")
    assert code == 0 and json.loads(out) == load_menu().to_api()
    assert standin.token_queries == []


# --- the menu and the dialog agree ---------------------------------------------------------------


async def test_every_menu_button_starts_its_service(client: Any, services: Services) -> None:
    """A CLICK on each configured key gets its service's answer, not the reply to a key nobody knows."""
    from tests.conftest import WeChat

    wx = WeChat(client, services.settings, encrypt=True)
    unknown = await wx.event("oMenuNobody00000000000000001", "CLICK", "MENU_NOBODY_KNOWS")
    assert unknown
    answers = {key: await wx.event(f"oMenu{key:>23}".replace(" ", "0"), "CLICK", key) for key in load_menu().keys()}
    not_started = sorted(key for key, answer in answers.items() if not answer or answer == unknown)
    assert not_started == [], f"menu keys the dialog does not start: {not_started}"
