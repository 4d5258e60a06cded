"""The national store in PostgreSQL: every regency's items, applied exactly once and in order.

`regencies.applied` is each regency's watermark: an item is applied only when its `seq` is the
next one (`applied + 1`), in the same transaction that moves the watermark, so a duplicate
delivery (`seq <= applied`) changes nothing and a gap (`seq > applied + 1`: something before it
was lost on the way) is left for the regency to send again. The regency's row is locked for the
transaction (`FOR UPDATE`), so two ingesters can never apply one regency's items concurrently.

Tables: `items` (every item but positions, as received: the audit log and the order per box),
`alerts` (each alert as it now stands), `boxes` (pairing, district, custody state, seal, last
position), `findings` (custody findings, withdrawn or not), `positions` (downsampled), `districts`
(each regency's own counts), `checkpoints`, `signing_keys`, `refusals` (what was refused and
from whom), `ingest_status` (each ingester's figures).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from segel.national import codes, model

log = logging.getLogger("segel.national.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS regencies (
    code text PRIMARY KEY, province text NOT NULL, name text NOT NULL DEFAULT '',
    applied bigint NOT NULL DEFAULT 0, items bigint NOT NULL DEFAULT 0, duplicates bigint NOT NULL DEFAULT 0,
    gaps bigint NOT NULL DEFAULT 0, refused bigint NOT NULL DEFAULT 0,
    first_seen double precision, last_seen double precision, last_sent double precision, skew_s double precision
);
CREATE TABLE IF NOT EXISTS items (
    regency text NOT NULL, seq bigint NOT NULL, kind text NOT NULL, subject text, at double precision,
    committed double precision NOT NULL, stored double precision NOT NULL, body jsonb NOT NULL,
    PRIMARY KEY (regency, seq)
);
CREATE INDEX IF NOT EXISTS items_subject ON items (regency, subject, seq);
CREATE TABLE IF NOT EXISTS boxes (
    regency text NOT NULL, box text NOT NULL, district text, tps text, device text, contest text,
    state text NOT NULL DEFAULT 'unknown', place text, state_t double precision,
    seal text, seal_t double precision, lat double precision, lon double precision, fix_t double precision,
    seq bigint NOT NULL, PRIMARY KEY (regency, box)
);
CREATE INDEX IF NOT EXISTS boxes_district ON boxes (regency, district);
CREATE TABLE IF NOT EXISTS findings (
    regency text NOT NULL, subject text NOT NULL, key text NOT NULL, finding text NOT NULL, place text,
    place_kind text, t double precision, counter bigint, withdrawn boolean NOT NULL, seq bigint NOT NULL,
    PRIMARY KEY (regency, subject, key)
);
CREATE TABLE IF NOT EXISTS alerts (
    regency text NOT NULL, id text NOT NULL, kind text NOT NULL, severity text NOT NULL, state text NOT NULL,
    subject text, box text, device text, place text, district text, device_time double precision,
    last_device_time double precision, raised_at double precision, late boolean, occurrences integer,
    message text, acked_by text, acked_at double precision, ack_note text, resolved_by text,
    resolved_at double precision, resolve_note text, detail jsonb, last_event text NOT NULL, seq bigint NOT NULL,
    PRIMARY KEY (regency, id)
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (regency, severity, kind) WHERE state IN ('open', 'acknowledged');
CREATE INDEX IF NOT EXISTS alerts_box ON alerts (regency, box);
CREATE TABLE IF NOT EXISTS positions (
    regency text NOT NULL, box text NOT NULL, t double precision NOT NULL, lat double precision NOT NULL,
    lon double precision NOT NULL, seq bigint NOT NULL, PRIMARY KEY (regency, box, t)
);
CREATE TABLE IF NOT EXISTS districts (
    regency text NOT NULL, district text NOT NULL, name text, summary jsonb NOT NULL, at double precision,
    seq bigint NOT NULL, PRIMARY KEY (regency, district)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    regency text NOT NULL, seq bigint NOT NULL, box text, body jsonb NOT NULL, PRIMARY KEY (regency, seq)
);
CREATE TABLE IF NOT EXISTS signing_keys (
    regency text NOT NULL, key_id text NOT NULL, body jsonb NOT NULL, seq bigint NOT NULL, PRIMARY KEY (regency, key_id)
);
CREATE TABLE IF NOT EXISTS refusals (
    id bigserial PRIMARY KEY, at double precision NOT NULL, regency text, topic text, reason text NOT NULL,
    detail text, payload bytea
);
CREATE TABLE IF NOT EXISTS ingest_status (
    name text PRIMARY KEY, at double precision, messages bigint, items bigint, duplicates bigint, gaps bigint,
    refused bigint, lag_p50_ms real, lag_p99_ms real, lag_max_ms real, window_items bigint
)
"""

