"""Shared test setup: the firmware tree on sys.path, so `import segelfw` runs the firmware's code."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
for _p in (FIRMWARE, ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests import servers  # noqa: E402


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[servers.Server]:
    """A real Mosquitto on a free loopback port, persistence on, no queue limit."""
    srv = servers.mosquitto(tmp_path / "mosquitto").start()
    yield srv
    srv.stop()


@pytest.fixture
def influxdb(tmp_path: Path) -> Iterator[servers.Server]:
    """A real InfluxDB 1.x (Debian 1.6.7) on a free loopback port."""
    srv = servers.influxdb(tmp_path / "influxdb").start()
    servers.wait_http_ok(f"{srv.url}/ping")
    yield srv
    srv.stop()


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[servers.Server]:
    """A real VictoriaMetrics on a free loopback port (the influxdb-client v2 write path)."""
    srv = servers.victoria(tmp_path / "vm").start()
    servers.wait_http_ok(f"{srv.url}/health")
    yield srv
    srv.stop()
