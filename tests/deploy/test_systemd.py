"""The systemd units pass `systemd-analyze verify`.

`systemd-analyze verify` runs without systemd as PID 1 (it loads the units offline), so it works in a
container too. It checks syntax, every directive's value, dependencies and that ExecStart's program is
executable; unknown keys or bad values are only warnings on stderr, so the test requires a silent run.
The program path is pointed at this checkout's `collector` (the units name /opt/collector/bin/collector,
the documented install location). What it cannot check here: that User=collector exists and that the
sandboxing directives work with this kernel, which needs a booted systemd (`systemd-run` or a VM).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, need

UNITS = sorted((DEPLOY / "systemd").glob("collector*.*"))
COLLECTOR = Path(sys.executable).with_name("collector")


def verify(tmp_path, edit=lambda text: text) -> subprocess.CompletedProcess:
    for unit in UNITS:
        text = unit.read_text().replace("/opt/collector/bin/collector", str(COLLECTOR))
        (tmp_path / unit.name).write_text(edit(text))
    return subprocess.run([need("systemd-analyze", "systemd"), "verify", *(str(tmp_path / u.name) for u in UNITS)],
                          capture_output=True, text=True, timeout=120)


def test_units_are_there():
    assert {u.name for u in UNITS} == {"collector.service", "collector-doctor.service", "collector-doctor.timer"}
    assert COLLECTOR.exists()


def test_units_verify_cleanly(tmp_path):
    r = verify(tmp_path)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


@pytest.mark.parametrize("edit, why", [
    (lambda t: t.replace("Restart=on-failure", "Restart=sometimes"), "a bad value"),
    (lambda t: t.replace("UMask=0077", "UMask=0077\nFrobnicate=yes", 1), "an unknown key"),
    (lambda t: t.replace(f"{COLLECTOR} serve", "/nonexistent/collector serve"), "a missing program"),
])
def test_a_broken_unit_is_caught(tmp_path, edit, why):
    r = verify(tmp_path, edit)
    assert r.returncode != 0 or r.stderr.strip(), why


def test_the_service_runs_the_collector_behind_loopback():
    text = (DEPLOY / "systemd" / "collector.service").read_text()
    assert "ExecStart=/opt/collector/bin/collector serve" in text
    assert "Environment=COLLECTOR_HOST=127.0.0.1" in text and "KillSignal=SIGTERM" in text
    assert "StateDirectoryMode=0700" in text and "UMask=0077" in text
