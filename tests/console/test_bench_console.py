"""`segel bench console` runs end to end on a small load and reports every figure (timings are printed,
never asserted): the same code path as the full benchmark, with 3 clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from segel.bench import console as bench

pytestmark = pytest.mark.slow


def test_bench_console_small_run_delivers_every_alert_to_every_client(tmp_path: Path) -> None:
    res = bench.run(clients=3, rate=300.0, seconds=2.0, frames=2000, alert_every=20, workdir=tmp_path / "b",
                    browser=False)
    assert (res.boxes, res.places) == (1402, 1729)
    assert res.alerts > 0 and res.deliveries == res.alerts * 3, res.report()
    assert res.ingest_without > 0 and res.ingest_with > 0 and res.map_bytes > 500_000
    assert res.console_rss_mb > 0 and not res.errors, res.report()
    text = res.report()
    for line in ("first full map load", "gateway ingest", "publish -> alert", "publish -> MQTT", "console"):
        assert line in text
