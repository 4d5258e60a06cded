"""segel db stats / prune: bytes per frame, and pruning that keeps judging exact and the ledger whole."""

from __future__ import annotations

import random
from pathlib import Path

from click.testing import CliRunner
from segel import store
from segel.cli import main
from segel.custody import ledger, storage
from segel.custody.judge import CustodyJudge

from tests.rules.oracle_judge import OracleJudge
from tests.rules.test_judge_equivalence import PLANS, SETTINGS, _recs, _snapshot
from tests.rules.test_properties import INDEX


def _judge(conn, j, recs) -> None:
    for r in recs:
        conn.execute("BEGIN")
        j.on_accepted(r, conn)
        conn.execute("COMMIT")


def test_prune_keeps_late_frames_judged_exactly_and_the_ledger_verifiable(tmp_path: Path) -> None:
    rnd = random.Random(3)
    trace = [(0, rnd.randint(300, 900), ("pos", rnd.randrange(0, 17), 0)) for _ in range(160)]
    recs = _recs(trace)
    held = recs[120:130]  # a dead zone's backlog, delivered after the prune
    first = [r for r in recs if r not in held]
    conn = store.connect(tmp_path / "segel.db")
    store.bump(conn, {"accepted": len(recs)})
    new = CustodyJudge(conn, INDEX, PLANS, dict(SETTINGS))
    _judge(conn, new, first)
    before = storage.stats(conn, tmp_path / "segel.db")
    # keep the frames received after the 100th (at least the checkpoint before it)
    cut_at = recs[100].received_at
    res = storage.prune(conn, 1.0, now=cut_at + 86400)
    assert res.frames_removed > 50 and res.devices == 1
    floor = conn.execute("SELECT floor FROM judge_devices").fetchone()[0]
    assert 80 <= floor <= 100 and floor % 16 == 0
    _judge(conn, new, held)
    old_conn = store.connect(":memory:")
    _judge(old_conn, OracleJudge(old_conn, INDEX, PLANS, dict(SETTINGS)), first + held)
    assert _snapshot(conn)[:2] == _snapshot(old_conn)[:2]  # the late frames were judged exactly
    # a frame older than what was kept: recorded in the ledger, not judged
    entries = len(ledger.export(conn, "BOX-1"))
    findings = _snapshot(conn)[0]
    late_old = recs[10]
    conn.execute("DELETE FROM judge_frames WHERE counter = ?", (late_old.counter,))  # (as if never heard)
    _judge(conn, new, [late_old])
    assert _snapshot(conn)[0] == findings
    assert len(ledger.export(conn, "BOX-1")) == entries + 1
    assert ledger.verify(conn, "BOX-1").ok
    after = storage.stats(conn, tmp_path / "segel.db")
    assert after.tables["judge_frames"] < before.tables["judge_frames"]
    assert after.tables["custody_ledger"] >= before.tables["custody_ledger"]  # never pruned


def test_db_stats_and_prune_commands(tmp_path: Path) -> None:
    db = tmp_path / "segel.db"
    conn = store.connect(db)
    store.bump(conn, {"accepted": 40})
    j = CustodyJudge(conn, INDEX, PLANS, dict(SETTINGS))
    _judge(conn, j, _recs([(0, 600, ("pos", 3, 0)) for _ in range(40)]))
    conn.close()
    r = CliRunner().invoke(main, ["db", "stats", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "40 frames accepted" in r.output and "judge_frames" in r.output and "custody_ledger" in r.output
    r = CliRunner().invoke(main, ["db", "prune", "--db", str(db), "--keep-days", "0", "--vacuum"])
    assert r.exit_code == 0, r.output
    assert "removed 31 judged frames of 1 trackers" in r.output and "after:" in r.output
    r = CliRunner().invoke(main, ["db", "prune", "--db", str(tmp_path / "nope.db")])
    assert r.exit_code != 0 and "no gateway database" in r.output
