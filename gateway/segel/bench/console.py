"""`segel bench console`: the console under load, beside the real gateway, on Kutai Timur's 1,402 boxes.

Everything runs as in production, each in its own process: a private Mosquitto, `segel gateway`
(custody rules on), `segel console`, and this process as 50 browsers' live streams (Server-Sent
Events read over plain sockets) plus a load generator (`segel.bench.loadgen`) in a child process.

Figures, all measured in the same run:
- first full map load: the map page and its three documents (places, outlines, boxes) over HTTP
  on a cold console, and (when Chromium is there) in a real browser until the map is drawn;
- the gateway's ingest rate (publish -> committed, frames/s) with no live client, then with 50;
- publish -> alert on every live client, p50 and p99, while the load generator sends 1,000
  frames/s of which some are forged (each forged frame raises a critical alert);
- the console's resident memory and CPU beside the gateway's during that phase.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from segel import accounts, store
from segel.bench import kutim
from segel.bench.ingest import _run_publisher, _times, start_mosquitto
from segel.edge import mqtt
from segel.ports import free_port


@dataclass
class ConsoleBench:
    boxes: int = 0
    places: int = 0
    clients: int = 0
    rate: float = 0.0
    map_http_s: float = 0.0
    map_bytes: int = 0
    map_browser_s: float | None = None
    ingest_without: float = 0.0
    ingest_with: float = 0.0
    ingest_without_after: float = 0.0  # without clients again after them: the traffic changes as the day goes on
    alerts: int = 0
    deliveries: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    mqtt_p50_ms: float = 0.0  # the same alerts on an MQTT subscriber: the gateway's share
    mqtt_p99_ms: float = 0.0
    console_rss_mb: float = 0.0
    console_cpu: float = 0.0  # CPU seconds per wall second (1.0 = one core)
    gateway_cpu: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> float:
        """Without clients: the mean of the phases before and after the one with them."""
        runs = [r for r in (self.ingest_without, self.ingest_without_after) if r]
        return sum(runs) / len(runs) if runs else 0.0

    @property
    def ratio(self) -> float:
        return self.ingest_with / self.baseline if self.baseline else 0.0

    def report(self) -> str:
        browser = f"{self.map_browser_s:.2f} s in Chromium (page to map drawn)" if self.map_browser_s is not None \
            else "not measured in a browser (--no-browser, or no Chromium)"
        lines = [
            f"Kutai Timur: {self.boxes:,} boxes, {self.places:,} places; {self.clients} live clients; "
            f"load {self.rate:,.0f} frames/s",
            f"first full map load : {self.map_http_s:.3f} s over HTTP ({self.map_bytes / 1e6:.2f} MB: page, places, "
            f"outlines, boxes); {browser}",
            f"gateway ingest      : {self.baseline:,.0f} frames/s without clients (mean of {self.ingest_without:,.0f} "
            f"before and {self.ingest_without_after:,.0f} after), {self.ingest_with:,.0f} with {self.clients}: "
            f"ratio {self.ratio:.2f}",
            f"publish -> alert    : p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms, max {self.max_ms:.0f} ms "
            f"({self.alerts} alerts x {self.clients} clients = {self.deliveries:,} deliveries)",
            f"publish -> MQTT     : p50 {self.mqtt_p50_ms:.0f} ms, p99 {self.mqtt_p99_ms:.0f} ms (the same alerts on an MQTT "
            "subscriber: the gateway's part)",
            f"console             : {self.console_rss_mb:.0f} MB resident (peak), CPU {self.console_cpu * 100:.0f} % "
            f"of a core; gateway CPU {self.gateway_cpu * 100:.0f} % (with its MQTT process)",
            f"machine             : {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        ]
        return "\n".join(lines + [f"error: {e}" for e in self.errors])


def _wait(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _accepted(db: Path) -> int:
    c = sqlite3.connect(str(db), timeout=30)
    try:
        r = c.execute("SELECT value FROM stats WHERE name = 'accepted'").fetchone()
        return int(r[0]) if r else 0
    finally:
        c.close()


class _Proc:
    def __init__(self, argv: list[str], log: Path) -> None:
        import psutil

        self.log = log.open("wb")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.p.pid)

    def cpu(self) -> float:
        """CPU seconds of the process and its children so far."""
        total = 0.0
        for q in [self.ps] + self.ps.children(recursive=True):
            try:
                t = q.cpu_times()
                total += t.user + t.system
            except Exception:  # noqa: BLE001 - a child that just ended
                pass
        return total

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 1e6

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)
        self.log.close()


_KIND = re.compile(r'"kind":"([a-z_]+)"')
_EVENT = re.compile(r'"event":"([a-z_]+)"')
_BOX = re.compile(r'"box":"([^"]+)"')


class _Clients:
    """`n` live pages: each an HTTP/1.1 GET /events kept open, its events timed on arrival."""

    def __init__(self, port: int, tokens: list[str]) -> None:
        self.port, self.tokens = port, tokens
        self.got: list[tuple[float, dict]] = []  # (arrival, alert JSON) of alert events
        self.connected = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.futures: list = []
        self.ended = 0  # streams the console closed (a page would reconnect: counted as a failure here)

    def start(self) -> None:
        self.thread.start()
        for tok in self.tokens:
            self.futures.append(asyncio.run_coroutine_threadsafe(self._one(tok), self.loop))

    async def _one(self, token: str) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 24)  # a boxes event is one long line
        w.write(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                f"Cookie: segel_session={token}\r\n\r\n".encode())
        await w.drain()
        try:
            await self._read(r)
        finally:
            w.close()

    async def _read(self, r: asyncio.StreamReader) -> None:
        event = ""
        first = True
        rest = b""
        while True:
            block = await r.read(1 << 16)  # as a browser reads: whatever has arrived, split into lines
            if not block:
                self.ended += 1
                return
            at = time.time()
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.startswith(b"event: "):
                    event = line[7:].rstrip(b"\r").decode()
                elif line.startswith(b"data: "):
                    if first:
                        first = False
                        self.connected += 1
                    # the bench times the forged-frame alerts; the fields are read cheaply, as a
                    # browser's JavaScript would, so this process does not take the gateway's CPU
                    if event == "alert" and b"forged_frame" in line:
                        s = line.decode(errors="replace")
                        kind, ev, box = _KIND.search(s), _EVENT.search(s), _BOX.search(s)
                        self.got.append((at, {"kind": kind and kind.group(1), "event": ev and ev.group(1),
                                              "box": box and box.group(1)}))

    def stop(self) -> None:
        for f in self.futures:
            f.cancel()
        for _ in range(3):  # let the cancelled streams close their sockets
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0.05), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class _MqttAlerts:
    """A paho subscriber timing the forged_frame alerts the gateway publishes."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.got: list[tuple[float, str]] = []
        ready = threading.Event()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"segel-bench-alerts-{os.getpid()}")
        self.c.on_connect = lambda c, *a: c.subscribe("segel/alerts/forged_frame", 1)
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.on_message = self._msg
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        ready.wait(10)

    def _msg(self, c: object, u: object, m: object) -> None:
        at = time.time()
        d = json.loads(m.payload)  # type: ignore[attr-defined]
        if d.get("event") == "raised":
            self.got.append((at, d.get("box")))

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _map_load(url: str, token: str) -> tuple[float, int]:
    t0 = time.monotonic()
    n = 0
    for path in ("/", "/api/places.geojson", "/api/outlines.geojson", "/api/boxes.json"):
        req = urllib.request.Request(url + path, headers={"Cookie": f"segel_session={token}"})
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - loopback
            n += len(resp.read())
    return time.monotonic() - t0, n


