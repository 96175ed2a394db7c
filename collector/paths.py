"""The data directory's layout: every file and folder the collector keeps, named once.

The directory and everything in it belong to the service user alone (directories 0700, files 0600).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PRIVATE_DIR = 0o700


@dataclass(frozen=True)
class DataDir:
    root: Path
    worker: int = 0  # ``collector serve --workers N``: worker K > 0 has its own spool, checkpoint, dead letters

    @classmethod
    def of(cls, settings) -> "DataDir":
        return cls(Path(settings.data_dir))

    def for_worker(self, k: int) -> "DataDir":
        return DataDir(self.root, k)

    def worker_spools(self) -> list[int]:
        """Workers (K > 0) whose spool directories exist, in order."""
        out = []
        for p in (self.root / "spool").glob("worker-*"):
            if p.is_dir() and p.name[7:].isdigit():
                out.append(int(p.name[7:]))
        return sorted(out)

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def consent(self) -> Path:
        return self.root / "consent.jsonl"

    @property
    def spool(self) -> Path:
        return self.root / "spool" / f"worker-{self.worker}" if self.worker else self.root / "spool"

    @property
    def spool_id(self) -> Path:
        """A random name of the spool, made once: the prefix of its batches' deduplication tokens, so that
        spools loading into one storage (workers, collectors) never share a token."""
        return self.spool.parent / f"worker-{self.worker}.id" if self.worker else self.root / "spool.id"

    @property
    def checkpoint(self) -> Path:
        return self.root / "spool" / f"worker-{self.worker}.checkpoint.json" if self.worker else \
            self.root / "checkpoint.json"

    @property
    def dead_letters(self) -> Path:
        return self.root / "deadletter" / f"worker-{self.worker}" if self.worker else self.root / "deadletter"

    @property
    def pending_erasures(self) -> Path:
        return self.root / "erasures.pending"

    @property
    def clickhouse(self) -> Path:
        return self.root / "clickhouse"

    @property
    def admin_token(self) -> Path:
        return self.root / "admin.token"

    @property
    def analyst_token(self) -> Path:
        return self.root / "analyst.token"

    @property
    def admin_socket(self) -> Path:
        return self.root / "admin.sock"

    @property
    def identity(self) -> Path:
        """The running collector's proof of identity for the CLI (see ``collector.cli.backend``)."""
        return self.root / "instance.json"

    def ensure(self) -> "DataDir":
        """Create the directory (0700); tighten it when an earlier version left it readable by others."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.root.stat().st_mode & 0o077:
            os.chmod(self.root, PRIVATE_DIR)
        return self
