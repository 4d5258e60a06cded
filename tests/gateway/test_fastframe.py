from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from segel import protocol
from segel.ingest.codec import FrameCodec

DATA = json.loads((Path(__file__).parents[1] / "protocol" / "vectors.json").read_text())
FLEET = bytes.fromhex(DATA["fleet_secret"])


@pytest.mark.parametrize("v", DATA["vectors"], ids=[v["name"] for v in DATA["vectors"]])
def test_golden_vectors(v: dict) -> None:
    keys = protocol.DeviceKeys.from_device_key(protocol.derive_device_key(FLEET, v["device_id"], v["key_epoch"]))
    codec = FrameCodec(keys)
    fr = codec.verify_and_decode(bytes.fromhex(v["frame_hex"]))
    assert fr == protocol.verify_and_decode(keys, bytes.fromhex(v["frame_hex"]))
    assert codec.encode(v["device_id"], v["counter"], v["time"], fr.body).hex() == v["frame_hex"]


def test_same_as_reference_on_random_frames_and_rejects_the_same() -> None:
    rnd = random.Random(7)
    for _ in range(300):
        keys = protocol.DeviceKeys.from_device_key(rnd.randbytes(32))
        codec = FrameCodec(keys)
        dev, ctr, t = rnd.randrange(1 << 24), rnd.randrange(1 << 24), rnd.randrange(1 << 32)
        body = rnd.choice([protocol.Position(rnd.uniform(-90, 90), rnd.uniform(-180, 180), rnd.randrange(128), 1.5, 7),
                           protocol.Ack((ctr, ctr + 3)), protocol.Config(60, 90, 1, 9),
                           protocol.Status(3700, "1.2", 4, 1, 0, 99)])
        ref = protocol.encode(keys, dev, ctr, t, body)
        assert codec.encode(dev, ctr, t, body) == ref
        assert codec.verify_and_decode(ref) == protocol.verify_and_decode(keys, ref)
        bad = bytearray(ref)
        bad[rnd.randrange(len(bad))] ^= 1 << rnd.randrange(8)
        with pytest.raises(protocol.FrameError) as a:
            codec.verify_and_decode(bytes(bad))
        with pytest.raises(protocol.FrameError) as b:
            protocol.verify_and_decode(keys, bytes(bad))
        assert a.value.reason == b.value.reason
