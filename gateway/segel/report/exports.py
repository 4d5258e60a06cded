"""A box's track as CSV, GeoJSON, GPX 1.1 or KML 2.2: every accepted fix in device-time order.

Times are UTC (ISO 8601, as the formats expect) and, in CSV and GeoJSON, also local to the
calendar's zone. The GeoJSON and KML also carry the seal events at the place the box was.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from xml.sax.saxutils import escape

from segel.report.story import BoxStory, Fix, SealRecord

FORMATS = ("csv", "geojson", "gpx", "kml")


def _utc(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _local(t: float, tz: dt.timezone) -> str:
    return dt.datetime.fromtimestamp(t, tz).isoformat(timespec="seconds")


def _device(s: BoxStory) -> str:
    return f"{s.device:06x}" if s.device is not None else ""


def to_csv(s: BoxStory, tz: dt.timezone) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["box", "device", "counter", "device_time_utc", "device_time_local", "received_utc", "lat", "lon", "hdop"])
    for f in s.track:
        w.writerow([s.box, _device(s), f.counter, _utc(f.t), _local(f.t, tz), _utc(f.rx), f"{f.lat:.6f}", f"{f.lon:.6f}",
                    f"{f.hdop:g}"])
    return out.getvalue()


def _seal_points(s: BoxStory) -> list[tuple[Fix, SealRecord]]:
    out = []
    for r in s.seals:
        near = min(s.track, key=lambda f: abs(f.t - r.t)) if s.track else None
        if near is not None:
            out.append((near, r))
    return out


def to_geojson(s: BoxStory, tz: dt.timezone) -> str:
    feats: list[dict] = []
    if len(s.track) > 1:
        feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates":
                                                      [[round(f.lon, 6), round(f.lat, 6)] for f in s.track]},
                      "properties": {"box": s.box, "device": _device(s), "kind": "track", "fixes": len(s.track)}})
    for f in s.track:
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(f.lon, 6), round(f.lat, 6)]},
                      "properties": {"kind": "fix", "counter": f.counter, "device_time": _utc(f.t),
                                     "local_time": _local(f.t, tz), "received": _utc(f.rx), "hdop": f.hdop}})
    for near, r in _seal_points(s):
        feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(near.lon, 6), round(near.lat, 6)]},
                      "properties": {"kind": "seal", "event": r.event, "finding": r.kind,
                                     "place": r.place, "device_time": _utc(r.t), "local_time": _local(r.t, tz)}})
    return json.dumps({"type": "FeatureCollection", "name": s.box, "features": feats}, indent=1) + "\n"


def to_gpx(s: BoxStory) -> str:
    pts = "".join(f'   <trkpt lat="{f.lat:.6f}" lon="{f.lon:.6f}"><time>{_utc(f.t)}</time><hdop>{f.hdop:g}</hdop></trkpt>\n'
                  for f in s.track)
    wpts = "".join(f'  <wpt lat="{n.lat:.6f}" lon="{n.lon:.6f}"><time>{_utc(r.t)}</time>'
                   f"<name>{escape(r.event)}</name><desc>{escape(r.kind)}</desc></wpt>\n"
                   for n, r in _seal_points(s))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<gpx version="1.1" creator="Segel" xmlns="http://www.topografix.com/GPX/1/1">\n'
            f" <metadata><name>{escape(s.box)}</name><desc>tracker {_device(s)}</desc></metadata>\n{wpts}"
            f" <trk><name>{escape(s.box)}</name><trkseg>\n{pts}  </trkseg></trk>\n</gpx>\n")


def to_kml(s: BoxStory) -> str:
    coords = " ".join(f"{f.lon:.6f},{f.lat:.6f},0" for f in s.track)
    marks = "".join(f"  <Placemark><name>{escape(r.event)}</name><description>{escape(r.kind)} {_utc(r.t)}</description>"
                    f"<TimeStamp><when>{_utc(r.t)}</when></TimeStamp>"
                    f"<Point><coordinates>{n.lon:.6f},{n.lat:.6f},0</coordinates></Point></Placemark>\n"
                    for n, r in _seal_points(s))
    line = (f"  <Placemark><name>{escape(s.box)}</name><description>tracker {_device(s)}, {len(s.track)} fixes"
            f"</description><LineString><tessellate>1</tessellate><coordinates>{coords}</coordinates></LineString>"
            "</Placemark>\n") if len(s.track) > 1 else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">\n'
            f" <Document><name>{escape(s.box)}</name>\n{line}{marks} </Document>\n</kml>\n")


def export(s: BoxStory, fmt: str, tz: dt.timezone) -> str:
    if fmt == "csv":
        return to_csv(s, tz)
    if fmt == "geojson":
        return to_geojson(s, tz)
    if fmt == "gpx":
        return to_gpx(s)
    if fmt == "kml":
        return to_kml(s)
    raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}")

