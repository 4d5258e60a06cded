"""The national store (real PostgreSQL): exactly once, in order, refusals logged with the regency."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from segel.national import model
from segel.national import store as nstore
from segel.national.store import Incoming

pytestmark = pytest.mark.slow

TOPIC = "segel/up/64/6408"


def item(seq: int, kind: str = "alert", subject: str | None = "B1", **body: object) -> str:
    if kind == "alert" and not body:
        body = {"event": "raised", "alert": {"id": f"AL-{seq}", "kind": "seal_unauthorised", "severity": "critical",
                                              "state": "open", "subject": subject, "box": subject, "late": 0}}
    return json.dumps({"seq": seq, "kind": kind, "subject": subject, "at": 100.0 + seq, "committed": 1000.0 + seq,
                       "body": body})


def msg(seqs: range, regency: str = "64.08", topic: str = TOPIC, **kw: object) -> Incoming:
    return Incoming(topic, model.encode(regency, "Kutai Timur", 2000.0, [item(s, **kw) for s in seqs]), 2000.0)


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection]:
    c = nstore.connect(dsn)
    nstore.ensure_schema(c)
    yield c
    c.close()


def applied(conn: psycopg.Connection, code: str = "64.08") -> int:
    return conn.execute("SELECT applied FROM regencies WHERE code = %s", (code,)).fetchone()[0]


def test_duplicates_change_nothing_and_gaps_wait(conn: psycopg.Connection) -> None:
    out = nstore.apply_batch(conn, [msg(range(1, 6))], clock=lambda: 3000.0)
    assert out.applied == {"64.08": 5} and out.items == 5
    # a redelivery after a reconnect, overlapping what is stored, and a message after a lost one
    out = nstore.apply_batch(conn, [msg(range(3, 8)), msg(range(10, 12))], clock=lambda: 3001.0)
    assert (out.items, out.duplicates, out.gaps) == (2, 3, 2)
    assert out.held == {1}  # not acknowledged: the bus delivers it again later
    assert applied(conn) == 7
    assert [s for (s,) in conn.execute("SELECT seq FROM items ORDER BY seq")] == list(range(1, 8))
    # the regency sends again from 8: now everything lands once
    out = nstore.apply_batch(conn, [msg(range(8, 12))], clock=lambda: 3002.0)
    assert out.items == 4 and applied(conn) == 11
    counts = conn.execute("SELECT regency, seq, count(*) FROM items GROUP BY regency, seq HAVING count(*) > 1").fetchall()
    assert counts == []
    row = conn.execute("SELECT items, duplicates, gaps FROM regencies").fetchone()
    assert row == (11, 3, 2)
    assert out.lags_s == [3002.0 - (1000.0 + s) for s in range(8, 12)]


def test_a_redelivered_message_after_a_newer_one_is_applied_first(conn: psycopg.Connection) -> None:
    out = nstore.apply_batch(conn, [msg(range(6, 11)), msg(range(1, 6))])
    assert out.items == 10 and out.gaps == 0 and out.held == set()
    assert [s for (s,) in conn.execute("SELECT seq FROM items ORDER BY stored, seq")] == list(range(1, 11))


def test_a_message_under_another_regencys_code_is_refused_and_logged(conn: psycopg.Connection,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    out = nstore.apply_batch(conn, [msg(range(1, 3), regency="64.01")])  # topic says 64.08
    assert out.refused == 1 and out.items == 0
    reason, regency, detail = conn.execute("SELECT reason, regency, detail FROM refusals").fetchone()
    assert (reason, regency) == ("wrong_regency", "64.08") and "64.01" in detail
    assert "regency 64.08" in caplog.text and "claims to be from 64.01" in caplog.text
    assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 0


@pytest.mark.parametrize("payload, why", [
    (b"{not json", "not JSON"),
    (b'[1, 2]', "not a JSON object"),
    (json.dumps({"v": 1, "regency": "64.08", "sent": 1.0, "items": []}).encode(), "field items"),
    (json.dumps({"v": 1, "regency": "64.08", "sent": 1.0, "items": [{"seq": 1, "kind": "bogus", "committed": 1,
                                                                      "body": {}}]}).encode(), "items[0].kind"),
    (json.dumps({"v": 1, "regency": "64.08", "sent": 1.0, "items": [json.loads(item(1)), json.loads(item(3))]}).encode(),
     "does not follow"),
])
def test_a_malformed_message_is_refused_with_the_reason(conn: psycopg.Connection, payload: bytes, why: str) -> None:
    out = nstore.apply_batch(conn, [Incoming(TOPIC, payload, 5.0), msg(range(1, 3))])
    assert out.refused == 1 and out.items == 2  # the good message in the same batch still lands
    reason, regency, detail, raw = conn.execute("SELECT reason, regency, detail, payload FROM refusals").fetchone()
    assert reason == "malformed" and regency == "64.08" and why in detail and bytes(raw) == payload
    assert conn.execute("SELECT refused FROM regencies").fetchone()[0] == 1


def test_an_unknown_topic_is_refused(conn: psycopg.Connection) -> None:
    out = nstore.apply_batch(conn, [msg(range(1, 2), topic="segel/up/65/6408")])
    assert out.refused == 1
    assert conn.execute("SELECT reason, regency FROM refusals").fetchone() == ("topic", None)


def test_alert_lifecycle_and_box_state(conn: psycopg.Connection) -> None:
    raised = {"event": "raised", "alert": {"id": "AL-1", "kind": "seal_unauthorised", "severity": "critical",
                                           "state": "open", "subject": "B1", "box": "B1", "late": 1, "district": "64.08.04"}}
    acked = {"event": "acknowledged", "by": "sari", "alert": {**raised["alert"], "state": "acknowledged", "acked_by": "sari"}}
    def custody(seq: int, finding: str, kind: str | None, t: float, withdrawn: bool = False) -> str:
        return item(seq, "custody", "B1", finding=finding, place="P", place_kind=kind, t=t, counter=seq,
                    key=f"{finding}|{t}", withdrawn=withdrawn)
    items = [
        item(1, "box", "B1", box="B1", tps="T1", district="64.08.04", device="000301"),
        item(2, "alert", "B1", **raised),
        custody(3, "arrived", "ppk", 500.0),
        custody(4, "exit", "ppk", 900.0),
        item(5, "alert", "B1", **acked),
        custody(6, "exit", "ppk", 900.0, withdrawn=True),  # late data: it never left
        item(7, "position", "B1", t=950.0, lat=0.5, lon=117.5),
        custody(8, "seal_unauthorised", None, 960.0),
    ]
    nstore.apply_batch(conn, [Incoming(TOPIC, model.encode("64.08", "Kutai Timur", 1.0, items), 1.0)])
    a = conn.execute("SELECT state, acked_by, late, last_event FROM alerts WHERE id = 'AL-1'").fetchone()
    assert a == ("acknowledged", "sari", True, "acknowledged")
    b = conn.execute("SELECT district, state, seal, lat, fix_t FROM boxes WHERE box = 'B1'").fetchone()
    assert b == ("64.08.04", "ppk", "opened", 0.5, 950.0)
    assert conn.execute("SELECT count(*) FROM positions").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 7  # positions are kept apart


def test_a_bad_item_is_kept_refused_and_does_not_stop_the_sequence(conn: psycopg.Connection) -> None:
    items = [item(1), item(2, "custody", "B1", finding="enter"), item(3)]  # custody without key, t, counter
    out = nstore.apply_batch(conn, [Incoming(TOPIC, model.encode("64.08", "", 1.0, items), 1.0)])
    assert out.items == 3 and applied(conn) == 3
    assert conn.execute("SELECT reason FROM refusals").fetchone()[0] == "bad_item"
    assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 3  # kept as received


def test_checkpoints_are_verified_against_the_regencys_key(conn: psycopg.Connection, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from segel import store
    from segel.custody import checkpoints, ledger
    from segel.national import capture

    r = store.connect(tmp_path / "r.db")
    capture.install(r)
    key = checkpoints.create_key(tmp_path / "signing.key")
    r.execute("BEGIN IMMEDIATE")
    for box in ("B1", "B2"):
        ledger.append(r, box, 100.0, 99.0, "frame", {"lat": 0.5})
    checkpoints.make(r, key, "kutim", 200.0)
    r.execute("COMMIT")
    items = [json.loads(t) for _, t in capture.pending(r, 0, 100)]
    forged = next(i for i in items if i["kind"] == "checkpoint" and i["subject"] == "B2")
    forged["body"]["payload"] = forged["body"]["payload"].replace('"seq":0', '"seq":5')  # edited after signing
    nstore.apply_batch(conn, [Incoming(TOPIC, model.encode("64.08", "", 1.0, [json.dumps(i) for i in items]), 1.0)])
    got = dict(conn.execute("SELECT box, valid FROM checkpoints").fetchall())
    assert got == {"B1": True, "B2": False}
