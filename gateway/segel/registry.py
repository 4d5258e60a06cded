"""The registry: which trackers exist, their key epochs, boxes and pairings (SQLite).

The single source of truth for provisioning, the gateway's verifier and the broker ACLs. Keys
are not stored: a device key is derived from the fleet secret, the device id and its key epoch.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from segel import protocol
from segel.ids import SIM_FIRST, device_hex

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id   INTEGER PRIMARY KEY,
    key_epoch   INTEGER NOT NULL DEFAULT 0,
    board       TEXT NOT NULL DEFAULT 'tbeam-v1.1',
    role        TEXT NOT NULL DEFAULT 'tracker',
    created_at  REAL NOT NULL,
    note        TEXT
);
CREATE TABLE IF NOT EXISTS boxes (
    box_id      TEXT PRIMARY KEY,
    device_id   INTEGER UNIQUE REFERENCES devices(device_id),
    tps         TEXT,
    contest     TEXT
);
CREATE TABLE IF NOT EXISTS pairings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          REAL NOT NULL,
    box_id      TEXT NOT NULL,
    device_id   INTEGER,
    tps         TEXT,
    previous_box TEXT,
    forced      INTEGER NOT NULL DEFAULT 0,
    by          TEXT
);
CREATE TABLE IF NOT EXISTS fleet_meta (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL
) WITHOUT ROWID;
"""


class RegistryError(ValueError):
    pass


# Columns added after the first release: (name, declaration). Added to an older database on open.
DEVICE_COLUMNS = (
    ("revoked_at", "REAL"),  # `segel device revoke`: its frames are refused from then on
    ("revoked_reason", "TEXT"),
    ("prev_epoch", "INTEGER"),  # `segel keys rotate`: the epoch still accepted until prev_until
    ("prev_until", "REAL"),
    ("prev_secret", "INTEGER NOT NULL DEFAULT 0"),  # 1: the previous epoch's key derives from the previous secret
)


def migrate(conn: sqlite3.Connection) -> None:
    """Add the columns newer code needs to an older registry (idempotent)."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(devices)")}
    for name, decl in DEVICE_COLUMNS:
        if name not in have:
            conn.execute(f"ALTER TABLE devices ADD COLUMN {name} {decl}")


@dataclass(frozen=True)
class Device:
    device_id: int
    key_epoch: int
    board: str
    role: str
    box_id: str | None = None
    tps: str | None = None
    revoked_at: float | None = None
    revoked_reason: str | None = None
    prev_epoch: int | None = None  # still accepted (a rotation's transition) until prev_until
    prev_until: float | None = None
    prev_secret: bool = False

    def accepts_previous(self, now: float) -> bool:
        """Frames under the previous key epoch are still accepted (rotation in progress)."""
        return self.prev_epoch is not None and (self.prev_until is None or now < self.prev_until)

    @property
    def hex(self) -> str:
        return device_hex(self.device_id)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """All or nothing: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error. Inside a transaction
    the caller already holds (the pipeline's, a judge's), it only joins that one."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_DEVICE_SELECT = ("SELECT d.device_id, d.key_epoch, d.board, d.role, b.box_id, b.tps, d.revoked_at, d.revoked_reason, "
                  "d.prev_epoch, d.prev_until, d.prev_secret FROM devices d LEFT JOIN boxes b ON b.device_id = d.device_id")


def _device(r: tuple) -> Device:
    return Device(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], bool(r[10]))


