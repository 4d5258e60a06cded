"""Live updates: one reader of the database for all browsers, pushed as Server-Sent Events.

Why SSE: updates flow one way (server to page); EventSource reconnects by itself and sends the
last event id it saw, so a page that lost its connection (a console or proxy restart, a laptop
waking up) gets exactly what it missed; it is plain HTTP through any reverse proxy. Actions go
the other way as ordinary form posts.

The database is the source of truth. Every alert change has a row in `alert_history`; its rowid
is the event id. The feed reads new rows every `console.live_poll_s` (0.5 s), and at once when
the broker says something happened (an MQTT message on `segel/alerts/#` wakes it), so a broker
restart costs latency, never events. Box positions are read every 2 s (`device_state`), the
gateway's heartbeat every 5 s (`health`), so the page can say when the gateway stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from segel import accounts, i18n
from segel.console import mapdata

if TYPE_CHECKING:
    from segel.console.app import ConsoleState

log = logging.getLogger("segel.console.live")
MAX_CATCH_UP = 2000  # events a reconnecting page may miss before it is told to reload instead
QUEUE = 5000  # events waiting for one slow page before it is dropped (it reconnects and catches up)
MIN_READ_GAP_S = 0.1
EVENTS_KEPT = 4000  # alert events kept rendered, per language, for pages that connect or reconnect
CATCH_UP_PAGE = 200  # alert changes a page catching up reads at a time
PAGE_FIELDS = ("id", "kind", "severity", "state", "box", "district")  # of an alert, in its live event


@dataclass(eq=False)  # each page's stream is itself (hashable by identity)
class Client:
    user: accounts.User
    lang: str
    queue: asyncio.Queue[tuple[str, str | None, dict]] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    dropped: bool = False


def alert_rows(conn: sqlite3.Connection, after: int, limit: int, upto: int | None = None) -> list[tuple[int, str, dict]]:
    """(cursor, history event, alert row) of changes of alerts to act on (not informational ones:
    arrivals and planned openings show on the map and the box page) after the cursor, oldest first."""
    from segel.custody import alerts as al

    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'alert_history'").fetchone():
        return []
    cols = ", ".join(f"a.{c}" for c in al.COLS)
    return [(r[0], r[1], dict(zip(al.COLS, r[2:]))) for r in conn.execute(
        f"SELECT h.rowid, h.event, {cols} FROM alert_history h JOIN alerts a ON a.id = h.alert_id "
        "WHERE h.rowid > ? AND h.rowid <= ? AND a.severity != 'info' ORDER BY h.rowid LIMIT ?",
        (after, upto if upto is not None else 1 << 62, limit))]


def count_after(conn: sqlite3.Connection, after: int, limit: int) -> int:
    """How many changes `alert_rows` would return after the cursor, counting up to `limit`."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'alert_history'").fetchone():
        return 0
    return int(conn.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM alert_history h JOIN alerts a ON a.id = h.alert_id "
        "WHERE h.rowid > ? AND a.severity != 'info' LIMIT ?)", (after, limit)).fetchone()[0])


def cursor_now(conn: sqlite3.Connection) -> int:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'alert_history'").fetchone():
        return 0
    return int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM alert_history").fetchone()[0])


