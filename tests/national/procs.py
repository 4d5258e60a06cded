"""Processes of one simulated regency for the national end-to-end test, each killable on its own.

    python -m tests.national.procs fleet SPEC.json CLOCK DONE.json   # the virtual trackers (segel.sim)
    python -m tests.national.procs gateway CONFIG.toml CLOCK         # the regency's gateway + uplink

The fleet runs the firmware's own wake cycle against the regency's Mosquitto in simulated time
and writes that time into CLOCK (8 bytes, a double, mmap'd); the gateway reads its clock from the
same file, exactly as `segel demo` shares one clock between fleet and gateway in memory. The
gateway process does what `segel gateway` does (assemble the custody judge from the config,
start the national uplink before the gateway, run until SIGTERM), on that clock: it can be
killed with SIGKILL and started again on the same database while the fleet goes on.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import signal
import struct
import sys
import threading
from pathlib import Path


class FileClock:
    """The simulation clock in a file both processes map."""

    def __init__(self, path: str | Path, start: float | None = None) -> None:
        p = Path(path)
        if start is not None:
            p.write_bytes(struct.pack("d", float(start)))
        self._f = open(p, "r+b")  # noqa: SIM115 - kept for the mapping's life
        self._m = mmap.mmap(self._f.fileno(), 8)

    def __call__(self) -> float:
        return float(struct.unpack_from("d", self._m, 0)[0])

    def set(self, t: float) -> None:
        if t > self():
            struct.pack_into("d", self._m, 0, float(t))

    def close(self) -> None:
        self._m.close()
        self._f.close()


def fleet(spec_path: str, clock_path: str, done_path: str) -> None:
    from segel.sim.fleetproc import FleetSpec, run_fleet

    spec = FleetSpec(**json.loads(Path(spec_path).read_text()))
    spec.secret = bytes.fromhex(spec.secret)  # type: ignore[arg-type]
    stats = run_fleet(spec, FileClock(clock_path))
    Path(done_path).write_text(json.dumps({"wakes": stats.wakes, "frames_sent": stats.frames_sent,
                                           "errors": stats.errors, "end": stats.progress.now}))


def gateway(config_path: str, clock_path: str) -> None:
    from segel import config as cfgmod
    from segel.national import uplink as national
    from segel.service.assemble import assemble
    from segel.service.gateway import Gateway

    cfg = cfgmod.load(config_path, env={})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parts = assemble(cfg)
    up = national.start(cfg)
    gw = Gateway(cfg, judges=parts.judges, on_alerts=parts.on_alerts, clock=FileClock(clock_path)).start()
    print(f"gateway {cfg.national.regency} started, pid {os.getpid()}", flush=True)
    stop.wait()
    gw.stop()
    if up is not None:
        up.stop()
    parts.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("segel.sim").setLevel(logging.WARNING)
    {"fleet": fleet, "gateway": gateway}[sys.argv[1]](*sys.argv[2:])
