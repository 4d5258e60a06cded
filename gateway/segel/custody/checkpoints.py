"""Signed checkpoints of the ledger: the instance's Ed25519 signing key and the signed heads of the box chains.

At an interval the gateway takes every box chain that grew since its last checkpoint and signs a
small document: the box, its head (last entry's hash and number) and the hashes of the entries
since the previous checkpoint. Checkpoints are stored (`ledger_checkpoints`) and published where
oversight keeps a copy (MQTT, webhooks, an append-only file: `segel.service.checkpointer`); a
chain rewritten after publication no longer matches them. Without a usable key the checkpoint is
still stored and published, unsigned, with the reason (`missing`). Format: docs/custody.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from segel.custody import ledger
from segel.i18n import N_

SCHEMA = "segel.checkpoint/1"
TABLES = """
CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT, box TEXT NOT NULL, seq INTEGER NOT NULL, head TEXT NOT NULL,
    at_ms INTEGER NOT NULL, key_id TEXT, payload TEXT NOT NULL, signature TEXT, missing TEXT,
    published_ms INTEGER
);
CREATE INDEX IF NOT EXISTS ledger_checkpoints_box ON ledger_checkpoints(box, seq);
CREATE INDEX IF NOT EXISTS ledger_checkpoints_unpublished ON ledger_checkpoints(published_ms) WHERE published_ms IS NULL;
CREATE TABLE IF NOT EXISTS signing_keys (
    key_id TEXT PRIMARY KEY, public_key TEXT NOT NULL, first_used_ms INTEGER NOT NULL
) WITHOUT ROWID
"""


class SigningKeyError(ValueError):
    """A signing key that cannot be created or used; str(e) says why and what to do."""


def ensure_schema(conn: sqlite3.Connection) -> None:
    ledger.ensure_schema(conn)
    for stmt in TABLES.split(";"):
        if stmt.strip():
            conn.execute(stmt)


# ---- the signing key ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    public_hex: str
    key_id: str
    path: str

    def sign(self, data: bytes) -> str:
        return self.private.sign(data).hex()


def key_id(public_hex: str) -> str:
    """A key's short name: the first 16 hex digits of SHA-256 over its 32 raw bytes."""
    return hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:16]


def _public_hex(k: Ed25519PrivateKey) -> str:
    return k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def create_key(path: str | Path) -> SigningKey:
    """A new Ed25519 key in a PEM file only its owner can read (0600); never overwrites one."""
    p = Path(path)
    if p.exists():
        raise SigningKeyError(f"{p} already exists; a signing key is never overwritten (checkpoints signed with it "
                        "could no longer be matched to a new one): `segel keys show` prints it")
    p.parent.mkdir(parents=True, exist_ok=True)
    k = Ed25519PrivateKey.generate()
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub = _public_hex(k)
    return SigningKey(k, pub, key_id(pub), str(p))


def load_key(path: str | Path) -> SigningKey:
    p = Path(path)
    try:
        mode = stat.S_IMODE(p.stat().st_mode)
        data = p.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"signing key {p} not found: create it with `segel keys init --key {p}`") from None
    except OSError as e:
        raise SigningKeyError(f"signing key {p} cannot be read: {e.strerror}") from None
    if mode & 0o077:
        raise SigningKeyError(f"signing key {p} is readable by others (mode {mode:o}): chmod 600 {p}")
    try:
        k = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise SigningKeyError(f"signing key {p} is not an unencrypted PEM private key ({e})") from None
    if not isinstance(k, Ed25519PrivateKey):
        raise SigningKeyError(f"signing key {p} is not an Ed25519 key")
    pub = _public_hex(k)
    return SigningKey(k, pub, key_id(pub), str(p))


