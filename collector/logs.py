"""Structured JSON logs. Every value is length-capped; control characters are escaped by JSON itself,
so a client value can never forge a log line. Client addresses, cookies and member references are
never passed to the logger in the first place; as a second line, every message is redacted before
it is written, at any level and from any library: IP addresses other than loopback and unspecified
ones, and the values of Cookie, Authorization, X-Forwarded-For and similar headers.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import sys
import time

MAX_VALUE = 300
_IPV4 = re.compile(r"(?<![\d.])(?!127\.|0\.0\.0\.0)(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])[0-9a-fA-F:]*:[0-9a-fA-F:]*:[0-9a-fA-F:.]*(?![\w:])")
_SECRET_HEADERS = re.compile(
    r"((?:cookie|set-cookie|authorization|proxy-authorization|x-forwarded-for|x-real-ip|forwarded|"
    r"x-collector-signature)['\"]?\s*[:=,]\s*b?['\"]?)[^'\"\r\n]*", re.IGNORECASE)


def redact(text: str) -> str:
    text = _SECRET_HEADERS.sub(lambda m: m.group(1) + "[redacted]", text)
    text = _IPV4.sub("[ip]", text)
    return _IPV6.sub(_v6, text) if "::" in text or text.count(":") >= 4 else text


def _v6(m: re.Match) -> str:
    try:
        addr = ipaddress.IPv6Address(m.group(0))
    except ValueError:
        return m.group(0)
    return m.group(0) if addr.is_loopback or addr.is_unspecified else "[ip]"


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
            "msg": redact(msg[:MAX_VALUE * 4]),
        }
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["error"] = redact(self.formatException(record.exc_info)[-2000:])
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
