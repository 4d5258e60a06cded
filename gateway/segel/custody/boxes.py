"""Boxes CSV: which tracker is on which box, bound for which TPS; paired through the registry.

Columns: box, tps[, device][, contest]. All rows are checked first (device id syntax, TPS known,
no box or device twice, device registered unless register=True); then every row is written in one
transaction, so a bad file changes nothing. A row without a device records the box and its TPS
only (a tracker is paired later, or now with assign=True: fresh device ids are registered and
paired in file order). Format: docs/custody.md.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from segel.custody import ledger
from segel.ids import device_hex, parse_device
from segel.places.model import TPS, Place
from segel.registry import Registry, RegistryError, transaction

COLUMNS = ("box", "device", "tps", "contest")


@dataclass(frozen=True)
class BoxRow:
    box: str
    device: int | None
    tps: str
    contest: str | None
    where: str


class BoxesError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        super().__init__("\n".join(errors[:20]) + more)


def parse_boxes(text: str, name: str = "<boxes>", places: dict[str, Place] | None = None) -> list[BoxRow]:
    reader = csv.DictReader(io.StringIO(text))
    cols = [c.strip() for c in (reader.fieldnames or [])]
    if not {"box", "tps"} <= set(cols):
        raise BoxesError([f"{name}:1: the header must name box and tps (and optionally device, contest)"])
    unknown = [c for c in cols if c not in COLUMNS]
    if unknown:
        raise BoxesError([f"{name}:1: unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}"])
    errors: list[str] = []
    rows: list[BoxRow] = []
    seen_box: dict[str, str] = {}
    seen_dev: dict[int, str] = {}
    for raw in reader:
        where = f"{name}:{reader.line_num}"
        r = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        box, tps = r.get("box", ""), r.get("tps", "")
        if not box or any(c.isspace() for c in box) or not box.isprintable():
            errors.append(f"{where}: field box: {box!r} is empty or contains spaces or control characters")
            continue
        dev: int | None = None
        if r.get("device"):
            try:
                dev = parse_device(r["device"])
            except ValueError as e:
                errors.append(f"{where}: field device: {e}")
                continue
        if not tps:
            errors.append(f"{where}: field tps: missing")
            continue
        if places is not None:
            p = places.get(tps)
            if p is None:
                errors.append(f"{where}: field tps: {tps!r} is not a known place (import places first)")
                continue
            if p.kind != TPS:
                errors.append(f"{where}: field tps: {tps!r} is a {p.kind}, not a tps")
                continue
        if box in seen_box:
            errors.append(f"{where}: field box: {box!r} is listed twice (first at {seen_box[box]})")
            continue
        if dev is not None and dev in seen_dev:
            errors.append(f"{where}: field device: {device_hex(dev)} is on two boxes (first at {seen_dev[dev]})")
            continue
        seen_box[box] = where
        if dev is not None:
            seen_dev[dev] = where
        rows.append(BoxRow(box, dev, tps, r.get("contest") or None, where))
    if errors:
        raise BoxesError(errors)
    return rows


def pair_boxes(conn: sqlite3.Connection, rows: list[BoxRow], register: bool = False, force: bool = False,
               by: str | None = None, assign: bool = False) -> int:
    """Pair every row through the registry in one transaction; registers unknown devices only if
    asked; with assign=True, rows without a device get newly registered device ids."""
    reg = Registry(conn)
    errors = []
    for r in rows:
        if r.device is not None and reg.get(r.device) is None and not register:
            errors.append(f"{r.where}: field device: {device_hex(r.device)} is not registered "
                          "(provision it first, or import with --register)")
    if errors:
        raise BoxesError(errors)
    with transaction(conn):
        for r in rows:  # the file's own devices first, so fresh ids never take one of them
            if r.device is not None and reg.get(r.device) is None:
                reg.add_device(r.device)
        unpaired = {r.box for r in rows if r.device is None and _device_of(conn, r.box) is None}
        fresh = iter(reg.next_free_ids(len(unpaired)) if assign and unpaired else [])
        for r in rows:
            dev = r.device
            if dev is None and assign and r.box in unpaired:
                dev = next(fresh)
            if dev is None:
                # The box and its TPS only: a tracker is paired later (segel pair / provisioning).
                conn.execute("INSERT INTO boxes(box_id, device_id, tps, contest) VALUES (?, NULL, ?, ?) "
                             "ON CONFLICT(box_id) DO UPDATE SET tps = excluded.tps, "
                             "contest = COALESCE(excluded.contest, boxes.contest)", (r.box, r.tps, r.contest))
                continue
            if reg.get(dev) is None:
                reg.add_device(dev)
            try:
                reg.pair(r.box, dev, tps=r.tps, contest=r.contest, force=force, by=by)
            except RegistryError as e:
                raise BoxesError([f"{r.where}: {e}"]) from None
        ledger.record_pairings(conn)  # who paired which tracker, in each box's chain
    return len(rows)


def _device_of(conn: sqlite3.Connection, box: str) -> int | None:
    row = conn.execute("SELECT device_id FROM boxes WHERE box_id = ?", (box,)).fetchone()
    return row[0] if row else None


def import_boxes(conn: sqlite3.Connection, path: str | Path, places: dict[str, Place] | None = None,
                 register: bool = False, force: bool = False, assign: bool = False) -> int:
    p = Path(path)
    rows = parse_boxes(p.read_text(encoding="utf-8-sig"), p.name, places)
    return pair_boxes(conn, rows, register=register, force=force, by=f"import {p.name}", assign=assign)


def load_boxes(conn: sqlite3.Connection) -> dict[str, tuple[str, int | None]]:
    """{box: (tps, device)} from the registry."""
    Registry(conn)
    return {b: (t, d) for b, d, t in conn.execute("SELECT box_id, device_id, tps FROM boxes WHERE tps IS NOT NULL")}
