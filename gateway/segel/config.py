"""Gateway configuration: one TOML file, then environment variables, then command-line flags.

Every setting has a key `section.name` (e.g. `mqtt.url`), an environment variable
`SEGEL_SECTION_NAME` (e.g. `SEGEL_MQTT_PASSWORD`) and a default. Relative paths are taken
relative to the config file's folder. A bad value is reported with its key, where it came from
and why; secrets (passwords, tokens) are never shown: `Config.redacted()` is what may be logged.
Reference: docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRET_KEYS = {"mqtt.password", "influx.password", "influx.token", "custody.webhook_secret", "notify.smtp_password",
               "national.password", "national.store_dsn"}


class ConfigError(ValueError):
    def __init__(self, key: str, reason: str, source: str = "") -> None:
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass
class GatewaySection:
    instance: str = "gateway"
    db: str = "segel.db"
    fleet_secret: str = "fleet.key"
    recording_dir: str = "recordings"
    recording_max_mb: float = 64.0
    recording_keep: int = 10
    batch_max: int = 1000
    tick_interval_s: float = 10.0
    health_interval_s: float = 60.0
    metrics_port: int = 0  # 0 = no Prometheus endpoint
    metrics_host: str = "127.0.0.1"
    replay_window: int = 4096
    reack_after_s: float = 5.0
    # QoS of the ack downlinks: an ack is only useful within seconds (the tracker's receive
    # window) and a lost one makes the tracker send again, which the gateway acks again; QoS 1
    # would double the broker round trips for nothing (docs/mqtt.md)
    ack_qos: int = 0
    security_log_keep: int = 1_000_000
    # `segel db prune`: the custody judge's copies of frames older than this are removed (a late
    # frame older than that is recorded but not judged); the ledger and alerts are always kept
    retention_days: float = 30.0
    # re-acks (acks for frames already accepted) each spend a downlink counter: a per-tracker
    # budget of reack_burst, refilled over reack_refill_s, bounds what replays can spend
    reack_burst: int = 8
    reack_refill_s: float = 60.0
    # bad MACs per tracker and per bridge: one log line per window, an alert at this many
    bad_mac_window_s: float = 600.0
    bad_mac_alert_after: int = 20


@dataclass
class MqttSection:
    url: str = "mqtt://127.0.0.1:1883"
    client_id: str = "segel-gateway"
    username: str = ""
    password: str = ""
    ca_file: str = ""
    tls_insecure: bool = False
    protocol: str = "5"  # "5" or "3.1.1" (the embedded amqtt broker)
    link: str = "process"  # paho in its own process (uses a second core) or "thread" (in the gateway's)
    session_expiry_s: int = 7 * 86400
    keepalive_s: int = 30
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 30.0


@dataclass
class InfluxSection:
    kind: str = "none"  # none | v1 | v2
    url: str = "http://127.0.0.1:8086"
    database: str = "segel"
    retention_policy: str = ""
    username: str = ""
    password: str = ""
    token: str = ""
    org: str = "-"
    bucket: str = "segel"
    batch_size: int = 5000
    timeout_s: float = 10.0
    create_database: bool = True
    ca_file: str = ""
    verify_tls: bool = True
    max_backoff_s: float = 30.0


@dataclass
class SanitySection:
    max_hdop: float = 5.0
    max_speed_kmh: float = 250.0
    min_jump_m: float = 500.0


@dataclass
class CustodySection:
    """The custody judge (docs/custody.md): places, boxes and the election calendar. With no
    calendar the gateway stores telemetry but judges nothing."""

    places: list[str] = field(default_factory=list)  # CSV/GeoJSON files imported at start (all or nothing)
    boxes: str = ""  # boxes CSV paired through the registry at start ("" = use what is registered)
    calendar: str = ""  # election calendar TOML; enables the rules
    report_interval_s: float = 0.0  # the trackers' report interval for the silence rule; 0 = calendar's
    webhook_urls: list[str] = field(default_factory=list)
    webhook_secret: str = ""  # signs webhook deliveries (HMAC-SHA256)
    webhook_min_severity: str = ""  # "" = every alert; else critical | high | warning | info
    signing_key: str = ""  # Ed25519 key (`segel keys init`) that signs ledger checkpoints; "" = unsigned, marked missing
    checkpoint_interval_s: float = 600.0  # sign the changed box chains this often (0 = never)
    checkpoint_file: str = ""  # append-only JSON-lines copy of every checkpoint ("" = none)
    webhook_template: str = "segel"  # segel | telegram | whatsapp | text (segel.notify.templates)
    webhook_chat_id: str = ""  # the Telegram chat or WhatsApp recipient of telegram/whatsapp templates


@dataclass
class LocaleSection:
    """What people read: the language (id = Bahasa Indonesia, en) and the zone times are shown in."""

    language: str = "id"
    timezone: str = "Asia/Makassar"  # WITA; WIB, WITA, WIT or an IANA name


@dataclass
class ConsoleSection:
    """The operator's console (docs/console.md). `segel console` always serves it; `segel gateway`
    serves it too when `enabled`."""

    enabled: bool = False
    host: str = "127.0.0.1"  # behind a reverse proxy with TLS for other machines (deploy/console)
    port: int = 8080
    secure_cookies: str = "auto"  # auto: Secure when the request came over https (or X-Forwarded-Proto)
    trusted_proxies: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])
    session_hours: float = 12.0
    tiles_url: str = ""  # a raster tile server https://host/{z}/{x}/{y}.png (yours, reachable offline)
    tiles_attribution: str = ""
    pmtiles: str = ""  # a local raster PMTiles file served at /tiles/{z}/{x}/{y}
    silent_after_s: float = 0.0  # fleet page: a tracker is silent after this; 0 = 3 report intervals
    low_battery_mv: int = 3500
    live_poll_s: float = 0.5  # how often the live feed reads the database when the broker is quiet


@dataclass
class NotifySection:
    """Email for alerts (docs/console.md): to every user with email alerts on whose scope holds the alert."""

    smtp_host: str = ""  # "" = no email
    smtp_port: int = 25
    smtp_security: str = "starttls"  # none | starttls | tls
    smtp_username: str = ""
    smtp_password: str = ""
    email_from: str = "segel@localhost"
    email_min_severity: str = "critical"
    console_url: str = ""  # links in the mails, e.g. https://segel.kpu.example


@dataclass
class NationalSection:
    """The uplink of this regency to the national tier (docs/national.md). Off while `urls` is
    empty; then nothing is recorded for the nation either."""

    regency: str = ""  # this regency's code as the places write it, e.g. "64.08"
    name: str = ""  # its name for people, e.g. "Kutai Timur"
    urls: list[str] = field(default_factory=list)  # mqtts://host:8883 of every national node, tried in turn
    username: str = ""  # "" = regency-<code without the dot>, as `segel deploy federation` names it
    password: str = ""  # or SEGEL_NATIONAL_PASSWORD
    ca_file: str = ""
    tls_insecure: bool = False
    position_interval_s: float = 900.0  # at most one position per box per this much device time
    summary_interval_s: float = 300.0  # how often district counts are compared and sent when changed
    resend_after_s: float = 15.0  # no receipt for this long: send again from the last confirmed item
    window: int = 5000  # items sent and not yet confirmed, at most
    batch_items: int = 500  # items per message at most (and about 256 kB)
    linger_s: float = 0.5  # while items are on their way, wait this long to fill the next message
    keep_days: float = 7.0  # confirmed items are kept this long (the nation may ask again after a restore)
    keepalive_s: int = 30
    reconnect_max_s: float = 30.0
    warn_backlog: int = 100_000  # log a warning while more items than this wait
    store_dsn: str = ""  # the national store a national console reads (`segel national view`)


@dataclass
class Config:
    gateway: GatewaySection = field(default_factory=GatewaySection)
    mqtt: MqttSection = field(default_factory=MqttSection)
    influx: InfluxSection = field(default_factory=InfluxSection)
    sanity: SanitySection = field(default_factory=SanitySection)
    custody: CustodySection = field(default_factory=CustodySection)
    locale: LocaleSection = field(default_factory=LocaleSection)
    console: ConsoleSection = field(default_factory=ConsoleSection)
    notify: NotifySection = field(default_factory=NotifySection)
    national: NationalSection = field(default_factory=NationalSection)
    base_dir: Path = field(default_factory=Path.cwd)
    source: str = "defaults"

    def path(self, p: str) -> Path:
        """A configured path, relative to the config file's folder."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else self.base_dir / q

    def redacted(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for sec in SECTIONS:
            out[sec] = {}
            for f in dataclasses.fields(getattr(self, sec)):
                v = getattr(getattr(self, sec), f.name)
                if f"{sec}.{f.name}" in SECRET_KEYS and v:
                    v = "***"
                elif f.name == "url" and isinstance(v, str):
                    v = _redact_url(v)
                elif f.name == "urls" and isinstance(v, list):
                    v = [_redact_url(u) for u in v]
                out[sec][f.name] = v
        return out


SECTIONS = ("gateway", "mqtt", "influx", "sanity", "custody", "locale", "console", "notify", "national")


def _redact_url(url: str) -> str:
    """A URL with any password in it replaced by ***."""
    u = urllib.parse.urlsplit(url)
    if u.password is None:
        return url
    host = u.hostname or ""
    netloc = f"{u.username}:***@{host}" + (f":{u.port}" if u.port else "")
    return urllib.parse.urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))
