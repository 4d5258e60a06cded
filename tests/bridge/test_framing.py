"""Serial framing: the firmware's COBS + CRC16 against the bridge's (cobs package, binascii), and
resynchronisation after noise, half records and resets."""

from __future__ import annotations

import binascii
import random

import pytest
from cobs import cobs
from segel.bridge import wire
from segelfw import serialframe as sf


@pytest.mark.parametrize("n", [0, 1, 2, 253, 254, 255, 256, 300, 508, 509, 600])
def test_cobs_matches_the_reference_package(n: int) -> None:
    rng = random.Random(n)
    for _ in range(20):
        data = bytes(rng.choice([0, 0, 1, 0xFF, rng.randrange(256)]) for _ in range(n))
        enc = sf.cobs_encode(data)
        assert enc == cobs.encode(data)
        assert b"\x00" not in enc
        assert sf.cobs_decode(enc) == data


def test_crc_is_genibus_both_sides() -> None:
    assert sf.check(b"123456789") == wire.crc16(b"123456789") == 0xD64E
    rng = random.Random(2)
    for _ in range(200):
        p = rng.randbytes(rng.randrange(1, 80))
        assert sf.check(p) == binascii.crc_hqx(p, 0xFFFF) ^ 0xFFFF
        assert sf.encode(p) == wire.encode(p)


def test_every_single_bit_error_is_caught() -> None:
    rng = random.Random(7)
    nxt = wire.encode(b"\x03next")
    for _ in range(60):
        p = rng.randbytes(rng.randrange(1, 70))
        w = sf.encode(p)
        for i in range(len(w)):
            for bit in range(8):
                bad = bytearray(w)
                bad[i] ^= 1 << bit
                for dec in (wire.Decoder(), sf.Decoder()):
                    out = dec.feed(bytes(bad) + nxt)
                    assert all(o in (p, b"\x03next") for o in out), (p.hex(), i, bit)
                    assert out[-1] == b"\x03next"  # and the next record is read whatever happened


def test_resync_after_noise_half_records_and_overlong_runs() -> None:
    recs = [bytes([1]) + bytes(range(i, i + 30)) for i in range(5)]
    stream = (b"\xff\xfe noise" + wire.encode(recs[0]) + wire.encode(recs[1])[:17]  # a reset cut this one
              + wire.encode(recs[2]) + b"\x01" * 1000  # a long run without a delimiter
              + wire.encode(recs[3]) + b"\x00\x00\x00" + wire.encode(recs[4]))
    for dec in (wire.Decoder(), sf.Decoder()):
        got = []
        for i in range(0, len(stream), 5):  # arbitrary read boundaries
            got += dec.feed(stream[i : i + 5])
        assert got == [recs[0], recs[2], recs[3], recs[4]]
        assert dec.framing_errors + dec.crc_errors >= 3


def test_record_parsing_rejects_short_and_unknown() -> None:
    with pytest.raises(wire.RecordError, match="too short"):
        wire.parse(bytes([wire.R_HEALTH, 0, 1]))
    with pytest.raises(wire.RecordError, match="unknown record type 0x7f"):
        wire.parse(b"\x7f")
    with pytest.raises(wire.RecordError, match="without a frame"):
        wire.parse(sf.uplink(1, 2, 3, -100, 4, 921400, 10, b""))
    u = wire.parse(sf.uplink(0xABCD, 7, 120, -117, -37, 923200, 7, b"\x11abc"))
    assert u == wire.Uplink(0xABCD, 7, 120, -117.0, -9.25, 923200, 7, True, b"\x11abc")
    with pytest.raises(ValueError, match="over 300"):
        wire.encode(bytes(301))
