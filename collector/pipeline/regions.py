"""ISO 3166-2 subdivision codes and their display names (pycountry's maintained ISO tables).

Geography databases name regions differently: MaxMind gives ISO codes (``MA``), DB-IP gives names
(``Massachusetts``, ``Île-de-France``), apps send ``US-MA`` or ``MA``. Every form becomes the one
ISO code (``US-MA``), so one place is one value; an unknown subdivision becomes empty rather than a
free-text name.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import pycountry


def _key(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).casefold()
    return "".join(ch for ch in text if ch.isalnum())


@lru_cache(maxsize=512)
def _table(country: str) -> dict[str, tuple[str, str]]:
    """code suffix / code / normalized name -> (ISO code, display name), for one country."""
    out: dict[str, tuple[str, str]] = {}
    for sub in pycountry.subdivisions.get(country_code=country) or ():
        entry = (sub.code, sub.name)
        out.setdefault(sub.code.upper(), entry)
        out.setdefault(sub.code.split("-", 1)[1].upper(), entry)
        out.setdefault(_key(sub.name), entry)
    return out


@lru_cache(maxsize=8192)
def subdivision(country: str, raw: str) -> tuple[str, str]:
    """(ISO 3166-2 code, display name) of a subdivision given as a code or a name; ("", "") if unknown."""
    country, raw = (country or "").upper(), (raw or "").strip()
    if not country or not raw or len(raw) > 128:
        return "", ""
    table = _table(country)
    head, dash, rest = raw.partition("-")
    if dash and head.upper() == country:
        raw = rest
    return table.get(raw.upper()) or table.get(_key(raw)) or ("", "")
