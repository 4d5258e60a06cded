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
    regency text NOT NULL, seq bigint NOT NULL, box text, body jsonb NOT NULL, valid boolean,
    PRIMARY KEY (regency, seq)
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
    # messages (their index in the batch) that start after a gap: left unacknowledged, so the bus
    # delivers them again after its ack wait, by when what they wait for has usually come
    held: set[int] = field(default_factory=set)


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
    """Apply messages in one transaction: refusals recorded, duplicates skipped, gaps left. A
    few statements per batch whatever the number of regencies in it (executemany, unnest)."""
    out = Outcome()
    by_regency: dict[str, list[tuple[int, model.Message]]] = {}
    with conn.transaction():
        for n, m in enumerate(batch):
            regency, msg = _read(conn, m, out)
            if msg is not None:
                by_regency.setdefault(regency, []).append((n, msg))  # type: ignore[arg-type]
        if not by_regency:
            return out
        codes_ = sorted(by_regency)  # one lock order for every ingester: no deadlock
        now = clock()
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO regencies(code, province, name, first_seen) VALUES (%s, %s, %s, %s) "
                            "ON CONFLICT (code) DO NOTHING",
                            [(c, codes.province(c), by_regency[c][-1][1].name, now) for c in codes_])
        watermark = dict(conn.execute("SELECT code, applied FROM regencies WHERE code = ANY(%s) ORDER BY code FOR UPDATE",
                                      (codes_,)).fetchall())
        todo: list[tuple[str, model.Item]] = []
        updates = []
        for regency in codes_:
            # redelivered messages come after newer ones: take each regency's in seq order
            msgs = sorted(by_regency[regency], key=lambda nm: nm[1].items[0].seq)
            applied = start = int(watermark[regency])
            dup = gap = 0
            for n, msg in msgs:
                if msg.items[0].seq > applied + 1:
                    out.held.add(n)
                for it in msg.items:
                    if it.seq <= applied:
                        dup += 1
                    elif it.seq == applied + 1:
                        todo.append((regency, it))
                        applied = it.seq
                    else:
                        gap += 1
            if gap:
                log.info("regency %s: %d item(s) after a gap (have %d): they will come again", regency, gap, applied)
            last = max((m for _, m in msgs), key=lambda m: m.sent)
            updates.append((applied, applied - start, dup, gap, last.name, last.name, now, last.sent,
                            round(last.sent - now, 3), regency))
            out.applied[regency] = applied
            out.items += applied - start
            out.duplicates += dup
            out.gaps += gap
        now = clock()
        _apply_items(conn, todo, now)
        out.lags_s += [now - it.committed for _, it in todo]
        with conn.cursor() as cur:
            cur.executemany("UPDATE regencies SET applied = %s, items = items + %s, duplicates = duplicates + %s, "
                            "gaps = gaps + %s, name = CASE WHEN %s <> '' THEN %s ELSE name END, last_seen = %s, "
                            "last_sent = %s, skew_s = %s WHERE code = %s", updates)
    return out


def _read(conn: psycopg.Connection, m: Incoming, out: Outcome) -> tuple[str | None, model.Message | None]:
    """The regency a message comes from (its topic, which the bus authenticated) and its content;
    a refusal is recorded and logged with that regency when either is wrong."""
    try:
        regency = codes.regency_of_topic(m.topic)
    except codes.CodeError as e:
        log.error("refused a message on %s: %s", m.topic, e)
        refuse(conn, m.received, None, m.topic, "topic", str(e), m.payload)
        out.refused += 1
        return None, None
    try:
        msg = model.decode(m.payload)
    except model.MessageError as e:
        log.error("refused a malformed message from regency %s (topic %s): %s", regency, m.topic, e)
        _ensure_regency(conn, regency, "", m.received)
        refuse(conn, m.received, regency, m.topic, "malformed", str(e), m.payload)
        out.refused += 1
        return regency, None
    if msg.regency != regency:
        log.error("refused a message from regency %s (topic %s) that claims to be from %s", regency, m.topic, msg.regency)
        _ensure_regency(conn, regency, "", m.received)
        refuse(conn, m.received, regency, m.topic, "wrong_regency",
               f"message says regency {msg.regency!r}; the account may publish only for {regency}", m.payload)
        out.refused += 1
        return regency, None
    return regency, msg


def _ensure_regency(conn: psycopg.Connection, code: str, name: str, now: float) -> None:
    conn.execute("INSERT INTO regencies(code, province, name, first_seen) VALUES (%s, %s, %s, %s) "
                 "ON CONFLICT (code) DO NOTHING", (code, codes.province(code), name, now))


_ALERT_COLS = ("id", "kind", "severity", "state", "subject", "box", "device", "place", "district", "device_time",
               "last_device_time", "raised_at", "late", "occurrences", "message", "acked_by", "acked_at", "ack_note",
               "resolved_by", "resolved_at", "resolve_note")
