"""The custody ledger end to end: pairings in the chain, signed checkpoints, bundles, and tampering
in SQLite (naive and with every hash recomputed) named by the verifier."""

from __future__ import annotations

import json
import os
import stat

import pytest
from segel.custody import bundle, checkpoints, ledger
from segel.protocol import SealEvent
from segel.registry import Registry

from tests.rules.world import K, World, wita

DEV = 0x000101


def story(w: World) -> None:
    """Frames, a seal cut and an acknowledged alert: a chain of a dozen entries."""
    t0 = wita("2024-11-24T22:00:00")
    for i in range(4):
        w.send(w.pos_frame(DEV, t0 + 300 * i, K), t0 + 300 * i + 5)
    w.send(w.seal_frame(DEV, t0 + 1500, SealEvent.LOOP_OPEN, K, seq=1), t0 + 1505)
    aid = w.alerts[-1]["id"]
    from segel.custody import actions

    actions.acknowledge(w.conn, aid, "Sari", "police on the way", t0 + 1600)  # writes its ledger entry
    for i in range(3):
        w.send(w.pos_frame(DEV, t0 + 1800 + 300 * i, K), t0 + 1805 + 300 * i)


def signed(w: World, tmp_path, now: float) -> checkpoints.SigningKey:
    key = checkpoints.create_key(tmp_path / "signing.key")
    checkpoints.make(w.conn, key, "test", now)
    return key


def rehash(conn, box: str) -> None:
    """What an attacker holding the database does after editing it: renumber and recompute every hash."""
    rows = conn.execute("SELECT seq, at_ms, device_ms, event, body FROM custody_ledger WHERE box = ? ORDER BY seq",
                        (box,)).fetchall()
    conn.execute("DELETE FROM custody_ledger WHERE box = ?", (box,))
    prev = ledger.GENESIS
    for n, (_s, at, dev, ev, body) in enumerate(rows):
        h = ledger.entry_hash(prev, box, n, at, dev, ev, body)
        conn.execute("INSERT INTO custody_ledger VALUES (?,?,?,?,?,?,?,?)", (box, n, at, dev, ev, body, prev, h))
        prev = h


def verdict(w: World, key: checkpoints.SigningKey) -> bundle.Result:
    data = bundle.dumps(bundle.build(w.conn, "BOX-1", "test"))
    return bundle.verify(data, trusted_keys=[key.public_hex])


def test_pairing_and_unpairing_are_in_the_chain(tmp_path):
    w = World.make(tmp_path)
    reg = Registry(w.conn)
    reg.add_device(0x000202)
    reg.pair("BOX-2", 0x000202, tps="T1", by="Budi")
    reg.pair("BOX-1", 0x000202, force=True, by="Budi")  # moved: BOX-2 loses it, BOX-1's 000101 is replaced
    reg.unpair("BOX-1", by="Sari")
    assert ledger.record_pairings(w.conn) == 5
    assert ledger.record_pairings(w.conn) == 0  # idempotent
    def events(box):
        return [(e["event"], json.loads(e["body"])) for e in ledger.export(w.conn, box)]
    one = events("BOX-1")
    assert [(ev, b["device"], b["by"]) for ev, b in one] == [
        ("paired", "000101", "import boxes.csv"), ("unpaired", "000101", "Budi"), ("paired", "000202", "Budi"),
        ("unpaired", "000202", "Sari")]
    assert one[1][1]["reason"] == "replaced by 000202" and one[2][1]["forced"] is True
    assert one[3][1]["reason"] == "unpaired"
    assert [(ev, b["reason"] if ev == "unpaired" else b["tps"]) for ev, b in events("BOX-2")] == [
        ("paired", "T1"), ("unpaired", "moved to BOX-1")]
    assert ledger.verify(w.conn, "BOX-1").ok and ledger.verify(w.conn, "BOX-2").ok


