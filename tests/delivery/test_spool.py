"""The spool on real files: framing, deterministic scans, recovery of torn and corrupt data, quota and
disk full (a real tmpfs when running as root, else an injected ENOSPC)."""

from __future__ import annotations

import errno
import os
import subprocess

import orjson
import pytest

from collector.delivery.fileio import FileIO
from collector.delivery.spool import HEADER, Spool, SpoolFull, estimate_records, frame, scan
from collector.faults import DiskFullIO


class ScriptedIO(FileIO):
    """File I/O whose writes go through ``fn`` while it is set (a model of a failing disk)."""

    def __init__(self):
        self.fn = None

    def write(self, fd, data):
        return self.fn(fd, data) if self.fn else os.write(fd, data)


def payloads(n: int, start: int = 0) -> list[bytes]:
    return [orjson.dumps({"_t": "events", "_at": 1000 + i, "i": i, "pad": "x" * 50}) for i in range(start, start + n)]


def ids(sp: Spool, seg: int = 0, offset: int = 0) -> list[int]:
    return [orjson.loads(p)["i"] for _, _, p in sp.records_after(seg, offset)]


def fresh(tmp_path, **kw) -> Spool:
    sp = Spool(tmp_path / "spool", **kw)
    sp.recover()
    return sp


def test_append_and_read_back_whole_records(tmp_path):
    sp = fresh(tmp_path)
    sp.append(payloads(3))
    sp.append(payloads(2, 3))
    assert ids(sp) == [0, 1, 2, 3, 4]
    # the loader only sees fsynced bytes of the active segment
    assert sp.read(sp.active, 0, 100).records == []
    sp.sync()
    r = sp.read(sp.active, 0, 2)
    assert [orjson.loads(p)["i"] for _, p in r.records] == [0, 1]
    # reading from an offset the scan returned continues exactly there
    r2 = sp.read(sp.active, r.records[-1][0], 100)
    assert [orjson.loads(p)["i"] for _, p in r2.records] == [2, 3, 4]
    assert r2.end == sp.size(sp.active) == sp.synced_size


def test_reads_within_a_byte_budget_continue_where_they_stopped(tmp_path):
    sp = fresh(tmp_path)
    sp.append(payloads(50))
    sp.sync()
    got, offset, reads = [], 0, 0
    while True:
        r = sp.read(sp.active, offset, 1000, max_bytes=300)  # about three records a read
        if not r.records:
            break
        assert not r.torn and not r.damaged  # a record cut by the budget is not damage
        got += [orjson.loads(p)["i"] for _, p in r.records]
        offset, reads = r.records[-1][0], reads + 1
        assert r.more == (offset < sp.size(sp.active))
    assert got == list(range(50)) and reads > 10


def test_segments_rotate_and_numbers_only_grow(tmp_path):
    sp = fresh(tmp_path, segment_bytes=4096)
    for i in range(150):
        sp.append(payloads(1, i))
    assert len(sp.segments()) > 1
    assert ids(sp) == list(range(150))
    sp.close()
    last = max(sp.segments())
    sp2 = Spool(tmp_path / "spool", segment_bytes=4096)
    sp2.recover()
    assert sp2.active == last + 1
    # a checkpoint past every file (all loaded and removed) still moves numbering beyond it
    for s in sp2.segments():
        sp2.path(s).unlink()
    sp2.close()
    sp3 = Spool(tmp_path / "spool")
    sp3.recover(checkpoint_seg=500, checkpoint_offset=0)
    assert sp3.active == 501


def test_torn_tail_is_quarantined_and_truncated(tmp_path):
    sp = fresh(tmp_path)
    sp.append(payloads(5))
    sp.close()
    seg = sp.active
    path = sp.path(seg)
    whole = path.stat().st_size
    with open(path, "ab") as f:  # a record cut short by a crash mid-write
        f.write(frame(payloads(1, 5)[0])[:25])
    sp2 = Spool(tmp_path / "spool")
    rec = sp2.recover()
    assert (rec.torn_tails, rec.torn_records, rec.records) == (1, 1, 5)
    assert path.stat().st_size == whole
    assert (tmp_path / "spool" / "quarantine" / f"{seg:012d}-{whole}.tail").stat().st_size == 25
    assert ids(sp2) == [0, 1, 2, 3, 4]
    sp2.append(payloads(1, 9))  # later records still load
    assert ids(sp2) == [0, 1, 2, 3, 4, 9]


def test_flipped_checksum_byte_is_skipped_and_quarantined_once(tmp_path):
    sp = fresh(tmp_path)
    recs = payloads(6)
    sp.append(recs)
    sp.close()
    path = sp.path(sp.active)
    buf = bytearray(path.read_bytes())
    rec_len = len(frame(recs[0]))
    buf[2 * rec_len + 7] ^= 0xFF  # a crc byte of record 2
    buf[4 * rec_len + HEADER.size + 10] ^= 0x01  # a payload byte of record 4
    path.write_bytes(bytes(buf))
    first = scan(bytes(buf))
    assert [orjson.loads(p)["i"] for _, p in first.records] == [0, 1, 3, 5]
    assert first.damaged == [(2 * rec_len, 3 * rec_len), (4 * rec_len, 5 * rec_len)]
    assert scan(bytes(buf)) == first  # deterministic
    sp2 = Spool(tmp_path / "spool")
    rec = sp2.recover()
    assert (rec.damaged_ranges, rec.damaged_records, rec.records) == (2, 2, 4)
    assert len(list((tmp_path / "spool" / "quarantine").glob("*.bad"))) == 2
    assert ids(sp2) == [0, 1, 3, 5]
    sp2.close()
    again = Spool(tmp_path / "spool").recover()
    assert again.damaged_ranges == 0 and again.records == 4  # counted once across restarts


