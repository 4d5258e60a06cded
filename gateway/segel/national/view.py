"""The national view's questions, answered from the national store (read-only queries).

`overview`: every province and regency: boxes by custody state, open critical alerts, late legs
(open `behind_schedule`), silent trackers (open `silent`), when the regency was last heard and
how far its clock is off. `regency`: its districts (the nation's own counts beside the counts
the regency sent), open alerts; `box`: one box's custody, alerts, findings and positions.
The console's national pages and `segel national show` print the same dictionaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from segel.national import model, wilayah

STATES = model.STATES


@dataclass
class Counts:
    boxes: int = 0
    states: dict[str, int] = field(default_factory=dict)
    critical: int = 0
    open_alerts: int = 0
    late: int = 0
    silent: int = 0
    opened: int = 0

    def add(self, o: Counts) -> None:
        self.boxes += o.boxes
        for k, v in o.states.items():
            self.states[k] = self.states.get(k, 0) + v
        self.critical += o.critical
        self.open_alerts += o.open_alerts
        self.late += o.late
        self.silent += o.silent
        self.opened += o.opened


@dataclass
class RegencyRow:
    code: str
    name: str
    counts: Counts
    applied: int = 0
    last_seen: float | None = None
    skew_s: float | None = None
    refused: int = 0


@dataclass
class ProvinceRow:
    code: str
    name: str
    counts: Counts
    regencies: list[RegencyRow]


def _counts(conn: psycopg.Connection, group: str, where: str = "", args: tuple = ()) -> dict[Any, Counts]:
    """Counts keyed by `group` (regency, or regency and district) from boxes and open alerts."""
    out: dict[Any, Counts] = {}
    for row in conn.execute(f"SELECT {group}, state, count(*), count(*) FILTER (WHERE seal = 'opened') FROM boxes "
                            f"{where} GROUP BY {group}, state", args):
        *key, state, n, opened = row
        c = out.setdefault(tuple(key) if len(key) > 1 else key[0], Counts())
        c.boxes += n
        c.states[state] = c.states.get(state, 0) + n
        c.opened += opened
    for row in conn.execute(f"SELECT {group}, severity, kind, count(*) FROM alerts "
                            f"{where + ' AND' if where else 'WHERE'} state IN ('open', 'acknowledged') "
                            f"GROUP BY {group}, severity, kind", args):
        *key, sev, kind, n = row
        c = out.setdefault(tuple(key) if len(key) > 1 else key[0], Counts())
        if sev == "info":
            continue
        c.open_alerts += n
        if sev == "critical":
            c.critical += n
        if kind == "behind_schedule":
            c.late += n
        elif kind == "silent":
            c.silent += n
    return out


def overview(conn: psycopg.Connection) -> list[ProvinceRow]:
    counts = _counts(conn, "regency")
    provinces: dict[str, ProvinceRow] = {}
    names = wilayah.provinces()
    for code, name, applied, last_seen, skew, refused in conn.execute(
            "SELECT code, name, applied, last_seen, skew_s, refused FROM regencies ORDER BY code"):
        p = provinces.setdefault(code[:2], ProvinceRow(code[:2], names.get(code[:2], code[:2]), Counts(), []))
        c = counts.get(code, Counts())
        p.regencies.append(RegencyRow(code, name or wilayah.regency_name(code), c, applied, last_seen, skew, refused))
        p.counts.add(c)
    return [provinces[k] for k in sorted(provinces)]


def totals(rows: list[ProvinceRow]) -> Counts:
    t = Counts()
    for p in rows:
        t.add(p.counts)
    return t


def regency(conn: psycopg.Connection, code: str) -> dict | None:
    r = conn.execute("SELECT code, name, applied, items, duplicates, gaps, refused, first_seen, last_seen, skew_s "
                     "FROM regencies WHERE code = %s", (code,)).fetchone()
    if r is None:
        return None
    info = dict(zip(("code", "name", "applied", "items", "duplicates", "gaps", "refused", "first_seen", "last_seen",
                     "skew_s"), r))
    info["name"] = info["name"] or wilayah.regency_name(code)
    info["province"] = wilayah.province_name(code)
    counts = _counts(conn, "district", "WHERE regency = %s", (code,))
    reported = {d: (name, s) for d, name, s in conn.execute(
        "SELECT district, name, summary FROM districts WHERE regency = %s", (code,))}
    districts = []
    for d in sorted(set(counts) | set(reported), key=lambda x: (x is None, x or "")):
        name, s = reported.get(d, (None, None)) if d is not None else reported.get("-", (None, None))
        districts.append({"code": d, "name": name or d or "-", "counts": counts.get(d, Counts()), "reported": s})
    info["districts"] = districts
    info["alerts"] = alerts(conn, code, open_only=True)
    ok = {True: 0, False: 0, None: 0}
    for valid, n in conn.execute("SELECT valid, count(*) FROM checkpoints WHERE regency = %s GROUP BY valid", (code,)):
        ok[valid] = n
    info["checkpoints"] = {"valid": ok[True], "invalid": ok[False], "unsigned": ok[None]}
    info["refusals"] = [dict(zip(("at", "reason", "detail"), row)) for row in conn.execute(
        "SELECT at, reason, detail FROM refusals WHERE regency = %s ORDER BY id DESC LIMIT 20", (code,))]
    return info


ALERT_COLS = ("id", "kind", "severity", "state", "box", "device", "place", "district", "device_time", "raised_at",
              "late", "occurrences", "message", "detail", "acked_by", "resolved_by", "last_event")


def alerts(conn: psycopg.Connection, code: str, box: str | None = None, open_only: bool = False, limit: int = 200) -> list[dict]:
    where = ["regency = %s"]
    args: list[Any] = [code]
    if box:
        where.append("box = %s")
        args.append(box)
    if open_only:
        where.append("state IN ('open', 'acknowledged') AND severity <> 'info'")
    rows = conn.execute(
        f"SELECT {', '.join(ALERT_COLS)} FROM alerts WHERE {' AND '.join(where)} "
        "ORDER BY array_position(ARRAY['critical','high','warning','info'], severity), raised_at DESC LIMIT %s",
        (*args, limit)).fetchall()
    return [dict(zip(ALERT_COLS, r)) for r in rows]


def box(conn: psycopg.Connection, code: str, box_id: str) -> dict | None:
    r = conn.execute("SELECT box, district, tps, device, contest, state, place, state_t, seal, seal_t, lat, lon, fix_t "
                     "FROM boxes WHERE regency = %s AND box = %s", (code, box_id)).fetchone()
    if r is None:
        return None
    info = dict(zip(("box", "district", "tps", "device", "contest", "state", "place", "state_t", "seal", "seal_t",
                     "lat", "lon", "fix_t"), r))
    info["regency"] = code
    info["alerts"] = alerts(conn, code, box=box_id)
    info["findings"] = [dict(zip(("finding", "place", "place_kind", "t", "withdrawn"), f)) for f in conn.execute(
        "SELECT finding, place, place_kind, t, withdrawn FROM findings WHERE regency = %s AND subject = %s "
        "ORDER BY t, counter", (code, box_id))]
    info["positions"] = [dict(zip(("t", "lat", "lon"), p)) for p in conn.execute(
        "SELECT t, lat, lon FROM positions WHERE regency = %s AND box = %s ORDER BY t DESC LIMIT 500", (code, box_id))]
    return info


def boxes(conn: psycopg.Connection, code: str, district: str | None = None, state: str | None = None,
          limit: int = 500) -> list[dict]:
    where, args = ["regency = %s"], [code]
    if district:
        where.append("district = %s")
        args.append(district)
    if state:
        where.append("state = %s")
        args.append(state)
    cols = ("box", "district", "tps", "state", "place", "seal", "fix_t")
    return [dict(zip(cols, r)) for r in conn.execute(
        f"SELECT {', '.join(cols)} FROM boxes WHERE {' AND '.join(where)} ORDER BY box LIMIT %s", (*args, limit))]
