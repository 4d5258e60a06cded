"""Place import: formats, errors that name the line or feature, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from segel import store
from segel.places import Circle, Corridor, ImportErrors, PlaceIndex, import_file, load
from segel.places.io import import_files

GOOD = """code,kind,name,parent,lat,lon,radius_m
KPU-6408,warehouse,Gudang KPU,,0.5,117.55,250
64.08.04,ppk,PPK Sangatta Utara,KPU-6408,0.505,117.546,150
64.08.04.2001,pps,PPS Sangatta,64.08.04,0.51,117.54,100
64.08.04.2001-001,tps,TPS 001,64.08.04.2001,0.512,117.541,60
"""


@pytest.fixture
def conn(tmp_path: Path):
    c = store.connect(tmp_path / "g.db")
    yield c
    c.close()


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_csv_imports_circles_with_hierarchy(conn, tmp_path):
    assert import_file(conn, write(tmp_path, "p.csv", GOOD)) == 4
    got = {p.code: p for p in load(conn)}
    assert got["64.08.04.2001-001"].parent == "64.08.04.2001"
    assert got["KPU-6408"].shape == Circle(0.5, 117.55, 250.0)


def test_bad_rows_are_all_named_and_nothing_is_imported(conn, tmp_path):
    bad = GOOD + "X1,tps,bad radius,64.08.04.2001,0.5,117.5,abc\n" + "X2,tps,no parent,,0.5,117.5,50\n" \
        + "X3,tps,lat swapped,64.08.04.2001,117.5,0.5,50\n" + "X4,kiosk,what,,0.5,117.5,50\n"
    with pytest.raises(ImportErrors) as ei:
        import_file(conn, write(tmp_path, "p.csv", bad))
    msgs = [str(e) for e in ei.value.errors]
    assert msgs[0] == "p.csv:6: field radius_m: 'abc' is not a number"
    assert msgs[1] == "p.csv:8: field lat/lon: latitude 117.5 is outside -90..90 (coordinates are lon, lat in WKT/GeoJSON)"
    assert msgs[2].startswith("p.csv:9: field kind: 'kiosk' is not one of")
    assert load(conn) == []  # X2's missing parent is found by the hierarchy check, after the rows


def test_hierarchy_errors_name_the_line(conn, tmp_path):
    bad = GOOD + "64.08.04.2001-002,tps,TPS 002,64.08.04,0.5,117.5,50\n"
    with pytest.raises(ImportErrors, match=r"p.csv:6: field parent: a tps's parent must be a pps; 64.08.04 is a ppk"):
        import_file(conn, write(tmp_path, "p.csv", bad))
    assert load(conn) == []


def test_duplicate_code_and_unknown_column(conn, tmp_path):
    with pytest.raises(ImportErrors, match=r"p.csv:6: field code: 'KPU-6408' is defined twice \(first at p.csv:2\)"):
        import_file(conn, write(tmp_path, "p.csv", GOOD + "KPU-6408,warehouse,again,,0.5,117.5,50\n"))
    with pytest.raises(ImportErrors, match=r"p.csv:1: unknown column\(s\) colour"):
        import_file(conn, write(tmp_path, "p.csv", "code,kind,colour\nA,zone,red\n"))


def test_csv_wkt_polygon_and_corridor(conn, tmp_path):
    text = GOOD.replace("code,kind,name,parent,lat,lon,radius_m", "code,kind,name,parent,lat,lon,radius_m,wkt,width_m,from,to") \
        .replace("250\n", "250,,,,\n").replace("150\n", "150,,,,\n").replace("100\n", "100,,,,\n").replace(",60\n", ",60,,,,\n")
    text += 'DEPOT,zone,Depot,,,,,"POLYGON((117.50 0.50, 117.51 0.50, 117.51 0.51, 117.50 0.51, 117.50 0.50))",,,\n'
    text += 'ROAD,corridor,Road,,,,,"LINESTRING(117.55 0.5, 117.546 0.505)",200,KPU-6408,64.08.04\n'
    assert import_file(conn, write(tmp_path, "p.csv", text)) == 6
    got = {p.code: p for p in load(conn)}
    assert isinstance(got["ROAD"].shape, Corridor) and got["ROAD"].shape.to_code == "64.08.04"
    idx = PlaceIndex(got.values())
    assert "DEPOT" in idx.lookup(0.505, 117.505).core
    assert "ROAD" in idx.lookup(0.5025, 117.548).core


def test_geojson_errors_name_the_feature(conn, tmp_path):
    import_file(conn, write(tmp_path, "p.csv", GOOD))
    feats = [
        {"type": "Feature", "properties": {"code": "R1", "kind": "corridor", "from": "KPU-6408", "to": "64.08.04"},
         "geometry": {"type": "LineString", "coordinates": [[117.55, 0.5], [117.546, 0.505]]}},
        {"type": "Feature", "properties": {"code": "Z1", "kind": "zone"},
         "geometry": {"type": "Point", "coordinates": [117.5, 0.5]}},
        {"type": "Feature", "properties": {"code": "Z2", "kind": "zone", "radius_m": 50},
         "geometry": {"type": "MultiPoint", "coordinates": [[117.5, 0.5]]}},
    ]
    p = write(tmp_path, "c.geojson", json.dumps({"type": "FeatureCollection", "features": feats}))
    with pytest.raises(ImportErrors) as ei:
        import_file(conn, p)
    assert [str(e) for e in ei.value.errors] == [
        "c.geojson: feature 0 (R1): field width_m: missing",
        "c.geojson: feature 1 (Z1): field radius_m: missing",
        "c.geojson: feature 2 (Z2): field geometry: MultiPoint is not supported (Point with radius_m, Polygon, LineString)",
    ]
    assert len(load(conn)) == 4


def test_corridor_file_may_name_places_of_another_file_in_the_same_import(conn, tmp_path):
    feats = [{"type": "Feature", "properties": {"code": "R1", "kind": "corridor", "width_m": 300, "from": "KPU-6408",
                                                "to": "64.08.04", "modes": ["road"]},
              "geometry": {"type": "LineString", "coordinates": [[117.55, 0.5], [117.546, 0.505]]}}]
    c = write(tmp_path, "c.geojson", json.dumps({"type": "FeatureCollection", "features": feats}))
    with pytest.raises(ImportErrors, match=r"c.geojson: feature 0 \(R1\): field from: 'KPU-6408' is not a known place"):
        import_file(conn, c)
    assert import_files(conn, [write(tmp_path, "p.csv", GOOD), c]) == 5


def test_kutai_timur_scenario_files_import(conn):
    root = Path(__file__).resolve().parents[2] / "scenarios" / "kutai-timur"
    if not (root / "places.csv").exists():
        pytest.skip("scenario data not present")
    n = import_files(conn, [root / "places.csv", root / "corridors.geojson"])
    kinds = {}
    for p in load(conn):
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    assert n == sum(kinds.values()) and kinds["tps"] == 701 and kinds["ppk"] == 18 and kinds["pps"] == 141


def test_self_crossing_polygon_is_refused(conn, tmp_path):
    bowtie = {"type": "Polygon", "coordinates": [[[117.5, 0.5], [117.51, 0.51], [117.51, 0.5], [117.5, 0.51], [117.5, 0.5]]]}
    p = write(tmp_path, "z.geojson", json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "Z", "kind": "zone"}, "geometry": bowtie}]}))
    with pytest.raises(ImportErrors, match=r"z.geojson: feature 0 \(Z\): field geometry: invalid polygon \(Self-intersection"):
        import_file(conn, p)
