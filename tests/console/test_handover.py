"""The handover pages over HTTP (in process): the app and what makes it installable, the receipt API
for an officer scoped to its places (answers in Bahasa Indonesia, recorded once, refusals named),
sessions and tokens, and a box's receipts and ledger. The browser flow is test_handover_browser.py."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from segel import accounts, store
from segel import config as cfgmod
from segel.console.app import create_app
from segel.handover import pages
from segel.ids import box_label, fleet_id
from tests.console.test_auth_web import PW, login_csrf, page_csrf
from tests.rules.world import SECRET, S, World

DEV = 0x000101
FLEET = fleet_id(SECRET)
T0 = int(time.time()) - 3600  # the box arrived at its PPS an hour ago (the console runs on the real clock)


def handover_world(tmp: Path) -> Path:
    """The rules' small election (BOX-1 bound for T1 via S1), its tracker's stay at S1 recorded, the
    fleet secret beside it, and accounts: an officer at S1, one at K1's district, an operator."""
    w = World.make(tmp)
    t0 = T0
    for i in range(3):
        w.send(w.pos_frame(DEV, t0 + 300 * i, S), t0 + 300 * i + 5)
    accounts.add(w.conn, "pps1", "officer", PW, full_name="Rahmat", places=["S1"])
    accounts.add(w.conn, "ppk1", "officer", PW, districts=["K1"])
    accounts.add(w.conn, "op", "operator", PW)
    w.conn.close()
    fd = os.open(tmp / "fleet.key", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, SECRET.hex().encode())
    os.close(fd)
    return tmp / "gateway.db"


def client(tmp: Path) -> TestClient:
    db = handover_world(tmp)
    cfg = cfgmod.load(None, env={}, overrides={"gateway.db": str(db), "gateway.fleet_secret": str(tmp / "fleet.key")})
    return TestClient(create_app(cfg, [pages.router], discover=False), follow_redirects=False)


def sign_in(c: TestClient, user: str) -> str:
    r = c.post("/login", data={"username": user, "password": PW, "csrf": login_csrf(c), "next": "/handover/"})
    assert r.status_code == 303, r.text
    return page_csrf(c, "/handover/")


def receipt(client_id: str, place: str = "S1", seals: tuple[str, ...] = ("KPU 0001",), **extra: object) -> dict:
    at = (T0 + 1200) * 1000  # confirmed 20 minutes after the box arrived; the phone's clock 3 minutes slow
    return {"client_id": client_id, "label": box_label(FLEET, "BOX-1", DEV), "place": place,
            "officer": {"name": "Rahmat", "role": "Ketua PPS", "id_number": "6408"}, "seals": list(seals),
            "condition": "intact", "confirmed_at": at - 180_000, "sent_at": time.time() * 1000 - 180_000, **extra}


def test_the_app_is_installable_and_speaks_bahasa(tmp_path: Path) -> None:
    with client(tmp_path) as c:
        assert c.get("/handover/").status_code == 303  # signed out: to the login page
        sign_in(c, "pps1")
        page = c.get("/handover/")
        assert page.status_code == 200 and "Berita acara serah terima" in page.text and "Pindai label pada kotak" in page.text
        assert '<option value="S1">' in page.text and 'value="T1"' not in page.text  # only its own custody point
        strings = json.loads(re.search(r'id="handover-strings">(.*?)</script>', page.text, re.S).group(1))  # type: ignore[union-attr]
        assert strings["offline"].startswith("Tanpa sinyal")
        assert "Content-Security-Policy" in page.headers and "script-src 'self'" in page.headers["content-security-policy"]
        man = c.get("/handover/manifest.webmanifest").json()
        assert (man["start_url"], man["display"], man["scope"]) == ("/handover/", "standalone", "/handover/")
        for icon in man["icons"]:
            png = c.get(icon["src"]).content
            w, h = struct.unpack(">II", png[16:24])
            assert png.startswith(b"\x89PNG") and f"{w}x{h}" == icon["sizes"]
        sw = c.get("/handover/sw.js")
        assert sw.status_code == 200 and "text/javascript" in sw.headers["content-type"] and "caches.open" in sw.text
        assert c.get("/static/handover/vendor/jsQR.js").status_code == 200


