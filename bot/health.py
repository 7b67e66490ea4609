"""Observability routes: /healthz (JSON) and /metrics (Prometheus), plus the request-id middleware."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from bot import logs, metrics


async def healthz(request: web.Request) -> web.Response:
    """200 with JSON while the database (and Redis when configured) answer; 503 otherwise."""
    from bot.app import SERVICES

    svc = request.app[SERVICES]
    checks: dict[str, str] = {}
    ok = True
    try:
        async with svc.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not healthy", reported, not raised
        checks["database"] = f"error: {type(exc).__name__}"
        ok = False
    try:
        await svc.store.get(svc.store.key("health"))
        checks["state"] = "ok"
    except Exception as exc:
        checks["state"] = f"error: {type(exc).__name__}"
        ok = False
    return web.json_response({"ok": ok, **checks}, status=200 if ok else 503)


async def metrics_view(_request: web.Request) -> web.Response:
    """Prometheus text exposition of the service's metrics (every worker's, with several)."""
    body = generate_latest(metrics.exposition_registry())
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(app: web.Application) -> None:
    """Add the health and metrics routes and the request-id middleware (bot.logs)."""
    logs.setup(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
