"""The simulator keeps away from a real fleet (issue 19): on a broker that carries one it refuses
to publish unless given topics of its own, and its trackers are marked simulated everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel import store
from segel.cli import main
from segel.edge import topics
from segel.ids import SIM_FIRST, is_simulated
from segel.registry import Registry, RegistryError
from segel.sim.broker import segel_traffic

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "kutai-timur"


def _retained_gateway_status(port: int) -> None:
    subprocess.run(["mosquitto_pub", "-p", str(port), "-t", "segel/gateway/status", "-r", "-q", "1",
                    "-m", json.dumps({"instance": "command-post", "connected": True})], check=True, timeout=10)


def test_probe_sees_a_real_gateways_status_and_uplinks(mosquitto) -> None:
    assert segel_traffic(f"mqtt://127.0.0.1:{mosquitto.port}", 0.5) == []
    _retained_gateway_status(mosquitto.port)
    assert segel_traffic(f"mqtt://127.0.0.1:{mosquitto.port}", 0.5) == ["segel/gateway/status (retained)"]


def test_simulate_refuses_a_broker_with_a_real_fleet_and_publishes_nothing(mosquitto, tmp_path: Path) -> None:
    _retained_gateway_status(mosquitto.port)
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(mosquitto.port), "-t", "segel/up/+", "-t", "segel/bridge/+/up",
                            "-v", "-W", "8"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.3)
    r = CliRunner().invoke(main, ["simulate", str(SCENARIO), "--boxes", "3", "--workdir", str(tmp_path / "w"),
                                  "--broker", f"mqtt://127.0.0.1:{mosquitto.port}", "--threads"])
    out, _ = sub.communicate(timeout=20)
    assert r.exit_code == 1, r.output
    assert "carries a Segel fleet (segel/gateway/status (retained))" in r.output and "--topic-prefix" in r.output
    assert out == ""  # not one frame reached the real fleet's topics


@pytest.mark.slow
def test_simulate_with_its_own_topics_runs_beside_a_real_fleet(mosquitto, tmp_path: Path) -> None:
    _retained_gateway_status(mosquitto.port)
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(mosquitto.port), "-t", "segel/#", "-v", "-W", "60"],
                           stdout=subprocess.PIPE, text=True)
    code = (
        "import sys; from segel.cli import main; sys.argv = ['segel'] + sys.argv[1:]; main()")
    res = subprocess.run([sys.executable, "-c", code, "simulate", str(SCENARIO), "--boxes", "3", "--json",
                          "--workdir", str(tmp_path / "w"), "--broker", f"mqtt://127.0.0.1:{mosquitto.port}",
                          "--topic-prefix", "segel-sim", "--speed", "100000", "--report-interval", "3600"],
                         capture_output=True, text=True, timeout=600)
    sub.kill()
    real, _ = sub.communicate()
    summary = json.loads(res.stdout)
    assert summary["gateway"]["accepted"] > 0, res.stderr[-2000:]
    # only the real gateway's retained status on the real topics: the simulation stayed on segel-sim/...
    assert [ln.split(" ")[0] for ln in real.splitlines()] == ["segel/gateway/status"]
    conn = store.connect(tmp_path / "w" / "segel.db")
    ids = [r[0] for r in conn.execute("SELECT device_id FROM devices")]
    assert ids and all(is_simulated(i) for i in ids)
    alerts = summary["incidents"]
    assert alerts and all(a["raised"] for a in alerts)


def test_simulated_ids_are_never_given_to_real_trackers(tmp_path: Path) -> None:
    reg = Registry(store.connect(tmp_path / "r.db"))
    reg.add_device(SIM_FIRST + 5)  # a simulated tracker in this registry does not move provisioning up
    assert reg.next_free_ids(2) == [0x101, 0x102]
    reg.add_device(SIM_FIRST - 2)
    with pytest.raises(RegistryError, match="no free device ids"):
        reg.next_free_ids(2)


def test_topic_prefix_moves_every_topic(monkeypatch) -> None:
    import importlib

    monkeypatch.setenv("SEGEL_TOPIC_PREFIX", "segel-sim")
    try:
        t = importlib.reload(topics)
        assert t.tracker_up("f00101") == "segel-sim/up/f00101" and t.ALERT_SUB == "segel-sim/alerts/#"
        assert t.split("segel-sim/bridge/b1/up") == ("bridge", "b1") and t.split("segel/up/000101") is None
    finally:
        monkeypatch.delenv("SEGEL_TOPIC_PREFIX")
        importlib.reload(topics)
    assert topics.PREFIX == "segel" and topics.GATEWAY_STATUS == "segel/gateway/status"
    layout = {k: v for k, v in vars(topics).items() if k.isupper() and isinstance(v, str) and v.startswith("segel/")}
    assert set(layout) == set(topics._LAYOUT)  # set_prefix() moves every topic the module defines
