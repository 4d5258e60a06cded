"""The flash queue: seal frames first, survives power cuts at any byte, drops positions before seals."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from segelfw import crcfile, queue


def frame(ftype: int, counter: int) -> bytes:
    """A 24-byte uplink frame shape (header + body + MAC); content beyond the header is filler."""
    return bytes([0x10 | ftype, 0, 1, 1, counter >> 16, (counter >> 8) & 255, counter & 255]) + bytes([counter & 255]) * 17


def counters(q: queue.Queue) -> list[int]:
    return [c for c, _ in q.pending()]


def test_seal_frames_leave_first_then_oldest_first(tmp_path: Path) -> None:
    q = queue.Queue(str(tmp_path / "q"))
    for c, t in [(1, 1), (2, 3), (3, 2), (4, 1), (5, 2)]:
        q.put(frame(t, c))
    assert counters(q) == [3, 5, 1, 2, 4]
    assert [f for _, f in q.pending()][0] == frame(2, 3)
    assert counters(queue.Queue(str(tmp_path / "q"))) == [3, 5, 1, 2, 4]  # the same after a reboot


def test_ack_frees_frames_durably(tmp_path: Path) -> None:
    p = str(tmp_path / "q")
    q = queue.Queue(p)
    for c in range(10):
        q.put(frame(1, c))
    assert q.ack([2, 3, 99]) == 2
    assert q.ack([2]) == 0
    assert counters(queue.Queue(p)) == [0, 1, 4, 5, 6, 7, 8, 9]


def test_full_queue_drops_oldest_positions_never_a_seal_first(tmp_path: Path) -> None:
    q = queue.Queue(str(tmp_path / "q"), capacity_bytes=queue.RECORD * 5)
    q.put(frame(2, 0))  # seal
    for c in range(1, 5):
        q.put(frame(1, c))
    dropped = q.put(frame(1, 5))
    assert dropped == [1]  # the oldest position, not the older seal frame
    q.put(frame(2, 6))
    q.put(frame(3, 7))  # a status frame is routine too
    assert sorted(counters(q)) == [0, 4, 5, 6, 7]
    for c in range(8, 13):
        q.put(frame(2, c))  # only seal frames left to drop: then the oldest seal
    assert counters(q) == [8, 9, 10, 11, 12]
    assert q.dropped == 8


def test_compaction_keeps_live_frames(tmp_path: Path) -> None:
    p = str(tmp_path / "q")
    q = queue.Queue(p, capacity_bytes=queue.RECORD * 8)
    live = []
    for c in range(200):
        q.put(frame(1 + (c % 3 == 0), c))
        if c % 4:
            q.ack([c])
        else:
            live.append(c)
    assert os.path.getsize(p) <= 2 * len(q) * queue.RECORD + 4096 + 64
    assert sorted(counters(q)) == sorted(counters(queue.Queue(p)))
    assert set(counters(q)) <= set(live)
    assert not os.path.exists(p + ".new")
    q.ack(counters(q))
    assert os.path.getsize(p) == 0  # all acknowledged: the file is emptied, the next boot scans nothing


def test_power_cut_at_every_byte_of_the_last_record(tmp_path: Path) -> None:
    """Truncate the file at every offset of its last record: the earlier records all survive,
    the torn one is gone, and the queue keeps working (the next write does not follow garbage)."""
    p = tmp_path / "q"
    q = queue.Queue(str(p))
    for c in range(6):
        q.put(frame(1 + (c == 2), c))
    q.ack([1])  # a DROP record in the middle
    before = p.stat().st_size
    q.put(frame(1, 6))
    full = p.read_bytes()
    last_len = len(full) - before
    assert last_len == queue.RECORD
    for cut in range(before, len(full) + 1):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / "q").write_bytes(full[:cut])
        q2 = queue.Queue(str(d / "q"))
        expect = [2, 0, 3, 4, 5] + ([6] if cut == len(full) else [])
        assert counters(q2) == expect, cut
        q2.put(frame(1, 7))  # appending after a torn tail must not hide the new record
        assert counters(queue.Queue(str(d / "q"))) == expect + [7], cut
        shutil.rmtree(d)


def test_corrupt_byte_mid_file_keeps_everything_before_it(tmp_path: Path) -> None:
    p = tmp_path / "q"
    q = queue.Queue(str(p))
    for c in range(5):
        q.put(frame(1, c))
    data = bytearray(p.read_bytes())
    data[queue.RECORD * 3 + 10] ^= 0xFF  # inside the 4th record
    p.write_bytes(bytes(data))
    assert counters(queue.Queue(str(p))) == [0, 1, 2]


def test_interrupted_compaction_leaves_the_old_file(tmp_path: Path) -> None:
    p = tmp_path / "q"
    q = queue.Queue(str(p))
    for c in range(3):
        q.put(frame(1, c))
    (tmp_path / "q.new").write_bytes(crcfile.pack(queue.K_FRAME, frame(1, 99))[:10])  # torn temp file
    assert counters(queue.Queue(str(p))) == [0, 1, 2]
    assert not (tmp_path / "q.new").exists()


def test_python_crc_matches_binascii() -> None:
    import binascii

    for data in [b"", b"a", bytes(range(256)) * 3]:
        assert crcfile._crc32_py(data) == binascii.crc32(data)
