"""Structured JSON logs. Every value is length-capped; control characters are escaped by JSON itself,
so a client value can never forge a log line. Client addresses, cookies and member references are
never passed to the logger in the first place.
"""

from __future__ import annotations

import json
import logging
import sys
import time

MAX_VALUE = 300


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple) and record.args:
            # each value is capped on its own, so one long value cannot push the rest out of the line
            record.args = tuple(a[:MAX_VALUE] if isinstance(a, str) else a for a in record.args)
        msg = record.getMessage()
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": msg[:MAX_VALUE * 4],
        }
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["error"] = self.formatException(record.exc_info)[-2000:]
        return json.dumps(entry, ensure_ascii=True)


def setup(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # the access log would record client addresses: it stays off
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("clickhouse_connect").setLevel("ERROR")
