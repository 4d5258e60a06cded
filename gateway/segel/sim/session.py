"""A rehearsal: scenario + registry + broker + the real gateway + the virtual fleet, start to end.

    r = Rehearsal(Options(scenario=Path("scenarios/kutai-timur"), boxes=40)).setup()
    try:
        summary = r.run(on_step=print)
    finally:
        r.close()

Setup writes a fresh fleet secret and gateway database in a work folder, imports the scenario's
places, corridors and calendar, registers one tracker per box and pairs it (the same importers an
election office uses), starts the broker (embedded amqtt unless a URL is given) and the gateway
(`segel.gateway.Gateway` with the custody judge, on the simulation's clock), and builds the
virtual trackers. The summary is computed from the gateway's own database at the end.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segel import store
from segel.config import Config
from segel.config import load as load_config
from segel.custody import checkpoints
from segel.custody.judge import build_judge
from segel.edge import topics
from segel.registry import Registry, create_fleet_secret
from segel.service.gateway import Gateway
from segel.sim import scenario as scn_mod
from segel.sim.broker import BrokerProcess, EmbeddedBroker, MosquittoProcess, mosquitto_installed
from segel.sim.fleetproc import (
    FleetProcess,
    FleetSpec,
    FleetStats,
    itineraries,
    run_fleet,
)
from segel.sim.itinerary import Itinerary
from segel.sim.runner import Progress, SimClock
from segel.sim.scenario import Box, Scenario

log = logging.getLogger("segel.sim")
FIRST_DEVICE = 0x000101


@dataclass
class Options:
    scenario: Path
    boxes: int | None = None  # None: every box of the scenario
    broker_url: str | None = None  # None: a broker of its own (see `broker`)
    # without broker_url: "auto" = a private Mosquitto when the mosquitto package is installed,
    # else amqtt; "mosquitto" or "amqtt" to choose (amqtt: its own process, or a thread here)
    broker: str = "auto"
    influx_url: str | None = None  # http://host:8086/db (InfluxDB 1.x /write); None: lines stay in the outbox
    workdir: Path | None = None  # None: a temporary folder, removed at the end
    speed: float | None = None  # simulation seconds per real second at most; None: as fast as possible
    # Two overlapping steps keep receive times within 2 x step_s (480 s) of device times, under the
    # judge's late_after_s (600 s). A wake mostly waits for its acks, so the rehearsal's pace is
    # the number of wakes in flight: 240 s steps put ~90 of the 1,402 trackers in flight at once
    # (120 s and 48 threads: ~45, and the two processes idled half the time; docs/demo.md).
    step_s: float = 240.0
    workers: int = 128
    report_interval_s: int | None = None  # overrides scenario.toml
    gateway_tick_s: float = 600.0  # simulation seconds between the judges' timer runs
    processes: bool = True  # the fleet in a child process (two cores); False: threads of this process
    uplink: str = "wifi"  # "lora": over the simulated air, base stations and bridges (segel.sim.lora)
    lora: Any = None  # segel.sim.lora.LoraOptions (None: its defaults)


@dataclass
class IncidentResult:
    id: str
    kind: str
    alert: str
    box: str
    what: str
    raised: bool
    alert_ids: list[str] = field(default_factory=list)
    late: bool | None = None
    device_time: float | None = None
    note: str = ""


@dataclass
class Summary:
    scenario: str
    boxes: int
    districts: int
    sim_start: float
    sim_end: float
    wall_s: float
    wakes: int
    frames_sent: int
    frames_unheard: int
    gateway: dict[str, Any]
    delivered_to_tps: int
    back_at_warehouse: int
    alerts_by_kind: dict[str, int]
    alerts_by_severity: dict[str, int]
    incidents: list[IncidentResult]
    unscripted_critical: list[dict]
    trackers_off: dict[str, int]
    errors: list[str]
    radio: dict | None = None  # --uplink lora: the air's, base stations' and gateway's figures
    withdrawn_critical: int = 0  # unscripted critical alerts the gateway withdrew itself (not in unscripted_critical)
    # alerts still open (or acknowledged) at the end, by kind: most non-info alerts resolve
    # themselves (a silent tracker heard again, a late box confirmed at its destination)
    alerts_open_by_kind: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(i.raised for i in self.incidents) and not self.unscripted_critical and not self.errors

    def to_json(self) -> dict:
        d = self.__dict__.copy()
        d["incidents"] = [i.__dict__ for i in self.incidents]
        d["ok"] = self.ok
        return d


class AlertFeed:
    """Alerts as the gateway publishes them (segel/alerts/#), for the live view."""

    def __init__(self, host: str, port: int) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.items: list[dict] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id="segel-demo-alerts")
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.connect(host, port)
        c.loop_start()
        self._ready.wait(10)
        self.client = c

    def _on_connect(self, client: Any, *_args: Any) -> None:
        client.subscribe(topics.ALERT_SUB, qos=1)
        self._ready.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            a = json.loads(msg.payload)
        except ValueError:
            return
        with self._lock:
            self.items.append(a)

    def take(self) -> list[dict]:
        with self._lock:
            out, self.items = self.items, []
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def choose_boxes(scn: Scenario, n: int | None) -> list[Box]:
    """All boxes, or n of them: every incident's box (and its convoy) first, then spread over districts."""
    if n is None or n >= len(scn.boxes):
        return list(scn.boxes)
    by_box = {b.box: b for b in scn.boxes}
    chosen: dict[str, Box] = {}
    for inc in scn.incidents:
        chosen[inc.box] = by_box[inc.box]
    for inc in scn.incidents:
        if inc.params.get("convoy"):
            d = scn.district_of(by_box[inc.box])
            for b in [b for b in scn.boxes if scn.district_of(b) == d][:4]:
                chosen.setdefault(b.box, b)
    rest = [b for b in scn.boxes if b.box not in chosen]
    step = max(1, len(rest) // max(1, n - len(chosen)))
    for b in rest[::step]:
        if len(chosen) >= n:
            break
        chosen[b.box] = b
    return sorted(chosen.values(), key=lambda b: b.box)


class Rehearsal:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.scn: Scenario = scn_mod.load(opts.scenario)
        if opts.report_interval_s:
            from dataclasses import replace

            self.scn.settings = replace(self.scn.settings, report_interval_s=opts.report_interval_s)
        self.boxes = choose_boxes(self.scn, opts.boxes)
        self._tmp = opts.workdir is None
        # a throw-away rehearsal keeps its database on a RAM disk when there is one (commits are cheaper)
        shm = Path("/dev/shm")
        tmp_parent = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.dir = Path(opts.workdir or tempfile.mkdtemp(prefix="segel-rehearsal-", dir=tmp_parent))
        self.broker: EmbeddedBroker | BrokerProcess | MosquittoProcess | None = None
        self.gateway: Gateway | None = None
        self.feed: AlertFeed | None = None
        self.fleet: FleetProcess | None = None
        self.itineraries: dict[str, Itinerary] = {}
        self.devices: dict[str, int] = {}
        self.clock: Any = None
        self.spec: FleetSpec | None = None
        self.stats: FleetStats | None = None
        self.closers: list[Any] = []  # run first on close (e.g. the console)
        self.broker_url = ""

    # ---- setup ------------------------------------------------------------------------------

    def gateway_config(self, broker_url: str) -> Config:
        return load_config(None, env={}, overrides={
            "gateway.db": str(self.dir / "segel.db"), "gateway.fleet_secret": str(self.dir / "fleet.key"),
            "gateway.recording_dir": str(self.dir / "recordings"), "gateway.tick_interval_s": self.opts.gateway_tick_s,
            "gateway.health_interval_s": 6 * 3600.0, "gateway.instance": "rehearsal",
            "mqtt.url": broker_url, "mqtt.protocol": "3.1.1", "mqtt.client_id": "segel-rehearsal-gateway",
            # paho inside the gateway's process: the rehearsal already runs the fleet and the broker
            # in processes of their own on two cores; one hop less per frame costs 8 % less CPU
            # (`segel demo --boxes 300`: 134 s against 146 s) than a fourth busy process
            "mqtt.link": "thread",
            # ledger checkpoints signed with the rehearsal's own key, every 6 simulated hours
            "custody.signing_key": str(self.dir / "signing.key"), "custody.checkpoint_interval_s": 6 * 3600.0,
            "custody.checkpoint_file": str(self.dir / "checkpoints.jsonl"),
            **self._influx_overrides(),
        })

    def console_config(self) -> Config:
        """The gateway's configuration plus the calendar (box pages show legs against the plan)."""
        cfg = self.gateway_config(self.broker_url)
        cfg.custody.calendar = str(self.scn.files()["calendar"])
        cfg.console.silent_after_s = 3.0 * self.scn.settings.report_interval_s
        return cfg

    def _influx_overrides(self) -> dict[str, Any]:
        u = self.opts.influx_url
        if not u:
            return {}
        import urllib.parse

        p = urllib.parse.urlsplit(u)
        db = p.path.strip("/") or "segel"
        return {"influx.kind": "v1", "influx.url": f"{p.scheme}://{p.netloc}", "influx.database": db}

    def setup(self) -> Rehearsal:
        """Registry, places, boxes, plans, broker, gateway; the fleet is built by run()."""
        scn, s = self.scn, self.scn.settings
        self.dir.mkdir(parents=True, exist_ok=True)
        secret = create_fleet_secret(self.dir / "fleet.key")
        checkpoints.create_key(self.dir / "signing.key")
        conn = store.connect(self.dir / "segel.db")
        reg = Registry(conn)
        self.devices = {b.box: FIRST_DEVICE + i for i, b in enumerate(self.boxes)}
        boxes_csv = self.dir / "boxes.csv"
        boxes_csv.write_text(scn_mod.boxes_csv_with_devices(scn, self.boxes, self.devices), encoding="utf-8")
        conn.execute("BEGIN IMMEDIATE")
        for b in self.boxes:
            reg.add_device(self.devices[b.box])
        conn.execute("COMMIT")
        f = scn.files()
        judge = build_judge(conn, places=[f["places"], f["corridors"]], boxes=boxes_csv, calendar=f["calendar"],
                            settings={"report_interval_s": float(s.report_interval_s)})
        # simulated time runs thousands of times faster than real time: a tick's work spread over
        # the next ticks (what keeps a live gateway's pauses short) would be spread over simulated
        # minutes and judge some boxes late; the rehearsal's timers do all that is due at once
        judge.timers.bounded = False
        conn.close()
        self.itineraries = itineraries(scn, [b.box for b in self.boxes])
        start = min(it.power_on for it in self.itineraries.values()) - 60
        if self.opts.broker_url:
            url = self.opts.broker_url
        else:
            self.broker = self._own_broker().start()
            url = self.broker.url
        from segel.edge.mqtt import parse_url

        self.broker_url = url
        bk = parse_url(url)
        self.spec = FleetSpec(str(self.opts.scenario), [b.box for b in self.boxes], self.devices, secret, str(self.dir),
                              bk.host, bk.port, bk.username, bk.password, self.opts.report_interval_s,
                              self.opts.step_s, self.opts.workers, self.opts.speed, uplink=self.opts.uplink,
                              lora=self.opts.lora)
        if self.opts.processes:
            self.fleet = FleetProcess(self.spec, start)
            self.clock = self.fleet.clock
        else:
            self.clock = SimClock(start)
        self.gateway = Gateway(self.gateway_config(url), [judge], clock=self.clock).start()
        if not self.gateway.wait_until(lambda sn: sn.mqtt_connected, 20):
            raise ConnectionError(f"the gateway could not connect to the broker at {url}")
        self.feed = AlertFeed(bk.host, bk.port)
        return self

    def _own_broker(self) -> EmbeddedBroker | BrokerProcess | MosquittoProcess:
        """Mosquitto when installed (or asked for), else amqtt; with processes, amqtt gets a
        process (and a GIL) of its own too."""
        kind = self.opts.broker
        if kind == "mosquitto" or (kind == "auto" and mosquitto_installed()):
            return MosquittoProcess(self.dir / "mosquitto")
        return BrokerProcess() if self.opts.processes else EmbeddedBroker()

    # ---- run --------------------------------------------------------------------------------

    def run(self, on_step: Any = None) -> Summary:
        assert self.spec is not None and self.gateway is not None
        wall0 = time.monotonic()
        if self.fleet is not None:
            self.stats = self.fleet.start().wait(on_step)
        else:
            self.stats = run_fleet(self.spec, self.clock, on_step)
        prog = self.stats.progress
        # let the gateway finish what it has, then run its timers once more at the end time
        for _ in range(2):
            self.gateway.wait_until(lambda sn: sn.queue == 0, 60)
            time.sleep(0.3)
        self.clock.set(prog.now + self.opts.gateway_tick_s + 1)
        time.sleep(0.5)
        self.gateway.wait_until(lambda sn: sn.queue == 0, 60)
        if self.gateway.drainer is not None:  # --influx: everything written before the summary
            import sqlite3

            from segel.influx import outbox

            db = sqlite3.connect(str(self.dir / "segel.db"), timeout=30)
            deadline = time.monotonic() + 300
            while outbox.depth(db) and time.monotonic() < deadline:
                self.gateway.drainer.wake.set()
                time.sleep(0.2)
            db.close()
        return self.summary(prog, time.monotonic() - wall0)

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()

    def incident_boxes(self) -> dict[str, set[str]]:
        """incident id -> the boxes it touches (a convoy incident: every chosen box of the district)."""
        out: dict[str, set[str]] = {}
        for inc in self.scn.incidents:
            boxes = {inc.box}
            if inc.params.get("convoy"):
                d = self.itineraries[inc.box].district if inc.box in self.itineraries else None
                boxes |= {b for b, it in self.itineraries.items() if it.district == d}
            out[inc.id] = boxes & set(self.itineraries)
        return out

    def summary(self, prog: Progress, wall_s: float) -> Summary:
        assert self.gateway is not None
        import sqlite3

        db = sqlite3.connect(str(self.dir / "segel.db"), timeout=30)
        rows = [dict(zip(("kind", "severity", "box", "place", "late", "device_time", "id", "state"), r)) for r in db.execute(
            "SELECT kind, severity, box, place, late, device_time, id, state FROM alerts")]
        db.close()
        tps_of = {b.box: b.tps for b in self.boxes}
        eday = self.scn.calendar.election_day
        eday_ts = self.scn.local(eday, "00:00") if eday else prog.start
        delivered = {r["box"] for r in rows if r["kind"] == "arrived" and r["place"] == tps_of.get(r["box"])}
        wh_codes = {c for c, p in self.scn.places.items() if p.kind == "warehouse"}
        back = {r["box"] for r in rows if r["kind"] == "arrived" and r["place"] in wh_codes
                and (r["device_time"] or 0) > eday_ts}
        by_kind: dict[str, int] = {}
        by_sev: dict[str, int] = {}
        still_open: dict[str, int] = {}
        for r in rows:
            by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
            by_sev[r["severity"]] = by_sev.get(r["severity"], 0) + 1
            if r["state"] in ("open", "acknowledged") and r["severity"] != "info":
                still_open[r["kind"]] = still_open.get(r["kind"], 0) + 1
        touched = self.incident_boxes()
        results = []
        chosen = {b.box for b in self.boxes}
        for inc in self.scn.incidents:
            if inc.box not in chosen:
                continue
            hits = [r for r in rows if r["kind"] == inc.alert and r["box"] in touched[inc.id]]
            if inc.params.get("late"):
                hits = [r for r in hits if r["late"]]
            results.append(IncidentResult(
                inc.id, inc.kind, inc.alert, inc.box, inc.what, bool(hits), sorted(r["id"] for r in hits),
                late=any(r["late"] for r in hits) if hits else None,
                device_time=min((r["device_time"] for r in hits if r["device_time"]), default=None),
                note=f"{len(hits)} alert(s) on {len(touched[inc.id])} box(es)" if hits else "no such alert"))
        expected = {(b, inc.alert) for inc in self.scn.incidents for b in touched.get(inc.id, ())}
        # a critical alert the gateway itself withdrew (tamper_latched once the seal frame it was
        # missing arrives, e.g. after a LoRa collision) is counted apart, not as unexplained
        crit = [r for r in rows if r["severity"] == "critical" and (r["box"], r["kind"]) not in expected]
        unscripted = [r for r in crit if r["state"] != "withdrawn"]
        withdrawn = [r for r in crit if r["state"] == "withdrawn"]
        snap = self.gateway.snapshot()
        st = self.stats
        off: dict[str, int] = {}
        for why in (st.retired.values() if st else ()):
            off[why] = off.get(why, 0) + 1
        return Summary(
            scenario=self.scn.name, boxes=len(self.boxes), districts=len({it.district for it in self.itineraries.values()}),
            sim_start=prog.start, sim_end=prog.now, wall_s=round(wall_s, 1), wakes=prog.wakes,
            frames_sent=st.frames_sent if st else 0, frames_unheard=st.frames_unheard if st else 0,
            gateway={"received": snap.received, "accepted": snap.accepted, "duplicates": snap.duplicates,
                     "rejected": snap.rejected, "downlinks": snap.downlinks_published,
                     "alerts_published": snap.alerts_published},
            delivered_to_tps=len(delivered), back_at_warehouse=len(back), alerts_by_kind=dict(sorted(by_kind.items())),
            alerts_by_severity=by_sev, incidents=results, unscripted_critical=unscripted,
            withdrawn_critical=len(withdrawn), trackers_off=off,
            errors=list(st.errors if st else []), radio=self._radio(st),
            alerts_open_by_kind=dict(sorted(still_open.items())))

    def _radio(self, st: FleetStats | None) -> dict | None:
        if self.opts.uplink != "lora":
            return None
        from segel.sim.lora import gateway_figures

        return dict(st.radio if st and st.radio else {}, gateway=gateway_figures(self.dir / "segel.db"))

    # ---- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        for c in self.closers:
            try:
                c()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("close", exc_info=True)
        if self.fleet is not None:
            self.fleet.kill()
        if self.feed is not None:
            try:
                self.feed.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("close", exc_info=True)
        if self.gateway is not None:
            self.gateway.stop()
        if self.broker is not None:
            self.broker.stop()
        if self._tmp:
            shutil.rmtree(self.dir, ignore_errors=True)