REFUSAL_PAYLOAD_MAX = 4096


def connect(dsn: str) -> psycopg.Connection:
    conn = psycopg.connect(dsn, autocommit=True)
    return conn


def ensure_schema(conn: psycopg.Connection) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('segel-national-schema'))")
        for stmt in SCHEMA.split(";"):
            if stmt.strip():
                conn.execute(stmt)


@dataclass
class Outcome:
    """What one batch did: each touched regency's watermark, and what was counted."""

    applied: dict[str, int] = field(default_factory=dict)
    items: int = 0
    duplicates: int = 0
    gaps: int = 0
    refused: int = 0
    lags_s: list[float] = field(default_factory=list)  # stored - committed, per applied item


@dataclass(frozen=True)
class Incoming:
    topic: str
    payload: bytes
    received: float  # national clock


def refuse(conn: psycopg.Connection, at: float, regency: str | None, topic: str, reason: str, detail: str,
           payload: bytes) -> None:
    conn.execute("INSERT INTO refusals(at, regency, topic, reason, detail, payload) VALUES (%s,%s,%s,%s,%s,%s)",
                 (at, regency, topic, reason, detail, payload[:REFUSAL_PAYLOAD_MAX]))
    if regency:
        conn.execute("UPDATE regencies SET refused = refused + 1 WHERE code = %s", (regency,))


def apply_batch(conn: psycopg.Connection, batch: Iterable[Incoming], clock: Any = time.time) -> Outcome:
    """Apply messages in one transaction: refusals recorded, duplicates skipped, gaps left."""
    out = Outcome()
    parsed: list[tuple[str, model.Message]] = []
    with conn.transaction():
        for m in batch:
            try:
                regency = codes.regency_of_topic(m.topic)
            except codes.CodeError as e:
                log.error("refused a message on %s: %s", m.topic, e)
                refuse(conn, m.received, None, m.topic, "topic", str(e), m.payload)
                out.refused += 1
                continue
            try:
                msg = model.decode(m.payload)
            except model.MessageError as e:
                log.error("refused a malformed message from regency %s (topic %s): %s", regency, m.topic, e)
                _ensure_regency(conn, regency, "", m.received)
                refuse(conn, m.received, regency, m.topic, "malformed", str(e), m.payload)
                out.refused += 1
                continue
            if msg.regency != regency:
                log.error("refused a message from regency %s (topic %s) that claims to be from %s",
                          regency, m.topic, msg.regency)
                _ensure_regency(conn, regency, "", m.received)
                refuse(conn, m.received, regency, m.topic, "wrong_regency",
                       f"message says regency {msg.regency!r}; the account may publish only for {regency}", m.payload)
                out.refused += 1
                continue
            parsed.append((regency, msg))
        by_regency: dict[str, list[model.Message]] = {}
        for regency, msg in parsed:
            by_regency.setdefault(regency, []).append(msg)
        for regency in sorted(by_regency):  # one lock order for every ingester: no deadlock
            msgs = by_regency[regency]
            last = msgs[-1]
            _ensure_regency(conn, regency, last.name, clock())
            applied = conn.execute("SELECT applied FROM regencies WHERE code = %s FOR UPDATE", (regency,)).fetchone()[0]
            start = applied
            dup = gap = 0
            todo: list[model.Item] = []
            for msg in msgs:
                for it in msg.items:
                    if it.seq <= applied:
                        dup += 1
                    elif it.seq == applied + 1:
                        todo.append(it)
                        applied = it.seq
                    else:
                        gap += 1
            now = clock()
            _apply_items(conn, regency, todo, now)
            out.lags_s += [now - it.committed for it in todo]
            conn.execute("UPDATE regencies SET applied = %s, items = items + %s, duplicates = duplicates + %s, "
                         "gaps = gaps + %s, name = CASE WHEN %s <> '' THEN %s ELSE name END, last_seen = %s, "
                         "last_sent = %s, skew_s = %s WHERE code = %s",
                         (applied, applied - start, dup, gap, last.name, last.name, now, last.sent,
                          round(last.sent - now, 3), regency))
            if gap:
                log.info("regency %s: %d item(s) after a gap (have %d): they will come again", regency, gap, applied)
            out.applied[regency] = applied
            out.items += applied - start
            out.duplicates += dup
            out.gaps += gap
    return out


