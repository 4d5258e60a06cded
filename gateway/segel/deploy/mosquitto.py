"""Broker security for a real deployment: MQTT accounts, the Mosquitto password file, the ACL
file and mosquitto.conf, all generated from the registry (docs/operations.md).

Who may do what (topics from `segel.edge.topics`):

| role     | username            | publish                                   | read (subscribe)          |
|----------|---------------------|-------------------------------------------|---------------------------|
| tracker  | its device id       | segel/up/<device>                         | segel/down/<device>       |
| bridge   | its bridge id       | segel/bridge/<id>/up, .../status          | segel/bridge/<id>/down    |
| gateway  | segel-gateway       | downlinks, alerts, segel/gateway/status   | all uplinks, bridge status|
| consumer | segel-dashboard ... | nothing                                   | alerts, gateway and bridge status |

Every rule names the account's own topics explicitly (no `pattern` lines): a pattern applies to
every user, so a pattern for trackers would also give the gateway and the dashboards a
`segel/up/<their name>` topic. Anyone not in the registry has no rule and can do nothing.

Passwords: a tracker's MQTT password is derived from its device key (`tracker_password`), so it
changes with the key epoch when a tracker is re-imaged and the provisioning step can put it into
the tracker's config without another secret to keep. Services (bridges, the gateway, consumers)
get random passwords kept in `credentials.json` (owner-only) in the output folder and reused on
the next run unless rotated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from segel import protocol
from segel.edge import topics
from segel.ids import device_hex
from segel.registry import Registry

TRACKER, BRIDGE, GATEWAY, CONSUMER = "tracker", "bridge", "gateway", "consumer"
ROLES = (TRACKER, BRIDGE, GATEWAY, CONSUMER)
DEFAULT_GATEWAY = "segel-gateway"
DEFAULT_CONSUMERS = ("segel-dashboard",)

# mosquitto_passwd's defaults (mosquitto 2.0 src/password_mosq.h): PBKDF2-SHA512, 12-byte salt,
# 101 iterations, 64-byte hash, written as `user:$7$<iterations>$<b64 salt>$<b64 hash>`.
PBKDF2_ITERATIONS = 101
SALT_LEN = 12

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HEX6 = re.compile(r"^[0-9a-f]{6}$")


class DeployError(ValueError):
    pass


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    password: str

    def __repr__(self) -> str:  # never print a password by accident
        return f"Account({self.username!r}, {self.role!r}, <password hidden>)"


# ---- passwords ---------------------------------------------------------------------------------


def tracker_password(fleet_secret: bytes, device_id: int, key_epoch: int) -> str:
    """The MQTT password of a tracker: HMAC-SHA256(device key, "segel mqtt password v1"), 32
    base64url characters. The tracker could compute it from its own key; the gateway from the
    fleet secret. A new key epoch gives a new password, so an old image stops working."""
    key = protocol.derive_device_key(fleet_secret, device_id, key_epoch)
    mac = hmac.new(key, b"segel mqtt password v1", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode()[:32]


def new_service_password() -> str:
    return secrets.token_urlsafe(24)


def hash_password(password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The `$7$` (PBKDF2-SHA512) form mosquitto_passwd writes and Mosquitto 2.x checks."""
    salt = secrets.token_bytes(SALT_LEN) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7":
        raise DeployError(f"not a $7$ (PBKDF2-SHA512) password hash: {encoded[:10]}...")
    salt, want = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]))
    return hmac.compare_digest(got, want)


# ---- accounts and their rules ------------------------------------------------------------------


def check_name(name: str, role: str) -> str:
    """A bridge or service username must be a single MQTT topic level without wildcards."""
    if not _NAME.match(name):
        raise DeployError(
            f"{role} name {name!r} is not usable as an MQTT username and topic level: use letters, digits, "
            "'_', '-', '.' (up to 64, starting with a letter or digit)"
        )
    if role != TRACKER and _HEX6.match(name):
        raise DeployError(f"{role} name {name!r} looks like a tracker id (six hex digits): pick another name")
    return name


def rules(account: Account) -> list[tuple[str, str]]:
    """(access, topic) pairs for the ACL file; access is read, write or readwrite."""
    u = account.username
    if account.role == TRACKER:
        return [("write", topics.tracker_up(u)), ("read", topics.tracker_down(u))]
    if account.role == BRIDGE:
        return [("write", topics.bridge_up(u)), ("write", topics.bridge_status(u)),
                ("read", topics.bridge_down(u))]
    if account.role == GATEWAY:
        return [
            ("read", topics.TRACKER_UP_SUB), ("read", topics.BRIDGE_UP_SUB),
            ("read", topics.bridge_status("+")),
            ("write", topics.tracker_down("+")), ("write", topics.bridge_down("+")),
            ("write", topics.ALERT_SUB), ("readwrite", topics.GATEWAY_STATUS), ("write", topics.CHECKPOINT_SUB),
        ]
    if account.role == CONSUMER:
        return [("read", topics.ALERT_SUB), ("read", topics.GATEWAY_STATUS), ("read", topics.bridge_status("+")),
                ("read", topics.CHECKPOINT_SUB)]
    raise DeployError(f"unknown role {account.role!r} (one of {', '.join(ROLES)})")


