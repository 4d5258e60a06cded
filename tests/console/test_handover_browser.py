"""The receipt flow in real headless Chromium (Debian's) at a phone's viewport: sign in, the app
installs its service worker, a photo of the box's QR label is fed to the page, the form is filled,
the phone goes offline and the console itself goes away, the receipt waits in the phone's queue
(and survives a reload served by the service worker), the console comes back and the phone online,
the receipt is sent and recorded once, linked to the tracker's arrival; a second receipt with other
seal numbers comes back with its alert. Screenshots in tests/artifacts/handover/ (and tmp_path)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest
import qrcode

from segel import config as cfgmod
from segel.console.server import ConsoleServer
from segel.ports import free_port
from segel.ids import box_label
from tests.console.test_handover import DEV, FLEET, PW, handover_world
from tests.rules.world import S, T1

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "handover"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is missing")]


def label_photo(path: Path, text: str) -> Path:
    img = qrcode.make(text, box_size=8, border=6)
    img.save(path)
    return path


def shot(page, tmp: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    page.screenshot(path=str(tmp / name), full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp / name, ARTIFACTS / name)


def test_receipt_offline_then_sent_once_in_chromium_on_a_phone(tmp_path: Path) -> None:
    db = handover_world(tmp_path)  # the box reached its PPS an hour ago
    _arrive_at_tps(tmp_path, int(time.time()) - 1200)  # and its TPS 20 minutes ago
    port = free_port()
    cfg = cfgmod.load(None, env={}, overrides={"gateway.db": str(db), "gateway.fleet_secret": str(tmp_path / "fleet.key")})
    server = ConsoleServer(cfg, port=port, host="127.0.0.1").start()
    base = server.url
    photo = label_photo(tmp_path / "label.png", box_label(FLEET, "BOX-1", DEV))
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage", "--disable-gpu"])
        ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True, locale="id-ID", permissions=["geolocation"],
                                  geolocation={"latitude": S[0], "longitude": S[1], "accuracy": 15})
        page = ctx.new_page()
        logs: list[str] = []
        page.on("console", lambda m: logs.append(m.text))
        page.on("requestfailed", lambda r: logs.append(f"failed {r.url} {r.failure}"))
        page.on("response", lambda r: logs.append(f"{r.status} {r.url}") if "/api/" in r.url else None)
        try:
            page.goto(base + "login?next=/handover/")
            page.fill("input[name=username]", "ppk1")
            page.fill("input[name=password]", PW)
            page.click("form.login button.primary")
            page.wait_for_url("**/handover/")
            page.evaluate("navigator.serviceWorker.ready.then(() => true)")  # installed, its cache filled
            page.reload()  # now the service worker controls the page
            page.wait_for_function("() => navigator.serviceWorker.controller !== null")
            assert "Tersambung" in page.inner_text("#net")

            # the box: a photo of its label, decoded on the phone
            page.set_input_files("#scan", str(photo))
            page.wait_for_selector("#scanned.ok")
            assert page.inner_text("#scanned") == "Kotak BOX-1, pelacak 000101"
            assert page.input_value("#box") == "BOX-1"
            page.select_option("#place", "S1")
            page.fill("#officer-name", "Rahmat Hidayat")
            page.fill("#officer-role", "Ketua PPS")
            page.fill("#officer-id", "6408010101800001")
            page.fill("#witness-name", "Dewi")
            page.fill("#witness-role", "Panwascam")
            page.fill("#seals", "KPU 0001\nKPU 0002")
            shot(page, tmp_path, "1-form.png")

            # no signal, and the console is gone too: the receipt waits on the phone
            ctx.set_offline(True)
            server.stop()
            page.click("#confirm")
            page.wait_for_selector("li.rec.queued")
            assert "Tanpa sinyal" in page.inner_text("#net") and "menunggu dikirim" in page.inner_text("#queue")
            shot(page, tmp_path, "2-queued-offline.png")
            page.reload()  # served by the service worker from its cache
            page.wait_for_selector("li.rec.queued")
            assert page.inner_text("h1") == "Berita acara serah terima"
            shot(page, tmp_path, "3-reloaded-offline.png")

            # back: the console restarts, the phone gets a signal, the queue is sent
            server = ConsoleServer(cfg, port=port, host="127.0.0.1").start()
            ctx.set_offline(False)
            try:
                page.wait_for_selector("li.rec.sent", timeout=30000)
            except Exception:
                shot(page, tmp_path, "debug.png")
                raise AssertionError("\n".join(logs[-30:]) + "\n" + page.inner_text("#queue") + page.inner_text("#net"))
            text = page.inner_text("#queue")
            assert "tercatat" in text and "kedatangan menurut pelacak tercatat" in text, text
            page.evaluate("window.SegelHandover.flush()")  # a second send changes nothing
            shot(page, tmp_path, "4-sent.png")

            # the next handover, at the TPS, with other seal numbers: sent at once, with its alert
            ctx.set_geolocation({"latitude": T1[0], "longitude": T1[1], "accuracy": 10})  # at the TPS now
            page.set_input_files("#scan", str(photo))
            page.wait_for_selector("#scanned.ok")
            page.select_option("#place", "T1")
            page.fill("#seals", "KPU 0001\nKPU 0999")
            page.click("#confirm")
            page.wait_for_function("() => document.querySelectorAll('li.rec.sent').length === 2", timeout=30000)
            alert = page.inner_text("#queue li.rec.sent >> nth=0")  # the newest first
            assert ("Peringatan: nomor segel berbeda. Nomor segel berbeda dari berita acara sebelumnya di PPS 1: "
                    "hilang KPU0002; baru KPU0999") in alert
            assert "tempat yang salah" not in alert, alert
            shot(page, tmp_path, "5-seal-alert.png")

            page.goto(base + "handover/box/BOX-1")
            assert "Rahmat Hidayat (Ketua PPS)" in page.inner_text("main")
            shot(page, tmp_path, "6-box-ledger.png")
        finally:
            browser.close()
            server.stop()
    c = sqlite3.connect(db)
    assert c.execute("SELECT COUNT(*) FROM receipts").fetchone()[0] == 2
    states = dict(c.execute("SELECT place, state FROM receipts").fetchall())
    assert states == {"S1": "linked", "T1": "linked"}
    bodies = [b for (b,) in c.execute("SELECT body FROM custody_ledger WHERE box = 'BOX-1' AND event = 'receipt'")]
    assert len(bodies) == 2 and '"name":"Rahmat Hidayat"' in bodies[0] and '"lat":0.65' in bodies[0]
    assert c.execute("SELECT COUNT(*) FROM alerts WHERE kind = 'seal_numbers_differ'").fetchone()[0] == 1


def _arrive_at_tps(tmp: Path, t0: int) -> None:
    """The tracker's stay at T1 (frames through the real pipeline, as in handover_world)."""
    from segel import store
    from segel.custody import build_judge
    from segel.edge.payloads import uplink
    from segel.ingest.pipeline import Pipeline
    from segel.registry import KeyRing, Registry
    from tests.rules.world import SECRET

    conn = store.connect(tmp / "gateway.db")
    judge = build_judge(conn)
    judge.plans = {}  # the stored calendar is not handed to build_judge here; plans are not needed
    from segel.custody.plan import make_plan, stored_calendar
    from segel.places import io as places_io

    places = {p.code: p for p in places_io.load(conn)}
    judge.plans = {"BOX-1": make_plan("BOX-1", "T1", places, stored_calendar(conn))}  # type: ignore[arg-type]
    pipe = Pipeline(conn, KeyRing(SECRET, Registry(conn)), judges=[judge])
    from segel import protocol

    keys = protocol.DeviceKeys.from_device_key(protocol.derive_device_key(SECRET, DEV, 0))
    for i in range(3):
        f = protocol.encode(keys, DEV, 10 + i, t0 + 300 * i, protocol.Position(T1[0], T1[1], protocol.Flag.FIX, 1.0, 20))
        pipe.process(uplink(t0 + 300 * i + 5, f"segel/up/{DEV:06x}", f))
    conn.close()
