"""The custody judge inside the real gateway, on a real Mosquitto: the alert JSON arrives on
segel/alerts/<kind>, and the same alert is pushed, signed, to a webhook on loopback."""

from __future__ import annotations

import json
import time

import pytest
from segel import protocol, store
from segel.custody import build_judge
from segel.notify.webhooks import (
    SIGNATURE_HEADER,
    WebhookNotifier,
    on_commit_hook,
    verify_signature,
)
from segel.protocol import SealEvent
from segel.service.gateway import Gateway

from tests.gateway.gwtest import Publisher, load, setup
from tests.rules.test_webhooks import Receiver, wait_for
from tests.rules.world import CALENDAR, K, places, wita

pytestmark = pytest.mark.slow


def test_alert_published_on_mqtt_and_pushed_to_a_webhook(tmp_path, mosquitto):
    cfg, fleet = setup(tmp_path, mosquitto.port, devices=1)
    (tmp_path / "boxes.csv").write_text("box,tps,device\nBOX-1,T1,000101\n")
    (tmp_path / "calendar.toml").write_text(CALENDAR)
    conn = store.connect(tmp_path / "segel.db")
    judge = build_judge(conn, places=places(), boxes=tmp_path / "boxes.csv", calendar=tmp_path / "calendar.toml")
    conn.close()
    hook = Receiver([503])
    notifier = WebhookNotifier([hook.url], b"hook secret", backoff_s=0.1).start()

    gw = Gateway(load(cfg), judges=[judge], on_commit=on_commit_hook(notifier)).start()
    pub = Publisher(mosquitto.port)
    try:
        t = wita("2024-11-24T22:30:00")
        frame = protocol.encode(fleet.keys(0x000101), 0x000101, 7, t,
                                protocol.Seal(int(SealEvent.LOOP_OPEN), 1, 0x0B, K[0], K[1]))
        pub.publish("segel/up/000101", frame)
        end = time.time() + 20
        while time.time() < end and not any(tp == "segel/alerts/seal_unauthorised" for tp, _ in pub.down):
            time.sleep(0.05)
        # (the timers may add behind_schedule alerts meanwhile: the calendar is in the past)
        (topic, payload), = [(tp, p) for tp, p in pub.down if tp == "segel/alerts/seal_unauthorised"]
        a = json.loads(payload)
        assert (a["kind"], a["severity"], a["box"], a["place"], a["state"], a["late"]) == (
            "seal_unauthorised", "critical", "BOX-1", "K1", "open", True)  # device time 2024, received now
        wait_for(lambda: notifier.stats.delivered == 1, timeout=10)
        (_t, headers, body), = hook.requests[1:]  # the first answer was 503: retried once
        assert json.loads(body)["id"] == a["id"]
        assert verify_signature(b"hook secret", headers[SIGNATURE_HEADER], body)
    finally:
        pub.close()
        gw.stop()
        notifier.stop()
        hook.close()
