"""Bridge tests restart the broker mid-stream and rely on its persistence (a subscriber's
persistent session must survive the restart). Started as root, Mosquitto drops to the
`mosquitto` user and then cannot write its database in pytest's 0700 temporary folder
("Error saving in-memory database ... Permission denied"), so sessions silently do not survive.
`user root` keeps it as the user that started it (ignored when not started as root)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import servers


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[servers.Server]:
    srv = servers.mosquitto(tmp_path / "mosquitto", conf_extra="listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n")
    srv.start()
    yield srv
    srv.stop()
