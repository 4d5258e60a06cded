"""Regenerate tests/protocol/vectors.json from the gateway's protocol implementation.

Run only when protocol v1 is deliberately extended: `python tools/make_vectors.py`. The tests then
check that the firmware encoder (an independent implementation) reproduces every vector.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "gateway"))

from segel import protocol as p  # noqa: E402

FLEET_SECRET = bytes(range(32))

# (name, description, device_id, key_epoch, type, counter, time, inputs)
CASES: list[tuple[str, str, int, int, str, int, int, dict]] = [
    ("pos_sangatta", "KPU warehouse, Sangatta (northern, eastern hemisphere), fix, seal closed", 0x000101, 0, "position", 1, 1732233600,
     {"lat_e7": 5050000, "lon_e7": 1175460000, "flags": 0x01, "hdop_x10": 9, "speed_kmh": 0}),
    ("pos_south_east", "Jakarta: southern and eastern hemisphere", 0x000102, 0, "position", 2, 1732240800,
     {"lat_e7": -62088000, "lon_e7": 1068456000, "flags": 0x01, "hdop_x10": 12, "speed_kmh": 42}),
    ("pos_south_west", "Quito: southern and western hemisphere", 0x000103, 0, "position", 3, 1732244400,
     {"lat_e7": -1807000, "lon_e7": -784678000, "flags": 0x01, "hdop_x10": 15, "speed_kmh": 5}),
    ("pos_north_west", "New York: northern and western hemisphere", 0x000104, 0, "position", 4, 1732248000,
     {"lat_e7": 407128000, "lon_e7": -740060000, "flags": 0x01, "hdop_x10": 8, "speed_kmh": 60}),
    ("pos_no_fix", "no fix: flags without FIX, coordinates zero", 0x000101, 0, "position", 5, 1732251600,
     {"lat_e7": 0, "lon_e7": 0, "flags": 0x00, "hdop_x10": 255, "speed_kmh": 0}),
    ("pos_all_flags", "every flag bit set", 0x000101, 0, "position", 6, 1732255200,
     {"lat_e7": 9680000, "lon_e7": 1184890000, "flags": 0x7F, "hdop_x10": 30, "speed_kmh": 12}),
    ("pos_pole_antimeridian", "lat +90 and lon +180 clamp to the largest int24", 0x000105, 0, "position", 7, 1732258800,
     {"lat_e7": 900000000, "lon_e7": 1800000000, "flags": 0x01, "hdop_x10": 10, "speed_kmh": 0}),
    ("pos_south_pole_west", "lat -90 and lon -180 clamp to the smallest int24 + 1", 0x000105, 0, "position", 8, 1732262400,
     {"lat_e7": -900000000, "lon_e7": -1800000000, "flags": 0x01, "hdop_x10": 10, "speed_kmh": 0}),
    ("pos_just_south", "one unit south of the equator rounds to zero; rounding half away from zero", 0x000106, 0, "position", 9, 1732266000,
     {"lat_e7": -54, "lon_e7": 107, "flags": 0x01, "hdop_x10": 10, "speed_kmh": 0}),
    ("pos_saturated", "HDOP 30.0 and 300 km/h saturate at 255", 0x000106, 0, "position", 10, 1732269600,
     {"lat_e7": 4160000, "lon_e7": 1168040000, "flags": 0x01, "hdop_x10": 300, "speed_kmh": 300}),
    ("pos_counter_zero", "the first counter a key ever uses", 0x000107, 0, "position", 0, 1732273200,
     {"lat_e7": 6170000, "lon_e7": 1172510000, "flags": 0x01, "hdop_x10": 11, "speed_kmh": 0}),
    ("pos_counter_max", "the last counter a key may use (0xFFFFFF); the next frame needs a new key epoch", 0x000107, 0, "position", 0xFFFFFF, 1732276800,
     {"lat_e7": 6170000, "lon_e7": 1172510000, "flags": 0x01, "hdop_x10": 11, "speed_kmh": 0}),
    ("pos_new_epoch", "same device and counter as pos_counter_zero under key epoch 1: different bytes", 0x000107, 1, "position", 0, 1732273200,
     {"lat_e7": 6170000, "lon_e7": 1172510000, "flags": 0x01, "hdop_x10": 11, "speed_kmh": 0}),
    ("pos_device_zero", "device id 0, device time 0 (clock not yet set)", 0x000000, 0, "position", 11, 0,
     {"lat_e7": 0, "lon_e7": 0, "flags": 0x00, "hdop_x10": 0, "speed_kmh": 0}),
    ("pos_device_max", "device id 0xFFFFFF, device time 0xFFFFFFFF", 0xFFFFFF, 0, "position", 12, 0xFFFFFFFF,
     {"lat_e7": 10000000, "lon_e7": -10000000, "flags": 0x01, "hdop_x10": 10, "speed_kmh": 1}),
    ("seal_loop_open", "seal loop cut, tamper latched, event seq 0", 0x000101, 0, "seal", 13, 1732280400,
     {"event": 1, "seq": 0, "flags": 0x0B, "lat_e7": 8180000, "lon_e7": 1164990000}),
    ("seal_loop_closed", "seal loop closed again, tamper stays latched, seq 255", 0x000101, 0, "seal", 14, 1732280460,
     {"event": 2, "seq": 255, "flags": 0x09, "lat_e7": 8180000, "lon_e7": 1164990000}),
    ("seal_lid_open_no_fix", "lid opened before any fix: coordinates zero, FIX clear", 0x000108, 0, "seal", 15, 1732284000,
     {"event": 3, "seq": 1, "flags": 0x0C, "lat_e7": 0, "lon_e7": 0}),
    ("seal_lid_closed", "lid closed", 0x000108, 0, "seal", 16, 1732284060,
     {"event": 4, "seq": 2, "flags": 0x09, "lat_e7": 5050000, "lon_e7": 1175460000}),
    ("seal_case_open", "tracker case opened", 0x000108, 0, "seal", 17, 1732284120,
     {"event": 5, "seq": 3, "flags": 0x49, "lat_e7": 5050000, "lon_e7": 1175460000}),
    ("seal_rearmed", "technician re-armed the tamper latch", 0x000108, 0, "seal", 18, 1732287600,
     {"event": 6, "seq": 4, "flags": 0x01, "lat_e7": 5050000, "lon_e7": 1175460000}),
    ("seal_armed", "crew closed the loop and armed the seal", 0x000109, 0, "seal", 19, 1732291200,
     {"event": 7, "seq": 0, "flags": 0x01, "lat_e7": 5000000, "lon_e7": 1175500000}),
    ("seal_power_restored", "booted after an unexpected power loss while armed", 0x000109, 0, "seal", 20, 1732294800,
     {"event": 8, "seq": 1, "flags": 0x00, "lat_e7": 0, "lon_e7": 0}),
    ("seal_wake_unexplained", "a seal pin woke the tracker, every input read as armed: tamper latched", 0x000109, 0, "seal", 24,
     1732298000, {"event": 9, "seq": 2, "flags": 0x09, "lat_e7": 5000000, "lon_e7": 1175500000}),
    ("status_normal", "status after a deep-sleep wake", 0x000101, 0, "status", 21, 1732298400,
     {"batt_mv": 3987, "fw": 0x10, "queue_depth": 3, "reset_cause": 4, "flags": 0x01, "uptime_min": 4321}),
    ("status_saturated", "queue and uptime saturate at 65535, brown-out reset, low battery", 0x000101, 0, "status", 22, 1732302000,
     {"batt_mv": 3301, "fw": 0x1F, "queue_depth": 70000, "reset_cause": 6, "flags": 0x10, "uptime_min": 100000}),
    ("status_watchdog", "watchdog reset, external power", 0x00010A, 0, "status", 23, 1732305600,
     {"batt_mv": 4190, "fw": 0x10, "queue_depth": 0, "reset_cause": 3, "flags": 0x21, "uptime_min": 0}),
    ("ack_single", "downlink: acknowledges counter 21 only", 0x000101, 0, "ack", 1, 1732298405,
     {"counters": [21]}),
    ("ack_window", "downlink: acknowledges 100 and 101, 105 and 132 (the last the bitmap reaches)", 0x000101, 0, "ack", 2, 1732298410,
     {"counters": [100, 101, 105, 132]}),
    ("config_interval", "downlink: report every 300 s, fix timeout 90 s, SF unchanged", 0x000101, 0, "config", 3, 1732298415,
     {"interval_s": 300, "fix_timeout_s": 90, "flags": 0, "sf": 0}),
    ("config_sf10", "downlink: report every 900 s, SF10", 0x00010A, 0, "config", 1, 1732298420,
     {"interval_s": 900, "fix_timeout_s": 120, "flags": 1, "sf": 10}),
    ("config_storage", "downlink: storage mode, settings unchanged", 0x000101, 0, "config", 4, 1732298425,
     {"interval_s": 0, "fix_timeout_s": 0, "flags": 0x04, "sf": 0}),
    ("applied_tracking", "the tracker confirms config downlink 3: 300 s, 90 s, tracking, SF10, nothing refused", 0x000101, 0,
     "applied", 25, 1732298700, {"down_counter": 3, "interval_s": 300, "fix_timeout_s": 90, "mode": 0, "sf": 10, "result": 0}),
    ("applied_storage_rearmed", "confirms downlink 0xABCDEF: storage mode, re-armed, SF12 refused", 0x00010A, 0, "applied", 26,
     1732298800, {"down_counter": 0xABCDEF, "interval_s": 900, "fix_timeout_s": 120, "mode": 1, "sf": 9, "result": 0x05}),
]


def plain_body(kind: str, i: dict) -> bytes:
    def c8(v: int) -> int:
        return max(0, min(255, v))

    if kind == "position":
        return (p.lat_e7_to_i24(i["lat_e7"]).to_bytes(3, "big", signed=True)
                + p.lon_e7_to_i24(i["lon_e7"]).to_bytes(3, "big", signed=True)
                + bytes((i["flags"], c8(i["hdop_x10"]), c8(i["speed_kmh"]))))
    if kind == "seal":
        return (bytes((i["event"], i["seq"], i["flags"]))
                + p.lat_e7_to_i24(i["lat_e7"]).to_bytes(3, "big", signed=True)
                + p.lon_e7_to_i24(i["lon_e7"]).to_bytes(3, "big", signed=True))
    if kind == "status":
        return (min(i["batt_mv"], 0xFFFF).to_bytes(2, "big") + bytes((i["fw"],))
                + min(i["queue_depth"], 0xFFFF).to_bytes(2, "big")
                + bytes((i["reset_cause"], i["flags"])) + min(i["uptime_min"], 0xFFFF).to_bytes(2, "big"))
    if kind == "ack":
        return p.ack_body(i["counters"])
    if kind == "config":
        return (i["interval_s"].to_bytes(2, "big") + i["fix_timeout_s"].to_bytes(2, "big")
                + bytes((i["flags"], i["sf"])))
    if kind == "applied":
        return (i["down_counter"].to_bytes(3, "big") + i["interval_s"].to_bytes(2, "big")
                + i["fix_timeout_s"].to_bytes(2, "big") + bytes((i["mode"] << 4 | i["sf"], i["result"])))
    raise ValueError(kind)


def decoded(body: p.Body) -> dict:
    from dataclasses import asdict

    d = asdict(body)
    if "counters" in d:
        d["counters"] = list(d["counters"])
    return d


def main() -> None:
    vectors = []
    for name, desc, dev, epoch, kind, ctr, t, inputs in CASES:
        dk = p.derive_device_key(FLEET_SECRET, dev, epoch)
        keys = p.DeviceKeys.from_device_key(dk)
        ftype = p.FrameType[kind.upper()]
        plain = plain_body(kind, inputs)
        frame = p.encode_frame(keys, ftype, dev, ctr, t, plain)
        vectors.append({
            "name": name, "description": desc, "device_id": dev, "key_epoch": epoch,
            "device_key": dk.hex(), "type": kind, "counter": ctr, "time": t, "inputs": inputs,
            "plain_hex": plain.hex(), "frame_hex": frame.hex(), "length": len(frame),
            "decoded": decoded(p.verify_and_decode(keys, frame).body),
        })
    base = bytes.fromhex(vectors[0]["frame_hex"])
    bad_mac = bytearray(base)
    bad_mac[-1] ^= 0x01
    flipped = bytearray(base)
    flipped[12] ^= 0x80
    rejects = [
        {"name": "truncated", "frame_hex": base[:10].hex(), "reason": "truncated", "device_id": 0x000101},
        {"name": "truncated_body", "frame_hex": base[:-1].hex(), "reason": "truncated", "device_id": 0x000101},
        {"name": "too_long", "frame_hex": (base + b"\x00").hex(), "reason": "bad_length", "device_id": 0x000101},
        {"name": "bad_version", "frame_hex": (bytes((0x21,)) + base[1:]).hex(), "reason": "bad_version", "device_id": 0x000101},
        {"name": "unknown_type", "frame_hex": (bytes((0x15,)) + base[1:]).hex(), "reason": "bad_type", "device_id": 0x000101},
        {"name": "bad_mac", "frame_hex": bytes(bad_mac).hex(), "reason": "bad_mac", "device_id": 0x000101},
        {"name": "ciphertext_bit_flipped", "frame_hex": bytes(flipped).hex(), "reason": "bad_mac", "device_id": 0x000101},
        {"name": "wrong_device_key", "frame_hex": (base[:1] + (0x000102).to_bytes(3, "big") + base[4:]).hex(), "reason": "bad_mac", "device_id": 0x000102},
    ]
    out = {
        "protocol": "segel v1",
        "fleet_secret": FLEET_SECRET.hex(),
        "note": "device_key = HKDF-SHA256(salt='segel/fleet/v1', ikm=fleet_secret, info='segel device key'||id(3)||epoch(2)); see docs/protocol.md",
        "vectors": vectors,
        "rejects": rejects,
        "encode_errors": [
            {"name": "counter_exhausted", "device_id": 0x000107, "counter": 0x1000000, "reason": "counter beyond 0xFFFFFF"},
            {"name": "device_id_too_large", "device_id": 0x1000000, "counter": 1, "reason": "device id beyond 0xFFFFFF"},
        ],
    }
    path = ROOT / "tests" / "protocol" / "vectors.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {len(vectors)} vectors and {len(rejects)} rejects to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