def public_key_from_text(text: str) -> str:
    """A public key given as 64 hex digits (what reports print) or a PEM file's text -> hex."""
    t = text.strip()
    if t.startswith("-----BEGIN"):
        k = serialization.load_pem_public_key(t.encode())
        if not isinstance(k, Ed25519PublicKey):
            raise SigningKeyError("not an Ed25519 public key")
        return k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    h = "".join(t.split()).lower()
    try:
        raw = bytes.fromhex(h)
    except ValueError:
        raise SigningKeyError("a public key is 64 hex digits (or a PEM file)") from None
    if len(raw) != 32:
        raise SigningKeyError(f"a public key is 32 bytes (64 hex digits), this one has {len(raw)}")
    return h


def public_pem(public_hex: str) -> str:
    k = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
    return k.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def checkpoint_ok(public_hex: str, env: dict) -> bool:
    """A checkpoint envelope's signature verifies with the key (over the statement of its payload)."""
    try:
        doc = json.loads(env["payload"])
        text = statement(doc)
    except (KeyError, TypeError, ValueError):
        return False
    return isinstance(env.get("signature"), str) and signature_ok(public_hex, text, env["signature"])


def signature_ok(public_hex: str, payload: str | bytes, signature_hex: str) -> bool:
    data = payload.encode() if isinstance(payload, str) else payload
    if len(signature_hex) != 128 or signature_hex.strip("0123456789abcdef"):
        return False  # one spelling only (lower-case hex), so an edited file never verifies
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(bytes.fromhex(signature_hex), data)
        return True
    except (InvalidSignature, ValueError):
        return False


# ---- checkpoints ---------------------------------------------------------------------------------


