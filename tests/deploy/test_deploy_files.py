"""Service files that cannot run here (no systemd as PID 1, no Docker daemon) checked as far as
this machine allows: systemd units with `systemd-analyze verify`, the Compose file and the
Dockerfile structurally, the gateway's production config through the gateway's own loader."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from segel import config as gwconfig
from segel.deploy import mosquitto as deploy

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SEGEL = ROOT / ".venv" / "bin" / "segel"


def verify_unit(tmp_path: Path, name: str, instance: str | None = None) -> str:
    text = (DEPLOY / "systemd" / name).read_text()
    assert "/opt/segel/venv/bin/segel " in text
    if not SEGEL.exists():
        pytest.skip("the gateway's venv is not at .venv (run bash scripts/test.sh)")
    unit = tmp_path / (name.replace("@.", f"@{instance}.") if instance else name)
    unit.write_text(text.replace("/opt/segel/venv/bin/segel", str(SEGEL)))
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    return res.stderr + res.stdout if res.returncode else res.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("name,instance", [("segel-gateway.service", None), ("segel-bridge@.service", "ppk-sangatta"),
                                           ("segel-console.service", None)])
def test_systemd_units_verify(tmp_path: Path, name: str, instance: str | None) -> None:
    out = verify_unit(tmp_path, name, instance)
    assert "Unknown" not in out and "ignoring" not in out and "failed" not in out and "not executable" not in out, out


def test_systemd_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    bad = tmp_path / "bad.service"
    bad.write_text("[Service]\nExecStart=/nonexistent/segel gateway\nRestartSecs=5\n")
    res = subprocess.run(["systemd-analyze", "verify", str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert "Unknown key" in res.stderr and "not executable" in res.stderr


def test_units_run_as_segel_with_secrets_from_environment_files() -> None:
    gw = (DEPLOY / "systemd" / "segel-gateway.service").read_text()
    assert "User=segel" in gw and "EnvironmentFile=/etc/segel/segel.env" in gw and "StateDirectory=segel" in gw
    assert "--config /etc/segel/segel.toml" in gw
    assert not [ln for ln in gw.splitlines() if "PASSWORD" in ln and not ln.startswith("#")]
    br = (DEPLOY / "systemd" / "segel-bridge@.service").read_text()
    assert "--id %i" in br and "EnvironmentFile=/etc/segel/bridge-%i.env" in br and "dialout" in br
    dropin = (DEPLOY / "systemd" / "mosquitto.service.d" / "segel.conf").read_text()
    assert "ExecStart=\nExecStart=/usr/sbin/mosquitto -c /etc/mosquitto/segel/mosquitto.conf" in dropin
    assert f"{deploy.MosquittoSettings.conf_dir}/mosquitto.conf" in dropin


def test_production_gateway_config_loads_and_matches_the_deployment() -> None:
    cfg = gwconfig.load(DEPLOY / "segel.toml", env={"SEGEL_MQTT_PASSWORD": "x", "SEGEL_INFLUX_PASSWORD": "y"})
    assert cfg.mqtt.url == "mqtt://127.0.0.1:1883" and cfg.mqtt.username == deploy.DEFAULT_GATEWAY
    assert cfg.influx.kind == "v1" and cfg.influx.username == "segel_gateway" and not cfg.influx.create_database
    assert cfg.mqtt.password == "x" and cfg.influx.password == "y"
    assert str(cfg.path(cfg.gateway.db)).startswith("/var/lib/segel/")
    assert "password" not in (DEPLOY / "segel.toml").read_text().split("[mqtt]")[1].split("\n[")[0].replace(
        "SEGEL_MQTT_PASSWORD", "")


def test_compose_file_wires_the_services() -> None:
    doc = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    svc = doc["services"]
    assert {"mosquitto", "influxdb", "influxdb-setup", "grafana", "gateway"} <= set(svc)
    for name, s in svc.items():
        for image in [s.get("image", "")]:
            assert not image or ("/" not in image.split(":")[0] or image.count("/") == 1), f"{name}: no registry host"
    # only TLS MQTT leaves the broker; plain MQTT stays on its loopback, which the gateway shares
    assert svc["mosquitto"]["ports"] == ["8883:8883"]
    assert svc["gateway"]["network_mode"] == "service:mosquitto"
    assert "ports" not in svc["influxdb"] and "ports" not in svc["gateway"]
    assert svc["influxdb"]["environment"]["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    # every file mounted from the repository exists (./generated/ is made by the operator)
    for name, s in svc.items():
        for v in s.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                if src.startswith("./generated"):
                    continue
                assert (DEPLOY / src).exists(), f"{name}: {src} missing"
    b = svc["gateway"]["build"]
    assert (DEPLOY / b["context"] / b["dockerfile"]).is_file()
    env = svc["gateway"]["environment"]
    assert set(env) >= {"SEGEL_MQTT_PASSWORD", "SEGEL_INFLUX_PASSWORD"}
    keys = {f"SEGEL_{s.upper()}_{k.upper()}" for s in gwconfig.SECTIONS for k in
            gwconfig.Config().__dict__[s].__dict__}
    assert set(env) <= keys, f"not gateway settings: {set(env) - keys}"
    example = (DEPLOY / "env.example").read_text()
    used = {w.split(":")[0] for w in (DEPLOY / "docker-compose.yml").read_text().split("${")[1:]}
    assert all(f"{u}=" in example for u in used), used


def test_dockerfile_copies_what_the_wheel_needs() -> None:
    lines = [ln.split() for ln in (DEPLOY / "gateway" / "Dockerfile").read_text().splitlines() if ln.startswith("COPY")]
    for _, src, _dst in lines:
        assert (ROOT / src).exists(), src
    pyproject = (ROOT / "gateway" / "pyproject.toml").read_text()
    for _, src, _dst in lines[1:]:
        assert f'"../{src}"' in pyproject, f"{src} is not force-included by the wheel"


def test_console_behind_a_tls_proxy() -> None:
    """The reverse-proxy examples reach the console on loopback, say it was HTTPS, and do not buffer
    the live updates; the production config keeps the console on loopback with Secure cookies."""
    nginx = (DEPLOY / "console" / "nginx.conf").read_text()
    assert "listen 443 ssl" in nginx and "proxy_pass http://127.0.0.1:8080" in nginx
    assert "X-Forwarded-Proto https" in nginx and "X-Forwarded-For $remote_addr" in nginx
    events = nginx.split("location = /events")[1]
    assert "proxy_buffering off" in events and "proxy_read_timeout 1h" in events
    caddy = (DEPLOY / "console" / "Caddyfile").read_text()
    assert "reverse_proxy 127.0.0.1:8080" in caddy and "flush_interval -1" in caddy
    cfg = gwconfig.load(DEPLOY / "segel.toml", env={})
    assert (cfg.console.host, cfg.console.port, cfg.console.secure_cookies) == ("127.0.0.1", 8080, "always")
    assert "127.0.0.1" in cfg.console.trusted_proxies and cfg.locale.timezone == "WITA"
    unit = (DEPLOY / "systemd" / "segel-console.service").read_text()
    assert "User=segel" in unit and "segel console --config /etc/segel/segel.toml" in unit