_ALERT_SQL = ("INSERT INTO alerts(regency, " + ", ".join(_ALERT_COLS) + ", detail, last_event, seq) VALUES ("
              + ", ".join(["%s"] * (len(_ALERT_COLS) + 4)) + ") ON CONFLICT (regency, id) DO UPDATE SET "
              + ", ".join(f"{c} = excluded.{c}" for c in _ALERT_COLS[1:] + ("detail", "last_event", "seq")))
_FINDING_SQL = ("INSERT INTO findings(regency, subject, key, finding, place, place_kind, t, counter, withdrawn, seq) "
                "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (regency, subject, key) DO UPDATE SET "
                "finding = excluded.finding, place = excluded.place, place_kind = excluded.place_kind, t = excluded.t, "
                "counter = excluded.counter, withdrawn = excluded.withdrawn, seq = excluded.seq")
_BOX_SQL = ("INSERT INTO boxes(regency, box, district, tps, device, contest, seq) VALUES (%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (regency, box) DO UPDATE SET district = excluded.district, tps = excluded.tps, "
            "device = excluded.device, contest = excluded.contest")
# A box's custody state from its findings that still stand (late data may withdraw one): the same
# choice as segel.national.model.location_state and capture.box_states (latest by device time and
# counter; on one frame, the place entered rather than the place left).
_STATE_SQL = """
WITH b AS (SELECT * FROM unnest(%(regs)s::text[], %(boxes)s::text[], %(seqs)s::bigint[]) AS b(regency, box, seq)),
loc AS (
    SELECT DISTINCT ON (f.regency, f.subject) f.regency, f.subject, f.finding, f.place_kind, f.place, f.t
    FROM findings f JOIN b ON f.regency = b.regency AND f.subject = b.box
    WHERE NOT f.withdrawn AND f.finding IN ('enter', 'exit', 'arrived')
    ORDER BY f.regency, f.subject, f.t DESC, f.counter DESC, (f.finding <> 'exit') DESC, f.finding DESC,
             COALESCE(f.place_kind, '') DESC),
seal AS (
    SELECT DISTINCT ON (f.regency, f.subject) f.regency, f.subject, f.finding, f.t
    FROM findings f JOIN b ON f.regency = b.regency AND f.subject = b.box
    WHERE NOT f.withdrawn AND f.finding = ANY(%(seal_kinds)s)
    ORDER BY f.regency, f.subject, f.t DESC, f.counter DESC)
INSERT INTO boxes(regency, box, state, place, state_t, seal, seal_t, seq)
SELECT b.regency, b.box,
       CASE WHEN loc.finding IS NULL THEN 'unknown'
            WHEN loc.finding IN ('enter', 'arrived') AND loc.place_kind = ANY(%(locations)s) THEN loc.place_kind
            ELSE 'in_transit' END,
       CASE WHEN loc.finding IN ('enter', 'arrived') AND loc.place_kind = ANY(%(locations)s) THEN loc.place END,
       loc.t,
       CASE WHEN seal.finding IS NULL THEN NULL WHEN seal.finding = ANY(%(openings)s) THEN 'opened' ELSE 'closed' END,
       seal.t, b.seq
FROM b LEFT JOIN loc ON loc.regency = b.regency AND loc.subject = b.box
       LEFT JOIN seal ON seal.regency = b.regency AND seal.subject = b.box
ON CONFLICT (regency, box) DO UPDATE SET state = excluded.state, place = excluded.place, state_t = excluded.state_t,
    seal = excluded.seal, seal_t = excluded.seal_t
"""