def _ensure_regency(conn: psycopg.Connection, code: str, name: str, now: float) -> None:
    conn.execute("INSERT INTO regencies(code, province, name, first_seen) VALUES (%s, %s, %s, %s) "
                 "ON CONFLICT (code) DO NOTHING", (code, codes.province(code), name, now))


def _apply_items(conn: psycopg.Connection, regency: str, todo: list[model.Item], now: float) -> None:
    logged = [it for it in todo if it.kind != "position"]
    if logged:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO items(regency, seq, kind, subject, at, committed, stored, body) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                [(regency, it.seq, it.kind, it.subject, it.at, it.committed, now, Jsonb(it.body)) for it in logged])
    positions: list[tuple] = []
    custody_boxes: dict[str, int] = {}
    for it in todo:
        try:
            if it.kind == "position":
                b = it.body
                positions.append((regency, it.subject, float(b["t"]), float(b["lat"]), float(b["lon"]), it.seq))
            elif it.kind == "alert":
                _alert(conn, regency, it)
            elif it.kind == "custody":
                _finding(conn, regency, it)
                if it.subject:
                    custody_boxes[it.subject] = it.seq
            elif it.kind == "box":
                _box(conn, regency, it)
            elif it.kind == "summary":
                _summary(conn, regency, it)
            elif it.kind == "checkpoint":
                conn.execute("INSERT INTO checkpoints(regency, seq, box, body) VALUES (%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                             (regency, it.seq, it.subject, Jsonb(it.body)))
            elif it.kind == "signing_key":
                conn.execute("INSERT INTO signing_keys(regency, key_id, body, seq) VALUES (%s,%s,%s,%s) "
                             "ON CONFLICT (regency, key_id) DO UPDATE SET body = excluded.body, seq = excluded.seq",
                             (regency, str(it.body.get("key_id")), Jsonb(it.body), it.seq))
        except (KeyError, TypeError, ValueError) as e:
            # the item is in `items` as received; what it should have changed is named here
            log.error("regency %s item %d (%s): cannot apply: %s", regency, it.seq, it.kind, e)
            refuse(conn, now, regency, codes.up_topic(regency), "bad_item", f"item {it.seq} ({it.kind}): {e}",
                   json.dumps(it.body).encode())
    if positions:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO positions(regency, box, t, lat, lon, seq) VALUES (%s,%s,%s,%s,%s,%s) "
                            "ON CONFLICT DO NOTHING", positions)
            last: dict[str, tuple] = {}
            for p in positions:
                if p[1] is not None and (p[1] not in last or p[2] >= last[p[1]][2]):
                    last[p[1]] = p
            cur.executemany(
                "INSERT INTO boxes(regency, box, lat, lon, fix_t, seq) VALUES (%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (regency, box) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, fix_t = excluded.fix_t "
                "WHERE boxes.fix_t IS NULL OR boxes.fix_t <= excluded.fix_t",
                [(regency, b, p[3], p[4], p[2], p[5]) for b, p in last.items()])
    for box, seq in custody_boxes.items():
        _box_state(conn, regency, box, seq)


_ALERT_COLS = ("id", "kind", "severity", "state", "subject", "box", "device", "place", "district", "device_time",
               "last_device_time", "raised_at", "late", "occurrences", "message", "acked_by", "acked_at", "ack_note",
               "resolved_by", "resolved_at", "resolve_note")


def _alert(conn: psycopg.Connection, regency: str, it: model.Item) -> None:
    a = it.body["alert"]
    vals = [a.get(c) for c in _ALERT_COLS]
    vals[_ALERT_COLS.index("late")] = bool(a.get("late"))
    if not a.get("id") or not a.get("kind") or not a.get("state"):
        raise ValueError("alert without id, kind or state")
    cols = ("regency",) + _ALERT_COLS + ("detail", "last_event", "seq")
    conn.execute(
        f"INSERT INTO alerts({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
        f"ON CONFLICT (regency, id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in cols[2:]),
        (regency, *vals, Jsonb(a.get("detail") or {}), str(it.body.get("event")), it.seq))


