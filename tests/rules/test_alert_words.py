"""Every alert is worded in its reader's language (segel.custody.display.describe): every kind has a
label and a template, the templates are filled from what the rules engine really stores, times are
in the reader's zone, places by name, seal events and legs by their labels."""

from __future__ import annotations

import json

import pytest
from segel import i18n
from segel.custody import alerts as al
from segel.custody import display, receipts
from segel.custody.receipts import Officer
from segel.ids import box_label, fleet_id
from segel.messages import Notice
from segel.protocol import SealEvent

from tests.rules.world import SECRET, K, World, wita

ID, EN = i18n.translator("id", "Asia/Makassar"), i18n.translator("en", "Asia/Makassar")
NAMES = {"K1": "PPK Batu Ampar", "T1": "TPS 001 Mugi Rahayu", "T2": "TPS 002 Mugi Rahayu", "S1": "PPS Mugi Rahayu"}


def missing_words(kinds: dict[str, al.Kind]) -> list[str]:
    """What a kind lacks to be shown to people: a label, templates, a last template that needs nothing
    the detail may lack; templates that fill a field they do not ask for, or one nothing provides."""
    known = set(display.facts(EN, {"kind": "x"}))
    out = []
    for kind in kinds:
        ways = display.TEMPLATES.get(kind, ())
        if kind not in display.KIND_LABELS:
            out.append(f"{kind}: no label in segel.custody.display.KIND_LABELS")
        if not ways:
            out.append(f"{kind}: no template in segel.custody.display.TEMPLATES")
        elif ways[-1].needs:
            out.append(f"{kind}: the last template needs {ways[-1].needs}; it must need nothing")
        for w in ways:
            if not display.fields(w.text) <= set(w.needs):
                out.append(f"{kind}: {w.text!r} fills {display.fields(w.text) - set(w.needs)} without needing them")
            if not set(w.needs) <= known:
                out.append(f"{kind}: {w.text!r} needs {set(w.needs) - known}, which facts() never gives")
    return out


def test_every_kind_has_a_label_and_a_template() -> None:
    assert not missing_words(al.KINDS), "\n".join(missing_words(al.KINDS))


def test_a_new_kind_without_words_is_caught() -> None:
    """The check is not vacuous: a kind added to KINDS without words fails it."""
    kinds = {**al.KINDS, "box_on_fire": al.Kind("box_on_fire", al.CRITICAL, "the box is burning")}
    assert missing_words(kinds) == ["box_on_fire: no label in segel.custody.display.KIND_LABELS",
                                    "box_on_fire: no template in segel.custody.display.TEMPLATES"]


def test_every_seal_event_has_a_label() -> None:
    assert {e.name.lower() for e in SealEvent} <= set(display.SEAL_EVENT_LABELS)


@pytest.mark.parametrize("t", [ID, EN], ids=["id", "en"])
def test_every_kind_reads_even_with_an_empty_detail(t: i18n.Translator) -> None:
    """A row with nothing but its kind (an old row, a rule that stored less) still gets a sentence."""
    for kind, k in al.KINDS.items():
        text = display.describe(t, {"kind": kind, "detail": "{}", "message": k.doc})
        assert text and "{" not in text and text != k.doc, kind


@pytest.mark.parametrize("junk", [[1, 2], {"a": 1}, "", 12.5, True, "not a date"])
def test_odd_detail_values_never_break_the_wording(junk: object) -> None:
    """A detail from an older or a foreign gateway (national view) with values of unexpected types
    is shown as well as it can be: never an exception, never a placeholder left in."""
    keys = ("event", "leg", "own_tps", "tps", "previous_place", "minutes", "last_heard", "battery_mv", "why", "left",
            "count", "window_s", "distance_m", "bridge", "via", "missing", "new", "plan_points", "receipt")
    for kind in al.KINDS:
        for t in (ID, EN):
            row = {"kind": kind, "place": junk, "device": junk, "device_time": junk, "raised_at": junk,
                   "detail": json.dumps({k: junk for k in keys})}
            text = display.describe(t, row, NAMES)
            assert isinstance(text, str) and text and "{" not in text.replace("{'a': 1}", ""), (kind, junk, text)
    assert display.place_codes([{"kind": "x", "detail": {"plan_points": 5, "own_tps": ["T1"]}}]) == set()


def test_a_kind_without_a_template_shows_its_stored_message() -> None:
    assert display.describe(ID, {"kind": "from_a_newer_gateway", "message": "as stored"}) == "as stored"


