"""The report policy: duty-cycle budget, status timing, fixes after seal wakes, battery slow-down."""

from __future__ import annotations

from segelfw import config, policy
from segelfw import protocol as P

T = 1_800_000_000


def pol(**over) -> policy.Policy:
    return policy.Policy(config.validate({"device_id": "000101", "key": "00" * 32, "board": "tbeam-v1.1", **over}))


def test_frames_per_wake_is_one_percent_of_the_interval() -> None:
    assert pol(sf=10).frames_per_wake() == 8  # 3 s of air per 5 min / 370 ms, capped at 8
    assert pol(sf=10, report_interval_s=60, fix_timeout_s=30).frames_per_wake() == 1  # 600 ms / 370 ms
    assert pol(sf=9, report_interval_s=60, fix_timeout_s=30).frames_per_wake() == 2
    assert pol(sf=7, report_interval_s=30, fix_timeout_s=20).frames_per_wake() == 4


def test_position_every_timer_wake_and_after_seal_wakes() -> None:
    p = pol()
    assert p.want_position(None, T, False)
    assert p.want_position(T, T + 300, False)
    assert not p.want_position(T, T + 100, False)  # a timer wake right after a seal wake
    assert p.want_position(T, T + 10, True)  # a seal wake always fixes
    assert p.want_position(T, 0, False)  # clock not set: fix (and set it)


def test_status_hourly_and_after_unusual_boots() -> None:
    p = pol()
    assert p.want_status(None, T, P.R_DEEPSLEEP, P.R_DEEPSLEEP, False)
    assert not p.want_status(T, T + 1800, P.R_DEEPSLEEP, P.R_DEEPSLEEP, False)
    assert p.want_status(T, T + 3500, P.R_DEEPSLEEP, P.R_DEEPSLEEP, False)
    assert p.want_status(T, T + 60, P.R_WATCHDOG, P.R_DEEPSLEEP, False)
    assert p.want_status(T, T + 60, P.R_DEEPSLEEP, P.R_DEEPSLEEP, True)  # LOW_BATT changed


def test_sleep_keeps_the_grid_and_slows_on_a_critical_battery() -> None:
    p = pol()
    assert p.sleep_ms(12_000, 3900, False) == 288_000
    assert p.sleep_ms(400_000, 3900, False) == policy.MIN_SLEEP_MS
    assert p.sleep_ms(12_000, 3250, False) == 4 * 300_000 - 12_000
    assert p.sleep_ms(12_000, 3250, True) == 288_000  # on USB power: no slow-down
    assert p.low_battery(3400, False) and not p.low_battery(3400, True) and not p.low_battery(0, False)


def test_remote_config_overrides() -> None:
    p = pol()
    p.apply_remote({"report_interval_s": 120, "sf": 9})
    assert p.interval_s == 120 and p.sf == 9 and p.fix_timeout_s == 60
