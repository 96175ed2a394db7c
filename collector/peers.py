"""Erasure across the workers of ``collector serve --workers N``: each worker owns its spool and dead
letters, so the process that runs ``forget`` asks the others to blank the member's records and waits
for each to confirm.

The request is a file in ``DATA_DIR/erasing/`` (0700; the member pseudonym for the seconds the
handshake lasts, then removed); each worker polls that folder, blanks its spool and dead letters under
its loader's lock, and answers with a file of its own naming how many records it blanked.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from pathlib import Path

from collector.delivery import record
from collector.files import write_synced

log = logging.getLogger("collector.peers")
POLL_S = 0.2


def folder(root: Path) -> Path:
    path = Path(root) / "erasing"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


class PeerErasure:
    """The requesting side (the owner worker)."""

    def __init__(self, root: Path, workers: int, timeout_s: float = 20.0):
        self.dir = folder(root)
        self.workers = workers
        self.timeout_s = timeout_s

    def __call__(self, site: str, member_id: str) -> dict[str, int | str]:
        rid = secrets.token_hex(8)
        request = self.dir / f"{rid}.request"
        write_synced(request, json.dumps({"site": site, "member_id": member_id}).encode())
        want = {self.dir / f"{rid}.{k}.done" for k in range(1, self.workers)}
        deadline = time.monotonic() + self.timeout_s
        try:
            while time.monotonic() < deadline and not all(p.exists() for p in want):
                time.sleep(POLL_S / 2)
            done = [p for p in want if p.exists()]
            blanked = sum(int(json.loads(p.read_text()).get("blanked", 0)) for p in done)
        finally:
            request.unlink(missing_ok=True)
            for p in want:
                p.unlink(missing_ok=True)
        if len(done) < len(want):
            return {"spool_other_workers": f"{len(want) - len(done)} worker(s) did not answer"}
        return {"spool_other_workers": blanked}


def follow(svc, worker: int) -> None:
    """The answering side, a thread in every worker K > 0."""
    d = folder(svc.parts.data.root)
    seen: set[str] = set()
    while True:
        for request in sorted(d.glob("*.request")):
            rid = request.stem
            if rid in seen:
                continue
            try:
                doc = json.loads(request.read_text())
            except (FileNotFoundError, ValueError):
                continue
            member_id = doc.get("member_id", "")

            def blank(rec: bytes) -> bytes | None:
                return record.blanked(rec) if record.member_of(rec) == member_id else None

            with svc.loader.lock:
                n = svc.spool.rewrite(blank) + svc.loader.dead.forget(doc.get("site", ""), member_id)
            write_synced(d / f"{rid}.{worker}.done", json.dumps({"blanked": n}).encode())
            seen.add(rid)
            log.info("worker %d blanked %d record(s) for an erasure", worker, n)
        if len(seen) > 1000:
            seen = {s for s in seen if (d / f"{s}.request").exists()}
        time.sleep(POLL_S)


def start_follower(svc, worker: int) -> None:
    threading.Thread(target=follow, args=(svc, worker), daemon=True, name="erasure-follower").start()


__all__ = ["PeerErasure", "follow", "start_follower"]
