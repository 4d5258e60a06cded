"""The burst after a dead zone, with `segel gateway` (rules on) killed with SIGKILL in the middle of
it and restarted: trackers flushing their queues as the firmware does (a receive window per frame,
unacked frames again at the next wake) end with every frame acked, and the database holds each
frame exactly once, checked frame by frame: one `seen` row, one judged copy, one ledger entry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from segel import protocol, store
from segel.bench.flush import FleetFlush, FlushStats
from segel.custody import build_judge

from tests.gateway.gwtest import setup, wait
from tests.gateway.test_crash import accepted, start_gateway
from tests.rules.world import CALENDAR, T1, places, wita

pytestmark = pytest.mark.slow

DEVICES = range(0x101, 0x101 + 30)
QUEUE = 20


def test_kill_9_during_the_burst_loses_no_frame_and_judges_none_twice(tmp_path: Path, mosquitto) -> None:
    # a re-sent frame is acked again after 0.5 s (the trackers here wake every 0.5 s, not hours)
    cfg, fleet = setup(tmp_path, mosquitto.port, devices=len(DEVICES), extra="reack_after_s = 0.5\nreack_burst = 100")
    (tmp_path / "boxes.csv").write_text("box,tps,device\n" + "".join(
        f"BOX-{d:x},T1,{d:06x}\n" for d in DEVICES))
    (tmp_path / "calendar.toml").write_text(CALENDAR)
    conn = store.connect(tmp_path / "segel.db")
    build_judge(conn, places=places(), boxes=tmp_path / "boxes.csv", calendar=tmp_path / "calendar.toml")
    conn.close()
    with cfg.open("a") as f:
        f.write('\n[custody]\ncalendar = "calendar.toml"\n')
    # each tracker's backlog: positions every 5 minutes of a stay at its TPS
    t0 = wita("2024-11-26T14:00:00")
    queues = {d: [(c, fleet.frame(d, protocol.Position(T1[0], T1[1] + (d - 0x101) * 1e-5, protocol.Flag.FIX, 1.0, 0),
                                  counter=c, dev_time=t0 + 300 * c)) for c in range(1, QUEUE + 1)] for d in DEVICES}
    keys = {d: fleet.keys(d) for d in DEVICES}
    log = tmp_path / "gateway.log"
    gw = start_gateway(cfg, log)
    result: list[FlushStats] = []
    try:
        wait(lambda: b"subscribed" in log.read_bytes(), 20, "gateway connected")
        sim = FleetFlush("127.0.0.1", mosquitto.port, queues, keys, jitter_ms=50, window_ms=1000, per_wake=2,
                         wake_gap_s=0.5)
        t = threading.Thread(target=lambda: result.append(_run(sim)))
        t.start()
        wait(lambda: accepted(tmp_path / "segel.db") >= len(DEVICES) * QUEUE // 4, 60, "a quarter of the frames committed")
        os.kill(gw.pid, signal.SIGKILL)
        gw.wait(10)
        n_at_kill = accepted(tmp_path / "segel.db")
        time.sleep(4.0)  # windows close unanswered meanwhile: frames are sent again, to a broker with no gateway
        gw = start_gateway(cfg, log)
        t.join(240)
        assert not t.is_alive(), "the trackers did not get all their acks"
    finally:
        gw.send_signal(signal.SIGTERM)
        try:
            gw.wait(20)
        except subprocess.TimeoutExpired:
            gw.kill()
    stats, = result
    total = len(DEVICES) * QUEUE
    assert n_at_kill < total, "the kill came too late to test anything"
    assert not stats.unacked, f"never acked: {stats.unacked}"
    conn = store.connect(tmp_path / "segel.db")
    want = {(d, c) for d in DEVICES for c in range(1, QUEUE + 1)}
    seen = Counter(conn.execute("SELECT device_id, counter FROM seen").fetchall())
    judged = Counter(conn.execute("SELECT device, counter FROM judge_frames").fetchall())
    ledgered = Counter((int(json.loads(b)["device"], 16), json.loads(b)["c"]) for (b,) in conn.execute(
        "SELECT body FROM custody_ledger WHERE event = 'frame'"))
    for name, got in (("seen", seen), ("judged", judged), ("ledger", ledgered)):
        assert set(got) == want, f"{name}: missing {sorted(want - set(got))[:5]}, extra {sorted(set(got) - want)[:5]}"
        assert max(got.values()) == 1, f"{name}: twice {[k for k, n in got.items() if n > 1][:5]}"
    assert store.stats(conn)["accepted"] == total
    assert stats.resends > 0, "the kill should have cost some receive windows"
    for d in DEVICES:  # the chains are whole after the crash
        from segel.custody import ledger

        assert ledger.verify(conn, f"BOX-{d:x}").ok
    assert gw.returncode == 0, log.read_text()[-3000:]


def _run(sim: FleetFlush) -> FlushStats:
    import asyncio

    return asyncio.run(sim.run(deadline_s=200))
