"""Smoke tests: the benchmark modules run with tiny sizes and produce well-formed results.
Speed is never asserted here; the figures come from ``make bench``."""

from __future__ import annotations

import orjson
import pytest

from loadtests import enrichment, report, requestcpu, traffic, useragent, wrk


def test_letters_round_trip_and_survive_the_scrubber():
    from collector.privacy.scrub import Scrubber

    for n in (0, 1, 25, 26, 675, 123456):
        s = traffic.letters(n)
        assert traffic.from_letters(s) == n
        assert Scrubber().text(s) == s


def test_mix_is_deterministic_and_valid_for_the_decoder():
    from collector.http.decode import decode_events
    from collector.settings import Settings, Site

    now = 1_764_000_000
    a = list(traffic.Mix(seed=4, now=now).requests(20, 3))
    b = list(traffic.Mix(seed=4, now=now).requests(20, 3))
    assert a == b
    assert all(len({e.get("cid") for e in orjson.loads(body)}) == 1 for body, _, _ in a)  # a batch is one client's
    settings = Settings(sites=(Site(traffic.SITE),))
    for body, ua, ip in a:
        assert len(decode_events(body, settings, batch=True)) == 3
        assert ua and ip


def test_wrk_script_quotes_bodies_and_parses_results():
    lua = wrk.script("/api/event", [(b'{"a":"\\"x\\n"}', "UA \u00e9", "1.2.3.4")], rate_per_thread=100)
    assert "function delay()" in lua and "\\034" in lua and "\\092" in lua
    out = wrk.parse('noise\nWRKJSON {"requests":10,"duration_us":2000000,"bytes":1,"connect":0,"read":0,"write":0,'
                    '"status":1,"timeout":0,"mean_us":500.0,"max_us":900,"p50_us":400,"p90_us":700,"p99_us":800,'
                    '"p999_us":850}\n')
    assert out.rate == 5 and out.p99_ms == 0.8 and out.non_2xx == 1 and not out.ok


def test_in_process_measurements_and_report(tmp_path):
    e = enrichment.run(duration_s=0.05, n_events=100)
    assert e["pipeline_us"] > 0 and e["baseline_us"] > 0 and "geo" in e["steps_us"] and e["dropped"] == 0
    u = useragent.run(n_miss=30, n_baseline=3, hit_rounds=2)
    assert u["miss_us"] > 0 and u["hit_us"] > 0
    rc = {"single": requestcpu.run(requests=64, passes=1), "batch": requestcpu.run(requests=16, passes=1, batch=True)}
    # every request answered, the collector's inline, one write each
    assert rc["single"]["inline_answers"] == 64 and rc["single"]["writes"] == {"collector": 64, "bare": 128}
    assert rc["batch"]["inline_answers"] == 16 and rc["single"]["collector_us"] > 0 and rc["single"]["bare_us"] > 0
    results = {"enrichment": e, "useragent": u, "requestcpu": rc, "errors": {"loader": "skipped"}}
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nintro\n\n" + report.MARKER + "\n\nold results\n")
    report.write(doc, results, "make bench", 1.0)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nintro") and "old results" not in text
    assert "enrichment µs/event" in text and "UA parse, cache miss" in text and "`loader` did not run" in text
    assert "Python µs per single-event request" in text


@pytest.mark.skipif(not wrk.available(), reason="wrk is not installed")
def test_wrk_drives_the_bare_app(tmp_path):
    from loadtests import beacons, servers

    app = servers.BareApp(tmp_path).start()
    try:
        res = wrk.run(app.url + "/api/event", beacons.lua("/api/event", traffic.Mix(), 20), 1, connections=4)
    finally:
        app.stop()
    assert res.requests > 0 and res.ok


def _floor_run(tmp_path, path: str, events_per_request: int, connections: int):
    """wrk against the floor app for a second: its result and the rows the app wrote."""
    import orjson

    from loadtests import beacons, geodata, servers

    mix = traffic.Mix()
    city, asn = geodata.databases(tmp_path / "mmdb", mix.ips)
    app = servers.FloorApp(tmp_path / "floor", city, asn).start()
    try:
        script = beacons.lua(path, mix, 20 if events_per_request == 1 else 10, events_per_request)
        res = wrk.run(app.url + path, script, 1, connections=connections)
    finally:
        app.stop()
    rows = [orjson.loads(line) for line in (tmp_path / "floor" / "rows.jsonl").read_bytes().splitlines()]
    return res, rows


@pytest.mark.skipif(not wrk.available(), reason="wrk is not installed")
def test_wrk_drives_the_floor_app_which_does_the_unavoidable_work(tmp_path):
    res, rows = _floor_run(tmp_path, "/api/event", 1, connections=4)
    assert res.requests > 0 and res.ok
    assert res.requests <= len(rows) <= res.requests + 4  # wrk stops with up to one request per connection unanswered
    # every row carries what the lookups, the parse and the HMAC made
    assert all(len(r["visitor_id"]) == 32 and r["browser"] for r in rows)
    assert any(r["country"] for r in rows) and any(r["asn"] for r in rows)


@pytest.mark.skipif(not wrk.available(), reason="wrk is not installed")
def test_the_floor_app_takes_batches_one_row_per_event(tmp_path):
    res, rows = _floor_run(tmp_path, "/api/batch", 20, connections=2)
    assert res.requests > 0 and res.ok
    assert 20 * res.requests <= len(rows) <= 20 * (res.requests + 2)
    assert len(rows) % 20 == 0 and all(len(r["visitor_id"]) == 32 for r in rows)


def test_request_profile_assigns_each_event_loop_sample_to_one_part():
    from loadtests.requestprofile import OTHER, parts

    loop = "<module> (x.py:1);run (uvloop/__init__.py:92);Runner.run (asyncio/runners.py:118)"
    stacks = "\n".join([
        f"{loop};BeaconApp._run_front (b.py:1);BeaconApp._admit (b.py:2);ClientIp.resolve (c.py:3) 3",
        f"{loop};BeaconApp._run_front (b.py:1);Collector.end_turn (s.py:1);Pipeline.run_many (r.py:1) 5",
        f"{loop};SharedWrite._flush (s.py:1);_tell (s.py:2);Collector._submit.<locals>.written (s.py:3) 2",
        f"{loop};main.<locals>.go (r.py:1);create_app (a.py:1) 50",  # setup: not counted
        "Thread._bootstrap (threading.py:1);Loader._run (l.py:1) 40",  # another thread: not counted
        f"{loop};Handle._run (events.py:1) 1",
    ])
    samples, shares = parts(stacks)
    assert samples == 11
    got = dict(shares)
    assert got["pipeline steps"] == 5 / 11 and got["client address, rate limit, content type"] == 3 / 11
    assert got[OTHER] == 1 / 11 and abs(sum(got.values()) - 1) < 1e-9
