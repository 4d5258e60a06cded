"""The commands, through click's runner: places, boxes, plan, alerts, replay, bench."""

from __future__ import annotations

import json
import os
from pathlib import Path

from click.testing import CliRunner
from segel.cli import main
from segel.edge.payloads import uplink
from segel.protocol import SealEvent
from segel.recording import recorder as recording

from tests.rules.world import CALENDAR, SECRET, K, World, wita

PLACES = """code,kind,name,parent,lat,lon,radius_m,wkt,width_m,from,to
KPU-X,warehouse,Warehouse,,0.5,117.55,250,,,,
K1,ppk,PPK 1,KPU-X,0.6,117.55,150,,,,
S1,pps,PPS 1,K1,0.65,117.55,100,,,,
T1,tps,TPS 001,S1,0.66,117.55,60,,,,
T2,tps,TPS 002,S1,0.66,117.56,60,,,,
R-WK,corridor,road,,,,,"LINESTRING(117.55 0.5, 117.55 0.6)",400,KPU-X,K1
"""


def run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return r.exit_code, r.output


def setup_files(tmp: Path) -> dict[str, Path]:
    f = {"places": tmp / "places.csv", "boxes": tmp / "boxes.csv", "cal": tmp / "calendar.toml",
         "db": tmp / "segel.db", "secret": tmp / "fleet.key"}
    f["places"].write_text(PLACES)
    f["boxes"].write_text("box,tps,device,contest\nBOX-1,T1,000101,governor\nBOX-2,T1,,regent\n")
    f["cal"].write_text(CALENDAR)
    f["secret"].write_text(SECRET.hex() + "\n")
    os.chmod(f["secret"], 0o600)
    return f


def test_places_import_list_lookup_and_errors(tmp_path):
    f = setup_files(tmp_path)
    code, out = run("places", "import", str(f["places"]), "--db", str(f["db"]))
    assert code == 0 and "6 places imported" in out
    code, out = run("places", "list", "--kind", "tps", "--db", str(f["db"]))
    assert [ln.split()[0] for ln in out.splitlines()] == ["T1", "T2"]
    code, out = run("places", "lookup", "0.66", "117.55", "--db", str(f["db"]))
    assert "inside: S1" not in out and "inside: T1" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("code,kind,name,parent,lat,lon,radius_m\nT9,tps,x,S1,0.6,117.5,-5\nT8,tps,x,NOPE,0.6,117.5,5\n")
    code, out = run("places", "import", str(bad), "--db", str(f["db"]))
    assert code == 1
    assert "bad.csv:2: field radius_m: -5.0 must be more than 0 and at most 100000 metres" in out
    assert "nothing was imported" in out
    code, out = run("places", "list", "--db", str(f["db"]))
    assert "T9" not in out and "T8" not in out


def test_boxes_and_plan(tmp_path):
    f = setup_files(tmp_path)
    run("places", "import", str(f["places"]), "--db", str(f["db"]))
    code, out = run("places", "boxes", str(f["boxes"]), "--db", str(f["db"]))
    assert code == 1 and "boxes.csv:2: field device: 000101 is not registered" in out
    code, out = run("places", "boxes", str(f["boxes"]), "--register", "--assign-devices", "--db", str(f["db"]))
    assert code == 0 and "2 boxes imported" in out
    code, out = run("places", "plan", "BOX-2", "--calendar", str(f["cal"]), "--db", str(f["db"]), "--json")
    plan = json.loads(out)
    assert [lg["leg"] for lg in plan["legs"]] == ["warehouse_to_ppk", "ppk_to_pps", "pps_to_tps"]
    assert plan["legs"][0]["corridors"] == ["R-WK"] and plan["legs"][0]["arrive_by"] == "2024-11-23 23:00"
    assert [s["place"] for s in plan["seal"]] == ["K1", "T1"]


def test_alerts_list_ack_resolve(tmp_path):
    w = World.make(tmp_path)
    t0 = wita("2024-11-24T22:00:00")
    w.send(w.seal_frame(0x000101, t0, SealEvent.LOOP_OPEN, K), t0 + 5)
    w.conn.close()
    db = str(tmp_path / "gateway.db")
    code, out = run("alerts", "list", "--db", db)
    (line,) = [ln for ln in out.splitlines() if "seal_unauthorised" in ln]
    aid = line.split()[0]
    # Bahasa Indonesia and WITA by default: a header, the place's name, the local time
    assert out.splitlines()[0].split()[:4] == ["ID", "Tingkat", "Status", "Jenis"] and "(WITA)" in out.splitlines()[0]
    assert "kritis" in line and "terbuka" in line and "24 Nov 2024 22.00" in line and "PPK 1" in line
    # under each alert what happened, in words: the place by name, the seal event by its label
    lines = out.splitlines()
    said = lines[lines.index(line) + 1]
    assert said.strip() == ("Segel dibuka di PPK 1, padahal pembukaan tidak diizinkan di sana pada waktu itu "
                            "(kawat segel terbuka)") and said.startswith(" " * len(aid))
    assert "outside an authorised place" not in out  # not the stored English message
    code, out = run("alerts", "list", "--db", db, "--language", "en")
    (line,) = [ln for ln in out.splitlines() if "seal_unauthorised" in ln]
    assert out.splitlines()[0].split()[:4] == ["ID", "Severity", "State", "Kind"]
    assert "critical" in line and "open" in line and "24 Nov 2024 22:00" in line
    assert ("Seal opened at PPK 1, where no opening is authorised at that time (seal wire opened)"
            in out.splitlines()[out.splitlines().index(line) + 1])
    code, out = run("alerts", "show", aid, "--db", db)
    assert code == 0 and out.splitlines()[:3] == [
        f"{aid} · kritis · terbuka", "Segel dibuka di tempat yang tidak diizinkan (seal_unauthorised)",
        "Segel dibuka di PPK 1, padahal pembukaan tidak diizinkan di sana pada waktu itu (kawat segel terbuka)"]
    assert "Tempat: PPK 1 (K1)" in out and "Terjadi: 24 Nov 2024 22.00 WITA" in out
    code, out = run("alerts", "ack", aid, "--by", "Sari", "--note", "on it", "--db", db)
    assert code == 0 and f"{aid} acknowledged by Sari" in out
    code, out = run("alerts", "ack", aid, "--by", "Sari", "--db", db)
    assert code == 1 and "only an open alert can be acknowledged" in out
    code, out = run("alerts", "resolve", aid, "--by", "Sari", "--note", "re-sealed", "--db", db)
    assert code == 0
    code, out = run("alerts", "show", aid, "--json", "--db", db)
    d = json.loads(out)
    assert d["state"] == "resolved" and [h["event"] for h in d["history"]] == ["raised", "acknowledged", "resolved"]
    assert d["message"] == "seal loop cut/opened or lid opened outside an authorised place and window"  # machines: English
    code, out = run("alerts", "show", aid, "--db", db, "--language", "en")
    assert "acknowledged  Sari  “on it”" in out and "resolved  Sari  “re-sealed”" in out
    code, out = run("alerts", "list", "--db", db, "--language", "en")
    assert "No alerts." in out
    code, out = run("alerts", "ledger", "BOX-1", "--db", db)
    assert code == 0 and "chain intact" in out


