"""What reports, exports and bundles need from a gateway database: places, calendar, plans, time zone, key."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from segel import config as cfgmod
from segel import store
from segel.custody import checkpoints
from segel.custody.boxes import load_boxes
from segel.custody.plan import Calendar, Plan, corridor_map, load_calendar, make_plan, stored_calendar
from segel.places import io as places_io
from segel.places.model import Place

UTC = dt.timezone.utc


class ContextError(ValueError):
    """The database or a file the command needs is missing or unusable; says which and what to do."""


@dataclass
class Custody:
    conn: sqlite3.Connection
    instance: str
    calendar: Calendar | None
    places: dict[str, Place]
    boxes: dict[str, tuple[str, int | None]]  # box -> (tps, device)
    key: checkpoints.SigningKey | None = None
    key_error: str | None = None
    checkpoint_file: Path | None = None
    _plans: dict[str, Plan | None] = field(default_factory=dict)
    _cmap: dict | None = None

    @property
    def tz(self) -> dt.timezone:
        return self.calendar.tz if self.calendar else UTC

    @property
    def tz_name(self) -> str:
        return self.tz.tzname(None) or "UTC"

    @property
    def tz_offset_min(self) -> int:
        off = self.tz.utcoffset(None)
        return int(off.total_seconds() // 60) if off else 0

    def place_name(self, code: str) -> str | None:
        p = self.places.get(code)
        return p.name if p is not None else None

    def local(self, t: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if t is None:
            return "-"
        return dt.datetime.fromtimestamp(t, self.tz).strftime(fmt)

    def plan(self, box: str) -> Plan | None:
        """The box's plan from the stored calendar (None without a calendar or for an unknown TPS)."""
        if box not in self._plans:
            tps = self.boxes.get(box, (None, None))[0]
            plan = None
            if self.calendar is not None and tps:
                if self._cmap is None:
                    self._cmap = corridor_map(self.places)
                try:
                    plan = make_plan(box, tps, self.places, self.calendar, self._cmap)
                except ValueError:
                    plan = None
            self._plans[box] = plan
        return self._plans[box]

    def district_of(self, box: str) -> str | None:
        p = self.plan(box)
        if p is not None:
            return p.district
        tps = self.boxes.get(box, (None, None))[0]
        code = tps
        while code and code in self.places:
            if self.places[code].kind == "ppk":
                return code
            code = self.places[code].parent
        return None


def open_custody(config_path: Path | None = None, db: str | Path | None = None, calendar: Path | None = None,
                 key: Path | None = None, need_key: bool = False) -> Custody:
    """The custody view of a gateway database (--config and/or --db). The calendar is the one the
    judge stored, or `calendar`; the signing key is `key`, else the config's custody.signing_key."""
    try:
        cfg = cfgmod.load(config_path, overrides={"gateway.db": str(db) if db else None})
    except cfgmod.ConfigError as e:
        raise ContextError(str(e)) from None
    path = cfg.path(cfg.gateway.db)
    if not path.exists():
        raise ContextError(f"no gateway database at {path}: pass --config or --db")
    conn = store.connect(path)
    try:
        cal = load_calendar(calendar) if calendar else stored_calendar(conn)
    except (OSError, ValueError) as e:
        raise ContextError(f"calendar: {e}") from None
    c = Custody(conn, cfg.gateway.instance, cal, {p.code: p for p in places_io.load(conn)}, load_boxes(conn))
    key_path = key or (cfg.path(cfg.custody.signing_key) if cfg.custody.signing_key else None)
    if key_path is not None:
        try:
            c.key = checkpoints.load_key(key_path)
        except checkpoints.SigningKeyError as e:
            c.key_error = str(e)
            if need_key:
                raise ContextError(str(e)) from None
    else:
        c.key_error = "no signing key given (--key, or custody.signing_key in the config)"
        if need_key:
            raise ContextError(c.key_error)
    c.checkpoint_file = cfg.path(cfg.custody.checkpoint_file) if cfg.custody.checkpoint_file else None
    return c
