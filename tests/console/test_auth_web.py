"""The console's sign-in, sessions, CSRF, roles, language switch and add-on routers, over HTTP (in process)."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.responses import Response
from starlette.testclient import TestClient

from segel import accounts, store
from segel import config as cfgmod
from segel.console import Ctx, Router
from segel.console.app import create_app

PW = "correct horse battery"


def make_client(tmp_path: Path, routers: list[Router] | None = None, https: bool = False) -> TestClient:
    cfg = cfgmod.load(None, env={}, overrides={"gateway.db": str(tmp_path / "segel.db")})
    conn = store.connect(tmp_path / "segel.db")
    accounts.add(conn, "sari", "admin", PW, full_name="Sari Dewi")
    accounts.add(conn, "vera", "viewer", PW)
    accounts.add(conn, "tps1", "officer", PW, places=["64.08.01.2001-001"])
    conn.close()
    app = create_app(cfg, routers or [], discover=False)
    return TestClient(app, base_url="https://testserver" if https else "http://testserver", follow_redirects=False)


def login_csrf(client: TestClient) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def sign_in(client: TestClient, user: str = "sari", password: str = PW, next_: str = "/") -> Response:
    return client.post("/login", data={"username": user, "password": password, "csrf": login_csrf(client), "next": next_})


def page_csrf(client: TestClient, path: str = "/") -> str:
    return re.search(r'data-csrf="([^"]+)"', client.get(path).text).group(1)  # type: ignore[union-attr]


def test_pages_need_a_sign_in_and_the_login_page_is_indonesian(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        r = c.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
        page = c.get("/login")
        assert "Masuk ke konsol Segel" in page.text and 'lang="id"' in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"


def test_sign_in_sets_a_strict_session_cookie_and_follows_next(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        r = sign_in(c, next_="/fleet")
        assert r.status_code == 303 and r.headers["location"] == "/fleet"
        cookie = r.headers["set-cookie"]
        assert "segel_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        assert "Secure" not in cookie  # plain http on loopback
        home = c.get("/")
        assert home.status_code == 200 and "Sari Dewi" in home.text and "administrator" in home.text


def test_behind_tls_the_cookie_is_secure(tmp_path: Path) -> None:
    with make_client(tmp_path, https=True) as c:
        assert "Secure" in sign_in(c).headers["set-cookie"]


def test_no_open_redirect_after_sign_in(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        assert sign_in(c, next_="//evil.example/x").headers["location"] == "/"


def test_wrong_password_locked_out_and_disabled_get_clear_messages(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        r = sign_in(c, password="not the password")
        assert r.status_code == 401 and "Nama pengguna atau kata sandi salah." in r.text
        for _ in range(5):
            r = sign_in(c, "vera", "guessing again")
        r = sign_in(c, "vera", PW)
        assert r.status_code == 429 and "Terlalu banyak percobaan masuk yang gagal: coba lagi dalam 15 menit." in r.text
        conn = store.connect(tmp_path / "segel.db")
        accounts.set_disabled(conn, "tps1")
        conn.close()
        r = sign_in(c, "tps1", PW)
        assert r.status_code == 403 and "Akun ini dinonaktifkan: hubungi administrator." in r.text


def test_login_without_its_csrf_token_is_refused(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        c.get("/login")
        r = c.post("/login", data={"username": "sari", "password": PW})
        assert r.status_code == 403 and "token keamanan" in r.text


def test_every_write_needs_the_session_csrf_token(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        sign_in(c)
        r = c.post("/logout", data={})
        assert r.status_code == 403 and "Formulir sudah kedaluwarsa" in r.text
        r = c.post("/logout", data={"csrf": "forged"})
        assert r.status_code == 403
        assert c.get("/").status_code == 200, "still signed in after the refused writes"
        r = c.post("/logout", data={"csrf": page_csrf(c)})
        assert r.status_code == 303
        assert c.get("/").status_code == 303


def test_an_ended_session_sends_back_to_sign_in_with_a_message(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        sign_in(c)
        conn = store.connect(tmp_path / "segel.db")
        conn.execute("DELETE FROM user_sessions")
        conn.close()
        r = c.get("/?x=1")
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/%3Fx%3D1"
        assert "Sesi Anda telah berakhir" in c.get("/login").text
        api = c.post("/logout", data={"csrf": "x"})
        assert api.status_code == 401


def test_language_switch_per_browser_and_per_user(tmp_path: Path) -> None:
    with make_client(tmp_path) as c:
        r = c.post("/language", data={"language": "en", "csrf": login_csrf(c), "next": "/login"})
        assert r.status_code == 303
        assert "Sign in to the Segel console" in c.get("/login").text  # this browser, before signing in
        sign_in(c)
        c.post("/language", data={"language": "id", "csrf": page_csrf(c), "next": "/"})
        conn = store.connect(tmp_path / "segel.db")
        assert accounts.get(conn, "sari").language == "id"  # type: ignore[union-attr]
        conn.close()
    with TestClient(c.app, follow_redirects=False) as c2:
        # another browser (no cookie): the account's language applies once signed in
        c2.cookies.set("segel_lang", "en")
        assert "Sign in" in c2.get("/login").text
        sign_in(c2)
        assert 'lang="id"' in c2.get("/").text


def test_an_added_router_gets_permission_and_scope_checks(tmp_path: Path) -> None:
    r = Router("receipts-demo")

    @r.page("/handover/{place}", permission=accounts.CONFIRM_HANDOVER)
    def handover(c: Ctx) -> Response:
        place = c.params["place"]
        c.require_scope(None, [place])
        return c.json({"place": place, "by": c.user.label if c.user else None})

    @r.page("/handover/{place}", permission=accounts.CONFIRM_HANDOVER, methods=("POST",), name="confirm")
    def confirm(c: Ctx) -> Response:
        c.require_scope(None, [c.params["place"]])
        return c.json({"confirmed": c.form.get("note")})

    with make_client(tmp_path, [r]) as c:
        sign_in(c, "tps1")
        assert c.get("/handover/64.08.01.2001-001").json() == {"place": "64.08.01.2001-001", "by": "tps1"}
        other = c.get("/handover/64.08.01.2001-002")
        assert other.status_code == 403 and "di luar kecamatan" in other.text
        ok = c.post("/handover/64.08.01.2001-001", data={"note": "diterima", "csrf": page_csrf(c, "/")})
        assert ok.json() == {"confirmed": "diterima"}
        assert c.post("/handover/64.08.01.2001-001", data={"note": "x"}).status_code == 403
    (tmp_path / "v").mkdir()
    with make_client(tmp_path / "v", [r]) as c:
        sign_in(c, "vera")
        r2 = c.get("/handover/64.08.01.2001-001")
        assert r2.status_code == 403 and "Peran Anda tidak boleh melakukan ini." in r2.text
