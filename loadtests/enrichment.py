"""Enrichment cost per event: the product's Pipeline.run over a realistic UA/IP/page mix, against the
floor of what any enrichment must do for the same events: a raw ``maxminddb`` City lookup, a raw ASN
lookup, a cached UA parse and one HMAC.

Both sides run in this process on the same events, in alternating passes; the figure is the median
pass. Events are built before each pass (the pipeline fills them in), so only enrichment is timed.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import statistics
import tempfile
import time
from pathlib import Path

from loadtests import geodata, traffic


def _setup(tmp: Path, n_events: int):
    from collector.http.decode import normalize
    from collector.settings import Settings, Site, validate
    from collector.pipeline import build_pipeline
    from collector.privacy.consent import ConsentState
    from collector.privacy.keys import KeyStore

    mix = traffic.Mix()
    city, asn = geodata.databases(tmp / "mmdb", mix.ips)
    settings = validate(Settings(data_dir=tmp / "data", sites=(Site(traffic.SITE, secret="bench-secret"),),
                                 geoip_city_db=city, geoip_asn_db=asn))
    keys = KeyStore(tmp / "data" / "keys")
    keys.maintain()
    consent = ConsentState(tmp / "data" / "consent.jsonl")
    pipe = build_pipeline(settings, keys, consent)
    site = settings.site(traffic.SITE)
    events = [(normalize(p, settings), ua, ip) for p, ua, ip in mix.events(n_events)]
    return settings, keys, pipe, site, events, (city, asn)


def run(duration_s: float = 4.0, n_events: int = 4000) -> dict:
    import maxminddb

    from collector.pipeline import Event
    from collector.pipeline.useragent import UserAgentParser

    with tempfile.TemporaryDirectory(prefix="bench-enrich-") as d:
        settings, keys, pipe, site, events, (city_path, asn_path) = _setup(Path(d), n_events)
        city = maxminddb.open_database(city_path, maxminddb.MODE_AUTO)
        asn = maxminddb.open_database(asn_path, maxminddb.MODE_AUTO)
        ua_cached = UserAgentParser().parse
        secret = keys.visitor_key().secret
        domain = site.domain
        now_ms = int(time.time() * 1000)

        dropped: collections.Counter = collections.Counter()

        def pipeline_pass() -> float:
            evs = [Event(site=site, payload=p, ip=ip, user_agent=ua, received_ms=now_ms) for p, ua, ip in events]
            t0 = time.perf_counter_ns()
            dropped.update(pipe.run(evs).dropped)
            return (time.perf_counter_ns() - t0) / len(evs) / 1000

        def baseline_pass() -> float:
            new, sha = hmac.new, hashlib.sha256
            t0 = time.perf_counter_ns()
            for p, ua, ip in events:
                city.get(ip)
                asn.get(ip)
                ua_cached(ua)
                cid = p.get("cid")
                msg = "\x1f".join(("visitor", domain, cid) if cid else ("visitor-ip", domain, ip, ua)).encode()
                new(secret, msg, sha).hexdigest()
            return (time.perf_counter_ns() - t0) / len(events) / 1000

        pipeline_pass(), baseline_pass()  # warm caches (UA) and the page cache of the mmdb files
        pipe.step_ns.clear()
        ours, base = [], []
        end = time.monotonic() + duration_s
        while time.monotonic() < end or len(ours) < 3:
            ours.append(pipeline_pass())
            base.append(baseline_pass())
        runs = len(ours) * len(events)
        steps = {name: ns / runs / 1000 for name, ns in pipe.step_ns.items()}
        city.close()
        asn.close()
    pipeline_us, baseline_us = statistics.median(ours), statistics.median(base)
    return {"pipeline_us": pipeline_us, "baseline_us": baseline_us, "ratio": pipeline_us / baseline_us,
            "steps_us": steps, "events": len(events), "passes": len(ours), "dropped": sum(dropped.values()) // max(1, len(ours))}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(float(sys.argv[1]) if len(sys.argv) > 1 else 4.0), indent=2))
