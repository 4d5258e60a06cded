"""The fleet: silent trackers, low batteries, base stations and the gateway's health, in local time and "3 min ago"."""

from __future__ import annotations

import time

from starlette.responses import Response

from segel import store
from segel.console import boxdata, live, mapdata
from segel.console.routing import Ctx, Router
from segel.custody.plan import DEFAULT_RULES
from segel.i18n import N_
from segel.influx import outbox
from segel.service import health

router = Router("fleet")
router.nav(N_("Fleet"), "/fleet", order=30)


def silent_after_s(c: Ctx) -> float:
    """console.silent_after_s, else three of the calendar's (or the default) report intervals."""
    if c.state.cfg.console.silent_after_s:
        return c.state.cfg.console.silent_after_s
    cal_path = c.state.cfg.custody.calendar
    cal = boxdata.calendar(c.state.cfg.path(cal_path)) if cal_path else None
    every = (cal.rules.get("report_interval_s") if cal else None) or DEFAULT_RULES["report_interval_s"]
    return 3 * float(every)


@router.page("/fleet")
def fleet(c: Ctx) -> Response:
    conn, now = c.db, c.now()
    book = mapdata.place_book(conn)
    boxes = [b for b in mapdata.boxes(conn, book) if c.sees(b["district"], book.chain(b["tps"]))]
    limit = silent_after_s(c)
    low_mv = c.state.cfg.console.low_battery_mv
    heard = [b for b in boxes if b["seen"] is not None]
    silent = sorted((b for b in heard if now - b["seen"] > limit), key=lambda b: b["seen"])
    never = [b for b in boxes if b["seen"] is None and b["device"]]
    low = sorted((b for b in heard if b["battery_mv"] is not None and b["battery_mv"] < low_mv), key=lambda b: b["battery_mv"])
    bases = [{"base": r[0], "bridge": r[1], "last": r[2], "frames": r[3]} for r in conn.execute(
        "SELECT base_id, bridge_id, MAX(received_at), COUNT(*) FROM seen WHERE base_id IS NOT NULL "
        "GROUP BY base_id, bridge_id ORDER BY base_id")]
    feed: live.Feed | None = c.state.extras.get("feed")
    bridges = sorted((feed.bridges if feed else {}).items())
    snaps = health.load_all(conn)
    wall = time.time()  # heartbeats are wall-clock times
    gw = live.gateway_status(conn, wall, feed.stale_after_s if feed else 180.0)
    stats = store.stats(conn)
    rejected = sorted(((k.split(":", 1)[1], v) for k, v in stats.items() if k.startswith("rejected:")), key=lambda kv: -kv[1])
    return c.render("fleet.html", boxes=boxes, heard=heard, silent=silent, never=never, low=low, low_mv=low_mv,
                    limit=limit, bases=bases, bridges=bridges, snaps=snaps, gw=gw, book=book, stats=stats,
                    rejected=rejected, outbox_depth=outbox.depth(conn), outbox_lag=outbox.lag_s(conn, wall), wall=wall)
