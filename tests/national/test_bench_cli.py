"""`segel bench national` and `segel national ingest|status` as a user runs them (small and short: no timing is asserted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel.cli import main
from segel.national import capture, local
from segel.national import federation as fed

from tests.national.test_uplink import confirmed, raise_alerts, regency_db, section, stored

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_bench_national_prints_its_figures() -> None:
    res = CliRunner().invoke(main, ["bench", "national", "--seconds", "5", "--warmup", "1", "--rate", "300",
                                    "--boxes", "20000"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "514 regency connections over 3 NATS nodes" in out
    assert "offered 300 items/s" in out and "national store sustained" in out and "p99" in out
    assert "peak memory: nats n1" in out and "sizing:" in out
    assert "busiest 15 min from 2024-11-2" in res.output  # the profile (on stderr)


def test_the_ingest_command_runs_until_sigterm(tmp_path: Path, nats_node: local.NatsCluster, dsn: str) -> None:
    conf = tmp_path / "ingest-cli.toml"
    urls = nats_node.urls(fed.INGEST_USER, nats_node.password(fed.INGEST_USER))
    conf.write_text(f'[ingest]\nname = "ingest-cli"\nurls = {urls!r}\n[store]\ndsn = "{dsn}"\n'.replace("'", '"'))
    log = tmp_path / "ingest.log"
    with open(log, "wb") as fh:
        p = subprocess.Popen([str(Path(sys.executable).parent / "segel"), "national", "ingest", "--config", str(conf)],
                             cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ})
    conn = regency_db(tmp_path / "r.db")
    raise_alerts(conn, 25)
    from segel.national import uplink

    up = uplink.Uplink(tmp_path / "r.db", section(nats_node, code="63.01")).start()
    try:
        assert up.wait_until(confirmed(conn, 25), 40), (up.stats, log.read_text()[-2000:])
    finally:
        up.stop()
        p.send_signal(signal.SIGTERM)
        p.wait(20)
    assert p.returncode == 0
    text = log.read_text()
    assert "segel national ingester ingest-cli running" in text and "items applied" in text
    assert len(stored(dsn, "63.01")) >= 25
    res = CliRunner().invoke(main, ["national", "status", "--db", str(tmp_path / "r.db")])
    assert res.exit_code == 0, res.output
    assert f"confirmed by the national store {capture.last_seq(conn)}" in res.output and "waiting 0" in res.output
