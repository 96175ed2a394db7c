"""Storage work yields the CPU to requests.

The embedded engine runs inserts, materialized views and merges on threads of the collector's own
process, and the loader thread feeds it. On a small machine those threads compete with the event
loop for the same cores, and whatever they take from it is request latency. ``yield_to_requests``
gives them a lower scheduling priority (a higher nice value; Linux schedules threads one by one), so
the event loop runs first and storage runs on what is left. Below the maximum rate nothing changes
but latency; at the maximum the spool (durable, bounded by its quota) holds what the loader has not
stored yet, and the loader catches up as soon as requests leave it CPU.

The loader thread lowers its own priority when it starts, so engine threads it causes to exist
inherit it; it also sweeps the process's threads every few seconds for threads the engine started
elsewhere. Threads Python started for the request side (the event loop, ``asyncio.to_thread``
workers for fsync and admin work) keep their priority. A nice value can only be raised without
privileges, which is all this does; where threads cannot be listed or reniced, nothing changes.
"""

from __future__ import annotations

import os
import threading

TASKS = "/proc/self/task"


def native_threads() -> list[int]:
    """The kernel thread ids of this process ([] where they cannot be listed)."""
    try:
        return [int(t) for t in os.listdir(TASKS)]
    except (OSError, ValueError):
        return []


def niceness(tid: int) -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, tid)
    except (OSError, AttributeError):
        return None


def lower(tid: int, nice: int) -> bool:
    """Raise ``tid``'s nice value to ``nice`` (never lower it). True when it changed."""
    current = niceness(tid)
    if current is None or current >= nice:
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:
        return False
    return True


def request_side(storage: threading.Thread | None = None) -> set[int]:
    """The threads Python started (the event loop's and its workers), except ``storage``."""
    return {t.native_id for t in threading.enumerate() if t is not storage and t.native_id is not None}


def yield_to_requests(nice: int, keep: set[int]) -> int:
    """Give every thread of this process outside ``keep`` the nice value ``nice``; returns how many
    changed. ``nice`` 0 turns it off."""
    if nice <= 0:
        return 0
    return sum(lower(tid, nice) for tid in native_threads() if tid not in keep)
