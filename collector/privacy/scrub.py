"""Detectors that replace personal and health data in free text with typed tokens, and URL minimisation.

Order matters: the most specific detectors run first (a card number is also a long digit run).
Whatever digit run survives the typed detectors and is long enough to be an identifier becomes
``[number]``, so an unrecognised format still does not pass through.
"""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import unquote

EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+", re.UNICODE)
CARD = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
SSN = re.compile(r"(?<!\d)\d{3}[- .]?\d{2}[- .]?\d{4}(?!\d)")
PHONE = re.compile(r"(?<![\w+])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{3}\)|\d{3})[\s.-]?\d{3}[\s.-]?\d{4}(?!\d)")
DATE = re.compile(
    r"(?<!\d)(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|(?:19|20)\d{2}[/.-]\d{1,2}[/.-]\d{1,2})(?!\d)"
    r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.? \d{1,2},? (?:19|20)\d{2}\b",
    re.IGNORECASE,
)
LONG_NUMBER = re.compile(r"(?<!\d)\d(?:[\s().-]{0,2}\d){5,}(?!\d)")

UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
HEX = re.compile(r"^[0-9a-f]{16,}$", re.I)
DIGITS = re.compile(r"^\d+$")
MIXED_ID = re.compile(r"^(?=(?:.*\d){4,})[a-z0-9_-]{6,}$", re.I)


def luhn_ok(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if alt:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        alt = not alt
    return total % 10 == 0


def _card(m: re.Match) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return "[card]" if luhn_ok(digits) else m.group(0)


class Scrubber:
    """Scrubs text with the built-in detectors plus a site's configured member-id patterns."""

    def __init__(self, member_id_patterns: Iterable[str] = ()):
        pats = [p for p in member_id_patterns if p]
        self.member = re.compile("|".join(f"(?:{p})" for p in pats), re.I) if pats else None

    def text(self, value: str, limit: int = 256) -> str:
        if not value:
            return value
        if "%" in value:
            value = unquote(value)
        if "@" in value:
            value = EMAIL.sub("[email]", value)
        if self.member is not None:
            value = self.member.sub("[member_id]", value)
        if any(c.isdigit() for c in value):
            value = CARD.sub(_card, value)
            value = SSN.sub("[ssn]", value)
            value = PHONE.sub("[phone]", value)
            value = DATE.sub("[date]", value)
            value = LONG_NUMBER.sub("[number]", value)
        return value[:limit]

    def segment(self, seg: str) -> str:
        if not seg:
            return seg
        if DIGITS.match(seg):
            return ":id"
        if UUID.match(seg):
            return ":uuid"
        if HEX.match(seg):
            return ":hex"
        if self.member is not None and self.member.fullmatch(seg):
            return ":member_id"
        if "@" in seg or "%40" in seg.lower():
            return ":email"
        if MIXED_ID.match(seg):
            return ":id"
        return self.text(seg, 200)

    def path(self, path: str, limit: int = 1024) -> str:
        if "%" in path:
            path = unquote(path)
        return "/".join(self.segment(s) for s in path.split("/"))[:limit]
