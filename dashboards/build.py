"""The Segel Grafana dashboards, written as data: `python dashboards/build.py` regenerates the
JSON files next to this script (tests/deploy/test_dashboards.py fails when they are stale).

Plain Grafana dashboard JSON (classic model, schemaVersion below), every query raw InfluxQL
against the data source provisioned with uid `segel-influxdb` (dashboards/provisioning/). Every
identifier in a query is double-quoted so that the test can check each one against
segel.influx.schema.MEASUREMENTS. What each panel shows and why: docs/dashboards.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMA_VERSION = 39  # Grafana 10.x-11.x; newer Grafana migrates it on load
DS = {"type": "influxdb", "uid": "segel-influxdb"}

# Shown at the top of every dashboard.
LINKS = [{"title": "Segel", "type": "dashboards", "tags": ["segel"], "asDropdown": True, "icon": "external link",
          "includeVars": False, "keepTime": True, "targetBlank": False, "tooltip": "", "url": ""}]

STATE_COLOURS = {"at_place": "green", "in_transit": "blue", "stopped": "orange", "off_corridor": "red"}
SEVERITY_COLOURS = {"critical": "dark-red", "high": "red", "warning": "orange", "info": "blue"}


def target(query: str, ref: str = "A", fmt: str = "time_series", alias: str = "") -> dict[str, Any]:
    t: dict[str, Any] = {"refId": ref, "datasource": DS, "query": " ".join(query.split()), "rawQuery": True,
                         "resultFormat": fmt}
    if alias:
        t["alias"] = alias
    return t


def value_colours(colours: dict[str, str]) -> list[dict[str, Any]]:
    return [{"type": "value", "options": {k: {"color": c, "index": i, "text": k} for i, (k, c) in enumerate(colours.items())}}]


class Board:
    """Lays panels out left to right, top to bottom on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_h = 0

    def add(self, kind: str, title: str, w: int, h: int, targets: list[dict[str, Any]], description: str = "",
            options: dict[str, Any] | None = None, field_config: dict[str, Any] | None = None,
            transformations: list[dict[str, Any]] | None = None) -> None:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        p: dict[str, Any] = {
            "id": len(self.panels) + 1, "type": kind, "title": title, "description": description,
            "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y}, "datasource": DS, "targets": targets,
            "options": options or {}, "fieldConfig": field_config or {"defaults": {}, "overrides": []},
        }
        if transformations:
            p["transformations"] = transformations
        self.panels.append(p)
        self.x += w
        self.row_h = max(self.row_h, h)


def dashboard(uid: str, title: str, description: str, board: Board, variables: list[dict[str, Any]],
              time_from: str, refresh: str) -> dict[str, Any]:
    return {
        "id": None, "uid": uid, "title": title, "description": description, "tags": ["segel"],
        "timezone": "browser", "editable": True, "graphTooltip": 1, "fiscalYearStartMonth": 0, "liveNow": False,
        "time": {"from": time_from, "to": "now"}, "refresh": refresh, "links": LINKS,
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": variables}, "panels": board.panels, "schemaVersion": SCHEMA_VERSION, "version": 1,
    }


def query_variable(name: str, label: str, query: str, multi: bool, include_all: bool) -> dict[str, Any]:
    v: dict[str, Any] = {
        "type": "query", "name": name, "label": label, "datasource": DS, "query": query, "definition": query,
        "refresh": 2, "sort": 1, "multi": multi, "includeAll": include_all, "hide": 0, "regex": "",
        "current": {}, "options": [],
    }
    if include_all:
        v["allValue"] = ".*"  # renders as =~ /^.*$/, which also matches points without the tag
    return v


def custom_variable(name: str, label: str, values: list[str], default: str, description: str) -> dict[str, Any]:
    return {
        "type": "custom", "name": name, "label": label, "description": description, "query": ",".join(values),
        "current": {"selected": True, "text": default, "value": default}, "hide": 0, "multi": False,
        "includeAll": False,
        "options": [{"selected": v == default, "text": v, "value": v} for v in values],
    }


# ---- command post ------------------------------------------------------------------------------

