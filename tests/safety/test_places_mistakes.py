"""Places import tells everything at once (issue 19): every error in one pass, spreadsheets from
the Indonesian locale (';' and decimal commas), implausible coordinates warned about or refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from segel import store
from segel.cli import main
from segel.places import ImportErrors, load
from segel.places.checks import Region
from segel.places.io import import_files, import_report

GOOD = """code,kind,name,parent,lat,lon,radius_m
KPU-6408,warehouse,Gudang KPU,,0.5,117.55,250
64.08.04,ppk,PPK Sangatta Utara,KPU-6408,0.505,117.546,150
64.08.04.2001,pps,PPS Sangatta,64.08.04,0.51,117.54,100
64.08.04.2001-001,tps,TPS 001,64.08.04.2001,0.512,117.541,60
"""
REGION = Region.parse("94.7,-11.2,141.1,6.3")


@pytest.fixture
def conn(tmp_path: Path):
    c = store.connect(tmp_path / "g.db")
    yield c
    c.close()


def _write(tmp_path: Path, text: str, name: str = "p.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding=encoding)
    return p


def test_unknown_parent_is_reported_with_the_other_errors_in_one_pass(conn, tmp_path) -> None:
    bad = GOOD + "T-2,tps,bad radius,64.08.04.2001,0.5,117.5,abc\n" + "T-3,tps,orphan,NO-SUCH-PPS,0.5,117.5,50\n"
    with pytest.raises(ImportErrors) as e:
        import_files(conn, [_write(tmp_path, bad)])
    got = [str(x) for x in e.value.errors]
    assert "p.csv:6: field radius_m: 'abc' is not a number" in got
    assert "p.csv:7: field parent: 'NO-SUCH-PPS' is not a known place" in got
    assert load(conn) == []


def test_a_child_of_a_broken_line_is_not_blamed_twice(conn, tmp_path) -> None:
    bad = GOOD.replace("64.08.04.2001,pps,PPS Sangatta,64.08.04,0.51,117.54,100",
                       "64.08.04.2001,pps,PPS Sangatta,64.08.04,0.51,117.54,wide")
    with pytest.raises(ImportErrors) as e:
        import_files(conn, [_write(tmp_path, bad)])
    assert [str(x) for x in e.value.errors] == ["p.csv:4: field radius_m: 'wide' is not a number"]


def test_excel_indonesian_locale_semicolons_and_decimal_commas_are_read(conn, tmp_path) -> None:
    text = GOOD.replace(",", ";").replace("0.5", "0,5").replace("117.", "117,")
    text = text.replace("0,505", "0,505").replace("0.51", "0,51").replace("0.512", "0,512")
    p = _write(tmp_path, text.replace("\n", "\r\n"), encoding="utf-8-sig")
    rep = import_report(conn, [p], REGION)
    assert rep.count == 4 and not rep.warnings
    assert any("';'-separated" in n for n in rep.notes)
    tps = {x.code: x for x in load(conn)}["64.08.04.2001-001"]
    assert (tps.shape.lat, tps.shape.lon) == (0.512, 117.541)


def test_a_decimal_comma_in_a_comma_csv_gets_a_hint(conn, tmp_path) -> None:
    bad = GOOD + 'T-9,tps,TPS 9,64.08.04.2001,"0,52",117.54,60\n'
    with pytest.raises(ImportErrors, match=r"p.csv:6: field lat: '0,52' is not a number \(a decimal comma\?"):
        import_files(conn, [_write(tmp_path, bad)])


def test_flipped_sign_and_far_from_parent_are_warned_and_refused_with_strict(conn, tmp_path) -> None:
    text = GOOD + "T-2,tps,sign lost,64.08.04.2001,0.513,-117.541,60\n" \
        + "T-3,tps,550 km away,64.08.04.2001,-4.4,117.54,60\n"
    p = _write(tmp_path, text)
    with pytest.raises(ImportErrors) as e:
        import_report(conn, [p], REGION, strict=True)
    got = "\n".join(str(x) for x in e.value.errors)
    assert "p.csv:6: field lat/lon: 0.513, -117.541 is outside the region" in got
    assert "longitude 117.541 would be inside" in got
    assert "p.csv:7: field lat/lon: 546 km from its parent 64.08.04.2001 (pps)" in got
    assert load(conn) == []
    rep = import_report(conn, [p], REGION)  # without --strict: imported, with the same two warnings
    assert rep.count == 6 and [w.where for w in rep.warnings] == ["p.csv:6", "p.csv:7"]


def test_the_command_shows_warnings_and_strict_refuses(tmp_path) -> None:
    p = _write(tmp_path, GOOD + "T-2,tps,sign lost,64.08.04.2001,0.513,-117.541,60\n")
    db = str(tmp_path / "cli.db")
    r = CliRunner().invoke(main, ["places", "import", str(p), "--db", db, "--strict"])
    assert r.exit_code == 1 and "refused: --strict" in r.output and "nothing was imported" in r.output
    r = CliRunner().invoke(main, ["places", "import", str(p), "--db", db])
    assert r.exit_code == 0, r.output
    assert "warning: p.csv:6" in r.output and "5 places imported, 1 warning(s)" in r.output
    r = CliRunner().invoke(main, ["places", "import", str(p), "--db", db, "--region", "1,2,3"])
    assert r.exit_code == 2 and "four numbers" in r.output


def test_the_kutai_timur_scenario_imports_without_warnings(conn) -> None:
    scn = Path(__file__).resolve().parents[2] / "scenarios" / "kutai-timur"
    rep = import_report(conn, [scn / "places.csv", scn / "corridors.geojson"], REGION, strict=True)
    assert rep.count > 800 and rep.warnings == []
