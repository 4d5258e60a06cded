"""The console in real headless Chromium (Debian's, driven by Playwright) against a real Mosquitto and the
real gateway with Kutai Timur's 1,402 boxes: sign in, the map, live critical alerts from a forged frame and
a seal cut, an ack seen in a second browser and on MQTT, the language switch, a viewer who cannot act, a
box page, a broker restart and a stopped gateway. Screenshots go to tests/artifacts/console/."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from segel import store
from segel.bench import kutim
from segel.custody import actions, ledger

from tests.console import world as worldmod
from tests.rules.test_operator_publish_live import Watcher

pytestmark = pytest.mark.slow
playwright = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-quic"]
SEAL_BOX = "64.08.01.2001-001-GUB"  # Muara Ancalong, TPS 001 Senyiur
FORGED_BOX = "64.08.17.2002-002-GUB"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[worldmod.World]:
    w = worldmod.make(tmp_path_factory.mktemp("console-world"))
    yield w
    w.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run bash scripts/setup.sh --test")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A signed-in browser tab that records script errors (a test fails on any)."""

    def __init__(self, browser, world: worldmod.World, user: str, path: str = "/") -> None:  # type: ignore[no-untyped-def]
        self.ctx = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        self.page = self.ctx.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(world.url + path)
        self.page.fill("input[name=username]", user)
        self.page.fill("input[name=password]", worldmod.PW)
        self.page.click("form.login button")
        self.page.wait_for_url(world.url + path)

    def shot(self, name: str) -> Path:
        out = ARTIFACTS / name
        self.page.screenshot(path=str(out))
        return out

    def close(self) -> None:
        assert not self.errors, self.errors
        self.ctx.close()


def test_sign_in_and_the_kutai_timur_map_draws_every_box_place_and_corridor(world, browser) -> None:  # type: ignore[no-untyped-def]
    p = Page(browser, world, "sari", "/")
    page = p.page
    page.wait_for_selector("#map[data-ready='1']", state="attached", timeout=30_000)
    d = page.eval_on_selector("#map", "e => ({...e.dataset})")
    assert (d["boxes"], d["places"], d["corridors"]) == ("1402", "861", "868")
    assert page.text_content("#n-all") == "1.402"  # Indonesian number format
    assert page.locator(".leaflet-marker-icon").count() > 10  # clusters and single boxes on screen
    assert "Peta" in page.text_content("nav") and "Sari Dewi" in page.text_content(".who")
    page.select_option("#f-district", "64.08.01")
    assert int(page.eval_on_selector("#map", "e => e.dataset.boxes")) == sum(
        1 for tps in world.prepared.boxes.values() if tps.startswith("64.08.01."))
    page.select_option("#f-district", "")
    p.shot("map.png")
    p.close()


def test_forged_frame_and_seal_cut_raise_live_critical_alerts_and_an_ack_reaches_everyone(world, browser) -> None:  # type: ignore[no-untyped-def]
    watch = Watcher(world.broker.port)
    a, b = Page(browser, world, "sari", "/alerts"), Page(browser, world, "budi", "/alerts")
    try:
        t = time.time()
        world.publish([kutim.forged(world.prepared, FORGED_BOX, t), kutim.seal_cut(world.prepared, SEAL_BOX, t)])
        for p in (a, b):  # no reload: they arrive over the live stream
            for kind in ("forged_frame", "seal_unauthorised"):
                p.page.wait_for_selector(f"tr[data-kind={kind}][data-state=open]", timeout=15_000)
            top = p.page.eval_on_selector_all("tr.alert-row", "rs => rs.slice(0, 2).map(r => r.dataset.kind).sort()")
            assert top == ["forged_frame", "seal_unauthorised"], "critical open alerts stay on top"
        row = a.page.locator("tr[data-kind=seal_unauthorised][data-state=open]")
        aid = row.get_attribute("data-id")
        assert aid and SEAL_BOX in row.text_content()
        a.shot("alerts.png")
        row.locator("form[action$='/ack'] input[name=note]").fill("Polisi menuju lokasi <b>segera</b>")
        row.locator("form[action$='/ack'] button").click()
        a.page.wait_for_selector(f"tr[data-id='{aid}'][data-state=acknowledged]", timeout=10_000)
        seen = b.page.wait_for_selector(f"tr[data-id='{aid}'][data-state=acknowledged]", timeout=10_000)
        text = seen.text_content()
        assert "ditangani oleh sari (Sari Dewi)" in text and "Polisi menuju lokasi <b>segera</b>" in text  # escaped, shown as text
        assert seen.query_selector("b") is None
        end = time.time() + 10
        while time.time() < end and not any(x for x in watch.got if x[0] == "segel/alerts/seal_unauthorised"
                                            and json.loads(x[1])["event"] == "acknowledged"):
            time.sleep(0.1)
        acked = [json.loads(x[1]) for x in watch.got if x[0] == "segel/alerts/seal_unauthorised"
                 and json.loads(x[1])["event"] == "acknowledged"]
        assert acked and acked[0]["id"] == aid and acked[0]["acknowledged_by"] == "sari (Sari Dewi)"
        conn = store.connect(world.prepared.db)
        last = ledger.export(conn, SEAL_BOX)[-1]
        conn.close()
        assert last["event"] == "acknowledged" and json.loads(last["body"])["via"] == "console"
        b.shot("alerts-second-browser.png")
    finally:
        watch.close()
        a.close()
        b.close()


