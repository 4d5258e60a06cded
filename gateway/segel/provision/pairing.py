"""Bind trackers to ballot boxes (and their TPS) in the registry, one at a time or from scans.

The CSV is what a crew's scanning app exports: a header row with `box` (or `box_id`) and
`device` (or `device_id`, or the scanned label text `SGL-000101`), optionally `tps` and
`contest`. Every row is checked; a row that cannot be applied is reported with its line number
and the rest still go through, so one bad scan does not stop a village's worth of boxes.
"""

from __future__ import annotations

import csv
import difflib
import io
import sqlite3
from dataclasses import dataclass, field

from segel import registry as reg
from segel.custody import ledger
from segel.ids import device_hex, parse_device

BOX_COLS = ("box", "box_id")
DEVICE_COLS = ("device", "device_id", "tracker", "scan")


class PairError(ValueError):
    pass


def resolve_tps(conn: sqlite3.Connection, text: str) -> tuple[str, str | None]:
    """(code, warning) for a TPS given as its code or as a name that names exactly one TPS.

    With no places imported yet nothing can be checked: the text is kept and the warning says so
    (the gateway checks every pairing at start and alerts on one that gives no plan)."""
    from segel.places.io import load
    from segel.places.model import TPS

    want = text.strip()
    tps = [p for p in load(conn) if p.kind == TPS]
    if not tps:
        return want, (f"TPS {want!r} not checked: no places are imported in this database yet (segel places import "
                      "first; the gateway alerts at start on a TPS it does not know)")
    codes = {p.code: p for p in tps}
    if want in codes:
        return want, None

    def norm(s: str) -> str:
        return " ".join(s.lower().split())

    named = [p.code for p in tps if norm(p.name) == norm(want)]
    if len(named) == 1:
        return named[0], None
    if len(named) > 1:
        raise PairError(f"TPS name {want!r} names {len(named)} places ({', '.join(sorted(named)[:6])}): give the code")
    stem = norm(want.rstrip(" .…"))  # a name cut short, as in a help text: "TPS 001 …"
    close = [f"{p.code} ({p.name})" for p in tps if stem and norm(p.name).startswith(stem)][:3]
    if not close:
        names = {p.name: p.code for p in tps}
        close = [f"{names.get(c, c)} ({c})" if c in names else c
                 for c in difflib.get_close_matches(want, list(codes) + list(names), n=3, cutoff=0.6)]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise PairError(f"TPS {want!r} is neither the code nor the name of a TPS among the {len(tps)} imported{hint} "
                    "(segel places list --kind tps)")


@dataclass(frozen=True)
class Pairing:
    box_id: str
    device: str
    tps: str | None
    previous_box: str | None  # the box the tracker was on before (a forced move)
    unchanged: bool = False
    warning: str | None = None  # e.g. the TPS could not be checked yet


def pair(registry: reg.Registry, box_id: str, device: str, tps: str | None = None, contest: str | None = None,
         force: bool = False, by: str | None = None) -> Pairing:
    box_id = box_id.strip()
    if not box_id:
        raise PairError("box id is empty")
    try:
        did = parse_device(device)
    except ValueError as e:
        raise PairError(str(e)) from e
    warning = None
    if tps and tps.strip():
        tps, warning = resolve_tps(registry.conn, tps)
    before = registry.box_of(did)
    try:
        registry.pair(box_id, did, tps=tps or None, contest=contest or None, force=force, by=by)
    except reg.RegistryError as e:
        raise PairError(str(e)) from e
    ledger.record_pairings(registry.conn)  # who paired which tracker: in the box's custody ledger
    moved = before[0] if before and before[0] != box_id else None
    return Pairing(box_id, device_hex(did), tps or None, moved, unchanged=bool(before and before[0] == box_id),
                   warning=warning)


@dataclass
class CsvResult:
    paired: list[Pairing] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def _col(header: list[str], names: tuple[str, ...], what: str) -> str:
    for n in names:
        if n in header:
            return n
    raise PairError(f"CSV header has no {what} column (one of: {', '.join(names)}); got: {', '.join(header)}")


def pair_csv(registry: reg.Registry, text: str, force: bool = False, by: str | None = None) -> CsvResult:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    box_col = _col(header, BOX_COLS, "box")
    dev_col = _col(header, DEVICE_COLS, "device")
    res = CsvResult()
    for row in reader:
        line = reader.line_num
        try:
            res.paired.append(pair(registry, row.get(box_col) or "", row.get(dev_col) or "", tps=row.get("tps"),
                                   contest=row.get("contest"), force=force, by=by))
        except PairError as e:
            res.refused.append((line, str(e)))
    return res
