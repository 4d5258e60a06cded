"""`segel demo`: the Kutai Timur rehearsal on embedded defaults, with a live view and a summary.

One call starts an embedded MQTT broker (amqtt) in a child process, the real gateway on a fresh
SQLite database in a temporary folder (fleet secret, registry, places, boxes and custody plans
imported as an election office would), and the virtual fleet (every box's tracker running the
firmware's own wake cycle on simulated hardware) in a child process; shows boxes by custody
point per district and the alerts as the gateway opens them; and ends with a summary computed
from the gateway's database: frames, boxes delivered, alerts by kind, and for each scripted
incident whether its alert was raised. Timing choices: docs/demo.md.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from segel import paths
from segel.sim.runner import Progress
from segel.sim.session import Options, Rehearsal, Summary
from segel.sim.view import LiveView, format_summary

DEFAULT_SCENARIO = "kutai-timur"


def resolve_scenario(name_or_path: str | None) -> Path:
    if name_or_path and (Path(name_or_path) / "places.csv").exists():
        return Path(name_or_path)
    p = paths.scenarios_dir() / (name_or_path or DEFAULT_SCENARIO)
    if not (p / "places.csv").exists():
        raise FileNotFoundError(f"no scenario {name_or_path!r} (a folder with places.csv, or a name under {paths.scenarios_dir()})")
    return p


@dataclass
class DemoOptions:
    scenario: str | None = None
    boxes: int | None = None
    broker_url: str | None = None
    influx_url: str | None = None
    speed: float | None = None
    report_interval_s: int | None = None
    keep: Path | None = None
    json_out: bool = False
    live: bool | None = None  # None: redraw when stdout is a terminal
    processes: bool = True
    uplink: str = "wifi"  # or "lora" (segel.sim.lora)
    lora: Any = None  # segel.sim.lora.LoraOptions
    broker: str = "auto"  # without broker_url: auto (Mosquitto when installed, else amqtt), mosquitto, amqtt
    console: bool = True  # serve the operator's console on a free loopback port
    console_port: int = 0  # 0: any free port


def run_demo(o: DemoOptions, out: TextIO | None = None) -> Summary:
    """Set up, run with the live view, print the summary (text, or JSON with json_out). Returns it."""
    out = out or sys.stdout
    opts = Options(scenario=resolve_scenario(o.scenario), boxes=o.boxes, broker_url=o.broker_url,
                   influx_url=o.influx_url, workdir=o.keep, speed=o.speed, report_interval_s=o.report_interval_s,
                   processes=o.processes, uplink=o.uplink, lora=o.lora, broker=o.broker)
    r = Rehearsal(opts)
    view_out: TextIO = sys.stderr if o.json_out else out
    view = LiveView(r.scn, {}, out=view_out, tty=o.live)
    stop_feed = threading.Event()
    console: DemoConsole | None = None
    try:
        r.setup()
        view = LiveView(r.scn, r.itineraries, out=view_out, tty=o.live)
        if o.console:
            console = start_console(r, o.console_port)
            r.closers.append(console.stop)
            view.banner = console.banner
            if not view.tty:
                view_out.write(console.banner + "\n")
                view_out.flush()
        if view.tty:  # the redrawn table is the output; log lines (e.g. each forged frame) would tear it
            for name in ("segel.ingest.pipeline", "segel.service.gateway", "segel.custody"):
                logging.getLogger(name).setLevel(logging.ERROR)
        feed = r.feed

        def pump() -> None:  # alerts from the broker into the view, while the fleet runs
            while not stop_feed.wait(0.2):
                if feed is not None:
                    view.alerts(feed.take())

        threading.Thread(target=pump, name="segel-demo-view", daemon=True).start()

        def on_step(p: Progress) -> None:
            view.step(p)

        try:
            summary = r.run(on_step)
        except KeyboardInterrupt:
            r.stop()
            raise
        stop_feed.set()
        if feed is not None:
            view.alerts(feed.take())
        if view.progress is not None:
            view.step(view.progress, force=True)
        if o.json_out:
            out.write(json.dumps(summary.to_json(), indent=2, default=str) + "\n")
        else:
            out.write("\n" + format_summary(summary, r.scn))
            if o.keep:
                out.write(f"Gateway database, registry and recordings kept in {o.keep}\n")
        out.flush()
        if o.console and view.tty and console is not None:
            view_out.write(f"\n{console.banner}\nThe console stays open to look around; Ctrl-C ends the demo.\n")
            view_out.flush()
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
        return summary
    finally:
        stop_feed.set()
        r.close()


@dataclass
class DemoConsole:
    url: str
    user: str
    password: str
    stop: Any

    @property
    def banner(self) -> str:
        return f"Console: {self.url}  (sign in as {self.user}, one-time password {self.password})"


def start_console(r: Rehearsal, port: int = 0) -> DemoConsole:
    """The operator's console on the rehearsal's database, on a free loopback port, with a fresh
    admin account whose password is made for this run only (the database goes with the run)."""
    from segel import accounts, store
    from segel.console import live
    from segel.console.server import ConsoleServer

    assert r.gateway is not None
    conn = store.connect(r.dir / "segel.db")
    password = accounts.generate_password()
    accounts.add(conn, "demo", accounts.ADMIN, password, full_name="Demo operator")
    conn.close()
    server = ConsoleServer(r.console_config(), clock=r.clock, hooks=[live.attach], port=port, host="127.0.0.1").start()
    return DemoConsole(server.url, "demo", password, server.stop)
