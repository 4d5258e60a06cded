"""The simulated LoRa network's settings (range, fading, shadowing) and where its base stations stand."""

from __future__ import annotations

import math
from dataclasses import dataclass

from segel.sim.itinerary import Builder, dist_m
from segel.sim.scenario import Scenario

# SX1276/SX1262 at 125 kHz: the SNR down to which each SF still demodulates (datasheet), and the
# noise floor (-174 dBm/Hz + 10 log10(125 kHz) + a 6 dB noise figure).
DEMOD_SNR_DB = {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}
NOISE_FLOOR_DBM = -117.0


def sensitivity_dbm(sf: int) -> float:
    return NOISE_FLOOR_DBM + DEMOD_SNR_DB[sf]


@dataclass(frozen=True)
class LoraOptions:
    """The simulated radio network (picklable: it travels to the fleet process)."""

    sf: int = 10  # the trackers' and base stations' spreading factor (SF7 to SF10 fit the dwell limit)
    region: str = "AS923-2"
    channel_khz: int = 921400  # single-channel mode: trackers and T-Beam base stations on one channel
    range_km_sf10: float = 15.0  # where the mean received power falls to SF10's sensitivity
    path_loss_exp: float = 3.0  # log-distance exponent (lowland forest, base antenna on a mast)
    shadowing_db: float = 4.0  # standard deviation of the received power around its mean
    fading: float = 0.05  # each copy (uplink at a base station, downlink at a tracker) also lost with this probability
    seed: int = 1

    def range_m(self) -> float:
        """Where the mean received power equals this SF's sensitivity."""
        db = sensitivity_dbm(self.sf) - sensitivity_dbm(10)
        return self.range_km_sf10 * 1000.0 * 10 ** (db / (10 * self.path_loss_exp))

    def mean_rssi(self, d_m: float) -> float:
        d = max(d_m, 50.0)
        return sensitivity_dbm(self.sf) + 10 * self.path_loss_exp * math.log10(self.range_m() / d)

    def interference_m(self) -> float:
        """A transmission disturbs a base station up to where its mean power is 6 dB under the
        sensitivity (it cannot be decoded there, but it still destroys an overlapping frame)."""
        return self.range_m() * 10 ** (6 / (10 * self.path_loss_exp))


@dataclass(frozen=True)
class Site:
    base_id: str  # the base station's device id (6 characters, in its serial records)
    bridge_id: str  # the `segel bridge --id` next to it (MQTT topics segel/bridge/<id>/...)
    code: str  # the place it stands at
    kind: str  # warehouse, ppk or pps
    lat: float
    lon: float


def place_sites(scn: Scenario, range_m: float) -> list[Site]:
    """Base stations at the KPU warehouse and every PPK office, then at PPS (village) offices,
    greedily, until every TPS of the scenario is within range of one (the one covering most TPS
    still uncovered first; ties by place code). Deterministic."""
    b = Builder(scn)
    fixed = [(c, p.kind) for c, p in sorted(scn.places.items()) if p.kind in ("warehouse", "ppk")]
    fixed.sort(key=lambda x: (x[1] != "warehouse", x[0]))
    pos = {c: b.center(c) for c, p in scn.places.items() if p.kind in ("warehouse", "ppk", "pps", "tps")}
    chosen = [c for c, _ in fixed]
    tps = [c for c, p in sorted(scn.places.items()) if p.kind == "tps"]
    uncovered = [t for t in tps if all(dist_m(pos[t], pos[s]) > range_m for s in chosen)]
    pps = [c for c, p in sorted(scn.places.items()) if p.kind == "pps"]
    while uncovered:
        best, n = None, 0
        for c in pps:
            k = sum(dist_m(pos[t], pos[c]) <= range_m for t in uncovered)
            if k > n:
                best, n = c, k
        if best is None:  # a TPS no PPS office reaches: it stays without coverage
            break
        chosen.append(best)
        uncovered = [t for t in uncovered if dist_m(pos[t], pos[best]) > range_m]
    sites = []
    for i, c in enumerate(chosen):
        kind = scn.places[c].kind
        sites.append(Site(f"b{i + 1:05d}", f"{kind}-{c}".lower(), c, kind, *pos[c]))
    return sites
