"""The LoRa network of a simulation (air, base stations, bridges) and the trackers that send through it."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from segel import paths
from segel.sim.fleet import Hub, VirtualTracker
from segel.sim.itinerary import Itinerary
from segel.sim.lora.air import LoraAir
from segel.sim.lora.bases import SimBase
from segel.sim.lora.radio import LoraOptions, place_sites
from segel.sim.scenario import Scenario

paths.import_firmware()
import simhw  # noqa: E402
from segelfw import config as fw_config  # noqa: E402
from segelfw import link as fw_link  # noqa: E402

log = logging.getLogger("segel.sim.lora")


class TrackerLink:
    """The link a LoRa tracker's wake cycle uses: the firmware's own `segelfw.link.LoraLink` on the
    tracker's simulated radio, created afresh at every wake as on the device, plus the counters
    and the attacker's recording that the fleet reads (`sent`, `lost`, `captured`)."""

    def __init__(self, vt: VirtualTracker, air: LoraAir) -> None:
        self.vt = vt
        self.air = air
        self.fw: fw_link.LoraLink | None = None
        self.sent = 0  # heard by at least one base station
        self.lost = 0  # heard by none: collision, fading, out of range, dead zone
        self.captured: deque[bytes] = deque(maxlen=4)

    def _link(self) -> fw_link.LoraLink:
        if self.fw is None:
            hw = self.vt.hw
            self.fw = fw_link.LoraLink(hw.radio, self.vt.cfg, hw.system.random_u32, hw.board.get("radio"))
        return self.fw

    def set_sf(self, sf: int) -> None:
        self._link().set_sf(sf)

    def send(self, frame: bytes) -> int:
        toa = self._link().send(frame)
        self.captured.append(bytes(frame))
        if self.air.heard_last.get(self.vt.hex):
            self.sent += 1
        else:
            self.lost += 1
        return int(toa)

    def recv(self, timeout_ms: int) -> bytes | None:
        return self._link().recv(timeout_ms)

    def sleep(self) -> None:
        if self.fw is not None:
            self.fw.sleep()
            self.fw = None  # deep sleep: the next wake boots and builds its link again


class LoraTracker(VirtualTracker):
    """A VirtualTracker whose radio is on the LoRa air and whose cycle sends through LoraLink."""

    def __init__(self, root: Path, device_id: int, device_key: bytes, it: Itinerary, settings: Any, hub: Hub,
                 seed: int, **kw: Any) -> None:
        super().__init__(root, device_id, device_key, it, settings, hub, seed, **kw)
        assert isinstance(hub, LoraHub)
        o = hub.opts
        self.cfg = fw_config.validate(dict(self.cfg, region=o.region, sf=o.sf, channel=o.channel_khz))
        self.hw.radio = simhw.SimRadio(self.hw.clock, hub.air, name=self.hex)
        hub.air.attach(self.hex, it)
        self.link = TrackerLink(self, hub.air)  # type: ignore[assignment]