def test_a_viewer_sees_alerts_but_cannot_act(world, browser) -> None:  # type: ignore[no-untyped-def]
    p = Page(browser, world, "vera", "/alerts")
    page = p.page
    row = page.wait_for_selector("tr[data-kind=forged_frame]")
    assert not row.query_selector("form[action$='/resolve']").is_visible()
    assert "Peran Anda hanya membaca peringatan" in page.text_content("main")
    aid = row.get_attribute("data-id")
    status, text = page.evaluate("""async (aid) => {
        const r = await fetch('/alerts/' + aid + '/resolve', {method: 'POST', headers: {'X-CSRF-Token': document.body.dataset.csrf,
          'X-Requested-With': 'fetch', 'Content-Type': 'application/x-www-form-urlencoded'}, body: 'note=x'});
        return [r.status, await r.text()]; }""", aid)
    assert status == 403 and "Peran Anda tidak boleh melakukan ini." in text
    conn = store.connect(world.prepared.db)
    assert conn.execute("SELECT state FROM alerts WHERE id = ?", (aid,)).fetchone()[0] == "open"
    conn.close()
    p.close()


def test_an_operator_outside_the_district_cannot_act_there(world, browser) -> None:  # type: ignore[no-untyped-def]
    p = Page(browser, world, "ops1", "/alerts")  # scoped to 64.08.01 (the seal cut's district)
    page = p.page
    page.wait_for_selector("tr[data-kind=seal_unauthorised]")
    assert page.locator("tr[data-kind=forged_frame]").count() == 0  # 64.08.17: not shown
    conn = store.connect(world.prepared.db)
    forged_id = conn.execute("SELECT id FROM alerts WHERE kind = 'forged_frame'").fetchone()[0]
    conn.close()
    status = page.evaluate("""async (aid) => (await fetch('/alerts/' + aid + '/ack', {method: 'POST', headers: {
        'X-CSRF-Token': document.body.dataset.csrf, 'X-Requested-With': 'fetch'}})).status""", forged_id)
    assert status == 403
    p.close()


def test_switch_language_to_english_and_back(world, browser) -> None:  # type: ignore[no-untyped-def]
    p = Page(browser, world, "budi", "/alerts")
    page = p.page
    assert "Meja peringatan" in page.text_content("h1")
    page.select_option("select[name=language]", "en")
    page.wait_for_selector("text=Alert desk")
    assert page.get_attribute("html", "lang") == "en" and "Alerts" in page.text_content("nav")
    assert page.locator("th", has_text="When (WITA)").count() == 1
    page.goto(world.url + "/")
    page.wait_for_selector("#map[data-ready='1']", state="attached")
    assert "All boxes" in page.text_content(".map-side")
    page.select_option("select[name=language]", "id")
    page.wait_for_selector("text=Semua kotak")
    p.close()


def test_box_page_tells_the_story_and_exports_it(world, browser) -> None:  # type: ignore[no-untyped-def]
    p = Page(browser, world, "sari", f"/boxes/{SEAL_BOX}")
    page = p.page
    page.wait_for_selector("#boxmap[data-points]", state="attached")
    main = page.text_content("main")
    assert "TPS 001 Senyiur" in main and "Tahap pengiriman dibanding rencana" in main
    assert "kawat segel terbuka" in main and "loop_open" not in main  # the seal event by its label
    assert "rantai utuh" in main
    p.shot("box.png")
    with page.expect_download() as dl:
        page.click("text=Ekspor CSV")
    rows = list(csv.reader(io.StringIO(Path(dl.value.path()).read_text())))
    assert rows[0] == ["time", "what", "lat", "lon", "detail", "more"]
    assert any(r[1] == "seal" and r[4] == "loop_open" for r in rows) and any(r[1] == "alert" for r in rows)
    assert rows[1][0].endswith("+08:00")  # local time (WITA)
    p.close()


def test_broker_restart_and_a_stopped_gateway(world, browser) -> None:  # type: ignore[no-untyped-def]
    """The broker goes away: an ack made meanwhile still shows (the page follows the database) and is
    published once the broker is back. The gateway stops: the console says so, then recovers."""
    p = Page(browser, world, "budi", "/alerts")
    page = p.page
    row = page.wait_for_selector("tr[data-kind=forged_frame][data-state=open]")
    aid = row.get_attribute("data-id")
    world.broker.stop()
    conn = store.connect(world.prepared.db)
    actions.acknowledge(conn, aid, "Sari (CLI)", "ditangani lewat CLI", via="cli")
    page.wait_for_selector(f"tr[data-id='{aid}'][data-state=acknowledged]", timeout=10_000)
    world.broker.start()
    watch = Watcher(world.broker.port)
    try:
        end = time.time() + 30
        while time.time() < end and not any(json.loads(x[1]).get("id") == aid and json.loads(x[1])["event"] == "acknowledged"
                                            for x in watch.got if x[0].startswith("segel/alerts/")):
            time.sleep(0.2)
        assert any(json.loads(x[1]).get("id") == aid for x in watch.got if x[0].startswith("segel/alerts/")), \
            "the ack made while the broker was down is published once it is back"
        assert not store.pending_publications(conn)
    finally:
        watch.close()
        conn.close()
    world.stop_gateway()
    page.wait_for_selector("#banner.bad:not([hidden])", timeout=20_000)
    assert "Gateway tidak terdengar sejak" in page.text_content("#banner")
    p.shot("gateway-stopped.png")
    world.start_gateway()
    page.wait_for_selector("#banner[hidden]", state="attached", timeout=20_000)
    p.close()
