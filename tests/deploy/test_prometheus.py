"""The alert rules and the operations dashboard, against promtool and the metrics a collector exposes."""

from __future__ import annotations

import json
import re
import subprocess

import httpx
import pytest
import yaml

from collector.metrics import version
from collector.testing import CHROME_UA, ROOT, CollectorProcess, make_settings
from tests.deploy.conftest import DEPLOY, need

ALERTS = DEPLOY / "prometheus" / "alerts.yml"
NAME = re.compile(r"\b(collector_[a-z_]+)")


def promtool(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([need("promtool", "prometheus"), *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_alert_rules_pass_promtool_check_and_their_unit_tests():
    r = promtool("check", "rules", str(ALERTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 8 rules found" in r.stdout
    r = promtool("test", "rules", "alerts_test.yml", cwd=ALERTS.parent)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_required_alert_is_there():
    rules = {r["alert"]: r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    wanted = {"CollectorSpoolFilling": "collector_spool_bytes", "CollectorOldestUnstoredEvent": "collector_oldest_unstored_seconds",
              "CollectorStorageUnhealthy": "collector_storage_healthy", "CollectorRefusingEvents": "collector_events_refused_total",
              "CollectorDeadLetters": "collector_events_dead_lettered_total"}
    for alert, metric in wanted.items():
        assert metric in rules[alert]["expr"], alert


def test_example_prometheus_config_is_valid(tmp_path):
    cfg = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    cfg["rule_files"] = [str(ALERTS)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    r = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_broken_rule_is_caught(tmp_path):
    """promtool really checks: the same file with an invalid expression fails."""
    bad = ALERTS.read_text().replace("collector_storage_healthy == 0", "collector_storage_healthy ==")
    (tmp_path / "alerts.yml").write_text(bad)
    assert promtool("check", "rules", str(tmp_path / "alerts.yml")).returncode != 0


@pytest.fixture(scope="module")
def exposed(tmp_path_factory):
    """The /metrics text of a running collector after an event was stored."""
    d = tmp_path_factory.mktemp("metrics")
    proc = CollectorProcess(make_settings(d / "data"), d).start()
    try:
        r = httpx.post(proc.url + "/api/event", content='{"n":"pageview","u":"https://example.org/","d":"example.org"}',
                       headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA})
        assert r.status_code == 202
        proc.flush()
        yield proc.metrics()
    finally:
        assert proc.stop() == 0


def test_metrics_have_build_info_and_no_created_series(exposed):
    assert re.search(r'^collector_build_info\{python="3\.\d+\.\d+",version="%s"\} 1\.0$' % re.escape(version()),
                     exposed, re.M), exposed
    assert version() != "unknown"
    assert "_created" not in exposed
    assert "collector_insert_seconds_count 1.0" in exposed  # the histograms are there, without _created


def test_metrics_pass_promtool_lint(exposed):
    r = subprocess.run([need("promtool", "prometheus"), "check", "metrics"], input=exposed, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def series_names(text: str) -> set[str]:
    """Every series name a family declares (a labelled counter may have no sample yet)."""
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.update(m.group(1) + suffix for suffix in SUFFIXES.get(m.group(2), ("",)))
    # a labelled counter is rendered only once it has a sample, and the workers' own gauges only with
    # several workers: take their names from where they are declared
    for path in (ROOT / "collector").rglob("*.py"):
        for kind, name in re.findall(r'\b(counter|gauge|GaugeMetricFamily)\(\s*"(collector_\w+)"', path.read_text()):
            names.add(name + ("_total" if kind == "counter" else ""))
    return names


def test_alerts_and_dashboard_use_only_exposed_metrics(exposed):
    names = series_names(exposed)
    rules = [r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    dash = json.loads((DEPLOY / "grafana" / "operations.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    used = {m for e in rules + exprs for m in NAME.findall(e)}
    assert len(used) >= 15
    assert used - names == set(), f"not exposed: {sorted(used - names)}"


def test_operations_dashboard_is_a_prometheus_dashboard():
    dash = json.loads((DEPLOY / "grafana" / "operations.json").read_text())
    assert dash["uid"] == "collector-operations"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["type"] == "prometheus" and p["targets"], p["title"]
    titles = {p["title"] for p in dash["panels"]}
    assert {"Storage healthy", "Spool used (of quota)", "Oldest unstored event", "Events refused / s (503)",
            "Dead-lettered rows"} <= titles
