"""Console logins: bcrypt passwords, lockout per account, throttling per client address, opaque
signed session cookies, CSRF tokens, roles.

A session is a random token; the cookie carries it with an HMAC under the console secret, and the
store keeps the session under a hash of the token (a leaked store does not yield cookies). Each
session has its own CSRF token, required on every POST a cookie authenticates.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import bcrypt
from aiohttp import web
from sqlalchemy import func, select

from bot.services import Services
from bot.settings import Settings
from bot.staff_actions import audit
from storage.models import AuditLog, StaffUser

log = logging.getLogger(__name__)

ROLES = ("admin", "staff", "readonly")
RANK = {"readonly": 0, "staff": 1, "admin": 2}
COOKIE = "cb_console"
LOGIN_CSRF_COOKIE = "cb_console_login"
SESSION_TTL_S = 12 * 3600
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
IP_MAX_FAILURES = 20  # failed logins from one client address within IP_WINDOW before it is refused
IP_WINDOW = timedelta(minutes=15)
BCRYPT_ROUNDS = 12
MIN_PASSWORD = 8
USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_DUMMY_HASH = bcrypt.hashpw(b"not-a-password", bcrypt.gensalt(4))  # equalises timing for unknown names


@dataclass(frozen=True)
class ConsoleUser:
    """Who is logged in: username, display name, role, and the session's CSRF token."""

    user_id: int
    username: str
    display_name: str
    role: str
    csrf: str
    session_key: str

    def can(self, role: str) -> bool:
        """Whether this user's role reaches role (admin > staff > readonly)."""
        return RANK[self.role] >= RANK[role]


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login attempt: the user on success, else why not (and until when)."""

    user: StaffUser | None
    reason: str = ""  # "" | bad_credentials | locked
    locked_until: datetime | None = None


# --- passwords and users -------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """A bcrypt hash of password."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(BCRYPT_ROUNDS)).decode("ascii")


def check_password(password: str, hashed: str) -> bool:
    """Whether password matches the bcrypt hash."""
    try:
        return bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii"))
    except ValueError:  # a malformed hash in the table never logs anyone in
        log.warning("malformed password hash in staff_users")
        return False


def validate_new_user(username: str, password: str, role: str) -> list[str]:
    """Problems with a new user's fields (message keys under console.errors), empty when fine."""
    problems = []
    if not username or len(username) > 64 or not set(username) <= USERNAME_CHARS:
        problems.append("console.errors.username_invalid")
    if len(password) < MIN_PASSWORD or len(password) > 128:
        problems.append("console.errors.password_invalid")
    if role not in ROLES:
        problems.append("console.errors.role_invalid")
    return problems


async def create_user(
    svc: Services, username: str, password: str, role: str, *, display_name: str = "", actor: str = "system",
) -> StaffUser:
    """Add a console user (hash computed off the event loop), audited; ValueError when invalid or taken."""
    problems = validate_new_user(username, password, role)
    if problems:
        raise ValueError("; ".join(svc.texts.get(p, min=MIN_PASSWORD) for p in problems))
    hashed = await asyncio.to_thread(hash_password, password)
    async with svc.sessions() as session, session.begin():
        if await session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None:
            raise ValueError(svc.texts.get("console.errors.username_taken", username=username))
        now = svc.clock.now()
        user = StaffUser(
            username=username, display_name=display_name or username, password_hash=hashed, role=role,
            failed_logins=0, created_at=now,
        )
        session.add(user)
        audit(session, actor, "user.create", username, now, {"role": role})
    return user


async def seed_admin(svc: Services) -> bool:
    """Create the demo admin (settings.console_admin_password) when no user exists; True if created.
    Runs when the login page is first used in a process (not at start-up: hashing is slow)."""
    if svc.extras.get("console_seeded"):
        return False
    async with svc.store.lock("console-seed", timeout=30, wait=30):
        async with svc.sessions() as session:
            exists = bool(await session.scalar(select(func.count()).select_from(StaffUser)))
        if not exists:
            await create_user(svc, "admin", svc.settings.console_admin_password, "admin", display_name="管理员")
        svc.extras["console_seeded"] = True
    if exists:
        return False
    log.info("console: seeded the demo admin user 'admin' (password from console_admin_password)")
    return True


