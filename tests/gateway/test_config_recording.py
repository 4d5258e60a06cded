from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from segel import config
from segel.edge.payloads import uplink
from segel.messages import RxMeta
from segel.recording import recorder as recording


def test_file_env_and_flags_in_that_order(tmp_path: Path) -> None:
    p = tmp_path / "segel.toml"
    p.write_text('[mqtt]\nurl = "mqtt://a:1883"\npassword = "hunter2"\n[influx]\nkind = "v1"\nbatch_size = 100\n'
                 '[gateway]\ndb = "data/g.db"\n')
    cfg = config.load(p, env={"SEGEL_INFLUX_BATCH_SIZE": "250", "SEGEL_MQTT_URL": "mqtt://b:1883"},
                      overrides={"mqtt.url": "mqtts://c:8883", "influx.kind": None})
    assert cfg.mqtt.url == "mqtts://c:8883" and cfg.influx.batch_size == 250 and cfg.influx.kind == "v1"
    assert cfg.path(cfg.gateway.db) == tmp_path / "data" / "g.db"
    red = cfg.redacted()
    assert red["mqtt"]["password"] == "***" and "hunter2" not in json.dumps(red)
    cfg2 = config.load(None, env={"SEGEL_MQTT_URL": "mqtts://gw:s3cret@broker:8883"})
    assert cfg2.redacted()["mqtt"]["url"] == "mqtts://gw:***@broker:8883"


@pytest.mark.parametrize("text, key, reason", [
    ('[mqtt]\nport = 1883\n', "mqtt.port", "unknown setting"),
    ('[mqtts]\nurl = "x"\n', "mqtts.url", "unknown section"),
    ('[influx]\nbatch_size = "lots"\n', "influx.batch_size", "expected int"),
    ('[influx]\nkind = "v3"\n', "influx.kind", "must be one of none, v1, v2"),
    ('[gateway]\ntick_interval_s = -1\n', "gateway.tick_interval_s", "must not be negative"),
    ('[gateway\n', "config", "not valid TOML"),
    ('[mqtt]\nlink = "fork"\n', "mqtt.link", "must be one of process, thread"),
    ('[gateway]\nack_qos = 2\n', "gateway.ack_qos", "must be 0 or 1"),
])
def test_bad_file_names_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    p = tmp_path / "segel.toml"
    p.write_text(text)
    with pytest.raises(config.ConfigError) as e:
        config.load(p, env={})
    assert e.value.key == key and reason in str(e.value) and str(p) in str(e.value)


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="SEGEL_GATEWAY_BATCH_MAX.*expected int"):
        config.load(None, env={"SEGEL_GATEWAY_BATCH_MAX": "many"})


def test_example_config_loads(tmp_path: Path) -> None:
    p = tmp_path / "segel.toml"
    p.write_text(config.EXAMPLE)
    assert config.load(p, env={}).influx.kind == "v1"


def test_recording_rotates_and_reads_back_in_order(tmp_path: Path, caplog) -> None:
    rec = recording.Recorder(tmp_path / "rec", max_bytes=800, keep=3)
    ups = [uplink(1000.0 + i, "segel/bridge/b/up" if i % 2 else "segel/up/000101", bytes([i]) * 24,
                  RxMeta(rssi=-90.0 - i, snr=3.5, base_id="bs", bridge_id="b") if i % 2 else None) for i in range(30)]
    for u in ups:
        rec.write(u)
    rec.write(uplink(2000.0, "segel/bridge/b/up", b"{bad json"), error="bridge payload is not JSON")
    rec.close()
    files = recording.files(tmp_path / "rec")
    assert len(files) == 4 and files[-1].name == "uplinks.jsonl"  # 3 rotated + current, oldest first
    back = list(recording.read(tmp_path / "rec"))
    assert back == ups[-len(back) + 1:] + [uplink(2000.0, "segel/bridge/b/up", b"{bad json")]
    assert len(list(recording.read(tmp_path / "rec", include_errors=False))) == len(back) - 1
    # a line cut short by a crash is skipped with its place named
    with open(files[-1], "a") as fh:
        fh.write('{"received_at": 3000, "topic": "segel/up/0')
    with caplog.at_level(logging.WARNING):
        assert len(list(recording.read(files[-1]))) >= 1
    assert "uplinks.jsonl:" in caplog.text and "unreadable" in caplog.text


@given(at=st.floats(allow_nan=False, allow_infinity=False), topic=st.text(max_size=40), frame=st.binary(max_size=40))
def test_the_recording_fast_path_writes_what_json_dumps_writes(at: float, topic: str, frame: bytes) -> None:

    up = uplink(at, topic, frame)
    want = json.dumps({"received_at": at, "topic": topic, "frame": frame.hex(), "meta": None}, separators=(",", ":"))
    assert recording.to_json(up) == want
    assert recording.from_json(json.loads(recording.to_json(up))) == up
