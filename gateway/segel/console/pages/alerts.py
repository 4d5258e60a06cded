"""The alert desk: open alerts live, critical first until acknowledged; acknowledge and resolve with a note."""

from __future__ import annotations

import asyncio
import json

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response, StreamingResponse

from segel import accounts, i18n
from segel.console import live, mapdata
from segel.console.routing import ConsoleError, Ctx, Router
from segel.custody import actions
from segel.custody import alerts as al
from segel.custody import display
from segel.custody.display import EVENT_LABELS, KIND_LABELS, SEVERITY_LABELS, STATE_LABELS
from segel.i18n import N_

router = Router("alerts")
router.nav(N_("Alerts"), "/alerts", order=20)

SEV_RANK = {s: i for i, s in enumerate(al.SEVERITY_ORDER)}
LIMIT = 500
CHUNK = 1 << 16  # bytes of waiting events written to a live page at once (fewer writes under a burst)


def sort_key(r: dict) -> tuple:
    """Open critical alerts on top (until acknowledged), then newest first."""
    return (0 if (r["state"] == "open" and r["severity"] == "critical") else 1, -r["raised_at"], r["id"])


def query(c: Ctx, state: str, severity: str, kind: str, district: str) -> list[dict]:
    conn = c.db
    al.ensure_schema(conn)
    where, args = ["1=1"], []
    if state == "active":
        where.append("state IN ('open', 'acknowledged')")
    elif state in al.STATES:
        where.append("state = ?")
        args.append(state)
    if state != "all" and state != "resolved":
        where.append("severity != 'info'")
    for col, v in (("severity", severity), ("kind", kind), ("district", district)):
        if v:
            where.append(f"{col} = ?")
            args.append(v)
    rows = [dict(zip(al.COLS, r)) for r in conn.execute(
        f"SELECT {', '.join(al.COLS)} FROM alerts WHERE {' AND '.join(where)} ORDER BY raised_at DESC LIMIT ?",
        (*args, LIMIT * 4))]
    book = mapdata.place_book(conn)
    tps = dict(conn.execute("SELECT box_id, tps FROM boxes").fetchall())
    for r in rows:
        r["tps"] = tps.get(r["box"])
    rows = [r for r in rows if c.user is not None and live.sees(book, c.user, r)][:LIMIT]
    return sorted(rows, key=sort_key)


def row_values(state: object, t: i18n.Translator, row: dict, book: mapdata.PlaceBook, now: float) -> dict:
    return {"a": row, "t": t, "_": t._, "ngettext": t.ngettext, "now": now, "book": book,
            "kind_label": t._(KIND_LABELS.get(row["kind"], row["kind"])),
            "description": display.describe(t, row, book.name),
            "sev_label": t._(SEVERITY_LABELS.get(row["severity"], row["severity"])),
            "state_label": t._(STATE_LABELS.get(row["state"], row["state"]))}


def render_row(state: object, t: i18n.Translator, row: dict, event: str = "",
               book: mapdata.PlaceBook | None = None) -> str:
    """One row of the alert desk; the live feed passes the place book it already holds."""
    from segel.console.app import ConsoleState

    assert isinstance(state, ConsoleState)
    book = book or mapdata.place_book(state.db())
    tmpl = state.web.env.get_template("alerts/_row.html")
    return tmpl.render(row_values(state, t, row, book, state.clock()))


@router.page("/alerts")
def desk(c: Ctx) -> Response:
    q = c.query
    state = q.get("state", "active")
    severity, kind, district = q.get("severity", ""), q.get("kind", ""), q.get("district", "")
    rows = query(c, state, severity, kind, district)
    book = mapdata.place_book(c.db)
    districts = [(code, name) for code, name in book.districts() if c.sees(code)]
    tmpl = c.state.web.env.get_template("alerts/_row.html")
    html = [Markup(tmpl.render(row_values(c.state, c.t, r, book, c.now()))) for r in rows]
    return c.render("alerts/desk.html", rows=html, count=len(rows), districts=districts, kinds=KIND_LABELS,
                    severities=SEVERITY_LABELS, states=STATE_LABELS,
                    f={"state": state, "severity": severity, "kind": kind, "district": district},
                    cursor=live.cursor_now(c.db))


def _alert_in_scope(c: Ctx, alert_id: str) -> dict:
    row = al.get(c.db, alert_id)
    if row is None:
        raise ConsoleError(404, c._("No such alert."))
    row["tps"] = (c.db.execute("SELECT tps FROM boxes WHERE box_id = ?", (row["box"],)).fetchone() or [None])[0]
    if not live.sees(mapdata.place_book(c.db), c.user, row):  # type: ignore[arg-type]
        raise ConsoleError(403, c._("This is outside the districts and places of your account."))
    return row


@router.page("/alerts/{alert_id}")
def detail(c: Ctx) -> Response:
    row = _alert_in_scope(c, c.params["alert_id"])
    book = mapdata.place_book(c.db)
    # the note of a raising is the finding's key (for machines): not shown
    history = [{"at": at, "event": c._(EVENT_LABELS.get(ev, ev)), "by": by,
                "note": None if ev in ("raised", "repeated") else note} for at, ev, by, note in al.history(c.db, row["id"])]
    # the detail's own English sentence is the description's source; an event is shown by its label
    detail = {k: (display.event_label(c.t, v) if k == "event" else v)
              for k, v in display.detail_of(row).items() if k != "message"}
    return c.render("alerts/detail.html", history=history, detail=detail,
                    **row_values(c.state, c.t, row, book, c.now()))