def payload_text(doc: dict) -> str:
    """The payload as stored and published (its signature covers `statement(payload)`)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


STATEMENT_FIELDS = ("instance", "box", "since", "seq", "head", "hashes_sha256", "at_ms", "key")
QR_PREFIX = "SEGELCP1"


def hashes_digest(hashes: list[str]) -> str:
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def statement(doc: dict) -> str:
    """The text a checkpoint's signature covers: the schema and eight fields of its payload, one a
    line (the entry hashes by their SHA-256), so a printed QR code can carry it whole."""
    vals = {**doc, "hashes_sha256": hashes_digest(list(doc["hashes"]))}
    return "\n".join([SCHEMA] + [str(vals[k]) for k in STATEMENT_FIELDS])


def qr_text(doc: dict, signature: str) -> str:
    """A checkpoint as one line for a QR code: SEGELCP1|instance|box|since|seq|head|hashes|at_ms|key|signature."""
    return "|".join([QR_PREFIX] + statement(doc).split("\n")[1:] + [signature])


def parse_qr(text: str) -> tuple[dict, str, str]:
    """(fields, statement, signature) from a scanned checkpoint QR code; ValueError if it is not one."""
    parts = text.strip().split("|")
    if len(parts) != len(STATEMENT_FIELDS) + 2 or parts[0] != QR_PREFIX:
        raise ValueError(f"not a Segel checkpoint code (it starts with {QR_PREFIX}| and has "
                         f"{len(STATEMENT_FIELDS) + 2} fields)")
    fields = dict(zip(STATEMENT_FIELDS, parts[1:-1]))
    return fields, "\n".join([SCHEMA] + parts[1:-1]), parts[-1]


def check_qr(text: str, public_keys: list[str]) -> tuple[bool, dict, str, dict]:
    """(valid, fields, message template, its params) for a checkpoint QR code scanned from a report."""
    try:
        fields, stmt, sig = parse_qr(text)
    except ValueError:
        return False, {}, N_("not a Segel checkpoint code (it starts with SEGELCP1| and has {n} fields)"), {
            "n": len(STATEMENT_FIELDS) + 2}
    for pub in public_keys:
        if key_id(pub) == fields["key"] and signature_ok(pub, stmt, sig):
            return True, fields, N_("signed by key {key}: the signature verifies"), {"key": fields["key"]}
    if not public_keys:
        return False, fields, N_("give the instance's public key (--key) to check the signature"), {}
    return False, fields, N_("the signature does not verify with the key you gave ({given}; the code names key "
                             "{key}): the printed checkpoint is not genuine"), {
        "given": ", ".join(key_id(p) for p in public_keys), "key": fields["key"]}


def envelope(payload: str, signature: str | None, missing: str | None) -> dict:
    return {"schema": SCHEMA, "payload": payload, "signature": signature, "missing": missing}


def make(conn: sqlite3.Connection, key: SigningKey | None, instance: str, now: float,
         missing: str | None = None) -> list[dict]:
    """Checkpoint every box chain that grew since its last checkpoint (inside the caller's
    transaction); returns the envelopes. key=None: unsigned, `missing` says why."""
    ensure_schema(conn)
    at_ms = ledger.ms(now)
    last = dict(conn.execute("SELECT box, MAX(seq) FROM ledger_checkpoints GROUP BY box").fetchall())
    heads = conn.execute("SELECT box, MAX(seq) FROM custody_ledger GROUP BY box").fetchall()
    changed = [(b, s) for b, s in heads if s > last.get(b, -1)]
    if key is not None and changed:
        conn.execute("INSERT OR IGNORE INTO signing_keys(key_id, public_key, first_used_ms) VALUES (?,?,?)",
                     (key.key_id, key.public_hex, at_ms))
    out = []
    for box, seq in changed:
        since = last.get(box, -1) + 1
        hashes = [h for (h,) in conn.execute("SELECT hash FROM custody_ledger WHERE box = ? AND seq >= ? AND seq <= ? "
                                             "ORDER BY seq", (box, since, seq))]
        doc = {"schema": SCHEMA, "instance": instance, "box": box, "since": since, "seq": seq, "head": hashes[-1],
               "hashes": hashes, "at_ms": at_ms, "key": key.key_id if key else None}
        text = payload_text(doc)
        sig = key.sign(statement(doc).encode()) if key else None
        why = None if key else (missing or "no signing key")
        conn.execute("INSERT INTO ledger_checkpoints(box, seq, head, at_ms, key_id, payload, signature, missing) "
                     "VALUES (?,?,?,?,?,?,?,?)", (box, seq, hashes[-1], at_ms, doc["key"], text, sig, why))
        out.append(envelope(text, sig, why))
    return out


def unpublished(conn: sqlite3.Connection, limit: int = 100_000) -> list[tuple[int, dict]]:
    ensure_schema(conn)
    return [(i, envelope(p, s, m)) for i, p, s, m in conn.execute(
        "SELECT id, payload, signature, missing FROM ledger_checkpoints WHERE published_ms IS NULL ORDER BY id LIMIT ?",
        (limit,))]


def mark_published(conn: sqlite3.Connection, ids: list[int], now: float) -> None:
    conn.executemany("UPDATE ledger_checkpoints SET published_ms = ? WHERE id = ?", [(ledger.ms(now), i) for i in ids])


def of_box(conn: sqlite3.Connection, box: str) -> list[dict]:
    ensure_schema(conn)
    return [envelope(p, s, m) for p, s, m in conn.execute(
        "SELECT payload, signature, missing FROM ledger_checkpoints WHERE box = ? ORDER BY seq, id", (box,))]


def latest(conn: sqlite3.Connection, box: str) -> dict | None:
    """The box's newest checkpoint as a dict: its payload fields plus signature, missing, published_ms."""
    ensure_schema(conn)
    row = conn.execute("SELECT payload, signature, missing, published_ms FROM ledger_checkpoints WHERE box = ? "
                       "ORDER BY seq DESC, id DESC LIMIT 1", (box,)).fetchone()
    if row is None:
        return None
    return {**json.loads(row[0]), "signature": row[1], "missing": row[2], "published_ms": row[3]}


def public_keys(conn: sqlite3.Connection) -> dict[str, str]:
    ensure_schema(conn)
    return dict(conn.execute("SELECT key_id, public_key FROM signing_keys ORDER BY first_used_ms").fetchall())
