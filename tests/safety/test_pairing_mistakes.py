"""One bad pairing never stops the service (issue 19): `segel pair` checks the TPS, and a gateway
that finds a pairing without a plan at start names the box, raises invalid_pairing and runs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel import store
from segel.cli import main
from segel.custody import alerts as al
from segel.places.io import import_files
from segel.provision import pairing
from segel.registry import Registry
from segel.service.assemble import assemble
from segel.service.gateway import Gateway

from tests.gateway import gwtest

PLACES = """code,kind,name,parent,lat,lon,radius_m
KPU-6408,warehouse,Gudang KPU,,0.5,117.55,250
64.08.04,ppk,PPK Sangatta Utara,KPU-6408,0.505,117.546,150
64.08.04.2001,pps,PPS Sangatta,64.08.04,0.51,117.54,100
64.08.04.2001-001,tps,TPS 001 Sangatta Utara,64.08.04.2001,0.512,117.541,60
64.08.04.2001-002,tps,TPS 002 Sangatta Utara,64.08.04.2001,0.514,117.542,60
64.08.04.2002,pps,PPS Teluk Lingga,64.08.04,0.52,117.53,100
64.08.04.2002-001,tps,TPS 001 Teluk Lingga,64.08.04.2002,0.521,117.531,60
64.08.04.2002-009,tps,TPS Kembar,64.08.04.2002,0.522,117.532,60
64.08.04.2001-009,tps,TPS Kembar,64.08.04.2001,0.515,117.543,60
"""
CALENDAR = """name = "test"
timezone = "WITA"
[legs.pps_to_tps]
depart = 2024-11-26T13:00:00
arrive_by = 2024-11-26T23:30:00
[seal.tps]
open = 2024-11-27T06:00:00
close = 2024-11-28T02:00:00
"""


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    conn = store.connect(tmp_path / "segel.db")
    (tmp_path / "places.csv").write_text(PLACES)
    import_files(conn, [tmp_path / "places.csv"])
    r = Registry(conn)
    for d in (0x101, 0x102, 0x103, 0x104):
        r.add_device(d)
    return r


def test_pair_stores_the_code_of_a_tps_named_by_its_unique_name(registry: Registry) -> None:
    p = pairing.pair(registry, "KT-1", "000101", tps="tps 001  sangatta utara")
    assert p.tps == "64.08.04.2001-001" and p.warning is None
    assert registry.box_of(0x101) == ("KT-1", "64.08.04.2001-001")
    assert pairing.pair(registry, "KT-2", "000102", tps="64.08.04.2002-001").tps == "64.08.04.2002-001"


def test_pair_refuses_an_unknown_or_ambiguous_tps(registry: Registry) -> None:
    with pytest.raises(pairing.PairError, match=r"'TPS 001 …' is neither the code nor the name of a TPS.*did you mean"):
        pairing.pair(registry, "KT-1", "000101", tps="TPS 001 …")
    with pytest.raises(pairing.PairError, match=r"TPS name 'TPS Kembar' names 2 places .*give the code"):
        pairing.pair(registry, "KT-1", "000101", tps="TPS Kembar")
    with pytest.raises(pairing.PairError, match="neither the code nor the name"):
        pairing.pair(registry, "KT-1", "000101", tps="64.08.04.2001")  # a PPS, not a TPS
    assert registry.box_of(0x101) is None
    res = pairing.pair_csv(registry, "box,device,tps\nKT-5,000103,TPS 001 Teluk Lingga\nKT-6,000104,Nowhere\n")
    assert [(p.box_id, p.tps) for p in res.paired] == [("KT-5", "64.08.04.2002-001")]
    assert res.refused and res.refused[0][0] == 3 and "'Nowhere'" in res.refused[0][1]


def test_pair_command_refuses_the_name_from_its_own_help(registry: Registry, tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["pair", "--db", str(tmp_path / "segel.db"), "--fleet", str(tmp_path),
                                  "KT-0001", "000101", "--tps", "TPS 001 …"])
    assert r.exit_code == 1 and "is neither the code nor the name of a TPS" in r.output, r.output


def test_gateway_with_a_bad_pairing_names_the_box_alerts_and_runs(tmp_path: Path, mosquitto, caplog) -> None:
    cfg_path, fleet = gwtest.setup(tmp_path, mosquitto.port, devices=4,
                                   extra='[custody]\ncalendar = "calendar.toml"\nplaces = ["places.csv"]\n')
    (tmp_path / "places.csv").write_text(PLACES)
    (tmp_path / "calendar.toml").write_text(CALENDAR)
    reg = fleet.registry
    reg.pair("KT-GOOD", 0x101, tps="64.08.04.2001-001")
    reg.pair("KT-BAD", 0x102, tps="TPS 001 …")  # what `segel pair --tps "TPS 001 …"` stored before this check
    cfg = gwtest.load(cfg_path)
    parts = assemble(cfg)  # used to raise: TPS 'TPS 001 …' is not a known place
    assert "1 box(es) WITHOUT a plan (invalid pairing: KT-BAD" in parts.summary
    assert any("box KT-BAD has no custody plan" in r.getMessage() for r in caplog.records)
    gw = Gateway(cfg, judges=parts.judges).start()
    try:
        conn = store.connect(tmp_path / "segel.db")
        deadline = time.monotonic() + 20
        while not (row := al.open_alert(conn, "KT-BAD", "invalid_pairing")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert row is not None and row["device"] == "000102" and "segel pair KT-BAD 000102" in row["message"]
        assert al.open_alert(conn, "KT-GOOD", "invalid_pairing") is None
        assert gw.snapshot().mqtt_connected
    finally:
        gw.stop()
        parts.close()
