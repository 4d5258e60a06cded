"""`segel gateway` assembled from its config: [custody] turns the rules on, every alert (from a
frame or from a timer) reaches MQTT and a signed webhook, bridge health becomes base_station
points; a broken [custody] section is refused naming its key. Real Mosquitto, real HTTP server."""

from __future__ import annotations

import calendar as cal
import http.server
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel import protocol
from segel.cli import main
from segel.config import ConfigError
from segel.edge import topics
from segel.ids import device_hex
from segel.notify.webhooks import SIGNATURE_HEADER, verify_signature
from segel.service.assemble import assemble
from segel.service.gateway import Gateway

from tests import servers
from tests.gateway import gwtest

ROOT = Path(__file__).resolve().parents[2]
SCEN = ROOT / "scenarios" / "kutai-timur"
SECRET = "hook-secret"
TPS = "64.08.01.2001-001"
# 25 Nov 2024 03:00 WITA: the box is still at the warehouse, far from any seal permit
CUT_AT = cal.timegm((2024, 11, 24, 19, 0, 0))


class Hook(http.server.BaseHTTPRequestHandler):
    got: list[tuple[dict, bool]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.got.append((json.loads(body), verify_signature(SECRET.encode(), self.headers[SIGNATURE_HEADER], body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture
def webhook() -> str:
    Hook.got = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/alerts"
    srv.shutdown()
    srv.server_close()


def _config(tmp: Path, port: int, hook: str, extra: str = "") -> tuple[Path, gwtest.Fleet]:
    (tmp / "boxes.csv").write_text(f"box,tps,contest,device\n{TPS}-GUB,{TPS},governor,000101\n")
    custody = (f'[custody]\nplaces = ["{SCEN / "places.csv"}", "{SCEN / "corridors.geojson"}"]\n'
               f'boxes = "boxes.csv"\ncalendar = "{SCEN / "calendar.toml"}"\nreport_interval_s = 1\n'
               f'webhook_urls = ["{hook}"]\nwebhook_secret = "{SECRET}"\n{extra}')
    cfg, fleet = gwtest.setup(tmp, port, devices=1)
    cfg.write_text(cfg.read_text() + custody)
    return cfg, fleet


def test_custody_alerts_reach_mqtt_and_signed_webhooks(tmp_path: Path, mosquitto: servers.Server,
                                                       webhook: str) -> None:
    cfg_path, fleet = _config(tmp_path, mosquitto.port, webhook)
    cfg = gwtest.load(cfg_path)
    parts = assemble(cfg)
    assert "custody rules on" in parts.summary and len(parts.judges) == 1
    gw = Gateway(cfg, judges=parts.judges, on_alerts=parts.on_alerts).start()
    pub = gwtest.Publisher(mosquitto.port)
    try:
        keys = fleet.keyring.keys_for(0x101)
        assert keys is not None
        seal = protocol.Seal(protocol.SealEvent.LOOP_OPEN, 0, protocol.Flag.LOOP_OPEN | protocol.Flag.TAMPER,
                             0.5, 117.55)
        pub.publish(topics.tracker_up(device_hex(0x101)), protocol.encode(keys, 0x101, 1, CUT_AT, seal))
        # bridge health, retained, as segel bridge publishes it
        pub.publish(topics.bridge_status("ppk-01"), json.dumps({
            "bridge_id": "ppk-01", "online": True,
            "bases": {"bs-1": {"uptime_s": 3600, "rx_packets": 120, "crc_errors": 3, "queue": 0}}}).encode())

        gwtest.wait(lambda: any(a.get("kind") == "seal_unauthorised" for a, _ in Hook.got), what="seal alert webhook")
        gwtest.wait(lambda: any(t.startswith("segel/alerts/seal_unauthorised") for t, _ in pub.down),
                    what="seal alert on MQTT")
        # no frame for 3 report intervals: the timer raises `silent`, and webhooks get it too
        gwtest.wait(lambda: any(a.get("kind") == "silent" for a, _ in Hook.got), timeout=30, what="silent alert webhook")
        assert all(ok for _, ok in Hook.got), "every delivery carries a valid signature"
        cut = next(a for a, _ in Hook.got if a.get("kind") == "seal_unauthorised")
        assert cut["severity"] == "critical" and cut["box"] == f"{TPS}-GUB" and cut["late"] is True

        conn = gw.pipeline.conn if gw.pipeline else None
        assert conn is not None
        gwtest.wait(lambda: any(line.startswith("base_station,base=bs-1,bridge=ppk-01 ")
                                for (line,) in conn.execute("SELECT line FROM outbox")),
                    what="base_station point in the outbox")
    finally:
        pub.close()
        gw.stop()
        parts.close()


def test_broken_custody_section_names_its_key(tmp_path: Path, mosquitto: servers.Server, webhook: str) -> None:
    cfg_path, _ = _config(tmp_path, mosquitto.port, webhook)
    text = cfg_path.read_text()
    cfg_path.write_text(text.replace('webhook_secret = "hook-secret"', 'webhook_secret = ""'))
    with pytest.raises(ConfigError, match="custody.webhook_secret"):
        assemble(gwtest.load(cfg_path))
    cfg_path.write_text(text.replace(str(SCEN / "calendar.toml"), str(tmp_path / "missing.toml")))
    res = CliRunner().invoke(main, ["gateway", "--config", str(cfg_path)])
    assert res.exit_code == 1 and "missing.toml" in res.output and "custody" in res.output, res.output


def test_places_without_calendar_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "segel.toml"
    p.write_text(f'[custody]\nplaces = ["{SCEN / "places.csv"}"]\n')
    with pytest.raises(ConfigError, match="custody.calendar"):
        assemble(gwtest.load(p))
    p.write_text('[custody]\nplaces = "a.csv, b.geojson"\n')  # a comma-separated string is a list too
    assert gwtest.load(p).custody.places == ["a.csv", "b.geojson"]
    p.write_text("[custody]\nplaces = 3\n")
    with pytest.raises(ConfigError, match="custody.places: expected a list of strings"):
        gwtest.load(p)