def _map_in_browser(url: str, token: str) -> float | None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not Path(chromium).exists():
        return None
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu",
                                                               "--disable-background-networking", "--no-first-run"])
        ctx = b.new_context()
        ctx.add_cookies([{"name": "segel_session", "value": token, "url": url}])
        page = ctx.new_page()
        t0 = time.monotonic()
        page.goto(url + "/")
        page.wait_for_selector("#map[data-ready='1']", state="attached", timeout=60_000)
        dt = time.monotonic() - t0
        b.close()
    return dt


def _positions(p: kutim.Prepared, n: int, t0: float) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    k = 0
    while len(out) < n:
        out += kutim.position_frames(p, t0 + 300 * k, seed=k)
        k += 1
    return out[:n]


def _ingest_rate(p: kutim.Prepared, broker: mqtt.Broker, n: int, t0: float, tag: str) -> float:
    items = _positions(p, n, t0)
    before = _accepted(p.db)
    proc, q = _run_publisher(broker, items, tag)
    start = time.time()
    times = _times(q)
    _wait(lambda: _accepted(p.db) >= before + n, 600, f"the gateway to commit {n} frames")
    done = time.time()
    proc.join(30)
    first = min(times) if times else start
    return n / max(1e-6, done - first)


def run(clients: int = 50, rate: float = 1000.0, seconds: float = 20.0, frames: int = 20_000,
        alert_every: int = 25, workdir: Path | None = None, browser: bool = True) -> ConsoleBench:
    res = ConsoleBench(clients=clients, rate=rate)
    tmp = workdir is None
    wd = Path(workdir or tempfile.mkdtemp(prefix="segel-bench-console-"))
    wd.mkdir(parents=True, exist_ok=True)
    procs: list[_Proc] = []
    mosq = None
    cl: _Clients | None = None
    try:
        mosq, port = start_mosquitto(wd)
        broker = mqtt.parse_url(f"mqtt://127.0.0.1:{port}")
        p = kutim.prepare(wd / "kutim")
        res.boxes, res.places = len(p.boxes), len(p.places)
        cport = free_port()
        cfg = wd / "bench.toml"
        cfg.write_text(
            f'[gateway]\ndb = "{p.db}"\nfleet_secret = "{p.folder / "fleet.key"}"\nrecording_dir = "{wd / "rec"}"\n'
            f'instance = "bench"\nhealth_interval_s = 2.0\n[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\n'
            f'client_id = "segel-bench-console-gw"\n[custody]\ncalendar = "{p.calendar}"\n'
            f'[console]\nport = {cport}\n')
        segel = str(Path(sys.executable).parent / "segel")
        gw = _Proc([segel, "gateway", "--config", str(cfg)], wd / "gateway.log")
        procs.append(gw)
        # connected and subscribed (its health snapshot says so), or the first frames would be lost
        _wait(lambda: _connected(p.db), 60, "the gateway to connect to the broker")
        time.sleep(1.0)
        t0 = time.time() - 86400
        warm = kutim.position_frames(p, t0) + kutim.position_frames(p, t0 + 300)
        proc, q = _run_publisher(broker, warm, "warm")
        _times(q)  # raises with the publisher's error
        _wait(lambda: _accepted(p.db) >= len(warm), 300, "the gateway to take the first positions")
        proc.join(30)
        con = _Proc([segel, "console", "--config", str(cfg)], wd / "console.log")
        procs.append(con)
        url = f"http://127.0.0.1:{cport}"
        _wait(lambda: _port_open(cport), 60, "the console to listen")
        conn = store.connect(p.db)
        user = accounts.add(conn, "bench", accounts.ADMIN, accounts.generate_password())
        tokens = [accounts.start_session(conn, user)[0] for _ in range(clients + 1)]
        conn.close()
        res.map_http_s, res.map_bytes = _map_load(url, tokens[-1])
        if browser:
            try:
                res.map_browser_s = _map_in_browser(url, tokens[-1])
            except Exception as e:  # noqa: BLE001 - the other figures still count
                res.errors.append(f"browser map load: {e}")
        res.ingest_without = _ingest_rate(p, broker, frames, t0 + 3600, "without")
        cl = _Clients(cport, tokens[:clients])
        cl.start()
        _wait(lambda: cl.connected >= clients, 60, f"{clients} live clients")
        rss = [con.rss_mb()]
        step = 300 * (frames // len(p.boxes) + 2)  # each phase's frames come after the previous phase's
        res.ingest_with = _ingest_rate(p, broker, frames, t0 + 7200 + step, "with")
        rss.append(con.rss_mb())
        cl.stop()
        res.ingest_without_after = _ingest_rate(p, broker, frames, t0 + 10800 + 2 * step, "after")
        cl = _Clients(cport, tokens[:clients])
        cl.start()
        _wait(lambda: cl.connected >= clients, 60, f"{clients} live clients again")
        # latency: paced load with a forged frame (a new critical alert) every `alert_every` frames
        n = int(rate * seconds)
        pos = _positions(p, n, time.time() - 3000)
        boxes = list(p.boxes)
        items: list[tuple[str, bytes]] = []
        forged_at: dict[str, int] = {}
        for i, item in enumerate(pos):
            if i % alert_every == 0 and len(forged_at) < len(boxes):
                box = boxes[len(forged_at) * 7 % len(boxes)]
                forged_at[box] = len(items)
                items.append(kutim.forged(p, box, time.time()))
            else:
                items.append(item)
        on_mqtt = _MqttAlerts(port)
        c0, g0, w0 = con.cpu(), gw.cpu(), time.monotonic()
        proc, q = _run_publisher(broker, items, "paced", rate)
        sampler = threading.Event()

        def sample() -> None:
            while not sampler.wait(0.5):
                rss.append(con.rss_mb())
        threading.Thread(target=sample, daemon=True).start()
        times = _times(q)
        proc.join(30)
        want = sum(1 for b, i in forged_at.items() if i < len(times)) * clients
        end = time.monotonic() + 60  # the last alerts' deliveries

        def delivered() -> int:
            return sum(1 for _t, a in list(cl.got) if a.get("kind") == "forged_frame" and a.get("event") == "raised")
        while delivered() < want and time.monotonic() < end:
            time.sleep(0.1)
        sampler.set()
        wall = time.monotonic() - w0
        res.console_cpu, res.gateway_cpu = (con.cpu() - c0) / wall, (gw.cpu() - g0) / wall
        res.console_rss_mb = max(rss)
        sent = {box: times[i] for box, i in forged_at.items() if i < len(times)}
        lat = sorted((at - sent[a["box"]]) * 1000 for at, a in cl.got
                     if a.get("kind") == "forged_frame" and a.get("event") == "raised" and a.get("box") in sent)
        res.alerts, res.deliveries = len(sent), len(lat)
        on_mqtt.close()
        mlat = sorted((at - sent[b]) * 1000 for at, b in on_mqtt.got if b in sent)
        if mlat:
            res.mqtt_p50_ms, res.mqtt_p99_ms = mlat[len(mlat) // 2], mlat[min(len(mlat) - 1, int(len(mlat) * 0.99))]
        if lat:
            res.p50_ms, res.p99_ms, res.max_ms = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[-1]
        broken = {repr(f.exception()) for f in cl.futures if f.done() and f.exception()}
        res.errors += [f"a live client failed: {b}" for b in sorted(broken)]
        if res.deliveries < res.alerts * clients:
            res.errors.append(f"{res.alerts * clients - res.deliveries} deliveries missing "
                              f"({cl.ended} streams ended by the console)")
        return res
    finally:
        if cl is not None:
            cl.stop()
        for pr in reversed(procs):
            pr.stop()
        if mosq is not None:
            mosq.kill()
            mosq.wait(10)
        if tmp:
            shutil.rmtree(wd, ignore_errors=True)


def _connected(db: Path) -> bool:
    """The gateway's last health snapshot says it is connected to the broker."""
    if not db.exists():
        return False
    c = sqlite3.connect(str(db), timeout=30)
    try:
        if c.execute("SELECT 1 FROM sqlite_master WHERE name = 'health'").fetchone() is None:
            return False
        return any(json.loads(s).get("mqtt_connected") for (s,) in c.execute("SELECT snapshot FROM health"))
    finally:
        c.close()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