class Registry:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(SCHEMA)
        migrate(conn)

    def add_device(self, device_id: int, board: str = "tbeam-v1.1", role: str = "tracker", key_epoch: int = 0) -> Device:
        """Register a device under an id given by the caller (provisioning takes `next_free_ids`,
        which never reaches the simulator's range)."""
        if not 0 <= device_id <= protocol.DEVICE_ID_MAX:
            raise RegistryError(f"device id {device_id} out of range")
        try:
            self.conn.execute(
                "INSERT INTO devices(device_id, key_epoch, board, role, created_at) VALUES (?,?,?,?,?)",
                (device_id, key_epoch, board, role, time.time()),
            )
        except sqlite3.IntegrityError as e:
            raise RegistryError(f"device {device_hex(device_id)} is already registered") from e
        return Device(device_id, key_epoch, board, role)

    def next_free_ids(self, count: int, start: int = 0x000101) -> list[int]:
        row = self.conn.execute("SELECT MAX(device_id) FROM devices WHERE device_id < ?", (SIM_FIRST,)).fetchone()
        first = max(start, (row[0] or 0) + 1)
        if first + count - 1 >= SIM_FIRST:  # the ids above are the simulator's: never handed out
            raise RegistryError("no free device ids left")
        return list(range(first, first + count))

    def get(self, device_id: int) -> Device | None:
        row = self.conn.execute(_DEVICE_SELECT + " WHERE d.device_id = ?", (device_id,)).fetchone()
        return _device(row) if row else None

    def devices(self) -> list[Device]:
        rows = self.conn.execute(_DEVICE_SELECT + " ORDER BY d.device_id").fetchall()
        return [_device(r) for r in rows]

    def revoke(self, device_id: int, reason: str, at: float | None = None) -> Device:
        """A stolen or lost tracker: its frames are refused from now on (and raise an alert)."""
        cur = self.conn.execute("UPDATE devices SET revoked_at = ?, revoked_reason = ? WHERE device_id = ?",
                                (at if at is not None else time.time(), reason, device_id))
        if cur.rowcount == 0:
            raise RegistryError(f"device {device_hex(device_id)} is not registered")
        return self.get(device_id)  # type: ignore[return-value]

    def unrevoke(self, device_id: int) -> Device:
        """A revoked tracker that was found: accepted again (re-image it first if its key may have leaked)."""
        cur = self.conn.execute("UPDATE devices SET revoked_at = NULL, revoked_reason = NULL WHERE device_id = ?",
                                (device_id,))
        if cur.rowcount == 0:
            raise RegistryError(f"device {device_hex(device_id)} is not registered")
        return self.get(device_id)  # type: ignore[return-value]

    def rotate(self, device_ids: list[int], transition_s: float, new_secret: bool = False,
               at: float | None = None) -> list[tuple[int, int, int]]:
        """A new key epoch for each device, the old one still accepted for `transition_s` (the
        trackers move to the new key when they are re-imaged). Returns (device, old, new) epochs."""
        now = at if at is not None else time.time()
        out = []
        with transaction(self.conn):
            for d in device_ids:
                dev = self.get(d)
                if dev is None:
                    raise RegistryError(f"device {device_hex(d)} is not registered")
                self.conn.execute("UPDATE devices SET prev_epoch = key_epoch, key_epoch = key_epoch + 1, prev_until = ?, "
                                  "prev_secret = ? WHERE device_id = ?", (now + transition_s, int(new_secret), d))
                out.append((d, dev.key_epoch, dev.key_epoch + 1))
        return out

    def bump_epoch(self, device_id: int) -> int:
        """A new key epoch (the tracker is being re-imaged): returns the new epoch. The tracker
        gets the new key now, so no earlier epoch is accepted any more."""
        cur = self.conn.execute("UPDATE devices SET key_epoch = key_epoch + 1, prev_epoch = NULL, prev_until = NULL, "
                                "prev_secret = 0 WHERE device_id = ?", (device_id,))
        if cur.rowcount == 0:
            raise RegistryError(f"device {device_hex(device_id)} is not registered")
        return int(self.conn.execute("SELECT key_epoch FROM devices WHERE device_id=?", (device_id,)).fetchone()[0])

    def box_of(self, device_id: int) -> tuple[str, str | None] | None:
        row = self.conn.execute("SELECT box_id, tps FROM boxes WHERE device_id = ?", (device_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def pair(self, box_id: str, device_id: int, tps: str | None = None, contest: str | None = None,
             force: bool = False, by: str | None = None) -> None:
        """Bind a tracker to a box (and its TPS); re-pairing is recorded in `pairings`.

        Refuses a tracker that is already on another box unless force=True."""
        if self.get(device_id) is None:
            raise RegistryError(f"device {device_hex(device_id)} is not registered: provision it first")
        current = self.box_of(device_id)
        previous_box = None
        if current and current[0] != box_id:
            if not force:
                raise RegistryError(
                    f"device {device_hex(device_id)} is already on box {current[0]}; use --force to move it"
                )
            previous_box = current[0]
        with transaction(self.conn):
            if previous_box:
                self.conn.execute("UPDATE boxes SET device_id = NULL WHERE box_id = ?", (previous_box,))
            self.conn.execute(
                "INSERT INTO boxes(box_id, device_id, tps, contest) VALUES (?,?,?,?) "
                "ON CONFLICT(box_id) DO UPDATE SET device_id=excluded.device_id, "
                "tps=COALESCE(excluded.tps, boxes.tps), contest=COALESCE(excluded.contest, boxes.contest)",
                (box_id, device_id, tps, contest),
            )
            self.conn.execute(
                "INSERT INTO pairings(at, box_id, device_id, tps, previous_box, forced, by) VALUES (?,?,?,?,?,?,?)",
                (time.time(), box_id, device_id, tps, previous_box, int(force), by),
            )

    def unpair(self, box_id: str, by: str | None = None) -> int | None:
        """Take the tracker off a box (recorded in `pairings` with no device); returns the tracker
        that was on it, None if it had none."""
        row = self.conn.execute("SELECT device_id FROM boxes WHERE box_id = ?", (box_id,)).fetchone()
        if row is None:
            raise RegistryError(f"no box {box_id!r}")
        if row[0] is None:
            return None
        with transaction(self.conn):
            self.conn.execute("UPDATE boxes SET device_id = NULL WHERE box_id = ?", (box_id,))
            self.conn.execute("INSERT INTO pairings(at, box_id, device_id, tps, previous_box, forced, by) "
                              "VALUES (?,?,NULL,NULL,NULL,0,?)", (time.time(), box_id, by))
        return int(row[0])


# ---- fleet secret -------------------------------------------------------------------------------

FINGERPRINT_KEY = "fleet_fingerprint"
PREVIOUS_FINGERPRINT_KEY = "previous_fleet_fingerprint"  # during `segel keys rotate --new-secret`


def secret_fingerprint(secret: bytes) -> str:
    """A short public name of a fleet secret: HMAC-SHA256(secret, "segel fleet fingerprint v1"),
    first 8 bytes as hex. It identifies the secret without revealing it (HMAC is one-way)."""
    return hmac.new(secret, b"segel fleet fingerprint v1", hashlib.sha256).hexdigest()[:16]


FLEET_INTERVAL_KEY = "fleet_report_interval_s"  # fleet.toml's report interval, as provisioned


def get_meta(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM fleet_meta WHERE name = ?", (name,)).fetchone()
    return str(row[0]) if row else None


def set_meta(conn: sqlite3.Connection, name: str, value: object) -> None:
    conn.execute("INSERT OR REPLACE INTO fleet_meta(name, value) VALUES (?, ?)", (name, str(value)))


def stored_fingerprint(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM fleet_meta WHERE name = ?", (FINGERPRINT_KEY,)).fetchone()
    return str(row[0]) if row else None


def record_fingerprint(conn: sqlite3.Connection, secret: bytes) -> None:
    """Store the fingerprint of the secret this registry is made with (at `segel fleet init`)."""
    conn.execute("INSERT OR REPLACE INTO fleet_meta(name, value) VALUES (?, ?)",
                 (FINGERPRINT_KEY, secret_fingerprint(secret)))


def check_fleet_secret(conn: sqlite3.Connection, secret: bytes, secret_path: str | Path, db_path: str | Path) -> bool:
    """Refuse a fleet secret that is not the one the registry was made with: every genuine frame
    would fail its MAC and become a critical forged_frame alert on every box. A registry without a
    fingerprint (made before fingerprints, or by a test) gets this secret's, once, and True is
    returned so the caller can say so."""
    want = stored_fingerprint(conn)
    have = secret_fingerprint(secret)
    if want is None:
        with transaction(conn):
            if stored_fingerprint(conn) is None:
                record_fingerprint(conn, secret)
        return True
    if want != have:
        raise RegistryError(
            f"the fleet secret {secret_path} (fingerprint {have}) is not the one the registry {db_path} was made "
            f"with (fingerprint {want}): every tracker's frames would be refused as forged. Point "
            "gateway.fleet_secret (or --fleet-secret) at the fleet.secret that `segel fleet init` wrote for this "
            "registry, or gateway.db at that fleet's registry. `segel fleet show` prints both fingerprints.")
    return False


def check_previous_secret(conn: sqlite3.Connection, previous: bytes, path: str | Path) -> None:
    """The gateway's previous_fleet_secret must be the one the registry rotated away from."""
    row = conn.execute("SELECT value FROM fleet_meta WHERE name = ?", (PREVIOUS_FINGERPRINT_KEY,)).fetchone()
    have = secret_fingerprint(previous)
    if row is None:
        raise RegistryError(f"gateway.previous_fleet_secret {path} is set but the registry is in no rotation with a "
                            "new secret (or `segel keys finish` ended it): remove the setting")
    if row[0] != have:
        raise RegistryError(f"gateway.previous_fleet_secret {path} (fingerprint {have}) is not the secret the "
                            f"registry rotated away from (fingerprint {row[0]})")


def create_fleet_secret(path: str | Path) -> bytes:
    """Write a new 32-byte fleet secret (hex) readable by its owner only; refuses to overwrite."""
    p = Path(path)
    if p.exists():
        raise RegistryError(f"{p} already exists; a fleet secret is never overwritten (every key derives from it)")
    p.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret.hex() + "\n")
    return secret


def load_fleet_secret(path: str | Path) -> bytes:
    p = Path(path)
    try:
        text = p.read_text().strip()
    except FileNotFoundError as e:
        raise RegistryError(f"fleet secret {p} not found: create one with `segel fleet init` (it writes "
                            "fleet/fleet.secret) and point gateway.fleet_secret or --fleet-secret at it") from e
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        raise RegistryError(f"fleet secret {p} is readable by others (mode {mode:o}): chmod 600 {p}")
    try:
        secret = bytes.fromhex(text)
    except ValueError as e:
        raise RegistryError(f"fleet secret {p} is not hex") from e
    if len(secret) < 16:
        raise RegistryError(f"fleet secret {p} is too short ({len(secret)} bytes, need at least 16)")
    return secret


class KeyRing:
    """Device keys derived on demand from the fleet secret and the registry's key epochs."""

    def __init__(self, fleet_secret: bytes, registry: Registry, previous_secret: bytes | None = None) -> None:
        self._secret = fleet_secret
        self._previous = previous_secret  # after `segel keys rotate --new-secret`, until every tracker moved
        self._registry = registry
        self._cache: dict[tuple[int, int], protocol.DeviceKeys] = {}

    def __repr__(self) -> str:  # never show the secret
        return "KeyRing(<fleet secret hidden>)"

    def device_key(self, device_id: int, key_epoch: int) -> bytes:
        return protocol.derive_device_key(self._secret, device_id, key_epoch)

    def previous_key(self, device_id: int, key_epoch: int) -> bytes | None:
        """A key from the previous fleet secret (a rotation with a new secret in progress); None
        when the gateway was not given it (gateway.previous_fleet_secret)."""
        return protocol.derive_device_key(self._previous, device_id, key_epoch) if self._previous else None

    def keys_for(self, device_id: int) -> protocol.DeviceKeys | None:
        dev = self._registry.get(device_id)
        if dev is None:
            return None
        k = (device_id, dev.key_epoch)
        if k not in self._cache:
            self._cache[k] = protocol.DeviceKeys.from_device_key(self.device_key(device_id, dev.key_epoch))
        return self._cache[k]
