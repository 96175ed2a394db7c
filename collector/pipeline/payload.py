"""Copies the decoded payload's own fields onto the row: identity of the event, time, name, props.

The app fields are held to their closed forms here (``applocation.platform_of`` and friends), so every
later step reads a canonical platform; free text (name, props, titles) is scrubbed by the scrub step."""

from __future__ import annotations

import os

from collector.pipeline.applocation import app_version_of, device_model_of, platform_of
from collector.pipeline.event import Event


_POOL_IDS = 256
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # RFC 4122 variant: 10xx
_pool: list[str] = []


def new_event_id() -> str:
    """A random (version 4) UUID in its canonical text form, as ``str(uuid.uuid4())`` returns, from
    operating-system randomness drawn 256 ids at a time (one system call and one hex conversion
    instead of one per event); 122 random bits, the version and variant bits set."""
    if not _pool:
        h = os.urandom(16 * _POOL_IDS).hex()
        _pool.extend(f"{h[i:i + 8]}-{h[i + 8:i + 12]}-4{h[i + 13:i + 16]}-{_VARIANT[h[i + 16]]}{h[i + 17:i + 20]}-"
                     f"{h[i + 20:i + 32]}" for i in range(0, 32 * _POOL_IDS, 32))
    return _pool.pop()


class PayloadStep:
    name = "payload"

    def __init__(self, settings):
        self.skew_ms = settings.clock_skew_s * 1000

    def __call__(self, ev: Event) -> Event:
        p = ev.payload
        client_ts = p.get("ts")
        ts, clamped = ev.received_ms, 0
        if client_ts is not None:
            if abs(client_ts - ev.received_ms) <= self.skew_ms:
                ts = client_ts
            else:
                clamped = 1
        ev.row = {
            "event_id": new_event_id(),
            "site": ev.site.domain,
            "ts": ts / 1000,  # Unix seconds, milliseconds as the fraction (DateTime64(3) reads it exactly)
            "ts_clamped": clamped,
            "name": p["name"],
            "title": p.get("title", ""),
            "engagement_ms": p.get("engagement_ms", 0),
            "props": p.get("props", {}),
            "link_url": p.get("link", ""),
            "click_text": p.get("text", ""),
            "platform": "web",
            "app_version": "",
            "device_model": "",
        }
        if "platform" in p or "app_version" in p or "device_model" in p:  # an app's fields
            row = ev.row
            row["platform"] = platform_of(p.get("platform"))
            row["app_version"] = app_version_of(p.get("app_version"))
            row["device_model"] = device_model_of(p.get("device_model"))
        return ev