async def attempt_login(svc: Services, username: str, password: str, *, ip: str | None = None) -> LoginResult:
    """Check credentials with lockout (MAX_FAILURES failures lock for LOCKOUT), audited either way
    (with the client address ip when given)."""
    now = svc.clock.now()
    where = {} if ip is None else {"ip": ip}
    async with svc.sessions() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.username == username))
    if user is not None and user.locked_until is not None and user.locked_until > now:
        async with svc.sessions() as session, session.begin():
            audit(session, username, "console.login_locked", username, now, where or None)
        return LoginResult(None, "locked", user.locked_until)
    ok = await asyncio.to_thread(check_password, password, user.password_hash if user else _DUMMY_HASH.decode())
    async with svc.sessions() as session, session.begin():
        if user is None:
            tag = unknown_username(username)
            audit(session, tag, "console.login_failed", tag, now, {"known": False, **where})
            return LoginResult(None, "bad_credentials")
        row = await session.get(StaffUser, user.id, with_for_update=True)
        assert row is not None
        if ok:
            row.failed_logins, row.locked_until = 0, None
            audit(session, row.username, "console.login", row.username, now, {"role": row.role, **where})
            return LoginResult(row)
        row.failed_logins += 1  # a lock that ran out started the count again at 0
        row.locked_until = None
        detail: dict[str, Any] = {"known": True, "failures": row.failed_logins, **where}
        if row.failed_logins >= MAX_FAILURES:
            row.locked_until = now + LOCKOUT
            row.failed_logins = 0
            detail["locked_until"] = row.locked_until.isoformat()
        audit(session, row.username, "console.login_failed", row.username, now, detail)
        if row.locked_until is not None:
            return LoginResult(None, "locked", row.locked_until)
        return LoginResult(None, "bad_credentials")


# --- throttling failed logins per client address ---------------------------------------------------
#
# The lockout above protects one account; it cannot stop one client trying many usernames, or a
# few passwords on every account. So each client address also has a sliding window: a list of
# [epoch seconds, tag] in the state store, one entry per login attempt that has not succeeded,
# where tag is a short hash of the username tried (never the username itself: people type
# passwords into that field). Times come from svc.clock; the store's TTL only clears the key.


def client_bucket(remote: str | None) -> str:
    """The throttling key part for a client address: the IPv4 address, or the /64 network of an
    IPv6 one (one subscriber usually holds a whole /64)."""
    try:
        address = ip_address(remote or "")
    except ValueError:
        return "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ip_network((address.packed, 64), strict=False))
    return str(address)


def _username_tag(username: str) -> str:
    return hashlib.sha256(username.encode("utf-8")).hexdigest()[:12]


def unknown_username(username: str) -> str:
    """How the audit log names a username no account has: its tag (the one throttling keeps), never
    what was typed, which is often a password typed into the wrong field. The same text typed
    again gets the same tag, so repeated attempts still show as one name."""
    return f"unknown:{_username_tag(username)}"


def _throttle_key(svc: Services, bucket: str) -> str:
    return svc.store.key("console", "login_ip", bucket)


def _recent(entries: Any, since: float) -> list[list[Any]]:
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, list) and len(e) == 2 and float(e[0]) > since]


async def reserve_login_attempt(svc: Services, remote: str | None, username: str) -> datetime | None:
    """Count a login attempt against its client address before the password is checked.

    Returns None when the attempt may go ahead: it is then recorded as a failure in advance (so
    parallel requests cannot slip past the limit while their passwords are being hashed) and
    forgive_login_failures takes it back if it succeeds. Returns the time the address may try again
    when IP_MAX_FAILURES attempts in the last IP_WINDOW have not succeeded; the refusal is audited.
    """
    now = svc.clock.now()
    bucket = client_bucket(remote)
    key = _throttle_key(svc, bucket)
    async with svc.store.lock(f"console-login-ip:{bucket}", timeout=10, wait=10):
        entries = _recent(await svc.store.get(key), (now - IP_WINDOW).timestamp())
        if len(entries) < IP_MAX_FAILURES:
            entries.append([now.timestamp(), _username_tag(username)])
            await svc.store.set(key, entries, ttl=IP_WINDOW.total_seconds())
            return None
        retry_at = datetime.fromtimestamp(min(float(e[0]) for e in entries), timezone.utc) + IP_WINDOW
        await _audit_refusal(svc, bucket, remote, username, len(entries), retry_at)
    return retry_at


async def _audit_refusal(
    svc: Services, bucket: str, remote: str | None, username: str, failures: int, retry_at: datetime
) -> None:
    """Audit a throttled attempt: the first refusal of an address's episode writes the row, later
    ones until it may try again count in that row (`refused`, `last_at`). So an attacker hammering
    the form grows the audit table by one row per address and window, not one per request.
    The caller holds the address's lock."""
    now = svc.clock.now()
    key = svc.store.key("console", "login_throttled", bucket)
    episode = await svc.store.get(key)
    ttl = max(1.0, (retry_at - now).total_seconds())
    async with svc.sessions() as session, session.begin():
        known = await session.scalar(select(StaffUser.id).where(StaffUser.username == username)) is not None
        name = username[:64] if known else unknown_username(username)
        row = None
        if (isinstance(episode, dict) and isinstance(episode.get("audit_id"), int)
                and float(episode.get("until", 0)) > now.timestamp()):  # svc.clock, not the store's TTL
            row = await session.get(AuditLog, episode["audit_id"], with_for_update=True)
        if row is not None:
            detail = dict(row.detail or {})
            detail.update(refused=int(detail.get("refused", 1)) + 1, last_at=now.isoformat(),
                          failures=failures, retry_at=retry_at.isoformat())
            row.detail = detail
            return
        row = AuditLog(actor=name, action="console.login_throttled", target=name, created_at=now,
                       detail={"ip": remote or "unknown", "failures": failures, "retry_at": retry_at.isoformat(),
                               "refused": 1, "last_at": now.isoformat()})
        session.add(row)
        await session.flush()
        await svc.store.set(key, {"audit_id": row.id, "until": retry_at.timestamp()}, ttl=ttl)


