"""Keys over time: rotating key epochs (optionally under a new fleet secret) and revoking trackers.

A fleet lives for years; a tracker is stolen, a technician leaves with a laptop, a fleet secret
leaks. What each does (docs/security.md, "Keys over time"):

- `rotate`: every chosen tracker gets a new key epoch. Its config is rewritten at the new epoch,
  so `segel image` / `segel flash` give it the new key at its next re-imaging; until then, and at
  most for the transition, the gateway still accepts frames under the previous epoch. Once a
  tracker is heard under its new key, its old key is refused (`stale_key`). With `new_secret`
  the new epochs derive from a new fleet secret (a leaked secret): the old one is kept as
  `fleet.secret.previous` for the transition and given to the gateway as
  `gateway.previous_fleet_secret`.
- Trackers move at re-imaging, not by a downlink: a key sent over the air would be encrypted
  under the old key, which is exactly what is no longer trusted after a leak, and the firmware
  would need to rewrite its key file in flash unattended. Re-imaging is a technician's USB cable.
- `revoke`: a stolen or lost tracker's frames are refused from now on; one that verifies under
  its key raises `revoked_tracker_heard` with where it was heard.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from segel import registry as reg
from segel.ids import device_hex
from segel.provision import private
from segel.provision.devconfig import write_config
from segel.provision.settings import Fleet

PREVIOUS_SECRET = "fleet.secret.previous"
DEFAULT_TRANSITION_DAYS = 30.0


class KeyError_(ValueError):  # (not the builtin KeyError)
    """A rotation or revocation that cannot be done; str(e) says why and what to do."""


@dataclass(frozen=True)
class Rotation:
    devices: list[tuple[str, int, int]]  # (device, old epoch, new epoch)
    until: float  # the previous epochs are accepted until then
    new_secret: Path | None  # the new fleet secret, when one was made
    previous_secret: Path | None  # the old one, kept for the transition
    configs_rewritten: int


def previous_secret_path(fleet: Fleet) -> Path:
    return fleet.root / PREVIOUS_SECRET


def rotate(fleet: Fleet, devices: list[reg.Device], transition_days: float = DEFAULT_TRANSITION_DAYS,
           new_secret: bool = False, db: str | None = None, now: float | None = None) -> Rotation:
    """See the module docstring. Refuses a new secret while a previous one is still kept (finish
    that transition first: `segel keys finish`)."""
    if not devices:
        raise KeyError_("no devices to rotate")
    if transition_days < 0:
        raise KeyError_("the transition must not be negative")
    registry = fleet.open_registry(db)
    secret = fleet.checked_secret(registry, db)
    now = time.time() if now is None else now
    prev_path = None
    if new_secret and len(devices) != len(registry.devices()):
        raise KeyError_("a new fleet secret changes every tracker's key: rotate --all")
    if new_secret:
        prev_path = previous_secret_path(fleet)
        if prev_path.exists():
            raise KeyError_(f"{prev_path} still holds the secret of an earlier rotation: finish that one first "
                            "(segel keys finish, once every tracker is re-imaged)")
        os.replace(fleet.secret_path, prev_path)  # the old secret, owner-only as it was
        try:
            fresh = reg.create_fleet_secret(fleet.secret_path)
        except BaseException:
            os.replace(prev_path, fleet.secret_path)
            raise
        with reg.transaction(registry.conn):
            registry.conn.execute("INSERT OR REPLACE INTO fleet_meta(name, value) VALUES (?, ?)",
                                  (reg.PREVIOUS_FINGERPRINT_KEY, reg.secret_fingerprint(secret)))
            reg.record_fingerprint(registry.conn, fresh)
    done = registry.rotate([d.device_id for d in devices], transition_days * 86400.0, new_secret, at=now)
    n = 0
    for d in devices:
        new = registry.get(d.device_id)
        if new is not None and fleet.config_path(new.hex).parent.is_dir():
            write_config(fleet, new, db)  # `segel image` builds the new key from here on
            n += 1
    return Rotation([(device_hex(i), a, b) for i, a, b in done], now + transition_days * 86400.0,
                    fleet.secret_path if new_secret else None, prev_path, n)


def finish(fleet: Fleet, db: str | None = None, force: bool = False) -> list[str]:
    """End a transition: no previous epoch is accepted any more, and the previous fleet secret
    is deleted. Refuses while trackers have not been heard under their new key, unless force;
    returns the devices that had not moved (they need re-imaging)."""
    registry = fleet.open_registry(db)
    states = {r[0]: r[1] for r in registry.conn.execute("SELECT device_id, key_epoch FROM device_state")}
    behind = [d.hex for d in registry.devices() if d.prev_epoch is not None and states.get(d.device_id, -1) < d.key_epoch]
    if behind and not force:
        raise KeyError_(f"{len(behind)} tracker(s) not yet heard under their new key ({', '.join(behind[:10])}"
                        f"{' ...' if len(behind) > 10 else ''}): re-image them, or --force to cut them off")
    with reg.transaction(registry.conn):
        registry.conn.execute("UPDATE devices SET prev_epoch = NULL, prev_until = NULL, prev_secret = 0")
        registry.conn.execute("DELETE FROM fleet_meta WHERE name = ?", (reg.PREVIOUS_FINGERPRINT_KEY,))
    p = previous_secret_path(fleet)
    if p.exists():
        private.write_bytes(p, b"\0" * 80)  # overwrite before unlinking (best effort on flash media)
        p.unlink()
    return behind


def revoke(fleet: Fleet, device: reg.Device, reason: str, db: str | None = None) -> reg.Device:
    reason = " ".join(reason.split())
    if not reason:
        raise KeyError_("say why (--reason 'stolen from PPS Sangatta on 2024-11-26'): it goes into the alert")
    return fleet.open_registry(db).revoke(device.device_id, reason[:200])


def unrevoke(fleet: Fleet, device: reg.Device, db: str | None = None) -> reg.Device:
    return fleet.open_registry(db).unrevoke(device.device_id)