def test_damaged_header_resynchronises(tmp_path):
    sp = fresh(tmp_path)
    recs = payloads(4)
    sp.append(recs)
    sp.close()
    path = sp.path(sp.active)
    buf = bytearray(path.read_bytes())
    buf[len(frame(recs[0]))] ^= 0xFF  # magic of record 1
    path.write_bytes(bytes(buf))
    assert [orjson.loads(p)["i"] for _, p in scan(bytes(buf)).records] == [0, 2, 3]


def test_damage_before_the_checkpoint_is_left_alone(tmp_path):
    sp = fresh(tmp_path)
    recs = payloads(4)
    sp.append(recs)
    sp.close()
    path = sp.path(sp.active)
    buf = bytearray(path.read_bytes())
    buf[HEADER.size + 3] ^= 0xFF  # record 0, already stored
    path.write_bytes(bytes(buf))
    rec = Spool(tmp_path / "spool").recover(sp.active, 2 * len(frame(recs[0])))
    assert rec.damaged_ranges == 0 and rec.records == 2


def test_estimate_records():
    data = b"".join(frame(p) for p in payloads(3))
    assert estimate_records(data) == 3
    assert estimate_records(b"garbage") == 1


def test_quota_refuses_without_writing(tmp_path):
    sp = fresh(tmp_path, quota_bytes=64 * 1024, segment_bytes=8192)
    n = 0
    with pytest.raises(SpoolFull, match="quota"):
        while True:
            sp.append(payloads(1, n))
            n += 1
    assert sp.total_bytes <= 64 * 1024
    assert ids(sp) == list(range(n))
    # space comes back when stored segments are removed
    for s in sp.segments()[:-1]:
        sp.remove(s)
    sp.append(payloads(1, 999))


def test_fully_stored_active_segment_rotates(tmp_path):
    sp = fresh(tmp_path)
    sp.append(payloads(3))
    seg, size = sp.active, sp.size(sp.active)
    assert not sp.rotate_if_stored(seg, size - 1, 0)
    assert not sp.rotate_if_stored(seg, size, size + 1)
    assert sp.rotate_if_stored(seg, size, 0)
    assert sp.active == seg + 1 and not sp.is_live(seg)
    sp.remove(seg)
    assert sp.total_bytes == 0


def _check_clean(sp: Spool) -> None:
    for s in sp.segments():
        r = scan(sp.path(s).read_bytes())
        assert not r.damaged and not r.torn, f"segment {s} is damaged"


def test_injected_enospc_cuts_partial_write_back(tmp_path):
    io = ScriptedIO()
    sp = fresh(tmp_path, io=io)
    sp.append(payloads(2))
    real_write = os.write
    mode = {"v": "short"}

    def failing_write(fd, data):
        real_write(fd, bytes(data)[: len(data) // 2])  # half lands on disk first
        if mode["v"] == "short":
            return len(data) // 2
        raise OSError(errno.ENOSPC, "No space left on device")

    io.fn = failing_write
    with pytest.raises(SpoolFull, match="disk full"):
        sp.append(payloads(3, 2))
    mode["v"] = "raise"
    with pytest.raises(SpoolFull, match="disk full"):
        sp.append(payloads(3, 2))
    io.fn = None
    _check_clean(sp)
    sp.append(payloads(1, 7))
    assert ids(sp) == [0, 1, 7]


@pytest.fixture
def tiny_fs(tmp_path):
    """A 256 KiB tmpfs (root), or None when this process may not mount."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if os.geteuid() != 0:
        yield None
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_disk_full(tiny_fs, tmp_path):
    io = ScriptedIO()
    sp = Spool(tiny_fs / "spool" if tiny_fs else tmp_path / "spool", segment_bytes=32 * 1024, quota_bytes=10 << 20,
               io=io)
    if tiny_fs is None:  # not root: the same contract through an injected ENOSPC
        real_write, budget = os.write, {"left": 200_000}

        def write(fd, data):
            if budget["left"] <= 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            n = real_write(fd, bytes(data)[: budget["left"]])
            budget["left"] -= n
            return n

        io.fn = write
    sp.recover()
    n = 0
    with pytest.raises(SpoolFull, match="disk full"):
        while True:
            sp.append(payloads(5, n))
            n += 5
    assert n > 0
    _check_clean(sp)
    assert ids(sp) == list(range(n))
    if tiny_fs is not None:  # space comes back when stored segments go
        for s in sp.segments()[:-1]:
            sp.remove(s)
        sp.append(payloads(5, n))
        _check_clean(sp)
    sp.close()


def test_damaged_last_record_is_damage_not_a_torn_tail(tmp_path):
    data = bytearray(b"".join(frame(p) for p in payloads(3)))
    data[-3] ^= 0x10
    r = scan(bytes(data))
    assert len(r.records) == 2 and not r.torn and r.damaged == [(2 * len(data) // 3, len(data))]
    r = scan(bytes(data[:-3]))  # the same record cut short
    assert len(r.records) == 2 and r.torn and r.damaged == []


def test_disk_full_drill_hook(tmp_path):
    flag = tmp_path / "full"
    sp = fresh(tmp_path, io=DiskFullIO(flag))
    sp.append(payloads(2))
    flag.touch()
    with pytest.raises(SpoolFull, match="disk full"):
        sp.append(payloads(4, 2))
    _check_clean(sp)
    flag.unlink()
    sp.append(payloads(1, 6))
    assert ids(sp) == [0, 1, 6]
