"""The loader against real chDB in a temporary directory: batches, checkpoint, exactly-once across a
crash between insert and checkpoint, dead letters, transient failures."""

from __future__ import annotations

import threading
import time
import uuid

import orjson
import pytest

from collector.counts import Counts
from collector.delivery import record
from collector.delivery.checkpoint import CheckpointFile
from collector.delivery.deadletters import DeadLetters
from collector.delivery.fileio import FileIO
from collector.delivery.loader import Loader
from collector.delivery.spool import Spool
from collector.faults import FailingStore
from collector.errors import StorageError
from collector.storage.store import Store
from collector.storage import migrate
from collector.storage.columns import TABLES
from collector.testing import make_settings


class Crash(Exception):
    pass


@pytest.fixture
def env(tmp_path):
    settings = make_settings(tmp_path / "data")
    store = Store(settings.dsn, settings.database)
    migrate.apply(store, settings)
    yield settings, store
    store.close()


def row(i: int, **kw) -> bytes:
    doc: dict = {c: "" for c in TABLES["events"]}
    doc.update({"ts_clamped": 0, "engagement_ms": 0, "asn": 0})
    doc |= {"event_id": str(uuid.uuid4()), "site": "example.org",
            "ts": 1_760_000_000_000 + i, "name": "pageview", "path": f"/p/{i}", "props": {"m": str(i)}}
    doc.update(kw)
    return record.encode("events", doc, int(time.time() * 1000))


class Recorded(Counts):
    """The loader's counts, plus the size of every batch it reported."""

    def __init__(self):
        super().__init__()
        self.batches: list[int] = []

    def on_batch(self, rows: int, seconds: float) -> None:
        self.batches.append(rows)


def make(settings, store, **kw) -> tuple[Spool, Loader, Recorded]:
    spool = Spool(settings.data_dir / "spool")
    counts = Recorded()
    loader = Loader(spool, store, CheckpointFile(settings.data_dir / "checkpoint.json"),
                    DeadLetters(settings.data_dir / "deadletter", 30), counts, kw.pop("batch_size", 50), 0,
                    on_batch=counts.on_batch, **kw)
    spool.recover(loader.cp.seg, loader.cp.offset)
    return spool, loader, counts


def count(store, sql="SELECT count() FROM events") -> int:
    return store.query_rows(sql)[0][0]


def drain(loader: Loader) -> None:
    while loader.step():
        pass


def test_batches_checkpoint_and_segment_removal(env):
    settings, store = env
    spool, loader, metrics = make(settings, store)
    spool.append([row(i) for i in range(120)])
    spool.sync()
    drain(loader)
    assert count(store) == 120
    assert loader.backlog() == 0 and loader.loaded_records == 120
    assert metrics.stored["events"] == 120
    assert metrics.batches == [50, 50, 20]  # three batches of at most 50
    old = spool.active
    assert not spool.is_live(old) or spool.size(old) < 1 << 20
    spool.append([row(i) for i in range(120, 125)])
    spool.sync()
    drain(loader)
    assert count(store) == 125
    spool.close()


def test_crash_between_insert_and_checkpoint_is_deduplicated(env):
    settings, store = env
    spool, loader, _ = make(settings, store)
    spool.append([row(i) for i in range(30)])
    spool.append([record.encode("consent_ledger", {"site": "example.org", "member_id": "m", "purpose": "p",
                                                   "action": "grant", "policy_version": "1", "ts": 1}, 1)])
    spool.sync()

    def crash():
        raise Crash

    loader.after_insert = crash
    with pytest.raises(Crash):
        loader.step()
    assert loader.cp.pending is not None  # the insert landed, the checkpoint did not move
    assert count(store) == 30
    spool.close()
    spool2, loader2, metrics2 = make(settings, store)
    assert loader2.cp.pending == loader.cp.pending
    drain(loader2)
    assert count(store) == 30
    assert count(store, "SELECT count() FROM consent_ledger") == 1
    assert count(store, "SELECT count() FROM (SELECT event_id FROM events GROUP BY event_id HAVING count() > 1)") == 0
    assert metrics2.stored["events"] == 30  # replayed batch counted once, here
    spool2.close()


