"""Signed ledger checkpoints from the running gateway: published on a retained MQTT topic, to a
signed webhook and an append-only file; a missing key leaves the gateway running with checkpoints
marked missing; a chain rewritten in SQLite after publication fails `segel verify`, naming the
entry. Real Mosquitto, real HTTP server, the real CLI."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path

import paho.mqtt.client as paho
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion
from segel import protocol
from segel.cli import main
from segel.custody import checkpoints, ledger
from segel.edge import topics
from segel.ids import device_hex
from segel.service.assemble import assemble
from segel.service.gateway import Gateway

from tests import servers
from tests.gateway import gwtest
from tests.gateway.test_service import CUT_AT, SECRET, TPS, Hook, _config, webhook  # noqa: F401 (fixture)

BOX = f"{TPS}-GUB"


def _retained(port: int, topic: str, timeout: float = 10.0) -> dict:
    """What a late subscriber (oversight's archiver) gets on `topic`: the retained message."""
    got: list[bytes] = []
    ev = threading.Event()
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="oversight")

    def on_message(_c, _u, m):  # type: ignore[no-untyped-def]
        got.append(m.payload)
        ev.set()
    c.on_message = on_message
    c.on_connect = lambda cl, u, f, r, p: cl.subscribe(topic, 1)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        assert ev.wait(timeout), f"no retained message on {topic}"
    finally:
        c.loop_stop()
        c.disconnect()
    return json.loads(got[-1])


def _send_cut(fleet: gwtest.Fleet, port: int, counters: range = range(1, 4)) -> None:
    """Seal cuts at the warehouse, one per counter, ten minutes apart."""
    keys = fleet.keyring.keys_for(0x101)
    assert keys is not None
    pub = gwtest.Publisher(port)
    try:
        for c in counters:
            seal = protocol.Seal(protocol.SealEvent.LOOP_OPEN, c, protocol.Flag.LOOP_OPEN | protocol.Flag.TAMPER,
                                 0.5, 117.55)
            pub.publish(topics.tracker_up(device_hex(0x101)), protocol.encode(keys, 0x101, c, CUT_AT + 600 * c, seal))
    finally:
        pub.close()


