"""kill -9 the gateway process mid-stream; after a restart every frame is in InfluxDB exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from segel import store, topics
from tests.gateway.gwtest import Publisher, influx_counts, setup, wait

pytestmark = pytest.mark.slow

SEGEL = str(Path(sys.executable).parent / "segel")


def start_gateway(cfg: Path, log: Path) -> subprocess.Popen:
    fh = open(log, "ab")  # noqa: SIM115
    p = subprocess.Popen([SEGEL, "-v", "gateway", "--config", str(cfg)], stdout=fh, stderr=subprocess.STDOUT)
    fh.close()
    return p


def accepted(db: Path) -> int:
    conn = store.connect(db)
    try:
        return store.stats(conn).get("accepted", 0)
    finally:
        conn.close()


def test_kill_9_mid_stream_then_restart(tmp_path: Path, mosquitto, influxdb) -> None:
    cfg, fleet = setup(tmp_path, mosquitto.port, influxdb.url, devices=6)
    db = tmp_path / "segel.db"
    log = tmp_path / "gateway.log"
    frames = [fleet.frame(d) for _ in range(150) for d in range(0x101, 0x107)]
    gw = start_gateway(cfg, log)
    pub = Publisher(mosquitto.port)
    try:
        wait(lambda: b"subscribed" in log.read_bytes(), 20, "gateway connected")

        def send() -> None:
            for i, fr in enumerate(frames):
                pub.publish(topics.tracker_up(fr[1:4].hex()), fr, wait=(i % 20 == 0))
                if i % 50 == 0:
                    time.sleep(0.05)
        t = threading.Thread(target=send)
        t.start()
        wait(lambda: accepted(db) >= 150, 30, "some frames committed")
        os.kill(gw.pid, signal.SIGKILL)
        gw.wait(10)
        n_at_kill = accepted(db)
        t.join(60)
        assert n_at_kill < len(frames), "the kill came too late to test anything"
        time.sleep(0.5)
        gw = start_gateway(cfg, log)
        wait(lambda: influx_counts(influxdb)[0] >= len(frames), 60, "every frame in InfluxDB")
        time.sleep(1.0)  # give any duplicate a chance to show up
        assert influx_counts(influxdb) == (len(frames), 6)
        assert accepted(db) == len(frames)
    finally:
        pub.close()
        gw.send_signal(signal.SIGTERM)
        try:
            gw.wait(20)
        except subprocess.TimeoutExpired:
            gw.kill()
    assert gw.returncode == 0, log.read_text()[-3000:]
