"""Each tracker's config.json: identity, its own key, and the fleet's settings.

Validated with the firmware's own validator (`segelfw.config.validate`), so a config the
gateway writes is exactly a config the tracker accepts; the fleet secret never enters it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segel import paths
from segel import registry as reg
from segel.ids import device_hex, parse_device
from segel.provision import private

if TYPE_CHECKING:
    from segel.provision.settings import Fleet


class ProvisionError(ValueError):
    """Anything a technician must fix before provisioning, imaging or flashing can go on."""


def _firmware_config() -> Any:
    paths.import_firmware()
    from segelfw import config  # the one validator (firmware/segelfw/config.py)

    return config


def known_boards() -> list[str]:
    return sorted(p.stem for p in paths.boards_dir().glob("*.json"))


def load_board(board_id: str) -> dict[str, Any]:
    """The board file hardware/boards/<id>.json; unknown boards are a clear error."""
    if "/" in board_id or board_id.startswith("."):
        raise ProvisionError(f"board {board_id!r} is not a board name")
    p = paths.boards_dir() / f"{board_id}.json"
    if not p.is_file():
        raise ProvisionError(f"unknown board {board_id!r}; known boards: {', '.join(known_boards())}")
    board: dict[str, Any] = json.loads(p.read_text())
    return board


def board_path(board_id: str) -> Path:
    load_board(board_id)
    return paths.boards_dir() / f"{board_id}.json"


def check_config(cfg: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate with the firmware's validator (and its board cross-check); ProvisionError names the field."""
    fw = _firmware_config()
    try:
        full: dict[str, Any] = fw.validate(cfg)
        fw.check_board(load_board(full["board"]), full)
    except fw.ConfigError as e:
        raise ProvisionError(f"{source}: {e}") from e
    return full


def build_config(keyring: reg.KeyRing, device: reg.Device, fleet_fields: dict[str, Any]) -> dict[str, Any]:
    """The tracker's config.json content: fleet fields + id, its derived key and key epoch."""
    key = keyring.device_key(device.device_id, device.key_epoch)
    cfg: dict[str, Any] = dict(fleet_fields)
    cfg.update({"device_id": device.hex, "key": key.hex(), "key_epoch": device.key_epoch,
                "board": device.board, "role": device.role})
    return check_config(cfg, source=f"device {device.hex}")


def config_text(cfg: dict[str, Any]) -> str:
    return json.dumps(cfg, indent=1, sort_keys=True) + "\n"


def _write_config(fleet: Fleet, path: Path, cfg: dict[str, Any]) -> None:
    """Owner-only file in an owner-only folder: the config holds the device key."""
    private.private_dir(fleet.devices_dir)
    private.write_text(path, config_text(cfg))


@dataclass(frozen=True)
class Provisioned:
    device: reg.Device
    config_path: Path


def provision(fleet: Fleet, count: int, board: str | None = None, role: str = "tracker",
              db: str | None = None, start: int | None = None) -> list[Provisioned]:
    """Allocate `count` device ids, register them, derive their keys and write their configs.

    All configs are validated before anything is registered, so a bad setting registers nothing."""
    if count < 1:
        raise ProvisionError("--count must be at least 1")
    settings = fleet.settings()
    board = board or settings.board
    load_board(board)
    registry = fleet.open_registry(db)
    secret = fleet.checked_secret(registry, db)
    keyring = reg.KeyRing(secret, registry)
    from segel.provision.settings import record_interval

    record_interval(registry.conn, settings)  # the interval these trackers get
    ids = registry.next_free_ids(count, **({"start": start} if start is not None else {}))
    fields = settings.device_fields()
    configs = [build_config(keyring, reg.Device(i, 0, board, role), fields) for i in ids]
    out: list[Provisioned] = []
    conn = registry.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        devices = [registry.add_device(i, board=board, role=role) for i in ids]
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    for dev, cfg in zip(devices, configs, strict=True):
        p = fleet.config_path(dev.hex)
        _write_config(fleet, p, cfg)
        out.append(Provisioned(dev, p))
    return out


def resolve(fleet: Fleet, device: str, db: str | None = None) -> reg.Device:
    """A registered device from its text id ('000101', 'SGL-000101'); clear error otherwise."""
    try:
        did = parse_device(device)
    except ValueError as e:
        raise ProvisionError(str(e)) from e
    dev = fleet.open_registry(db).get(did)
    if dev is None:
        raise ProvisionError(f"device {device_hex(did)} is not registered: run `segel provision` first "
                             f"(registry {fleet.registry_db(db)})")
    return dev


def write_config(fleet: Fleet, dev: reg.Device, db: str | None = None) -> Path:
    """(Re)write a registered device's config at its current key epoch."""
    registry = fleet.open_registry(db)
    cfg = build_config(reg.KeyRing(fleet.secret(), registry), dev, fleet.settings().device_fields())
    p: Path = fleet.config_path(dev.hex)
    _write_config(fleet, p, cfg)
    return p


def reimage(fleet: Fleet, device: str, db: str | None = None) -> reg.Device:
    """A tracker is being re-imaged: bump its key epoch (counters restart under a new key)
    and rewrite its config."""
    dev = resolve(fleet, device, db)
    registry = fleet.open_registry(db)
    registry.bump_epoch(dev.device_id)
    new = registry.get(dev.device_id)
    assert new is not None
    write_config(fleet, new, db)
    return new


def load_config(fleet: Fleet, dev: reg.Device, db: str | None = None) -> dict[str, Any]:
    """The device's written config; rewritten if missing or at a stale key epoch."""
    p: Path = fleet.config_path(dev.hex)
    if p.is_file():
        cfg: dict[str, Any] = json.loads(p.read_text())
        if cfg.get("key_epoch") == dev.key_epoch and cfg.get("board") == dev.board:
            return check_config(cfg, source=str(p))
    write_config(fleet, dev, db)
    return check_config(json.loads(p.read_text()), source=str(p))
