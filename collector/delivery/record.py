"""The spool record: the one module that knows its layout.

A record is one stored row as a JSON object followed by two keys of its own: ``"_t"`` (the target
table) and ``"_at"`` (when it was spooled, Unix milliseconds), always last and in that order. The
loader sends records to ClickHouse as they are (JSONEachRow, unknown keys skipped), so a row is never
decoded in Python on its way to storage. The spool itself only frames opaque bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

_TABLE_KEY = b'"_t":"'
_AT_KEY = b'"_at":'


def encode(table: str, row: dict[str, Any], at_ms: int) -> bytes:
    """The record of ``row`` for ``table``, spooled at ``at_ms``."""
    if "_t" in row or "_at" in row:  # not a row's own keys: the record's keys win, last
        row = {k: v for k, v in row.items() if k not in ("_t", "_at")}
    row["_t"], row["_at"] = table, at_ms  # one serialization, the two keys last (insertion order)
    try:
        return orjson.dumps(row)
    finally:
        del row["_t"], row["_at"]


def _string_after(record: bytes, i: int, key: bytes) -> str:
    """The JSON string value of ``key`` found at ``i`` ("" when not found)."""
    if i < 0:
        return ""
    start = i + len(key)
    j = record.find(b'"', start)
    return record[start:j].decode("ascii", "replace") if j > 0 else ""


def table_of(record: bytes) -> str:
    """The target table of a record ("" when it names none)."""
    i = record.rfind(_TABLE_KEY)
    if i < 0:
        return ""
    i += len(_TABLE_KEY)
    j = record.find(b'"', i)
    if j < 0:
        return ""
    name = record[i:j]
    table = _TABLES.get(name)
    if table is None:
        table = name.decode("ascii", "replace")
        if len(_TABLES) < 64:
            _TABLES[name] = table
    return table


_TABLES: dict[bytes, str] = {}  # table names seen, by their bytes (a few tables: one decoding each)


def spooled_at(record: bytes) -> int:
    """When a record was spooled (Unix ms); 0 when unreadable."""
    i = record.rfind(_AT_KEY)
    if i < 0:
        return 0
    digits = record[i + len(_AT_KEY):].rstrip(b"} \n")
    try:
        return int(digits)
    except ValueError:
        return 0


def row_of(record: bytes) -> dict[str, Any]:
    """The stored row of a record (for dead letters and erasure); the raw text when undecodable."""
    try:
        doc = orjson.loads(record)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict):
        doc.pop("_t", None)
        doc.pop("_at", None)
        return doc
    return {"raw": record.decode("utf-8", "replace")[:2000]}


ERASED = "erased"  # the table of a record blanked by an erasure: loaded as nothing
_MEMBER_KEY = b'"member_id":"'


def member_of(record: bytes) -> str:
    """The member pseudonym a record holds ("" when none)."""
    return _string_after(record, record.find(_MEMBER_KEY), _MEMBER_KEY)


def blanked(record: bytes) -> bytes:
    """A record of the same length that holds nothing but its spool time: an erased row keeps its
    place (so offsets, checkpoints and deduplication tokens stay valid) and none of its content."""
    body = b'{"_t":"%s","_at":%d}' % (ERASED.encode(), spooled_at(record))
    if len(body) > len(record):
        body = b'{"_t":"%s"}' % ERASED.encode()
    return body[:-1] + b" " * (len(record) - len(body)) + b"}"