CHOICES = {"influx.kind": ("none", "v1", "v2"), "mqtt.protocol": ("5", "3.1.1"), "mqtt.link": ("process", "thread"),
           "custody.webhook_min_severity": ("", "critical", "high", "warning", "info"),
           "locale.language": ("id", "en"), "custody.webhook_template": ("segel", "telegram", "whatsapp", "text"), "console.secure_cookies": ("auto", "always", "never"),
           "notify.smtp_security": ("none", "starttls", "tls"),
           "notify.email_min_severity": ("critical", "high", "warning", "info")}


def _coerce(key: str, kind: type, value: Any, source: str) -> Any:
    if kind is list:  # a TOML array of strings, or a comma-separated string (environment, flags)
        items = [x.strip() for x in value.split(",") if x.strip()] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
            raise ConfigError(key, f"expected a list of strings, got {value!r}", source)
        return items
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        try:
            if kind is bool:
                if text.lower() in ("1", "true", "yes", "on"):
                    return True
                if text.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return kind(text)
        except ValueError:
            raise ConfigError(key, f"expected {kind.__name__}, got {value!r}", source) from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool) and key == "mqtt.protocol":
        return str(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(key, f"expected {kind.__name__}, got {type(value).__name__} {value!r}", source)
    return value


def _set(cfg: Config, key: str, value: Any, source: str) -> None:
    sec, _, name = key.partition(".")
    if sec not in SECTIONS:
        raise ConfigError(key, f"unknown section [{sec}] (known: {', '.join(SECTIONS)})", source)
    obj = getattr(cfg, sec)
    fields = {f.name: f for f in dataclasses.fields(obj)}
    if name not in fields:
        raise ConfigError(key, f"unknown setting (known in [{sec}]: {', '.join(fields)})", source)
    kind = type(getattr(type(obj)(), name))
    v = _coerce(key, kind, value, source)
    if key in CHOICES and v not in CHOICES[key]:
        raise ConfigError(key, f"must be one of {', '.join(CHOICES[key])}, got {v!r}", source)
    if kind in (int, float) and not isinstance(v, bool) and v < 0:
        raise ConfigError(key, f"must not be negative, got {v}", source)
    setattr(obj, name, v)


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then the TOML file, then SEGEL_* environment variables, then `overrides`
    (command-line flags, keys like "mqtt.url"; None values are ignored)."""
    cfg = Config()
    if path is not None:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("config", f"file {p} not found", str(p)) from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("config", f"not valid TOML: {e}", str(p)) from None
        cfg.base_dir = p.resolve().parent
        cfg.source = str(p)
        for sec, table in data.items():
            if not isinstance(table, dict):
                raise ConfigError(sec, f"expected a [{sec}] table, got a {type(table).__name__}", str(p))
            for name, value in table.items():
                _set(cfg, f"{sec}.{name}", value, str(p))
    env = os.environ if env is None else env
    for sec in SECTIONS:
        for f in dataclasses.fields(getattr(cfg, sec)):
            var = f"SEGEL_{sec.upper()}_{f.name.upper()}"
            if var in env:
                _set(cfg, f"{sec}.{f.name}", env[var], f"environment {var}")
    for key, value in (overrides or {}).items():
        if value is not None:
            _set(cfg, key, value, "command line")
    if cfg.gateway.batch_max < 1:
        raise ConfigError("gateway.batch_max", "must be at least 1", cfg.source)
    if cfg.gateway.ack_qos not in (0, 1):
        raise ConfigError("gateway.ack_qos", f"must be 0 or 1, got {cfg.gateway.ack_qos}", cfg.source)
    if cfg.gateway.replay_window < 32:
        raise ConfigError("gateway.replay_window", "must be at least 32 counters", cfg.source)
    for key in ("reack_burst", "bad_mac_alert_after"):
        if getattr(cfg.gateway, key) < 1:
            raise ConfigError(f"gateway.{key}", "must be at least 1", cfg.source)
    for key in ("reack_refill_s", "bad_mac_window_s"):
        if not getattr(cfg.gateway, key) > 0:
            raise ConfigError(f"gateway.{key}", "must be more than 0 seconds", cfg.source)
    if not 0 < cfg.console.port < 65536:
        raise ConfigError("console.port", f"must be 1..65535, got {cfg.console.port}", cfg.source)
    try:
        from segel.i18n import zone

        zone(cfg.locale.timezone)
    except ValueError as e:
        raise ConfigError("locale.timezone", str(e), cfg.source) from None
    return cfg


EXAMPLE = """\
# segel gateway configuration (docs/configuration.md). Relative paths are relative to this file.
[gateway]
instance = "gateway"          # name in logs, metrics and the gateway measurement
db = "fleet/registry.db"      # SQLite: the registry `segel fleet init`/`segel provision` fill; the
                              # gateway adds its state, security log and outbox to it
fleet_secret = "fleet/fleet.secret"  # from `segel fleet init`; owner-only file
recording_dir = "recordings"  # rotating JSON-lines recording of every uplink
metrics_port = 9108           # Prometheus /metrics on metrics_host (0 = off)

[mqtt]
url = "mqtt://127.0.0.1:1883" # mqtts://host:8883 for TLS (certificate verified)
client_id = "segel-gateway"   # keep it stable: the broker keeps our session under this id
# username = "gateway"
# password = "..."            # or SEGEL_MQTT_PASSWORD
# ca_file = "ca.pem"
# link = "process"            # paho in its own process (a second core); "thread" = in the gateway's

[influx]
kind = "v1"                   # none | v1 (InfluxDB < 1.8, /write) | v2 (2.x, 3.x, Cloud, 1.8+)
url = "http://127.0.0.1:8086"
database = "segel"            # v1
# bucket = "segel"            # v2 (1.8+: "db/rp")
# token = "..."               # v2, or SEGEL_INFLUX_TOKEN

[sanity]
max_hdop = 5.0
max_speed_kmh = 250.0

[custody]                     # the rules; without a calendar nothing is judged (docs/custody.md)
# places = ["places.csv", "corridors.geojson"]   # imported at start, all or nothing
# boxes = "boxes.csv"         # paired through the registry at start
# calendar = "calendar.toml"  # the election calendar (WITA)
# report_interval_s = 300     # for the silence rule (0 = the calendar's)
# webhook_urls = ["https://ops.example/segel"]
# webhook_secret = "..."      # or SEGEL_CUSTODY_WEBHOOK_SECRET
# signing_key = "fleet/signing.key"     # `segel keys init`: signs the ledger checkpoints
# checkpoint_interval_s = 600
# checkpoint_file = "checkpoints.jsonl"   # append-only copy for oversight (also MQTT segel/checkpoints/#)

[locale]                      # what people read
language = "id"               # id (Bahasa Indonesia) | en
timezone = "WITA"             # WIB | WITA | WIT | an IANA zone such as Asia/Makassar

[console]                     # the operator's console (docs/console.md); users: segel users add
enabled = false               # true: segel gateway serves it too (segel console always does)
host = "127.0.0.1"            # keep it on loopback; a reverse proxy adds TLS (deploy/console)
port = 8080
# pmtiles = "kutim.pmtiles"   # an offline raster basemap; or tiles_url = "https://tiles.example/{z}/{x}/{y}.png"

[notify]                      # email for critical alerts to users who asked for it
# smtp_host = "smtp.example"
# smtp_port = 587
# email_from = "segel@kpu.example"
# smtp_password = "..."       # or SEGEL_NOTIFY_SMTP_PASSWORD

[national]                    # push alerts, custody and positions to the national tier (docs/national.md)
# regency = "64.08"           # this regency's code
# name = "Kutai Timur"
# urls = ["mqtts://nasional-1.example:8883", "mqtts://nasional-2.example:8883", "mqtts://nasional-3.example:8883"]
# password = "..."            # from `segel deploy federation`, or SEGEL_NATIONAL_PASSWORD
# ca_file = "national-ca.pem"
"""