def test_the_advance_past_a_batch_is_written_with_the_next_pending_one_or_when_idle(env):
    """One fsynced checkpoint write per batch: the advance past a stored batch reaches the file with
    the next batch's pending checkpoint (which implies it), or once nothing is left; a crash before
    it replays only the last batch, deduplicated."""
    settings, store = env
    spool, loader, _ = make(settings, store)
    spool.append([row(i) for i in range(120)])
    spool.sync()
    written = []
    write = loader.checkpoints.write
    loader.checkpoints.write = lambda cp: (written.append(cp), write(cp))[-1]
    assert loader.step() and loader.step()
    assert [bool(cp.pending) for cp in written] == [True, True]  # two batches, no advance of their own
    on_disk = CheckpointFile(settings.data_dir / "checkpoint.json").read()
    assert on_disk.pending == written[-1].pending and loader.cp.pending is None
    spool.close()  # a crash here: the file still names batch 2 as pending
    spool2, loader2, metrics2 = make(settings, store)
    assert loader2.cp.pending == on_disk.pending
    drain(loader2)
    assert count(store) == 120
    assert count(store, "SELECT count() FROM (SELECT event_id FROM events GROUP BY event_id HAVING count() > 1)") == 0
    assert metrics2.stored["events"] == 70  # the replayed batch 2 and batch 3
    idle = CheckpointFile(settings.data_dir / "checkpoint.json").read()
    assert idle.pending is None and (idle.seg, idle.offset) == (loader2.cp.seg, loader2.cp.offset)  # written once idle
    spool2.close()


def test_permanent_rejections_are_bisected_into_dead_letters_once(env):
    settings, store = env
    spool, loader, metrics = make(settings, store)
    bad = [row(7, ts="not a time"), row(23, event_id="not-a-uuid")]
    good = [row(i) for i in range(40)]
    spool.append(good[:10] + bad[:1] + good[10:30] + bad[1:] + good[30:] + [b"\xff not json"])
    spool.sync()

    def crash():
        raise Crash

    loader.after_insert = crash
    with pytest.raises(Crash):
        loader.step()
    spool.close()
    spool2, loader2, metrics2 = make(settings, store)
    drain(loader2)
    assert count(store) == 40
    letters = [orjson.loads(line) for p in (settings.data_dir / "deadletter").glob("*.jsonl")
               for line in p.read_bytes().splitlines()]
    assert len(letters) == 3  # not written again by the replay
    reasons = sorted(x["reason"] for x in letters)
    assert reasons[0].startswith("rejected by ClickHouse") and reasons[-1] == "undecodable spool record"
    assert all(x["token"] and x["expires"] > x["at"] for x in letters)
    assert loader2.dead.count() == 3
    assert metrics.dead_lettered == 3
    spool2.close()


def test_dead_letters_expire(tmp_path):
    dead = DeadLetters(tmp_path / "dl", days=2)
    dead.write([{"a": 1}], "why", "t1")
    (tmp_path / "dl" / "20000101.jsonl").write_text('{"token":"old"}\n')
    assert dead.count() == 2
    assert dead.expire() == 1
    assert dead.count() == 1
    assert dead.write([{"a": 1}], "why", "t1") == 0
    assert dead.expire(time.time() + 4 * 86400) == 1 and dead.count() == 0


def test_transient_failure_keeps_data_and_recovers(env, tmp_path):
    settings, store = env
    flag = tmp_path / "storage-down"
    flag.touch()
    spool, loader, metrics = make(settings, FailingStore(store, flag))
    loader.flush_interval_s = 0.05
    loader.start()
    spool.append([row(i) for i in range(20)])
    spool.sync()
    deadline = time.monotonic() + 10
    while loader.healthy and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not loader.healthy and "fault drill" in loader.last_error
    assert loader.backlog() > 0 and count(store) == 0
    flag.unlink()
    assert loader.flush_wait(20)
    assert loader.healthy and count(store) == 20
    assert loader.stop(5)
    spool.close()


