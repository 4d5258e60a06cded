"""People who use Segel: accounts, roles, scope (districts, custody places), passwords, login limits, sessions.

Roles (docs/console.md):
- admin: everything, including accounts;
- supervisor: sees and acts everywhere;
- operator: acknowledges and resolves alerts, only in its districts when scoped;
- viewer: oversight, reads everything in its scope, changes nothing;
- officer: a receiving officer at a custody point (PPK, PPS, TPS): confirms handovers there
  (issue 15), sees only its districts/places.

Passwords are hashed with Argon2id (argon2-cffi). Login failures are counted in the database per
account and per client address, so every console process (and a restart) sees the same count.
Sessions are random tokens; only their SHA-256 is stored, with a CSRF token and an expiry that
slides with use. Changing a password or disabling an account ends its sessions.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from segel.i18n import N_
from segel.registry import transaction

ADMIN, SUPERVISOR, OPERATOR, VIEWER, OFFICER = "admin", "supervisor", "operator", "viewer", "officer"
ROLES = (ADMIN, SUPERVISOR, OPERATOR, VIEWER, OFFICER)
ROLE_LABELS = {ADMIN: N_("administrator"), SUPERVISOR: N_("supervisor"), OPERATOR: N_("operator"),
               VIEWER: N_("viewer (oversight)"), OFFICER: N_("receiving officer")}

# What each role may do. Pages check a permission, never a role name.
VIEW, ACT_ALERTS, MANAGE_USERS, CONFIRM_HANDOVER, EXPORT = "view", "alerts.act", "users.manage", "handover.confirm", "export"
PERMISSIONS: dict[str, frozenset[str]] = {
    ADMIN: frozenset({VIEW, ACT_ALERTS, MANAGE_USERS, CONFIRM_HANDOVER, EXPORT}),
    SUPERVISOR: frozenset({VIEW, ACT_ALERTS, CONFIRM_HANDOVER, EXPORT}),
    OPERATOR: frozenset({VIEW, ACT_ALERTS, EXPORT}),
    VIEWER: frozenset({VIEW, EXPORT}),
    OFFICER: frozenset({VIEW, CONFIRM_HANDOVER}),
}

MIN_PASSWORD = 10
MAX_FAILURES_PER_USER = 5  # within FAILURE_WINDOW_S; then the account waits LOCK_S
MAX_FAILURES_PER_ADDRESS = 30
FAILURE_WINDOW_S = 15 * 60
LOCK_S = 15 * 60
SESSION_TTL_S = 12 * 3600

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY, full_name TEXT NOT NULL DEFAULT '', role TEXT NOT NULL,
    password_hash TEXT NOT NULL, districts TEXT NOT NULL DEFAULT '[]', places TEXT NOT NULL DEFAULT '[]',
    language TEXT, email TEXT, email_alerts INTEGER NOT NULL DEFAULT 0, disabled INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL, password_changed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS login_failures (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures(key, at);
CREATE TABLE IF NOT EXISTS user_sessions (
    token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL,
    created_at REAL NOT NULL, last_seen REAL NOT NULL, expires REAL NOT NULL, address TEXT
);
CREATE INDEX IF NOT EXISTS user_sessions_user ON user_sessions(username)
"""

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("not a password: keeps a wrong user name as slow as a wrong password")


class AccountError(ValueError):
    """A refused change to an account: the message says what to do."""


