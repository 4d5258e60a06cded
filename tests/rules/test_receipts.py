"""Handover receipts: recorded once, linked to the tracker's arrival (also when the frames come
later), and the alerts for a wrong place, differing seal numbers and no arrival; every bad input
gets its own clear refusal."""

from __future__ import annotations

import json

import pytest
from segel.custody import actions
from segel.custody import alerts as al
from segel.custody import ledger, receipts
from segel.custody.receipts import Officer, ReceiptError
from segel.ids import box_label, fleet_id
from segel.protocol import SealEvent

from tests.rules.world import SECRET, K, S, T1, World, offset, wita

DEV = 0x000101
FLEET = fleet_id(SECRET)
PPK_OFFICER = Officer("ppk-k1", places=("K1",))
DISTRICT = Officer("ppk-admin", districts=("K1",))


def form(client_id: str, place: str, at: float, seals=("KPU 0001", "KPU 0002"), skew: float = 0.0, **extra) -> dict:
    """What the phone page sends: the label it scanned, the form, its own clock (ms)."""
    phone = (at + skew) * 1000
    return {"client_id": client_id, "label": box_label(FLEET, "BOX-1", DEV), "place": place,
            "officer": {"name": "Rahmat", "role": "Ketua PPK", "id_number": "6408010101800001"},
            "witness": {"name": "Dewi", "role": "Panwascam", "id_number": "6408010101850002"},
            "seals": list(seals), "condition": "intact", "confirmed_at": phone, "sent_at": phone, **extra}


def submit(w: World, data: dict, now: float, officer: Officer = DISTRICT, **kw) -> receipts.Outcome:
    return receipts.submit(w.conn, data, officer, now, places=w.judge.index.places, index=w.judge.index,
                           plan=w.judge.plans["BOX-1"], fleet=FLEET, **kw)


def stay(w: World, place: tuple[float, float], t0: int, n: int = 3) -> None:
    for i in range(n):
        w.send(w.pos_frame(DEV, t0 + 300 * i, place), t0 + 300 * i + 5)


def test_a_receipt_is_linked_to_the_arrival_and_recorded_once(tmp_path):
    w = World.make(tmp_path)
    t0 = wita("2024-11-23T15:00:00")
    stay(w, K, t0)
    data = form("phone-1-0001", "K1", t0 + 900, position={"lat": K[0], "lon": K[1], "accuracy_m": 12})
    out = submit(w, data, t0 + 1000, PPK_OFFICER)
    assert not out.duplicate and out.alerts == []
    r = out.receipt
    assert r["state"] == "linked" and r["arrival_t"] == t0 and r["seals"] == ["KPU0001", "KPU0002"]
    assert r["officer"]["user"] == "ppk-k1" and r["witness"]["name"] == "Dewi"
    again = submit(w, data, t0 + 5000, PPK_OFFICER)  # queued twice on the phone: sent again hours later
    assert again.duplicate and again.receipt["id"] == r["id"]
    assert w.conn.execute("SELECT COUNT(*) FROM receipts").fetchone()[0] == 1
    entries = [e for e in ledger.export(w.conn, "BOX-1") if e["event"] == "receipt"]
    assert len(entries) == 1
    body = json.loads(entries[0]["body"])
    assert body["arrival"]["place"] == "K1" and body["officer"]["name"] == "Rahmat"
    with pytest.raises(ReceiptError, match="already used for another receipt") as e:
        submit(w, {**data, "seals": ["KPU 0009"]}, t0 + 6000)
    assert e.value.status == 409
    assert ledger.verify(w.conn, "BOX-1").ok


def test_a_receipt_before_the_frames_is_linked_when_they_arrive(tmp_path):
    w = World.make(tmp_path)
    t0 = wita("2024-11-25T12:00:00")
    out = submit(w, form("phone-1-0002", "S1", t0 + 700), t0 + 800)  # the tracker's frames are still in its flash
    assert out.receipt["state"] == "pending"
    stay(w, S, t0)  # store-and-forward: the stay arrives after the receipt
    w.tick(t0 + 1200)
    r = receipts.get(w.conn, out.receipt["id"])
    assert r is not None and r["state"] == "linked" and r["arrival_t"] == t0
    assert [json.loads(e["body"])["receipt"] for e in ledger.export(w.conn, "BOX-1") if e["event"] == "receipt_arrival"] \
        == [r["id"]]
    assert not [a for a in w.alerts if a["kind"] == "receipt_no_arrival"]


