"""Privacy helpers: what may appear in logs and pushes about a resident."""

from __future__ import annotations

import hashlib
import re

_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3}-?)(\d{3,4})(\d{4})(?!\d)")


def hash_openid(openid: str) -> str:
    """A short stable hash of an openid, for logs."""
    return "u_" + hashlib.sha256(openid.encode("utf-8")).hexdigest()[:12]


def mask_phone(text: str) -> str:
    """Mask every phone number in text: 13812345678 → 138****5678."""
    text = _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LANDLINE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
