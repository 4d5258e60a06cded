"""Five regencies and a national tier on loopback, with faults; then every item checked one by one.

Real parts: a three-node NATS cluster (JetStream, MQTT; configured by segel deploy federation's
generator), PostgreSQL, the national ingester; per regency its own Mosquitto, its own gateway
process (the custody judge and the national uplink, as `segel gateway` runs them) and a virtual
fleet running the firmware's wake cycle through the Kutai Timur calendar (segel.sim).

Faults while the fleets run: the national node the ingester reads from is killed (SIGKILL) mid-stream; regency 64.01's
link goes dark (a proxy drops every byte, closes nothing) for the whole of its rehearsal, which is
several simulated days of logistics and tens of seconds of wall time: longer than every timer on
the path (MQTT keepalive 2 s, the uplink's resend 3 s, NATS's redelivery 5 s), which is what a
ten-minute cut tests, with more items waiting than ten real minutes would make; regency 64.72's
gateway is killed with SIGKILL twice and started again on its database while its trackers keep
sending. At the end, for every regency: every item it recorded is in the national store exactly
once, applied in its order, and what the nation knows equals what the regency knows (alert
lifecycles, custody findings, box states, positions, signed ledger checkpoints, each verified
against the regency's key).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
import pytest
from segel import store
from segel.custody import checkpoints
from segel.custody.judge import build_judge
from segel.national import capture, codes, local, settings, wilayah
from segel.national import federation as fed
from segel.national.ingest import Ingester
from segel.registry import Registry, create_fleet_secret
from segel.sim import scenario as scn_mod
from segel.sim.fleetproc import FleetSpec, itineraries

from tests import servers
from tests.national.procs import FileClock
from tests.national.proxy import Proxy

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KUTIM = ROOT / "scenarios" / "kutai-timur"
# five regencies, each its own boxes of the scenario (some with scripted incidents)
PLAN = {
    "64.08": ["64.08.17.2002-002-GUB", "64.08.04.2011-067-GUB", "64.08.04.2001-001-GUB"],  # seal cut, count opening
    "64.01": ["64.08.02.2002-003-GUB", "64.08.09.2006-002-GUB", "64.08.09.2001-001-GUB"],  # silent, wrong TPS
    "64.72": ["64.08.14.2005-001-GUB", "64.08.05.2018-002-GUB", "64.08.05.2001-001-GUB"],  # detour, forged frame
    "63.01": ["64.08.06.2005-002-GUB", "64.08.12.2001-001-GUB"],  # dead zone
    "73.71": ["64.08.11.2001-001-GUB", "64.08.13.2001-001-GUB", "64.08.16.2001-001-GUB"],
}
CUT, KILLED = "64.01", "64.72"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'firmware'}:{ROOT}"}


@dataclass
class Reg:
    code: str
    dir: Path
    mosq: servers.Server
    clock: Path
    boxes: list[str]
    proxies: list[Proxy] = field(default_factory=list)
    gateway: subprocess.Popen | None = None
    fleet: subprocess.Popen | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.dir / "segel.db"

    def start_gateway(self) -> None:
        self.starts += 1
        log = self.dir / f"gateway-{self.starts}.log"
        self.logs.append(log)
        with open(log, "wb") as fh:
            self.gateway = subprocess.Popen([sys.executable, "-m", "tests.national.procs", "gateway",
                                             str(self.dir / "segel.toml"), str(self.clock)],
                                            cwd=ROOT, env=ENV, stdout=fh, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        for p in (self.fleet, self.gateway):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)


def _resolve(boxes: list[str]) -> list[str]:
    """Boxes of PLAN that exist in the scenario (a missing ordinary one is replaced by its district's first)."""
    scn = scn_mod.load(KUTIM)
    have = {b.box for b in scn.boxes}
    out = []
    for b in boxes:
        if b not in have:
            b = next(x.box for x in scn.boxes if x.box.startswith(b[:8]) and x.box not in out)
        out.append(b)
    return out


def setup_regency(tmp: Path, code: str, nodes: list[str], pw: str, proxies: list[Proxy]) -> Reg:
    d = tmp / codes.token(code)
    d.mkdir()
    scn = scn_mod.load(KUTIM)
    chosen = set(_resolve(PLAN[code]))
    boxes = [b for b in scn.boxes if b.box in chosen]
    devices = {b.box: 0x000101 + i for i, b in enumerate(boxes)}
    secret = create_fleet_secret(d / "fleet.key")
    checkpoints.create_key(d / "signing.key")  # the checkpointer signs the ledger heads with it
    conn = store.connect(d / "segel.db")
    reg = Registry(conn)
    conn.execute("BEGIN IMMEDIATE")
    for b in boxes:
        reg.add_device(devices[b.box])
    conn.execute("COMMIT")
    (d / "boxes.csv").write_text(scn_mod.boxes_csv_with_devices(scn, boxes, devices))
    f = scn.files()
    build_judge(conn, places=[f["places"], f["corridors"]], boxes=d / "boxes.csv", calendar=f["calendar"])
    conn.close()
    mosq = servers.mosquitto(d / "mosquitto").start()
    its = itineraries(scn, [b.box for b in boxes])
    start = min(it.power_on for it in its.values()) - 60
    clock = d / "clock"
    FileClock(clock, start).close()
    user = codes.user(code)
    urls = [f"mqtt://{user}:{pw}@127.0.0.1:{p.port}" for p in proxies] or nodes
    (d / "segel.toml").write_text(f"""
[gateway]
db = "segel.db"
fleet_secret = "fleet.key"
recording_dir = "rec"
tick_interval_s = 600
health_interval_s = 21600
[mqtt]
url = "mqtt://127.0.0.1:{mosq.port}"
client_id = "gw-{codes.token(code)}"
protocol = "3.1.1"
link = "thread"
reconnect_max_s = 2
[custody]
calendar = "{f['calendar']}"
report_interval_s = {scn.settings.report_interval_s}
signing_key = "signing.key"
checkpoint_interval_s = 21600
[national]
regency = "{code}"
name = "{wilayah.regency_name(code)}"
urls = {json.dumps(urls)}
password = "{pw}"
summary_interval_s = 2
resend_after_s = 3
keepalive_s = 2
reconnect_max_s = 2
""")
    # the crashed regency's rehearsal (6.6 simulated days) is paced to last about 40 s, so its trackers
    # are still sending when the test kills its gateway twice; unpaced, three trackers finish in a
    # few seconds, before a slow machine has even moved the ingester to another national node
    spec = FleetSpec(str(KUTIM), [b.box for b in boxes], devices, secret.hex(), str(d), "127.0.0.1",  # type: ignore[arg-type]
                     mosq.port, step_s=240.0, workers=16, speed=15_000.0 if code == KILLED else None)
    (d / "fleet.json").write_text(json.dumps(asdict(spec)))
    return Reg(code, d, mosq, clock, [b.box for b in boxes], proxies)


def start_fleet(r: Reg) -> None:
    fh = open(r.dir / "fleet.log", "wb")  # noqa: SIM115
    r.fleet = subprocess.Popen([sys.executable, "-m", "tests.national.procs", "fleet", str(r.dir / "fleet.json"),
                                str(r.clock), str(r.dir / "fleet-done.json")], cwd=ROOT, env=ENV, stdout=fh,
                               stderr=subprocess.STDOUT)
    fh.close()


def wait(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s: {what}")
        time.sleep(0.25)


def regency_items(r: Reg) -> list[dict]:
    conn = sqlite3.connect(r.db)
    conn.row_factory = None
    try:
        return capture.items(conn)
    finally:
        conn.close()


def test_five_regencies_through_faults_arrive_exactly_once_in_order(tmp_path: Path) -> None:
    regs_spec = [fed.Regency(c, c) for c in PLAN]
    cluster = local.NatsCluster.create(tmp_path / "nats", regs_spec, n=3).start()
    pg = local.Postgres.create().start()
    regs: list[Reg] = []
    ing: Ingester | None = None
    pgc: psycopg.Connection | None = None
    try:
        cfg = settings.load(None, env={}, overrides={
            "ingest.urls": cluster.urls(fed.INGEST_USER, cluster.password(fed.INGEST_USER)), "store.dsn": pg.dsn,
            "ingest.keepalive_s": 2, "ingest.reconnect_max_s": 2})
        ing = Ingester(cfg).start()
        wait(lambda: ing.stats.connected, 30, "the ingester connects")
        for i, code in enumerate(PLAN):
            user = codes.user(code)
            pw = cluster.password(user)
            nodes = cluster.urls(user, pw)
            nodes = nodes[i % 3:] + nodes[:i % 3]  # regencies spread over the nodes
            # the cut regency reaches every node through its own link (one proxy per node)
            proxies = [Proxy(n.mqtt_port) for n in cluster.spec.nodes] if code == CUT else []
            regs.append(setup_regency(tmp_path, code, nodes, pw, proxies))
        for r in regs:
            r.start_gateway()
        pgc = psycopg.connect(pg.dsn, autocommit=True)

        def applied(code: str) -> int:
            row = pgc.execute("SELECT applied FROM regencies WHERE code = %s", (code,)).fetchone()
            return int(row[0]) if row else 0

        # every regency's snapshot (its boxes) reached the nation before the trackers start
        wait(lambda: all(applied(r.code) >= len(r.boxes) for r in regs), 90, "every regency's boxes reach the nation")
        cut = next(r for r in regs if r.code == CUT)
        killed = next(r for r in regs if r.code == KILLED)
        for p in cut.proxies:
            p.cut(silent=True)
        before_cut = applied(CUT)
        for r in regs:
            start_fleet(r)
        # mid-stream: items are flowing from the regencies that are connected
        mark = {r.code: applied(r.code) for r in regs}
        wait(lambda: sum(applied(r.code) - mark[r.code] for r in regs if r.code != CUT) > 40, 120,
             "items flow while the fleets run")
        # the national node the ingester reads from dies mid-stream (so do the regencies' connections to it)
        port = int(ing.stats.node.rsplit(":", 1)[1])
        victim = next(i for i, n in enumerate(cluster.spec.nodes) if n.mqtt_port == port)
        cluster.nodes[victim].kill()
        for _ in range(2):  # regency 64.72's gateway dies twice, its trackers keep sending
            wait(lambda: applied(KILLED) > mark[KILLED] + 5, 120, "64.72 sends before its crash")
            killed.gateway.kill()  # type: ignore[union-attr]
            killed.gateway.wait(10)  # type: ignore[union-attr]
            time.sleep(1.0)
            killed.start_gateway()
            mark[KILLED] = applied(KILLED)
        for r in regs:
            assert r.fleet is not None
            r.fleet.wait(600)
            assert r.fleet.returncode == 0, (r.dir / "fleet.log").read_text()[-3000:]
        assert applied(CUT) == before_cut, "the dark link let items through"
        for p in cut.proxies:
            p.restore()  # the link comes back after the regency's whole rehearsal

        def settled() -> bool:
            for r in regs:
                items = regency_items(r)
                if not items or applied(r.code) != items[-1]["seq"]:
                    return False
            return True

        wait(settled, 180, "every regency's items are confirmed by the national store")
        time.sleep(3)  # a last summary, if the counts changed at the very end
        wait(settled, 60, "the last summaries are confirmed")
        for r in regs:
            check_regency(pgc, r)
        assert not cluster.nodes[victim].alive
        assert ing.stats.connects >= 2  # it moved to another node when n1 died
        assert killed.starts == 3
    finally:
        if pgc is not None:
            pgc.close()
        if ing is not None:
            ing.stop()
        for r in regs:
            r.stop()
            r.mosq.stop()
            for p in r.proxies:
                p.close()
        cluster.stop()
        pg.stop()


def check_regency(pgc: psycopg.Connection, r: Reg) -> None:
    """Item by item: the regency's outbox against the national store, and their derived states."""
    mine = regency_items(r)
    assert mine and [i["seq"] for i in mine] == list(range(1, len(mine) + 1)), f"{r.code}: gaps in the outbox"
    logged = {s: (k, subj, body, stored) for s, k, subj, body, stored in pgc.execute(
        "SELECT seq, kind, subject, body, stored FROM items WHERE regency = %s", (r.code,))}
    pos = {s: (box, t, lat, lon) for s, box, t, lat, lon in pgc.execute(
        "SELECT seq, box, t, lat, lon FROM positions WHERE regency = %s", (r.code,))}
    assert len(logged) + len(pos) == len(mine), f"{r.code}: {len(mine)} items here, {len(logged) + len(pos)} nationally"
    last_stored: dict[str, float] = {}
    for it in mine:
        s = it["seq"]
        if it["kind"] == "position":
            b = it["body"]
            assert pos.pop(s) == (it["subject"], b["t"], b["lat"], b["lon"]), f"{r.code} item {s}"
            continue
        kind, subj, body, stored = logged.pop(s)
        assert (kind, subj, body) == (it["kind"], it["subject"], it["body"]), f"{r.code} item {s} differs"
        # applied in the regency's order: per box, each item was stored no earlier than the one before
        key = subj or "-"
        assert stored >= last_stored.get(key, 0.0), f"{r.code} item {s} ({key}) applied before an earlier one"
        last_stored[key] = stored
    assert not logged and not pos
    conn = sqlite3.connect(r.db)
    try:
        # every alert lifecycle change of the regency, once, in its order per box
        history = conn.execute("SELECT h.alert_id, h.event, a.subject FROM alert_history h JOIN alerts a "
                               "ON a.id = h.alert_id ORDER BY h.rowid").fetchall()
        national = [(b["alert"]["id"], b["event"], subj) for _s, (k, subj, b, _t) in sorted(
            ((s, v) for s, v in _items(pgc, r.code)), key=lambda x: x[0]) if k == "alert" and b["event"] != "updated"]
        assert national == [tuple(h) for h in history], f"{r.code}: alert history differs"
        assert history, f"{r.code}: no alert at all: the test would prove nothing"
        # the alerts as they stand now
        here = {a: (st, occ) for a, st, occ in conn.execute("SELECT id, state, occurrences FROM alerts")}
        there = {a: (st, occ) for a, st, occ in pgc.execute(
            "SELECT id, state, occurrences FROM alerts WHERE regency = %s", (r.code,))}
        assert there == here, f"{r.code}: alert states differ"
        # custody findings that stand here stand there; the others were withdrawn there too
        standing = {(b, k) for b, k in conn.execute(
            "SELECT d.box, f.key FROM judge_findings f JOIN judge_devices d ON d.device = f.device WHERE f.kind IN "
            f"({','.join('?' * len(capture.CUSTODY_KINDS))})", capture.CUSTODY_KINDS)}
        nat = {(s, k): w for s, k, w in pgc.execute(
            "SELECT subject, key, withdrawn FROM findings WHERE regency = %s", (r.code,))}
        assert {k for k, w in nat.items() if not w} == standing, f"{r.code}: custody findings differ"
        # the signed ledger checkpoints: every one, and every one verifies nationally
        here_cps = conn.execute("SELECT COUNT(*) FROM ledger_checkpoints").fetchone()[0]
        there_cps = dict(pgc.execute("SELECT valid, count(*) FROM checkpoints WHERE regency = %s GROUP BY valid",
                                     (r.code,)).fetchall())
        assert here_cps > 0 and there_cps == {True: here_cps}, f"{r.code}: checkpoints {here_cps} here, {there_cps} there"
        # box states
        states = capture.box_states(conn)
        there_states = {b: s for b, s in pgc.execute("SELECT box, state FROM boxes WHERE regency = %s", (r.code,))}
        assert there_states == states, f"{r.code}: box states differ"
    finally:
        conn.close()


def _items(pgc: psycopg.Connection, code: str) -> list[tuple[int, tuple]]:
    return [(s, (k, subj, body, stored)) for s, k, subj, body, stored in pgc.execute(
        "SELECT seq, kind, subject, body, stored FROM items WHERE regency = %s", (code,))]
