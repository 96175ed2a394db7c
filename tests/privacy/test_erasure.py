"""Erasure reaches every place the product writes: rows still in the spool (during a storage outage)
and rows already stored, the spool segments that held them, dead letters, and ClickHouse, including
its mutation entries and files. Afterwards nothing on disk holds the member's pseudonym or pages."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from collector.privacy.tokens import mint
from collector.testing import CHROME_UA, ROOT, SECRET, CollectorProcess, make_settings

PAGE = "/claims/knee-surgery-review"  # the member's own page (letters only: the scrubber keeps it)


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "collector", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def send_member(proc, ref, n=3, path=PAGE):
    token = mint(SECRET, "example.org", ref, ["analytics_linking"], 600)
    for _ in range(n):
        body = {"n": "pageview", "u": f"https://example.org{path}", "d": "example.org", "identity": token}
        assert httpx.post(proc.url + "/api/event", content=json.dumps(body),
                          headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA}).status_code == 202


def send_anonymous(proc, n=5):
    for i in range(n):
        body = {"n": "pageview", "u": "https://example.org/plans", "d": "example.org", "cid": f"abcdefg.anon{i:04d}x"}
        assert httpx.post(proc.url + "/api/event", content=json.dumps(body),
                          headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA}).status_code == 202


def holding(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            data = p.read_bytes()
            found += [f"{p.relative_to(root)}: {n!r}" for n in needles if n in data]
    return found


def member_id_of(proc, ref) -> str:
    from collector.assembly import keystore
    from collector.paths import DataDir
    from collector.privacy.erasure import member_pseudonym

    s = proc.settings
    return member_pseudonym(keystore(s, DataDir.of(s)), "example.org", ref)


def test_erasure_during_an_outage_blanks_the_spool_and_deletes_stored_rows_once_storage_answers(tmp_path):
    flag = tmp_path / "storage-down"
    s = make_settings(tmp_path / "data", fault_store_file=str(flag))
    proc = CollectorProcess(s, tmp_path).start()
    ref = "MBR7000001"
    try:
        send_member(proc, ref, 2, path="/claims/before-outage")
        proc.flush()  # stored
        flag.touch()  # storage fails from now on
        send_member(proc, ref, 3)
        send_anonymous(proc)
        time.sleep(0.5)
        out = cli(proc.env, "forget", "--site", "example.org", "--member-ref", ref)
        assert out.returncode == 0, out.stderr
        assert "spool: 5 removed" in out.stdout and "pending" in out.stdout, out.stdout  # 2 stored, 3 not yet
        member_id = member_id_of(proc, ref)
        # nothing the product wrote holds the member's rows readably, though storage has not answered yet
        spool_dir = Path(s.data_dir) / "spool"
        assert holding(spool_dir, [member_id.encode(), PAGE.encode()]) == []
        flag.unlink()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.query("SELECT count() AS n FROM member_events")[0]["n"]:
            time.sleep(0.2)
        proc.flush()
        assert proc.query("SELECT count() AS n FROM member_events")[0]["n"] == 0
        assert proc.query("SELECT count() AS n FROM events")[0]["n"] == 5  # everyone else's rows arrive
        text = proc.metrics()
        assert 'collector_events_dropped_total{reason="erased"} 3.0' in text
        assert "collector_spool_unstored_records 0.0" in text
        found = holding(Path(s.data_dir), [member_id.encode(), PAGE.encode(), b"/claims/before-outage", ref.encode()])
    finally:
        assert proc.stop() == 0
    # what stays is the documented tombstone: the consent state's erasure marker (so tokens issued
    # before the erasure never link again)
    assert found == [f"consent.jsonl: {member_id.encode()!r}"], found


def test_erasure_blanks_spool_segments_already_stored_and_leaves_no_pseudonym_in_mutations(tmp_path):
    s = make_settings(tmp_path / "data")
    proc = CollectorProcess(s, tmp_path).start()
    ref = "MBR7000002"
    try:
        send_member(proc, ref, 4)
        send_anonymous(proc, 3)
        proc.flush()
        member_id = member_id_of(proc, ref)
        spool_dir = Path(s.data_dir) / "spool"
        assert holding(spool_dir, [member_id.encode()])  # stored, but still in the active segment
        out = cli(proc.env, "forget", "--site", "example.org", "--member-ref", ref)
        assert out.returncode == 0 and "member_events: 4 removed" in out.stdout, out.stdout + out.stderr
        assert holding(spool_dir, [member_id.encode(), PAGE.encode()]) == []
        assert holding(Path(s.data_dir) / "clickhouse", [member_id.encode(), PAGE.encode()]) == []
        assert proc.query("SELECT count() AS n FROM events")[0]["n"] == 3
        again = cli(proc.env, "forget", "--site", "example.org", "--member-ref", ref)
        assert "nothing found for this member" in again.stdout
        unknown = cli(proc.env, "forget", "--site", "nowhere.example", "--member-ref", ref)
        assert unknown.returncode != 0 and "unknown site" in unknown.stderr
    finally:
        assert proc.stop() == 0
