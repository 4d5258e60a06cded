"""Setup that cannot be done in the wrong order (issue 19): the command's path said, production
custody rules on, a calendar that overrides the fleet's interval named, the status snapshot's
time shown in local time."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from segel import config as cfgmod
from segel import store
from segel.provision.settings import init_fleet
from segel.service import health
from segel.service.assemble import assemble

ROOT = Path(__file__).resolve().parents[2]
CALENDAR = """name = "rehearsal calendar"
timezone = "WITA"
[legs.pps_to_tps]
depart = 2024-11-26T13:00:00
arrive_by = 2024-11-26T23:30:00
[rules]
report_interval_s = 7200
"""


def test_production_config_has_the_custody_rules_on_and_refuses_a_missing_calendar(tmp_path: Path) -> None:
    cfg = cfgmod.load(ROOT / "deploy" / "segel.toml", env={
        "SEGEL_GATEWAY_DB": str(tmp_path / "segel.db"), "SEGEL_CUSTODY_CALENDAR": str(tmp_path / "calendar.toml")})
    assert cfgmod.load(ROOT / "deploy" / "segel.toml", env={}).custody.calendar == "/etc/segel/custody/calendar.toml"
    with pytest.raises(cfgmod.ConfigError, match="custody: file not found: .*calendar.toml"):
        assemble(cfg)


def test_a_calendar_that_overrides_the_fleets_interval_is_named(tmp_path: Path, caplog) -> None:
    fleet = init_fleet(tmp_path / "fleet")  # report_interval_s 300 (fleet.toml)
    (tmp_path / "calendar.toml").write_text(CALENDAR)
    cfg = cfgmod.load(None, env={}, overrides={"gateway.db": str(fleet.registry_db()),
                                               "custody.calendar": str(tmp_path / "calendar.toml")})
    parts = assemble(cfg)
    [w] = parts.warnings
    assert "sets [rules] report_interval_s = 7200 s, but the fleet's trackers report every 300 s" in w
    assert "custody.report_interval_s = 300" in w and "NOT the fleet's" in parts.summary
    assert any("report every 300 s" in r.getMessage() for r in caplog.records)
    # set on purpose in the gateway's config: no warning
    cfg = cfgmod.load(None, env={}, overrides={"gateway.db": str(fleet.registry_db()), "custody.report_interval_s": 300,
                                               "custody.calendar": str(tmp_path / "calendar.toml")})
    assert assemble(cfg).warnings == []


def test_status_says_when_its_snapshot_was_taken_in_local_time(tmp_path: Path) -> None:
    conn = store.connect(tmp_path / "segel.db")
    conn.execute(health.HEALTH_SCHEMA)
    snap = health.Snapshot(instance="command-post")
    snap.at = 1732683900.0  # 2024-11-27 05:05:00 UTC
    snap.started_at = snap.at - 600
    conn.execute("BEGIN")
    health.save(conn, snap)
    conn.execute("COMMIT")
    text = health.status_text(conn, now=snap.at + 45, tz="WITA", every_s=60)
    assert "snapshot of 2024-11-27 13:05:00 WITA (45 s ago; written every 60 s)" in text
    assert "2024-11-27 12:05:00 WIB" in health.status_text(conn, now=snap.at + 45, tz="WIB")


@pytest.mark.slow
def test_setup_says_where_the_segel_command_is() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"
    res = subprocess.run(["bash", "scripts/setup.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"the segel command is {ROOT}/.venv/bin/segel (not on your PATH)" in res.stdout
    assert "source .venv/bin/activate" in res.stdout