def _act(c: Ctx, change: str) -> Response:
    c.require(accounts.ACT_ALERTS)
    aid = c.params["alert_id"]
    _alert_in_scope(c, aid)
    note = c.form.get("note", "")
    user = c.user
    assert user is not None
    try:
        fn = actions.acknowledge if change == "ack" else actions.resolve
        fn(c.db, aid, user.label, note or None, now=c.now(), actor=user, via="console")
    except actions.AlertError as e:
        raise ConsoleError(409, _message(c, str(e))) from None
    if c.request.headers.get("x-requested-with") == "fetch":
        row = al.get(c.db, aid)
        assert row is not None
        return HTMLResponse(render_row(c.state, c.t, row))
    back = c.form.get("next") or "/alerts"
    return c.redirect(back if back.startswith("/") and not back.startswith("//") else "/alerts")


def _message(c: Ctx, error: str) -> str:
    """The library's reason, with the sentence people need in their language first."""
    if "characters; at most" in error:
        return c._("The note is too long (at most 2,000 characters).") + " " + error
    if "only an open alert" in error or "is already" in error:
        return c._("Someone else changed this alert first: reload to see who.") + " " + error
    if "outside" in error:
        return c._("This is outside the districts and places of your account.") + " " + error
    return error


@router.page("/alerts/{alert_id}/ack", methods=("POST",), permission=accounts.ACT_ALERTS, name="alerts.ack")
def ack(c: Ctx) -> Response:
    return _act(c, "ack")


@router.page("/alerts/{alert_id}/resolve", methods=("POST",), permission=accounts.ACT_ALERTS, name="alerts.resolve")
def resolve(c: Ctx) -> Response:
    return _act(c, "resolve")


def _sse(name: str, data: dict, eid: str | None = None) -> str:
    head = f"id: {eid}\n" if eid else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


@router.page("/events")
async def events(c: Ctx) -> Response:
    """Server-Sent Events: alert changes after `Last-Event-ID` (or ?since=), box positions, the gateway's state."""
    feed: live.Feed | None = c.state.extras.get("feed")
    if feed is None:
        raise ConsoleError(503, c._("Live updates are off on this console."))
    user, lang = c.user, c.t.lang
    assert user is not None
    try:
        since = int(c.request.headers.get("last-event-id") or c.query.get("since") or feed.cursor)
    except ValueError:
        since = feed.cursor
    client = feed.subscribe(user, c.t.lang)
    token = c.request.cookies.get("segel_session", "")

    def gw_text(g: dict) -> dict:
        return {**g, "at_text": c.t.datetime(g["at"]) if g.get("at") else ""}

    def alert_event(cur: int, event: str, row: dict) -> bytes:
        return feed.sse_bytes(cur, lang, row, event)

    async def stream():  # type: ignore[no-untyped-def]
        last = since
        try:
            yield "retry: 2000\n\n"

            def gap() -> tuple[int, int]:
                conn = c.state.db()
                upto = live.cursor_now(conn)  # what arrives after this comes through the feed
                return live.count_after(conn, since, live.MAX_CATCH_UP + 1), upto
            count, upto = await run_in_threadpool(gap)
            if count > live.MAX_CATCH_UP:
                yield _sse("reload", {"why": "too much missed"})
                return
            book = feed.book or await run_in_threadpool(lambda: mapdata.place_book(c.state.db()))

            def missed(after: int) -> tuple[int | None, list[bytes]]:
                """The next page of changes this page missed, each event shared with other pages."""
                rows = live.alert_rows(c.state.db(), after, live.CATCH_UP_PAGE, upto)
                return (rows[-1][0] if rows else None,
                        [feed.sse_bytes(cur, lang, row, event) for cur, event, row in rows if live.sees(book, user, row)])
            while True:  # a page at a time: many pages reconnecting at once hold little each
                end, texts = await run_in_threadpool(missed, last)
                if end is None:
                    break
                last = end
                if texts:
                    yield b"".join(texts)
            yield _sse("gateway", gw_text(feed.gateway))
            while True:
                try:
                    item = await asyncio.wait_for(client.queue.get(), 15.0)
                except asyncio.TimeoutError:
                    if await run_in_threadpool(c.state.session_of, token) is None:
                        yield _sse("logout", {})
                        return
                    yield ": ping\n\n"
                    continue
                parts: list[bytes] = []
                size = 0
                while item is not None:  # what is already waiting goes out in few writes of up to CHUNK bytes
                    name, eid, data = item
                    text: str | bytes | None = None
                    if name != "alert":
                        text = data["_text"] if "_text" in data else _sse(name, gw_text(data) if name == "gateway" else data, None)
                    elif int(eid or 0) > last:
                        last = int(eid or 0)
                        text = data["alert"].get("_sse", {}).get(lang)  # rendered once for every page in this language
                        text = text or await run_in_threadpool(alert_event, data["cursor"], data["event"], data["alert"])
                    if text:
                        parts.append(text if isinstance(text, bytes) else text.encode())
                        size += len(parts[-1])
                    if size >= CHUNK:
                        yield b"".join(parts)
                        parts, size = [], 0
                    item = client.queue.get_nowait() if not client.queue.empty() else None
                if parts:
                    yield b"".join(parts)
                if client.dropped and client.queue.empty():
                    return
        finally:
            feed.unsubscribe(client)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
