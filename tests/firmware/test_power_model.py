"""hardware/power_model.py: at a 5-minute interval one 18650 lasts at least 30 days, and only
because the GNSS is off between fixes (the model says so for both the estimate and the firmware's
own wake cycle run on simulated hardware)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hardware"))

import power_model as pm  # noqa: E402


def test_five_minute_interval_lasts_30_days() -> None:
    a = pm.Assumptions()
    assert pm.days(a, 300) >= 30
    assert pm.gnss_always_on(a, 300) < 5  # GNSS left on: days, not weeks
    assert pm.days(replace(a, gnss_hot_s=a.gnss_cold_s), 300) < 30  # cold starts every time would miss it


def test_every_assumption_says_where_it_comes_from() -> None:
    a = pm.Assumptions()
    assert set(a.why) == {k for k in a.__dict__ if k != "why"}


def test_the_firmware_wake_cycle_agrees() -> None:
    sim = pm.simulate(hours=4, interval_s=300)
    assert sim["wakes"] >= 47
    assert sim["gnss_s"] < 5 and 1.0 <= sim["frames"] < 1.5
    a = pm.Assumptions()
    d = pm.days(a, 300, awake_s=sim["awake_s"] + a.boot_s, gnss_s=sim["gnss_s"], frames=sim["frames"], rx_s=sim["rx_s"])
    assert d >= 30


def test_script_prints_the_table() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "hardware" / "power_model.py"), "--set", "sleep_ma=0.9"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "<- target >= 30 days" in r.stdout and "sleep_ma = 0.9" in r.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "hardware" / "power_model.py"), "--set", "nonsense=1"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown assumption 'nonsense'" in bad.stderr
