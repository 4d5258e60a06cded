"""The live map: every box by custody state, the places and corridors, filters, a card per box; the basemap."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from starlette.responses import Response

from segel import accounts
from segel.console import live, mapdata
from segel.console.routing import ConsoleError, Ctx, Router
from segel.custody.display import KIND_LABELS
from segel.i18n import N_

router = Router("map")
router.nav(N_("Map"), "/", order=10)


def _cached_json(c: Ctx, key: str, build) -> Response:  # type: ignore[no-untyped-def]
    """A JSON document that changes only with an import: sent once, then 304 with its ETag."""
    body = build()
    text = json.dumps(body, separators=(",", ":"))
    etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:20] + '"'
    if c.request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(text, media_type="application/json", headers={"ETag": etag, "Cache-Control": "private, no-cache"})


@router.page("/")
def map_page(c: Ctx) -> Response:
    book = mapdata.place_book(c.db)
    districts = [(code, name) for code, name in book.districts() if c.sees(code)]
    cc = c.state.cfg.console
    tiles = "/tiles/{z}/{x}/{y}" if cc.pmtiles else cc.tiles_url
    conf = {"tiles": tiles, "attribution": cc.tiles_attribution,
            "labels": {s: c._(label) for s, label in mapdata.STATE_LABELS.items()},
            "kinds": {k: c._(label) for k, label in mapdata.PLACE_KIND_LABELS.items()},
            "alerts": {k: c._(label) for k, label in KIND_LABELS.items()},
            "cursor": live.cursor_now(c.db)}
    return c.render("map.html", districts=districts, states=mapdata.STATES, labels=mapdata.STATE_LABELS,
                    conf=conf)


@router.api("/api/places.geojson")
def places(c: Ctx) -> Response:
    book = mapdata.place_book(c.db)
    if not c.user or not c.user.scoped:
        return _cached_json(c, "places", book.geojson)
    mine = {"type": "FeatureCollection", "features": [
        f for f in book.geojson()["features"]
        if f["properties"]["kind"] == "corridor" or c.sees(f["properties"]["district"], book.chain(f["properties"]["code"]))]}
    return _cached_json(c, "places", lambda: mine)


@router.api("/api/outlines.geojson")
def outlines(c: Ctx) -> Response:
    return _cached_json(c, "outlines", mapdata.place_book(c.db).outlines)


@router.api("/api/boxes.json")
def boxes(c: Ctx) -> Response:
    book = mapdata.place_book(c.db)
    rows = [b for b in mapdata.boxes(c.db, book) if c.sees(b["district"], book.chain(b["tps"]))]
    return c.json({"boxes": rows, "now": c.now()})


def _reader(c: Ctx, path: Path):  # type: ignore[no-untyped-def]
    """One PMTiles reader per file and console, reading by seek (a basemap may be gigabytes);
    the file is closed with the console."""
    from pmtiles.reader import Reader

    readers: dict = c.state.extras.setdefault("pmtiles", {})
    with _pm_lock:
        r = readers.get(str(path))
        if r is None:
            f = path.open("rb")
            c.state.closers.append(f.close)
            lock = threading.Lock()

            def get_bytes(offset: int, length: int) -> bytes:
                with lock:
                    f.seek(offset)
                    return f.read(length)
            r = readers[str(path)] = Reader(get_bytes)
        return r


_pm_lock = threading.Lock()
MEDIA = {1: "application/x-protobuf", 2: "image/png", 3: "image/jpeg", 4: "image/webp", 5: "image/avif"}


@router.page("/tiles/{z:int}/{x:int}/{y:int}")
def tile(c: Ctx) -> Response:
    """A tile of the configured PMTiles file (raster: png, jpeg, webp), for Leaflet's tile layer."""
    path = c.state.cfg.console.pmtiles
    if not path:
        raise ConsoleError(404, c._("No offline basemap is configured (console.pmtiles)."))
    p = c.state.cfg.path(path)
    if not p.is_file():
        raise ConsoleError(404, c._("The offline basemap file is missing.") + f" ({p})")
    r = _reader(c, p)
    data = r.get(c.params["z"], c.params["x"], c.params["y"])
    if data is None:
        return Response(status_code=204)
    h = r.header()
    kind, comp = h.get("tile_type"), h.get("tile_compression")
    media = MEDIA.get(int(getattr(kind, "value", kind) or 0), "application/octet-stream")
    headers = {"Cache-Control": "private, max-age=86400"}
    if int(getattr(comp, "value", comp) or 0) == 2:  # gzip: the browser unpacks it
        headers["Content-Encoding"] = "gzip"
    return Response(bytes(data), media_type=media, headers=headers)


@router.page("/api/me", permission=accounts.VIEW)
def me(c: Ctx) -> Response:
    u = c.user
    assert u is not None
    return c.json({"user": u.username, "role": u.role, "districts": list(u.districts), "places": list(u.places),
                   "language": c.t.lang, "can_act": u.can(accounts.ACT_ALERTS)})