def load_credentials(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DeployError(f"{path} is not valid JSON ({e}); fix or remove it to issue new service passwords") from e
    if not isinstance(data, dict):
        raise DeployError(f"{path}: expected an object {{username: {{role, password}}}}")
    return data


def build_accounts(
    registry: Registry,
    fleet_secret: bytes,
    bridges: Iterable[str] = (),
    gateway: str = DEFAULT_GATEWAY,
    consumers: Iterable[str] = DEFAULT_CONSUMERS,
    known: dict[str, dict[str, str]] | None = None,
    rotate: Iterable[str] = (),
) -> list[Account]:
    """Every account the broker should know: the registry's trackers (and devices registered with
    role "bridge"), the named bridges, the gateway and the consumers. Service passwords come from
    `known` (a previous credentials.json) unless listed in `rotate`."""
    known = known or {}
    rotate = set(rotate)
    out: list[Account] = []
    seen: dict[str, str] = {}

    def add(name: str, role: str, password: str) -> None:
        if name in seen:
            raise DeployError(f"username {name!r} is used twice (as {seen[name]} and as {role})")
        seen[name] = role
        out.append(Account(name, role, password))

    def service(name: str, role: str) -> None:
        check_name(name, role)
        add(name, role, _known_or_new(known, name, role, rotate))

    for dev in registry.devices():
        if dev.role == BRIDGE:  # a bridge registered as a device is named by its hex id
            add(dev.hex, BRIDGE, _known_or_new(known, dev.hex, BRIDGE, rotate))
        else:  # trackers (and any other device role) publish as trackers
            add(dev.hex, TRACKER, tracker_password(fleet_secret, dev.device_id, dev.key_epoch))
    for b in bridges:
        service(b, BRIDGE)
    service(gateway, GATEWAY)
    for c in consumers:
        service(c, CONSUMER)
    unknown_rotate = rotate - {a.username for a in out if a.role != TRACKER}
    if unknown_rotate:
        raise DeployError(f"cannot rotate {sorted(unknown_rotate)}: no such service account")
    return out


def _known_or_new(known: dict[str, dict[str, str]], name: str, role: str, rotate: set[str]) -> str:
    prev = known.get(name)
    if prev and prev.get("role") == role and prev.get("password") and name not in rotate:
        return prev["password"]
    return new_service_password()


def password_file(accounts: Sequence[Account], iterations: int = PBKDF2_ITERATIONS) -> str:
    return "".join(f"{a.username}:{hash_password(a.password, iterations=iterations)}\n" for a in accounts)


def acl_file(accounts: Sequence[Account]) -> str:
    lines = [
        "# Segel broker ACL, generated by `segel deploy mosquitto` from the registry: do not edit,",
        "# regenerate. No anonymous rules: a client without a rule below can neither publish nor read.",
        "",
    ]
    for a in accounts:
        lines.append(f"# {a.role}")
        lines.append(f"user {a.username}")
        lines.extend(f"topic {access} {topic}" for access, topic in rules(a))
        lines.append("")
    return "\n".join(lines)


# ---- mosquitto.conf ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MosquittoSettings:
    """Where the broker listens and finds its files. Defaults are the Debian package's layout."""

    conf_dir: str = "/etc/mosquitto/segel"
    persistence_dir: str = "/var/lib/mosquitto/"
    plain_port: int = 1883  # loopback only: the gateway and tools on this host
    tls_port: int = 8883  # the network: trackers at depots, remote bridges, dashboards
    tls_bind: str = ""  # "" = every interface
    # Opt-in plain listener on one depot LAN address ("10.0.0.2:1883"), for trackers whose
    # firmware speaks MQTT without TLS over depot WiFi. Frames are encrypted and MAC'd end to end
    # and the ACL still binds each account to its own topics; only the password crosses in clear.
    depot_listener: str = ""
    cafile: str = ""  # defaults to <conf_dir>/ca.crt etc.
    certfile: str = ""
    keyfile: str = ""
    session_expiry: str = "7d"
    # What one client's session may hold while it is away: None = sized from the registry (see
    # queue_limit), at least QUEUE_FLOOR. Bounds a stray session (a one-off client id) as well.
    max_queued: int | None = None
    log_dest: str = "syslog"
    run_as: str = "mosquitto"  # started as root, Mosquitto drops to this user (who must read passwd/acl)


QUEUE_FLOOR = 100_000  # messages: ~12 MB of broker memory per session at most (24-byte frames + bookkeeping)
HOLD_HOURS = 48.0  # how long the gateway may be away without the broker dropping a QoS 1 uplink


def queue_limit(devices: int, report_interval_s: float = 300.0, hold_hours: float = HOLD_HOURS) -> int:
    """Messages one session may queue: every device's uplinks for `hold_hours` (one position per
    report interval heard by up to three base stations, plus status), at least QUEUE_FLOOR."""
    per_hour = 3600.0 / max(report_interval_s, 1.0) * 3 + 2
    return max(QUEUE_FLOOR, int(devices * per_hour * hold_hours))


def mosquitto_conf(s: MosquittoSettings = MosquittoSettings()) -> str:
    ca = s.cafile or f"{s.conf_dir}/ca.crt"
    cert = s.certfile or f"{s.conf_dir}/server.crt"
    key = s.keyfile or f"{s.conf_dir}/server.key"
    tls_listener = f"listener {s.tls_port} {s.tls_bind}".rstrip()
    depot = ""
    if s.depot_listener:
        host, _, port = s.depot_listener.rpartition(":")
        if not host or not port.isdigit() or host in ("0.0.0.0", "::", "*"):
            raise DeployError(f"depot listener {s.depot_listener!r}: give one LAN address and a port, e.g. 10.0.0.2:1883")
        depot = (f"\n# Plain MQTT on the depot LAN only (trackers without TLS; see docs/operations.md).\n"
                 f"listener {port} {host}\n")
    persistence = s.persistence_dir if s.persistence_dir.endswith("/") else s.persistence_dir + "/"
    return f"""\
# Mosquitto 2.x for Segel, generated by `segel deploy mosquitto` (docs/operations.md).

# Started as root (systemd), the broker drops to this user: passwd and acl must be readable by
# it (install -m 640 -g mosquitto), persistence_location writable.
user {s.run_as}

# One password file and one ACL for every listener; nobody connects without an account.
per_listener_settings false
allow_anonymous false
password_file {s.conf_dir}/passwd
acl_file {s.conf_dir}/acl

# Plain MQTT on loopback only (the gateway on this host).
listener {s.plain_port} 127.0.0.1
{depot}
# MQTT over TLS for everything that comes over a network.
{tls_listener}
cafile {ca}
certfile {cert}
keyfile {key}
tls_version tlsv1.2

# The gateway's QoS 1 session survives a broker restart.
persistence true
persistence_location {persistence}
autosave_interval 60

# A slow or stopped gateway must not make the broker drop QoS 1 uplinks: Mosquitto's default
# (max_queued_messages 1000) drops the 1001st message for a client silently. The limit here is
# sized from the fleet (`segel deploy mosquitto`: every tracker's uplinks for {HOLD_HOURS:.0f} hours,
# at least {QUEUE_FLOOR:,}), so the gateway's session holds a long outage, and a stray persistent
# session (a one-off client id, docs/mqtt.md) holds no more than that either; beyond it the
# trackers keep their frames in flash until acknowledged. max_queued_bytes 0: no second limit
# in bytes. persistent_client_expiration forgets a session (and its queue) unused this long.
max_queued_messages {s.max_queued or QUEUE_FLOOR}
max_queued_bytes 0
max_inflight_messages 20
persistent_client_expiration {s.session_expiry}

# Frames are tens of bytes; refuse anything absurd before it is queued.
max_packet_size 65536

log_dest {s.log_dest}
log_type error
log_type warning
log_type notice
connection_messages true
"""


@dataclass(frozen=True)
class Written:
    out_dir: Path
    accounts: list[Account]
    files: list[Path]
    max_queued: int = QUEUE_FLOOR


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_mosquitto(
    out_dir: str | Path,
    registry: Registry,
    fleet_secret: bytes,
    settings: MosquittoSettings = MosquittoSettings(),
    bridges: Iterable[str] = (),
    gateway: str = DEFAULT_GATEWAY,
    consumers: Iterable[str] = DEFAULT_CONSUMERS,
    rotate: Iterable[str] = (),
) -> Written:
    """Write passwd, acl, mosquitto.conf and credentials.json (service passwords, owner-only)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    creds_path = out / "credentials.json"
    accounts = build_accounts(registry, fleet_secret, bridges, gateway, consumers, load_credentials(creds_path), rotate)
    if settings.max_queued is None:
        settings = replace(settings, max_queued=queue_limit(sum(1 for a in accounts if a.role in (TRACKER, BRIDGE))))
    creds = {a.username: {"role": a.role, "password": a.password} for a in accounts if a.role != TRACKER}
    _write_private(creds_path, json.dumps(creds, indent=2, sort_keys=True) + "\n")
    # group-readable so that `chgrp mosquitto` is all the broker needs; never world-readable
    _write_private(out / "passwd", password_file(accounts), 0o640)
    _write_private(out / "acl", acl_file(accounts), 0o640)
    (out / "mosquitto.conf").write_text(mosquitto_conf(settings))
    return Written(out, accounts, [out / "mosquitto.conf", out / "passwd", out / "acl", creds_path],
                   settings.max_queued or QUEUE_FLOOR)


def tracker_username(device_id: int) -> str:
    return device_hex(device_id)