class LoginRefused(Exception):
    """`code` is bad (wrong name or password: one message for both), locked or disabled."""

    def __init__(self, code: str, message: str, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class User:
    username: str
    role: str
    full_name: str = ""
    districts: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    language: str | None = None
    email: str | None = None
    email_alerts: bool = False
    disabled: bool = False
    created_at: float = 0.0
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def scoped(self) -> bool:
        return bool(self.districts or self.places)

    @property
    def label(self) -> str:
        """How the user appears in alert history and the ledger: "sari (Sari Dewi)"."""
        return f"{self.username} ({self.full_name})" if self.full_name else self.username

    def can(self, permission: str) -> bool:
        return not self.disabled and permission in PERMISSIONS.get(self.role, frozenset())

    def sees(self, district: str | None, places: Iterable[str] = ()) -> bool:
        """Whether something in `district` (a PPK code) at `places` (a place code and its
        ancestors) is inside this user's scope. Unscoped users see everything; something with
        no district (a tracker on no box) is only for unscoped users."""
        if not self.scoped:
            return True
        if district is not None and district in self.districts:
            return True
        return any(p in self.places for p in places)


def ensure_schema(conn: sqlite3.Connection) -> None:
    for stmt in SCHEMA.split(";"):
        if stmt.strip():
            conn.execute(stmt)


_COLS = "username, role, full_name, districts, places, language, email, email_alerts, disabled, created_at"


def _user(r: tuple) -> User:
    return User(r[0], r[1], r[2], tuple(json.loads(r[3])), tuple(json.loads(r[4])), r[5], r[6], bool(r[7]),
                bool(r[8]), r[9])


def get(conn: sqlite3.Connection, username: str) -> User | None:
    ensure_schema(conn)
    r = conn.execute(f"SELECT {_COLS} FROM users WHERE username = ?", (username,)).fetchone()
    return _user(r) if r else None


def listing(conn: sqlite3.Connection) -> list[User]:
    ensure_schema(conn)
    return [_user(r) for r in conn.execute(f"SELECT {_COLS} FROM users ORDER BY username")]


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("the password is longer than 1,024 characters")


def _check_name(username: str) -> None:
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-@" for c in username):
        raise AccountError(f"user name {username!r}: use 1-64 letters, digits and . _ - @")


def add(conn: sqlite3.Connection, username: str, role: str, password: str, *, full_name: str = "",
        districts: Iterable[str] = (), places: Iterable[str] = (), language: str | None = None,
        email: str | None = None, email_alerts: bool = False, now: float | None = None) -> User:
    """Create an account. Raises AccountError naming what is wrong (name taken, role, password)."""
    ensure_schema(conn)
    _check_name(username)
    if role not in ROLES:
        raise AccountError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    check_password(password)
    ds, ps = sorted(set(districts)), sorted(set(places))
    if role == OFFICER and not (ds or ps):
        raise AccountError("an officer confirms handovers at given places: give --district or --place")
    if email_alerts and not email:
        raise AccountError("email alerts need an email address (--email)")
    at = time.time() if now is None else now
    with transaction(conn):
        if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
            raise AccountError(f"user {username!r} exists already (segel users passwd to change its password)")
        conn.execute("INSERT INTO users(username, full_name, role, password_hash, districts, places, language, email, "
                     "email_alerts, disabled, created_at, password_changed_at) VALUES (?,?,?,?,?,?,?,?,?,0,?,?)",
                     (username, full_name, role, _hasher.hash(password), json.dumps(ds), json.dumps(ps), language,
                      email, int(email_alerts), at, at))
    return get(conn, username)  # type: ignore[return-value]


def set_password(conn: sqlite3.Connection, username: str, password: str, now: float | None = None) -> None:
    """A new password (and the end of the user's sessions)."""
    check_password(password)
    with transaction(conn):
        n = conn.execute("UPDATE users SET password_hash = ?, password_changed_at = ? WHERE username = ?",
                         (_hasher.hash(password), time.time() if now is None else now, username)).rowcount
        if not n:
            raise AccountError(f"no user {username!r} (segel users list)")
        conn.execute("DELETE FROM user_sessions WHERE username = ?", (username,))
        conn.execute("DELETE FROM login_failures WHERE key = ?", ("user:" + username,))


def set_disabled(conn: sqlite3.Connection, username: str, disabled: bool = True) -> None:
    """Disable (or enable again) an account; disabling ends its sessions at once."""
    ensure_schema(conn)
    with transaction(conn):
        n = conn.execute("UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), username)).rowcount
        if not n:
            raise AccountError(f"no user {username!r} (segel users list)")
        if disabled:
            conn.execute("DELETE FROM user_sessions WHERE username = ?", (username,))


def set_language(conn: sqlite3.Connection, username: str, language: str) -> None:
    with transaction(conn):
        conn.execute("UPDATE users SET language = ? WHERE username = ?", (language, username))


def generate_password() -> str:
    """A random password people can type: 4 groups of 5 letters and digits (about 100 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(5)) for _ in range(4))


# ---- login ------------------------------------------------------------------------------------

def _failures(conn: sqlite3.Connection, key: str, now: float) -> tuple[int, float]:
    r = conn.execute("SELECT COUNT(*), MAX(at) FROM login_failures WHERE key = ? AND at > ?",
                     (key, now - FAILURE_WINDOW_S)).fetchone()
    return int(r[0]), float(r[1] or 0.0)


def _locked(conn: sqlite3.Connection, username: str, address: str, now: float) -> float:
    """Seconds until a login may be tried again (0: now)."""
    wait = 0.0
    for key, limit in (("user:" + username, MAX_FAILURES_PER_USER), ("addr:" + address, MAX_FAILURES_PER_ADDRESS)):
        n, last = _failures(conn, key, now)
        if n >= limit:
            wait = max(wait, last + LOCK_S - now)
    return wait


def authenticate(conn: sqlite3.Connection, username: str, password: str, address: str = "",
                 now: float | None = None) -> User:
    """The user, or LoginRefused: too many recent failures (for the account or the address),
    a wrong name or password (one answer for both, as slow for both), a disabled account."""
    ensure_schema(conn)
    at = time.time() if now is None else now
    wait = _locked(conn, username, address, at)
    if wait > 0:
        raise LoginRefused("locked", "too many failed logins", wait)
    r = conn.execute("SELECT password_hash FROM users WHERE username = ?", (username,)).fetchone()
    try:
        ok = _hasher.verify(r[0] if r else _DUMMY, password) and r is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        with transaction(conn):
            conn.executemany("INSERT INTO login_failures(key, at) VALUES (?, ?)",
                             [("user:" + username, at), ("addr:" + address, at)])
            conn.execute("DELETE FROM login_failures WHERE at < ?", (at - FAILURE_WINDOW_S,))
        raise LoginRefused("bad", "wrong user name or password")
    user = get(conn, username)
    assert user is not None
    if user.disabled:
        raise LoginRefused("disabled", "this account is disabled")
    with transaction(conn):
        conn.execute("DELETE FROM login_failures WHERE key = ?", ("user:" + username,))
        if _hasher.check_needs_rehash(r[0]):
            conn.execute("UPDATE users SET password_hash = ? WHERE username = ?", (_hasher.hash(password), username))
    return user


# ---- sessions ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    expires: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(conn: sqlite3.Connection, user: User, address: str = "", ttl_s: float = SESSION_TTL_S,
                  now: float | None = None) -> tuple[str, Session]:
    """A new session: (the token for the cookie, the session with its CSRF token)."""
    at = time.time() if now is None else now
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with transaction(conn):
        conn.execute("INSERT INTO user_sessions(token_hash, username, csrf, created_at, last_seen, expires, address) "
                     "VALUES (?,?,?,?,?,?,?)", (_digest(token), user.username, csrf, at, at, at + ttl_s, address))
        conn.execute("DELETE FROM user_sessions WHERE expires < ?", (at,))
    return token, Session(user, csrf, at + ttl_s)


def session(conn: sqlite3.Connection, token: str, ttl_s: float = SESSION_TTL_S, now: float | None = None) -> Session | None:
    """The live session of a cookie token (its expiry slides), or None: unknown, expired, or its
    user disabled or gone."""
    if not token:
        return None
    at = time.time() if now is None else now
    r = conn.execute("SELECT username, csrf, expires, last_seen FROM user_sessions WHERE token_hash = ?",
                     (_digest(token),)).fetchone()
    if r is None or r[2] < at:
        return None
    user = get(conn, r[0])
    if user is None or user.disabled:
        return None
    expires = r[2]
    if at - r[3] > 60:  # one write a minute at most per session
        expires = at + ttl_s
        with transaction(conn):
            conn.execute("UPDATE user_sessions SET last_seen = ?, expires = ? WHERE token_hash = ?",
                         (at, expires, _digest(token)))
    return Session(user, r[1], expires)


def end_session(conn: sqlite3.Connection, token: str) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM user_sessions WHERE token_hash = ?", (_digest(token),))
