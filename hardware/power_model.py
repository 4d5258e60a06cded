"""Battery life of a Segel tracker on one 18650 cell: an energy budget per wake cycle.

    python hardware/power_model.py                     # the table at the default assumptions
    python hardware/power_model.py --interval 300 --simulate 24
                                                       # take awake/GNSS/radio times from the real
                                                       # wake cycle run on simulated hardware

Every figure below is an assumption with its source (docs/hardware.md "Power budget" explains
them); change one with --set NAME=VALUE, e.g. --set sleep_ma=5.3 for a board whose OLED or GNSS
is not switched off.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware"))

from segelfw import airtime  # noqa: E402


@dataclass(frozen=True)
class Assumptions:
    """Currents in mA at the cell, times in seconds. Sources in `why`."""

    capacity_mah: float = 3000.0
    usable: float = 0.85
    sleep_ma: float = 1.2
    seal_pullups_ma: float = 0.0066
    mcu_active_ma: float = 38.0
    boot_s: float = 1.5
    gnss_ma: float = 30.0
    gnss_hot_s: float = 5.0
    gnss_cold_s: float = 35.0
    cold_starts_per_day: float = 1.0
    tx_extra_ma: float = 62.0
    rx_extra_ma: float = 11.0
    rx_per_frame_s: float = 1.0
    jitter_mean_s: float = 1.5
    sf: int = 10
    frame_bytes: int = 24
    status_every_s: int = 3600
    why: dict = field(default_factory=lambda: {
        "capacity_mah": "18650 cells hold 1500-3500 mAh; NCR18650B 3350 mAh nominal (hardware-radio.md s6)",
        "usable": "85 %: cut-off at the firmware's low-battery level, cold, ageing",
        "sleep_ma": "T-Beam v1.1 deep sleep with AXP rails off, GPIO (ext1) wake: 1.2 mA measured "
                    "(cyberman54/ESP32-Paxcounter#627); 0.9 mA with timer wake only",
        "seal_pullups_ma": "two closed loops through 1 MOhm pull-ups at 3.3 V (docs/hardware.md)",
        "mcu_active_ma": "ESP32 awake, WiFi/BT off, about 38 mA measured (hardware-radio.md s6)",
        "boot_s": "deep-sleep wake to main.py with frozen/.mpy modules (estimate)",
        "gnss_ma": "u-blox M8 acquisition 25-32 mA at 3 V (SAM-M8Q datasheet table 8)",
        "gnss_hot_s": "hot start about 1-1.5 s with backup power (M8); 5 s allowed for HDOP to settle",
        "gnss_cold_s": "cold start about 26-27 s (NEO-6M / M8) plus margin",
        "cold_starts_per_day": "hot-start window about 4 h: cold only after a power cut or a long outage",
        "tx_extra_ma": "board TX at 17 dBm 66-73 mA incl. MCU (arduino-LoRa#77): about 100 mA at the "
                       "cell through the PMU, i.e. 62 mA above the awake MCU",
        "rx_extra_ma": "SX1276 RX 9.9 mA (datasheet) + LNA margin",
        "rx_per_frame_s": "receive window until the ack (about 0.6 s after the uplink) + 0.4 s tail",
        "jitter_mean_s": "random 0-3 s jitter before sending, awake",
        "sf": "SF10: the slowest SF whose 24-byte frame fits the 400 ms dwell limit",
        "status_every_s": "one status frame an hour (config status_interval_s)",
        "frame_bytes": "every uplink frame is 24 bytes (docs/protocol.md)",
    })


def toa_s(a: Assumptions) -> float:
    return airtime.time_on_air_us(a.sf, a.frame_bytes) / 1e6


def per_cycle_mas(a: Assumptions, interval_s: float, awake_s: float | None = None, gnss_s: float | None = None,
                  frames: float | None = None, rx_s: float | None = None) -> dict[str, float]:
    """Charge (mA*s) per wake cycle, by consumer. Optional measured values replace the estimates."""
    if frames is None:
        frames = 1 + interval_s / a.status_every_s
    cold_share = min(1.0, a.cold_starts_per_day * interval_s / 86400)
    if gnss_s is None:
        gnss_s = a.gnss_hot_s * (1 - cold_share) + a.gnss_cold_s * cold_share
    tx_s = frames * toa_s(a)
    if rx_s is None:
        rx_s = frames * a.rx_per_frame_s
    if awake_s is None:
        awake_s = a.boot_s + gnss_s + a.jitter_mean_s + tx_s + rx_s
    sleep_s = max(0.0, interval_s - awake_s)
    return {
        "mcu awake": a.mcu_active_ma * awake_s,
        "gnss": a.gnss_ma * gnss_s,
        "lora tx": a.tx_extra_ma * tx_s,
        "lora rx": a.rx_extra_ma * rx_s,
        "deep sleep": (a.sleep_ma + a.seal_pullups_ma) * sleep_s,
        "seal pull-ups awake": a.seal_pullups_ma * awake_s,
        "_awake_s": awake_s,
        "_gnss_s": gnss_s,
    }


def days(a: Assumptions, interval_s: float, **measured: float) -> float:
    parts = per_cycle_mas(a, interval_s, **measured)
    avg_ma = sum(v for k, v in parts.items() if not k.startswith("_")) / interval_s
    return a.capacity_mah * a.usable / avg_ma / 24


def gnss_always_on(a: Assumptions, interval_s: float) -> float:
    """The failure case the design avoids: GNSS powered through deep sleep."""
    b = replace(a, sleep_ma=a.sleep_ma + a.gnss_ma)
    return days(b, interval_s)


def simulate(hours: float, interval_s: int = 300) -> dict[str, float]:
    """Run the real wake cycle on simulated hardware, acked by the gateway's protocol code, and
    return the mean awake time, GNSS on-time, frames and receive time per wake."""
    import contextlib
    import io
    import tempfile

    from segelfw import config, cycle
    from simhw import SimTracker
    from simhw.board import cpython_aes_block

    key = bytes(range(32))
    t0 = 1_800_000_000
    route = [(t0, 0.5069, 117.5453), (t0 + hours * 3600, 0.9, 116.9)]
    cfg = config.validate({"device_id": "000101", "key": key.hex(), "board": "tbeam-v1.1",
                           "report_interval_s": interval_s})
    from segelfw import protocol as fp  # the gateway's acks, signed with the firmware's own encoder

    with tempfile.TemporaryDirectory() as tmp:
        t = SimTracker(tmp, route, t0)
        fk = fp.Keys(key, block=lambda b: b)
        fk.block = cpython_aes_block(fk.enc_key)
        down = [0]

        def ack(packet: bytes, info: dict):
            down[0] += 1
            c = int.from_bytes(packet[4:7], "big")
            return [(600, fp.encode(fk, fp.T_ACK, 0x101, down[0], 0, fp.ack_body(c, 0)))]

        t.radio.responder = ack
        wakes = 0
        while t.clock.now < t0 + hours * 3600:
            with contextlib.redirect_stdout(io.StringIO()):  # the firmware's console log
                cycle.run(t.drivers(), cfg, board=t.board)
            t.deep_sleep()
            wakes += 1
        return {"wakes": wakes, "awake_s": t.awake_ms / wakes / 1000, "gnss_s": t.gnss.on_ms_total / wakes / 1000,
                "frames": len(t.radio.sent) / wakes, "rx_s": t.radio.rx_ms_total / wakes / 1000}


def report(a: Assumptions, interval_s: int, sim: dict | None) -> str:
    lines = ["Segel tracker battery model (hardware/power_model.py)", "", "Assumptions:"]
    for k, v in a.__dict__.items():
        if k != "why":
            lines.append(f"  {k} = {v}    # {a.why.get(k, '')}")
    lines.append(f"  time on air per frame at SF{a.sf}: {toa_s(a) * 1000:.1f} ms")
    parts = per_cycle_mas(a, interval_s)
    tot = sum(v for k, v in parts.items() if not k.startswith("_"))
    lines += ["", f"Per {interval_s} s cycle (awake {parts['_awake_s']:.1f} s, GNSS {parts['_gnss_s']:.1f} s):"]
    for k, v in parts.items():
        if not k.startswith("_"):
            lines.append(f"  {k:20s} {v:8.1f} mA*s  ({100 * v / tot:4.1f} %)")
    lines.append(f"  average current      {tot / interval_s:8.3f} mA")
    lines += ["", "Battery life (days):", "  interval   model   GNSS never off"]
    for iv in (60, 120, 300, 600, 900, 1800):
        mark = "  <- target >= 30 days" if iv == interval_s else ""
        lines.append(f"  {iv:6d} s  {days(a, iv):6.1f}   {gnss_always_on(a, iv):6.1f}{mark}")
    if sim:
        d = days(a, interval_s, awake_s=sim["awake_s"] + a.boot_s, gnss_s=sim["gnss_s"], frames=sim["frames"],
                 rx_s=sim["rx_s"])
        lines += ["", f"From the firmware's wake cycle on simulated hardware ({sim['wakes']} wakes): awake "
                  f"{sim['awake_s']:.2f} s + boot {a.boot_s} s, GNSS {sim['gnss_s']:.2f} s, {sim['frames']:.2f} frames, "
                  f"RX {sim['rx_s']:.2f} s per wake -> {d:.1f} days"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--interval", type=int, default=300, help="report interval in seconds (default 300)")
    p.add_argument("--simulate", type=float, default=0, metavar="HOURS",
                   help="also run the real wake cycle on simulated hardware for HOURS and use its timings")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override an assumption")
    args = p.parse_args(argv)
    a = Assumptions()
    for s in args.set:
        k, _, v = s.partition("=")
        if k not in a.__dict__ or k == "why":
            p.error(f"unknown assumption {k!r}; known: {', '.join(x for x in a.__dict__ if x != 'why')}")
        a = replace(a, **{k: type(getattr(a, k))(v)})
    sim = simulate(args.simulate, args.interval) if args.simulate else None
    print(report(a, args.interval, sim))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