def test_no_arrival_raises_after_the_grace_and_resolves_when_frames_come(tmp_path):
    w = World.make(tmp_path)  # report interval 300 s: silent (and a receipt unmatched) after 900 s
    t0 = wita("2024-11-25T12:00:00")
    out = submit(w, form("phone-1-0003", "S1", t0), t0 + 60)
    w.tick(t0 + 600)
    assert not [a for a in w.alerts if a["kind"] == "receipt_no_arrival"]
    w.tick(t0 + 1000)
    (raised,) = [a for a in w.alerts if a["kind"] == "receipt_no_arrival"]
    assert raised["severity"] == "high" and raised["detail"]["receipt"] == out.receipt["id"]
    from segel import store

    assert store.pending_publications(w.conn) == []  # the judge's timer hands it to the gateway itself
    stay(w, S, t0 - 600)  # the frames were held in a dead zone
    w.tick(t0 + 2000)
    assert al.get(w.conn, raised["id"])["state"] == "resolved"
    assert receipts.get(w.conn, out.receipt["id"])["state"] == "linked"


def test_seal_numbers_that_differ_raise_a_critical_alert_unless_opened_with_authority(tmp_path):
    w = World.make(tmp_path)
    t0 = wita("2024-11-25T12:00:00")
    stay(w, S, t0)
    submit(w, form("r1", "S1", t0 + 600), t0 + 700)
    t1 = wita("2024-11-26T15:00:00")
    stay(w, T1, t1)
    out = submit(w, form("r2", "T1", t1 + 600, seals=("KPU 0001", "KPU 0777")), t1 + 700)
    (a,) = out.alerts
    assert (a["kind"], a["severity"], a["detail"]["missing"], a["detail"]["new"]) == (
        "seal_numbers_differ", "critical", ["KPU0002"], ["KPU0777"])
    # raised in the console's process: queued for the running gateway to publish (MQTT, webhooks)
    from segel import store

    assert [(k, b["id"], b["event"]) for _i, k, b in store.pending_publications(w.conn)] == [("alert", a["id"], "raised")]
    # election day: the KPPS opens the box at its TPS (authorised), counts, seals it with new seals
    t2 = wita("2024-11-27T13:10:00")
    w.send(w.seal_frame(DEV, t2, SealEvent.LOOP_OPEN, T1, seq=1), t2 + 5)
    assert w.alerts[-1]["kind"] == "seal_authorised"
    out = submit(w, form("r3", "T1", t2 + 6 * 3600, seals=("KPU 5001",)), t2 + 6 * 3600 + 60)
    assert out.alerts == []


def test_wrong_place_by_plan_and_by_phone_position(tmp_path):
    w = World.make(tmp_path)
    t0 = wita("2024-11-26T15:00:00")
    out = submit(w, form("r1", "T2", t0), t0 + 60)  # the neighbouring TPS: not on the box's plan
    assert [a["kind"] for a in out.alerts] == ["receipt_wrong_place"]
    assert "not a custody point" in out.alerts[0]["message"]
    actions.resolve(w.conn, out.alerts[0]["id"], "Sari", "the PPS officer signed at the wrong TPS, corrected")
    far = offset(T1, 90, 2000)
    out = submit(w, form("r2", "T1", t0, position={"lat": far[0], "lon": far[1], "accuracy_m": 30}), t0 + 60)
    assert [a["kind"] for a in out.alerts] == ["receipt_wrong_place"] and "m outside T1" in out.alerts[0]["message"]
    halo = offset(T1, 90, 60 + 20)  # beyond the circle, inside its 30 m halo: at the place
    out = submit(w, form("r3", "T1", t0, position={"lat": halo[0], "lon": halo[1], "accuracy_m": 5}), t0 + 60)
    assert out.alerts == []
    near = offset(T1, 90, 60 + 30 + 25)  # 25 m beyond the halo, but the phone says it is only good to 40 m
    out = submit(w, form("r4", "T1", t0, position={"lat": near[0], "lon": near[1], "accuracy_m": 40}), t0 + 60)
    assert out.alerts == []


