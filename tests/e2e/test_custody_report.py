"""The Kutai Timur rehearsal, scaled down, then what oversight gets from it: the box whose seal was
cut at its PPK two days before the election has a report that shows the cut (read back with
pdftotext), a bundle that `segel verify` finds valid with the rehearsal's public key, checkpoints
that match the append-only file, and a track export."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel.cli import main
from segel.custody import checkpoints
from segel.sim.demo import DemoOptions, run_demo

pytestmark = pytest.mark.slow

CUT_BOX = "64.08.17.2002-002-GUB"  # incidents.toml: unauthorised-seal-cut, 2024-11-24T22:30 WITA


def test_rehearsal_seal_cut_box_gets_a_report_that_shows_it(tmp_path: Path) -> None:
    keep = tmp_path / "rehearsal"
    s = run_demo(DemoOptions(boxes=1, keep=keep, live=False, json_out=True), out=io.StringIO())
    assert s.ok
    db = str(keep / "segel.db")
    run = CliRunner().invoke
    pdf = tmp_path / "cut.pdf"
    r = run(main, ["report", "box", CUT_BOX, "--db", db, "-o", str(pdf)])
    assert r.exit_code == 0 and "(signed checkpoint)" in r.output, r.output
    text = " ".join(subprocess.run(["pdftotext", "-raw", str(pdf), "-"], check=True, capture_output=True,
                                   text=True).stdout.split())
    assert "24 Nov 2024 22.30 kawat segel terbuka 64.08.17 SEGEL DIBUKA TANPA IZIN" in text
    assert "Segel dibuka tanpa izin: 24 Nov 2024 22.30" in text
    assert "PPK Batu Ampar" in text and "tepat waktu" in text and "mencakup entri 0 sampai" in text
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "cut")], check=True)
    assert len(list(tmp_path.glob("cut-*.png"))) >= 2

    key = checkpoints.load_key(keep / "signing.key")
    bundle = tmp_path / "cut.bundle.json"
    r = run(main, ["ledger", "export", CUT_BOX, "--db", db, "--key", str(keep / "signing.key"), "-o", str(bundle)])
    assert r.exit_code == 0 and "bundle signed" in r.output, r.output
    r = run(main, ["verify", str(bundle), "--key", key.public_hex, "--checkpoints", str(keep / "checkpoints.jsonl"),
                   "--lang", "en"])
    assert r.exit_code == 0 and r.output.startswith("VALID"), r.output
    published = [json.loads(x) for x in (keep / "checkpoints.jsonl").read_text().splitlines()]
    assert published and all(checkpoints.checkpoint_ok(key.public_hex, e) for e in published)
    r = run(main, ["report", "track", CUT_BOX, "--db", db, "--format", "gpx"])
    assert r.exit_code == 0 and r.output.count("<trkpt") > 40
