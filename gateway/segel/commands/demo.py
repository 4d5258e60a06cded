"""`segel demo`: the whole Kutai Timur rehearsal on embedded defaults (no servers needed)."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands._sim import lora_settings, rehearse, uplink_options


def register(group: click.Group) -> None:
    @group.command("demo", epilog="""\b
Examples:
  segel demo                         all 1,402 boxes, distribution through return (2-4 min on 2 cores)
  segel demo --boxes 40              a quick run: every scripted incident, 40 boxes
  segel demo --json > summary.json   the summary as JSON (the live view goes to stderr)
  segel demo --broker mqtt://127.0.0.1:1883 --influx http://127.0.0.1:8086/segel
  segel demo --boxes 40 --keep rehearsal/   keep the gateway database to inspect:
        segel status --db rehearsal/segel.db

\b
What runs: an MQTT broker of its own (a private Mosquitto when the mosquitto package is
installed, else the embedded amqtt in a child process), the real gateway (verify, dedupe,
places, custody rules, alerts) on a fresh SQLite database, and one virtual tracker per ballot
box running the firmware's own wake cycle on simulated hardware, in a child process. Simulated
time runs as fast as the machine allows (the trackers report every two hours of simulated time;
see docs/demo.md for why). The table counts boxes by the last custody point the gateway
recorded (KPU warehouse, PPK, PPS, TPS, back at the warehouse); alerts appear as they open.
The operator's console runs beside it (its URL and a one-time login are printed at the top):
the live map, the alert desk and every box's story while the rehearsal plays (docs/console.md).
Exit status 0 when every scripted incident raised its alert and no unscripted critical alert
appeared, 1 otherwise.""")
    @click.option("--boxes", type=click.IntRange(1), help="Rehearse only N boxes (every incident's box is kept).")
    @click.option("--json", "json_out", is_flag=True, help="Print the summary as JSON on stdout.")
    @click.option("--broker", "broker_url", metavar="URL",
                  help="Use this MQTT broker (mqtt://user:pass@host:1883) instead of one of its own.")
    @click.option("--own-broker", "own_broker", type=click.Choice(["auto", "mosquitto", "amqtt"]), default="auto",
                  show_default=True, help="Without --broker: auto = Mosquitto when installed, else amqtt (pure Python).")
    @click.option("--influx", "influx_url", metavar="URL",
                  help="Also write to InfluxDB 1.x: http://host:8086/<database> (default: no InfluxDB).")
    @click.option("--speed", type=click.FloatRange(min=1), metavar="X",
                  help="At most X simulated seconds per real second (default: as fast as possible).")
    @click.option("--report-interval", "report_interval_s", type=click.IntRange(60, 86400), metavar="S",
                  help="The trackers' report interval in seconds (default: the scenario's, 7200).")
    @click.option("--scenario", metavar="DIR|NAME", help="Another scenario folder (default: kutai-timur).")
    @click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
                  help="Keep the gateway database, registry and recordings in this folder.")
    @click.option("--live/--no-live", default=None, help="Redraw the table in place (default: when on a terminal).")
    @uplink_options
    @click.option("--threads", is_flag=True, help="Run the fleet in threads of this process instead of a child process.")
    @click.option("--console/--no-console", "console", default=True, show_default=True,
                  help="Serve the operator's console on a free loopback port (the URL and a one-time login are printed).")
    @click.option("--console-port", type=click.IntRange(0, 65535), default=0, show_default=True,
                  help="The console's port (0: any free one).")
    def demo_cmd(boxes: int | None, json_out: bool, broker_url: str | None, influx_url: str | None,
                 speed: float | None, report_interval_s: int | None, scenario: str | None, keep: Path | None,
                 live: bool | None, threads: bool, console: bool, console_port: int, uplink: str, sf: int,
                 fading: float, own_broker: str) -> None:
        """Rehearse a whole election district's ballot-box logistics, live."""
        from segel.sim.demo import DemoOptions

        rehearse(DemoOptions(scenario, boxes, broker_url, influx_url, speed, report_interval_s, keep, json_out, live,
                             processes=not threads, uplink=uplink, lora=lora_settings(uplink, sf, fading),
                             console=console, console_port=console_port, broker=own_broker),
                 keep, "--keep needs a new or empty folder")
