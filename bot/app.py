"""create_app(settings): routes, typed app keys, and every resource opened and closed in
cleanup contexts (database, state store, HTTP client, outbox sender, scheduler)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from bot.clock import Clock
from bot.services import Services, open_services
from bot.settings import Settings, load_settings
from bot.texts import Texts

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)
HTTP = web.AppKey("http", aiohttp.ClientSession)

# Features register themselves here: each is called with the app before it starts, and adds its
# routes, cleanup contexts and background tasks. Order matters only for route precedence.
FeatureSetup = Callable[[web.Application], None]


def _features() -> list[FeatureSetup]:
    from bot import api, api_actions, console, dialog, health, roster, schedule
    from bot.channels import push, wechat, wecom
    from bot.sim import api as sim_api
    from bot.sim import page as sim_page

    return [
        health.setup, roster.setup, dialog.setup, wechat.setup, wecom.setup, push.setup, schedule.setup,
        api.setup, api_actions.setup, console.setup, sim_api.setup, sim_page.setup,
    ]


def _warm_classifier() -> None:
    """Load jieba's dictionary and the rules before the first message, not inside its reply."""
    from bot.intents.classifier import get_classifier

    get_classifier().classify("你好")


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    texts: Texts | None = None,
    services: Services | None = None,
    features: list[FeatureSetup] | None = None,
) -> web.Application:
    """The aiohttp application for settings (or the environment's), with all features."""
    settings = settings or load_settings()
    app = web.Application(client_max_size=1024**2)

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        own = services is None
        svc = services or open_services(settings, clock=clock, texts=texts)
        app[SERVICES] = svc
        await asyncio.to_thread(_warm_classifier)
        yield
        if own:
            await svc.close()

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=10, connect=3)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            app[HTTP] = session
            yield

    app.cleanup_ctx.append(services_ctx)
    app.cleanup_ctx.append(http_ctx)
    for setup in features if features is not None else _features():
        setup(app)
    return app


async def gunicorn_app() -> web.Application:
    """The app for gunicorn's aiohttp worker: `gunicorn bot.app:gunicorn_app -k aiohttp.GunicornWebWorker`."""
    from bot import logs
    from bot.serve import worker_app

    settings = load_settings()
    logs.configure(settings.log_level)
    return worker_app(settings)
