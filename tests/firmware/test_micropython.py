"""The firmware's pure logic on real MicroPython (the WebAssembly port under Node): golden vectors,
NMEA, queue with power cuts, report policy, and the heap one wake cycle needs.

Each check computes the same thing on CPython and compares; the AES block function comes from
tests/firmware/mp/aes128.py because the WebAssembly port has no cryptolib.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from segelfw import config, nmea, policy, queue
from simhw.gnss import nmea_sentence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNNER = ROOT / "tools" / "mpy-node" / "run.mjs"
VECTORS = json.loads((ROOT / "tests" / "protocol" / "vectors.json").read_text())

pytestmark = [pytest.mark.micropython, pytest.mark.skipif(shutil.which("node") is None or not RUNNER.exists(),
                                                           reason="node or tools/mpy-node missing: run scripts/test.sh")]

FIX = nmea_sentence("GNGGA,080001.00,0030.00000,S,11706.00000,E,1,08,0.9,35.2,M,48.0,M,,")
GSA = nmea_sentence("GNGSA,A,3,02,05,12,15,18,21,24,25,29,,,,1.6,0.9,1.3")
RMC = nmea_sentence("GNRMC,080001.00,A,0030.00000,S,11706.00000,E,10.50,87.5,150127,,,A")
NOFIX = (nmea_sentence("GNGGA,080000.00,,,,,0,00,99.99,,,,,,") + nmea_sentence("GNRMC,080000.00,V,,,,,,,150127,,,N"))


def nmea_cases() -> list[str]:
    from pynmeagps import GET, NMEAMessage

    out = [FIX.decode(), RMC.decode(), GSA.decode(), NOFIX.decode().split("\r\n")[0]]
    for lat, lon in [(-7.25, 112.75), (51.5, -0.12), (-33.85, -70.6), (89.9, 179.9), (0.0, 0.0)]:
        out.append(NMEAMessage("GP", "GGA", GET, time="23:59:59", lat=lat, NS="N" if lat >= 0 else "S", lon=lon,
                               EW="E" if lon >= 0 else "W", quality=1, numSV=7, HDOP=1.3, alt=1.0, altUnit="M",
                               sep=0.0, sepUnit="M").serialize().decode())
        out.append(NMEAMessage("GN", "RMC", GET, lat=lat, lon=lon, status="A", spd=3.3, cog=1.0,
                               date="2029-02-28", time="12:00:00").serialize().decode())
    out += ["$GPGGA,1*00", "no dollar", FIX.decode().replace("*", "#"), FIX.decode()[:-4] + "00"]
    return [s.strip() for s in out]


QUEUE_OPS = [[0, 1], [1, 1], [2, 2], [3, 1], [1, 0], [4, 3], [5, 1], [6, 1], [7, 2], [8, 1], [9, 1]]
POLICIES = [config.validate({"device_id": "000101", "key": "00" * 32, "board": "tbeam-v1.1", **o})
            for o in ({}, {"sf": 7}, {"report_interval_s": 60, "fix_timeout_s": 30, "sf": 9}, {"report_interval_s": 3600, "low_batt_mv": 3500})]


@pytest.fixture(scope="module")
def mp_result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    data = tmp_path_factory.mktemp("mpdata")
    stream = (b"\x00garbage\r\n" + FIX + b"$GNRMC,0800" + GSA + RMC).decode("latin-1")
    inp = {
        "checks": ["vectors", "nmea", "queue", "policy", "cycle_heap"],
        "fleet_secret": VECTORS["fleet_secret"], "vectors": VECTORS["vectors"],
        "nmea": nmea_cases(), "stream": stream, "queue_ops": QUEUE_OPS, "policies": POLICIES,
        "config": {"device_id": "000101", "key": bytes(range(32)).hex(), "board": "tbeam-v1.1"},
        "gnss_seconds": [NOFIX.decode(), NOFIX.decode(), (FIX + GSA + RMC).decode()],
    }
    (data / "input.json").write_text(json.dumps(inp))
    r = subprocess.run(["node", str(RUNNER), "--heap", str(1024 * 1024),
                        "--mount", f"{ROOT / 'firmware'}:/fw", "--mount", f"{HERE / 'mp'}:/mp",
                        "--mount", f"{data}:/data", "--path", "/fw", "--path", "/mp", str(HERE / "mp" / "mp_main.py")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[7:])
    out["_stream"] = stream
    assert out["impl"] == "micropython"
    return out


def test_golden_vectors_on_micropython(mp_result: dict) -> None:
    got = {name: rest for name, *rest in mp_result["vectors"]}
    assert len(got) == len(VECTORS["vectors"]) >= 20
    for v in VECTORS["vectors"]:
        dk, plain, frame, decoded = got[v["name"]]
        assert (dk, plain, frame, decoded) == (v["device_key"], v["plain_hex"], v["frame_hex"], v["plain_hex"]), v["name"]


def test_nmea_on_micropython_matches_cpython(mp_result: dict) -> None:
    expect = []
    for line in nmea_cases():
        try:
            s = nmea.parse(line.encode())
            expect.append(sorted([k, s[k]] for k in s))
        except nmea.NmeaError as e:
            expect.append("reject: " + e.reason)
    assert mp_result["nmea"] == json.loads(json.dumps(expect))
    assert sum(1 for x in expect if isinstance(x, str)) == 4
    r = nmea.Reader()
    data = mp_result["_stream"].encode("latin-1")
    for i in range(0, len(data), 13):
        r.feed(data[i:i + 13])
    f = r.fix
    cp = [f.lat_e7, f.lon_e7, f.hdop_x10, f.speed_kmh, f.unix, f.valid(), r.good, sorted(r.rejects.items())]
    assert mp_result["reader"] == json.loads(json.dumps(cp))
    assert f.valid() and f.lat_e7 == -5000000


def test_queue_on_micropython_matches_cpython(mp_result: dict, tmp_path: Path) -> None:
    p = str(tmp_path / "q.bin")
    q = queue.Queue(p, 31 * 6)
    log = []
    for c, t in QUEUE_OPS:
        if t == 0:
            log.append(["ack", q.ack([c])])
        else:
            f = bytes([0x10 | t, 0, 1, 1, c >> 16, (c >> 8) & 255, c & 255]) + bytes([c & 255]) * 17
            log.append(["put", q.put(f)])
    assert mp_result["queue"]["log"] == log
    assert mp_result["queue"]["pending"] == [c for c, _ in q.pending()] == [2, 7, 5, 6, 8, 9]
    cuts = mp_result["queue"]["cuts"]  # power cut at every byte of the last record
    assert all(c == [2, 7, 5, 6, 8] for c in cuts[:-1]) and cuts[-1] == [2, 7, 5, 6, 8, 9]


def test_policy_on_micropython_matches_cpython(mp_result: dict) -> None:
    exp = []
    for c in POLICIES:
        p = policy.Policy(c)
        exp.append([p.frames_per_wake(), p.sleep_ms(12000, 3900, False), p.sleep_ms(12000, 3200, False),
                    p.low_battery(3400, False), p.want_position(1800000000, 1800000100, False),
                    p.want_position(1800000000, 1800000200, False),
                    p.want_status(1800000000, 1800003500, 4, 4, False), p.want_status(1800000000, 1800000300, 1, 4, False)])
    assert mp_result["policy"] == exp
    assert exp[0][0] == 8 and exp[1][0] == 8 and exp[2][0] == 2


def test_wake_cycle_heap_on_micropython(mp_result: dict) -> None:
    from segel import protocol as gp

    keys = gp.DeviceKeys.from_device_key(bytes(range(32)))
    kinds = [gp.verify_and_decode(keys, bytes.fromhex(h)).type.name for h in mp_result["sent"]]
    assert kinds[:2] == ["POSITION", "STATUS"] and kinds.count("POSITION") == 4
    cold, *wakes = mp_result["heap"]
    print(f"\nMicroPython heap allocated by one wake cycle (GC not running, upper bound): cold boot "
          f"{cold['allocated']} B; deep-sleep wakes {[w['allocated'] for w in wakes]} B")
    assert cold["cause"] == 1 and all(w["cause"] == 4 for w in wakes)
    assert all(w["allocated"] <= 32 * 1024 for w in wakes), "a wake cycle needs more than 32 KB of heap"
    assert cold["allocated"] <= 64 * 1024
    assert all(250_000 < w["sleep_ms"] <= 300_000 for w in mp_result["heap"]), mp_result["heap"]
