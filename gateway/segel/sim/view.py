"""The live terminal view of a rehearsal, and the summary as text.

What the table shows is the gateway's view, not the simulator's: a box counts at a custody point
once the gateway has published its `arrived` alert for it (handover recorded), and the alert list
is what the gateway published on `segel/alerts/#`. On a terminal the screen is redrawn in place;
otherwise (a pipe, CI) progress and the notable alerts are printed as lines.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import time
from collections import deque
from typing import TextIO

from segel.sim.itinerary import Itinerary
from segel.sim.runner import Progress
from segel.sim.scenario import Scenario

COLUMNS = ("KPU", "PPK", "PPS", "TPS", "back")
_KIND_COL = {"warehouse": "KPU", "ppk": "PPK", "pps": "PPS", "tps": "TPS"}
_SEV = {"critical": "CRIT", "high": "HIGH", "warning": "warn", "info": "info"}


def wita(scn: Scenario, t: float) -> str:
    return dt.datetime.fromtimestamp(t, scn.tz).strftime("%a %d %b %H:%M")


def h_label(scn: Scenario, t: float) -> str:
    eday = scn.calendar.election_day
    if eday is None:
        return ""
    d = (dt.datetime.fromtimestamp(t, scn.tz).date() - eday).days
    return "H" if d == 0 else f"H{d:+d}"


class LiveView:
    def __init__(self, scn: Scenario, itineraries: dict[str, Itinerary], out: TextIO | None = None,
                 tty: bool | None = None, every_s: float = 0.5) -> None:
        self.scn = scn
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.every_s = every_s if self.tty else 5.0
        self.district_of = {b: it.district for b, it in itineraries.items()}
        self.names = {c: p.name.removeprefix("PPK ") for c, p in scn.places.items() if p.kind == "ppk"}
        self.districts = sorted({it.district for it in itineraries.values()})
        self.where: dict[str, str] = {}
        self.counts: dict[str, dict[str, int]] = {d: {"critical": 0, "high": 0} for d in self.districts}
        self.recent: deque[str] = deque(maxlen=9)
        self.n_alerts = 0
        eday = scn.calendar.election_day
        self.eday_ts = scn.local(eday, "00:00") if eday else 0.0
        self._last = 0.0
        self.progress: Progress | None = None
        self.banner = ""  # e.g. where the console is: shown above the table on every redraw

    # ---- inputs -----------------------------------------------------------------------------

    def alerts(self, items: list[dict]) -> None:
        for a in items:
            if a.get("event") != "raised":  # not repeats, resolutions, withdrawals
                continue
            self.n_alerts += 1
            box, kind = a.get("box"), a.get("kind")
            if kind == "arrived" and box and a.get("place") in self.scn.places:
                pk = self.scn.places[a["place"]].kind
                col = _KIND_COL.get(pk, "")
                if pk == "warehouse" and (a.get("device_ts") or 0) > self.eday_ts:
                    col = "back"
                if col:
                    self.where[box] = col
                continue
            sev = a.get("severity", "")
            d = self.district_of.get(box or "", a.get("district") or "")
            if sev in ("critical", "high") and d in self.counts:
                self.counts[d][sev] += 1
            if sev != "info":
                t = a.get("device_ts") or a.get("raised_ts") or 0
                late = " LATE" if a.get("late") else ""
                line = (f"{wita(self.scn, t) if t else '':>16}  {_SEV.get(sev, sev):4} {kind:<17} "
                        f"{box or a.get('device') or '':<24} {a.get('place') or ''}{late}")
                self.recent.append(line)
                if not self.tty and sev in ("critical", "high"):
                    self.out.write("alert " + line.strip() + "\n")
                    self.out.flush()

    def step(self, p: Progress, force: bool = False) -> None:
        self.progress = p
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        if self.tty:
            self.out.write("\x1b[H\x1b[2J" + self.render())
        else:
            self.out.write(self.status_line() + "\n")
        self.out.flush()

    # ---- output -----------------------------------------------------------------------------

    def status_line(self) -> str:
        p = self.progress
        if p is None:
            return "starting"
        accel = (p.now - p.start) / p.wall_s if p.wall_s > 0 else 0.0
        return (f"[{p.fraction * 100:5.1f}%] {wita(self.scn, p.now)} WITA ({h_label(self.scn, p.now)})  "
                f"wakes {p.wakes:,}  trackers on {p.awake:,}  alerts {self.n_alerts:,}  "
                f"wall {p.wall_s:,.0f} s  x{accel:,.0f}")

    def render(self) -> str:
        width = shutil.get_terminal_size((100, 40)).columns
        p = self.progress
        bar_w = max(10, min(50, width - 60))
        frac = p.fraction if p else 0.0
        bar = "#" * int(frac * bar_w) + "." * (bar_w - int(frac * bar_w))
        lines = [f"Segel rehearsal: {self.scn.calendar.name}  (gateway view; Ctrl-C stops)"]
        lines += [self.banner] if self.banner else []
        lines += [f"[{bar}] {self.status_line()}", ""]
        head = f"{'district':<18}{'boxes':>6}" + "".join(f"{c:>6}" for c in COLUMNS) + f"{'crit':>6}{'high':>6}"
        lines.append(head)
        tot = {c: 0 for c in COLUMNS}
        tb = 0
        for d in self.districts:
            boxes = [b for b, dd in self.district_of.items() if dd == d]
            cnt = {c: 0 for c in COLUMNS}
            for b in boxes:
                c = self.where.get(b)
                if c:
                    cnt[c] += 1
            for c in COLUMNS:
                tot[c] += cnt[c]
            tb += len(boxes)
            lines.append(f"{self.names.get(d, d)[:17]:<18}{len(boxes):>6}" + "".join(f"{cnt[c]:>6}" for c in COLUMNS)
                         + f"{self.counts[d]['critical']:>6}{self.counts[d]['high']:>6}")
        lines.append(f"{'total':<18}{tb:>6}" + "".join(f"{tot[c]:>6}" for c in COLUMNS)
                     + f"{sum(v['critical'] for v in self.counts.values()):>6}{sum(v['high'] for v in self.counts.values()):>6}")
        lines += ["", "latest alerts (device time, WITA):"] + [ln[:width - 1] for ln in self.recent]
        return "\n".join(lines) + "\n"


def format_summary(s: object, scn: Scenario) -> str:
    """The end-of-run summary as text (`--json` prints Summary.to_json() instead)."""
    from segel.sim.session import Summary

    assert isinstance(s, Summary)
    g = s.gateway
    rej = ", ".join(f"{k} {v}" for k, v in sorted(g.get("rejected", {}).items())) or "none"
    lines = [
        f"Rehearsal {s.scenario} (SIMULATED trackers f00101..): {s.boxes:,} boxes in {s.districts} districts, "
        f"{wita(scn, s.sim_start)} to {wita(scn, s.sim_end)} WITA in {s.wall_s:,.0f} s",
        f"  tracker wakes {s.wakes:,}; frames sent {s.frames_sent:,} (+{s.frames_unheard:,} "
        + ("nobody heard" if s.radio else "into dead zones") + ", re-sent later)",
        f"  gateway: received {g.get('received', 0):,}, accepted {g.get('accepted', 0):,}, "
        f"duplicates {g.get('duplicates', 0):,}, rejected: {rej}",
        f"  boxes delivered to their TPS: {s.delivered_to_tps:,} of {s.boxes:,}; back at the warehouse: "
        f"{s.back_at_warehouse:,}",
        "  alerts by kind: " + ", ".join(f"{k} {v:,}" for k, v in s.alerts_by_kind.items()),
        "  of which still open at the end: " + (", ".join(f"{k} {v:,}" for k, v in s.alerts_open_by_kind.items())
                                                or "none") + " (the others resolved themselves; info not counted)",
    ]
    if s.radio:
        lines += radio_lines(s.radio)
    lines += ["", "Scripted incidents:"]
    for i in s.incidents:
        mark = "raised " if i.raised else "MISSING"
        late = " (late)" if i.late else ""
        lines.append(f"  [{mark}] {i.id:<22} -> {i.alert}{late}: {i.note}")
    if s.unscripted_critical:
        lines.append(f"Unscripted critical alerts: {len(s.unscripted_critical)}")
        for r in s.unscripted_critical[:10]:
            lines.append(f"  {r['kind']} {r['box']} {r['place'] or ''}")
    else:
        lines.append("Unscripted critical alerts: none")
    if s.withdrawn_critical:
        lines.append(f"Critical alerts the gateway withdrew itself (a missing frame arrived later): {s.withdrawn_critical}")
    for e in s.errors[:5]:
        lines.append(f"error: {e}")
    lines.append("RESULT: " + ("every scripted incident raised its alert" if s.ok else "FAILED (see above)"))
    return "\n".join(lines) + "\n"


def radio_lines(r: dict) -> list[str]:
    """The LoRa figures of a --uplink lora summary (segel.sim.lora)."""
    g = r.get("gateway", {})
    tx = r.get("transmissions", 0)
    pb = r.get("per_bridge", {})
    busiest = sorted(pb.items(), key=lambda kv: -kv[1]["heard"])[:6]
    return [
        f"  LoRa: SF{r.get('sf')} on {r.get('channel_khz', 0) / 1000:.1f} MHz, {r.get('base_stations')} base stations "
        f"({', '.join(f'{n} {k}' for k, n in r.get('sites', {}).items())}), range {r.get('range_km')} km, "
        f"fading {r.get('fading', 0):.0%}",
        f"    uplinks on air {tx:,}: heard {r.get('heard', 0):,} ({r.get('delivery_ratio', 0):.1%}); not heard: "
        f"collided {r.get('collided', 0):,}, faded {r.get('faded', 0):,}, too weak {r.get('too_weak', 0):,}, "
        f"no base station in range {r.get('out_of_range', 0):,}, dead zone {r.get('dead_zone', 0):,}",
        f"    copies {r.get('receptions', 0):,}; heard by two or more base stations {r.get('heard_by_two_or_more', 0):,}; "
        f"late-detected collisions {r.get('late_collisions', 0):,}",
        f"    acks into receive windows {r.get('acks_delivered', 0):,}, faded {r.get('acks_faded', 0):,}, "
        f"none in the window {r.get('no_ack', 0):,}",
        "    heard most: " + ", ".join(f"{k} {v['heard']:,}" for k, v in busiest),
        f"    gateway: {g.get('stored', 0):,} frames stored once each ({g.get('via_bridge_with_rx', 0):,} with rx metadata), "
        f"{g.get('stored_with_two_or_more_receptions', 0):,} of them received two or more times",
    ]
