"""The national view as terminal text (`segel national show`), and the uplink's status (`segel national status`)."""

from __future__ import annotations

import sqlite3
import time

from segel.national import capture, view, wilayah

STATE_COLS = ("warehouse", "ppk", "pps", "tps", "in_transit", "unknown")


def _ago(t: float | None, now: float) -> str:
    if t is None:
        return "never"
    d = max(0.0, now - t)
    return f"{d:.0f} s ago" if d < 120 else f"{d / 60:.0f} min ago" if d < 7200 else f"{d / 3600:.1f} h ago"


def _row(label: str, c: view.Counts, extra: str = "") -> str:
    states = " ".join(f"{c.states.get(s, 0):>7}" for s in STATE_COLS)
    return (f"{label:<34} {c.boxes:>8} {states} {c.critical:>8} {c.late:>6} {c.silent:>6} {c.opened:>6}"
            + (f"  {extra}" if extra else ""))


HEADER = (f"{'':<34} {'boxes':>8} " + " ".join(f"{s[:7]:>7}" for s in STATE_COLS)
          + f" {'critical':>8} {'late':>6} {'silent':>6} {'opened':>6}")


def overview(rows: list[view.ProvinceRow], now: float | None = None) -> str:
    now = time.time() if now is None else now
    lines = [HEADER]
    for p in rows:
        lines.append(_row(f"{p.code} {p.name}", p.counts))
        for r in p.regencies:
            skew = f", clock {r.skew_s:+.0f} s" if r.skew_s is not None and abs(r.skew_s) >= 60 else ""
            refused = f", {r.refused} refused" if r.refused else ""
            lines.append(_row(f"  {r.code} {r.name}"[:34], r.counts, f"heard {_ago(r.last_seen, now)}{skew}{refused}"))
    t = view.totals(rows)
    lines.append(_row("Indonesia", t, f"{sum(len(p.regencies) for p in rows)} regencies reporting"))
    return "\n".join(lines)


def regency(info: dict, now: float | None = None) -> str:
    now = time.time() if now is None else now
    z = wilayah.zone(info["code"])
    lines = [f"{info['code']} {info['name']} ({info['province']}); times in {z}",
             f"items applied {info['applied']} (duplicates ignored {info['duplicates']}, after a gap {info['gaps']}, "
             f"refused {info['refused']}); last heard {_ago(info['last_seen'], now)}"
             + (f"; its clock is {info['skew_s']:+.0f} s off" if info["skew_s"] is not None else ""),
             "checkpoint signatures: {valid} valid, {invalid} NOT VALID, {unsigned} unsigned".format(**info["checkpoints"]),
             "", HEADER]
    for d in info["districts"]:
        rep = d["reported"]
        note = ""
        if rep is not None and rep.get("boxes") != d["counts"].boxes:
            note = f"regency counts {rep.get('boxes')} boxes"
        lines.append(_row(f"  {d['code'] or '-'} {d['name']}"[:34], d["counts"], note))
    lines += ["", f"open alerts ({len(info['alerts'])}):"]
    for a in info["alerts"][:50]:
        lines.append(f"  {a['severity']:<8} {a['kind']:<18} {a['box'] or '-':<28} {a['place'] or '-':<20} "
                     f"{wilayah.local_time(a['device_time'] or a['raised_at'], z)} {a['state']}")
    if info["refusals"]:
        lines += ["", "refused messages:"] + [f"  {wilayah.local_time(r['at'], z)} {r['reason']}: {r['detail']}"
                                              for r in info["refusals"]]
    return "\n".join(lines)


def box(info: dict) -> str:
    z = wilayah.zone(info["regency"])
    pos = (f"{info['lat']:.5f}, {info['lon']:.5f} at {wilayah.local_time(info['fix_t'], z)}"
           if info["lat"] is not None else "no position yet")
    lines = [f"box {info['box']} (regency {info['regency']}, district {info['district'] or '-'}, TPS {info['tps'] or '-'}, "
             f"tracker {info['device'] or '-'})",
             f"state {info['state']}" + (f" at {info['place']}" if info["place"] else "")
             + (f" since {wilayah.local_time(info['state_t'], z)}" if info["state_t"] else "")
             + (f"; seal {info['seal']} {wilayah.local_time(info['seal_t'], z)}" if info["seal"] else ""),
             f"last position {pos}; {len(info['positions'])} positions stored", "", "custody:"]
    for f in info["findings"]:
        lines.append(f"  {wilayah.local_time(f['t'], z)} {f['finding']:<18} {f['place'] or '-'}"
                     + ("  (withdrawn: later data disproved it)" if f["withdrawn"] else ""))
    lines += ["", "alerts:"]
    for a in info["alerts"]:
        lines.append(f"  {wilayah.local_time(a['device_time'] or a['raised_at'], z)} {a['severity']:<8} {a['kind']:<18} "
                     f"{a['state']:<12} {a['message'] or ''}"[:160])
    return "\n".join(lines)


def uplink_status(conn: sqlite3.Connection, now: float | None = None) -> str:
    """The regency side: what is waiting for the nation, from the gateway's database."""
    now = time.time() if now is None else now
    capture.ensure_schema(conn)
    acked = int(capture.get_state(conn, "acked") or 0)
    last = capture.last_seq(conn)
    installed = capture.get_state(conn, "installed") is not None
    lines = [f"national uplink: {'capturing' if installed else 'not configured (no [national] urls yet)'}",
             f"items recorded {last}, confirmed by the national store {acked}, waiting {max(0, last - acked)}"]
    rows = conn.execute("SELECT kind, COUNT(*), MIN(committed) FROM national_outbox WHERE seq > ? GROUP BY kind",
                        (acked,)).fetchall()
    for kind, n, oldest in rows:
        lines.append(f"  {kind:<12} {n:>8} waiting, oldest {_ago(oldest, now)}")
    return "\n".join(lines)