class LoraHub(Hub):
    """The LoRa network of a simulation: the air, the base stations and their bridges."""

    tracker_class = LoraTracker

    def __init__(self, scn: Scenario, opts: LoraOptions, broker_url: str, workdir: Path, clock: Any,
                 timeout_s: float = 30.0) -> None:
        self.opts = opts
        self.clock = clock
        self.sites = place_sites(scn, opts.range_m())
        self.air = LoraAir(opts, self.sites)
        buf = Path(workdir) / "bridges"
        buf.mkdir(parents=True, exist_ok=True)
        self.bases: list[SimBase] = []
        self._closed = False
        # The embedded amqtt broker (0.12) hands every client that connects the retained messages
        # of every topic anyone subscribed to, so each bridge gets the other bridges' retained
        # status on its downlink subscription; it rightly counts them as bad downlinks
        # (`bad_downlinks` in its status) and would log a warning for each.
        logging.getLogger("segel.bridge.mqtt").setLevel(logging.ERROR)
        try:
            deadline = time.monotonic() + timeout_s
            for i, s in enumerate(self.sites):
                b = SimBase(s, opts, broker_url, buf, self.air.on_downlink, boot_id=0x5000 + i).start()
                self.bases.append(b)
                self.air.bases[s.base_id] = b
                # one at a time: amqtt fails a connection that arrives while another subscribes
                while not b.bridge.publisher.connected.is_set() and time.monotonic() < deadline:
                    time.sleep(0.005)
            while not all(b.ready() for b in self.bases):
                if time.monotonic() > deadline:
                    raise ConnectionError(f"{sum(not b.ready() for b in self.bases)} of {len(self.bases)} simulated "
                                          f"bridges did not reach the broker at {broker_url} or their base station")
                time.sleep(0.05)
        except BaseException:
            self.close(wait_s=0)
            raise
        self.attacks = 0
        log.info("LoRa: %d base stations (SF%d, %.1f km range)", len(self.sites), opts.sf, opts.range_m() / 1000)

    def publish(self, device: str, frame: bytes) -> None:
        """An attacker's transmission under `device`'s id, from where that box is now."""
        it = self.air.itineraries[device]
        t_ms = self.clock() * 1000.0 + 1000.0 * self.attacks
        self.attacks += 1
        self.air.inject("attacker", frame, t_ms, it.position(t_ms / 1000.0))

    def wait_down(self, device: str, timeout_s: float) -> bytes | None:
        raise NotImplementedError("LoRa trackers receive through their radio")

    def figures(self) -> dict[str, Any]:
        st = self.air.stats
        per_base = {}
        for b in self.bases:
            sl = b.bridge.serial
            per_base[b.site.bridge_id] = {
                "base_id": b.site.base_id, "place": b.site.code, "kind": b.site.kind,
                "heard": b.radio.received, "published": b.bridge.publisher.published,
                "acks_sent": b.base.tx_packets, "acks_late": b.base.tx_late,
                "tx_status": dict(sl.tx_status) if sl else {}}
        return {
            "uplink": "lora", "sf": self.opts.sf, "channel_khz": self.opts.channel_khz,
            "range_km": round(self.opts.range_m() / 1000, 1), "fading": self.opts.fading,
            "shadowing_db": self.opts.shadowing_db, "base_stations": len(self.sites),
            "sites": dict(Counter(s.kind for s in self.sites)),
            "transmissions": st["transmissions"], "heard": st["heard"], "receptions": st["receptions"],
            "heard_by_two_or_more": sum(n for k, n in self.air.copies.items() if k >= 2),
            "collided": st["collided"], "collided_at_some": st["collided_at_some"],
            "late_collisions": st["late_collisions"], "faded": st["faded"], "too_weak": st["too_weak"],
            "out_of_range": st["out_of_range"], "dead_zone": st["dead_zone"],
            "delivery_ratio": round(st["heard"] / st["transmissions"], 4) if st["transmissions"] else 0.0,
            "acks_delivered": st["acks_delivered"], "acks_faded": st["acks_faded"], "no_ack": st["no_ack"],
            "per_bridge": per_base,
        }

    def close(self, wait_s: float = 20.0) -> None:
        """Stop the bridges once what the base stations heard is at the broker (once)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + wait_s
        while wait_s and time.monotonic() < deadline and not all(b.idle() for b in self.bases):
            time.sleep(0.05)
        for b in self.bases:
            try:
                b.stop()
            except Exception:  # noqa: BLE001 - stopping is best effort
                log.debug("stopping %s", b.site.bridge_id, exc_info=True)


def gateway_figures(db_path: Path | str) -> dict[str, Any]:
    """The gateway's side of the LoRa path, from its own database: frames stored (once each) by
    how many receptions they had, and by the base station of their best reception."""
    db = sqlite3.connect(str(db_path), timeout=30)
    try:
        by_n = dict(db.execute("SELECT receptions, count(*) FROM seen GROUP BY receptions").fetchall())
        by_base = dict(db.execute("SELECT coalesce(base_id, '-'), count(*) FROM seen GROUP BY base_id").fetchall())
        via = db.execute("SELECT count(*) FROM seen WHERE bridge_id IS NOT NULL AND rssi IS NOT NULL").fetchone()[0]
    finally:
        db.close()
    return {"stored": sum(by_n.values()), "via_bridge_with_rx": via,
            "stored_with_two_or_more_receptions": sum(n for k, n in by_n.items() if (k or 1) >= 2),
            "by_receptions": {str(k): v for k, v in sorted(by_n.items(), key=lambda kv: kv[0] or 0)},
            "best_base": dict(sorted(by_base.items()))}
