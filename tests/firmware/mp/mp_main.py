# Run on real MicroPython by tests/firmware/test_micropython.py:
#   node tools/mpy-node/run.mjs --mount firmware:/fw --mount tests/firmware/mp:/mp --mount DATA:/data
#        --path /fw --path /mp tests/firmware/mp/mp_main.py
# Reads /data/input.json, prints one line "RESULT <json>".
import gc
import json

import aes128
from segelfw import nmea, policy, protocol, queue

IN = json.loads(open("/data/input.json").read())
OUT = {"impl": __import__("sys").implementation.name}


def fw_keys(dk):
    k = protocol.Keys(dk, block=lambda b: b)
    k.block = aes128.ecb_block(k.enc_key)
    return k


def check_vectors():
    out = []
    for v in IN["vectors"]:
        i = v["inputs"]
        t = v["type"]
        if t == "position":
            body = protocol.position_body(i["lat_e7"], i["lon_e7"], i["flags"], i["hdop_x10"], i["speed_kmh"])
        elif t == "seal":
            body = protocol.seal_body(i["event"], i["seq"], i["flags"], i["lat_e7"], i["lon_e7"])
        elif t == "status":
            body = protocol.status_body(i["batt_mv"], i["fw"], i["queue_depth"], i["reset_cause"], i["flags"], i["uptime_min"])
        elif t == "ack":
            base = min(i["counters"])
            bm = 0
            for c in i["counters"]:
                if c != base:
                    bm |= 1 << (c - base - 1)
            body = protocol.ack_body(base, bm)
        elif t == "applied":
            body = protocol.applied_body(i["down_counter"], i["interval_s"], i["fix_timeout_s"], i["mode"], i["sf"], i["result"])
        else:
            body = protocol.config_body(i["interval_s"], i["fix_timeout_s"], i["flags"], i["sf"])
        dk = protocol.derive_device_key(bytes.fromhex(IN["fleet_secret"]), v["device_id"], v["key_epoch"])
        ftype = getattr(protocol, "T_" + t.upper())
        frame = protocol.encode(fw_keys(dk), ftype, v["device_id"], v["counter"], v["time"], body)
        dec = protocol.decode(fw_keys(dk), frame)
        out.append([v["name"], dk.hex(), body.hex(), frame.hex(), dec[4].hex()])
    OUT["vectors"] = out


def check_nmea():
    res = []
    for line in IN["nmea"]:
        try:
            s = nmea.parse(line.encode())
            res.append(sorted([k, s[k]] for k in s))
        except nmea.NmeaError as e:
            res.append("reject: " + e.reason)
    OUT["nmea"] = res
    r = nmea.Reader()
    data = IN["stream"].encode()
    for i in range(0, len(data), 13):
        r.feed(data[i : i + 13])
    f = r.fix
    OUT["reader"] = [f.lat_e7, f.lon_e7, f.hdop_x10, f.speed_kmh, f.unix, f.valid(), r.good, sorted(r.rejects.items())]


def check_queue():
    import os

    p = "/data/q.bin"
    q = queue.Queue(p, 31 * 6)
    log = []
    for c, t in IN["queue_ops"]:
        if t == 0:
            log.append(["ack", q.ack([c])])
        else:
            f = bytes([0x10 | t, 0, 1, 1, c >> 16, (c >> 8) & 255, c & 255]) + bytes([c & 255]) * 17
            log.append(["put", q.put(f)])
    full = open(p, "rb").read()
    cuts = []
    for cut in range(len(full) - 31, len(full) + 1):
        f = open("/data/cut.bin", "wb")
        f.write(full[:cut])
        f.close()
        cuts.append([c for c, _ in queue.Queue("/data/cut.bin").pending()])
    os.remove("/data/cut.bin")
    OUT["queue"] = {"log": log, "pending": [c for c, _ in q.pending()], "cuts": cuts}


def check_policy():
    res = []
    for c in IN["policies"]:
        p = policy.Policy(c)
        res.append([p.frames_per_wake(), p.sleep_ms(12000, 3900, False), p.sleep_ms(12000, 3200, False),
                    p.low_battery(3400, False), p.want_position(1800000000, 1800000100, False),
                    p.want_position(1800000000, 1800000200, False),
                    p.want_status(1800000000, 1800003500, 4, 4, False), p.want_status(1800000000, 1800000300, 1, 4, False)])
    OUT["policy"] = res


_AES = {}


def aes_cached(key):
    # cryptolib.aes(key, 1) costs ~100 bytes on the device; the pure-Python key schedule here costs
    # 2.5 KB, so it is made once per key outside the measured cycles
    k = bytes(key)
    if k not in _AES:
        _AES[k] = aes128.ecb_block(k)
    return _AES[k]


def check_cycle_heap():
    # The WebAssembly port's gc.collect() frees nothing while a script runs (it cannot scan the JS
    # stack; it frees between runPython calls), so the difference of gc.mem_alloc() around a wake is
    # every byte the wake allocated: an upper bound of the heap it needs. A cold boot is measured
    # apart from the deep-sleep wakes that follow it.
    import mpsim
    from segelfw import config, cycle

    cfg = config.validate(IN["config"])
    keys = fw_keys(bytes.fromhex(cfg["key"]))
    seconds = [s.encode() for s in IN["gnss_seconds"]]
    d = mpsim.drivers(1800000000, seconds, keys, 0x101, aes_cached)
    aes_cached(keys.enc_key)
    figures = []
    for wake in range(4):
        gc.collect()
        base = gc.mem_alloc()
        ms = cycle.Cycle(d, cfg).run()
        figures.append({"allocated": gc.mem_alloc() - base, "sleep_ms": ms,
                        "cause": d.system.cause, "sent": len(d.radio.sent)})
        d.system.cause = protocol.R_DEEPSLEEP
        d.clock.ms += ms
        d.clock.boot = d.clock.ms
    OUT["heap"] = figures
    OUT["sent"] = [b.hex() for b in d.radio.sent]


for name in IN["checks"]:
    globals()["check_" + name]()
print("RESULT " + json.dumps(OUT))