def world_alerts(tmp_path) -> tuple[World, dict[str, dict]]:  # type: ignore[no-untyped-def]
    """Alerts made by the real judge, pipeline notices and receipts, by kind (the database rows)."""
    w = World.make(tmp_path)
    dev = 0x000101
    t0 = wita("2024-11-24T22:00:00")
    w.send(w.pos_frame(dev, t0, K), t0 + 5)
    w.send(w.seal_frame(dev, t0 + 60, SealEvent.LOOP_OPEN, K), t0 + 65)
    w.send(w.status_frame(dev, t0 + 120, 3300), t0 + 125)
    forged = bytearray(w.pos_frame(dev, t0 + 180, K))
    forged[-1] ^= 1
    w.send(bytes(forged), t0 + 185)
    w.judge.on_notice(Notice("bad_mac_flood", t0 + 200, None, "kutim-1", {"count": 24, "window_s": 60.0}), w.conn)
    w.judge.on_notice(Notice("downlink_counters_low", t0 + 210, dev, None, {"down_counter": 65000, "left": 535}), w.conn)
    w.tick(t0 + 2 * 3600)  # silent: nothing heard for two hours
    w.tick(wita("2024-11-25T22:00:00"))  # the legs to the PPK and the PPS closed before it got there
    receipts.submit(w.conn, {
        "client_id": "rc-1", "label": box_label(fleet_id(SECRET), "BOX-1", dev), "place": "K1",
        "officer": {"name": "Rahmat", "role": "Ketua PPK", "id_number": "1"}, "seals": ["KPU 0001"],
        "condition": "intact", "confirmed_at": (t0 + 3 * 3600) * 1000}, Officer("ppk"), t0 + 3 * 3600,
        places=w.judge.index.places, plan=w.judge.plans["BOX-1"], fleet=fleet_id(SECRET))
    receipts.submit(w.conn, {
        "client_id": "rc-2", "label": box_label(fleet_id(SECRET), "BOX-1", dev), "place": "K1",
        "officer": {"name": "Rahmat", "role": "Ketua PPK", "id_number": "1"}, "seals": ["KPU 0009"],
        "condition": "intact", "confirmed_at": (t0 + 4 * 3600) * 1000}, Officer("ppk"), t0 + 4 * 3600,
        places=w.judge.index.places, plan=w.judge.plans["BOX-1"], fleet=fleet_id(SECRET))
    rows = {r["kind"]: r for r in al.listing(w.conn, limit=100)}
    return w, rows


def test_what_the_engine_stores_is_worded_in_bahasa_and_english(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _w, rows = world_alerts(tmp_path)
    expect = {
        "seal_unauthorised": (
            "Segel dibuka di PPK Batu Ampar, padahal pembukaan tidak diizinkan di sana pada waktu itu "
            "(kawat segel terbuka)",
            "Seal opened at PPK Batu Ampar, where no opening is authorised at that time (seal wire opened)"),
        # the leg closed 23 Nov 23:00 WITA (15:00 UTC): the reader's zone, the leg and the place by name
        "behind_schedule": (
            "Belum tiba di PPK Batu Ampar saat batas waktu tahap gudang ke PPK berakhir (23 Nov 2024 23.00 WITA)",
            "Not at PPK Batu Ampar when the leg warehouse to PPK closed (23 Nov 2024 23:00 WITA)"),
        "silent": ("Tidak terdengar sejak 24 Nov 2024 22.02 WITA (117 menit tanpa frame)",
                   "Not heard since 24 Nov 2024 22:02 WITA (117 minutes without a frame)"),
        "low_battery": ("Baterai tinggal 3,30 V", "Battery at 3.30 V"),
        "forged_frame": ("Frame atas nama pelacak 000101 gagal pemeriksaan MAC: palsu atau rusak",
                         "A frame under tracker 000101's id failed its MAC check: forged or corrupted"),
        "bad_mac_flood": (
            "24 frame dengan MAC salah lewat bridge kutim-1 dalam 60 detik: ada yang mengirim frame palsu",
            "24 frames with a bad MAC through bridge kutim-1 within 60 s: someone is sending forged frames"),
        "downlink_counters_low": (
            "Penghitung downlink pelacak 000101 tinggal 535: ganti kuncinya sebelum konfirmasi berhenti",
            "Tracker 000101 has 535 downlink counters left: re-key it before its acknowledgements stop"),
        "seal_numbers_differ": (
            "Nomor segel berbeda dari berita acara sebelumnya di PPK Batu Ampar: hilang KPU0001; baru KPU0009",
            "Seal numbers differ from the previous receipt at PPK Batu Ampar: missing KPU0001; new KPU0009"),
    }
    for kind, (id_text, en_text) in expect.items():
        assert kind in rows, f"the world raised no {kind}: {sorted(rows)}"
        assert display.describe(ID, rows[kind], NAMES) == id_text
        assert display.describe(EN, rows[kind], NAMES) == en_text
    # the published JSON (what email and chat get) reads the same as the row
    for kind in expect:
        assert display.describe(ID, al.to_json(rows[kind], "raised"), NAMES) == expect[kind][0]
    # without the places, codes; the machine fields keep the stored English message
    assert display.describe(EN, rows["seal_unauthorised"]).startswith("Seal opened at K1, where")
    assert rows["silent"]["message"].startswith("no frame for 117 min")
    assert rows["behind_schedule"]["message"] == "not at K1 when leg warehouse_to_ppk closed (2024-11-23T15:00:00Z)"


def test_unknown_detail_values_are_shown_as_they_are() -> None:
    row = {"kind": "seal_unauthorised", "place": "K9", "detail": json.dumps({"event": "unknown_12", "seq": 3})}
    assert display.describe(EN, row, NAMES) == "Seal opened at K9, where no opening is authorised at that time (unknown_12)"
    row = {"kind": "behind_schedule", "place": "K1", "device_time": float(wita("2024-11-23T23:00:00")),
           "detail": json.dumps({"leg": "by_boat", "to": "K1"})}
    assert display.describe(ID, row, NAMES) == ("Belum tiba di PPK Batu Ampar saat batas waktu tahap by_boat berakhir "
                                                "(23 Nov 2024 23.00 WITA)")


def test_a_report_zone_of_a_calendar_is_named_as_the_calendar_names_it() -> None:
    import datetime as dt

    t = i18n.translator("id", dt.timezone(dt.timedelta(hours=8), "WITA"))
    assert t.datetime(wita("2024-11-23T23:00:00")) == "23 Nov 2024 23.00 WITA"
    t = i18n.translator("en", dt.timezone(dt.timedelta(hours=7)))
    assert t.datetime(wita("2024-11-23T23:00:00")) == "23 Nov 2024 22:00 UTC+07:00"
