"""An ack or resolve made in another process (the CLI) reaches MQTT and the webhooks through the running
gateway, also when the gateway was down at the time (real Mosquitto, real gateway, `segel` as a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from segel import protocol, store
from segel.custody import build_judge
from segel.notify.webhooks import WebhookNotifier
from segel.protocol import SealEvent
from segel.service.gateway import Gateway

from tests.gateway.gwtest import Publisher, load, setup
from tests.rules.test_webhooks import Receiver, wait_for
from tests.rules.world import CALENDAR, K, places, wita

pytestmark = pytest.mark.slow
SEGEL = str(Path(sys.executable).parent / "segel")


class Watcher:
    """Everything on segel/alerts/# and segel/alert-state/+ (retained flag kept)."""

    def __init__(self, port: int) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{time.monotonic_ns()}")
        ready = threading.Event()
        self.c.on_connect = lambda c, *a: c.subscribe([("segel/alerts/#", 1), ("segel/alert-state/+", 1)])
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, m.payload, bool(m.retain)))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        ready.wait(10)

    def events(self) -> list[tuple[str, str]]:
        return [(t.split("/")[-1], json.loads(p)["event"]) for t, p, _r in self.got if t.startswith("segel/alerts/")]

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _cli(db: Path, *args: str) -> str:
    r = subprocess.run([SEGEL, "alerts", *args, "--db", str(db)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_cli_ack_and_resolve_reach_mqtt_and_webhooks_even_while_the_gateway_is_down(tmp_path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    cfg, fleet = setup(tmp_path, mosquitto.port, devices=1)
    (tmp_path / "boxes.csv").write_text("box,tps,device\nBOX-1,T1,000101\n")
    (tmp_path / "calendar.toml").write_text(CALENDAR)
    db = tmp_path / "segel.db"
    conn = store.connect(db)
    judge = build_judge(conn, places=places(), boxes=tmp_path / "boxes.csv", calendar=tmp_path / "calendar.toml")
    conn.close()
    hook = Receiver([])
    notifier = WebhookNotifier([hook.url], b"hook secret", backoff_s=0.1).start()

    def start() -> Gateway:
        return Gateway(load(cfg), judges=[judge], on_alerts=lambda alerts: [notifier.submit(a) for a in alerts]).start()

    gw = start()
    watch = Watcher(mosquitto.port)
    pub = Publisher(mosquitto.port)
    try:
        t = wita("2024-11-24T22:30:00")
        pub.publish("segel/up/000101", protocol.encode(fleet.keys(0x000101), 0x000101, 7, t,
                                                       protocol.Seal(int(SealEvent.LOOP_OPEN), 1, 0x0B, K[0], K[1])))
        wait_for(lambda: ("seal_unauthorised", "raised") in watch.events(), timeout=20)
        aid = json.loads(next(p for tp, p, _ in watch.got if tp == "segel/alerts/seal_unauthorised"))["id"]
        assert "published on MQTT" in _cli(db, "ack", aid, "--by", "Sari", "--note", "on it")
        wait_for(lambda: ("seal_unauthorised", "acknowledged") in watch.events(), timeout=10)
        def hooked() -> list[dict]:
            return [d for _t, _h, b in hook.requests if (d := json.loads(b))["id"] == aid]

        wait_for(lambda: any(d["event"] == "acknowledged" for d in hooked()), timeout=10)
        acked = hooked()[-1]
        assert acked["acknowledged_by"] == "Sari" and acked["ack_note"] == "on it"

        gw.stop()  # the operator resolves while the gateway is down: nothing is lost
        _cli(db, "resolve", aid, "--by", "Sari", "--note", "re-sealed before witnesses")
        conn = store.connect(db)
        assert [b["event"] for _i, _k, b in store.pending_publications(conn)] == ["resolved"]
        time.sleep(0.5)
        assert ("seal_unauthorised", "resolved") not in watch.events()
        gw = start()
        wait_for(lambda: ("seal_unauthorised", "resolved") in watch.events(), timeout=20)
        wait_for(lambda: hooked()[-1]["event"] == "resolved", timeout=10)
        assert hooked()[-1]["resolve_note"] == "re-sealed before witnesses"
        wait_for(lambda: not store.pending_publications(conn), timeout=5)
        conn.close()
        # the retained state: the alert while active, then emptied once resolved
        states = [(p, r) for tp, p, r in watch.got if tp == f"segel/alert-state/{aid}"]
        assert [json.loads(p)["state"] for p, _ in states[:2]] == ["open", "acknowledged"] and states[-1][0] == b""
        late = Watcher(mosquitto.port)  # a client connecting now gets what is active, not the resolved alert
        time.sleep(0.5)
        retained = {json.loads(p)["kind"]: json.loads(p)["state"] for tp, p, r in late.got
                    if tp.startswith("segel/alert-state/") and r}
        late.close()
        assert retained == {"behind_schedule": "open"}  # the 2024 calendar's legs closed long ago
    finally:
        pub.close()
        watch.close()
        gw.stop()
        notifier.stop()
        hook.close()
