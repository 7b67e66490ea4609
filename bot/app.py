"""create_app(settings): routes, typed app keys, the client-address middleware, and every resource
opened and closed in cleanup contexts (database, state store, HTTP client, outbox sender, scheduler)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import NoReturn
from ipaddress import ip_address, ip_network

import aiohttp
from aiohttp import hdrs, web
from aiohttp_remotes import XForwardedFiltered

from bot.clock import Clock
from bot.services import Services, open_services
from bot.settings import Settings, load_settings
from bot.texts import Texts
from storage import checkpoint
from storage.state import SqliteStateStore

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", Services)
HTTP = web.AppKey("http", aiohttp.ClientSession)

# Features register themselves here: each is called with the app before it starts, and adds its
# routes, cleanup contexts and background tasks. Order matters only for route precedence.
FeatureSetup = Callable[[web.Application], None]


def _features() -> list[FeatureSetup]:
    from bot import api, api_actions, console, dialog, health, outage_api, roster, schedule
    from bot.channels import push, wechat, wecom
    from bot.sim import api as sim_api
    from bot.sim import page as sim_page

    return [
        health.setup, roster.setup, dialog.setup, wechat.setup, wecom.setup, push.setup, schedule.setup,
        api.setup, api_actions.setup, outage_api.setup, console.setup, sim_api.setup, sim_page.setup,
    ]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


def client_address_middleware(trusted_proxies: list[str]) -> Middleware:
    """A middleware that sets request.remote to the real client behind trusted proxies.

    Only a request whose socket peer is one of trusted_proxies has its X-Forwarded-For read, by
    aiohttp_remotes' XForwardedFiltered: the right-most address that is not a trusted proxy is the
    client (addresses a client wrote to the left of it are ignored), and X-Forwarded-Proto sets the
    scheme — also when a trusted proxy sends it without X-Forwarded-For, so a console served over
    https behind it sets Secure cookies. A request from any other peer, or without the headers (a
    local health check), keeps its socket peer and scheme. A malformed header from a trusted proxy
    is refused with 400 by the library.
    """
    networks = [ip_network(entry, strict=False) for entry in trusted_proxies]
    forwarded = XForwardedFiltered(set(trusted_proxies))

    def from_trusted_peer(request: web.Request) -> bool:
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        if not isinstance(peer, (tuple, list)) or not peer:
            return False  # a Unix socket or a closed transport: nothing to trust
        try:
            address = ip_address(peer[0])
        except ValueError:
            return False
        return any(address in network for network in networks)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not from_trusted_peer(request):
            return await handler(request)
        if hdrs.X_FORWARDED_FOR not in request.headers:
            proto = request.headers.get(hdrs.X_FORWARDED_PROTO, "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                request = request.clone(scheme=proto)
            return await handler(request)
        return await forwarded.middleware(request, handler)

    return middleware


def _warm_classifier() -> None:
    """Load jieba's dictionary and the rules before the first message, not inside its reply."""
    from bot.intents.classifier import get_classifier

    get_classifier().classify("你好")


def sqlite_files(svc: Services) -> list[str]:
    """The embedded SQLite files this process writes (the database, the state store's file),
    whose WAL checkpoints storage.checkpoint takes off the event loop."""
    files = []
    database = svc.engine.url.database if svc.engine.dialect.name == "sqlite" else None
    if database and database != ":memory:":
        files.append(database)
    if isinstance(svc.store, SqliteStateStore):
        files.append(svc.store.path)
    return files


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
    if settings.trusted_proxies:  # first, so every later middleware and handler sees the client
        app.middlewares.append(client_address_middleware(settings.trusted_proxies))

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        own = services is None
        svc = services or open_services(settings, clock=clock, texts=texts)
        app[SERVICES] = svc
        await asyncio.to_thread(_warm_classifier)
        files = sqlite_files(svc)
        checkpoints = asyncio.create_task(checkpoint.run(files, checkpoint.CHECKPOINT_EVERY_S)) if files else None
        yield
        if checkpoints is not None:
            checkpoints.cancel()
            await asyncio.gather(checkpoints, return_exceptions=True)
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
    """The app for gunicorn's aiohttp worker: `gunicorn bot.app:gunicorn_app -k aiohttp.GunicornWebWorker`.

    Each worker runs the checks `communitybot serve` runs before it starts (settings, database
    migrated, Redis, roster; without Redis, one process only). What fails is logged in one line
    and the worker exits with gunicorn's boot-error code, so the arbiter stops instead of
    restarting the worker forever."""
    from bot import logs
    from bot.serve import ServeError, check_backends, hold_single_process_lock, worker_app
    from bot.settings import SettingsError

    try:
        settings = load_settings()
    except SettingsError as exc:
        _refuse_boot("settings refused: " + "; ".join(exc.problems))
    logs.configure(settings.log_level)
    try:
        warnings = await check_backends(settings)
        hold_single_process_lock(settings)
    except ServeError as exc:
        _refuse_boot(str(exc))
    for warning in warnings:
        log.warning("%s", warning)
    return worker_app(settings)


GUNICORN_BOOT_ERROR = 3  # gunicorn's WORKER_BOOT_ERROR: the arbiter halts rather than respawning


def _refuse_boot(reason: str) -> NoReturn:
    print(f"community-bot cannot start: {reason}", file=sys.stderr, flush=True)
    raise SystemExit(GUNICORN_BOOT_ERROR)
