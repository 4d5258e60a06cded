"""The fleet folder: settings (TOML), the owner-only fleet secret, device configs and images.

One folder holds everything a provisioning laptop needs::

    fleet/
      fleet.toml          settings every tracker gets (region, radio, intervals, WiFi/MQTT): mode 600
      fleet.secret        32-byte fleet secret, hex, mode 600 (segel.registry)
      registry.db         the registry (unless [registry] path points at the gateway's database)
      devices/<id>.json   each tracker's config.json (holds its device key: mode 600, folder 700)
      images/<id>.img     built filesystem images (hold device keys: mode 600, folder 700)
      packages/           the micropython-lib package cache (index layout)
      flash-log.jsonl     which device was flashed at which key epoch
"""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from segel import registry as reg
from segel import store
from segel.provision import private

SETTINGS_FILE = "fleet.toml"
SECRET_FILE = "fleet.secret"
DEFAULT_FLEET_DIR = "fleet"

# device config keys the fleet settings may set for every tracker (segelfw.config.DEFAULTS)
RADIO_KEYS = ("region", "sf", "channel", "tx_power_dbm", "syncword", "preamble")
INTERVAL_KEYS = ("report_interval_s", "fix_timeout_s", "status_interval_s", "ack_window_ms", "jitter_ms",
                 "low_batt_mv", "queue_bytes")
WIFI_KEYS = ("ssid", "password", "host", "port", "user", "mqtt_password")

# the micropython-lib package index mip uses by default (micropython.org/pi/v2, mip/__init__.py);
# it is MicroPython's own index, not a PyPI/npm/Debian registry
DEFAULT_PACKAGE_INDEX = "https://micropython.org/pi/v2"


class SettingsError(ValueError):
    """A bad fleet setting or fleet folder; str(e) says what and where."""


@dataclass
class FleetSettings:
    """What `segel fleet init` writes and `segel provision` puts in every tracker's config."""

    radio: dict[str, Any] = field(default_factory=lambda: {"region": "AS923-2", "sf": 10, "channel": "random",
                                                           "tx_power_dbm": 14})
    intervals: dict[str, Any] = field(default_factory=lambda: {"report_interval_s": 300, "fix_timeout_s": 60,
                                                               "status_interval_s": 3600})
    wifi: dict[str, Any] | None = None
    board: str = "tbeam-v1.1"
    micropython: str = "1.27"  # the MicroPython release flashed on trackers: fixes the .mpy version
    package_index: str = DEFAULT_PACKAGE_INDEX
    registry_path: str = "registry.db"

    def device_fields(self) -> dict[str, Any]:
        """The config fields every tracker gets from the fleet (before its own id and key)."""
        out: dict[str, Any] = {}
        out.update(self.radio)
        out.update(self.intervals)
        if self.wifi:
            out["wifi"] = dict(self.wifi)
        return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise SettingsError(f"cannot write {v!r} to TOML")