DISTRICT = '"district" =~ /^$district$/'
RECENT = "time > now() - $lookback"
# Latest change of each alert: Grafana groups the alert's points by alert_id and keeps the last.
LATEST_ALERT = [
    {"id": "sortBy", "options": {"sort": [{"field": "Time"}]}},
    {"id": "groupBy", "options": {"fields": {
        "alert_id": {"operation": "groupby", "aggregations": []},
        **{f: {"operation": "aggregate", "aggregations": ["last"]}
           for f in ("Time", "open", "severity", "kind", "state", "box", "place", "message", "late", "district")}}}},
    {"id": "filterByValue", "options": {"type": "include", "match": "all", "filters": [
        {"fieldName": "open (last)", "config": {"id": "equal", "options": {"value": 1}}}]}},
]
ALERT_COLUMNS = ('"alert_id", "open", "severity", "kind", "state", "box", "place", "message", "late", "district"')


def command_post() -> dict[str, Any]:
    b = Board()
    b.add("geomap", "Boxes: last position, coloured by state", 16, 14, [target(f"""
        SELECT last("lat") AS "lat", "lon", "state", "place", "device", "tps" FROM "box_state"
        WHERE {RECENT} AND {DISTRICT} GROUP BY "box" """, fmt="table")],
        "Each box's last reported position (measurement box_state, written by the custody judge after each "
        "position). Green: at a place; blue: in transit; orange: stopped outside any place; red: off its corridor.",
        options={
            "view": {"id": "coords", "lat": 0.8, "lon": 117.3, "zoom": 8, "allLayers": True},
            "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True, "showScale": True},
            "basemap": {"type": "default", "name": "Basemap", "config": {}},
            "layers": [{"type": "markers", "name": "Boxes", "tooltip": True,
                        "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                        "config": {"showLegend": True, "style": {
                            "size": {"fixed": 6}, "opacity": 0.9, "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                            "color": {"field": "state", "fixed": "dark-green"},
                            "text": {"mode": "field", "field": "box", "fixed": ""},
                            "textConfig": {"fontSize": 9, "offsetY": -12, "textAlign": "center", "textBaseline": "bottom"}}}}],
            "tooltip": {"mode": "details"},
        },
        field_config={"defaults": {"color": {"mode": "fixed", "fixedColor": "blue"}}, "overrides": [
            {"matcher": {"id": "byName", "options": "state"},
             "properties": [{"id": "mappings", "value": value_colours(STATE_COLOURS)},
                            {"id": "color", "value": {"mode": "thresholds"}}]}]})
    b.add("stat", "Open alerts by severity", 8, 7, [target(f"""
        SELECT {ALERT_COLUMNS} FROM "alert" WHERE {RECENT} AND {DISTRICT}""", fmt="table")],
        "Alerts open or acknowledged now, counted by severity: the last change of each alert "
        "(measurement alert, one point per change, field open = 1 while open or acknowledged).",
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/^alert_id \\(count\\)$/", "values": True},
                 "orientation": "horizontal", "textMode": "value_and_name", "colorMode": "background",
                 "graphMode": "none", "justifyMode": "auto"},
        field_config={"defaults": {"color": {"mode": "thresholds"}, "thresholds": {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "red", "value": 1}]}},
            "overrides": []},
        transformations=LATEST_ALERT + [{"id": "groupBy", "options": {"fields": {
            "severity (last)": {"operation": "groupby", "aggregations": []},
            "alert_id": {"operation": "aggregate", "aggregations": ["count"]}}}}])
    b.add("table", "Open alerts", 8, 7, [target(f"""
        SELECT {ALERT_COLUMNS} FROM "alert" WHERE {RECENT} AND {DISTRICT}""", fmt="table")],
        "Every alert open or acknowledged now, newest change first. Acknowledge and resolve with `segel alerts`.",
        field_config={"defaults": {}, "overrides": [
            {"matcher": {"id": "byName", "options": "severity (last)"},
             "properties": [{"id": "mappings", "value": value_colours(SEVERITY_COLOURS)},
                            {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}]},
        transformations=LATEST_ALERT + [{"id": "sortBy", "options": {"sort": [{"field": "Time (last)", "desc": True}]}}])
    b.add("barchart", "Boxes delivered to a TPS per district, against boxes tracked", 12, 9, [
        target(f"""
        SELECT count("place") AS "delivered" FROM (
          SELECT last("place") AS "place" FROM "custody"
          WHERE {RECENT} AND "event" = 'enter' AND "place_kind" = 'tps' AND {DISTRICT}
          GROUP BY "box", "district")
        GROUP BY "district" """, "A", "table"),
        target(f"""
        SELECT count("lat") AS "tracked" FROM (
          SELECT last("lat") AS "lat" FROM "box_state" WHERE {RECENT} AND {DISTRICT} GROUP BY "box", "district")
        GROUP BY "district" """, "B", "table")],
        "Per district (PPK): boxes that have entered a TPS (custody events) and boxes with a custody plan "
        "there that have reported a position (the plan as the gateway knows it).",
        options={"xField": "district", "orientation": "horizontal", "showValue": "auto", "stacking": "none",
                 "groupWidth": 0.7, "barWidth": 0.9, "legend": {"showLegend": True, "displayMode": "list",
                                                                   "placement": "bottom", "calcs": []}},
        transformations=[{"id": "merge", "options": {}},
                         {"id": "organize", "options": {"excludeByName": {"Time": True}}}])
    b.add("table", "Silent trackers", 12, 9, [
        target(f"""
        SELECT last("lat") AS "lat", "device", "state", "place" FROM "box_state"
        WHERE {RECENT} AND {DISTRICT} GROUP BY "box" """, "A", "table")],
        "Every box by the time of its last position, oldest first: the top rows are the trackers that went "
        "quiet. Silent alerts (kind silent) are in Open alerts.",
        field_config={"defaults": {}, "overrides": [
            {"matcher": {"id": "byName", "options": "Time"},
             "properties": [{"id": "displayName", "value": "last heard"}]}]},
        transformations=[{"id": "sortBy", "options": {"sort": [{"field": "Time", "desc": False}]}}])
    variables = [
        query_variable("district", "District (PPK)", 'SHOW TAG VALUES FROM "box_state" WITH KEY = "district"', True, True),
        custom_variable("lookback", "Look back", ["1d", "7d", "30d", "90d"], "30d",
                        "How far back the map, the alerts and the delivery counts look for each box's latest state."),
    ]
    return dashboard("segel-command-post", "Segel: command post",
                     "Where every ballot box is, what is wrong, and how far distribution has come.",
                     b, variables, "now-24h", "30s")


# ---- box detail --------------------------------------------------------------------------------

BOX = "\"box\" = '$box'"


def box_detail() -> dict[str, Any]:
    b = Board()
    b.add("geomap", "Track", 14, 14, [target(f"""
        SELECT "lat", "lon", "speed_kmh", "hdop", "quality" FROM "position"
        WHERE {BOX} AND "fix" = true AND $timeFilter""", fmt="table")],
        "Every fix of the box's tracker in the time range (measurement position).",
        options={"view": {"id": "fit", "lat": 0.8, "lon": 117.3, "zoom": 9, "allLayers": True},
                 "controls": {"showZoom": True, "mouseWheelZoom": True, "showScale": True},
                 "basemap": {"type": "default", "name": "Basemap", "config": {}},
                 "layers": [{"type": "markers", "name": "Fixes", "tooltip": True,
                             "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                             "config": {"showLegend": False, "style": {"size": {"fixed": 4}, "opacity": 0.8,
                                                                      "color": {"fixed": "blue"}}}}],
                 "tooltip": {"mode": "details"}})
    b.add("stat", "Now", 10, 4, [target(f"""
        SELECT last("place") AS "place", "state", "device", "tps" FROM "box_state" WHERE {BOX} AND $timeFilter""",
        fmt="table")],
        "The box's custody state after its last position: the place it is at (empty in transit), its TPS and tracker.",
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/^(state|place|tps|device)$/", "values": False},
                 "textMode": "value_and_name", "colorMode": "background", "graphMode": "none"},
        field_config={"defaults": {"mappings": value_colours(STATE_COLOURS), "color": {"mode": "thresholds"}},
                      "overrides": []})
    b.add("table", "Seal history", 10, 10, [target(f"""
        SELECT "event", "seq", "tamper", "loop_open", "late_s", "lat", "lon", "device" FROM "seal"
        WHERE {BOX} AND $timeFilter""", fmt="table")],
        "Every seal event at device time (measurement seal); late_s is how long it took to reach the gateway.",
        transformations=[{"id": "sortBy", "options": {"sort": [{"field": "Time", "desc": True}]}}])
    b.add("table", "Custody events", 12, 8, [target(f"""
        SELECT "event", "place_kind", "place", "device", "late_s" FROM "custody" WHERE {BOX} AND $timeFilter""",
        fmt="table")],
        "Arrivals at and departures from places, and seal events, as the custody judge recorded them.",
        transformations=[{"id": "sortBy", "options": {"sort": [{"field": "Time", "desc": True}]}}])
    b.add("table", "Alerts for this box", 12, 8, [target(f"""
        SELECT "kind", "severity", "state", "alert_id", "place", "message", "late" FROM "alert"
        WHERE {BOX} AND $timeFilter""", fmt="table")],
        "Every change of every alert about this box.",
        transformations=[{"id": "sortBy", "options": {"sort": [{"field": "Time", "desc": True}]}}])
    b.add("timeseries", "Battery", 8, 8, [target(f"""
        SELECT mean("battery_mv") AS "battery" FROM "status" WHERE {BOX} AND $timeFilter
        GROUP BY time($__interval) fill(none)""")],
        "Tracker battery (status frames).",
        field_config={"defaults": {"unit": "mvolt", "min": 3000, "thresholds": {"mode": "absolute", "steps": [
            {"color": "red", "value": None}, {"color": "orange", "value": 3450}, {"color": "green", "value": 3700}]},
            "custom": {"thresholdsStyle": {"mode": "line"}}}, "overrides": []})
    b.add("timeseries", "Signal", 8, 8, [target(f"""
        SELECT mean("rssi") AS "rssi", mean("snr") AS "snr" FROM "position" WHERE {BOX} AND $timeFilter
        GROUP BY time($__interval) fill(none)""")],
        "RSSI (dBm) and SNR (dB) of the best reception of each LoRa position frame.",
        field_config={"defaults": {}, "overrides": [
            {"matcher": {"id": "byName", "options": "rssi"}, "properties": [{"id": "unit", "value": "dBm"}]},
            {"matcher": {"id": "byName", "options": "snr"},
             "properties": [{"id": "unit", "value": "dB"}, {"id": "custom.axisPlacement", "value": "right"}]}]})
    b.add("timeseries", "Frames waiting on the tracker", 8, 8, [target(f"""
        SELECT max("queue_depth") AS "queued" FROM "status" WHERE {BOX} AND $timeFilter
        GROUP BY time($__interval) fill(none)""")],
        "Frames in the tracker's flash queue, not yet acknowledged: it grows in a dead zone.")
    variables = [query_variable("box", "Box", 'SHOW TAG VALUES FROM "position" WITH KEY = "box"', False, False)]
    return dashboard("segel-box", "Segel: box detail", "One ballot box: its track, seal, custody and tracker health.",
                     b, variables, "now-7d", "1m")


