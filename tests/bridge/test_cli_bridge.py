"""`segel bridge` as a technician runs it: a subprocess on a pty base station and a real broker;
SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bridge.harness import Collector, PtyBase, frames, wait_until

pytestmark = pytest.mark.timeout(90)


def test_segel_bridge_command_end_to_end(tmp_path: Path, mosquitto) -> None:
    col = Collector(mosquitto.port)
    base = PtyBase(tmp_path)
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    proc = subprocess.Popen([str(Path(sys.executable).parent / "segel"), "bridge", "--port", str(base.path), "--broker", mosquitto.url,
                             "--id", "cli-1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: any(s.get("bridge_id") == "cli-1" and s.get("serial_connected") for s in col.statuses())
                          or proc.poll() is not None, 20)
        assert proc.poll() is None, proc.communicate()[1]
        sent = frames(30, seed=3)
        for f in sent:
            base.radio.push(f)
        assert sorted(col.wait_frames(30)) == sorted(f.hex() for f in sent)
        assert all(t == "segel/bridge/cli-1/up" for t, _ in col.messages)
        assert (tmp_path / "state" / "segel" / "bridge-cli-1.sqlite").exists()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0 and "bridge cli-1: serial" in err
        assert wait_until(lambda: col.statuses()[-1] == {"bridge_id": "cli-1", "online": False})
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
        base.close()
        col.close()
