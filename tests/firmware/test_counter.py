"""Counters never repeat under a key: not across deep sleep, resets, brown-outs or power cuts."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from segelfw import counter, crcfile
from segelfw.state import RtcState
from simhw import SimRtcMemory


class Device:
    """RTC memory + flash path; `boot()` builds the counter store as main.py would after a wake."""

    def __init__(self, tmp: Path, epoch: int = 0) -> None:
        self.rtc = SimRtcMemory()
        self.path = str(tmp / "ctr.bin")
        self.epoch = epoch
        self.boot()

    def boot(self) -> None:
        self.store = counter.CounterStore(self.path, RtcState(self.rtc), self.epoch)


def test_counts_up_and_reserves_in_blocks(tmp_path: Path) -> None:
    d = Device(tmp_path)
    assert [d.store.next() for _ in range(130)] == list(range(130))
    assert d.store.flash_writes == 3  # blocks at 0, 64, 128


def test_deep_sleep_continues_exactly(tmp_path: Path) -> None:
    d = Device(tmp_path)
    used = [d.store.next() for _ in range(5)]
    d.boot()  # deep-sleep wake: RTC memory kept
    assert d.store.next() == 5 and not d.store.resumed_from_flash
    assert used == [0, 1, 2, 3, 4]


def test_power_cut_skips_to_the_next_block(tmp_path: Path) -> None:
    d = Device(tmp_path)
    for _ in range(5):
        d.store.next()
    d.rtc.power_cut()
    d.boot()
    assert d.store.resumed_from_flash
    assert d.store.next() == counter.BLOCK


def test_corrupt_rtc_memory_is_treated_as_lost(tmp_path: Path) -> None:
    d = Device(tmp_path)
    for _ in range(3):
        d.store.next()
    raw = bytearray(d.rtc.read())
    raw[-3] ^= 0x55  # a brown-out garbled RTC memory
    d.rtc.write(bytes(raw))
    d.boot()
    assert d.store.next() == counter.BLOCK


def test_new_key_epoch_starts_again_at_zero(tmp_path: Path) -> None:
    d = Device(tmp_path)
    for _ in range(3):
        d.store.next()
    d.epoch = 1  # re-provisioned: a new key, so counters may start again
    d.boot()
    assert d.store.next() == 0


def test_exhausted_counter_refuses(tmp_path: Path) -> None:
    d = Device(tmp_path)
    d.store.st["ctr_next"] = counter.COUNTER_MAX
    d.store.st["ctr_end"] = counter.COUNTER_MAX + 1
    assert d.store.next() == counter.COUNTER_MAX
    with pytest.raises(counter.CounterExhausted, match="new key epoch"):
        d.store.next()


@pytest.mark.parametrize("seed", range(6))
def test_random_life_never_repeats_a_counter(tmp_path: Path, seed: int) -> None:
    """Thousands of frames through random deep sleeps, resets, power cuts (also during the
    reservation write, leaving a torn temporary file) and garbled RTC memory."""
    rng = random.Random(seed)
    d = Device(tmp_path)
    seen: set[int] = set()
    last = -1
    for _ in range(400):
        for _ in range(rng.randint(0, 12)):
            c = d.store.next()
            assert c not in seen, f"counter {c} repeated"
            assert c > last
            seen.add(c)
            last = c
        ev = rng.random()
        if ev < 0.5:
            d.boot()  # deep sleep / watchdog / soft reset
        elif ev < 0.75:
            d.rtc.power_cut()
            d.boot()
        elif ev < 0.85:  # power cut while the next reservation was being written
            Path(d.path + ".new").write_bytes(crcfile.pack(1, b"\x00\x00\xff\xff")[: rng.randint(0, 10)])
            d.rtc.power_cut()
            d.boot()
        else:
            raw = bytearray(d.rtc.read())
            if raw:
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
                d.rtc.write(bytes(raw))
            d.boot()
    assert len(seen) > 1000
