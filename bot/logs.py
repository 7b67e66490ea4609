"""Structured (JSON-line) logging with a request id; never an openid or a phone number in clear.

Nets that keep residents out of the logs, whatever a module (or a library's exception text,
such as PostgreSQL's "Failing row contains (…, oXyz…, …)") writes: the openid of the message
being handled (`bind_subject`) is replaced by its hash everywhere in the line; so is any word
equal to an openid this process has had bound before (a background job's failure names
residents no request is about), and any word shaped as WeChat's openids are (28 characters:
`o` and 27 letters, digits, `_` or `-`, with an upper-case letter or a digit); `openid=` query
parameters (aiohttp's access log prints the request line) and fields named `openid` are hashed;
phone numbers are masked (bot.privacy.mask_phone).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.privacy import hash_openid, mask_phone

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_subject: contextvars.ContextVar[str] = contextvars.ContextVar("log_subject", default="")

_OPENID_PARAM = re.compile(r"(?i)(\bopenid=)([^&\s\"']+)")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
HASHED_FIELDS = frozenset({"openid", "resident", "from_user"})

MIN_REMEMBERED = 6  # shorter bound ids are not remembered: as words they would hash ordinary text
# A word as openids are written (letters, digits, _ and -), not part of a longer one.
_WORD = re.compile(rf"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{{{MIN_REMEMBERED},64}}(?![A-Za-z0-9_-])")
_WECHAT_OPENID = re.compile(r"o[A-Za-z0-9_-]{27}")
_SEEN: OrderedDict[str, None] = OrderedDict()  # openids bound in this process, most recent last
SEEN_MAX = 50_000


def bind_subject(openid: str) -> None:
    """Name the resident this request is about: their openid is hashed wherever a log line shows
    it, and remembered, so that a later line of a background job naming it is hashed too."""
    _subject.set(openid)
    if len(openid) >= MIN_REMEMBERED and not openid.startswith("u_"):
        _SEEN[openid] = None
        _SEEN.move_to_end(openid)
        if len(_SEEN) > SEEN_MAX:
            _SEEN.popitem(last=False)


def _is_openid(word: str) -> bool:
    """A word that is an openid this process has seen, or has WeChat's openid shape."""
    if word in _SEEN:
        return True
    return (
        len(word) == 28 and _WECHAT_OPENID.fullmatch(word) is not None
        and any(ch.isupper() or ch.isdigit() for ch in word)
    )


def _hash_word(match: re.Match[str]) -> str:
    word = match.group(0)
    return hash_openid(word) if _is_openid(word) else word


def scrub(text: str) -> str:
    """text with openids (the bound one, ones seen bound before, WeChat-shaped words, `openid=`
    parameters) hashed and phone numbers masked."""
    subject = _subject.get()
    if subject and subject in text:
        text = text.replace(subject, hash_openid(subject))
    text = _OPENID_PARAM.sub(lambda m: m.group(1) + _hashed(m.group(2)), text)
    text = _WORD.sub(_hash_word, text)
    return mask_phone(text)


def _hashed(value: str) -> str:
    return value if value.startswith("u_") else hash_openid(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (local, with its UTC offset), level, logger, request id,
    message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "t": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="seconds"),
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
    logging.getLogger("alembic").setLevel(logging.WARNING)  # 8 plugin lines per gunicorn worker's schema check


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
