"""Structured (JSON-line) logging with a request id; never an openid or a phone number in clear."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from typing import Any

from bot.privacy import mask_phone

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "t": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "rid": request_id.get(),
            "msg": mask_phone(record.getMessage()),
        }
        for key, value in getattr(record, "fields", {}).items():
            data[key] = mask_phone(value) if isinstance(value, str) else value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    """Send JSON lines to stderr at level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("jieba").setLevel(logging.WARNING)


def fields(**values: Any) -> dict[str, Any]:
    """The `extra=` argument carrying structured fields: log.info("x", extra=fields(a=1))."""
    return {"fields": values}
