"""The login and logout pages."""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from bot.clock import local
from bot.console import auth
from bot.console.common import USER, page, read_form, render, safe_next, secret, services
from bot.console.auth import ConsoleUser
from bot.staff_actions import audit

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

# What the login page tells staff about the lockout and the per-address throttle.
_LIMITS = {
    "account_failures": auth.MAX_FAILURES, "account_minutes": int(auth.LOCKOUT.total_seconds() // 60),
    "address_failures": auth.IP_MAX_FAILURES, "address_minutes": int(auth.IP_WINDOW.total_seconds() // 60),
}


def _https(request: web.Request) -> bool:
    """Whether cookies must be Secure: served over TLS here, behind a trusted proxy (CB_TRUSTED_PROXIES)
    saying X-Forwarded-Proto: https (bot.app's client-address middleware sets the request's scheme
    from it), or behind an https CB_PUBLIC_BASE_URL."""
    return request.secure or services(request).settings.public_base_url.startswith("https://")


async def _login_form(request: web.Request, *, error: str = "", username: str = "", status: int = 200) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = await render(
        request, "login.html",
        {"error": error, "username": username, "login_csrf": token, "next": safe_next(request.query.get("next")),
         "limits": _LIMITS},
        status=status,
    )
    response.set_cookie(
        auth.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/console/login",
        secure=_https(request), max_age=3600,
    )
    return response


@routes.get("/console/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    """The login form (a logged-in user goes straight to the queue)."""
    svc = services(request)
    if await auth.current_user(svc, secret(request), request) is not None:
        raise web.HTTPSeeOther("/console")
    await auth.seed_admin(svc)
    expired = services(request).texts.get("console.errors.expired") if request.query.get("expired") else ""
    return await _login_form(request, error=expired)


_proxy_warned = False


def _warn_untrusted_proxy(request: web.Request) -> None:
    """Warn once per process when logins arrive through a proxy the settings do not trust: every
    client then shares the proxy's address, and so its failed-login count."""
    global _proxy_warned
    if _proxy_warned or services(request).settings.trusted_proxies or "X-Forwarded-For" not in request.headers:
        return
    _proxy_warned = True
    log.warning(
        "console login through a proxy (X-Forwarded-For from %s) but CB_TRUSTED_PROXIES is empty: "
        "all clients share one address for login throttling", request.remote,
    )


@routes.post("/console/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    """Check the form's CSRF token, the client address's throttle and the credentials; start a
    session or say why not."""
    svc = services(request)
    t = svc.texts
    form = await read_form(request)
    if form is None:
        return await _login_form(request, error=t.get("console.errors.bad_form"), username="", status=400)
    username = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))
    if not auth.csrf_ok(request.cookies.get(auth.LOGIN_CSRF_COOKIE, ""), form.get("csrf_token")):  # type: ignore[arg-type]
        return await _login_form(request, error=t.get("console.errors.login_csrf"), username=username, status=403)
    if not username or not password:
        return await _login_form(request, error=t.get("console.errors.login_missing"), username=username, status=400)
    _warn_untrusted_proxy(request)
    retry_at = await auth.reserve_login_attempt(svc, request.remote, username)
    if retry_at is not None:  # too many failures from this address: the password is not even checked
        error = t.get("console.errors.throttled", until=local(retry_at, svc.tz).strftime("%H:%M"))
        return await _login_form(request, error=error, username=username, status=429)
    await auth.seed_admin(svc)
    result = await auth.attempt_login(svc, username, password[:256], ip=request.remote)
    if result.user is None:
        if result.reason == "locked" and result.locked_until is not None:
            until = local(result.locked_until, svc.tz).strftime("%H:%M")
            error = t.get("console.errors.locked", until=until, failures=auth.MAX_FAILURES)
            return await _login_form(request, error=error, username=username, status=429)
        return await _login_form(request, error=t.get("console.errors.bad_login"), username=username, status=401)
    await auth.forgive_login_failures(svc, request.remote, username)
    cookie, _user = await auth.start_session(svc, secret(request), result.user)
    response = web.HTTPSeeOther(safe_next(str(form.get("next", ""))))
    auth.set_session_cookie(response, cookie, secure=_https(request))
    response.del_cookie(auth.LOGIN_CSRF_COOKIE, path="/console/login")
    raise response


@routes.post("/console/logout")
@page("readonly")
async def logout(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """End the session (CSRF-checked like every POST), audited."""
    svc = services(request)
    await auth.end_session(svc, secret(request), request.cookies.get(auth.COOKIE))
    async with svc.sessions() as session, session.begin():
        audit(session, user.username, "console.logout", user.username, svc.clock.now(), None)
    request.pop(USER, None)
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(auth.COOKIE, path="/")
    raise response
