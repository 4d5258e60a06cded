from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel import store
from segel.bench import ingest as benchmark
from segel.cli import main
from segel.edge.payloads import uplink
from segel.ingest.pipeline import Pipeline

from tests.gateway.fleet import make_fleet


def test_status_shows_counters_outbox_and_security_events(tmp_path: Path) -> None:
    f = make_fleet(tmp_path)
    p = Pipeline(f.conn, f.keyring)
    p.process(uplink(time.time(), "segel/up/000101", f.frame(0x101)))
    p.process(uplink(time.time(), "segel/up/000101", b"\x11\x00\x01\x01"))
    r = CliRunner().invoke(main, ["status", "--db", str(f.db_path), "--security", "5"])
    assert r.exit_code == 0, r.output
    assert "lifetime: accepted 1" in r.output and "truncated 1" in r.output
    assert "outbox: 2 lines waiting" in r.output and "frame=11000101" in r.output
    event = next(line for line in r.output.splitlines() if "frame=11000101" in line)
    assert re.search(r"#\d+ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d WITA truncated", event), event  # local time, not epoch


def test_status_without_database_says_what_to_do(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["status", "--db", str(tmp_path / "none.db")])
    assert r.exit_code != 0 and "no gateway database" in r.output and "--config" in r.output


def test_gateway_bad_config_names_key(tmp_path: Path) -> None:
    p = tmp_path / "segel.toml"
    p.write_text('[mqtt]\nkeepalive_s = "soon"\n')
    r = CliRunner().invoke(main, ["gateway", "--config", str(p)])
    assert r.exit_code != 0 and "mqtt.keepalive_s" in r.output and "expected int" in r.output


def test_gateway_missing_fleet_secret_is_explained(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["gateway", "--db", str(tmp_path / "g.db"), "--fleet-secret", str(tmp_path / "nope.key"),
                                  "--mqtt-url", "mqtt://127.0.0.1:1"])
    assert r.exit_code != 0 and "segel fleet init" in r.output


@pytest.mark.slow
def test_bench_ingest_runs_with_tiny_n(tmp_path: Path) -> None:
    res = benchmark.run(frames=300, devices=20, workdir=tmp_path)
    assert res.committed == 300 and res.bare_rate > 0 and res.gateway_rate > 0
    assert 0 < res.p50_ms <= res.p99_ms and res.peak_rss_mb > 10
    text = res.report()
    assert "ratio gateway / bare" in text and "p99" in text and "as fast as possible" in text
    conn = store.connect(tmp_path / "segel.db")
    assert store.stats(conn)["accepted"] == 320  # 20 warm-up frames + 300 measured, none rejected
    assert not any(k.startswith("rejected") for k in store.stats(conn))


def test_bench_ingest_cli_help_has_examples() -> None:
    r = CliRunner().invoke(main, ["bench", "ingest", "--help"])
    assert r.exit_code == 0 and "segel bench ingest --frames" in r.output
