"""The dashboard benchmark in quick mode: every panel's SQL runs through the analyst sandbox on generated
events and is timed; the report renders the figure. Speed is never asserted here."""

from __future__ import annotations

from collector.http import dashboard
from loadtests import dashboard as bench
from loadtests import report


def test_every_panel_is_timed_on_generated_events(tmp_path):
    r = bench.run(n_events=3000, rounds=2)
    assert 2500 <= r["events"] <= 3500
    assert r["errors"] == {} and r["failed_loads"] == 0
    assert set(r["panels"]) == set(dashboard.PANELS)
    assert r["loads"] == 2 * 2 * len(dashboard.PANELS)  # rounds x (period, previous period) x panels
    assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["max_ms"]
    assert all(0 < p["p50_ms"] <= p["p95_ms"] for p in r["panels"].values())
    assert r["panels"]["pages"]["rows"] == 10 and r["panels"]["summary"]["rows"] == 1
    assert r["panels"]["funnel"]["rows"] == len(bench.FUNNEL) and r["panels"]["goals"]["rows"] >= 1

    results = {"dashboard": r, "errors": {}}
    assert "dashboard p95 panel load" in report.table(results)
    assert f"{r['events']:,} generated events" in report.table(results)
    assert "slowest panel" in report.details(results)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n" + report.MARKER + "\n")
    report.write(doc, results, "make bench", 1.0)
    assert "dashboard p95 panel load" in doc.read_text()
