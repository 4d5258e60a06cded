"""Accounts: roles and permissions, scope, Argon2 passwords, login limits, sessions (segel.accounts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from segel import accounts, store
from segel.accounts import AccountError, LoginRefused


@pytest.fixture
def conn(tmp_path: Path):  # type: ignore[no-untyped-def]
    c = store.connect(tmp_path / "segel.db")
    yield c
    c.close()


PW = "correct horse battery"


def test_roles_and_permissions(conn) -> None:  # type: ignore[no-untyped-def]
    for role in accounts.ROLES:
        accounts.add(conn, role, role, PW, districts=["64.08.01"] if role == "officer" else ())
    can = {r: {p for p in ("view", "alerts.act", "users.manage", "handover.confirm", "export")
               if accounts.get(conn, r).can(p)} for r in accounts.ROLES}  # type: ignore[union-attr]
    assert can["admin"] == {"view", "alerts.act", "users.manage", "handover.confirm", "export"}
    assert can["supervisor"] == {"view", "alerts.act", "handover.confirm", "export"}
    assert can["operator"] == {"view", "alerts.act", "export"}
    assert can["viewer"] == {"view", "export"}
    assert can["officer"] == {"view", "handover.confirm"}


def test_scope_by_district_and_place(conn) -> None:  # type: ignore[no-untyped-def]
    op = accounts.add(conn, "budi", "operator", PW, districts=["64.08.01", "64.08.02"])
    officer = accounts.add(conn, "tps1", "officer", PW, places=["64.08.03.2001-001"])
    boss = accounts.add(conn, "sari", "supervisor", PW)
    assert op.sees("64.08.01") and op.sees("64.08.02") and not op.sees("64.08.03")
    assert not op.sees(None), "an alert of a tracker on no box is for unscoped users only"
    assert officer.sees("64.08.03", ["64.08.03.2001-001", "64.08.03.2001", "64.08.03"])
    assert not officer.sees("64.08.03", ["64.08.03.2001-002", "64.08.03.2001", "64.08.03"])
    assert boss.sees(None) and boss.sees("64.08.18")


def test_bad_accounts_are_refused_with_a_reason(conn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AccountError, match="at least 10 characters"):
        accounts.add(conn, "x", "viewer", "short")
    with pytest.raises(AccountError, match="choose one of admin"):
        accounts.add(conn, "x", "root", PW)
    with pytest.raises(AccountError, match="give --district or --place"):
        accounts.add(conn, "x", "officer", PW)
    with pytest.raises(AccountError, match="letters, digits"):
        accounts.add(conn, "<script>", "viewer", PW)
    accounts.add(conn, "x", "viewer", PW)
    with pytest.raises(AccountError, match="exists already"):
        accounts.add(conn, "x", "admin", PW)
    assert [u.username for u in accounts.listing(conn)] == ["x"]


def test_passwords_are_argon2_and_never_stored_plain(conn) -> None:  # type: ignore[no-untyped-def]
    accounts.add(conn, "sari", "admin", PW)
    (h,) = conn.execute("SELECT password_hash FROM users").fetchone()
    assert h.startswith("$argon2id$") and PW not in h
    assert accounts.authenticate(conn, "sari", PW).username == "sari"


def test_wrong_password_and_unknown_user_get_the_same_answer(conn) -> None:  # type: ignore[no-untyped-def]
    accounts.add(conn, "sari", "admin", PW)
    with pytest.raises(LoginRefused) as a:
        accounts.authenticate(conn, "sari", "wrong password!", "10.0.0.1")
    with pytest.raises(LoginRefused) as b:
        accounts.authenticate(conn, "nobody", "wrong password!", "10.0.0.1")
    assert a.value.code == b.value.code == "bad" and str(a.value) == str(b.value)


def test_lockout_after_five_failures_then_it_expires(conn) -> None:  # type: ignore[no-untyped-def]
    accounts.add(conn, "sari", "admin", PW)
    t0 = 1_000_000.0
    for i in range(accounts.MAX_FAILURES_PER_USER):
        with pytest.raises(LoginRefused):
            accounts.authenticate(conn, "sari", "guess %d" % i, "10.0.0.1", now=t0 + i)
    with pytest.raises(LoginRefused) as e:  # the right password does not help while locked
        accounts.authenticate(conn, "sari", PW, "10.0.0.2", now=t0 + 10)
    assert e.value.code == "locked" and 0 < e.value.retry_after_s <= accounts.LOCK_S
    assert accounts.authenticate(conn, "sari", PW, "10.0.0.2", now=t0 + accounts.LOCK_S + 10).username == "sari"


def test_one_address_guessing_many_accounts_is_limited(conn) -> None:  # type: ignore[no-untyped-def]
    accounts.add(conn, "sari", "admin", PW)
    for i in range(accounts.MAX_FAILURES_PER_ADDRESS):
        with pytest.raises(LoginRefused):
            accounts.authenticate(conn, f"user{i}", "x" * 12, "10.9.9.9", now=5000.0 + i)
    with pytest.raises(LoginRefused) as e:
        accounts.authenticate(conn, "sari", PW, "10.9.9.9", now=5100.0)
    assert e.value.code == "locked"
    assert accounts.authenticate(conn, "sari", PW, "10.1.1.1", now=5100.0).username == "sari"


def test_disabled_account_is_refused_and_its_sessions_end(conn) -> None:  # type: ignore[no-untyped-def]
    u = accounts.add(conn, "budi", "operator", PW)
    token, s = accounts.start_session(conn, u)
    assert accounts.session(conn, token) is not None and len(s.csrf) > 20
    accounts.set_disabled(conn, "budi")
    assert accounts.session(conn, token) is None
    with pytest.raises(LoginRefused) as e:
        accounts.authenticate(conn, "budi", PW)
    assert e.value.code == "disabled"
    with pytest.raises(LoginRefused) as e2:  # a wrong password is "bad", never "disabled": nothing leaks
        accounts.authenticate(conn, "budi", "not the password")
    assert e2.value.code == "bad"


def test_sessions_expire_slide_and_end_with_a_new_password(conn) -> None:  # type: ignore[no-untyped-def]
    u = accounts.add(conn, "sari", "admin", PW)
    token, s = accounts.start_session(conn, u, ttl_s=3600, now=1000.0)
    (stored,) = conn.execute("SELECT token_hash FROM user_sessions").fetchone()
    assert token not in stored, "only the token's hash is stored"
    assert accounts.session(conn, token, 3600, now=1000.0 + 3000) is not None  # used: slides to 4000 + 3600
    assert accounts.session(conn, token, 3600, now=1000.0 + 6000) is not None
    assert accounts.session(conn, token, 3600, now=1000.0 + 20000) is None  # expired
    token2, _ = accounts.start_session(conn, u)
    accounts.set_password(conn, "sari", "another good password")
    assert accounts.session(conn, token2) is None
    assert accounts.session(conn, "made-up-token") is None
