"""Copies the decoded payload's own fields onto the row: identity of the event, time, name, props.

The app fields are held to their closed forms here (``applocation.platform_of`` and friends), so every
later step reads a canonical platform; free text (name, props, titles) is scrubbed by the scrub step."""

from __future__ import annotations

import os

from collector.pipeline.applocation import app_version_of, device_model_of, platform_of
from collector.pipeline.event import Event


_POOL_BYTES = 16 * 256
_pool = memoryview(b"")


def new_event_id() -> str:
    """A random (version 4) UUID in its canonical text form, as ``str(uuid.uuid4())`` returns, from
    operating-system randomness drawn 256 ids at a time (one system call instead of one per event)."""
    global _pool
    if len(_pool) < 16:
        _pool = memoryview(os.urandom(_POOL_BYTES))
    b = bytearray(_pool[:16])
    _pool = _pool[16:]
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
            "platform": platform_of(p.get("platform")),
            "app_version": app_version_of(p.get("app_version")),
            "device_model": device_model_of(p.get("device_model")),
        }
        return ev
