"""The Grafana dashboards: their JSON against Grafana's dashboard model, and every query run
against a real InfluxDB 1.6.7 filled by the gateway from a simulated run (tests/deploy/simrun.py)."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from segel import protocol

from tests import servers
from tests.deploy import simrun
from tests.deploy.influxql import (
    QueryError,
    Variable,
    check,
    interpolate,
    to_table,
    transform,
)

ROOT = Path(__file__).resolve().parents[2]
DASH = ROOT / "dashboards"
FILES = ("segel-command-post.json", "segel-box.json", "segel-fleet.json")
PANEL_TYPES = {"geomap", "stat", "table", "barchart", "timeseries", "histogram", "piechart", "bargauge", "text"}


def load(name: str) -> dict[str, Any]:
    return json.loads((DASH / name).read_text())


def build_module() -> Any:
    spec = importlib.util.spec_from_file_location("dashboards_build", DASH / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def provisioned_uids() -> set[str]:
    uids = set()
    for f in sorted((DASH / "provisioning").glob("datasources*/*.yaml")):
        doc = yaml.safe_load(f.read_text())
        assert doc["apiVersion"] == 1
        for ds in doc["datasources"]:
            assert ds["type"] == "influxdb" and ds["access"] == "proxy", f
            uids.add(ds["uid"])
    return uids


# ---- the JSON model ----------------------------------------------------------------------------


def test_json_files_are_what_build_py_writes() -> None:
    b = build_module()
    assert set(b.DASHBOARDS) == set(FILES)
    for name in FILES:
        assert (DASH / name).read_text() == b.render(name), f"stale {name}: run python dashboards/build.py"


@pytest.mark.parametrize("name", FILES)
def test_dashboard_model(name: str) -> None:
    d = load(name)
    assert isinstance(d["schemaVersion"], int) and 36 <= d["schemaVersion"] <= 41
    assert d["id"] is None and 8 <= len(d["uid"]) <= 40 and d["title"]
    assert d["time"]["from"].startswith("now-") and d["time"]["to"] == "now"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    cells: set[tuple[int, int]] = set()
    for p in d["panels"]:
        assert p["type"] in PANEL_TYPES, p["type"]
        g = p["gridPos"]
        assert g["h"] > 0 and 0 < g["w"] <= 24 and 0 <= g["x"] < 24 and g["x"] + g["w"] <= 24 and g["y"] >= 0, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not (cells & mine), f"{p['title']} overlaps another panel"
        cells |= mine
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs))
        for t in p["targets"]:
            assert t["rawQuery"] is True and t["resultFormat"] in ("time_series", "table") and t["query"]
        assert p["description"], f"{p['title']}: say what the panel shows"


BUILTINS = {"timeFilter", "__interval", "interval", "measurement"}


@pytest.mark.parametrize("name", FILES)
def test_every_variable_used_is_defined(name: str) -> None:
    d = load(name)
    defined = {v["name"] for v in d["templating"]["list"]}
    used = set()
    for p in d["panels"]:
        for t in p["targets"]:
            used |= set(re.findall(r"\$\{?(\w+)", t["query"])) | set(re.findall(r"\$(\w+)", t.get("alias", "")))
    assert {u for u in used if not u.startswith("tag_")} - BUILTINS <= defined
    for v in d["templating"]["list"]:
        assert v["type"] in ("query", "custom") and v["name"] and v["hide"] == 0
        if v["type"] == "custom":
            assert v["current"]["value"] in [o["value"] for o in v["options"]]
            assert v["query"].split(",") == [o["value"] for o in v["options"]]


def test_uids_unique_and_datasources_resolve_to_the_provisioned_one() -> None:
    uids = provisioned_uids()
    assert uids == {"segel-influxdb"}
    seen = set()
    for name in FILES:
        d = load(name)
        assert d["uid"] not in seen
        seen.add(d["uid"])
        refs = [p["datasource"] for p in d["panels"]] + [t["datasource"] for p in d["panels"] for t in p["targets"]]
        refs += [v["datasource"] for v in d["templating"]["list"] if v["type"] == "query"]
        for r in refs:
            assert r == {"type": "influxdb", "uid": "segel-influxdb"}, (name, r)


def test_dashboard_provider_points_where_compose_mounts_the_json() -> None:
    doc = yaml.safe_load((DASH / "provisioning" / "dashboards" / "segel.yaml").read_text())
    [prov] = doc["providers"]
    assert prov["type"] == "file" and prov["options"]["path"] == "/var/lib/grafana/dashboards/segel"
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    vols = compose["services"]["grafana"]["volumes"]
    assert any(v.endswith(":/var/lib/grafana/dashboards/segel:ro") and v.startswith("../dashboards") for v in vols)


def test_compose_gives_grafana_every_variable_the_data_source_needs() -> None:
    text = json.dumps(yaml.safe_load((DASH / "provisioning" / "datasources" / "segel-influxdb.yaml").read_text()))
    needed = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", text))  # in the values, not the comments
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    assert needed and needed <= set(compose["services"]["grafana"]["environment"])


def all_queries() -> Iterator[tuple[str, str, str]]:
    for name in FILES:
        d = load(name)
        for p in d["panels"]:
            for t in p["targets"]:
                yield name, p["title"], t["query"]
        for v in d["templating"]["list"]:
            if v["type"] == "query":
                yield name, f"variable {v['name']}", v["query"]


def test_every_query_uses_only_what_the_gateway_writes() -> None:
    read = set()
    for name, title, q in all_queries():
        try:
            read |= check(q)
        except QueryError as e:
            raise AssertionError(f"{name} / {title}: {e}") from None
    assert read == {"position", "seal", "status", "rx", "box_state", "custody", "alert", "rejected", "gateway"}


@pytest.mark.parametrize("bad", [
    'SELECT mean("batery_mv") FROM "status" WHERE $timeFilter',
    'SELECT mean("rssi") FROM "rx" GROUP BY "device", "counter"',
    'SELECT last("lat") FROM "boxes"',
    'SELECT mean(battery_mv) FROM "status"',
    'SELECT mean("firmware") FROM "status"',
    'SELECT count("counter") FROM "position", "rx", "box_state"',
    'SHOW TAG VALUES FROM "position" WITH KEY = "lat"',
])
def test_the_schema_check_catches_mistakes(bad: str) -> None:
    with pytest.raises(QueryError):
        check(bad)


# ---- the queries against a real InfluxDB filled by the gateway --------------------------------


@dataclass
class Filled:
    influx: servers.Server
    run: simrun.Run

    def query(self, q: str, district: tuple[str, ...] = ("$__all",), box: str = "") -> list[dict]:
        variables = [Variable("district", district, True, ".*"), Variable("lookback", ("1000d",)),
                     Variable("box", (box or self.run.trackers[1].box,))]
        text = interpolate(q, int((self.run.start - 86400) * 1000), int((self.run.end + 86400) * 1000), "1h", variables)
        assert not re.search(r"\$\{?\w", text), f"uninterpolated variable in {text}"
        res = servers.influx_query(self.influx, text, db=simrun.DATABASE)
        [stmt] = res["results"]
        assert "error" not in stmt, f"{stmt['error']}\n{text}"
        return stmt.get("series", [])


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    work = tmp_path_factory.mktemp("dash")
    srv = servers.influxdb(work / "influxdb").start()
    servers.wait_http_ok(f"{srv.url}/ping")
    try:
        yield Filled(srv, simrun.build(work, srv.url))
    finally:
        srv.stop()


def panel(name: str, title: str) -> dict[str, Any]:
    [p] = [p for p in load(name)["panels"] if p["title"] == title]
    return p


def table(f: Filled, p: dict[str, Any], ref: str = "A", **kw: Any) -> list[dict]:
    [t] = [t for t in p["targets"] if t["refId"] == ref]
    rows = to_table({"series": f.query(t["query"], **kw)})
    return transform(rows, p.get("transformations", []))


def test_every_query_runs_and_returns_data(filled: Filled) -> None:
    for name, title, q in all_queries():
        series = filled.query(q)
        assert series and all(s["values"] for s in series), f"{name} / {title}: no data"


def test_every_lookback_choice_is_valid_influxql(filled: Filled) -> None:
    [lookback] = [v for v in load("segel-command-post.json")["templating"]["list"] if v["name"] == "lookback"]
    q = panel("segel-command-post.json", "Boxes: last position, coloured by state")["targets"][0]["query"]
    for o in lookback["options"]:
        text = interpolate(q, 0, 1, "1h", [Variable("lookback", (o["value"],)), Variable("district", ("$__all",), True, ".*")])
        [stmt] = servers.influx_query(filled.influx, text, db=simrun.DATABASE)["results"]
        assert "error" not in stmt, (o, stmt)


def test_variables_list_the_run_s_districts_and_boxes(filled: Filled) -> None:
    got = {}
    for name in ("segel-command-post.json", "segel-box.json"):
        for v in load(name)["templating"]["list"]:
            if v["type"] == "query":
                [s] = filled.query(v["query"])
                got[v["name"]] = {row[1] for row in s["values"]}
    assert got["district"] == set(filled.run.districts)
    assert got["box"] == {t.box for t in filled.run.trackers}


def test_map_shows_every_box_at_its_last_position(filled: Filled) -> None:
    p = panel("segel-command-post.json", "Boxes: last position, coloured by state")
    rows = table(filled, p)
    assert {r["box"] for r in rows} == {t.box for t in filled.run.trackers}
    build = build_module()
    for r in rows:
        assert {"lat", "lon", "state", "place"} <= set(r) and r["state"] in build.STATE_COLOURS
        t = next(t for t in filled.run.trackers if t.box == r["box"])
        last_pos = _last_position(t)
        assert abs(r["lat"] - last_pos[0]) < 1e-4 and abs(r["lon"] - last_pos[1]) < 1e-4
    one = filled.run.districts[0]
    rows = table(filled, p, district=(one,))
    assert {r["box"] for r in rows} == {t.box for t in filled.run.trackers if t.plan.district == one}


def _last_position(t: simrun.Tracker) -> tuple[float, float]:
    keys = protocol.DeviceKeys.from_device_key(protocol.derive_device_key(simrun.SECRET, t.device, 0))
    for dev_time, _rx, fr in sorted(t.frames, key=lambda f: -f[0]):
        if t.silent_after is not None and dev_time > t.silent_after:
            continue
        body = protocol.verify_and_decode(keys, fr).body
        if isinstance(body, protocol.Position):
            return body.lat, body.lon
    raise AssertionError("no position")


def test_open_alerts_by_severity_match_the_gateway_s_alert_table(filled: Filled) -> None:
    p = panel("segel-command-post.json", "Open alerts by severity")
    rows = table(filled, p)
    shown = {r["severity (last)"]: r["alert_id (count)"] for r in rows}
    truth = filled.run.open_alerts()
    assert shown == truth and truth.get("critical", 0) >= 1 and truth.get("high", 0) >= 2
    listed = table(filled, panel("segel-command-post.json", "Open alerts"))
    assert len(listed) == sum(truth.values())
    assert {r["kind (last)"] for r in listed} >= {"silent", "forged_frame"}


def test_delivered_per_district_against_tracked(filled: Filled) -> None:
    p = panel("segel-command-post.json", "Boxes delivered to a TPS per district, against boxes tracked")
    delivered = {r["district"]: r["delivered"] for r in table(filled, p, "A")}
    tracked = {r["district"]: r["tracked"] for r in table(filled, p, "B")}
    per = {d: sum(1 for t in filled.run.trackers if t.plan.district == d) for d in filled.run.districts}
    assert tracked == per
    assert delivered == per  # every simulated box reached its TPS before election day


def test_silent_trackers_come_first(filled: Filled) -> None:
    rows = table(filled, panel("segel-command-post.json", "Silent trackers"))
    silent = {t.box for t in filled.run.trackers if t.silent_after is not None}
    assert len(rows) == len(filled.run.trackers)
    assert {r["box"] for r in rows[: len(silent)]} == silent


def test_box_detail_shows_the_cut_seal_custody_battery_and_signal(filled: Filled) -> None:
    t = filled.run.trackers[1]  # the box whose seal was cut at its PPS
    name = "segel-box.json"
    seals = table(filled, panel(name, "Seal history"))
    assert {"armed", "loop_open"} <= {r["event"] for r in seals}
    assert any(r["event"] == "loop_open" and r["tamper"] is True for r in seals)
    custody = table(filled, panel(name, "Custody events"))
    assert any(r["event"] == "enter" and r["place_kind"] == "tps" and r["place"] == t.plan.tps for r in custody)
    alerts = table(filled, panel(name, "Alerts for this box"))
    assert any(r["severity"] == "critical" for r in alerts)
    track = table(filled, panel(name, "Track"))
    positions = [1 for dt, _, fr in t.frames if fr[0] & 0x0F == 1]
    assert len(track) == len(positions)
    for title, cols in (("Battery", {"battery"}), ("Signal", {"rssi", "snr"}), ("Frames waiting on the tracker", {"queued"})):
        [s] = filled.query(panel(name, title)["targets"][0]["query"])
        assert cols <= set(s["columns"]) and any(v[1] is not None for v in s["values"]), title
    now = table(filled, panel(name, "Now"))
    assert len(now) == 1 and now[0]["tps"] == t.plan.tps
    wifi = next(x for x in filled.run.trackers if not x.lora)
    assert filled.query(panel(name, "Signal")["targets"][0]["query"], box=wifi.box) == []


def test_fleet_health_numbers_add_up(filled: Filled) -> None:
    name = "segel-fleet.json"
    run = filled.run
    bat = table(filled, panel(name, "Battery distribution"))
    assert len(bat) == len(run.trackers) and all(3000 < r["battery_mv"] < 4200 for r in bat)
    frames = filled.query(panel(name, "Frames per minute")["targets"][0]["query"])
    assert {s["name"] for s in frames} == {"position", "seal", "status"}
    assert sum(v[1] for s in frames for v in s["values"]) == run.pipeline.counts["accepted"]
    rssi = filled.query(panel(name, "RSSI per base station")["targets"][0]["query"])
    assert {s["tags"]["base"] for s in rssi} == {f"bs-{d}" for d in run.districts} | {"bs-kpu"}
    rej = filled.query(panel(name, "Rejected frames: totals")["targets"][0]["query"])
    assert {s["tags"]["reason"]: s["values"][0][1] for s in rej} == run.rejected
    depth = filled.query(panel(name, "Gateway outbox depth")["targets"][0]["query"])
    assert max(v[1] for s in depth for v in s["values"] if v[1] is not None) > 0
    handled = filled.query(panel(name, "Gateway: frames handled per minute")["targets"][0]["query"])
    assert {"accepted", "duplicates", "rejected"} <= set(handled[0]["columns"])


def test_colours_cover_every_severity_the_gateway_uses() -> None:
    from segel.custody import alerts

    assert set(build_module().SEVERITY_COLOURS) == set(alerts.SEVERITY_ORDER)
