"""A Kutai Timur gateway database for the console's benchmark and browser tests, made as an office would.

`prepare(folder)` writes a fleet secret and a gateway database with the scenario's 1,729 places
(861 places, 868 corridors), its 1,402 boxes each paired with a registered tracker, and the
election calendar; `config(prepared, broker_url)` is a gateway configuration for it;
`position_frames()` signs one position per box (spread over their TPS, PPS and PPK) and
`seal_cut()`/`forged()` the incidents a test publishes. Frames go through the real broker and the
real gateway like any tracker's.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segel import paths, protocol, store
from segel.config import Config
from segel.config import load as load_config
from segel.custody.judge import build_judge
from segel.edge import topics
from segel.places import io as places_io
from segel.places.model import Circle, Place
from segel.registry import Registry, create_fleet_secret

FIRST_DEVICE = 0x000101


@dataclass
class Prepared:
    folder: Path
    db: Path
    secret: bytes
    devices: dict[str, int]  # box -> tracker
    scenario: Path
    places: dict[str, Place]
    boxes: dict[str, str]  # box -> TPS
    counters: dict[int, int]

    @property
    def calendar(self) -> Path:
        return self.scenario / "calendar.toml"

    def keys(self, dev: int) -> protocol.DeviceKeys:
        return protocol.DeviceKeys.from_device_key(protocol.derive_device_key(self.secret, dev, 0))

    def frame(self, box: str, t: float, body: Any) -> tuple[str, bytes]:
        dev = self.devices[box]
        c = self.counters.get(dev, 0) + 1
        self.counters[dev] = c
        return topics.tracker_up(f"{dev:06x}"), protocol.encode(self.keys(dev), dev, c, int(t), body)


def prepare(folder: Path, scenario: Path | None = None) -> Prepared:
    scn = scenario or paths.scenarios_dir() / "kutai-timur"
    folder.mkdir(parents=True, exist_ok=True)
    secret = create_fleet_secret(folder / "fleet.key")
    db = folder / "segel.db"
    conn = store.connect(db)
    reg = Registry(conn)
    with (scn / "boxes.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    devices = {r["box"]: FIRST_DEVICE + i for i, r in enumerate(rows)}
    conn.execute("BEGIN IMMEDIATE")
    for d in devices.values():
        reg.add_device(d)
    conn.execute("COMMIT")
    (folder / "boxes.csv").write_text("box,device,tps,contest\n" + "".join(
        f"{r['box']},{devices[r['box']]:06x},{r['tps']},{r.get('contest') or ''}\n" for r in rows), encoding="utf-8")
    build_judge(conn, places=[scn / "places.csv", scn / "corridors.geojson"], boxes=folder / "boxes.csv",
                calendar=scn / "calendar.toml")
    places = {p.code: p for p in places_io.load(conn)}
    conn.close()
    return Prepared(folder, db, secret, devices, scn, places, {r["box"]: r["tps"] for r in rows}, {})


def config(p: Prepared, broker_url: str, **overrides: Any) -> Config:
    """A gateway (and console) configuration for the prepared database."""
    return load_config(None, env={}, overrides={
        "gateway.db": str(p.db), "gateway.fleet_secret": str(p.folder / "fleet.key"),
        "gateway.recording_dir": str(p.folder / "recordings"), "gateway.instance": "kutai-timur",
        "mqtt.url": broker_url, "mqtt.client_id": f"segel-kutim-{random.randrange(1 << 30):x}",
        "custody.calendar": str(p.calendar), **overrides})


def position_frames(p: Prepared, t: float, seed: int = 7) -> list[tuple[str, bytes]]:
    """One position per box: most at their TPS, some at their PPS or PPK, some on the road."""
    rnd = random.Random(seed)
    places = p.places
    out = []
    for box, tps in p.boxes.items():
        chain = [tps]
        while places[chain[-1]].parent:
            chain.append(places[chain[-1]].parent)  # type: ignore[arg-type]
        at = places[chain[min(len(chain) - 1, rnd.choice((0, 0, 0, 1, 2)))]]
        c = at.shape
        assert isinstance(c, Circle)
        lat, lon = c.lat + rnd.uniform(-1, 1) * 0.0002, c.lon + rnd.uniform(-1, 1) * 0.0002
        if rnd.random() < 0.1:  # between places
            lat, lon = lat + rnd.uniform(0.01, 0.03), lon + rnd.uniform(0.01, 0.03)
        out.append(p.frame(box, t, protocol.Position(lat, lon, protocol.Flag.FIX, 1.2, 9)))
    return out


def seal_cut(p: Prepared, box: str, t: float) -> tuple[str, bytes]:
    """The box's seal loop cut on the road (an unauthorised opening: a critical alert)."""
    c = p.places[p.boxes[box]].shape
    assert isinstance(c, Circle)
    flags = protocol.Flag.FIX | protocol.Flag.TAMPER | protocol.Flag.LOOP_OPEN
    return p.frame(box, t, protocol.Seal(int(protocol.SealEvent.LOOP_OPEN), 1, flags, c.lat + 0.05, c.lon + 0.05))


def forged(p: Prepared, box: str, t: float) -> tuple[str, bytes]:
    """A frame under the box's tracker id signed with the wrong key (forged_frame, critical)."""
    dev = p.devices[box]
    wrong = protocol.DeviceKeys.from_device_key(protocol.derive_device_key(b"\x00" * 32, dev, 0))
    c = p.counters.get(dev, 0) + 1
    p.counters[dev] = c
    return topics.tracker_up(f"{dev:06x}"), protocol.encode(wrong, dev, c, int(t), protocol.Position(0.5, 117.5, protocol.Flag.FIX, 1.0, 9))
