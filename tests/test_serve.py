"""What a serving process adds to the app (the startup heap frozen out of the collector's sight),
and what serve checks before it starts."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from bot.console import auth
from bot.serve import ServeError, banner, check_backends, freeze_startup_heap, worker_app
from bot.services import Services
from bot.settings import DEMO_CONSOLE_PASSWORD, load_settings


def test_a_serving_process_freezes_its_startup_heap_after_every_feature(tmp_path: Path) -> None:
    app = worker_app(load_settings(var_dir=str(tmp_path)))
    # Last: cleanup contexts (the classifier is warmed in one) start before it.
    assert app.on_startup[-1] is freeze_startup_heap


async def test_freezing_moves_what_is_alive_out_of_the_collectors_generations() -> None:
    kept = [[i] for i in range(1000)]  # alive for good, like jieba's dictionary
    try:
        await freeze_startup_heap(None)  # type: ignore[arg-type]
        assert gc.get_freeze_count() >= len(kept)
        collected = {id(o) for o in gc.get_objects()}  # the generations a collection walks
        assert all(gc.is_tracked(k) and id(k) not in collected for k in kept)
    finally:
        gc.unfreeze()  # tests create and drop apps: do not keep their objects forever


async def test_outside_the_demo_the_console_demo_password_is_warned_of_loudly(services: Services) -> None:
    """On PostgreSQL, serve's start says when the console's admin has, or would be created with,
    the demo password; the embedded demo prints its login instead."""
    settings = services.settings.model_copy(update={"public_base_url": "https://bot.example-community.cn"})
    warnings = await check_backends(settings)
    if settings.embedded:
        assert warnings == []
        return
    assert len(warnings) == 1 and "CB_CONSOLE_ADMIN_PASSWORD" in warnings[0]
    await auth.create_user(services, "admin", DEMO_CONSOLE_PASSWORD, "admin")
    warnings = await check_backends(settings)
    assert len(warnings) == 1 and "admin still has the demo password" in warnings[0]
    assert await check_backends(settings.model_copy(update={"console_admin_password": "x" * 16})) == []


def test_the_banner_names_the_database_and_redis_with_their_passwords_hidden(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It said "database configured": an operator could not tell which server the service used."""
    settings = load_settings(database_url="postgresql+asyncpg://bot:s3cret@db.internal:5433/community",
                             redis_url="redis://:r3dis@cache.internal:6380/2")
    banner(settings, 2)
    first = capsys.readouterr().err.splitlines()[0]
    assert first.endswith("(2 workers; database postgresql+asyncpg://bot:***@db.internal:5433/community; "
                          "state Redis redis://:***@cache.internal:6380/2)"), first
    assert "s3cret" not in first and "r3dis" not in first
    banner(load_settings(), 1)
    assert "database SQLite under" in capsys.readouterr().err


def test_the_banner_on_postgresql_names_the_password_setting_not_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings(database_url="postgresql+asyncpg://communitybot@127.0.0.1/communitybot")
    banner(settings, 1, ["WARNING: something loud"])
    err = capsys.readouterr().err
    assert "CB_CONSOLE_ADMIN_PASSWORD" in err and DEMO_CONSOLE_PASSWORD not in err and "WARNING: something loud" in err
    banner(load_settings(), 1)
    assert f"admin / {DEMO_CONSOLE_PASSWORD}" in capsys.readouterr().err


async def test_serve_refuses_a_database_behind_the_newest_schema(tmp_path: Path) -> None:
    from storage.migrate import upgrade_async

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade_async(url, "0003")
    with pytest.raises(ServeError, match="is at schema 0003.*communitybot db upgrade"):
        await check_backends(load_settings(database_url=url, var_dir=str(tmp_path)))


async def test_outside_the_simulator_an_unset_public_url_is_warned_of(services: Services) -> None:
    """WeCom cards and staff-group posts link to CB_PUBLIC_BASE_URL: unset, to where serve listens."""
    settings = services.settings.model_copy(update={"console_admin_password": "x" * 16})
    assert not settings.simulator_on and not settings.public_base_url
    assert await check_backends(settings) == [
        "WARNING: CB_PUBLIC_BASE_URL is not set: links in WeCom cards and staff-group posts point at "
        f"http://127.0.0.1:{settings.port}; set it to the address staff open, e.g. https://bot.example-community.cn"
    ]
    for update in ({"public_base_url": "https://bot.example-community.cn"}, {"simulator": True}):
        assert await check_backends(settings.model_copy(update=update)) == []


def test_one_process_says_serving_on_once_its_port_accepts(tmp_path: Path) -> None:
    """`communitybot serve` on the embedded default: "serving on" is said when the port takes
    connections, not before the app (jieba, the roster, the config) has started."""
    from storage.migrate import upgrade
    from tests.harness import ServerProcess, said_serving_then_accepts

    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    upgrade(url)
    server = ServerProcess({"CB_DATABASE_URL": url, "CB_VAR_DIR": str(tmp_path / "var"), "CB_REDIS_URL": "",
                            "CB_OUTBOX_SENDER": "0", "CB_SCHEDULER": "0"}, tmp_path, "serve")
    server.start()
    try:
        said_serving_then_accepts(server)
        assert server.log.read_text().count("serving on") == 1
    finally:
        server.stop()