def test_replay_prints_every_alert_as_json(tmp_path):
    f = setup_files(tmp_path)
    w = World.make(tmp_path / "src" if (tmp_path / "src").mkdir() is None else tmp_path)
    t0 = wita("2024-11-24T22:00:00")
    ups = [uplink(t0 + 5, "segel/up/000101", w.pos_frame(0x000101, t0, K)),
           uplink(t0 + 305, "segel/up/000101", w.pos_frame(0x000101, t0 + 300, K)),
           uplink(t0 + 605, "segel/up/000101", w.seal_frame(0x000101, t0 + 600, SealEvent.LOOP_OPEN, K)),
           uplink(t0 + 606, "segel/up/000101", w.seal_frame(0x000101, t0 + 600, SealEvent.LOOP_OPEN, K)[:-1] + b"\x00")]
    rec = tmp_path / "uplinks.jsonl"
    rec.write_text("".join(recording.to_json(u) + "\n" for u in ups))
    code, out = run("replay", str(rec), "--places", str(f["places"]), "--boxes", str(f["boxes"]),
                    "--calendar", str(f["cal"]), "--fleet-secret", str(f["secret"]), "--json", "--tick", "0")
    assert code == 0, out
    alerts = [json.loads(ln) for ln in out.splitlines()]
    assert [(a["kind"], a["severity"], a["box"], a["place"], a["late"], a["state"]) for a in alerts] == [
        ("arrived", "info", "BOX-1", "K1", False, "resolved"),
        ("seal_unauthorised", "critical", "BOX-1", "K1", False, "open"),
        ("forged_frame", "critical", "BOX-1", None, False, "open"),
    ]
    assert alerts[1]["device_time"] == "2024-11-24T14:10:00Z"


def test_bench_places_tiny(tmp_path):
    code, out = run("bench", "places", "--sizes", "300,600", "--lookups", "200", "--brute", "20", "--frames", "20", "--json")
    rows = [json.loads(ln) for ln in out.splitlines()]
    assert [r["places"] for r in rows] == [300, 600]
    assert all(r["lookups_per_s"] > 0 and r["brute_lookups_per_s"] > 0 and r["judge_us_per_frame"] > 0 for r in rows)


def test_every_command_has_help_with_examples():
    for args in (["places", "import"], ["places", "boxes"], ["places", "list"], ["places", "lookup"], ["places", "plan"],
                 ["alerts", "list"], ["alerts", "show"], ["alerts", "ack"], ["alerts", "resolve"], ["alerts", "ledger"],
                 ["replay"], ["bench", "places"]):
        code, out = run(*args, "--help")
        assert code == 0 and "Examples:" in out, args


def test_replay_with_the_registry_of_a_gateway_database(tmp_path):
    f = setup_files(tmp_path)
    w = World.make(tmp_path / "gw" if (tmp_path / "gw").mkdir() is None else tmp_path)
    t0 = wita("2024-11-24T22:00:00")
    ups = [uplink(t0 + 5 + 300 * i, "segel/up/000101", w.pos_frame(0x000101, t0 + 300 * i, K)) for i in range(2)]
    rec = tmp_path / "uplinks.jsonl"
    rec.write_text("".join(recording.to_json(u) + "\n" for u in ups))
    w.conn.close()
    out_db = tmp_path / "replay.db"
    code, out = run("replay", str(rec), "--registry", str(tmp_path / "gw" / "gateway.db"), "--places", str(f["places"]),
                    "--calendar", str(f["cal"]), "--fleet-secret", str(f["secret"]), "--db", str(out_db), "--tick", "0")
    assert code == 0, out
    assert "raised     info     arrived            BOX-1" in out and "1 alert change(s)" in out
    code, out = run("replay", str(rec), "--registry", str(tmp_path / "gw" / "gateway.db"), "--places", str(f["places"]),
                    "--fleet-secret", str(f["secret"]), "--db", str(out_db))
    assert code == 1 and "already exists" in out
