"""Box and district reports and track exports, read back the way a person would: the PDF's text
through pdftotext, its pages rendered with pdftoppm (poppler-utils), the exports parsed as
CSV, JSON and XML. The story is a small election: the box travels warehouse -> PPK -> PPS ->
TPS, its seal is cut at the PPK, an officer signs a receipt, the operator handles the alert."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from segel.cli import main
from segel.custody import actions, checkpoints, receipts
from segel.custody.receipts import Officer
from segel.ids import box_label, fleet_id
from segel.protocol import SealEvent
from segel.report.context import open_custody
from segel.report.pdf import render_box
from segel.report.story import box_story

from tests.rules.world import SECRET, K, S, T1, W, World, wita

DEV = 0x000101


def pdftext(pdf: Path) -> str:
    """The PDF's text in drawing order (a wrapped table cell stays together), white space runs made one space."""
    out = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    return " ".join(out.split())


def journey(tmp: Path) -> tuple[World, checkpoints.SigningKey]:
    w = World.make(tmp)
    stays = [(W, "2024-11-23T06:30:00"), (K, "2024-11-23T15:00:00"), (S, "2024-11-25T15:00:00"),
             (T1, "2024-11-26T23:40:00")]  # the last one after the pps_to_tps window closed at 22:00: late
    for place, when in stays:
        t0 = wita(when)
        for i in range(3):
            w.send(w.pos_frame(DEV, t0 + 300 * i, place), t0 + 300 * i + 5)
        if place == K:
            cut = t0 + 1200
            w.send(w.seal_frame(DEV, cut, SealEvent.LOOP_OPEN, K, seq=1), cut + 5)
            aid = w.alerts[-1]["id"]
            actions.acknowledge(w.conn, aid, "Sari", "PPK chairman called", cut + 600)
            actions.resolve(w.conn, aid, "Sari", "seal replaced before two witnesses", cut + 3600)
            receipts.submit(w.conn, {
                "client_id": "rc-k1", "label": box_label(fleet_id(SECRET), "BOX-1", DEV), "place": "K1",
                "officer": {"name": "Rahmat Hidayat", "role": "Ketua PPK", "id_number": "6408010101800001"},
                "witness": {"name": "Dewi", "role": "Panwascam", "id_number": "1"}, "seals": ["KPU 0001"],
                "condition": "intact", "confirmed_at": (t0 + 700) * 1000}, Officer("ppk"), t0 + 800,
                places=w.judge.index.places, plan=w.judge.plans["BOX-1"], fleet=fleet_id(SECRET))
    key = checkpoints.create_key(tmp / "signing.key")
    checkpoints.make(w.conn, key, "test", wita("2024-11-27T00:00:00"))
    return w, key