def test_a_receipt_is_recorded_once_and_its_problems_come_back_translated(tmp_path: Path) -> None:
    with client(tmp_path) as c:
        token = sign_in(c, "pps1")
        post = lambda data, tok=token: c.post("/handover/api/receipts", json=data, headers={"X-CSRF-Token": tok})  # noqa: E731
        r = post(receipt("uuid-1"))
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["receipt"]["state"] == "linked" and d["duplicate"] is False and d["alerts"] == []
        assert d["receipt"]["clock_offset_s"] == pytest.approx(180, abs=5)
        assert d["receipt"]["confirmed_at"] == pytest.approx(T0 + 1200, abs=5)
        again = post(receipt("uuid-1"))
        assert again.json()["duplicate"] is True and again.json()["receipt"]["id"] == d["receipt"]["id"]
        r = post(receipt("uuid-2", place="T1"))
        assert r.status_code == 403 and "hanya mencatat serah terima di S1" in r.json()["error"]
        r = post(receipt("uuid-3", label=box_label("0BADF1EE", "BOX-1", DEV)))
        assert r.status_code == 422 and "milik armada lain" in r.json()["error"] and r.json()["field"] == "label"
        r = post(receipt("uuid-4", seals=("KPU 0009",), confirmed_at=(T0 + 1800) * 1000 - 180_000))  # later, other seals
        assert r.status_code == 200 and [a["title"] for a in r.json()["alerts"]] == ["nomor segel berbeda"]
        assert r.json()["alerts"][0]["message"] == ("Nomor segel berbeda dari berita acara sebelumnya di PPS 1: "
                                                    "hilang KPU0001; baru KPU0009")
        assert post(receipt("uuid-5"), tok="forged").status_code == 403
        assert c.post("/handover/api/receipts", content=b"{not json", headers={"X-CSRF-Token": token,
                      "content-type": "application/json"}).status_code == 400
        photo = b"\xff\xd8\xff\xe0" + bytes(4000)
        r = c.post("/handover/api/receipts", data={"receipt": json.dumps(receipt("uuid-6"))},
                   files={"photo": ("p.jpg", photo, "image/jpeg")}, headers={"X-CSRF-Token": token})
        assert r.status_code == 200, r.text
        conn = store.connect(tmp_path / "gateway.db")
        assert conn.execute("SELECT COUNT(*) FROM receipts").fetchone()[0] == 3
        sha, = conn.execute("SELECT photo_sha256 FROM receipts WHERE client_id = 'uuid-6'").fetchone()
        assert sha == hashlib.sha256(photo).hexdigest()
        conn.execute("DELETE FROM user_sessions")  # the session ends (or the cookie was forged)
        conn.close()
        r = post(receipt("uuid-7"))
        assert r.status_code == 401 and "Sesi Anda telah berakhir" in r.json()["error"]


def test_a_district_officer_and_the_box_page(tmp_path: Path) -> None:
    with client(tmp_path) as c:
        token = sign_in(c, "ppk1")
        assert 'value="T1"' in c.get("/handover/").text  # every custody point of its district
        r = c.post("/handover/api/receipts", json=receipt("d-1"), headers={"X-CSRF-Token": token})
        assert r.status_code == 200 and r.json()["ledger_seq"] is not None
        box = c.get("/handover/box/BOX-1")
        assert box.status_code == 200 and "Rahmat (Ketua PPS)" in box.text and "KPU0001" in box.text
        assert "berita acara serah terima" in box.text and "RC-" in box.text
        assert c.get("/handover/box/NOPE").status_code == 404
    with client(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path) as c2:
        sign_in(c2, "op")
        assert c2.get("/handover/").status_code == 403  # an operator does not confirm handovers


def test_the_bundled_qr_reader_is_the_one_recorded() -> None:
    vendor = Path(pages.STATIC) / "vendor"
    want = re.search(r"`jsQR.js` \| .*? \| `([0-9a-f]{64})` \|", (vendor / "README.md").read_text()).group(1)  # type: ignore[union-attr]
    assert hashlib.sha256((vendor / "jsQR.js").read_bytes()).hexdigest() == want
    assert "Apache License" in (vendor / "jsQR.LICENSE").read_text()
