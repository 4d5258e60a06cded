"""Operator actions (segel.custody.actions): the alert change, its history, the box's ledger entry with
the person's identity, the InfluxDB line and the queued publication, in one transaction or not at all."""

from __future__ import annotations

import json

import pytest
from segel import accounts, store
from segel.custody import actions, ledger
from segel.custody import alerts as al
from segel.influx import outbox
from segel.protocol import SealEvent

from tests.rules.world import K, World, wita

PW = "a good password"


def _alert(tmp_path):  # type: ignore[no-untyped-def]
    w = World.make(tmp_path)
    t0 = wita("2024-11-24T22:00:00")
    w.send(w.seal_frame(0x000101, t0, SealEvent.LOOP_OPEN, K), t0 + 5)
    (row,) = al.listing(w.conn, state="open")
    return w, row


def _counts(conn):  # type: ignore[no-untyped-def]
    return (conn.execute("SELECT COUNT(*) FROM alert_history").fetchone()[0], ledger.verify(conn, "BOX-1").entries,
            outbox.depth(conn), len(store.pending_publications(conn)))


def test_ack_writes_history_ledger_line_and_publication_together(tmp_path) -> None:  # type: ignore[no-untyped-def]
    w, row = _alert(tmp_path)
    before = _counts(w.conn)
    d = actions.acknowledge(w.conn, row["id"], "sari (Sari Dewi)", "polisi menuju lokasi", now=1000.0, via="console")
    assert d["event"] == "acknowledged" and d["acknowledged_by"] == "sari (Sari Dewi)"
    assert _counts(w.conn) == (before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1)
    last = ledger.export(w.conn, "BOX-1")[-1]
    assert last["event"] == "acknowledged"
    assert json.loads(last["body"]) == {"alert": row["id"], "kind": "seal_unauthorised", "by": "sari (Sari Dewi)",
                                        "note": "polisi menuju lokasi", "via": "console"}
    assert ledger.verify(w.conn, "BOX-1").ok
    ((_id, kind, body),) = store.pending_publications(w.conn)
    assert kind == "alert" and body == d
    actions.resolve(w.conn, row["id"], "sari (Sari Dewi)", "segel diganti", now=1100.0)
    assert [b["event"] for _i, _k, b in store.pending_publications(w.conn)] == ["acknowledged", "resolved"]


def test_a_refused_action_writes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    w, row = _alert(tmp_path)
    before = _counts(w.conn)
    with pytest.raises(actions.AlertError, match="no alert 'AL-nope'"):
        actions.acknowledge(w.conn, "AL-nope", "sari")
    with pytest.raises(actions.AlertError, match="the note has 1,048,576 characters; at most 2,000"):
        actions.acknowledge(w.conn, row["id"], "sari", "x" * (1 << 20))
    actions.resolve(w.conn, row["id"], "sari")
    mid = _counts(w.conn)
    with pytest.raises(actions.AlertError, match="only an open alert can be acknowledged"):
        actions.acknowledge(w.conn, row["id"], "sari")
    assert _counts(w.conn) == mid and mid == (before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1)
    assert al.get(w.conn, row["id"])["state"] == "resolved"  # type: ignore[index]


def test_the_actor_role_and_scope_are_checked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    w, row = _alert(tmp_path)
    assert row["district"] == "K1"
    viewer = accounts.add(w.conn, "vera", "viewer", PW)
    outsider = accounts.add(w.conn, "budi", "operator", PW, districts=["K9"])
    local = accounts.add(w.conn, "ani", "operator", PW, districts=["K1"])
    before = _counts(w.conn)
    with pytest.raises(actions.AlertError, match="vera is a viewer: that role cannot acknowledge"):
        actions.acknowledge(w.conn, row["id"], viewer.label, actor=viewer)
    with pytest.raises(actions.AlertError, match="is in district K1, outside budi's districts \\(K9\\)"):
        actions.acknowledge(w.conn, row["id"], outsider.label, actor=outsider)
    assert _counts(w.conn) == before
    assert actions.acknowledge(w.conn, row["id"], local.label, actor=local)["state"] == "acknowledged"
