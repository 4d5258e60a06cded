"""Bridge and channel figures (a benchmark, not a test): run with
    .venv/bin/python -m tests.bridge.bench_bridge [--records 5000]
It starts a real Mosquitto, puts the firmware's base-station logic on a pty, and measures records
per second from the pty to the broker (subscriber side); then prints the simulated channel's
delivery ratio for 100 and 1,000 trackers at SF7 and SF10, 5-minute interval."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "firmware", ROOT):
    sys.path.insert(0, str(p))

from segel.bridge import Bridge  # noqa: E402
from segel.radio import channel as lorasim  # noqa: E402

from tests import servers  # noqa: E402
from tests.bridge.harness import Collector, PtyBase, frames, wait_until  # noqa: E402


def throughput(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        srv = servers.mosquitto(tmp / "mq").start()
        col = Collector(srv.port)
        base = PtyBase(tmp)
        br = Bridge("bench", srv.url, tmp / "buf.sqlite", port=str(base.path), reopen_s=0.1).start()
        try:
            assert wait_until(lambda: br.publisher.connected.is_set() and br.serial.base is not None, 10)
            fs = frames(n, seed=1)
            t0 = time.perf_counter()
            for f in fs:
                base.radio.push(f)
            wait_until(lambda: br.serial.uplinks >= n, 300, 0.005)
            t_buf = time.perf_counter() - t0
            got = col.wait_frames(n, timeout=300)
            dt = time.perf_counter() - t0
            print(f"  all {n} records durably buffered after {t_buf:.2f} s ({n / t_buf:,.0f}/s); "
                  f"base-station re-sends {br.serial.duplicates}")
            from segel.bridge import wire

            rec = len(wire.encode(bytes(22) + fs[0]))
            print(f"bridge throughput: {len(set(got))}/{n} records pty -> broker in {dt:.2f} s = {n / dt:,.0f} records/s "
                  f"(base station, bridge and subscriber in one Python process; a pty is not rate-limited: at 115200 Bd "
                  f"a {rec}-byte uplink record caps a real USB-serial line at {115200 / 10 / rec:,.0f} records/s)")
        finally:
            br.stop()
            base.close()
            col.close()
            srv.stop()


def channel(duration_s: float) -> None:
    print(f"\nsimulated channel, 5-minute interval, {duration_s / 3600:g} h, 24-byte frames, jitter ±3 s (pure ALOHA, no capture)")
    print(f"{'trackers':>8} {'SF':>3} {'setup':<36} {'sent':>7} {'delivered':>9} {'ratio':>7} {'ALOHA':>7} {'dupes':>7}")
    for n in (100, 1000):
        for sf in (7, 10):
            for label, kw in (("2 single-channel base stations", {"channels": 1, "receivers": 2, "loss": 0.0}),
                              ("2 single-ch base, 10% fading each", {"channels": 1, "receivers": 2, "loss": 0.1}),
                              ("1 8-channel gateway", {"channels": 8, "receivers": 1, "loss": 0.0})):
                r = lorasim.simulate(n, sf, 300.0, duration_s, seed=1, **kw)  # type: ignore[arg-type]
                print(f"{n:>8} {sf:>3} {label:<36} {r.sent:>7} {r.delivered:>9} {r.delivery_ratio:>7.1%} "
                      f"{r.aloha_expected:>7.1%} {r.duplicates:>7}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--hours", type=float, default=6.0)
    a = ap.parse_args()
    throughput(a.records)
    channel(a.hours * 3600)