async def forgive_login_failures(svc: Services, remote: str | None, username: str) -> None:
    """After a successful login, drop the address's recent failures for this username (the user's
    own typos and this attempt's reservation). Failures on other usernames stay, so one valid
    account cannot be used to reset a password spray; other addresses are never touched."""
    now = svc.clock.now()
    bucket = client_bucket(remote)
    key = _throttle_key(svc, bucket)
    tag = _username_tag(username)
    async with svc.store.lock(f"console-login-ip:{bucket}", timeout=10, wait=10):
        entries = [e for e in _recent(await svc.store.get(key), (now - IP_WINDOW).timestamp()) if e[1] != tag]
        if entries:
            await svc.store.set(key, entries, ttl=IP_WINDOW.total_seconds())
        else:
            await svc.store.delete(key)


# --- the cookie secret and sessions ----------------------------------------------------------------


def console_secret(settings: Settings) -> bytes:
    """settings.console_secret, or one generated once and kept under var/ (mode 0600)."""
    if settings.console_secret:
        return settings.console_secret.encode("utf-8")
    path: Path = settings.var_path / "console_secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def _sign(secret: bytes, token: str) -> str:
    return hmac.new(secret, token.encode("ascii"), hashlib.sha256).hexdigest()[:32]


def password_stamp(password_hash: str) -> str:
    """What a session remembers of its user's password: a new password (a reset) ends every
    session started before it."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


async def restamp_session(svc: Services, session_key: str, password_hash: str) -> None:
    """Keep one session alive across its own user's new password (an admin resetting their own)."""
    data = await svc.store.get(session_key)
    if isinstance(data, dict):
        data["stamp"] = password_stamp(password_hash)
        await svc.store.set(session_key, data, ttl=SESSION_TTL_S)


def _session_key(svc: Services, token: str) -> str:
    return svc.store.key("console", "session", hashlib.sha256(token.encode("ascii")).hexdigest())


async def start_session(svc: Services, secret: bytes, user: StaffUser) -> tuple[str, ConsoleUser]:
    """Store a new session for user; (cookie value, the ConsoleUser)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    data = {
        "user_id": user.id, "username": user.username, "display_name": user.display_name,
        "role": user.role, "csrf": csrf, "flash": [], "stamp": password_stamp(user.password_hash),
    }
    await svc.store.set(_session_key(svc, token), data, ttl=SESSION_TTL_S)
    return f"{token}.{_sign(secret, token)}", ConsoleUser(
        user.id, user.username, user.display_name, user.role, csrf, _session_key(svc, token)
    )


def _token_from_cookie(secret: bytes, value: str | None) -> str | None:
    if not value or "." not in value:
        return None
    token, mac = value.rsplit(".", 1)
    if not token or not hmac.compare_digest(mac, _sign(secret, token)):
        return None
    return token


async def load_session(svc: Services, secret: bytes, cookie: str | None) -> tuple[str, dict[str, Any]] | None:
    """(store key, session data) for a cookie value, or None when missing, forged or expired."""
    token = _token_from_cookie(secret, cookie)
    if token is None:
        return None
    key = _session_key(svc, token)
    data = await svc.store.get(key)
    return (key, data) if isinstance(data, dict) else None


async def current_user(svc: Services, secret: bytes, request: web.Request) -> ConsoleUser | None:
    """The logged-in user of a request (role re-read from the table, so changes apply at once);
    None once the user is deleted or their password was reset after the session began."""
    found = await load_session(svc, secret, request.cookies.get(COOKIE))
    if found is None:
        return None
    key, data = found
    async with svc.sessions() as session:
        user = await session.get(StaffUser, int(data["user_id"]))
    if user is None or data.get("stamp") != password_stamp(user.password_hash):
        await svc.store.delete(key)
        return None
    return ConsoleUser(user.id, user.username, user.display_name, user.role, str(data["csrf"]), key)


async def end_session(svc: Services, secret: bytes, cookie: str | None) -> None:
    """Forget the session behind a cookie."""
    found = await load_session(svc, secret, cookie)
    if found is not None:
        await svc.store.delete(found[0])


async def add_flash(svc: Services, user: ConsoleUser, text: str, level: str = "ok") -> None:
    """Keep a one-time message for the user's next page."""
    data = await svc.store.get(user.session_key)
    if isinstance(data, dict):
        data["flash"] = [*data.get("flash", []), {"text": text, "level": level}][-5:]
        await svc.store.set(user.session_key, data, ttl=SESSION_TTL_S)


