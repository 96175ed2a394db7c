"""The loader's checkpoint: how far the spool is stored, and the batch being inserted (*pending*)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from collector.files import replace_synced


@dataclass
class Checkpoint:
    seg: int = 0
    offset: int = 0
    pending: tuple[int, int, int] | None = None  # (seg, start, end)


class CheckpointFile:
    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> Checkpoint:
        try:
            doc = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return Checkpoint()
        pending = tuple(doc["pending"]) if doc.get("pending") else None
        return Checkpoint(int(doc.get("seg", 0)), int(doc.get("offset", 0)), pending)  # type: ignore[arg-type]

    def write(self, cp: Checkpoint) -> None:
        data = json.dumps({"seg": cp.seg, "offset": cp.offset, "pending": list(cp.pending) if cp.pending else None})
        # no directory fsync: if the rename is lost, the previous checkpoint replays a pending batch,
        # which the deduplication token makes harmless
        replace_synced(self.path, data.encode(), sync_dir=False)
