"""Copies the decoded payload's own fields onto the row: identity of the event, time, name, props."""

from __future__ import annotations

import uuid

from pipeline.event import Event


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
            "event_id": str(uuid.uuid4()),
            "site": ev.site.domain,
            "ts": ts,
            "ts_clamped": clamped,
            "name": p["name"],
            "title": p.get("title", ""),
            "engagement_ms": p.get("engagement_ms", 0),
            "props": p.get("props", {}),
            "link_url": p.get("link", ""),
            "click_text": p.get("text", ""),
            "platform": p.get("platform", "web"),
            "app_version": p.get("app_version", ""),
            "device_model": p.get("device_model", ""),
        }
        return ev