async def take_flash(svc: Services, user: ConsoleUser) -> list[dict[str, str]]:
    """The user's pending one-time messages, cleared."""
    data = await svc.store.get(user.session_key)
    if not isinstance(data, dict) or not data.get("flash"):
        return []
    flash = list(data["flash"])
    data["flash"] = []
    await svc.store.set(user.session_key, data, ttl=SESSION_TTL_S)
    return flash


MAX_DRAFT_CHARS = 5000
_PER_TICKET_KEPT = 5  # tickets a session keeps something for, per slot


async def _keep(svc: Services, user: ConsoleUser, slot: str, number: str, value: Any) -> None:
    """Keep value for the user's next view of a ticket, in the session's slot (newest tickets)."""
    data = await svc.store.get(user.session_key)
    if isinstance(data, dict):
        kept = {k: v for k, v in (data.get(slot) or {}).items() if k != number}
        data[slot] = {**dict(list(kept.items())[1 - _PER_TICKET_KEPT:]), number: value}
        await svc.store.set(user.session_key, data, ttl=SESSION_TTL_S)


async def _take(svc: Services, user: ConsoleUser, slot: str, number: str) -> Any:
    """What the session's slot keeps for a ticket (None for nothing), cleared."""
    data = await svc.store.get(user.session_key)
    if not isinstance(data, dict) or number not in (data.get(slot) or {}):
        return None
    value = data[slot].pop(number)
    await svc.store.set(user.session_key, data, ttl=SESSION_TTL_S)
    return value


async def keep_draft(svc: Services, user: ConsoleUser, number: str, text: str) -> None:
    """Keep a refused answer's text for the user's next view of the ticket (one draft per ticket)."""
    await _keep(svc, user, "drafts", number, text[:MAX_DRAFT_CHARS])


async def take_draft(svc: Services, user: ConsoleUser, number: str) -> str:
    """The user's kept draft for a ticket ('' for none), cleared."""
    return str(await _take(svc, user, "drafts", number) or "")


async def mark_sent(svc: Services, user: ConsoleUser, number: str) -> None:
    """Note that the user's answer to a ticket went: their next view of it drops the draft the
    browser keeps for them (console.js)."""
    await _keep(svc, user, "sent", number, True)


async def take_sent(svc: Services, user: ConsoleUser, number: str) -> bool:
    """Whether the user's answer to a ticket went since their last view of it, cleared."""
    return bool(await _take(svc, user, "sent", number))


def csrf_ok(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a CSRF token."""
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


def set_session_cookie(response: web.StreamResponse, value: str, secure: bool) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, scoped to the whole site (console and /api)."""
    response.set_cookie(
        COOKIE, value, httponly=True, samesite="Strict", secure=secure, path="/", max_age=SESSION_TTL_S,
    )


# --- the ticket API's view of a console session ------------------------------------------------------

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


async def _refused_write(
    svc: Services, user: ConsoleUser, request: web.Request, action: str, detail: dict[str, Any] | None,
) -> None:
    """Audit a write refused to a console session on /api, as the console's own forms are."""
    async with svc.sessions() as session, session.begin():
        audit(session, user.username, action, request.path[:100], svc.clock.now(), detail)


async def api_session_user(svc: Services, secret: bytes | None, request: web.Request) -> str | None:
    """The console username behind an /api request's session cookie, or None. A write (POST …)
    needs the session's X-CSRF-Token header and at least the staff role, else 403."""
    if secret is None or COOKIE not in request.cookies:
        return None
    user = await current_user(svc, secret, request)
    if user is None:
        return None
    if request.method not in SAFE_METHODS:
        if not csrf_ok(user.csrf, request.headers.get("X-CSRF-Token")):
            await _refused_write(svc, user, request, "console.csrf_refused", None)
            raise web.HTTPForbidden(
                text='{"error": "missing or wrong X-CSRF-Token for a console session"}',
                content_type="application/json",
            )
        if not user.can("staff"):
            await _refused_write(svc, user, request, "console.role_refused",
                                 {"reason": "role", "role": user.role, "needed": "staff"})
            raise web.HTTPForbidden(
                text='{"error": "read-only console users cannot change tickets"}', content_type="application/json",
            )
    return user.username
