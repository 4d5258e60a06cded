"""The one config validator: defaults filled, every bad field named in a message a technician can act on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from segelfw import config

BOARDS = Path(__file__).resolve().parents[2] / "hardware" / "boards"
GOOD = {"device_id": "000101", "key": "0f" * 32, "board": "tbeam-v1.1"}


def test_defaults_are_filled() -> None:
    c = config.validate(dict(GOOD))
    assert c["role"] == "tracker" and c["region"] == "AS923-2" and c["sf"] == 10
    assert c["channel"] == "random" and c["report_interval_s"] == 300 and c["wifi"] is None
    assert config.device_int(c) == 0x000101
    assert config.key_bytes(c) == bytes([0x0F]) * 32


def test_uppercase_hex_is_normalised() -> None:
    c = config.validate(dict(GOOD, device_id="00AB01", key="AB" * 32))
    assert c["device_id"] == "00ab01" and c["key"] == "ab" * 32


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"device_id": "101"}, "device_id", "6 hex digits"),
        ({"device_id": 257}, "device_id", "6 hex digits"),
        ({"key": "00" * 16}, "key", "64 hex digits"),
        ({"key_epoch": -1}, "key_epoch", "between 0 and 65535"),
        ({"role": "gateway"}, "role", "tracker, base"),
        ({"region": "EU868"}, "region", "must be one of AS923-2"),
        ({"region": "ID923"}, "region", "outside 920-923 MHz"),
        ({"sf": 11}, "sf", "over the 400 ms dwell limit"),
        ({"sf": 12}, "sf", "over the 400 ms dwell limit"),
        ({"sf": 10, "preamble": 12}, "sf", "preamble 12"),
        ({"sf": "10"}, "sf", "whole number"),
        ({"channel": 868100}, "channel", "outside AS923-2"),
        ({"channel": 923200}, "channel", "outside AS923-2"),
        ({"channel": "auto"}, "channel", "\"random\" or a frequency"),
        ({"tx_power_dbm": 20}, "tx_power_dbm", "EIRP"),
        ({"report_interval_s": 5}, "report_interval_s", "between 30 and 86400"),
        ({"fix_timeout_s": 300}, "fix_timeout_s", "shorter than report_interval_s"),
        ({"ack_window_ms": 50}, "ack_window_ms", "between 100"),
        ({"reprot_interval_s": 60}, "reprot_interval_s", "unknown key"),
        ({"board": "../etc"}, "board", "hardware/boards"),
        ({"wifi": {"ssid": "depot"}}, "wifi.host", "missing"),
        ({"wifi": {"ssid": "depot", "host": "10.0.0.2", "pasword": "x"}}, "wifi.pasword", "unknown key"),
        ({"wifi": {"ssid": "depot", "host": "10.0.0.2", "port": 0}}, "wifi.port", "between 1 and 65535"),
    ],
)
def test_bad_fields_are_named(change: dict, field: str, words: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        config.validate(dict(GOOD, **change))
    assert e.value.field == field
    assert words in str(e.value)
    assert str(e.value).startswith(f"config field '{field}'")


@pytest.mark.parametrize("missing", ["device_id", "key", "board"])
def test_required_fields(missing: str) -> None:
    cfg = dict(GOOD)
    del cfg[missing]
    with pytest.raises(config.ConfigError, match=f"'{missing}': is missing"):
        config.validate(cfg)


def test_single_channel_and_wifi_accepted() -> None:
    c = config.validate(dict(GOOD, channel=922000,
                             wifi={"ssid": "depot", "password": "pw", "host": "10.0.0.2", "depots": [[0.5069, 117.5453]]}))
    assert c["channel"] == 922000
    assert c["wifi"] == {"ssid": "depot", "password": "pw", "host": "10.0.0.2", "port": 1883, "user": None,
                         "mqtt_password": None, "depots": [[5069000, 1175453000]], "timeout_s": 15}


def test_every_sf_up_to_10_fits_the_dwell_limit() -> None:
    for sf in range(7, 11):
        assert config.validate(dict(GOOD, sf=sf))["sf"] == sf


@pytest.mark.parametrize("path", sorted(BOARDS.glob("*.json")), ids=lambda p: p.stem)
def test_board_files_are_complete(path: Path) -> None:
    board = json.loads(path.read_text())
    cfg = config.validate(dict(GOOD, board=path.stem))
    config.check_board(board, cfg)
    assert board["mcu"] in ("esp32", "esp32s3")
    rtc = set(board["rtc_gpios"])
    for name in ("loop", "lid"):
        assert board["seal"][name] in rtc, f"{name} must be on an RTC GPIO to wake the chip"
    used = [board["radio"][k] for k in ("cs", "reset", "dio0", "dio1", "busy")] + list(board["radio"]["spi"].values())[1:4]
    used += [board["gnss"]["rx"], board["gnss"]["tx"], board["pmu"]["i2c"]["sda"], board["pmu"]["i2c"]["scl"]]
    for name in ("loop", "lid"):
        assert board["seal"][name] not in used, f"seal {name} pin collides with a peripheral"


def test_board_radio_power_is_checked() -> None:
    board = json.loads((BOARDS / "tbeam-v1.1.json").read_text())
    cfg = config.validate(dict(GOOD, tx_power_dbm=16))
    board["radio"]["max_output_dbm"] = 15
    with pytest.raises(config.ConfigError, match="tx_power_dbm"):
        config.check_board(board, cfg)


def test_conducted_power_plus_antenna_gain_never_exceeds_the_eirp_limit() -> None:
    board = json.loads((BOARDS / "tbeam-v1.1.json").read_text())
    assert board["radio"]["antenna_gain_dbi"] == 2.0
    config.check_board(board, config.validate(dict(GOOD, tx_power_dbm=14)))  # 14 + 2 = 16 dBm EIRP: the limit
    with pytest.raises(config.ConfigError) as e:
        config.check_board(board, config.validate(dict(GOOD, tx_power_dbm=15)))
    assert "17.0 dBm EIRP, over the 16 dBm EIRP limit of AS923-2" in str(e.value) and "to 14 or less" in str(e.value)
    big = config.validate(dict(GOOD, tx_power_dbm=10, antenna_gain_dbi=8))  # a crew fitted an 8 dBi antenna
    with pytest.raises(config.ConfigError, match="to 8 or less"):
        config.check_board(board, big)
    config.check_board(board, config.validate(dict(GOOD, tx_power_dbm=16, antenna_gain_dbi=0)))
    with pytest.raises(config.ConfigError, match="less than this board's radio can send"):
        config.check_board(board, config.validate(dict(GOOD, tx_power_dbm=0)))  # SX1276 PA_BOOST: +2 dBm at least
    del board["radio"]["antenna_gain_dbi"]
    with pytest.raises(config.ConfigError, match="lacks radio.antenna_gain_dbi"):
        config.check_board(board, config.validate(dict(GOOD)))
    with pytest.raises(config.ConfigError, match="antenna_gain_dbi"):
        config.validate(dict(GOOD, antenna_gain_dbi="2 dBi"))


def test_the_only_region_lies_inside_920_to_923_mhz() -> None:
    from segelfw import airtime

    assert set(airtime.REGIONS) == {"AS923-2"}
    for r in airtime.REGIONS.values():
        lo, hi = r["band_khz"]
        assert all(lo <= c - r["bw_khz"] // 2 and c + r["bw_khz"] // 2 <= hi for c in r["channels_khz"])
        assert (lo, hi) == (920000, 923000) and r["max_eirp_dbm"] == 16