def test_a_flush_under_steady_appends_ends_once_what_was_spooled_before_it_is_stored(env, tmp_path):
    settings, store = env
    spool, loader, metrics = make(settings, store, batch_size=1000)
    loader.flush_interval_s = 5.0  # nothing is due on its own during the test: only the flush hurries it
    loader.start()
    spool.append([row(i) for i in range(50)])
    stop = threading.Event()

    def keep_appending():  # another record every 2 ms: the spool is never empty
        i = 50
        while not stop.is_set():
            spool.append([row(i)])
            i += 1
            time.sleep(0.002)

    writer = threading.Thread(target=keep_appending, daemon=True)
    writer.start()
    try:
        time.sleep(0.05)
        spooled = spool.appended_records  # at least these lie before the position read next
        before = spool.position()
        t0 = time.monotonic()
        assert loader.flush_wait(20)
        took = time.monotonic() - t0
        assert (loader.cp.seg, loader.cp.offset) >= before and count(store) >= spooled > 50, took
    finally:
        stop.set()
        writer.join()
    spool.sync()  # what the collector's fsync policy does for the last appends
    assert loader.stop(10) and count(store) == spool.appended_records
    spool.close()


def test_a_batch_failing_half_way_is_counted_once_when_it_is_finally_stored(env, tmp_path):
    settings, store = env
    fail = {"member_events": True}

    class HalfWay:
        """Stores events, then fails on member_events until told otherwise (a storage fault mid-batch)."""

        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def insert_json(self, table, data, token):
            if fail.get(table):
                from collector.errors import StorageError

                raise StorageError("member_events unreachable (test)")
            self.real.insert_json(table, data, token)

    spool, loader, counts = make(settings, HalfWay(store))
    member = {c: "" for c in TABLES["member_events"]} | {"ts_clamped": 0, "engagement_ms": 0, "asn": 0,
                                                         "event_id": str(uuid.uuid4()), "site": "example.org",
                                                         "ts": 1_760_000_000, "name": "pageview", "props": {}}
    spool.append([row(i) for i in range(20)] + [record.encode("member_events", member, 1)])
    spool.sync()
    for _ in range(3):
        with pytest.raises(Exception):
            loader.step()
    fail["member_events"] = False
    drain(loader)
    assert count(store) == 20
    assert counts.stored == {"events": 20, "member_events": 1}  # not 80 events for four attempts
    spool.close()


class BlockingOpen(FileIO):
    """Spool I/O whose next segment creation stops after the file exists, until released: the
    moment a rotation has made the new file but not yet switched to it."""

    def __init__(self):
        self.armed = False
        self.created = threading.Event()
        self.release = threading.Event()

    def open_append(self, path) -> int:
        fd = super().open_append(path)
        if self.armed:
            self.armed = False
            self.created.set()
            self.release.wait(10)
        return fd


def test_a_rotation_in_progress_never_lets_the_loader_skip_or_remove_a_segment(env, tmp_path):
    """A segment not yet fsynced reads as empty to the loader, and the next one exists on disk
    before the spool switches to it: neither may look like a finished segment to skip."""
    settings, store = env
    flag = tmp_path / "storage-down"
    flag.touch()
    io = BlockingOpen()
    spool = Spool(settings.data_dir / "spool", segment_bytes=4096, io=io)
    counts = Recorded()
    loader = Loader(spool, FailingStore(store, flag), CheckpointFile(settings.data_dir / "checkpoint.json"),
                    DeadLetters(settings.data_dir / "deadletter", 30), counts, 50, 0)
    spool.recover(loader.cp.seg, loader.cp.offset)
    first = spool.active
    records = [row(i) for i in range(12)]
    spool.append(records[:6])  # written, not yet fsynced: the loader may not read it
    io.armed = True
    writer = threading.Thread(target=spool.append, args=(records[6:],))  # does not fit: a new segment
    writer.start()
    assert io.created.wait(10)
    def step() -> None:
        try:
            loader.step()  # storage is down: the batch it finds fails
        except StorageError:
            pass

    stepped = threading.Thread(target=step)
    stepped.start()
    stepped.join(0.3)
    io.release.set()
    writer.join(10)
    stepped.join(10)
    assert spool.active == first + 1
    assert loader.cp.seg <= first, loader.cp
    assert spool.segments() == [first, first + 1]
    flag.unlink()
    spool.sync()
    drain(loader)
    assert loader.cp.seg == first + 1 and count(store) == 12
    spool.close()
