"""What every console page shares: the login guard with roles and CSRF, rendering, redirects."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web
from yarl import URL

from bot.app import SERVICES
from bot.console import auth
from bot.console.auth import ConsoleUser
from bot.console.labels import Labels
from bot.services import Services
from bot.staff_actions import audit

SECRET = web.AppKey("console_secret", bytes)
JINJA = web.AppKey("console_jinja", jinja2.Environment)
USER = web.RequestKey("console_user", ConsoleUser)  # the logged-in user of a request

SECURITY_HEADERS = {
    # Only our own stylesheet and script; no inline script, no framing, forms post only to us.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Page = Callable[[web.Request, ConsoleUser], Awaitable[web.StreamResponse]]


def services(request: web.Request) -> Services:
    """The app's services."""
    return request.app[SERVICES]


def secret(request: web.Request) -> bytes:
    """The console's cookie secret."""
    return request.app[SECRET]


def safe_next(target: str | None) -> str:
    """A redirect target inside the console only (no open redirects)."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


async def render(
    request: web.Request, template: str, context: dict[str, Any], *, status: int = 200,
) -> web.Response:
    """Render a console template with the user, their CSRF token and pending flash messages."""
    user: ConsoleUser | None = request.get(USER)
    flash = await auth.take_flash(services(request), user) if user else []
    svc = services(request)
    base = {
        "user": user, "csrf": user.csrf if user else "", "flash": flash, "path": request.path, "form_id": form_id,
        "L": Labels(svc.texts, svc.tz, reveal=bool(user and user.can("staff"))),
    }
    response = aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status, app_key=JINJA)
    response.headers.update(SECURITY_HEADERS)
    return response


async def refuse(request: web.Request, status: int, message: str) -> web.Response:
    """An error page with a clear message (403 for roles and CSRF, 404 unknown things, 400 bad input)."""
    return await render(request, "error.html", {"status": status, "message": message}, status=status)


def _page_of(request: web.Request) -> str:
    """The page a console form was sent from: a ticket's page for its actions, else the referring
    console page, else the queue."""
    parts = request.path.split("/")
    if len(parts) == 5 and parts[1:3] == ["console", "tickets"]:
        return "/".join(parts[:4])
    try:
        referer = URL(request.headers.get("Referer", ""))
    except ValueError:
        return "/console"
    return safe_next(referer.path_qs if referer.host == request.url.host else None)


async def read_form(request: web.Request) -> Any | None:
    """A posted form's fields, or None when the body is not a form this console can read (bytes
    that are not UTF-8, a broken multipart body): then the page says so, never a server error."""
    try:
        return await request.post()
    except ValueError:  # UnicodeDecodeError included
        return None


def page(role: str = "readonly") -> Callable[[Page], Callable[[web.Request], Awaitable[web.StreamResponse]]]:
    """Guard a console handler: logged in (else to the login page), role at least `role`, and on
    POST a valid CSRF token in the form (else 403, audited)."""

    def wrap(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            svc = services(request)
            user = await auth.current_user(svc, secret(request), request)
            if user is None:
                if request.method == "GET":
                    raise web.HTTPSeeOther("/console/login?next=" + quote(request.path_qs, safe=""))
                # a form sent after the session ran out: say so, and come back to its page
                raise web.HTTPSeeOther("/console/login?expired=1&next=" + quote(_page_of(request), safe=""))
            request[USER] = user
            t = svc.texts
            if request.method == "POST":
                form = await read_form(request)
                if form is None:
                    return await refuse(request, 400, t.get("console.errors.bad_form"))
                if not auth.csrf_ok(user.csrf, form.get("csrf_token")):  # type: ignore[arg-type]
                    async with svc.sessions() as session, session.begin():
                        audit(session, user.username, "console.csrf_refused", request.path, svc.clock.now(), None)
                    return await refuse(request, 403, t.get("console.errors.csrf"))
            if not user.can(role):
                if request.method == "POST":  # an action tried without the role: refused, audited
                    async with svc.sessions() as session, session.begin():
                        audit(session, user.username, "console.role_refused", request.path[:100], svc.clock.now(),
                              {"reason": "role", "role": user.role, "needed": role})
                return await refuse(request, 403, t.get("console.errors.role", role=t.get(f"console.roles.{role}")))
            return await handler(request, user)

        return guarded

    return wrap


FORM_TTL_S = 86400  # how long a sent form's one-time id is remembered (a double click, a resent page)


def form_id() -> str:
    """A one-time id for a form the page offers (its hidden form_id): claim_form lets it act once."""
    return secrets.token_urlsafe(12)


async def claim_form(request: web.Request, user: ConsoleUser, form: Any) -> bool:
    """Whether this sending of a form is its first (the form's one-time id not claimed before): a
    double click or a page sent again must not answer a resident twice. Forms without an id (pages
    rendered before it existed) always act."""
    given = str(form.get("form_id", ""))[:64]
    if not given:
        return True
    store = services(request).store
    return await store.set_if_absent(store.key("console", "form", str(user.user_id), given), 1, ttl=FORM_TTL_S)


async def release_form(request: web.Request, user: ConsoleUser, form: Any) -> None:
    """Let a refused form be sent again (nothing was done with it)."""
    given = str(form.get("form_id", ""))[:64]
    if given:
        await services(request).store.delete(services(request).store.key("console", "form", str(user.user_id), given))


async def back(request: web.Request, user: ConsoleUser, to: str, text: str, level: str = "ok") -> NoReturn:
    """Post/redirect/get: remember a flash message and send the browser to `to`."""
    await auth.add_flash(services(request), user, text, level)
    raise web.HTTPSeeOther(to)


async def api_caller_can(request: web.Request, role: str) -> bool:
    """Whether the console user calling /api with their session cookie has at least role."""
    user = await auth.current_user(services(request), request.app.get(SECRET), request)
    return user is not None and user.can(role)


async def api_caller(request: web.Request) -> str | None:
    """The console user calling /api with their session cookie (CSRF-checked on writes), or None."""
    return await auth.api_session_user(services(request), request.app.get(SECRET), request)
