"""The request decoder and the enrichment pipeline together, as the fuzzers drive them: any exception
other than a ``CollectorError`` (a 4xx) is a bug, since it would surface as a 5xx."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qsl

from collector.http.decode import decode_events, normalize
from collector.errors import CollectorError
from collector.pipeline import Event, build_pipeline
from collector.privacy.consent import ConsentState
from collector.privacy.keys import KeyStore
from collector.testing import make_settings


class Harness:
    def __init__(self, workdir: Path, **settings):
        self.settings = make_settings(workdir / "data", **settings)
        keys = KeyStore(workdir / "keys", self.settings.key_period_s, self.settings.key_destroy_after_s)
        consent = ConsentState(workdir / "consent.jsonl")
        self.pipeline = build_pipeline(self.settings, keys, consent)

    def request(self, body: bytes, mode: int, ip: str = "81.2.69.142", user_agent: str = "Mozilla/5.0") -> int:
        """Decode and enrich like the endpoint does; returns the status the client would get."""
        try:
            if mode == 0:
                payloads = decode_events(body, self.settings, batch=False)
            elif mode == 1:
                payloads = decode_events(body, self.settings, batch=True)
            else:
                raw = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
                raw.setdefault("n", "pageview")
                payloads = [normalize(raw, self.settings)]
        except CollectorError as exc:
            return exc.status
        now = int(time.time() * 1000)
        events = []
        for p in payloads:
            site = self.settings.site(p["domain"])
            if site is None:
                return 422
            events.append(Event(site=site, payload=p, ip=ip, user_agent=user_agent, received_ms=now, gpc=mode == 2))
        self.pipeline.run(events)
        return 202
