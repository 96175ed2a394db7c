"""Detectors that replace personal and health data in free text with typed tokens, and URL minimisation.

Every value is first normalized to a fixed point: percent-decoding (repeatedly: ``%2540`` is ``@``),
HTML character references, Unicode NFKC (fullwidth ``＠`` and digits), format characters removed
(zero-width spaces and joiners, bidi controls, soft hyphens) and every decimal digit mapped to ASCII.
A value that still decodes after ``MAX_DECODE`` passes is adversarial and becomes ``[encoded]``.

Then the detectors run, most specific first. Digits are read as *numeric sequences*: digits joined by
up to three separators (space, ``-``, ``_``, ``/``, ``.``, parentheses, any Unicode dash), so
``123_45_6789``, ``123 – 45 – 6789`` and ``4111/1111/1111/1111`` are one sequence, classified by
its digits and grouping: card (Luhn, 13–19 digits), date, SSN (9 digits), phone, and any other run of
six or more digits ``[number]``. An unrecognised format therefore still does not pass through.

Every detector runs in time linear in the input: regular expressions have no unbounded repetition
that can fail and be retried from the next position (the e-mail detector anchors on each ``@``
instead of scanning local parts from every start), and decoding shrinks the input or stops.
The configured ``member_id_patterns`` are the operator's own expressions and are not checked.
"""

from __future__ import annotations

import base64
import binascii
import html
import ipaddress
import re
import sys
import unicodedata
from functools import lru_cache
from typing import Iterable
from urllib.parse import unquote

MAX_DECODE = 6  # normalization passes; more nesting than this is refused as "[encoded]"
ENCODED = "[encoded]"

# --- normalization -------------------------------------------------------------------------------

# Invisible letters that NFKC keeps (Hangul fillers, braille blank, combining grapheme joiner).
_INVISIBLE = (0x034F, 0x115F, 0x1160, 0x2800, 0x3164, 0xFFA0)


