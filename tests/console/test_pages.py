"""Console pages over HTTP in process: the offline basemap (PMTiles), outlines, escaping, notes, exports,
catching up on missed live events by Last-Event-ID (a real uvicorn), and no asset from outside."""

from __future__ import annotations

import json
import re
import socket
import struct
import time
import zlib
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from segel import accounts
from segel import config as cfgmod
from segel.console import live
from segel.custody import actions
from segel.console.app import create_app
from segel.console.server import ConsoleServer
from segel.places import io as places_io
from segel.places.model import Circle, Place
from segel.protocol import SealEvent

from tests.console.test_auth_web import PW, page_csrf, sign_in
from tests.rules.world import K, World, wita

STATIC = Path(__file__).resolve().parents[2] / "gateway" / "segel" / "console"


def png(rgb: tuple[int, int, int]) -> bytes:
    """A 1x1 PNG: the smallest real raster tile."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"\x00" + bytes(rgb)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def make_pmtiles(path: Path) -> bytes:
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import write

    tile = png((10, 120, 200))
    with write(str(path)) as w:
        w.write_tile(zxy_to_tileid(8, 210, 127), tile)
        w.finalize({"tile_type": TileType.PNG, "tile_compression": Compression.NONE, "min_zoom": 8, "max_zoom": 8,
                    "min_lon_e7": 1160000000, "min_lat_e7": 0, "max_lon_e7": 1180000000, "max_lat_e7": 20000000,
                    "center_zoom": 8, "center_lon_e7": 1170000000, "center_lat_e7": 10000000}, {"name": "test"})
    return tile


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    w = World.make(tmp_path)
    t0 = wita("2024-11-24T22:00:00")
    w.send(w.pos_frame(0x000101, t0, K), t0 + 5)
    w.send(w.pos_frame(0x000101, t0 + 300, K), t0 + 305)
    w.send(w.seal_frame(0x000101, t0 + 400, SealEvent.LOOP_OPEN, K), t0 + 405)
    places_io.store(w.conn, [Place("K2", "ppk", "<script>alert('x')</script> PPK", Circle(0.7, 117.6, 100), parent="KPU-X")])
    accounts.add(w.conn, "sari", "admin", PW)
    accounts.add(w.conn, "budi", "operator", PW)
    yield w
    w.conn.close()


def client(tmp_path: Path, **over: object) -> TestClient:
    cfg = cfgmod.load(None, env={}, overrides={"gateway.db": str(tmp_path / "gateway.db"),
                                               "custody.calendar": str(tmp_path / "calendar.toml"), **over})
    return TestClient(create_app(cfg, discover=False), follow_redirects=False)


def test_offline_basemap_from_a_pmtiles_file(tmp_path: Path, world) -> None:  # type: ignore[no-untyped-def]
    tile = make_pmtiles(tmp_path / "kutim.pmtiles")
    with client(tmp_path, **{"console.pmtiles": str(tmp_path / "kutim.pmtiles")}) as c:
        assert c.get("/tiles/8/210/127").status_code == 303  # signed in only
        sign_in(c)
        r = c.get("/tiles/8/210/127")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == tile
        assert c.get("/tiles/8/0/0").status_code == 204  # no tile there: the map shows the outlines
        conf = json.loads(re.search(r'id="map-config">(.*?)</script>', c.get("/").text).group(1))  # type: ignore[union-attr]
        assert conf["tiles"] == "/tiles/{z}/{x}/{y}"
    with client(tmp_path) as c:
        sign_in(c)
        r = c.get("/tiles/8/210/127")
        assert r.status_code == 404 and "console.pmtiles" in r.text
        assert json.loads(re.search(r'id="map-config">(.*?)</script>', c.get("/").text).group(1))["tiles"] == ""  # type: ignore[union-attr]


def test_without_a_basemap_the_map_gets_district_and_village_outlines(tmp_path: Path, world) -> None:  # type: ignore[no-untyped-def]
    with client(tmp_path) as c:
        sign_in(c)
        o = c.get("/api/outlines.geojson").json()
        kinds = {(f["properties"]["kind"], f["properties"]["code"]) for f in o["features"]}
        assert ("district", "K1") in kinds and ("village", "S1") in kinds
        assert all(f["geometry"]["type"] == "Polygon" for f in o["features"])
        again = c.get("/api/outlines.geojson", headers={"If-None-Match": c.get("/api/outlines.geojson").headers["etag"]})
        assert again.status_code == 304
        places = c.get("/api/places.geojson").json()["features"]
        assert {f["properties"]["kind"] for f in places} >= {"warehouse", "ppk", "pps", "tps", "corridor"}


def test_html_in_a_place_name_or_a_note_is_shown_as_text(tmp_path: Path, world) -> None:  # type: ignore[no-untyped-def]
    with client(tmp_path) as c:
        sign_in(c)
        page = c.get("/alerts").text
        assert "<script>alert" not in c.get("/alerts?district=K2").text
        aid = re.search(r'data-id="(AL-[0-9a-f]+)" data-severity="critical"', page).group(1)  # type: ignore[union-attr]
        r = c.post(f"/alerts/{aid}/ack", data={"note": "<img src=x onerror=alert(1)>", "csrf": page_csrf(c, "/alerts")},
                   headers={"X-Requested-With": "fetch"})
        assert r.status_code == 200 and "&lt;img src=x onerror=alert(1)&gt;" in r.text and "<img" not in r.text
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; PPK" in c.get("/alerts").text  # the district filter's name


def test_alerts_are_worded_in_the_reader_s_language(tmp_path: Path, world) -> None:  # type: ignore[no-untyped-def]
    """The desk, an alert's page and the box page say what happened in the reader's words (the place
    by name, the seal event by its label), never the stored English message; English in English."""
    said_id = "Segel dibuka di PPK 1, padahal pembukaan tidak diizinkan di sana pada waktu itu (kawat segel terbuka)"
    said_en = "Seal opened at PPK 1, where no opening is authorised at that time (seal wire opened)"
    stored = "outside an authorised place and window"
    with client(tmp_path) as c:
        sign_in(c)
        desk = c.get("/alerts").text
        assert said_id in desk and stored not in desk
        aid = re.search(r'data-id="(AL-[0-9a-f]+)" data-severity="critical"', desk).group(1)  # type: ignore[union-attr]
        page = c.get(f"/alerts/{aid}").text
        assert "Apa yang terjadi" in page and said_id in page and stored not in page
        box = c.get("/boxes/BOX-1").text
        assert said_id in box and "kawat segel terbuka <span" in box and "loop_open" not in box
        c.post("/language", data={"language": "en", "csrf": page_csrf(c), "next": "/alerts"})
        assert said_en in c.get("/alerts").text
        # the row a live update or an action sends back is worded the same way
        r = c.post(f"/alerts/{aid}/ack", data={"note": "on it", "csrf": page_csrf(c, "/alerts")},
                   headers={"X-Requested-With": "fetch"})
        assert r.status_code == 200 and said_en in r.text and stored not in r.text


def test_a_one_megabyte_note_is_refused_with_a_clear_message(tmp_path: Path, world) -> None:  # type: ignore[no-untyped-def]
    with client(tmp_path) as c:
        sign_in(c, "budi")
        page = c.get("/alerts").text
        aid = re.search(r'data-id="(AL-[0-9a-f]+)" data-severity="critical"', page).group(1)  # type: ignore[union-attr]
        r = c.post(f"/alerts/{aid}/ack", data={"note": "x" * (1 << 20), "csrf": page_csrf(c, "/alerts")})
        assert r.status_code == 409
        assert "Catatan terlalu panjang (paling banyak 2.000 karakter)." in r.text
        assert world.conn.execute("SELECT state FROM alerts WHERE id = ?", (aid,)).fetchone()[0] == "open"
        assert c.get("/alerts/AL-000000000000").status_code == 404


def test_box_exports_geojson_with_local_times(tmp_path: Path, world) -> None:  # type: ignore[no-untyped-def]
    with client(tmp_path) as c:
        sign_in(c)
        g = c.get("/boxes/BOX-1/export.geojson").json()
        kinds = [f["properties"]["kind"] for f in g["features"]]
        assert kinds[0] == "track" and "seal" in kinds and "alert" in kinds
        assert g["features"][0]["properties"]["from"] == "2024-11-24T22:00:00+08:00"
        assert c.get("/boxes/NOPE").status_code == 404
        card = c.get("/boxes/BOX-1/card").text
        assert "TPS 001" in card or "T1" in card


def _events(port: int, token: str, last_id: str | None, want: int, timeout: float = 10) -> list[str]:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall((f"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nCookie: segel_session={token}\r\n"
               + (f"Last-Event-ID: {last_id}\r\n" if last_id else "") + "\r\n").encode())
    buf, ids, end = b"", [], time.time() + timeout
    while len(ids) < want and time.time() < end:
        try:
            buf += s.recv(65536)
        except TimeoutError:
            break
        ids = re.findall(rb"^id: (\d+)$", buf, re.M)
    s.close()
    return [i.decode() for i in ids]


def test_a_page_that_reconnects_gets_exactly_what_it_missed(tmp_path: Path, world) -> None:  # type: ignore[no-untyped-def]
    cfg = cfgmod.load(None, env={}, overrides={"gateway.db": str(tmp_path / "gateway.db"), "mqtt.url": "mqtt://127.0.0.1:9"})
    server = ConsoleServer(cfg, hooks=[live.attach], port=0).start()
    try:
        token, _ = accounts.start_session(world.conn, accounts.get(world.conn, "sari"))  # type: ignore[arg-type]
        (first,) = live.alert_rows(world.conn, 0, 100)
        actions.acknowledge(world.conn, first[2]["id"], "sari", "on it")
        rows = [r[0] for r in live.alert_rows(world.conn, 0, 100)]
        assert len(rows) >= 2
        assert _events(server.port, token, "0", len(rows)) == [str(r) for r in rows]
        assert _events(server.port, token, str(rows[0]), len(rows) - 1) == [str(r) for r in rows[1:]]
    finally:
        server.stop()


def test_catching_up_reads_a_page_at_a_time_and_a_page_too_far_behind_reloads(tmp_path: Path, world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A page that missed more changes than one read holds gets every one, once, in order; one that
    missed more than MAX_CATCH_UP is told to reload instead."""
    cfg = cfgmod.load(None, env={}, overrides={"gateway.db": str(tmp_path / "gateway.db"), "mqtt.url": "mqtt://127.0.0.1:9"})
    server = ConsoleServer(cfg, hooks=[live.attach], port=0).start()
    try:
        token, _ = accounts.start_session(world.conn, accounts.get(world.conn, "sari"))  # type: ignore[arg-type]
        (first,) = live.alert_rows(world.conn, 0, 100)
        for n in range(4):  # the alert seen again and again (history rows as the judge writes them)
            world.conn.execute("INSERT INTO alert_history (alert_id, at, event) VALUES (?, ?, 'repeated')",
                               (first[2]["id"], time.time() + n))
        rows = [str(r[0]) for r in live.alert_rows(world.conn, 0, 100)]
        assert len(rows) >= 5
        monkeypatch.setattr(live, "CATCH_UP_PAGE", 2)
        assert _events(server.port, token, "0", len(rows)) == rows
        monkeypatch.setattr(live, "MAX_CATCH_UP", len(rows) - 1)
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall((f"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nCookie: segel_session={token}\r\n"
                   "Last-Event-ID: 0\r\n\r\n").encode())
        buf, end = b"", time.time() + 10
        while b"event: reload" not in buf and time.time() < end:
            buf += s.recv(65536)
        s.close()
        assert b"event: reload" in buf and b"event: alert" not in buf
    finally:
        server.stop()


def test_no_asset_comes_from_outside() -> None:
    """Pages load scripts, styles and images only from the console itself (no CDN at run time)."""
    ours = list((STATIC / "templates").rglob("*.html")) + [p for p in (STATIC / "static").glob("*.*")]
    for f in ours:
        text = f.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), f
        assert not re.search(r"https?://", text) or f.suffix == ".css", f