def test_checkpoints_are_signed_published_and_catch_a_rewrite(tmp_path: Path, mosquitto: servers.Server,
                                                              webhook: str) -> None:  # noqa: F811
    key = checkpoints.create_key(tmp_path / "signing.key")
    cfg_path, fleet = _config(tmp_path, mosquitto.port, webhook,
                              'signing_key = "signing.key"\ncheckpoint_interval_s = 1\n'
                              'checkpoint_file = "published/checkpoints.jsonl"\n')
    cfg = gwtest.load(cfg_path)
    parts = assemble(cfg)
    gw = Gateway(cfg, judges=parts.judges, on_alerts=parts.on_alerts).start()
    try:
        _send_cut(fleet, mosquitto.port)
        conn = sqlite3.connect(tmp_path / "segel.db")
        gwtest.wait(lambda: conn.execute("SELECT COUNT(*) FROM custody_ledger WHERE box = ? AND event = 'frame'",
                                         (BOX,)).fetchone()[0] == 3, what="three frames in the ledger")
        n, head = ledger.head(conn, BOX)
        gwtest.wait(lambda: (checkpoints.latest(conn, BOX) or {}).get("seq", -1) >= n - 1, what="a checkpoint of the head")
        env = _retained(mosquitto.port, topics.checkpoint(BOX))
        doc = json.loads(env["payload"])
        assert doc["box"] == BOX and doc["seq"] >= n - 1 and doc["key"] == key.key_id
        assert checkpoints.checkpoint_ok(key.public_hex, env)
        gwtest.wait(lambda: any(d.get("schema") == "segel.checkpoints/1" for d, _ in Hook.got), what="webhook")
        hooked = [(d, ok) for d, ok in Hook.got if d.get("schema") == "segel.checkpoints/1"]
        assert all(ok for _, ok in hooked)
        assert any(json.loads(e["payload"])["box"] == BOX for d, _ in hooked for e in d["checkpoints"])
    finally:
        gw.stop()
        parts.close()
    published = tmp_path / "published" / "checkpoints.jsonl"
    lines = [json.loads(x) for x in published.read_text().splitlines()]
    assert all(checkpoints.checkpoint_ok(key.public_hex, e) for e in lines)

    # Someone holding the database rewrites the box's history: deletes the second frame and
    # recomputes every hash. The chain alone is consistent again; the published checkpoints are not.
    c = sqlite3.connect(tmp_path / "segel.db")
    victim, = c.execute("SELECT seq FROM custody_ledger WHERE box = ? AND event = 'frame' ORDER BY seq LIMIT 1 OFFSET 1",
                        (BOX,)).fetchone()
    c.execute("DELETE FROM custody_ledger WHERE box = ? AND seq = ?", (BOX, victim))
    rows = c.execute("SELECT at_ms, device_ms, event, body FROM custody_ledger WHERE box = ? ORDER BY seq", (BOX,)).fetchall()
    c.execute("DELETE FROM custody_ledger WHERE box = ?", (BOX,))
    c.execute("DELETE FROM ledger_checkpoints WHERE box = ?", (BOX,))  # and hides the checkpoints it kept
    prev = ledger.GENESIS
    for s, (at, dev, ev, body) in enumerate(rows):
        h = ledger.entry_hash(prev, BOX, s, at, dev, ev, body)
        c.execute("INSERT INTO custody_ledger VALUES (?,?,?,?,?,?,?,?)", (BOX, s, at, dev, ev, body, prev, h))
        prev = h
    c.commit()
    c.close()
    bundle_file = tmp_path / "box.bundle.json"
    r = CliRunner().invoke(main, ["ledger", "export", BOX, "--config", str(cfg_path), "-o", str(bundle_file)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["verify", str(bundle_file), "--key", key.public_hex, "--lang", "en"])
    assert r.exit_code == 3 and "NOT SIGNED" in r.output  # its own checkpoints are gone
    r = CliRunner().invoke(main, ["verify", str(bundle_file), "--key", key.public_hex, "--checkpoints", str(published),
                                  "--lang", "en"])
    assert r.exit_code == 1, r.output
    assert r.output.startswith(f"INVALID: entry {victim} was removed"), r.output
    r = CliRunner().invoke(main, ["verify", str(bundle_file), "--key", key.public_hex, "--checkpoints", str(published)])
    assert r.exit_code == 1 and r.output.startswith(f"TIDAK SAH: entri {victim} dihapus"), r.output


def test_missing_key_keeps_the_gateway_running_and_marks_checkpoints(tmp_path: Path, mosquitto: servers.Server,
                                                                     webhook: str, caplog) -> None:  # noqa: F811
    cfg_path, fleet = _config(tmp_path, mosquitto.port, webhook,
                              'signing_key = "nowhere/signing.key"\ncheckpoint_interval_s = 1\n')
    cfg = gwtest.load(cfg_path)
    parts = assemble(cfg)
    with caplog.at_level(logging.ERROR, logger="segel.service.checkpointer"):
        gw = Gateway(cfg, judges=parts.judges, on_alerts=parts.on_alerts).start()
    try:
        assert any("UNSIGNED" in r.message and "not found" in r.message for r in caplog.records)
        _send_cut(fleet, mosquitto.port, range(1, 2))
        conn = sqlite3.connect(tmp_path / "segel.db")
        gwtest.wait(lambda: gw.snapshot().accepted == 1, what="the frame accepted: ingest goes on")
        gwtest.wait(lambda: (checkpoints.latest(conn, BOX) or {}).get("seq", -1) >= ledger.head(conn, BOX)[0] - 1,
                    what="an unsigned checkpoint of the head")
        cp = checkpoints.latest(conn, BOX)
        assert cp is not None and cp["signature"] is None and "not found" in cp["missing"]
        # the key appears later: the next round signs
        (tmp_path / "nowhere").mkdir()
        key = checkpoints.create_key(tmp_path / "nowhere" / "signing.key")
        _send_cut(fleet, mosquitto.port, range(9, 10))
        gwtest.wait(lambda: (checkpoints.latest(conn, BOX) or {}).get("signature") is not None, what="signed again")
        cp = checkpoints.latest(conn, BOX)
        assert cp is not None and cp["key"] == key.key_id
        env = _retained(mosquitto.port, topics.checkpoint(BOX))
        assert env["signature"] and json.loads(env["payload"])["seq"] == cp["seq"]
    finally:
        gw.stop()
        parts.close()