def test_naive_tampering_is_named(tmp_path):
    w = World.make(tmp_path)
    story(w)
    n = ledger.head(w.conn, "BOX-1")[0]
    assert n >= 12
    snapshot = w.conn.execute("SELECT * FROM custody_ledger").fetchall()

    def reset():
        w.conn.execute("DELETE FROM custody_ledger")
        w.conn.executemany("INSERT INTO custody_ledger VALUES (?,?,?,?,?,?,?,?)", snapshot)
    w.conn.execute("UPDATE custody_ledger SET body = replace(body, 'Sari', 'Budi') WHERE event = 'acknowledged'")
    (seq,) = w.conn.execute("SELECT seq FROM custody_ledger WHERE event = 'acknowledged'").fetchone()
    v = ledger.verify(w.conn, "BOX-1")
    assert (v.ok, v.first_bad) == (False, seq) and f"entry {seq} (acknowledged) was altered" in v.reason
    reset()
    w.conn.execute("DELETE FROM custody_ledger WHERE seq = 5")
    v = ledger.verify(w.conn, "BOX-1")
    assert (v.ok, v.first_bad) == (False, 5) and "entry 5 is missing (removed)" in v.reason
    reset()
    w.conn.execute("UPDATE custody_ledger SET seq = -1 WHERE seq = 6")
    w.conn.execute("UPDATE custody_ledger SET seq = 6 WHERE seq = 7")
    w.conn.execute("UPDATE custody_ledger SET seq = 7 WHERE seq = -1")
    v = ledger.verify(w.conn, "BOX-1")
    assert (v.ok, v.first_bad) == (False, 6) and "entries 6 and 7 were swapped" in v.reason
    reset()
    assert ledger.verify(w.conn, "BOX-1").ok


@pytest.mark.parametrize("tamper, named", [
    ("alter", "entry 7 (frame) was altered"),
    ("remove", "entry 7 was removed"),
    ("swap", "entries 7 and 8 were swapped (reordered)"),
    ("truncate", "were removed: checkpoint"),
])
def test_a_rewritten_chain_no_longer_matches_the_published_checkpoint(tmp_path, tamper, named):
    w = World.make(tmp_path)
    story(w)
    key = signed(w, tmp_path, wita("2024-11-25T01:00:00"))
    assert verdict(w, key).ok
    c = w.conn
    if tamper == "alter":
        c.execute("UPDATE custody_ledger SET body = replace(body, '\"lat\":0.59', '\"lat\":0.69') WHERE seq = 7")
    elif tamper == "remove":
        c.execute("DELETE FROM custody_ledger WHERE seq = 7")
    elif tamper == "swap":
        c.execute("UPDATE custody_ledger SET seq = -1 WHERE seq = 7")
        c.execute("UPDATE custody_ledger SET seq = 7 WHERE seq = 8")
        c.execute("UPDATE custody_ledger SET seq = 8 WHERE seq = -1")
    else:
        c.execute("DELETE FROM custody_ledger WHERE seq >= 9")
    if tamper != "truncate":
        rehash(c, "BOX-1")
        assert ledger.verify(c, "BOX-1").ok  # the chain alone looks fine: only the checkpoint tells
    v = verdict(w, key)
    assert not v.ok
    assert named in v.problems[0].message, v.problems


def test_checkpoints_cover_only_changed_chains_and_verify(tmp_path):
    w = World.make(tmp_path, boxes={"BOX-1": (DEV, "T1"), "BOX-2": (0x000102, "T1")})
    story(w)
    key = checkpoints.create_key(tmp_path / "k" / "signing.key")
    assert stat.S_IMODE(os.stat(key.path).st_mode) == 0o600
    first = checkpoints.make(w.conn, key, "test", 1000.0)
    assert {json.loads(e["payload"])["box"] for e in first} == {"BOX-1", "BOX-2"}
    assert checkpoints.make(w.conn, key, "test", 2000.0) == []  # nothing changed
    t = wita("2024-11-25T03:00:00")
    w.send(w.pos_frame(DEV, t, K), t + 5)
    (again,) = checkpoints.make(w.conn, key, "test", 3000.0)
    doc = json.loads(again["payload"])
    n, head = ledger.head(w.conn, "BOX-1")
    assert (doc["box"], doc["seq"], doc["head"], doc["since"]) == ("BOX-1", n - 1, head, n - 1)
    assert checkpoints.checkpoint_ok(key.public_hex, again)
    forged = again["payload"].replace(head, "0" * 64)
    assert not checkpoints.checkpoint_ok(key.public_hex, {**again, "payload": forged})
    fields, text, sig = checkpoints.parse_qr(checkpoints.qr_text(doc, again["signature"]))
    assert (fields["box"], fields["head"]) == ("BOX-1", head) and checkpoints.signature_ok(key.public_hex, text, sig)
    assert not checkpoints.signature_ok(key.public_hex, text.replace(head, "1" * 64), sig)
    with pytest.raises(checkpoints.SigningKeyError, match="never overwritten"):
        checkpoints.create_key(key.path)