def _finding(conn: psycopg.Connection, regency: str, it: model.Item) -> None:
    b = it.body
    conn.execute("INSERT INTO findings(regency, subject, key, finding, place, place_kind, t, counter, withdrawn, seq) "
                 "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (regency, subject, key) DO UPDATE SET "
                 "finding = excluded.finding, place = excluded.place, place_kind = excluded.place_kind, t = excluded.t, "
                 "counter = excluded.counter, withdrawn = excluded.withdrawn, seq = excluded.seq",
                 (regency, it.subject or "", str(b["key"]), str(b["finding"]), b.get("place"), b.get("place_kind"),
                  float(b["t"]), int(b["counter"]), bool(b.get("withdrawn")), it.seq))


def _box(conn: psycopg.Connection, regency: str, it: model.Item) -> None:
    b = it.body
    conn.execute("INSERT INTO boxes(regency, box, district, tps, device, contest, seq) VALUES (%s,%s,%s,%s,%s,%s,%s) "
                 "ON CONFLICT (regency, box) DO UPDATE SET district = excluded.district, tps = excluded.tps, "
                 "device = excluded.device, contest = excluded.contest",
                 (regency, str(b["box"]), b.get("district"), b.get("tps"), b.get("device"), b.get("contest"), it.seq))


def _box_state(conn: psycopg.Connection, regency: str, box: str, seq: int) -> None:
    """A box's custody state and seal from its findings that still stand (late data may withdraw one)."""
    loc = conn.execute("SELECT finding, place_kind, place, t FROM findings WHERE regency = %s AND subject = %s "
                       "AND NOT withdrawn AND finding IN ('enter', 'exit', 'arrived') ORDER BY t DESC, counter DESC, "
                       "finding = 'exit' LIMIT 1", (regency, box)).fetchone()
    seal = conn.execute("SELECT finding, t FROM findings WHERE regency = %s AND subject = %s AND NOT withdrawn "
                        "AND finding = ANY(%s) ORDER BY t DESC, counter DESC LIMIT 1",
                        (regency, box, list(model.SEAL_KINDS))).fetchone()
    state = model.location_state(loc[0], loc[1]) if loc else model.UNKNOWN
    seal_state = ("opened" if seal[0] in model.OPENINGS else "closed") if seal else None
    conn.execute("INSERT INTO boxes(regency, box, state, place, state_t, seal, seal_t, seq) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) "
                 "ON CONFLICT (regency, box) DO UPDATE SET state = excluded.state, place = excluded.place, "
                 "state_t = excluded.state_t, seal = excluded.seal, seal_t = excluded.seal_t",
                 (regency, box, state, loc[2] if loc and state != model.IN_TRANSIT else None, loc[3] if loc else None,
                  seal_state, seal[1] if seal else None, seq))


def _summary(conn: psycopg.Connection, regency: str, it: model.Item) -> None:
    b = it.body
    districts = b["districts"]
    if not isinstance(districts, dict):
        raise ValueError("districts is not an object")
    for code, s in districts.items():
        conn.execute("INSERT INTO districts(regency, district, name, summary, at, seq) VALUES (%s,%s,%s,%s,%s,%s) "
                     "ON CONFLICT (regency, district) DO UPDATE SET name = excluded.name, summary = excluded.summary, "
                     "at = excluded.at, seq = excluded.seq",
                     (regency, code, s.get("name"), Jsonb(s), it.at, it.seq))
    if b.get("name"):
        conn.execute("UPDATE regencies SET name = %s WHERE code = %s", (str(b["name"]), regency))


def save_status(conn: psycopg.Connection, name: str, at: float, figures: dict[str, Any]) -> None:
    cols = ("messages", "items", "duplicates", "gaps", "refused", "lag_p50_ms", "lag_p99_ms", "lag_max_ms", "window_items")
    conn.execute(f"INSERT INTO ingest_status(name, at, {', '.join(cols)}) VALUES (%s, %s, {', '.join(['%s'] * len(cols))}) "
                 f"ON CONFLICT (name) DO UPDATE SET at = excluded.at, "
                 + ", ".join(f"{c} = excluded.{c}" for c in cols),
                 (name, at, *[figures.get(c) for c in cols]))