def to_toml(s: FleetSettings) -> str:
    lines = [
        "# Segel fleet settings: every tracker's config.json is built from these (segel provision).",
        "# Keys are those of firmware/segelfw/config.py; segel provision validates every config with it.",
        "",
        "[fleet]",
        f"board = {_toml_value(s.board)}            # default board for segel provision",
        f"micropython = {_toml_value(s.micropython)}        # MicroPython release on the trackers (.mpy version)",
        f"package_index = {_toml_value(s.package_index)}",
        "",
        "[registry]",
        f"path = {_toml_value(s.registry_path)}   # relative to this folder, or the gateway's database",
        "",
        "[radio]",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in s.radio.items()]
    lines += ["", "[intervals]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in s.intervals.items()]
    lines += ["", "# WiFi + MQTT at a depot (optional): ssid, password, host, port, user, mqtt_password"]
    if s.wifi:
        lines += ["[wifi]"] + [f"{k} = {_toml_value(v)}" for k, v in s.wifi.items() if v is not None]
    else:
        lines += ["# [wifi]", '# ssid = "KPU-Depot"', '# host = "10.0.0.2"', "# port = 1883"]
    return "\n".join(lines) + "\n"


def from_toml(text: str, source: str = SETTINGS_FILE) -> FleetSettings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{source}: {e}") from e
    known = {"fleet", "registry", "radio", "intervals", "wifi"}
    for k in data:
        if k not in known:
            raise SettingsError(f"{source}: unknown section [{k}]; known: {', '.join(sorted(known))}")
        if not isinstance(data[k], dict):
            raise SettingsError(f"{source}: {k} must be a [{k}] table, not a {type(data[k]).__name__}")
    s = FleetSettings(radio={}, intervals={})
    fleet = data.get("fleet", {})
    for k, v in fleet.items():
        if k not in ("board", "micropython", "package_index"):
            raise SettingsError(f"{source}: unknown key fleet.{k}")
        if not isinstance(v, str):
            raise SettingsError(f"{source}: fleet.{k} must be text")
        setattr(s, k, v)
    s.registry_path = str(data.get("registry", {}).get("path", s.registry_path))
    for section, allowed, target in (("radio", RADIO_KEYS, s.radio), ("intervals", INTERVAL_KEYS, s.intervals)):
        for k, v in data.get(section, {}).items():
            if k not in allowed:
                raise SettingsError(f"{source}: unknown key {section}.{k}; known: {', '.join(allowed)}")
            target[k] = v
    if "wifi" in data:
        for k in data["wifi"]:
            if k not in WIFI_KEYS:
                raise SettingsError(f"{source}: unknown key wifi.{k}; known: {', '.join(WIFI_KEYS)}")
        s.wifi = dict(data["wifi"])
    return s


@dataclass(frozen=True)
class Fleet:
    """A fleet folder on disk."""

    root: Path

    @classmethod
    def locate(cls, path: str | os.PathLike[str] | None = None) -> Fleet:
        """--fleet, else $SEGEL_FLEET, else ./fleet."""
        p = path or os.environ.get("SEGEL_FLEET") or DEFAULT_FLEET_DIR
        return cls(Path(p))

    @property
    def settings_path(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def secret_path(self) -> Path:
        return self.root / SECRET_FILE

    @property
    def devices_dir(self) -> Path:
        return self.root / "devices"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def package_cache(self) -> Path:
        return self.root / "packages"

    @property
    def flash_log(self) -> Path:
        return self.root / "flash-log.jsonl"

    def config_path(self, device_hex: str) -> Path:
        return self.devices_dir / f"{device_hex}.json"

    def image_path(self, device_hex: str) -> Path:
        return self.images_dir / f"{device_hex}.img"

    def settings(self) -> FleetSettings:
        try:
            text = self.settings_path.read_text()
        except FileNotFoundError as e:
            raise SettingsError(f"no fleet settings at {self.settings_path}: run `segel fleet init` first "
                                "(or pass --fleet DIR)") from e
        return from_toml(text, str(self.settings_path))

    def registry_db(self, override: str | None = None) -> Path:
        p = Path(override) if override else Path(self.settings().registry_path)
        return p if p.is_absolute() else self.root / p

    def open_registry(self, override: str | None = None) -> reg.Registry:
        return reg.Registry(store.connect(self.registry_db(override)))

    def secret(self) -> bytes:
        return reg.load_fleet_secret(self.secret_path)

    def checked_secret(self, registry: reg.Registry, override: str | None = None) -> bytes:
        """The fleet secret, refused when the registry was made with another one."""
        secret = self.secret()
        reg.check_fleet_secret(registry.conn, secret, self.secret_path, self.registry_db(override))
        return secret


def init_fleet(root: str | os.PathLike[str], settings: FleetSettings | None = None) -> Fleet:
    """Create the fleet folder: the secret (owner-only, never overwritten) and fleet.toml.

    Refuses a folder that already has a secret or settings, so a second `fleet init` can never
    orphan trackers whose keys derive from the first secret."""
    fleet = Fleet(Path(root))
    if fleet.settings_path.exists():
        raise SettingsError(f"{fleet.settings_path} already exists; edit it instead of re-initialising")
    s = settings or FleetSettings()
    validate_settings(s)
    db = Path(s.registry_path) if Path(s.registry_path).is_absolute() else fleet.root / s.registry_path
    try:  # the registry's folder first: a failure here must leave no half-made fleet behind
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SettingsError(f"cannot create the registry's folder {db.parent}: {e.strerror}") from None
    private.private_dir(fleet.root)  # holds the fleet secret
    reg.create_fleet_secret(fleet.secret_path)  # refuses to overwrite
    private.write_text(fleet.settings_path, to_toml(s))  # may hold the depot WiFi and MQTT passwords
    for d in (fleet.devices_dir, fleet.images_dir):  # device configs and images hold device keys
        private.private_dir(d)
    # the registry remembers which secret it was made with: a gateway or a provisioning run given
    # another fleet's secret is refused instead of flooding every box with forged_frame alerts
    conn = store.connect(fleet.registry_db())
    try:
        reg.check_fleet_secret(conn, fleet.secret(), fleet.secret_path, fleet.registry_db())
        record_interval(conn, s)
    finally:
        conn.close()
    return fleet


def record_interval(conn: object, s: FleetSettings) -> None:
    """Remember the trackers' report interval in the registry, so the gateway can warn when the
    custody rules assume another one (a calendar copied from the rehearsal)."""
    import sqlite3

    assert isinstance(conn, sqlite3.Connection)
    iv = s.intervals.get("report_interval_s")
    if iv:
        with reg.transaction(conn):
            reg.set_meta(conn, reg.FLEET_INTERVAL_KEY, float(iv))


def copy_fleet(src: Fleet, dest: Path, registry_path: str) -> Fleet:
    """A scratch copy of a fleet's settings, secret and package cache with its own registry (for
    benchmarks that register throw-away devices): no registry, images, configs or flash log."""
    settings = replace(src.settings(), registry_path=registry_path)
    shutil.copytree(src.root, dest, ignore=shutil.ignore_patterns("*.db*", "images", "devices", "flash-log.jsonl",
                                                                   SETTINGS_FILE))
    os.chmod(dest, private.DIR_MODE)
    fleet = Fleet(dest)
    private.write_text(fleet.settings_path, to_toml(settings))
    return fleet


def validate_settings(s: FleetSettings) -> None:
    """Check the settings with the firmware's own validator, on a sample tracker config."""
    from segel.provision.devconfig import check_config

    sample = {"device_id": "000000", "key": "00" * 32, "key_epoch": 0, "board": s.board, **s.device_fields()}
    check_config(sample, source="fleet settings")
