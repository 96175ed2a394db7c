"""SIGTERM under load: readiness turns unhealthy first, in-flight requests finish, the spool is
flushed and fsynced, the loader drains within the deadline, exit 0, nothing acknowledged lost.
Runs with ``fsync = always`` (group commit) so that policy is exercised under load too."""

from __future__ import annotations

import signal
import threading
import time

import httpx

from tests.faults.harness import Ledger, Load, assert_exactly_once, assert_quiescent_conservation, fault_settings
from collector.testing import CollectorProcess


def test_sigterm_under_load(tmp_path):
    settings = fault_settings(tmp_path / "data", fsync="always", shutdown_deadline_s=15.0)
    ledger = Ledger()
    proc = CollectorProcess(settings, tmp_path).start()
    readiness: list[tuple[float, int]] = []
    stop_polling = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=2) as client:
            while not stop_polling.is_set():
                try:
                    readiness.append((time.monotonic(), client.get(proc.url + "/readyz").status_code))
                except httpx.HTTPError:
                    readiness.append((time.monotonic(), 0))
                time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    with Load(proc.url, ledger, "s", threads=3):
        time.sleep(1.5)
        assert ledger.acked
        poller.start()
        time.sleep(0.1)
        signalled = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        code = proc.proc.wait(30)
        proc.proc = None
    stop_polling.set()
    poller.join(5)
    assert code == 0
    after = [status for t, status in readiness if t > signalled + 0.05]
    assert 503 in after, "readiness never turned unhealthy"
    first_503 = after.index(503)
    assert 0 not in after[:first_503], "the listener closed before readiness turned unhealthy"
    assert 200 not in after[first_503:], "readiness came back during shutdown"
    assert "spool drained" in proc.log_path.read_text()
    assert set(ledger.other_status) <= {503}, ledger.other_status  # no 5xx other than 'shutting down'
    # A connection the kernel accepted in the instant the listener closed is reset before the server
    # reads from it: the client gets no answer (counted in ledger.broken and ledger.unknown). Such a
    # request was never processed, so it is not acknowledged and must simply not be stored twice; every
    # request the server did read was answered (other_status above, acknowledged ones stored below).
    proc.start()
    try:
        c = assert_quiescent_conservation(proc)
        assert c["inherited"] == 0  # everything acknowledged was stored before the exit
        stored = assert_exactly_once(proc, ledger)
        assert len(stored) >= len(ledger.acked)
    finally:
        assert proc.stop() == 0
    print(f"SIGTERM: {len(ledger.acked)} acknowledged, {len(stored)} stored, {len(ledger.unknown)} unanswered, "
          f"{len(ledger.refused)} refused while shutting down, {ledger.broken} broken connections")
