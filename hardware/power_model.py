"""Battery life of a Segel tracker on one 18650 cell, from the firmware's own wake cycle.

    python hardware/power_model.py                 # the table: 4 conditions x 3 boards, and storage mode
    python hardware/power_model.py --hours 48      # simulate longer (default 24 h per condition)
    python hardware/power_model.py --set sleep_ma=0.9 --set capacity_mah=3400

The times come from running the firmware's real wake cycle (segelfw.cycle, with the real back-off
policy of segelfw.policy and the config defaults of segelfw.config) on simulated hardware (simhw)
for each condition: how long the tracker is awake per wake, how long the GNSS is on, how long the
radio sends and listens. The currents come from the parts' datasheets and one board measurement;
each figure's source is in hardware/sources.md (FIGURES below names the entry). Nothing here is a
target: if the table misses a target, it says by how much.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware"))

from segelfw import config, cycle, policy  # noqa: E402
from segelfw import protocol as fp  # noqa: E402

TARGET_TRACKING_DAYS = 30  # at 5-minute reports, the worst of the four conditions
TARGET_STORAGE_DAYS = 180

# name: (value, unit, entry in hardware/sources.md)
FIGURES: dict[str, tuple[float, str, str]] = {
    "capacity_mah": (3000.0, "mAh", "cell"),
    "usable": (0.85, "share", "usable"),
    "sleep_ma": (1.2, "mA", "tbeam-sleep"),
    "boot_s": (1.5, "s", "boot"),
    "esp32_boot_ma": (44.0, "mA", "esp32-active"),
    "esp32_active_ma": (31.0, "mA", "esp32-active"),
    "neo6m_ma": (47.0, "mA", "neo-6m"),
    "neom8n_ma": (32.0, "mA", "neo-m8n"),
    "l76k_ma": (40.0, "mA", "l76k"),
    "sx1276_tx_ma": (87.0, "mA", "sx1276"),
    "sx1276_rx_ma": (11.5, "mA", "sx1276"),
    "sx1262_tx_ma": (45.0, "mA", "sx1262"),
    "sx1262_rx_ma": (5.3, "mA", "sx1262"),
    "seal_ua": (6.6, "uA", "seal-pullups"),
}

# board column -> (GNSS current figure, radio TX figure, radio RX figure, simhw board file)
BOARDS = {
    "v1.x NEO-6M SX1276": ("neo6m_ma", "sx1276_tx_ma", "sx1276_rx_ma", "tbeam-v1.1"),
    "v1.x NEO-M8N SX1276": ("neom8n_ma", "sx1276_tx_ma", "sx1276_rx_ma", "tbeam-v1.1"),
    "Supreme L76K SX1262": ("l76k_ma", "sx1262_tx_ma", "sx1262_rx_ma", "tbeam-supreme"),
}

CONDITIONS = {
    "open sky, gateway in range": {"indoors": False, "gateway": True},
    "indoors (no fix), gateway in range": {"indoors": True, "gateway": True},
    "open sky, no gateway": {"indoors": False, "gateway": False},
    "indoors (no fix), no gateway": {"indoors": True, "gateway": False},
}


@dataclass
class Wake:
    """Mean per wake, from the simulated firmware."""

    wakes: int
    interval_s: float  # mean time between wakes
    awake_s: float  # CPU on (GNSS wait, jitter, TX, receive windows included; boot not)
    gnss_s: float
    tx_s: float
    rx_s: float


def simulate(indoors: bool, gateway: bool, hours: float = 24.0, storage: bool = False,
             board: str = "tbeam-v1.1") -> Wake:
    """Run the real wake cycle on simulated hardware for `hours`; -> mean times per wake."""
    from simhw import SimTracker
    from simhw.board import cpython_aes_block

    key = bytes(range(32))
    t0 = 1_800_000_000
    cfg = config.validate({"device_id": "000101", "key": key.hex(), "board": board})
    route = [(t0, 0.5069, 117.5453), (t0 + hours * 3600, 0.9, 116.9)]
    gnss = {"dropouts": [(t0 - 10, t0 + hours * 3600 + 10**6)]} if indoors else {}
    with tempfile.TemporaryDirectory() as tmp:
        t = SimTracker(tmp, route, t0, board=board, gnss=gnss)
        if storage:
            Path(t.flash.path("remote.json")).write_text(json.dumps({"mode": policy.MODE_STORAGE}))
        fk = fp.Keys(key, block=lambda b: b)
        fk.block = cpython_aes_block(fk.enc_key)
        down = [0]

        def ack(packet: bytes, info: dict):  # the gateway's ack, 600 ms after the uplink
            down[0] += 1
            c = int.from_bytes(packet[4:7], "big")
            return [(600, fp.encode(fk, fp.T_ACK, 0x101, down[0], 0, fp.ack_body(c, 0)))]

        t.radio.responder = ack if gateway else None
        wakes = 0
        while t.clock.now < t0 + hours * 3600:
            with contextlib.redirect_stdout(io.StringIO()):  # the firmware's console log
                cycle.run(t.drivers(), cfg, board=t.board)
            t.deep_sleep()
            wakes += 1
        span_s = (t.clock.now_ms - t0 * 1000) / 1000
        return Wake(wakes, span_s / wakes, t.awake_ms / wakes / 1000, t.gnss.on_ms_total / wakes / 1000,
                    t.radio.tx_ms_total / wakes / 1000, t.radio.rx_ms_total / wakes / 1000)


def charge_mas(w: Wake, f: dict, board: str) -> dict[str, float]:
    """Charge per wake (mA*s) by consumer."""
    g, tx, rx, _ = BOARDS[board]
    awake = f["boot_s"][0] + w.awake_s
    return {
        "cpu booting": f["esp32_boot_ma"][0] * f["boot_s"][0],  # 160 MHz until main.py sets 80 MHz
        "cpu awake": f["esp32_active_ma"][0] * w.awake_s,
        "gnss": f[g][0] * w.gnss_s,
        "lora tx": f[tx][0] * w.tx_s,
        "lora rx": f[rx][0] * w.rx_s,
        "deep sleep": (f["sleep_ma"][0] + f["seal_ua"][0] / 1000) * max(0.0, w.interval_s - awake),
    }


def days(w: Wake, f: dict, board: str) -> float:
    avg_ma = sum(charge_mas(w, f, board).values()) / w.interval_s
    return f["capacity_mah"][0] * f["usable"][0] / avg_ma / 24


def table(hours: float = 24.0, figures: dict | None = None) -> dict:
    """-> {"tracking": {condition: {board: days}}, "storage": {...}, "wakes": {...}}"""
    f = dict(FIGURES, **(figures or {}))
    out: dict = {"tracking": {}, "storage": {}, "wakes": {}}
    for name, c in CONDITIONS.items():
        out["tracking"][name] = {}
        for board, spec in BOARDS.items():
            w = simulate(c["indoors"], c["gateway"], hours, board=spec[3])
            out["wakes"][(name, spec[3])] = w
            out["tracking"][name][board] = days(w, f, board)
    for name, c in (("storage, gateway in range", {"gateway": True}), ("storage, no gateway", {"gateway": False})):
        out["storage"][name] = {}
        for board, spec in BOARDS.items():
            w = simulate(True, c["gateway"], max(hours, 24 * 7), storage=True, board=spec[3])
            out["wakes"][(name, spec[3])] = w
            out["storage"][name][board] = days(w, f, board)
    return out


def report(t: dict, figures: dict | None = None) -> str:
    f = dict(FIGURES, **(figures or {}))
    boards = list(BOARDS)
    width = 23
    lines = ["Segel tracker battery life (hardware/power_model.py)", "",
             f"One {f['capacity_mah'][0]:.0f} mAh 18650, {f['usable'][0]:.0%} usable; report every "
             f"{config.DEFAULTS['report_interval_s']} s, fix timeout {config.DEFAULTS['fix_timeout_s']} s, ack window "
             f"{config.DEFAULTS['ack_window_ms']} ms, jitter 0-{config.DEFAULTS['jitter_ms']} ms (config defaults);",
             f"back-off: a fix attempt at most every {policy.FIX_BACKOFF_CAP + 1} wakes after failures, one probe frame at "
             f"most every {policy.SEND_BACKOFF_CAP + 1} wakes without a gateway (segelfw/policy.py).", "",
             "days of tracking at 5-minute reports".ljust(40) + "".join(b.rjust(width) for b in boards)]
    worst = min(min(v.values()) for v in t["tracking"].values())
    for name, row in t["tracking"].items():
        lines.append(name.ljust(40) + "".join(f"{row[b]:.1f}".rjust(width) for b in boards))
    lines.append("")
    lines.append(f"storage mode (a status every {config.DEFAULTS['storage_interval_s'] // 3600} h)".ljust(40)
                 + "".join(b.rjust(width) for b in boards))
    worst_storage = min(min(v.values()) for v in t["storage"].values())
    for name, row in t["storage"].items():
        lines.append(name.ljust(40) + "".join(f"{row[b]:.1f}".rjust(width) for b in boards))
    lines.append("")
    lines.append(_verdict("tracking, worst condition", worst, TARGET_TRACKING_DAYS))
    lines.append(_verdict("storage mode, worst case", worst_storage, TARGET_STORAGE_DAYS))
    floor = f["capacity_mah"][0] * f["usable"][0] / (f["sleep_ma"][0] + f["seal_ua"][0] / 1000) / 24
    lines.append(f"  (deep sleep alone, {f['sleep_ma'][0]} mA, empties the cell in {floor:.0f} days: the storage "
                 f"target needs a board that sleeps below {f['capacity_mah'][0] * f['usable'][0] / (TARGET_STORAGE_DAYS * 24):.2f} mA"
                 " on average)")
    lines += ["", "Figures (sources: hardware/sources.md)"]
    for k, (v, unit, src) in f.items():
        lines.append(f"  {k:18s} {v:>8g} {unit:5s} [{src}]")
    w = t["wakes"][("indoors (no fix), no gateway", "tbeam-v1.1")]
    lines += ["", f"Per wake, indoors with no gateway (v1.x, {w.wakes} wakes simulated): awake {w.awake_s:.1f} s + boot "
              f"{f['boot_s'][0]} s, GNSS {w.gnss_s:.1f} s, TX {w.tx_s * 1000:.0f} ms, RX {w.rx_s:.2f} s"]
    return "\n".join(lines)


def _verdict(what: str, got: float, target: float) -> str:
    if got >= target:
        return f"{what}: {got:.1f} days, target >= {target} met"
    return f"{what}: {got:.1f} days, target >= {target} MISSED by {target - got:.0f} days ({(target - got) / target:.0%})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours per condition (default 24)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="change a figure, e.g. sleep_ma=0.9")
    args = p.parse_args(argv)
    over = {}
    for s in args.set:
        k, _, v = s.partition("=")
        if k not in FIGURES:
            p.error(f"unknown figure {k!r}; known: {', '.join(FIGURES)}")
        try:
            over[k] = (float(v), FIGURES[k][1], "set on the command line")
        except ValueError:
            p.error(f"{k} needs a number, got {v!r}")
    print(report(table(args.hours, over), over))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