@lru_cache(maxsize=1)
def _table() -> dict[int, int | None]:
    """Format characters (category Cf) and invisible fillers removed; decimal digits mapped to ASCII."""
    t: dict[int, int | None] = {}
    for cp in range(0x80, sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        if cat == "Cf":
            t[cp] = None
        elif cat == "Nd":
            t[cp] = 48 + unicodedata.decimal(chr(cp))
    for cp in _INVISIBLE:
        t[cp] = None
    return t


def normalize(value: str) -> str | None:
    """``value`` decoded to a fixed point (see the module text); None when it does not settle."""
    if value.isascii() and "%" not in value and "&" not in value:
        return value
    for _ in range(MAX_DECODE):
        w = value
        if "%" in w:
            w = unquote(w, errors="replace")
        if "&" in w:
            w = html.unescape(w)
        if not w.isascii():
            w = unicodedata.normalize("NFKC", w).translate(_table())
        if w == value:
            return value
        value = w
    return None


# --- detectors -----------------------------------------------------------------------------------

_LOCAL_CHARS = r"\w.!#$%&'*+/=?^`{|}~-"
_LOCAL_RUN = re.compile(f"[{_LOCAL_CHARS}]+")  # matched on the reversed text before an "@"
_DOMAIN = re.compile(r"[\w-]+(?:\.[\w-]+)+")  # matched right after an "@"; labels exclude "."

# "jane (at) example (dot) com", "jane [at] example.com", "jane at example dot com". Bounded repeats,
# starting only at a word start: linear. A plain " at " needs a spelled-out "dot" (not "meet at x.com").
_BR = r"\s{0,3}[(\[{<]\s?%s\s?[)\]}>]\s{0,3}"
_W = r"\s{1,3}%s\s{1,3}"
_LABEL = r"[\w-]{1,63}"
AT_TEXT = re.compile(
    r"(?<![\w.+-])[\w.+-]{1,64}(?:"
    + (_BR % "at") + _LABEL + r"(?:(?:" + (_BR % "dot") + "|" + (_W % "dot") + r"|\.)" + _LABEL + "){1,4}"
    + "|" + (_W % "at") + _LABEL + r"(?:(?:" + (_BR % "dot") + "|" + (_W % "dot") + ")" + _LABEL + "){1,4}"
    + ")",
    re.IGNORECASE,
)
# the same disguise inside one host label or path segment: "john-doe-at-example-com"
TLDS = frozenset("com org net edu gov mil int io co us uk de fr es it nl be ch at ca au nz jp cn in br mx ru se no "
                 "dk fi pl ie info biz me email mail".split())
_WORDS = re.compile(r"[-_.\s+]+")

SEP = r"[\s\-_/.()\u2010-\u2015\u2212\u2043\ufe58\ufe63]"
NUMSEQ = re.compile(r"(?<!\d)(?:\+\s?)?(?:\(\d{1,4}\)\s?)?\d(?:" + SEP + r"{0,3}\d)*")
_GROUP = re.compile(r"\d+")
_DIGIT = re.compile(r"\d")
_NOT_DIGIT = re.compile(r"\D+")

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_YEAR = r"(?:19|20)\d{2}"
_DS = r"[\s,./-]{0,3}"
DATE_WORDS = re.compile(
    rf"\b(?:{_MONTH}{_DS}{_DAY}{_DS}{_YEAR}|{_DAY}{_DS}(?:of\s)?{_MONTH}{_DS}{_YEAR}|{_YEAR}{_DS}{_MONTH}{_DS}{_DAY})\b",
    re.IGNORECASE,
)

JWT = re.compile(r"(?<![\w-])eyJ[\w-]{4,}\.[\w-]{4,}(?:\.[\w-]*)?")
B64 = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_HAS_UPPER = re.compile(r"[A-Z]")

UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
HEX = re.compile(r"[0-9a-f]{16,}", re.I)
DIGITS = re.compile(r"\d+")
MIXED_ID = re.compile(r"[a-z0-9_-]{6,}", re.I)  # with four or more digits (counted separately)


def luhn_ok(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if alt:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        alt = not alt
    return total % 10 == 0


def _date_parts(a: int, b: int, c: int, la: int, lc: int) -> bool:
    """d/m/y, m/d/y (year 2 or 4 digits) or y/m/d with plausible month and day."""
    if la == 4:
        return 1 <= b <= 12 and 1 <= c <= 31
    if lc not in (2, 4):
        return False
    return (1 <= a <= 12 and 1 <= b <= 31) or (1 <= b <= 12 and 1 <= a <= 31)


def _compact_date(d: str) -> bool:
    """Eight digits that read as yyyymmdd, mmddyyyy or ddmmyyyy (a birth date without separators)."""
    y1, m1, d1 = int(d[:4]), int(d[4:6]), int(d[6:])
    if 1900 <= y1 <= 2099 and 1 <= m1 <= 12 and 1 <= d1 <= 31:
        return True
    y2 = int(d[4:])
    return 1900 <= y2 <= 2099 and _date_parts(int(d[:2]), int(d[2:4]), y2, 2, 4)


def number_kind(seq: str) -> str | None:
    """The typed token for one numeric sequence, or None when it may stay."""
    digits = _NOT_DIGIT.sub("", seq)
    n = len(digits)
    if n < 4:
        return None
    groups = _GROUP.findall(seq)
    if len(groups) == 3 and n <= 8:
        seps = _NOT_DIGIT.findall(seq.lstrip("+("))
        if len(seps) == 2 and seps[0].strip() == seps[1].strip() and seps[0].strip() in ("/", ".", "-"):
            la, lc = len(groups[0]), len(groups[2])
            if (la <= 2 and len(groups[1]) <= 2) or (la == 4 and len(groups[1]) <= 2 and lc <= 2):
                if _date_parts(int(groups[0]), int(groups[1]), int(groups[2]), la, lc):
                    return "[date]"
    if n < 6:
        return None
    if len(groups) == 2 and len(groups[1]) == 2 and len(groups[0]) <= 6 and seq[len(groups[0])] == ".":
        return None  # an amount with cents (1299.00)
    if 13 <= n <= 19 and luhn_ok(digits):
        return "[card]"
    if n == 9 and (len(groups) == 1 or [len(g) for g in groups] == [3, 2, 4]):
        return "[ssn]"
    if n == 10 or (n == 11 and digits[0] == "1") or (seq.startswith("+") and 8 <= n <= 15):
        return "[phone]"
    if n == 8 and len(groups) == 1 and _compact_date(digits):
        return "[date]"
    return "[number]"


def _number(m: re.Match) -> str:
    return number_kind(m.group(0)) or m.group(0)


def emails(value: str, probe: str | None = None) -> str:
    """Every ``local@domain.tld`` replaced by ``[email]``, in one pass anchored on each ``@``.

    ``probe`` is a same-length copy of ``value`` in which the addresses are looked for (form-decoded
    values pass one with spaces turned back into ``+``, which a form encoding had made of them)."""
    probe = probe or value
    out: list[str] = []
    last = 0
    i = probe.find("@")
    while i != -1:
        m = _DOMAIN.match(probe, i + 1)
        if m is not None and i > last:
            local = _LOCAL_RUN.match(probe[last:i][::-1])
            if local is not None:
                out.append(value[last:i - local.end()])
                out.append("[email]")
                last = m.end()
                i = probe.find("@", last)
                continue
        i = probe.find("@", i + 1)
    if not out:
        return value
    out.append(value[last:])
    return "".join(out)


def disguised_email_words(text: str) -> bool:
    """``john-doe-at-example-com``: an "at" word between words, then a top-level domain or "dot"."""
    words = _WORDS.split(text.lower())
    for i in range(1, len(words) - 1):
        if words[i] == "at":
            rest = words[i + 1:]
            if len(rest) >= 2 and (rest[-1] in TLDS or "dot" in rest):
                return True
    return False


def _b64_text(token: str) -> str | None:
    """The text a base64 (standard or URL-safe) token decodes to, when it is printable UTF-8."""
    t = token.rstrip("=")
    if len(t) % 4 == 1 or not _HAS_UPPER.search(t):
        return None
    try:
        raw = base64.b64decode(t.replace("-", "+").replace("_", "/") + "=" * (-len(t) % 4), validate=True)
        s = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return s if s and (s.isprintable() or s.replace("\n", "").replace("\t", "").isprintable()) else None


def digit_count(s: str) -> int:
    return len(_NOT_DIGIT.sub("", s))


class Scrubber:
    """Scrubs text with the built-in detectors plus a site's configured member-id patterns.

    ``keep_numeric_segments``: all-digit path segments stay as they are (catalogue ids) unless they
    read as an SSN, phone, Luhn-valid card, compact date, 20+ digits or a member id.
    """

    def __init__(self, member_id_patterns: Iterable[str] = (), keep_numeric_segments: bool = False):
        pats = [p for p in member_id_patterns if p]
        self.member = re.compile("|".join(f"(?:{p})" for p in pats), re.I) if pats else None
        self.keep_numeric = keep_numeric_segments

    # free text ------------------------------------------------------------------------------------

    def text(self, value: str, limit: int = 256, form: bool = False) -> str:
        """``form``: the value was form-decoded (query values, search terms), so a space inside an
        address may have been a ``+`` (``jane+tag@example.com``) and counts as part of it."""
        if not value:
            return value
        v = normalize(value)
        if v is None:
            return ENCODED
        return self._detect(v, form, 0)[:limit]

    def _detect(self, v: str, form: bool, depth: int) -> str:
        if len(v) >= 12:
            if "eyJ" in v:
                v = JWT.sub("[token]", v)
            if depth < 2 and B64.search(v) is not None:
                v = B64.sub(lambda m: self._b64(m, depth), v)
        if "@" in v:
            v = emails(v, v.replace(" ", "+") if form else None)
        if "at" in v or "AT" in v or "At" in v:
            low = v.lower()
            if "dot" in low or "(at)" in low or "[at]" in low or "{at}" in low or "<at>" in low:
                v = AT_TEXT.sub("[email]", v)
        if self.member is not None:
            v = self.member.sub("[member_id]", v)
        if _DIGIT.search(v) is not None:
            v = DATE_WORDS.sub("[date]", v)
            v = NUMSEQ.sub(_number, v)
        return v

    def _b64(self, m: re.Match, depth: int) -> str:
        tok = m.group(0)
        s = _b64_text(tok)
        if s is not None and self._detect(s, False, depth + 1) != s:
            return "[token]"
        return tok

    def pii(self, value: str) -> bool:
        """Whether any detector flags ``value`` (or it does not settle when decoded)."""
        v = normalize(value)
        return v is None or self._detect(v, False, 0) != v

    # URLs -----------------------------------------------------------------------------------------

    def segment(self, seg: str) -> str:
        if not seg:
            return seg
        if DIGITS.fullmatch(seg):
            if self.member is not None and self.member.fullmatch(seg):
                return ":member_id"
            if self.keep_numeric and self._numeric_id_ok(seg):
                return seg
            return ":id"
        if UUID.fullmatch(seg):
            return ":uuid"
        if HEX.fullmatch(seg):
            return ":hex"
        if self.member is not None and self.member.fullmatch(seg):
            return ":member_id"
        if "@" in seg or ("at" in seg.lower() and disguised_email_words(seg)):
            return ":email"
        if "eyJ" in seg and JWT.fullmatch(seg):
            return ":token"
        if len(seg) >= 12 and B64.fullmatch(seg):
            s = _b64_text(seg)
            if s is not None and self.pii(s):
                return ":token"
        if digit_count(seg) >= 4 and MIXED_ID.fullmatch(seg):
            return ":id"
        return self._detect(seg, False, 0)[:200]

    def _numeric_id_ok(self, seg: str) -> bool:
        n = len(seg)
        if n in (9, 10, 11) or n > 19 or (13 <= n and luhn_ok(seg)):
            return False
        return not (n == 8 and _compact_date(seg))

    def path(self, path: str, limit: int = 1024) -> str:
        p = normalize(path)
        if p is None:
            return "/" + ENCODED
        return "/".join(self.segment(s) for s in p.split("/"))[:limit]

    def label_ok(self, label: str) -> bool:
        """Whether one host label can be stored as it is."""
        if not label or len(label) > 63:
            return False
        if label.startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except (UnicodeError, ValueError):
                return False
        if "at" in label and disguised_email_words(label):
            return False
        return self.segment(label) == label

    def host(self, host: str, domain: str = "") -> str:
        """A host name with every label that is not plainly a name replaced by ``*``; the site's own
        ``domain`` (and ``www.`` of it) is kept, and its sub-domains' labels are checked. An address
        literal becomes ``[ip]``."""
        if not host:
            return host
        h = normalize(host.lower().rstrip("."))
        if h is None:
            return "*"
        if domain and (h == domain or h == "www." + domain):
            return h
        try:
            ipaddress.ip_address(h)
            return "[ip]"
        except ValueError:
            pass
        suffix = ""
        if domain and h.endswith("." + domain):
            h, suffix = h[: -len(domain) - 1], domain
        labels = [lab if self.label_ok(lab) else "*" for lab in h.split(".")]
        if suffix:
            labels.append(suffix)
        return ".".join(labels)[:253]
