"""With ``collector serve --workers N`` a member's records may sit in any worker's spool: erasure
blanks them in every one, during a storage outage, and nothing of the member reaches storage after."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from collector.privacy.tokens import mint
from collector.testing import CHROME_UA, ROOT, SECRET, make_settings
from tests.faults.test_workers import WorkersProcess

PAGE = "/claims/knee-surgery-review"


def test_erasure_blanks_the_member_in_every_workers_spool(tmp_path):
    flag = tmp_path / "storage-down"
    s = make_settings(tmp_path / "data", fault_store_file=str(flag))
    proc = WorkersProcess(s, tmp_path, workers=2).start()
    ref = "MBR7100001"
    try:
        flag.touch()
        token = mint(SECRET, "example.org", ref, ["analytics_linking"], 600)
        for i in range(60):  # a new connection each time: the kernel spreads them over the workers
            body = {"n": "pageview", "u": f"https://example.org{PAGE}", "d": "example.org", "identity": token}
            assert httpx.post(proc.url + "/api/event", content=json.dumps(body),
                              headers={"Content-Type": "text/plain", "User-Agent": CHROME_UA}).status_code == 202
        spools = [p for p in (Path(s.data_dir) / "spool").rglob("*.seg") if PAGE.encode() in p.read_bytes()]
        assert len({p.parent for p in spools}) == 2, "both workers should hold some of the member's records"
        out = subprocess.run([sys.executable, "-m", "collector", "forget", "--site", "example.org", "--member-ref",
                              ref], env=proc.env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert "spool_other_workers:" in out.stdout and "did not answer" not in out.stdout, out.stdout
        held = [p for p in (Path(s.data_dir) / "spool").rglob("*.seg") if PAGE.encode() in p.read_bytes()]
        assert held == []
        flag.unlink()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = proc.metrics()
            if "collector_spool_unstored_records 0.0" in text:
                break
            time.sleep(0.3)
        assert proc.query("SELECT count() AS n FROM member_events")[0]["n"] == 0
    finally:
        assert proc.stop() == 0
