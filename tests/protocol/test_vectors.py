"""Golden vectors: the gateway decoder and the firmware encoder reproduce them byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from segel import protocol as gp
from segelfw import protocol as fp

DATA = json.loads((Path(__file__).parent / "vectors.json").read_text())
FLEET = bytes.fromhex(DATA["fleet_secret"])
VECTORS = DATA["vectors"]


def ecb(key: bytes):
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return lambda block: enc.update(bytes(block))


def fw_keys(device_key: bytes) -> fp.Keys:
    k = fp.Keys(device_key, block=lambda b: b)  # derive sub-keys first, then bind the real AES
    k.block = ecb(k.enc_key)
    return k


def fw_body(kind: str, i: dict) -> bytes:
    if kind == "position":
        return fp.position_body(i["lat_e7"], i["lon_e7"], i["flags"], i["hdop_x10"], i["speed_kmh"])
    if kind == "seal":
        return fp.seal_body(i["event"], i["seq"], i["flags"], i["lat_e7"], i["lon_e7"])
    if kind == "status":
        return fp.status_body(i["batt_mv"], i["fw"], i["queue_depth"], i["reset_cause"], i["flags"], i["uptime_min"])
    if kind == "ack":
        base = min(i["counters"])
        return fp.ack_body(base, sum(1 << (c - base - 1) for c in i["counters"] if c != base))
    if kind == "config":
        return fp.config_body(i["interval_s"], i["fix_timeout_s"], i["flags"], i["sf"])
    if kind == "applied":
        return fp.applied_body(i["down_counter"], i["interval_s"], i["fix_timeout_s"], i["mode"], i["sf"], i["result"])
    raise AssertionError(kind)


def test_there_are_enough_vectors() -> None:
    assert len(VECTORS) >= 20
    kinds = {v["type"] for v in VECTORS}
    assert kinds == {"position", "seal", "status", "applied", "ack", "config"}


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_gateway_key_derivation_and_decode(v: dict) -> None:
    dk = gp.derive_device_key(FLEET, v["device_id"], v["key_epoch"])
    assert dk.hex() == v["device_key"]
    frame = gp.verify_and_decode(gp.DeviceKeys.from_device_key(dk), bytes.fromhex(v["frame_hex"]))
    assert frame.header.device_id == v["device_id"]
    assert frame.header.counter == v["counter"]
    assert frame.header.time == v["time"]
    assert frame.type.name.lower() == v["type"]
    got = {k: (list(x) if isinstance(x, tuple) else x) for k, x in frame.body.__dict__.items()}
    assert got == v["decoded"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_firmware_encoder_reproduces_vector(v: dict) -> None:
    dk = fp.derive_device_key(FLEET, v["device_id"], v["key_epoch"])
    assert dk.hex() == v["device_key"]
    body = fw_body(v["type"], v["inputs"])
    assert body.hex() == v["plain_hex"]
    frame = fp.encode(fw_keys(dk), getattr(fp, "T_" + v["type"].upper()), v["device_id"], v["counter"], v["time"], body)
    assert frame.hex() == v["frame_hex"]
    assert len(frame) == v["length"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_firmware_decoder_reads_vector(v: dict) -> None:
    keys = fw_keys(bytes.fromhex(v["device_key"]))
    ftype, dev, ctr, t, plain = fp.decode(keys, bytes.fromhex(v["frame_hex"]))
    assert (dev, ctr, t, plain.hex()) == (v["device_id"], v["counter"], v["time"], v["plain_hex"])


def test_gateway_encoder_roundtrips_decoded_values() -> None:
    for v in VECTORS:
        keys = gp.DeviceKeys.from_device_key(bytes.fromhex(v["device_key"]))
        frame = gp.verify_and_decode(keys, bytes.fromhex(v["frame_hex"]))
        again = gp.encode(keys, v["device_id"], v["counter"], v["time"], frame.body)
        assert again.hex() == v["frame_hex"], v["name"]


@pytest.mark.parametrize("r", DATA["rejects"], ids=[r["name"] for r in DATA["rejects"]])
def test_rejects_name_their_reason(r: dict) -> None:
    dk = gp.derive_device_key(FLEET, r["device_id"], 0)
    with pytest.raises(gp.FrameError) as e:
        gp.verify_and_decode(gp.DeviceKeys.from_device_key(dk), bytes.fromhex(r["frame_hex"]))
    assert e.value.reason == r["reason"]


@pytest.mark.parametrize("e", DATA["encode_errors"], ids=[e["name"] for e in DATA["encode_errors"]])
def test_encoders_refuse_out_of_range(e: dict) -> None:
    keys = fw_keys(bytes(32))
    body = fp.position_body(0, 0, 0, 0, 0)
    with pytest.raises(fp.ProtocolError):
        fp.encode(keys, fp.T_POSITION, e["device_id"], e["counter"], 0, body)
    with pytest.raises(ValueError):
        gp.encode_frame(gp.DeviceKeys.from_device_key(bytes(32)), 1, e["device_id"], e["counter"], 0, body)


def test_position_frame_fits_sf10_dwell() -> None:
    from segelfw import airtime

    n = next(v["length"] for v in VECTORS if v["type"] == "position")
    assert n == 24
    assert airtime.time_on_air_us(10, n) <= airtime.DWELL_LIMIT_US
    assert airtime.time_on_air_us(10, n + 1) > airtime.DWELL_LIMIT_US