def test_missing_key_marks_checkpoints_unsigned(tmp_path):
    w = World.make(tmp_path)
    story(w)
    (env,) = checkpoints.make(w.conn, None, "test", 1000.0, missing="signing key k not found")
    assert env["signature"] is None and env["missing"] == "signing key k not found"
    res = bundle.verify(bundle.dumps(bundle.build(w.conn, "BOX-1", "test")))
    assert res.ok and res.signed == 0 and res.unsigned == 1
    p = tmp_path / "loose.key"
    checkpoints.create_key(p)
    os.chmod(p, 0o644)
    with pytest.raises(checkpoints.SigningKeyError, match="readable by others"):
        checkpoints.load_key(p)
    with pytest.raises(checkpoints.SigningKeyError, match="not found: create it with `segel keys init"):
        checkpoints.load_key(tmp_path / "nope.key")


def test_a_bundle_altered_by_one_byte_fails(tmp_path):
    w = World.make(tmp_path)
    story(w)
    key = signed(w, tmp_path, 5000.0)
    data = bundle.dumps(bundle.build(w.conn, "BOX-1", "test", key=key))
    assert bundle.verify(data, [key.public_hex]).ok
    step = max(1, len(data) // 400)
    for i in range(0, len(data), step):
        for new in (data[i] ^ 0x01, data[i] ^ 0x20):
            bad = data[:i] + bytes([new]) + data[i + 1:]
            assert not bundle.verify(bad, [key.public_hex]).ok, (i, data[max(0, i - 30):i + 30])
    cut = data[: len(data) // 2]
    res = bundle.verify(cut, [key.public_hex])
    assert not res.ok and "not valid JSON" in res.problems[0].message
    other = checkpoints.create_key(tmp_path / "other.key")
    res = bundle.verify(data, [other.public_hex])
    assert not res.ok and "not by the key you gave" in res.problems[0].message


def test_keys_and_verify_commands(tmp_path):
    """segel keys init/show (owner-only file, never overwritten, PEM), segel ledger export and
    segel verify (bundle and the QR text of a report's checkpoint), as a user runs them."""
    from click.testing import CliRunner
    from segel.cli import main

    run = CliRunner().invoke
    key_file = tmp_path / "k" / "signing.key"
    r = run(main, ["keys", "init", "--key", str(key_file)])
    assert r.exit_code == 0 and "public key:" in r.output, r.output
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    pub = next(line.split()[-1] for line in r.output.splitlines() if line.startswith("public key:"))
    r = run(main, ["keys", "init", "--key", str(key_file)])
    assert r.exit_code == 1 and "never overwritten" in r.output
    r = run(main, ["keys", "show", "--key", str(key_file), "--pem"])
    assert r.output.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "pub.pem").write_text(r.output)
    r = run(main, ["keys", "show", "--key", str(tmp_path / "none.key")])
    assert r.exit_code == 1 and "segel keys init" in r.output

    w = World.make(tmp_path)
    story(w)
    key = checkpoints.load_key(key_file)
    checkpoints.make(w.conn, key, "test", 5000.0)
    db = str(tmp_path / "gateway.db")
    out = tmp_path / "b.json"
    r = run(main, ["ledger", "export", "BOX-1", "--db", db, "--key", str(key_file), "-o", str(out)])
    assert r.exit_code == 0 and "bundle signed" in r.output, r.output
    r = run(main, ["verify", str(out), "--key", str(tmp_path / "pub.pem")])
    assert r.exit_code == 0 and r.output.startswith("SAH\n") and "rantai: utuh" in r.output, r.output  # Bahasa first
    r = run(main, ["ledger", "verify", "BOX-1", "--db", db, "--key", str(key_file), "--lang", "en"])
    assert r.exit_code == 0 and r.output.startswith("VALID"), r.output
    cp = checkpoints.latest(w.conn, "BOX-1")
    qr = checkpoints.qr_text(cp, cp["signature"])
    r = run(main, ["verify", "--qr", qr, "--key", pub, str(out), "--lang", "en"])
    assert r.exit_code == 0 and "VALID checkpoint code" in r.output and "is that head" in r.output, r.output
    r = run(main, ["verify", "--qr", qr.replace(cp["head"], "0" * 64), "--key", pub])
    assert r.exit_code == 1 and r.output.startswith("Kode titik periksa TIDAK SAH") and "tidak asli" in r.output
    r = run(main, ["ledger", "export", "BOX-404", "--db", db])
    assert r.exit_code == 1 and "no ledger entries" in r.output
    r = run(main, ["verify"])
    assert r.exit_code == 2 and "give a BUNDLE" in r.output
