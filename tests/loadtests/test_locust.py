"""The locust load test: a short smoke run of ``python -m loadtests.loadtest`` against a collector it starts
(real HTTP on loopback, real chDB), with storage failing for a few seconds in the middle, must end with
zero lost and zero duplicated events and the conservation counts adding up. The verdict's own logic is
checked on ledgers that say something was lost, duplicated or leaked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from collector.privacy.scrub import Scrubber
from collector.testing import ROOT
from loadtests import markers
from loadtests.verdict import Ledger, check_conservation, check_counters, judge, read_ledgers


def test_markers_are_unique_and_survive_the_scrubber():
    sc = Scrubber((r"\bMBR\d{6,}\b",))
    tag = markers.prefix(markers.random_tag(6)) + markers.random_tag(8)
    seen = {tag + markers.spell(n) for n in range(20_000)}
    assert len(seen) == 20_000
    for m in list(seen)[:3000]:
        assert sc.text(m, 2048) == m
    with pytest.raises(ValueError):
        markers.prefix("abc1")


def ledger_of(*lines: tuple[int, str, list[str]]) -> Ledger:
    led = Ledger()
    for status, cls, ms in lines:
        led.add(status, cls, ms)
    return led


def test_verdict_passes_when_everything_acknowledged_is_stored_once():
    led = ledger_of((202, "anon", ["a", "b"]), (202, "member", ["c"]), (503, "anon", ["d"]), (0, "anon", ["e"]),
                    (202, "bot", ["f"]), (-1, "anon", ["g"]))
    v = judge(led, {"events": {"a": 1, "b": 1, "e": 1}, "member_events": {"c": 1}}, 0)
    assert v.ok, v.failures
    assert (v.figures["lost"], v.figures["duplicated"], v.figures["unknown_stored"]) == (0, 0, 1)
    check_counters(v, led, accepted=5, dropped={"bot": 1}, mode="exact")  # 4 acked + 1 unknown accepted
    check_conservation(v, "collector", {"inherited": 0, "accepted": 5, "stored": 4, "dead_lettered": 0,
                                        "dropped": 1, "unstored": 0, "unaccounted": 0})
    assert v.ok, v.failures


@pytest.mark.parametrize("stored, dup_ids, expect", [
    ({"events": {"b": 1}, "member_events": {"c": 1}}, 0, "acknowledged events not stored"),
    ({"events": {"a": 2, "b": 1}, "member_events": {"c": 1}}, 0, "stored more than once"),
    ({"events": {"a": 1, "b": 1}, "member_events": {"c": 1}}, 1, "event_ids held by more than one row"),
    ({"events": {"a": 1, "b": 1, "d": 1}, "member_events": {"c": 1}}, 0, "answered 429/503 were stored"),
    ({"events": {"a": 1, "b": 1, "f": 1}, "member_events": {"c": 1}}, 0, "policy drops"),
    ({"events": {"a": 1, "b": 1, "zz": 1}, "member_events": {"c": 1}}, 0, "never sent"),
    ({"events": {"a": 1, "b": 1, "c": 1}}, 0, "other plane"),
])
def test_verdict_fails_on_loss_duplicates_and_leaks(stored, dup_ids, expect):
    led = ledger_of((202, "anon", ["a", "b"]), (202, "member", ["c"]), (429, "anon", ["d"]), (202, "bot", ["f"]))
    v = judge(led, stored, dup_ids)
    assert not v.ok
    assert any(expect in f for f in v.failures), v.failures


def test_verdict_fails_on_counts_the_ledger_cannot_explain():
    led = ledger_of((202, "anon", ["a", "b"]), (202, "bot", ["f", "g"]), (0, "bot", ["h"]))
    v = judge(led, {"events": {"a": 1, "b": 1}}, 0)
    check_counters(v, led, accepted=4, dropped={"bot": 1}, mode="exact")  # two bot events acked, one counted
    assert any("dropped{reason=bot}" in f for f in v.failures)
    v = judge(led, {"events": {"a": 1, "b": 1}}, 0)
    check_counters(v, led, accepted=9, dropped={"bot": 2}, mode="upper")
    assert any("collector_events_accepted" in f for f in v.failures)
    v = judge(led, {"events": {"a": 1, "b": 1}}, 0)
    check_conservation(v, "collector", {"inherited": 3, "accepted": 5, "stored": 4, "dead_lettered": 0,
                                        "dropped": 2, "unstored": 0, "unaccounted": 2})
    assert any("inherited + accepted" in f for f in v.failures)


def test_a_ledger_line_cut_short_is_skipped(tmp_path):
    (tmp_path / "ledger-bcdfghjk.tsv").write_text("202\tanon\ta,b\n503\tanon\tc\n20")
    led = read_ledgers(tmp_path)
    assert led.markers == {"a": (202, "anon"), "b": (202, "anon"), "c": (503, "anon")}


def test_locust_smoke_run_loses_and_duplicates_nothing(tmp_path):
    """Every journey for 20 s with 24 users, storage failing from 6 s to 11 s: the spool holds the backlog,
    then drains; every acknowledged event stored exactly once."""
    out = tmp_path / "lt"
    proc = subprocess.run(
        [sys.executable, "-m", "loadtests.loadtest", "--users", "24", "--spawn-rate", "24", "--duration", "20",
         "--think", "0.5", "--store-outage", "6:5", "--drain-timeout", "60", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=150)
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    verdict = json.loads((out / "verdict.json").read_text())
    f = verdict["figures"]
    assert verdict["ok"] and not verdict["failures"]
    assert f["lost"] == 0 and f["duplicated"] == 0 and f["phantom"] == 0
    by = f["events_by_class"]
    assert by["anon"]["acked"] > 200 and by["member"]["acked"] > 20
    assert by["bot"]["acked"] > 0 and by["origin"]["acked"] > 0
    assert f["stored_by_table"]["member_events"] >= by["member"]["acked"]
    # the drops the ledger expects are the drops the collector counted, reason by reason
    assert f["counters"]["dropped{reason=bot}"]["counted"] >= by["bot"]["acked"] > 0
    assert f["counters"]["dropped{reason=origin}"]["counted"] >= by["origin"]["acked"] > 0
    [c] = f["conservation"].values()
    assert c["unaccounted"] == 0 and c["unstored"] == 0 and c["accepted"] == c["stored"] + c["dropped"]
    assert [x["kind"] for x in f["faults"]] == ["store"]
    names = {r["Name"] for r in csv_rows(out / "locust_stats.csv")}
    assert {"/api/batch", "/p.gif", "/api/event pageview", "/api/event engagement", "/api/event Site Search"} <= names
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "loadtest.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "verdict: PASS" in proc.stdout


def csv_rows(path):
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_locust_against_a_running_collector_through_its_internal_http_listener(tmp_path):
    """``LOADTEST_URL`` + ``LOADTEST_INTERNAL`` (an http URL here): the same locustfile and verdict against a
    collector the command did not start; counters are judged by their lower bound only."""
    from collector.testing import SECRET, CollectorProcess, free_port, make_settings

    port = free_port()
    proc = CollectorProcess(make_settings(tmp_path / "data", internal_port=port), tmp_path).start()
    try:
        env = {"LOADTEST_URL": proc.url, "LOADTEST_INTERNAL": f"http://127.0.0.1:{port}",
               "LOADTEST_ADMIN_TOKEN": proc.settings.admin_token, "LOADTEST_SITE_SECRET": SECRET,
               "LOADTEST_USERS": "12", "LOADTEST_SPAWN_RATE": "12", "LOADTEST_DURATION": "8", "LOADTEST_THINK": "0.5",
               "LOADTEST_OUT": str(tmp_path / "lt")}
        run = subprocess.run([sys.executable, "-m", "loadtests.loadtest"], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, env={**os.environ, **env})
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        f = json.loads((tmp_path / "lt" / "verdict.json").read_text())["figures"]
        assert f["lost"] == 0 and f["duplicated"] == 0 and f["events_acked"] > 50
        assert "origin" not in f["events_by_class"]  # the deployment's origin allow-list is not known here
        assert f["events_by_class"]["member"]["acked"] > 0
        assert f["target"] == proc.url
    finally:
        assert proc.stop() == 0
