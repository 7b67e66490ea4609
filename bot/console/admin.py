"""Admin pages: console users (create, change role, reset password, remove) and the audit log."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import outages

from bot.console import auth, queries
from bot.console.auth import ConsoleUser
from bot.console.common import back, page, render, services
from bot.services import Services
from bot.staff_actions import audit
from storage.db import row_id
from storage.models import Activity, AuditLog, Outage, StaffUser

routes = web.RouteTableDef()
AUDIT_PAGE = 100
TICKET_NUMBER = re.compile(r"\d{8}-\d{4,}")  # an audit row's target that is a ticket: linked to its page
OUTAGE_TARGET = re.compile(r"outage:(\d{1,18})")  # an outage's audit target (bot.outages)


def _audit_codes(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """[console.audit_actions] as code → words (nested tables joined with dots)."""
    codes: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            codes.update(_audit_codes(value, f"{prefix}{key}."))
        elif key != "refused":
            codes[f"{prefix}{key}"] = str(value)
    return codes
USERS = "/console/users"


@routes.get("/console/audit")
@page("admin")
async def audit_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """The audit log, newest first, filterable by actor and action."""
    svc = services(request)
    actor = request.query.get("actor", "").strip()[:64]
    action = request.query.get("action", "").strip()[:48]
    page_no = queries.page_number(request.query)
    stmt = select(AuditLog)
    async with svc.sessions() as session:
        shown = await queries.names(session)
    if actor:  # a username (liu) or the name the page shows (刘敏)
        stmt = stmt.where(AuditLog.actor.in_([actor, *(who for who, name in shown.items() if name == actor)]))
    if action:  # a code (ticket.reply) or its words as the page shows them (答复居民)
        named = [code for code, words in _audit_codes(svc.texts.section("console.audit_actions")).items()
                 if words == action]
        stmt = stmt.where(AuditLog.action.in_([action, *named]))
    async with svc.sessions() as session:
        total = int(await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        rows = list((await session.execute(
            stmt.order_by(AuditLog.id.desc()).offset((page_no - 1) * AUDIT_PAGE).limit(AUDIT_PAGE)
        )).scalars())
        objects = await _objects(svc, session, rows)
    return await render(request, "audit.html", {
        "rows": rows, "total": total, "actor": actor, "action": action, "page": page_no, "names": shown,
        "tickets": {r.target for r in rows if TICKET_NUMBER.fullmatch(r.target or "")}, "objects": objects,
        "pages": max(1, -(-total // AUDIT_PAGE)),
    })


async def _objects(svc: Services, session: AsyncSession, rows: list[AuditLog]) -> dict[str, tuple[str, str]]:
    """The audit rows' outages and activities as a clerk knows them, with the page that lists them:
    target → (3、4号楼停水, /console/outages) for outage:N, (楼道清洁志愿行动, /console/activities) for
    an activity's key; the raw target stays on hover."""
    outage_ids = {int(m.group(1)): r.target for r in rows if (m := OUTAGE_TARGET.fullmatch(r.target or ""))}
    keys = {r.target for r in rows if r.action.startswith("activity.") and r.target}
    found: dict[str, tuple[str, str]] = {}
    if outage_ids:
        for o in await session.scalars(select(Outage).where(Outage.id.in_(outage_ids))):
            kind = svc.texts.get(f"outages.kinds.{o.kind}") if svc.texts.has(f"outages.kinds.{o.kind}") else o.kind
            found[outage_ids[o.id]] = (outages.scope(svc, o.buildings or (), o.excluded or ()) + kind, "/console/outages")
    if keys:
        for a in await session.scalars(select(Activity).where(Activity.key.in_(keys))):
            found[a.key] = (a.title, "/console/activities")
    return found


@routes.get(USERS)
@page("admin")
async def users_page(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Console users and the form to add one."""
    svc = services(request)
    async with svc.sessions() as session:
        rows = list((await session.execute(select(StaffUser).order_by(StaffUser.username))).scalars())
    return await render(request, "users.html", {
        "users": rows, "roles": auth.ROLES, "min_password": auth.MIN_PASSWORD, "now": svc.clock.now(),
    })


@routes.post(USERS)
@page("admin")
async def create(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Add a user."""
    svc = services(request)
    form = await request.post()
    username = str(form.get("username", "")).strip().lower()
    try:
        await auth.create_user(
            svc, username, str(form.get("password", "")), str(form.get("role", "")),
            display_name=str(form.get("display_name", "")).strip()[:64], actor=user.username,
        )
    except ValueError as exc:
        await back(request, user, USERS, str(exc), "error")
    await back(request, user, USERS, svc.texts.get("console.flash.user_created", username=username))


@routes.post("/console/users/{user_id:\\d+}")
@page("admin")
async def change(request: web.Request, user: ConsoleUser) -> web.StreamResponse:
    """Change a user's role, reset their password (and lockout), or remove them."""
    svc = services(request)
    t = svc.texts
    form = await request.post()
    op = str(form.get("op", ""))
    role = str(form.get("role", ""))
    password = str(form.get("password", ""))
    if op == "reset" and not auth.MIN_PASSWORD <= len(password) <= 128:
        await back(request, user, USERS, t.get("console.errors.password_invalid", min=auth.MIN_PASSWORD), "error")
    hashed = await asyncio.to_thread(auth.hash_password, password) if op == "reset" else ""
    async with svc.sessions() as session, session.begin():
        user_id = row_id(request.match_info["user_id"])
        target = None if user_id is None else await session.get(StaffUser, user_id, with_for_update=True)
        if target is None:
            raise web.HTTPNotFound(text=t.get("console.errors.no_user"))
        now = svc.clock.now()
        level = "ok"
        if target.id == user.user_id and op in ("role", "delete"):
            message, level = t.get("console.errors.not_yourself"), "error"
        elif op == "role" and role in auth.ROLES:
            audit(session, user.username, "user.role", target.username, now, {"from": target.role, "to": role})
            target.role = role
            message = t.get("console.flash.user_role", username=target.username, role=t.get(f"console.roles.{role}"))
        elif op == "reset":  # the new hash ends the user's sessions (auth.current_user)
            target.password_hash, target.failed_logins, target.locked_until = hashed, 0, None
            audit(session, user.username, "user.password_reset", target.username, now, {"sessions_ended": True})
            message = t.get("console.flash.user_reset", username=target.username)
        elif op == "delete":
            audit(session, user.username, "user.delete", target.username, now, {"role": target.role})
            await session.delete(target)
            message = t.get("console.flash.user_deleted", username=target.username)
        else:
            message, level = t.get("console.errors.bad_user_change"), "error"
    if op == "reset" and level == "ok" and target.id == user.user_id:  # ends the others, not this one
        await auth.restamp_session(svc, user.session_key, hashed)
    await back(request, user, USERS, message, level)
