#!/usr/bin/env python3
"""Generate the Kutai Timur scenario (scenarios/kutai-timur/) deterministically from its sources.

    python tools/make_kutim.py            # rewrite the scenario files
    python tools/make_kutim.py --check    # exit 1 if the committed files differ from a fresh run

Inputs: the district table below (codes, PPK positions, voter shares, distribution days; sources
in scenarios/kutai-timur/SOURCES.md) and source/villages.csv (the 141 villages with their points).
Everything random (TPS positions, TPS per village, incident picks) comes from one seeded
generator, so the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "scenarios" / "kutai-timur"
SEED = 6408  # the regency's Kemendagri code
TPS_TOTAL = 701
M_PER_DEG = 111_320.0

WAREHOUSE = ("KPU-6408", "Gudang KPU Kutai Timur (Gedung Expo, Bukit Pelangi, Sangatta)", 0.500, 117.550)

# code, name, share of voters in % (2019 DPS proxy), distribution day (days before the election),
# PPK office position (lat, lon) or None for "the village point nearest the district's mean point".
DISTRICTS: list[tuple[str, str, float, int, tuple[float, float] | None]] = [
    ("64.08.01", "Muara Ancalong", 4.1, 4, (0.4459452573, 116.4884930397)),  # Kelinjau Ilir, the capital
    ("64.08.02", "Muara Wahau", 7.6, 3, None),
    ("64.08.03", "Muara Bengkal", 3.9, 4, None),
    ("64.08.04", "Sangatta Utara", 30.1, 1, (0.515, 117.565)),  # synthetic: 2.5 km from the warehouse
    ("64.08.05", "Sangkulirang", 5.5, 4, (0.988, 117.980)),  # Benua Baru, Wikipedia's town point
    ("64.08.06", "Busang", 1.5, 4, None),
    ("64.08.07", "Telen", 2.5, 3, None),
    ("64.08.08", "Kongbeng", 7.6, 3, None),
    ("64.08.09", "Bengalon", 7.7, 4, None),  # the unnamed eighth H-4 district (see SOURCES.md)
    ("64.08.10", "Kaliorang", 3.3, 3, None),
    ("64.08.11", "Sandaran", 2.4, 4, None),
    ("64.08.12", "Sangatta Selatan", 3.7, 2, (0.437655693, 117.5656167593)),  # Singa Geweh, the urban kelurahan
    ("64.08.13", "Teluk Pandan", 6.3, 2, None),
    ("64.08.14", "Rantau Pulung", 3.2, 2, None),
    ("64.08.15", "Kaubun", 3.9, 3, None),
    ("64.08.16", "Karangan", 2.9, 3, None),
    ("64.08.17", "Batu Ampar", 2.1, 4, None),
    ("64.08.18", "Long Mesangat", 1.8, 4, None),
]
DISTRICT_MEAN = {  # the mean of the district's village points (reference table), for PPK placement
    "64.08.02": (1.129, 116.805), "64.08.03": (0.406, 116.804), "64.08.06": (0.818, 116.499),
    "64.08.07": (0.908, 116.854), "64.08.08": (1.112, 116.987), "64.08.09": (0.787, 117.504),
    "64.08.10": (0.876, 117.870), "64.08.11": (0.968, 118.489), "64.08.13": (0.172, 117.332),
    "64.08.14": (0.617, 117.251), "64.08.15": (1.079, 117.802), "64.08.16": (1.338, 117.637),
    "64.08.17": (0.657, 116.872), "64.08.18": (0.612, 116.711),
}

# Road axes as waypoint chains (approximate: straight segments between towns and junctions, not
# surveyed road geometry). "@<code>" is a PPK office, "@KPU" the warehouse.
ROADS: list[tuple[str, str, str, float, list]] = [
    ("R-TRANSKAL-S", "Trans-Kalimantan: Sangatta - Teluk Pandan (to Bontang)", "road", 1500,
     ["@KPU", "@64.08.12", (0.330, 117.420), "@64.08.13"]),
    ("R-TRANSKAL-N", "Trans-Kalimantan: Sangatta - Bengalon - Simpang Perdau - Kongbeng - Muara Wahau", "road", 1500,
     ["@KPU", (0.600, 117.560), "@64.08.09", (0.850, 117.400), (0.980, 117.150), "@64.08.08", "@64.08.02"]),
    ("R-TELEN", "Muara Wahau - Telen", "road", 1500, ["@64.08.02", (0.980, 116.850), "@64.08.07"]),
    ("R-COAST", "Coastal road: Bengalon - Kaliorang - Kaubun - Karangan", "road", 1500,
     ["@64.08.09", (0.820, 117.700), "@64.08.10", "@64.08.15", (1.200, 117.700), "@64.08.16"]),
    ("R-SANGKULIRANG", "Coastal road: Kaliorang - Sangkulirang", "road", 1500, ["@64.08.10", (0.930, 117.930), "@64.08.05"]),
    ("R-INTERIOR", "Interior road: Sangatta - Rantau Pulung - Batu Ampar - Long Mesangat - Muara Ancalong - Busang",
     "road", 1500,
     ["@KPU", (0.540, 117.400), "@64.08.14", (0.640, 117.050), "@64.08.17", "@64.08.18", (0.520, 116.600), "@64.08.01",
      (0.640, 116.480), "@64.08.06"]),
    ("R-BENGKAL", "Interior road: Long Mesangat - Muara Bengkal", "road", 1500, ["@64.08.18", (0.500, 116.770), "@64.08.03"]),
    ("S-SANDARAN", "Sea leg: Sangkulirang port - Sandaran (navy escort)", "sea", 6000,
     ["@64.08.05", (0.960, 118.060), (0.880, 118.250), (0.890, 118.450), "@64.08.11"]),
]

REPORT_INTERVAL_S = 7200  # the simulated trackers' report interval; see docs/demo.md
CONTESTS = (("GUB", "governor"), ("BUP", "regent"))
ELECTION_DAY = "2024-11-27"

# The scripted incidents: who, what, when, and the alert each must cause. Box ids are resolved by
# rule below (a deterministic pick), so the list stays valid when TPS placement changes.
INCIDENTS = [
    {"id": "detour", "kind": "detour", "alert": "off_corridor", "district": "64.08.14",
     "what": "the truck carrying a Rantau Pulung box leaves the interior road for a 6 km side trip, waits there, "
             "and comes back", "leg": "warehouse_to_ppk", "detour_km": 6.0},
    {"id": "unauthorised-seal-cut", "kind": "seal_cut", "alert": "seal_unauthorised", "district": "64.08.17",
     "what": "the seal wire of a Batu Ampar box is cut at the PPK office two days before the election",
     "at": "2024-11-24T22:30:00+08:00", "close_after_s": 600},
    {"id": "authorised-opening", "kind": "authorised_opening", "alert": "seal_authorised", "district": "64.08.04",
     "what": "the KPPS opens a Sangatta Utara box at its TPS on election day, as the law says (recorded, info only)"},
    {"id": "wrong-tps", "kind": "wrong_tps", "alert": "wrong_tps", "district": "64.08.09",
     "what": "a Bengalon box is dropped at the neighbouring TPS of its village, and fetched three report "
             "intervals later"},
    {"id": "silent-tracker", "kind": "silent", "alert": "silent", "district": "64.08.02",
     "what": "a Muara Wahau tracker's battery is pulled at the PPK office; it never reports again",
     "at": "2024-11-25T05:00:00+08:00"},
    {"id": "dead-zone", "kind": "dead_zone", "alert": "long_stop", "district": "64.08.06",
     "what": "the Busang convoy waits at a river crossing with no coverage; the command post sees its "
             "trackers go silent; they queue frames in flash and upload them when coverage returns; the long stop "
             "is then judged from the late frames and marked late",
     "leg": "warehouse_to_ppk", "convoy": True, "late": True, "zone_center": [0.725, 116.492], "zone_radius_m": 3000},
    {"id": "forged-frame", "kind": "forged_frame", "alert": "forged_frame", "district": "64.08.05",
     "what": "an attacker near Sangkulirang replays a captured frame with altered position bytes and sends frames "
             "under a registered device id without its key",
     "at": "2024-11-26T03:00:00+08:00", "frames": 5},
]


@dataclass
class Place:
    code: str
    name: str
    kind: str
    parent: str
    lat: float
    lon: float
    radius_m: float
    district: str = ""
    children: list[str] = field(default_factory=list)


def _dist_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    dy = (a[0] - b[0]) * M_PER_DEG
    dx = (a[1] - b[1]) * M_PER_DEG * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(dx, dy)


def _offset(p: tuple[float, float], bearing_deg: float, dist_m: float) -> tuple[float, float]:
    b = math.radians(bearing_deg)
    lat = p[0] + dist_m * math.cos(b) / M_PER_DEG
    lon = p[1] + dist_m * math.sin(b) / (M_PER_DEG * math.cos(math.radians(p[0])))
    return round(lat, 6), round(lon, 6)


def _largest_remainder(total: int, weights: list[float], minimum: list[int]) -> list[int]:
    s = sum(weights)
    raw = [total * w / s for w in weights]
    n = [max(m, int(r)) for r, m in zip(raw, minimum)]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - int(raw[i])), i))
    i = 0
    while sum(n) < total:
        n[order[i % len(order)]] += 1
        i += 1
    while sum(n) > total:  # minimums pushed us over: take from the largest
        j = max(range(len(n)), key=lambda k: (n[k] - minimum[k], -k))
        n[j] -= 1
    return n


def read_villages() -> list[dict]:
    with open(OUT / "source" / "villages.csv", newline="") as fh:
        return [dict(r, lat=float(r["lat"]), lon=float(r["lon"])) for r in csv.DictReader(fh)]


def build(rng: random.Random) -> dict:
    villages = read_villages()
    by_district: dict[str, list[dict]] = {}
    for v in villages:
        by_district.setdefault(v["code"][:8], []).append(v)
    places: dict[str, Place] = {}
    wh = Place(WAREHOUSE[0], WAREHOUSE[1], "warehouse", "", WAREHOUSE[2], WAREHOUSE[3], 250.0, "64.08")
    places[wh.code] = wh

    counts = _largest_remainder(TPS_TOTAL, [d[2] for d in DISTRICTS], [len(by_district[d[0]]) for d in DISTRICTS])
    for (code, name, _share, _day, ppk_pos), n_tps in zip(DISTRICTS, counts):
        vs = by_district[code]
        if ppk_pos is None:
            mean = DISTRICT_MEAN[code]
            near = min(vs, key=lambda v: _dist_m(mean, (v["lat"], v["lon"])))
            ppk_pos = (near["lat"], near["lon"])
        ppk = Place(code, f"PPK {name}", "ppk", wh.code, round(ppk_pos[0], 6), round(ppk_pos[1], 6), 150.0, code)
        places[code] = ppk
        # TPS per village: no per-village voter data, so a seeded weight around 1 for each village
        weights = [rng.uniform(0.6, 1.4) for _ in vs]
        per_village = _largest_remainder(n_tps, weights, [1] * len(vs))
        taken: list[tuple[float, float]] = [(ppk.lat, ppk.lon)]
        for v, k in zip(vs, per_village):
            pos = (v["lat"], v["lon"])
            if _dist_m(pos, (ppk.lat, ppk.lon)) < 1200:  # the PPK's own village: office set apart
                pos = _offset((ppk.lat, ppk.lon), rng.uniform(0, 360), 1500)
            pps = Place(v["code"], f"PPS {v['name']}", "pps", code, round(pos[0], 6), round(pos[1], 6), 100.0, code)
            places[pps.code] = pps
            ppk.children.append(pps.code)
            taken.append((pps.lat, pps.lon))
            spread = 600 + 220 * math.sqrt(k)  # a big urban village spreads its TPS wider
            for i in range(1, k + 1):
                for _attempt in range(200):
                    p = _offset((pps.lat, pps.lon), rng.uniform(0, 360), rng.uniform(350, spread))
                    if all(_dist_m(p, q) >= 300 for q in taken):
                        break
                else:
                    raise RuntimeError(f"no room for TPS {i} of {pps.code}")
                taken.append(p)
                tps = Place(f"{v['code']}-{i:03d}", f"TPS {i:03d} {v['name']}", "tps", pps.code, p[0], p[1], 60.0, code)
                places[tps.code] = tps
                pps.children.append(tps.code)
    return {"places": places, "counts": dict(zip([d[0] for d in DISTRICTS], counts))}


def _graph(places: dict[str, Place]) -> tuple[dict, dict]:
    """The road/sea network of ROADS: node -> [(neighbour, metres, mode)], and node positions."""
    pos: dict[str, tuple[float, float]] = {}
    adj: dict[str, list[tuple[str, float, str]]] = {}
    for code, _name, mode, _w, chain in ROADS:
        names = []
        for i, w in enumerate(chain):
            if isinstance(w, str):
                n = "KPU-6408" if w == "@KPU" else w[1:]
                pos[n] = (places[n].lat, places[n].lon)
            else:
                n = f"{code}#{i}"
                pos[n] = w
            names.append(n)
        for a, b in zip(names, names[1:]):
            d = _dist_m(pos[a], pos[b])
            adj.setdefault(a, []).append((b, d, mode))
            adj.setdefault(b, []).append((a, d, mode))
    return adj, pos


def _path(adj: dict, src: str, dst: str) -> list[tuple[str, str]]:
    """Dijkstra: [(node, mode of the segment that reached it)], from src to dst."""
    import heapq

    best = {src: 0.0}
    prev: dict[str, tuple[str, str]] = {}
    heap = [(0.0, src)]
    while heap:
        d, n = heapq.heappop(heap)
        if n == dst:
            break
        if d > best[n]:
            continue
        for m, w, mode in adj.get(n, ()):
            if d + w < best.get(m, math.inf):
                best[m] = d + w
                prev[m] = (n, mode)
                heapq.heappush(heap, (d + w, m))
    if dst not in best:
        raise RuntimeError(f"no road from {src} to {dst}")
    out = [(dst, prev[dst][1] if dst in prev else "road")]
    while out[-1][0] != src:
        n, _ = prev[out[-1][0]]
        out.append((n, prev[n][1] if n in prev else "road"))
    return out[::-1]


def corridors(places: dict[str, Place]) -> list[dict]:
    out = []
    # The road axes themselves, for maps (no from/to: no custody leg uses them directly).
    for code, name, kind, width, chain in ROADS:
        pts = [(places["KPU-6408" if w == "@KPU" else w[1:]].lat, places["KPU-6408" if w == "@KPU" else w[1:]].lon)
               if isinstance(w, str) else w for w in chain]
        out.append({"code": code, "name": name, "width_m": width, "points": pts, "modes": [kind] * (len(pts) - 1)})
    # One corridor per warehouse -> PPK leg, along the network (what a custody plan names).
    adj, pos = _graph(places)
    wh = places["KPU-6408"]
    for p in places.values():
        if p.kind != "ppk":
            continue
        if p.code not in adj:  # next to the warehouse: a straight street
            pts, modes = [(wh.lat, wh.lon), (p.lat, p.lon)], ["road"]
        else:
            path = _path(adj, wh.code, p.code)
            pts = [pos[n] for n, _m in path]
            modes = [m for _n, m in path[1:]]
        width = 6000 if "sea" in modes else 1500
        out.append({"code": f"W-{p.code}", "name": f"Warehouse - {p.name}", "width_m": width, "points": pts,
                    "modes": modes, "from": wh.code, "to": p.code})
    # Local roads: PPK office to each village office, village office to each TPS (synthetic, straight)
    for p in places.values():
        if p.kind == "pps":
            ppk = places[p.parent]
            out.append({"code": f"L-{p.code}", "name": f"Local road {ppk.name[4:]} - {p.name[4:]}", "width_m": 1000,
                        "points": [(ppk.lat, ppk.lon), (p.lat, p.lon)], "modes": ["road"], "from": ppk.code, "to": p.code})
            for c in p.children:
                t = places[c]
                out.append({"code": f"L-{t.code}", "name": f"Street to {t.name}", "width_m": 600,
                            "points": [(p.lat, p.lon), (t.lat, t.lon)], "modes": ["road"], "from": p.code, "to": t.code})
    return out


# ---- emitters (formats: docs/places.md, docs/custody.md) ---------------------------------------


def _fmt(v: float) -> str:
    return f"{v:.6f}".rstrip("0").rstrip(".")


def places_csv(places: dict[str, Place]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["code", "kind", "name", "parent", "lat", "lon", "radius_m"])
    for p in places.values():
        w.writerow([p.code, p.kind, p.name, p.parent, _fmt(p.lat), _fmt(p.lon), _fmt(p.radius_m)])
    return buf.getvalue()


def corridors_geojson(cors: list[dict]) -> str:
    feats = []
    for c in cors:
        feats.append({
            "type": "Feature",
            "properties": {k: v for k, v in (("code", c["code"]), ("kind", "corridor"), ("name", c["name"]),
                                             ("width_m", c["width_m"]), ("from", c.get("from")), ("to", c.get("to")),
                                             ("modes", c["modes"])) if v is not None},
            "geometry": {"type": "LineString", "coordinates": [[round(lon, 6), round(lat, 6)] for lat, lon in c["points"]]},
        })
    lines = ",\n".join(json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in feats)
    return '{"type":"FeatureCollection","features":[\n' + lines + "\n]}\n"


def boxes_csv(places: dict[str, Place]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["box", "tps", "contest"])
    for p in places.values():
        if p.kind == "tps":
            for suffix, contest in CONTESTS:
                w.writerow([f"{p.code}-{suffix}", p.code, contest])
    return buf.getvalue()


def pick_incident_boxes(places: dict[str, Place], rng: random.Random) -> list[dict]:
    out = []
    for inc in INCIDENTS:
        tps = sorted(c for c, p in places.items() if p.kind == "tps" and p.district == inc["district"])
        pick = rng.choice(tps)
        d = dict(inc)
        d["box"] = f"{pick}-GUB"
        if inc["id"] == "wrong-tps":  # a neighbour in the same village
            sibs = sorted(places[places[pick].parent].children)
            if len(sibs) < 2:
                raise RuntimeError(f"{pick} has no neighbour TPS")
            d["deliver_to"] = sibs[(sibs.index(pick) + 1) % len(sibs)]
        out.append(d)
    return out


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


def incidents_toml(incs: list[dict]) -> str:
    out = ["# Scripted incidents of the Kutai Timur rehearsal (generated by tools/make_kutim.py).",
           "# Each names the alert kind the gateway must raise for it; `segel demo` checks every one.",
           "# Times are WITA (UTC+8).", ""]
    for inc in incs:
        out.append("[[incident]]")
        for k in ("id", "kind", "alert", "box", "district", "what"):
            out.append(f"{k} = {_toml_value(inc[k])}")
        for k, v in inc.items():
            if k not in ("id", "kind", "alert", "box", "district", "what"):
                out.append(f"{k} = {v if k == 'at' else _toml_value(v)}")
        out.append("")
    return "\n".join(out)


# Leg windows (local time, WITA) by distribution day; "H-k" = k days before the election.
# (depart, arrive_by) per leg; the return legs are the same for every district.
STAGED = {
    4: {"warehouse_to_ppk": ("2024-11-23T06:00", "2024-11-23T23:00"), "ppk_to_pps": ("2024-11-25T07:00", "2024-11-25T21:00")},
    3: {"warehouse_to_ppk": ("2024-11-24T06:00", "2024-11-24T23:00"), "ppk_to_pps": ("2024-11-25T07:00", "2024-11-25T21:00")},
    2: {"warehouse_to_ppk": ("2024-11-25T06:00", "2024-11-25T20:00"), "ppk_to_pps": ("2024-11-26T06:00", "2024-11-26T15:00")},
    1: {"warehouse_to_ppk": ("2024-11-26T06:00", "2024-11-26T12:00"), "ppk_to_pps": ("2024-11-26T10:00", "2024-11-26T18:00")},
}
COMMON_LEGS = {
    "pps_to_tps": ("2024-11-26T13:00", "2024-11-26T23:30"),
    "tps_to_pps": ("2024-11-27T19:00", "2024-11-28T03:00"),
    "pps_to_ppk": ("2024-11-28T06:00", "2024-11-28T15:00"),
    "ppk_to_warehouse": ("2024-11-29T06:00", "2024-11-29T22:00"),
}
SEAL_WINDOWS = {  # where and when a seal may be opened (authorised)
    "tps": ("2024-11-27T06:00", "2024-11-28T02:00"),  # shown empty before voting; the count
    "ppk": ("2024-11-28T08:00", "2024-12-03T23:00"),  # recapitulation at the PPK
}


def calendar_toml(report_interval_s: int) -> str:
    out = [
        "# The Pilkada 2024 distribution calendar of KPU Kutai Timur, as the rehearsal uses it.",
        "# Format: docs/custody.md. Local time is WITA (UTC+8). Generated by tools/make_kutim.py;",
        "# the staging by district is KPU Kutim's (H-4 farthest ... H-1 Sangatta Utara), the hours",
        "# inside each day are synthetic (SOURCES.md).",
        "",
        'name = "Pilkada Kutai Timur 2024"',
        'timezone = "WITA"',
        f"election_day = {ELECTION_DAY}",
        "",
    ]
    for leg, (a, b) in COMMON_LEGS.items():
        out += [f"[legs.{leg}]", f"depart = {a}:00", f"arrive_by = {b}:00", ""]
    for kind, (a, b) in SEAL_WINDOWS.items():
        out += [f"[seal.{kind}]", f"open = {a}:00", f"close = {b}:00", ""]
    for code, name, _share, h, _pos in DISTRICTS:
        out.append(f"# {name}: distributed on H-{h}")
        for leg, (a, b) in STAGED[h].items():
            out += [f'[ppk."{code}".{leg}]', f"depart = {a}:00", f"arrive_by = {b}:00"]
        out.append("")
    out += [
        "[rules]",
        f"report_interval_s = {report_interval_s}  # the rehearsal's trackers (docs/demo.md)",
        "silent_after_intervals = 3",
        "",
    ]
    return "\n".join(out)


def scenario_toml() -> str:
    return "\n".join([
        "# The Kutai Timur rehearsal: how the virtual fleet behaves (docs/scenario.md). Generated by",
        "# tools/make_kutim.py. Times of day are local (WITA); speeds are averages including stops.",
        'name = "kutai-timur"',
        "",
        "[simulation]",
        f"report_interval_s = {REPORT_INTERVAL_S}  # docs/demo.md: why two hours",
        "status_interval_s = 86400  # one status frame a day: 12 report intervals, the firmware default ratio (5 min, 1 h)",
        "power_on_before_s = 5400  # switched on and armed at packing, 1.5 h before the convoy leaves",
        "road_kmh = 40.0",
        "local_kmh = 25.0",
        "sea_kmh = 15.0  # the navy boat to Sandaran",
        "stagger_s = 3600",
        "# at each custody point at least 2.5 report intervals (its arrival is recorded on the second fix)",
        'show_empty = "06:45"  # the KPPS shows the empty box before voting opens at 07:00',
        'show_empty_close = "06:55"',
        'count_open = "13:05"  # the count, after voting closes at 13:00',
        'count_close = "19:00"',
        'recap_open = "16:00"  # recapitulation at the PPK, the day after',
        'recap_close = "18:00"',
        "rearm_after_s = 300",
        "gnss_dropouts_per_day = 2.0",
        "battery_mv = 4100",
        "battery_mv_per_day = 45.0",
        "# trackers stay on 2.5 report intervals after the last box is back (its arrival is recorded on the second fix)",
        "",
    ])


def render() -> dict[str, str]:
    rng = random.Random(SEED)
    model = build(rng)
    places = model["places"]
    cors = corridors(places)
    incs = pick_incident_boxes(places, rng)
    return {
        "places.csv": places_csv(places),
        "corridors.geojson": corridors_geojson(cors),
        "boxes.csv": boxes_csv(places),
        "calendar.toml": calendar_toml(REPORT_INTERVAL_S),
        "incidents.toml": incidents_toml(incs),
        "scenario.toml": scenario_toml(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the files on disk instead of writing")
    args = ap.parse_args(argv)
    files = render()
    stale = []
    for name, text in files.items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("out of date (run python tools/make_kutim.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    if not args.check:
        print(f"wrote {', '.join(files)} to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
