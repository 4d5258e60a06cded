"""`segel bench national`: the national tier under election-day load, on this machine.

Starts a three-node NATS cluster (JetStream, MQTT; the accounts of all 514 regencies), a
PostgreSQL and the national ingester (in a process of its own), then plays the upward traffic of
every regency (`segel.national.loadgen`, in another process) at the busiest rate of the
election calendar (`segel.national.profile`), or at `rate`. Reports the rate offered and the rate
the national store sustained, the lag from a regency's commit to the national store (p50, p99:
the ingester measures `stored - committed` for every item applied in the measuring window), the
peak memory of every part, the store's bytes per item, and what the national peak needs.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segel.national import codes, local, profile, wilayah
from segel.national import federation as fed


def _rss_mb(pid: int, peak: bool = True) -> float:
    key = "VmHWM" if peak else "VmRSS"
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _tree_rss_mb(pid: int) -> float:
    """Current RSS of a process and its children (PostgreSQL's backends)."""
    total = _rss_mb(pid, peak=False)
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += _tree_rss_mb(int(child))
    except OSError:
        pass
    return total


def _cpu_s(pid: int, tree: bool = False) -> float:
    """CPU seconds (user + system) a process has used, with its children's when `tree` (PostgreSQL)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if tree:
            for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
                total += _cpu_s(int(child), True)
    except (OSError, IndexError, ValueError):
        pass
    return total


def _ingester(cfg_over: dict, conn: Any) -> None:
    import logging

    from segel.national import settings
    from segel.national.ingest import Ingester

    logging.basicConfig(level=logging.WARNING)
    ing = Ingester(settings.load(None, env={}, overrides=cfg_over))
    ing.stats.lag_window = 10_000_000  # every item of the measuring window
    ing.start()
    ing.wait_until(lambda s: s.connected, 60)
    conn.send(("ready", ing.stats.connected))
    while True:
        cmd = conn.recv()
        if cmd == "stop":
            ing.stop()
            conn.send(("stopped", None))
            return
        s = ing.stats
        if cmd == "reset":
            s.lags_ms.clear()
        conn.send(("stats", {"items": s.items, "messages": s.messages, "lags": list(s.lags_ms) if cmd == "lags" else [],
                             "rss_mb": _rss_mb(os.getpid()), "errors": s.store_errors, "last_error": s.last_error,
                             "gaps": s.gaps, "held": s.held, "duplicates": s.duplicates, "connects": s.connects}))


def _generator(args: dict, conn: Any) -> None:
    from segel.national import loadgen

    try:
        res = loadgen.run(**args)
        conn.send(("done", res.__dict__ | {"rss_mb": _rss_mb(os.getpid()), "cpu_s": time.process_time()}))
    except Exception as e:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))


@dataclass
class BenchResult:
    regencies: int
    boxes: int
    profile_text: str
    offered_rate: float  # items/s asked of the generator
    sent_rate: float  # items/s it managed to send (window)
    sent_msg_rate: float
    stored_rate: float  # items/s applied by the national store (window)
    p50_ms: float
    p99_ms: float
    max_ms: float
    blocked: int
    drain_s: float
    memory_mb: dict[str, float] = field(default_factory=dict)
    bytes_position: float = 0.0
    bytes_event: float = 0.0
    window_s: float = 0.0
    load_before: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # share of one core during the measured window
    baseline: tuple[float, float] = (0.0, 0.0)  # the store alone: items/s, items per CPU-second
    redelivery: str = ""

    @property
    def kept_up(self) -> bool:
        return self.stored_rate >= 0.97 * self.offered_rate and self.p99_ms < 5000 and not self.blocked

    def sizing(self, peak: float, mean: float, totals: dict[str, float] | None = None) -> list[str]:
        """What the national peak needs, from this run's measured figures."""
        per = self.stored_rate
        out = []
        if per > 0 and self.cpu:
            # CPU per item of each part, measured: robust to how much of the machine the run got
            us = {k: v / per * 1e6 for k, v in self.cpu.items()}
            nats = sum(v for k, v in us.items() if k.startswith("nats"))
            ing = us.get("ingester", 0.0)
            pg = us.get("postgresql", 0.0)
            out.append(f"CPU per item: NATS {nats / 3:,.0f} µs on each of 3 nodes (replicated R3), ingester {ing:,.0f} µs, "
                       f"PostgreSQL {pg:,.0f} µs; at the national peak of {peak:,.0f} items/s: "
                       f"{nats / 3 * peak / 1e6:.2f} core per NATS node, {ing * peak / 1e6:.2f} core of ingesters, "
                       f"{pg * peak / 1e6:.2f} core of PostgreSQL")
            ingesters = max(1, -(-int(ing * peak * 1.5) // 1_000_000))
            out.append(f"ingester partitions for the peak with 50 % headroom, one core each: {ingesters}")
        if totals:
            pos = totals.get("position", 0.0)
            other = sum(v for k, v in totals.items() if k != "position")
            gb = (pos * self.bytes_position + other * self.bytes_event) / 1e9
            out.append(f"national store: {self.bytes_position:,.0f} bytes per position, {self.bytes_event:,.0f} per other "
                       f"item (tables and indexes); the whole calendar (H-5 to H+3) is {pos / 1e6:,.0f} million positions "
                       f"and {other / 1e6:,.0f} million other items: {gb:,.0f} GB")
        return out

    def report(self, peak: float, mean: float, totals: dict[str, float] | None = None) -> str:
        m = self.memory_mb
        lines = [
            f"profile: {self.profile_text}",
            f"load: {self.regencies} regency connections over 3 NATS nodes, {self.boxes:,} boxes; "
            f"1-minute load average {self.load_before:.2f} at the start",
            f"offered {self.offered_rate:,.0f} items/s; sent {self.sent_rate:,.0f} items/s in "
            f"{self.sent_msg_rate:,.0f} messages/s over {self.window_s:.0f} s"
            + (f"; {self.blocked} sends held back (a regency's 64 messages unconfirmed)" if self.blocked else ""),
            f"national store sustained {self.stored_rate:,.0f} items/s; lag commit->store p50 {self.p50_ms:,.0f} ms, "
            f"p99 {self.p99_ms:,.0f} ms, max {self.max_ms:,.0f} ms; backlog drained {self.drain_s:.1f} s after the load",
            f"baseline (same run, no bus): the national store alone applied {self.baseline[0]:,.0f} items/s, "
            f"{self.baseline[1]:,.0f} items per CPU-second of the applying process",
            f"bus: {self.redelivery}",
            "peak memory: " + ", ".join(f"{k} {v:,.0f} MB" for k, v in m.items()),
            "CPU in the measured window (share of one core): " + ", ".join(f"{k} {v:.0%}" for k, v in self.cpu.items()),
            ("kept up with the national election-day peak on this machine" if self.kept_up and self.offered_rate >= peak
             else "did not keep up" if not self.kept_up else "kept up with the rate asked"),
        ]
        return "\n".join(lines + ["sizing: " + s for s in self.sizing(peak, mean, totals)])


def run(boxes: int = 1_600_000, seconds: float = 60.0, warmup: float = 10.0, rate: float | None = None,
        flush_s: float = 1.0, workdir: Path | None = None,
        say: Callable[[str], None] = print) -> tuple[BenchResult, float, float, dict[str, float]]:
    prof = profile.build(boxes)
    _, peak, mix = prof.peak(15)
    mean = prof.mean()
    offered = rate or peak
    scale = offered / peak
    rates = {k: v * scale for k, v in mix.items() if v > 0}
    say(profile.describe(prof))
    regs = list(wilayah.regencies())
    own = workdir is None
    tmp = Path(workdir or tempfile.mkdtemp(prefix="segel-bench-national-"))
    say(f"starting 3 NATS nodes ({len(regs)} regency accounts), PostgreSQL, the ingester in {tmp}")
    cluster = local.NatsCluster.create(tmp / "nats", [fed.Regency(c, n) for c, n in wilayah.regencies().items()], n=3,
                                       max_ack_pending=20000, ack_wait="30s").start()
    pg = local.Postgres.create().start()
    ctx = mp.get_context("spawn")
    ing_end, ing_child = ctx.Pipe()
    ing = ctx.Process(target=_ingester, args=({
        "ingest.urls": cluster.urls(fed.INGEST_USER, cluster.password(fed.INGEST_USER)), "store.dsn": pg.dsn,
        "ingest.batch_max": 1000, "ingest.flush_s": 0.1}, ing_child), daemon=True)
    gen = None
    try:
        ing.start()
        kind, ok = ing_end.recv()
        if not ok:
            raise RuntimeError("the ingester could not connect to the NATS cluster")
        say("baseline: the national store alone (no bus), the profile's mix ...")
        base = store_baseline(pg, rates)
        load = os.getloadavg()[0]
        passwords = {codes.user(c): cluster.password(codes.user(c)) for c in regs}
        gen_end, gen_child = ctx.Pipe()
        gen = ctx.Process(target=_generator, args=({
            "nodes": [n.mqtt_port for n in cluster.spec.nodes], "passwords": passwords, "regencies": regs,
            "rates": rates, "seconds": warmup + seconds, "window_from": warmup, "flush_s": flush_s, "boxes": boxes}, gen_child),
            daemon=True)
        gen.start()
        say(f"playing {offered:,.0f} items/s from {len(regs)} regencies: {warmup:.0f} s warm-up, {seconds:.0f} s measured")
        time.sleep(warmup)
        procs = {f"nats {n.name}": (n.proc.pid, False) for n in cluster.nodes if n.proc}
        procs["postgresql"] = (pg.proc.proc.pid, True) if pg.proc and pg.proc.proc else (0, False)
        procs["ingester"] = (ing.pid or 0, False)
        cpu0 = {k: _cpu_s(pid, tree) for k, (pid, tree) in procs.items()}
        ing_end.send("reset")
        _, st0 = ing_end.recv()
        t0 = time.monotonic()
        last = st0["items"]
        while gen.is_alive() and not gen_end.poll(5):
            ing_end.send("stats")
            _, st = ing_end.recv()
            say(f"  {time.monotonic() - t0:5.0f} s: store applied {(st['items'] - last) / 5:,.0f} items/s")
            last = st["items"]
        ing_end.send("stats")
        _, st1 = ing_end.recv()
        t1 = time.monotonic()
        cpu = {k: max(0.0, _cpu_s(pid, tree) - cpu0[k]) / (t1 - t0) for k, (pid, tree) in procs.items()}
        kind, g = gen_end.recv()
        if kind == "error":
            raise RuntimeError(f"load generator: {g}")
        ing_end.send("lags")
        _, stl = ing_end.recv()
        drain0 = time.monotonic()
        while True:  # the backlog after the load stops
            ing_end.send("stats")
            _, st = ing_end.recv()
            if st["items"] >= g["items"] or time.monotonic() - drain0 > 120:
                break
            time.sleep(0.2)
        drain = time.monotonic() - drain0
        lags = sorted(stl["lags"])

        def pct(p: float) -> float:
            return lags[min(len(lags) - 1, int(p * len(lags)))] if lags else float("nan")

        mem = {f"nats {n.name}": _rss_mb(n.proc.pid) for n in cluster.nodes if n.proc}
        mem["postgresql (all backends)"] = _tree_rss_mb(pg.proc.proc.pid) if pg.proc and pg.proc.proc else 0.0
        mem["ingester"] = st["rss_mb"]
        mem["load generator"] = g["rss_mb"]
        cpu["load generator"] = g["cpu_s"] / max(1e-9, g["seconds"])
        bpos, bev = _bytes_per_item(pg.dsn)
        res = BenchResult(len(regs), boxes, profile.describe(prof), offered, g["window_items"] / seconds,
                          g["window_messages"] / seconds, (st1["items"] - st0["items"]) / (t1 - t0), pct(0.5), pct(0.99),
                          lags[-1] if lags else float("nan"), g["blocked"], drain, mem, bpos, bev, seconds, load,
                          redelivery=f"{st['duplicates']} duplicate items ignored, {st['held']} messages held back "
                                     f"after a gap and delivered again, ingester connections {st['connects']}",
                          cpu=cpu, baseline=base)
        return res, peak, mean, prof.totals()
    finally:
        if gen is not None and gen.is_alive():
            gen.terminate()
        if ing.is_alive():
            ing_end.send("stop")
            ing.join(20)
        cluster.stop()
        pg.stop()
        if own:
            shutil.rmtree(tmp, ignore_errors=True)


def store_baseline(pg: local.Postgres, rates: dict[str, float], messages: int = 6000, per: int = 10) -> tuple[float, float]:
    """The national store alone, no bus: items/s (wall) and items per CPU-second of this process
    applying the profile's mix in batches of 500 messages, into a database of its own."""
    import json
    import random

    import psycopg

    from segel.national import loadgen, model
    from segel.national import store as nstore

    with psycopg.connect(pg.dsn.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS baseline")
        c.execute("CREATE DATABASE baseline")
    dsn = pg.dsn.rsplit("/", 1)[0] + "/baseline"
    rnd = random.Random(7)
    bodies = loadgen.Bodies(rnd)
    kinds = [k for k in rates if k != "summary"]
    weights = [rates[k] for k in kinds]
    regs = {c: loadgen.Regency(c, codes.up_topic(c), None, 3113) for c in wilayah.regencies()}  # type: ignore[arg-type]
    codes_ = list(regs)
    msgs = []
    for _ in range(messages):
        r = regs[codes_[rnd.randrange(len(codes_))]]
        now = time.time()
        parts = []
        for k in rnd.choices(kinds, weights=weights, k=per):
            r.seq += 1
            subject, body = bodies.make(k, r, now)
            parts.append(json.dumps({"seq": r.seq, "kind": k, "subject": subject or None, "at": now, "committed": now,
                                     "body": body}))
        msgs.append(nstore.Incoming(r.topic, model.encode(r.code, r.code, now, parts), now))
    with nstore.connect(dsn) as conn:
        nstore.ensure_schema(conn)
        nstore.apply_batch(conn, msgs[:500])
        c0, w0 = time.process_time(), time.monotonic()
        n = sum(nstore.apply_batch(conn, msgs[i:i + 500]).items for i in range(500, len(msgs), 500))
        c1, w1 = time.process_time(), time.monotonic()
    return n / (w1 - w0), n / max(1e-9, c1 - c0)


def _bytes_per_item(dsn: str) -> tuple[float, float]:
    """Bytes per position (its table and index) and per other item (every other table), as stored."""
    import psycopg

    with psycopg.connect(dsn) as c:
        sizes = dict(c.execute("SELECT relname, pg_total_relation_size(relid) FROM pg_stat_user_tables").fetchall())
        npos = c.execute("SELECT count(*) FROM positions").fetchone()[0] or 1
        nitems = c.execute("SELECT count(*) FROM items").fetchone()[0] or 1
    pos = sizes.pop("positions", 0)
    return float(pos) / npos, float(sum(sizes.values())) / nitems
