"""Structured (JSON-line) logging with a request id; never an openid or a phone number in clear.

Three nets keep residents out of the logs, whatever a module (or a library's exception text)
writes: the openid of the message being handled (`bind_subject`) is replaced by its hash
everywhere in the line; `openid=` query parameters (aiohttp's access log prints the request
line) and fields named `openid` are hashed; phone numbers are masked (bot.privacy.mask_phone).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.privacy import hash_openid, mask_phone

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_subject: contextvars.ContextVar[str] = contextvars.ContextVar("log_subject", default="")

_OPENID_PARAM = re.compile(r"(?i)(\bopenid=)([^&\s\"']+)")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HASHED_FIELDS = frozenset({"openid", "resident", "from_user"})


def bind_subject(openid: str) -> None:
    """Name the resident this request is about: their openid is hashed wherever a log line shows it."""
    _subject.set(openid)


def scrub(text: str) -> str:
    """text with the bound openid and `openid=` parameters hashed and phone numbers masked."""
    subject = _subject.get()
    if subject and subject in text:
        text = text.replace(subject, hash_openid(subject))
    text = _OPENID_PARAM.sub(lambda m: m.group(1) + _hashed(m.group(2)), text)
    return mask_phone(text)


def _hashed(value: str) -> str:
    return value if value.startswith("u_") else hash_openid(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "t": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "rid": request_id.get(),
            "msg": scrub(record.getMessage()),
        }
        for key, value in getattr(record, "fields", {}).items():
            if key in HASHED_FIELDS and isinstance(value, str) and value:
                value = _hashed(value)
            data[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            data["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    """Send JSON lines to stderr at level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("jieba").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per 5-second tick otherwise


def fields(**values: Any) -> dict[str, Any]:
    """The `extra=` argument carrying structured fields: log.info("x", extra=fields(a=1))."""
    return {"fields": values}


@web.middleware
async def request_id_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Give each request an id (the caller's X-Request-Id when sane), log it, and echo it back."""
    given = request.headers.get("X-Request-Id", "")
    rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
    request_id.set(rid)
    _subject.set("")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-Id"] = rid
        raise
    response.headers["X-Request-Id"] = rid
    return response


def setup(app: web.Application) -> None:
    """Add the request-id middleware."""
    app.middlewares.append(request_id_middleware)
