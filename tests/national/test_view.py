"""The national view: the console's national pages and `segel national show`, over a real national store
filled with what a real regency recorded (the pipeline, the custody judge and the capture)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from segel import accounts, store
from segel import config as cfgmod
from segel.cli import main
from segel.console.app import create_app
from segel.national import capture, model, pages
from segel.national import store as nstore
from tests.national import regency

pytestmark = pytest.mark.slow
PW = "correct horse battery"


@pytest.fixture
def filled(tmp_path: Path, dsn: str) -> Iterator[tuple[str, regency.Regency]]:
    """One regency (64.08) driven along its first legs, its items applied to the national store."""
    (tmp_path / "r").mkdir()
    r = regency.make(tmp_path / "r", boxes=3, install=lambda c: capture.install(c))
    box = sorted(r.trackers)[0]
    r.drive(box, legs=2)
    capture.enqueue_summary(r.conn, "64.08", "Kabupaten Kutai Timur", 1.0)
    items = [t for _, t in capture.pending(r.conn, 0, 100_000, max_bytes=10**9)]
    with psycopg.connect(dsn, autocommit=True) as c:
        nstore.ensure_schema(c)
        now = time.time()
        nstore.apply_batch(c, [nstore.Incoming("segel/up/64/6408", model.encode("64.08", "Kabupaten Kutai Timur", now, items),
                                               now)])
    yield dsn, r


def client(tmp_path: Path, dsn: str) -> TestClient:
    db = tmp_path / "console.db"
    cfg = cfgmod.load(None, env={}, overrides={"gateway.db": str(db), "national.store_dsn": dsn,
                                               "locale.timezone": "WIB"})
    conn = store.connect(db)
    accounts.add(conn, "bawaslu", "viewer", PW, full_name="Pengawas Pusat")
    accounts.add(conn, "kalsel", "viewer", PW, districts=["63"])  # a province office elsewhere
    accounts.add(conn, "ops", "operator", PW)
    conn.close()
    return TestClient(create_app(cfg, [pages.router], discover=False, regency_pages=False), follow_redirects=False)


def sign_in(c: TestClient, user: str) -> None:
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)  # type: ignore[union-attr]
    r = c.post("/login", data={"username": user, "password": PW, "csrf": csrf, "next": "/national"})
    assert r.status_code == 303, r.text


def test_oversight_sees_every_province_then_a_regency_then_a_box(tmp_path: Path, filled: tuple) -> None:
    dsn, r = filled
    box = sorted(r.trackers)[0]
    with client(tmp_path, dsn) as c:
        sign_in(c, "bawaslu")
        page = c.get("/national")
        assert page.status_code == 200
        text = page.text
        assert "Tampilan nasional" in text and "64 Kalimantan Timur" in text and "/national/64.08" in text
        assert "Kabupaten Kutai Timur" in text and "Kritis" in text and "Etape terlambat" in text
        reg = c.get("/national/64.08")
        assert reg.status_code == 200
        assert "64.08.04" in reg.text and "Waktu dalam WITA" in reg.text  # its own zone
        assert "Hitungan kabupaten/kota sendiri" in reg.text
        lst = c.get("/national/64.08/boxes?district=64.08.04")
        assert box in lst.text
        bp = c.get(f"/national/64.08/boxes/{box}")
        assert bp.status_code == 200
        main = bp.text[bp.text.index("<main>"):]
        assert "<strong>PPS</strong>" in main  # it reached its PPS on the second leg
        assert "<td>arrived</td><td>64.08.04</td>" in main and "WITA" in main
        # its alerts in the reader's words (the regency's zone), not the stored English message
        assert "<td>Tiba di titik serah terima</td><td>selesai</td><td>Tiba di 64.08.04: serah terima tercatat</td>" in main
        assert "the handover is recorded" not in main
        assert c.post("/national", data={}).status_code == 405  # nothing here changes anything
        assert c.get("/").headers["location"] == "/national"  # national mode: no regency's map
        assert c.get("/alerts").status_code == 404 and "/fleet" not in text


def test_a_scoped_account_sees_only_its_province(tmp_path: Path, filled: tuple) -> None:
    dsn, _r = filled
    with client(tmp_path, dsn) as c:
        sign_in(c, "kalsel")
        assert "64.08" not in c.get("/national").text
        assert c.get("/national/64.08").status_code == 403


def test_the_cli_view_prints_the_same_counts(filled: tuple) -> None:
    dsn, r = filled
    res = CliRunner().invoke(main, ["national", "show", "--dsn", dsn])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if "64.08" in ln)
    assert line[34:].split()[0] == "3"  # three boxes
    res = CliRunner().invoke(main, ["national", "show", "--dsn", dsn, "64.08"])
    assert res.exit_code == 0 and "64.08.04" in res.output
    res = CliRunner().invoke(main, ["national", "show", "--dsn", dsn, "64.08", sorted(r.trackers)[0]])
    assert res.exit_code == 0 and "custody:" in res.output and "arrived" in res.output
    res = CliRunner().invoke(main, ["national", "show", "--dsn", dsn, "64.0x"])
    assert res.exit_code != 0 and "not a regency code" in res.output


def test_the_national_page_looks_right(tmp_path: Path, filled: tuple) -> None:
    """A screenshot in real Chromium (saved beside the test's files, to look at)."""
    pw = pytest.importorskip("playwright.sync_api")
    from segel.console.server import ConsoleServer
    from segel.ports import free_port

    dsn, _r = filled
    db = tmp_path / "console.db"
    cfg = cfgmod.load(None, env={}, overrides={"gateway.db": str(db), "national.store_dsn": dsn})
    conn = store.connect(db)
    accounts.add(conn, "bawaslu", "viewer", PW)
    conn.close()
    srv = ConsoleServer(cfg, [pages.router], port=free_port(), regency_pages=False).start()
    try:
        with pw.sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium",
                                  args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
            page = b.new_page(viewport={"width": 1400, "height": 700})
            base = srv.url.rstrip("/")
            page.goto(f"{base}/login?next=/national")
            page.fill("input[name=username]", "bawaslu")
            page.fill("input[name=password]", PW)
            page.click("button.primary")
            page.wait_for_url("**/national")
            assert page.locator("table.national tr").count() >= 3
            page.screenshot(path=str(tmp_path / "national.png"), full_page=True)
            page.goto(f"{base}/national/64.08")
            page.screenshot(path=str(tmp_path / "national-regency.png"), full_page=True)
            b.close()
    finally:
        srv.stop()
    assert (tmp_path / "national.png").stat().st_size > 10_000
