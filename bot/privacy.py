"""Privacy helpers: what may appear in logs and pushes about a resident."""

from __future__ import annotations

import hashlib
import re

# A mobile number as residents write it: 13812345678, 138 1234 5678, 138-1234-5678, in
# full-width digits (１３８…), or read out in characters (幺三八一二三四五六七八) by voice input;
# after the country code too, as a phone's contact card copies it: +8613812345678, 008613812345678.
_SEP = r"[ \t\u3000\-－—.·]?"
_COUNTRY = r"(?:(?<!\d)|(?<=(?<!\d)86)|(?<=(?<!\d)0086))"
_PHONE = re.compile(rf"{_COUNTRY}(1[3-9]\d){_SEP}(\d{{4}}){_SEP}(\d{{4}})(?!\d)")
# A landline: 010-12345678, 0571 8765 4321, (0571)87654321, （010）1234-5678. No area code begins
# 00 and no local number begins 0, so ticket numbers listed with spaces (0001 0002 0003) are none.
_LANDLINE = re.compile(rf"(?<!\d)([(（]?0[1-9]\d{{1,2}}[)）]?{_SEP})([1-9]\d{{2,3}}){_SEP}(\d{{4}})(?!\d)")
_SPOKEN = "零〇一幺二两三四五六七八九"
_SPOKEN_PHONE = re.compile(rf"(?<![{_SPOKEN}])([一幺][三四五六七八九][{_SPOKEN}]){_SEP}([{_SPOKEN}]{{4}}){_SEP}([{_SPOKEN}]{{4}})(?![{_SPOKEN}])")
_WIDE_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def hash_openid(openid: str) -> str:
    """A short stable hash of an openid, for logs."""
    return "u_" + hashlib.sha256(openid.encode("utf-8")).hexdigest()[:12]


def mask_phone(text: str) -> str:
    """Mask every phone number in text: 13812345678 (or 138 1234 5678, 138-1234-5678) →
    138****5678; full-width digits are read as digits, and a number read out in characters keeps
    its characters: 一三八一二三四五六七八 → 一三八****五六七八."""
    if any("０" <= ch <= "９" for ch in text):
        text = text.translate(_WIDE_DIGITS)
    text = _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    text = _SPOKEN_PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LANDLINE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