# ---- fleet health ------------------------------------------------------------------------------


def fleet_health() -> dict[str, Any]:
    b = Board()
    b.add("histogram", "Battery distribution", 8, 8, [target("""
        SELECT last("battery_mv") AS "battery_mv" FROM "status" WHERE $timeFilter GROUP BY "device" """, fmt="table")],
        "Each tracker's last reported battery voltage.",
        options={"bucketSize": 50, "combine": True, "legend": {"showLegend": False, "displayMode": "list",
                                                                "placement": "bottom", "calcs": []}},
        field_config={"defaults": {"unit": "mvolt"}, "overrides": []})
    b.add("timeseries", "Frames per minute", 16, 8, [target("""
        SELECT count("counter") FROM "position", "seal", "status" WHERE $timeFilter GROUP BY time(1m) fill(0)""",
        alias="$measurement")],
        "Accepted frames by type, at device time (a store-and-forward burst lands where it was recorded).",
        field_config={"defaults": {"unit": "short", "custom": {"stacking": {"mode": "normal", "group": "A"},
                                                               "drawStyle": "bars", "fillOpacity": 60}},
                      "overrides": []})
    b.add("timeseries", "RSSI per base station", 12, 8, [target("""
        SELECT mean("rssi") FROM "rx" WHERE $timeFilter GROUP BY time($__interval), "base" fill(none)""",
        alias="$tag_base")],
        "Mean RSSI of every reception (measurement rx: one point per base station that heard a frame).",
        field_config={"defaults": {"unit": "dBm"}, "overrides": []})
    b.add("timeseries", "SNR per base station", 12, 8, [target("""
        SELECT mean("snr") FROM "rx" WHERE $timeFilter GROUP BY time($__interval), "base" fill(none)""",
        alias="$tag_base")],
        "Mean SNR of every reception; below about -7.5 dB at SF9 frames start to be lost.",
        field_config={"defaults": {"unit": "dB"}, "overrides": []})
    b.add("timeseries", "Rejected frames by reason", 12, 8, [target("""
        SELECT sum("count") FROM "rejected" WHERE $timeFilter GROUP BY time($__interval), "reason" fill(none)""",
        alias="$tag_reason")],
        "Frames the gateway did not accept. bad_mac and replay are security events: see Open alerts.",
        field_config={"defaults": {"custom": {"drawStyle": "bars", "stacking": {"mode": "normal", "group": "A"}}},
                      "overrides": []})
    b.add("piechart", "Rejected frames: totals", 12, 8, [target("""
        SELECT sum("count") FROM "rejected" WHERE $timeFilter GROUP BY "reason" """, alias="$tag_reason")],
        "Rejected frames in the time range, by reason.",
        options={"reduceOptions": {"calcs": ["sum"], "fields": "", "values": False}, "pieType": "donut",
                 "legend": {"showLegend": True, "displayMode": "table", "placement": "right", "values": ["value"]}})
    b.add("timeseries", "Gateway outbox depth", 8, 8, [target("""
        SELECT max("outbox_depth") FROM "gateway" WHERE $timeFilter GROUP BY time($__interval), "instance" fill(none)""",
        alias="$tag_instance")],
        "InfluxDB lines waiting in the gateway's durable outbox: grows while InfluxDB is down, never lost.")
    b.add("timeseries", "Gateway outbox lag", 8, 8, [target("""
        SELECT max("lag_s") FROM "gateway" WHERE $timeFilter GROUP BY time($__interval), "instance" fill(none)""",
        alias="$tag_instance")],
        "Age of the oldest line in the outbox: how far behind these dashboards are.",
        field_config={"defaults": {"unit": "s"}, "overrides": []})
    b.add("timeseries", "Gateway: frames handled per minute", 8, 8, [target("""
        SELECT non_negative_derivative(last("accepted"), 1m) AS "accepted",
               non_negative_derivative(last("duplicates"), 1m) AS "duplicates",
               non_negative_derivative(last("rejected"), 1m) AS "rejected"
        FROM "gateway" WHERE $timeFilter GROUP BY time($__interval), "instance" fill(none)""")],
        "From the gateway's own counters (measurement gateway, every health interval).")
    return dashboard("segel-fleet", "Segel: fleet health",
                     "Trackers, radio coverage and the gateway itself.", b, [], "now-24h", "1m")


DASHBOARDS = {"segel-command-post.json": command_post, "segel-box.json": box_detail, "segel-fleet.json": fleet_health}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, sort_keys=False) + "\n"


def main() -> None:
    for name in DASHBOARDS:
        (HERE / name).write_text(render(name))
        print(f"wrote dashboards/{name}")


if __name__ == "__main__":
    main()