def test_phone_clock_skew_is_corrected_and_bad_input_refused(tmp_path):
    w = World.make(tmp_path)
    t0 = wita("2024-11-23T15:00:00")
    stay(w, K, t0)
    # the phone's clock is 3 h behind; it confirmed at t0+900 (true time) and sent a day later
    data = form("skew", "K1", t0 + 900, skew=-3 * 3600)
    data["sent_at"] = (t0 + 86400 - 3 * 3600) * 1000
    r = submit(w, data, t0 + 86400).receipt
    assert r["confirmed_at"] == pytest.approx(t0 + 900) and r["clock_offset_s"] == pytest.approx(3 * 3600)
    assert r["state"] == "linked"

    def refused(data: dict, field: str, status: int, match: str, officer: Officer = DISTRICT, **kw) -> None:
        with pytest.raises(ReceiptError, match=match) as e:
            submit(w, data, t0 + 1000, officer, **kw)
        assert (e.value.field, e.value.status) == (field, status)
    base = form("bad", "K1", t0 + 900)
    refused({**base, "label": box_label(FLEET, "BOX-404", DEV)}, "box", 404, "no box BOX-404")
    refused({**base, "label": box_label("0BADF1EE", "BOX-1", DEV)}, "label", 422, "another fleet")
    refused({**base, "label": "SGL-000101"}, "label", 400, "tracker's label")
    refused({**base, "seals": []}, "seals", 400, "seal numbers")
    refused({**base, "officer": {"name": "", "role": "x", "id_number": "1"}}, "officer.name", 400, "missing")
    refused({**base, "condition": "fine"}, "condition", 400, "one of intact")
    refused({**base, "confirmed_at": (t0 - 60 * 86400) * 1000}, "confirmed_at", 400, "check the phone's date")
    refused({**base, "confirmed_at": (t0 + 3600) * 1000}, "confirmed_at", 400, "clock jumped")
    refused(base, "place", 403, "pps-s1 records receipts at S1 only, not at K1", Officer("pps-s1", places=("S1",)))
    refused(base, "photo", 413, "at most 1.5 MB", photo=b"\xff\xd8\xff" + bytes(1_600_000))
    refused(base, "photo", 415, "not an image", photo=b"%PDF-1.4 not a photo")
    assert w.conn.execute("SELECT COUNT(*) FROM receipts").fetchone()[0] == 1  # nothing of the refused ones
    ok = submit(w, form("photo", "K1", t0 + 900), t0 + 1000, photo=b"\xff\xd8\xff\xe0" + bytes(5000))
    assert ok.receipt["photo_sha256"] and w.conn.execute("SELECT mime FROM receipt_photos").fetchone()[0] == "image/jpeg"


def test_a_paired_trackers_label_carries_its_box_for_the_officers_phone(tmp_path):
    """The label sheet: a tracker on a box gets the box code and a QR code of its box label, which
    parses back to fleet, box and tracker; an unpaired tracker keeps its plain SGL-<id> label."""
    import re

    from segel.ids import parse_box_label
    from segel.provision import labels
    from segel.registry import Registry

    from tests.provision.test_labels_pairing import _qr_groups

    w = World.make(tmp_path)
    reg = Registry(w.conn)
    reg.add_device(0x000777)
    devs = [reg.get(DEV), reg.get(0x000777)]
    out = tmp_path / "labels.pdf"
    labels.render(devs, out, compress=False, fleet=FLEET)  # type: ignore[arg-type]
    streams = [s.decode("latin-1") for s in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", out.read_bytes(), re.S)]
    content = "\n".join(s for s in streams if " re f" in s)
    assert "(BOX-1) Tj" in content and "(SGL-000101) Tj" in content
    boxed, plain = _qr_groups(content)
    text = box_label(FLEET, "BOX-1", DEV)
    m = labels.qr_matrix(text)
    assert boxed == {(r, c) for r, row in enumerate(m) for c, v in enumerate(row) if v}
    m = labels.qr_matrix("SGL-000777")
    assert plain == {(r, c) for r, row in enumerate(m) for c, v in enumerate(row) if v}
    assert parse_box_label(text) == (FLEET, "BOX-1", DEV)
