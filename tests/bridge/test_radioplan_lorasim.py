"""Radio planning and the simulated channel: the numbers a technician plans with."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner
from segel.cli import main
from segel.radio import channel as lorasim
from segel.radio import plan as radioplan
from segelfw import airtime


def test_plan_uses_the_firmware_time_on_air_and_pure_aloha() -> None:
    p = radioplan.plan("AS923-2", sf=10, payload_bytes=24, interval_s=300, collision_p=0.01, trackers=80)
    assert p.time_on_air_ms == round(airtime.time_on_air_us(10, 24) / 1000, 1) == 370.7
    assert p.dwell_ok
    # the figure: a handful of trackers per SF10 channel at a 5-minute interval before 1 %
    assert p.single_channel_base == math.floor(-math.log(0.99) * 300 / (2 * 0.370688)) == 4
    assert p.gateway_8ch == 32
    assert p.gateways_needed == 3 and p.base_stations_needed == 20
    assert p.collision_at_fleet_1ch == pytest.approx(1 - math.exp(-2 * 79 * 0.370688 / 300), rel=1e-3)
    sf12 = radioplan.plan("AS923-2", sf=12)
    assert not sf12.dwell_ok and sf12.time_on_air_ms == 1482.8
    with pytest.raises(ValueError, match="unknown region"):
        radioplan.plan("EU868")
    with pytest.raises(ValueError, match="collision probability"):
        radioplan.trackers_per_channel(0.1, 300, 1.5)


def test_collisions_are_by_overlap_on_the_same_channel_and_sf() -> None:
    ch = lorasim.Channel(seed=1)
    a = ch.receiver("a", freqs={921400}, sfs={10})
    ch.receiver("gw")  # every channel, every SF
    toa = ch.time_on_air_ms(10, 24)
    ch.transmit("1", b"A" * 24, 0.0, 921400, 10)
    ch.transmit("2", b"B" * 24, toa - 1, 921400, 10)  # overlaps A by 1 ms: both lost
    ch.transmit("3", b"C" * 24, 2 * toa, 921400, 10)  # alone
    ch.transmit("4", b"D" * 24, 2 * toa + 5, 921400, 7)  # same time, other SF: no interference
    ch.transmit("5", b"E" * 24, 2 * toa + 5, 921600, 10)  # other channel: only the gateway hears it
    got = {(r.receiver, r.tx.payload[:1]) for r in ch.resolve()}
    assert got == {("a", b"C"), ("gw", b"C"), ("gw", b"D"), ("gw", b"E")}
    assert ch.stats["collided"] == 2 and a.name == "a"


def test_a_receiver_that_transmits_hears_nothing_meanwhile() -> None:
    ch = lorasim.Channel()
    ch.receiver("base", freqs={921400}, sfs={10})
    ch.transmit("base", b"ack" * 7, 0.0, 921400, 7)  # its downlink, on another SF
    ch.transmit("t", b"up" * 12, 10.0, 921400, 10)
    assert ch.resolve() == []


def test_simulated_delivery_follows_aloha_and_two_receivers_beat_fading() -> None:
    r = lorasim.simulate(60, sf=9, interval_s=300, duration_s=6 * 3600, receivers=2, loss=0.0, seed=4)
    assert r.delivery_ratio == pytest.approx(r.aloha_expected, abs=0.03)
    one = lorasim.simulate(60, sf=9, interval_s=300, duration_s=6 * 3600, receivers=1, loss=0.3, seed=4)
    two = lorasim.simulate(60, sf=9, interval_s=300, duration_s=6 * 3600, receivers=2, loss=0.3, seed=4)
    assert two.delivery_ratio > one.delivery_ratio + 0.15
    assert two.duplicates > 0 and two.receptions == two.delivered + two.duplicates
    eight = lorasim.simulate(600, sf=10, channels=8, receivers=1, seed=4)
    single = lorasim.simulate(600, sf=10, channels=1, receivers=1, seed=4)
    assert eight.delivery_ratio > 2 * single.delivery_ratio


def test_cli_plan_radio_and_channel() -> None:
    r = CliRunner().invoke(main, ["plan", "radio", "--sf", "7", "--trackers", "80"])
    assert r.exit_code == 0, r.output
    assert "61.7 ms" in r.output and "single-channel base station" in r.output and "8-channel gateway" in r.output
    r = CliRunner().invoke(main, ["plan", "radio", "--sf", "12", "--json"])
    assert json.loads(r.output)["dwell_ok"] is False
    r = CliRunner().invoke(main, ["plan", "radio", "--region", "XX"])
    assert r.exit_code != 0 and "unknown region XX" in r.output
    r = CliRunner().invoke(main, ["plan", "channel", "--trackers", "50", "--sf", "7", "--duration", "1800", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["trackers"] == 50


def test_cli_bridge_flags(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = CliRunner().invoke(main, ["bridge", "--list-ports", "--json"])
    assert r.exit_code == 0 and isinstance(json.loads(r.output), list)
    r = CliRunner().invoke(main, ["bridge"])
    assert r.exit_code == 2 and "--port PORT" in r.output
    r = CliRunner().invoke(main, ["bridge", "--udp", "0.0.0.0:1700", "--gateway", "xyz"])
    assert r.exit_code == 2 and "not a gateway EUI" in r.output
    r = CliRunner().invoke(main, ["bridge", "--udp", "nonsense", "--buffer", str(tmp_path / "b.sqlite")])
    assert r.exit_code == 1 and "expected HOST:PORT like 0.0.0.0:1700" in r.output
    r = CliRunner().invoke(main, ["bridge", "--port", "/dev/ttyX", "--broker", "http://x", "--buffer", str(tmp_path / "c.sqlite")])
    assert r.exit_code == 1 and "must start with mqtt:// or mqtts://" in r.output


def test_bridge_health_becomes_base_station_points() -> None:
    from segel.influx.lines import base_stations as base_station_points

    st = {"bridge_id": "hill-1", "online": True, "bases": {
        "b00001": {"uptime_s": 3600, "rx_packets": 12, "crc_errors": 1, "tx_packets": 9, "queue": 0, "temperature_c": 41.5,
                   "tx_late": 2, "connected": True},
        "aa555a0000000101": {"rx_packets": 7, "crc_errors": 2, "tx_packets": None, "ackr": 100.0}}}
    lines = base_station_points(st, 1_700_000_000_000_000_000)
    assert lines == [
        "base_station,base=aa555a0000000101,bridge=hill-1 crc_errors=2i,rx_packets=7i 1700000000000000000",
        "base_station,base=b00001,bridge=hill-1 crc_errors=1i,queue=0i,rx_packets=12i,temperature_c=41.5,tx_packets=9i,"
        "uptime_s=3600i 1700000000000000000",
    ]
    assert base_station_points({"bridge_id": "hill-1", "online": False}, 1) == []