def gateway_status(conn: sqlite3.Connection, now: float, stale_after_s: float) -> dict:
    """{"running": bool|None, "at": last heartbeat}: None when no gateway ever ran on this database."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'health'").fetchone():
        return {"running": None, "at": None}
    r = conn.execute("SELECT MAX(at) FROM health").fetchone()
    if not r or r[0] is None:
        return {"running": None, "at": None}
    return {"running": now - r[0] <= stale_after_s, "at": r[0]}


class Feed:
    def __init__(self, state: ConsoleState) -> None:
        self.state = state
        self.clients: set[Client] = set()
        self.cursor = 0
        self.wake: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task | None = None
        self.mqtt: Any = None
        self.box_mark = 0.0
        self.gateway: dict = {"running": None, "at": None}
        self.bridges: dict[str, dict] = {}  # bridge id -> last retained status (fleet page)
        self.sse_kept: dict[tuple[int, str], bytes] = {}  # (cursor, lang) -> the event, rendered once
        self.stats = {"polls": 0, "events": 0, "wakeups": 0}
        self.book: mapdata.PlaceBook | None = None
        g = state.cfg.gateway
        self.stale_after_s = max(3 * g.health_interval_s, 5.0)

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        conn = self.state.db()
        self.cursor = await run_in_threadpool(cursor_now, conn)
        self.box_mark = await run_in_threadpool(self._max_seen)
        self.task = asyncio.create_task(self._run(), name="segel-console-feed")
        self._start_mqtt()

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.mqtt is not None:
            with contextlib.suppress(Exception):
                self.mqtt.loop_stop()
                self.mqtt.disconnect()

    def _start_mqtt(self) -> None:
        """A listener on the broker that only wakes the feed (the database is what it reads)."""
        m = self.state.cfg.mqtt
        try:
            import paho.mqtt.client as paho
            from paho.mqtt.enums import CallbackAPIVersion

            from segel.edge import mqtt, topics

            broker = mqtt.parse_url(m.url)
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"segel-console-{id(self):x}-{int(time.time())}",
                            protocol=paho.MQTTv5 if m.protocol == "5" else paho.MQTTv311)
            if m.username or broker.username:
                c.username_pw_set(m.username or broker.username, m.password or broker.password)
            if broker.tls:
                import ssl

                c.tls_set(ca_certs=m.ca_file or None, cert_reqs=ssl.CERT_NONE if m.tls_insecure else ssl.CERT_REQUIRED)
            c.reconnect_delay_set(1, 10)
            c.on_connect = lambda cl, *a: cl.subscribe([(topics.ALERT_SUB, 0), (topics.BRIDGE_STATUS_SUB, 0),
                                                        (topics.GATEWAY_STATUS, 0)])
            c.on_message = self._on_mqtt
            c.connect_async(broker.host, broker.port, keepalive=30)
            c.loop_start()
            self.mqtt = c
        except Exception as e:  # noqa: BLE001 - live updates still come from the database
            log.warning("console: no MQTT wake-ups (%s); reading the database every %.1f s",
                        e, self.state.cfg.console.live_poll_s)

    def _on_mqtt(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            if msg.topic.endswith("/status") and "/bridge/" in msg.topic:
                doc = json.loads(msg.payload) if msg.payload else None
                if isinstance(doc, dict):
                    self.bridges[msg.topic.split("/")[2]] = {**doc, "_heard": time.time()}
                return
            if self.loop is not None and self.wake is not None:
                self.loop.call_soon_threadsafe(self.wake.set)
        except Exception:  # noqa: BLE001 - never raise in paho's thread
            log.debug("console: MQTT message on %s ignored", msg.topic, exc_info=True)

    # ---- the reader ---------------------------------------------------------------------------

    def _max_seen(self) -> float:
        r = self.state.db().execute("SELECT COALESCE(MAX(last_seen_at), 0) FROM device_state").fetchone()
        return float(r[0])

    def _read(self, with_boxes: bool, with_gateway: bool) -> tuple[list, list, dict | None]:
        conn = self.state.db()
        if self.book is None or with_boxes:  # an import of places is seen within 2 s; its check reads every place
            self.book = mapdata.place_book(conn)
        upto = cursor_now(conn)
        alerts = alert_rows(conn, self.cursor, MAX_CATCH_UP, upto)
        # the cursor passes the informational rows too, so the next read starts after them
        self.cursor = alerts[-1][0] if len(alerts) == MAX_CATCH_UP else max(self.cursor, upto)
        langs = {c.lang for c in self.clients}
        for cur, event, row in alerts:  # each change rendered and encoded once per language, here in a worker thread
            row["_sse"] = {lang: self.sse_bytes(cur, lang, row, event) for lang in langs}
        boxes: list[dict] = []
        if with_boxes:
            changed = {b for (b,) in conn.execute(
                "SELECT b.box_id FROM device_state s JOIN boxes b ON b.device_id = s.device_id WHERE s.last_seen_at > ?",
                (self.box_mark,))}
            changed |= {r[2]["box"] for r in alerts if r[2]["box"]}
            if changed:
                boxes = mapdata.boxes(conn, self.book, changed)
                self.box_mark = self._max_seen()
        # the heartbeat is the gateway's wall clock (even when pages show a simulated "now")
        gw = gateway_status(conn, time.time(), self.stale_after_s) if with_gateway else None
        return alerts, boxes, gw

    async def _run(self) -> None:
        assert self.wake is not None
        poll = max(0.05, self.state.cfg.console.live_poll_s)
        last_boxes = last_gw = last_read = 0.0
        while True:
            try:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), poll)
                    self.stats["wakeups"] += 1
                # a burst of MQTT wake-ups costs at most ten reads a second
                await asyncio.sleep(max(0.0, last_read + MIN_READ_GAP_S - time.monotonic()))
                self.wake.clear()
                now = last_read = time.monotonic()
                with_boxes, with_gw = now - last_boxes >= 2.0, now - last_gw >= 5.0
                alerts, boxes, gw = await run_in_threadpool(self._read, with_boxes, with_gw)
                self.stats["polls"] += 1
                if with_boxes:
                    last_boxes = now
                if gw is not None:
                    last_gw = now
                    changed = gw["running"] != self.gateway.get("running")
                    self.gateway = gw
                    if changed:  # pages only need to know when it stops or comes back
                        self._fan("gateway", None, gw, lambda c, d: True)
                for cur, event, row in alerts:
                    self._fan("alert", str(cur), {"cursor": cur, "event": event, "alert": row},
                              lambda c, d: sees(self.book, c.user, d["alert"]))
                if boxes:
                    everything = None  # one serialisation for every unscoped page
                    for c in list(self.clients):
                        if not c.user.scoped:
                            if everything is None:
                                everything = {"_text": _event("boxes", {"boxes": boxes}).encode()}  # encoded once
                            self._put(c, "boxes", None, everything)
                            continue
                        mine = [b for b in boxes if c.user.sees(b["district"], [b["tps"]])]
                        if mine:
                            self._put(c, "boxes", None, {"boxes": mine})
                self.stats["events"] += len(alerts)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - e.g. the database briefly locked: try again next round
                log.exception("console: live feed read failed")
                await asyncio.sleep(1.0)

    def _fan(self, name: str, eid: str | None, data: dict, wants: Any) -> None:
        for c in list(self.clients):
            if wants(c, data):
                self._put(c, name, eid, data)

    def _put(self, c: Client, name: str, eid: str | None, data: dict) -> None:
        try:
            c.queue.put_nowait((name, eid, data))
        except asyncio.QueueFull:
            c.dropped = True  # its stream ends; the page reconnects with its last id and catches up
            self.clients.discard(c)

    # ---- for the events endpoint ------------------------------------------------------------------

    def subscribe(self, user: accounts.User, lang: str) -> Client:
        c = Client(user, lang)
        self.clients.add(c)
        return c

    def unsubscribe(self, c: Client) -> None:
        self.clients.discard(c)

    def sse_bytes(self, cur: int, lang: str, row: dict, event: str) -> bytes:
        """The whole Server-Sent Event for one alert change in one language, rendered and encoded
        once and shared by every page (live pages and pages catching up after a reconnect)."""
        key = (cur, lang)
        text = self.sse_kept.get(key)
        if text is None:
            text = self.sse_text(cur, lang, row, event).encode()
            if len(self.sse_kept) >= EVENTS_KEPT:
                self.sse_kept.clear()
            self.sse_kept[key] = text
        return text

    def sse_text(self, cur: int, lang: str, row: dict, event: str) -> str:
        from segel.console.pages import alerts as alerts_page

        clean = {k: v for k, v in row.items() if not k.startswith("_")}
        t = i18n.translator(lang, self.state.tz)
        # the page needs the desk's row and a few fields (the whole alert is on MQTT, segel.alert/1,
        # and on the alert's own page): a third of the bytes every live page is sent per change
        data = {"cursor": cur, "event": event, "alert": {k: clean[k] for k in PAGE_FIELDS}, "state": row["state"],
                "html": alerts_page.render_row(self.state, t, clean, event, self.book)}  # the desk's table row
        return f"id: {cur}\nevent: alert\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


def sees(book: mapdata.PlaceBook | None, user: accounts.User, row: dict) -> bool:
    """Whether an alert is inside the user's scope (its district, or its place or the box's TPS
    and their parents)."""
    if not user.scoped:
        return True
    places = (book.chain(row["place"]) + book.chain(row.get("tps"))) if book else [row["place"]]
    return user.sees(row["district"], [p for p in places if p])


def attach(state: ConsoleState) -> Feed:
    """The create_app hook: one feed per app, started and stopped with it."""
    feed = Feed(state)
    state.extras["feed"] = feed
    return feed
