"""`segel gateway` with [console] enabled serves the console in its own process (real Mosquitto)."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests import servers
from tests.gateway.gwtest import setup

pytestmark = pytest.mark.slow


def test_segel_gateway_serves_the_console_when_enabled(tmp_path: Path, mosquitto) -> None:  # type: ignore[no-untyped-def]
    port = servers.free_port()
    cfg, _fleet = setup(tmp_path, mosquitto.port, devices=1)
    cfg.write_text(cfg.read_text() + f"\n[console]\nenabled = true\nport = {port}\n\n[locale]\ntimezone = \"WIB\"\n")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "segel"), "gateway", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        servers.wait_port(port, timeout=30, proc=proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as r:
            page = r.read().decode()
        assert "Masuk ke konsol Segel" in page
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"console on http://127.0.0.1:{port}/" in out
    assert proc.returncode == 0, out
