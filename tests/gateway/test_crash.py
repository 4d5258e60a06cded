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
from segel import store
from segel.edge import topics

from tests.gateway.gwtest import Publisher, influx_counts, setup, wait

pytestmark = pytest.mark.slow

SEGEL = str(Path(sys.executable).parent / "segel")


def start_gateway(cfg: Path, log: Path) -> subprocess.Popen:
    fh = open(log, "ab")  # noqa: SIM115
    p = subprocess.Popen([SEGEL, "-v", "gateway", "--config", str(cfg)], stdout=fh, stderr=subprocess.STDOUT)
    fh.close()
    return p


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (from /proc)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


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
        mqtt_procs = children(gw.pid)
        assert mqtt_procs, "paho runs in a child process of the gateway (mqtt.link = process)"
        os.kill(gw.pid, signal.SIGKILL)
        gw.wait(10)
        # the MQTT process sees the gateway's end of the pipe close and exits, acknowledging nothing more
        wait(lambda: not any(alive(p) for p in mqtt_procs), 10, "the MQTT process to exit after the kill")
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


def test_mqtt_process_killed_is_restarted_and_nothing_is_lost(tmp_path: Path, mosquitto, influxdb) -> None:
    """kill -9 of the gateway's MQTT process: the gateway starts a new one; what the old one had
    not acknowledged comes again from the broker and is stored once."""
    from segel.service.gateway import Gateway

    from tests.gateway.gwtest import load

    cfg, fleet = setup(tmp_path, mosquitto.port, influxdb.url, devices=4)
    gw = Gateway(load(cfg)).start()
    pub = Publisher(mosquitto.port)
    try:
        assert gw.wait_until(lambda s: s.mqtt_connected, 20)
        frames = [fleet.frame(d) for _ in range(100) for d in range(0x101, 0x105)]
        for fr in frames[:200]:
            pub.publish(topics.tracker_up(fr[1:4].hex()), fr, wait=False)
        first = gw.link.pid
        assert first is not None and first in children(os.getpid())
        os.kill(first, signal.SIGKILL)
        for fr in frames[200:]:
            pub.publish(topics.tracker_up(fr[1:4].hex()), fr)
        assert gw.wait_until(lambda s: s.mqtt_connects >= 2, 30), "a new MQTT process connected"
        assert gw.link.pid not in (None, first)
        wait(lambda: influx_counts(influxdb)[0] >= len(frames), 60, "every frame in InfluxDB")
        time.sleep(1.0)
        assert influx_counts(influxdb) == (len(frames), 4)
        assert gw.snapshot().accepted == len(frames)
    finally:
        pub.close()
        gw.stop()
