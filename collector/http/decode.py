"""Turns a request body into validated event payloads with canonical keys, or a clear 4xx.

Accepts Plausible's Events API keys, long and short, and the collector's own fields.
"""

from __future__ import annotations

from typing import Any

import orjson

from collector.errors import BadRequest
from collector.pipeline.urls import split

# short/long alias -> canonical key
ALIASES = {
    "n": "name", "name": "name", "u": "url", "url": "url", "d": "domain", "domain": "domain",
    "r": "referrer", "referrer": "referrer", "p": "props", "props": "props", "h": "hash", "hash": "hash",
    "m": "props", "meta": "props",
    "e": "engagement_ms", "engagement_ms": "engagement_ms", "ts": "ts", "cid": "cid", "identity": "identity",
    "search": "search", "title": "title", "auth": "auth", "link": "link", "text": "text",
    "platform": "platform", "app_version": "app_version", "device_model": "device_model",
    "device_id": "cid", "screen": "screen", "i": "interactive", "interactive": "interactive",
    "sd": "scroll_depth", "revenue": "revenue", "$": "revenue", "v": "version",
    "gpc": "gpc", "country": "country", "region": "region",
}
# the string fields and their longest values
LIMITS = {"name": 120, "url": 2048, "domain": 253, "referrer": 2048, "cid": 64, "identity": 2048,
          "search": 256, "title": 512, "link": 2048, "text": 512, "platform": 32, "app_version": 32,
          "device_model": 64, "screen": 256, "country": 8, "region": 16}
IGNORED = ("interactive", "scroll_depth", "revenue", "version")
MAX_INT = 2**53
_KEPT = {k: v for k, v in ALIASES.items() if v not in IGNORED}  # the aliases of the fields read
_DOMAINS: dict[str, str] = {}  # a configured site's ``domain`` as sent -> its canonical form (bounded)


def parse_json(body: bytes) -> Any:
    # orjson validates UTF-8 itself (lone surrogates included), rejects NaN/Infinity and numbers that
    # overflow a double, and stops at 1024 levels of nesting: all of these are 400s, never 5xx
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise BadRequest(f"body is not valid UTF-8 (byte {bad.start})") from None
        raise BadRequest(f"body is not valid JSON: {str(exc).split(':')[0]}") from None


def check_shape(value: Any, max_depth: int, max_keys: int, depth: int = 0) -> None:
    if depth > max_depth:
        raise BadRequest(f"JSON nested deeper than {max_depth} levels")
    if isinstance(value, dict):
        if len(value) > max_keys:
            raise BadRequest(f"JSON object has more than {max_keys} keys")
        for v in value.values():
            if isinstance(v, (dict, list)):
                check_shape(v, max_depth, max_keys, depth + 1)
    elif isinstance(value, list):
        if len(value) > max_keys * 4:
            raise BadRequest(f"JSON array has more than {max_keys * 4} items")
        for v in value:
            if isinstance(v, (dict, list)):
                check_shape(v, max_depth, max_keys, depth + 1)


def _props(raw: Any, settings) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise BadRequest("props must be an object") from None
    if not isinstance(raw, dict):
        raise BadRequest("props must be an object")
    if len(raw) > settings.max_props:
        raise BadRequest(f"props has more than {settings.max_props} keys")
    out = {}
    for k, v in raw.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, (int, float)):
            if abs(v) > MAX_INT:
                raise BadRequest(f"props.{k[:40]} is out of range")
            v = str(v)
        elif v is None:
            continue
        elif not isinstance(v, str):
            raise BadRequest(f"props.{k[:40]} must be a string, number or boolean")
        if len(k) > 64 or len(v) > settings.max_string_bytes:
            raise BadRequest(f"props.{k[:40]} is too long")
        out[k] = v
    return out


def normalize(raw: Any, settings) -> dict[str, Any]:
    """One event object -> canonical payload dict. Raises BadRequest naming the problem."""
    if not isinstance(raw, dict):
        raise BadRequest("each event must be a JSON object")
    ev: dict[str, Any] = {}
    kept = _KEPT
    for key, value in raw.items():
        canon = kept.get(key)
        if canon is not None:
            ev[canon] = value
    absent = None  # string fields sent as null: as if not sent
    for key, v in ev.items():
        limit = LIMITS.get(key)
        if limit is None:
            continue
        if v is None:
            if absent is None:
                absent = []
            absent.append(key)
        elif not isinstance(v, str):
            raise BadRequest(f"{key} must be a string")
        elif len(v) > limit:
            raise BadRequest(f"{key} is longer than {limit} characters")
    if absent is not None:
        for key in absent:
            del ev[key]
    if not ev.get("domain"):
        raise BadRequest("domain is required")
    if not ev.get("name"):
        raise BadRequest("name is required")
    if not ev.get("url") and not ev.get("screen"):
        raise BadRequest("url is required")
    domain = _DOMAINS.get(ev["domain"])
    if domain is None:
        domain = ev["domain"].split(",")[0].strip().lower()
        if settings.site(domain) is not None:  # only spellings of configured sites are remembered
            if len(_DOMAINS) >= 256:
                _DOMAINS.clear()
            _DOMAINS[ev["domain"]] = domain
    ev["domain"] = domain
    if ev.get("url") and not ev["url"].startswith(("http://", "https://", "app://")):
        raise BadRequest("url must be an absolute http(s) URL")
    if "url" in ev and ("[" in ev["url"] or "]" in ev["url"] or not ev["url"].isascii()):
        try:  # only brackets (IPv6 hosts) and non-ASCII hosts can make urlsplit refuse a URL
            split(ev["url"])
        except ValueError:
            raise BadRequest("url is not a valid URL") from None
    ev.setdefault("url", "")
    if "engagement_ms" in ev or "ts" in ev:
        for key in ("engagement_ms", "ts"):
            v = ev.get(key)
            if v is None:
                ev.pop(key, None)
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or abs(v) > MAX_INT:
                raise BadRequest(f"{key} must be a number")
            ev[key] = int(v)
        if "engagement_ms" in ev:
            ev["engagement_ms"] = max(0, min(ev["engagement_ms"], 24 * 3600 * 1000))
    if "hash" in ev or "auth" in ev or "gpc" in ev:
        for key in ("hash", "auth", "gpc"):
            if key in ev:
                ev[key] = bool(ev[key])
    ev["props"] = _props(ev.get("props"), settings)
    return ev


def decode_events(body: bytes, settings, batch: bool) -> list[dict[str, Any]]:
    doc = parse_json(body)
    check_shape(doc, settings.max_json_depth, settings.max_json_keys)
    if batch:
        if isinstance(doc, dict) and isinstance(doc.get("events"), list):
            common = {k: v for k, v in doc.items() if k != "events"}
            doc = [{**common, **e} if isinstance(e, dict) else e for e in doc["events"]]
        if not isinstance(doc, list):
            raise BadRequest("batch body must be a JSON array of events (or {\"events\": [...]})")
        if not doc:
            raise BadRequest("batch is empty")
        if len(doc) > settings.max_batch_events:
            raise BadRequest(f"batch has more than {settings.max_batch_events} events")
        out = []
        for i, e in enumerate(doc):
            try:
                out.append(normalize(e, settings))
            except BadRequest as exc:
                raise BadRequest(f"event {i}: {exc.message}") from None
        return out
    return [normalize(doc, settings)]