def _apply_items(conn: psycopg.Connection, todo: list[tuple[str, model.Item]], now: float) -> None:
    """Every applied item of the batch, grouped by what it changes (items in seq order per regency)."""
    logged, positions, alerts, findings, boxes, summaries, checkpoints, keys = [], [], [], [], [], [], [], []
    touched: dict[tuple[str, str], int] = {}
    for regency, it in todo:
        try:
            b = it.body
            if it.kind == "position":
                positions.append((regency, str(it.subject), float(b["t"]), float(b["lat"]), float(b["lon"]), it.seq))
                continue
            logged.append((regency, it.seq, it.kind, it.subject, it.at, it.committed, now, Jsonb(b)))
            if it.kind == "alert":
                a = b["alert"]
                if not a.get("id") or not a.get("kind") or not a.get("state") or not a.get("severity"):
                    raise ValueError("alert without id, kind, severity or state")
                vals = [a.get(c) for c in _ALERT_COLS]
                vals[_ALERT_COLS.index("late")] = bool(a.get("late"))
                alerts.append((regency, *vals, Jsonb(a.get("detail") or {}), str(b.get("event")), it.seq))
            elif it.kind == "custody":
                findings.append((regency, it.subject or "", str(b["key"]), str(b["finding"]), b.get("place"),
                                 b.get("place_kind"), float(b["t"]), int(b["counter"]), bool(b.get("withdrawn")), it.seq))
                if it.subject:
                    touched[(regency, it.subject)] = it.seq
            elif it.kind == "box":
                boxes.append((regency, str(b["box"]), b.get("district"), b.get("tps"), b.get("device"), b.get("contest"),
                              it.seq))
            elif it.kind == "summary":
                districts = b["districts"]
                if not isinstance(districts, dict):
                    raise ValueError("districts is not an object")
                summaries += [(regency, code, d.get("name"), Jsonb(d), it.at, it.seq) for code, d in districts.items()]
            elif it.kind == "checkpoint":
                checkpoints.append((regency, it.seq, it.subject, Jsonb(b)))
            elif it.kind == "signing_key":
                keys.append((regency, str(b.get("key_id")), Jsonb(b), it.seq))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            # the item stays in `items` as received; what it should have changed is named here
            log.error("regency %s item %d (%s): cannot apply: %s", regency, it.seq, it.kind, e)
            refuse(conn, now, regency, codes.up_topic(regency), "bad_item", f"item {it.seq} ({it.kind}): {e}",
                   json.dumps(it.body).encode())
    with conn.cursor() as cur:
        if logged:
            cur.executemany("INSERT INTO items(regency, seq, kind, subject, at, committed, stored, body) "
                            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", logged)
        if boxes:
            cur.executemany(_BOX_SQL, boxes)
        if alerts:
            cur.executemany(_ALERT_SQL, alerts)
        if findings:
            cur.executemany(_FINDING_SQL, findings)
        if touched:
            regs, bxs, seqs = zip(*((r, bx, q) for (r, bx), q in touched.items()))
            cur.execute(_STATE_SQL, {"regs": list(regs), "boxes": list(bxs), "seqs": list(seqs),
                                     "seal_kinds": list(model.SEAL_KINDS), "openings": list(model.OPENINGS),
                                     "locations": list(model.LOCATIONS)})
        if positions:
            cur.executemany("INSERT INTO positions(regency, box, t, lat, lon, seq) VALUES (%s,%s,%s,%s,%s,%s) "
                            "ON CONFLICT DO NOTHING", positions)
            last: dict[tuple[str, str], tuple] = {}
            for p in positions:
                k = (p[0], p[1])
                if k not in last or p[2] >= last[k][2]:
                    last[k] = p
            cur.executemany(
                "INSERT INTO boxes(regency, box, lat, lon, fix_t, seq) VALUES (%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (regency, box) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, fix_t = excluded.fix_t "
                "WHERE boxes.fix_t IS NULL OR boxes.fix_t <= excluded.fix_t",
                [(r, bx, p[3], p[4], p[2], p[5]) for (r, bx), p in last.items()])
        if summaries:
            cur.executemany("INSERT INTO districts(regency, district, name, summary, at, seq) VALUES (%s,%s,%s,%s,%s,%s) "
                            "ON CONFLICT (regency, district) DO UPDATE SET name = excluded.name, summary = excluded.summary, "
                            "at = excluded.at, seq = excluded.seq", summaries)
        if keys:
            cur.executemany("INSERT INTO signing_keys(regency, key_id, body, seq) VALUES (%s,%s,%s,%s) "
                            "ON CONFLICT (regency, key_id) DO UPDATE SET body = excluded.body, seq = excluded.seq", keys)
        if checkpoints:
            cur.executemany("INSERT INTO checkpoints(regency, seq, box, body, valid) VALUES (%s,%s,%s,%s,%s) "
                            "ON CONFLICT DO NOTHING", [(*c, _verify(conn, c[0], c[3].obj)) for c in checkpoints])


def _verify(conn: psycopg.Connection, regency: str, row: dict) -> bool | None:
    """A checkpoint's signature against the public key its regency sent (`signing_key` items):
    True or False; None when it is unsigned (the regency had no usable key) or its key is unknown."""
    from segel.custody import checkpoints as cps

    if not row.get("signature") or not row.get("key_id"):
        return None
    key = conn.execute("SELECT body->>'public_key' FROM signing_keys WHERE regency = %s AND key_id = %s",
                       (regency, str(row["key_id"]))).fetchone()
    if key is None or not key[0]:
        return None
    return cps.checkpoint_ok(key[0], {"payload": row.get("payload"), "signature": row.get("signature")})


def save_status(conn: psycopg.Connection, name: str, at: float, figures: dict[str, Any]) -> None:
    cols = ("messages", "items", "duplicates", "gaps", "refused", "lag_p50_ms", "lag_p99_ms", "lag_max_ms", "window_items")
    conn.execute(f"INSERT INTO ingest_status(name, at, {', '.join(cols)}) VALUES (%s, %s, {', '.join(['%s'] * len(cols))}) "
                 f"ON CONFLICT (name) DO UPDATE SET at = excluded.at, "
                 + ", ".join(f"{c} = excluded.{c}" for c in cols),
                 (name, at, *[figures.get(c) for c in cols]))
