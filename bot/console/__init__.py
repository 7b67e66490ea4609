"""The staff console: login, the escalation queue, tickets, the dashboard, users and the audit log.

aiohttp handlers with server-rendered Jinja2 templates (autoescape on, so everything residents
wrote is escaped), a little JavaScript, and a static stylesheet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

HERE = Path(__file__).resolve().parent


async def _startup(app: web.Application) -> AsyncIterator[None]:
    from bot.app import SERVICES
    from bot.console import auth
    from bot.console.common import SECRET

    app[SECRET] = auth.console_secret(app[SERVICES].settings)
    yield


def setup(app: web.Application) -> None:
    """Add the console's routes, templates, static files and its cookie secret."""
    from bot.console import actions, activities, admin, dashboard, export, login, outages, pushes, views
    from bot.console.common import JINJA

    aiohttp_jinja2.setup(
        app,
        app_key=JINJA,
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    app.cleanup_ctx.append(_startup)
    for table in (login.routes, views.routes, export.routes, actions.routes, dashboard.routes, admin.routes,
                  outages.routes, activities.routes, pushes.routes):
        app.router.add_routes(table)
    app.router.add_static("/console/static", HERE / "static", name="console_static")
    # last, so every page above matches first: any other /console address is the console's 404
    app.router.add_get("/console/{rest:.*}", views.no_page)
    app.router.add_get("/favicon.ico", favicon)


FAVICON_MAX_AGE_S = 86400


async def favicon(request: web.Request) -> web.StreamResponse:
    """The icon browsers ask every page's site for (/favicon.ico): the console's, not a 404 in
    every page's log (the simulator's chat page too). Pages link the SVG (base.html)."""
    return web.FileResponse(HERE / "static" / "favicon.ico", headers={
        "Content-Type": "image/x-icon", "Cache-Control": f"public, max-age={FAVICON_MAX_AGE_S}",
    })