def test_box_report_tells_the_story_in_bahasa_and_english(tmp_path):
    w, key = journey(tmp_path)
    c = open_custody(db=tmp_path / "gateway.db", key=tmp_path / "signing.key")
    s = box_story(c, "BOX-1")
    assert [(lr.leg.name, lr.status) for lr in s.legs] == [
        ("warehouse_to_ppk", "on_time"), ("ppk_to_pps", "on_time"), ("pps_to_tps", "late")]
    id_pdf, en_pdf = tmp_path / "box-id.pdf", tmp_path / "box-en.pdf"
    render_box(c, "BOX-1", id_pdf, "id")
    render_box(c, "BOX-1", en_pdf, "en")
    t = pdftext(id_pdf)
    for expected in ("Laporan Rantai Pengawasan Kotak Suara", "BOX-1", "Waktu setempat (WITA)",
                     "gudang ke PPK", "PPS ke TPS", "terlambat", "tepat waktu",  # the legs
                     "23 Nov 2024 15.20", "SEGEL DIBUKA TANPA IZIN",  # the cut, WITA (07:20 UTC)
                     "Rahmat Hidayat", "KPU0001",  # the receipt
                     "Sari", "seal replaced before two witnesses",  # how the alert was handled
                     "Kondisi pelacak", f"mencakup entri 0 sampai {s.entries - 1}", s.head[:40],
                     # what the alert says happened, in words (not the stored English message)
                     "Apa yang terjadi", "Segel dibuka di PPK 1, padahal pembukaan tidak diizinkan di sana pada "
                     "waktu itu (kawat segel terbuka)"):
        assert expected in t, expected
    assert "outside an authorised place" not in t
    assert " ".join(key.public_hex[i:i + 8] for i in range(0, 64, 8)) in t
    e = pdftext(en_pdf)
    for expected in ("Ballot box custody report", "Times are local (WITA)", "warehouse to PPK", "late",
                     "SEAL OPENED WITHOUT AUTHORITY", "covers entries 0 to",
                     "Seal opened at PPK 1, where no opening is authorised at that time (seal wire opened)"):
        assert expected in e, expected
    # every page renders, none of them blank
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(id_pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2 and all(p.stat().st_size > 3000 for p in pages)


def test_cli_reports_exports_and_refusals(tmp_path):
    journey(tmp_path)
    db = str(tmp_path / "gateway.db")
    run = CliRunner().invoke
    r = run(main, ["report", "box", "BOX-1", "--db", db, "-o", str(tmp_path / "b.pdf")])
    assert r.exit_code == 0 and "signed checkpoint" in r.output, r.output
    r = run(main, ["report", "box", "BOX-9", "--db", db])
    assert r.exit_code == 1 and "no box 'BOX-9' in this database" in r.output
    r = run(main, ["report", "district", "K1", "--db", db, "-o", str(tmp_path / "d.pdf"), "--lang", "en"])
    assert r.exit_code == 0 and "1 boxes" in r.output, r.output
    t = pdftext(tmp_path / "d.pdf")
    assert "District custody report" in t and "BOX-1" in t and "seal opened without authority" in t
    assert "Seal opened at PPK 1, where no opening is authorised at that time (seal wire opened)" in t
    r = run(main, ["report", "district", "T1", "--db", db])
    assert r.exit_code == 1 and "'T1' is not a PPK" in r.output
    out = {}
    for fmt in ("csv", "geojson", "gpx", "kml"):
        f = tmp_path / f"track.{fmt}"
        r = run(main, ["report", "track", "BOX-1", "--db", db, "-o", str(f)])
        assert r.exit_code == 0, r.output
        out[fmt] = f.read_text()
    rows = list(csv.DictReader(io.StringIO(out["csv"])))
    assert len(rows) == 12 and rows[0]["device_time_local"].endswith("+08:00") and rows[0]["box"] == "BOX-1"
    gj = json.loads(out["geojson"])
    kinds = [f["properties"]["kind"] for f in gj["features"]]
    assert kinds.count("fix") == 12 and kinds.count("track") == 1 and "seal" in kinds
    ns = {"g": "http://www.topografix.com/GPX/1/1", "k": "http://www.opengis.net/kml/2.2"}
    gpx = ET.fromstring(out["gpx"])
    assert len(gpx.findall(".//g:trkpt", ns)) == 12 and gpx.find(".//g:wpt/g:name", ns).text == "loop_open"
    kml = ET.fromstring(out["kml"])
    assert len(kml.find(".//k:LineString/k:coordinates", ns).text.split()) == 12
    r = run(main, ["report", "track", "BOX-1", "--db", db, "-o", str(tmp_path / "t.txt")])
    assert r.exit_code == 2 and "cannot tell the format" in r.output


@pytest.mark.parametrize("lang", ["id", "en"])
def test_reports_survive_text_outside_latin1_and_a_box_with_nothing(tmp_path, lang):
    """A name the PDF's core fonts cannot show is printed with '?', never a crash; a box that was
    paired but never heard from gets a report that says so."""
    w = World.make(tmp_path, boxes={"BOX-1": (DEV, "T1"), "BOX-2": (0x000102, "T1")})
    t0 = wita("2024-11-25T15:00:00")
    w.send(w.pos_frame(DEV, t0, S), t0 + 5)
    from segel.custody import alerts as al

    al.raise_alert(w.conn, kind="long_stop", subject="BOX-1", key="x", now=t0, device_time=t0, box="BOX-1")
    actions.acknowledge(w.conn, al.listing(w.conn, kind="long_stop")[0]["id"], "Ngô Bảo Châu ✓", "→ 見る", t0 + 60)
    c = open_custody(db=tmp_path / "gateway.db")
    render_box(c, "BOX-1", tmp_path / "a.pdf", lang)
    assert "Ngô B?o Châu ?" in pdftext(tmp_path / "a.pdf")
    render_box(c, "BOX-2", tmp_path / "b.pdf", lang)
    assert "BOX-2" in pdftext(tmp_path / "b.pdf")
