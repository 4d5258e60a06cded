"""`segel simulate`: run a scenario's virtual fleet through the gateway, without the live table."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands._sim import lora_settings, rehearse, topic_prefix_option, uplink_options


def register(group: click.Group) -> None:
    @group.command("simulate", epilog="""\b
Examples:
  segel simulate scenarios/kutai-timur --boxes 100 --workdir sim/
  segel simulate scenarios/kutai-timur --broker mqtt://127.0.0.1:1883 --json
  segel simulate my-district/ --report-interval 1800 --speed 600

\b
A scenario folder holds what an election office imports (places.csv, corridors.geojson,
boxes.csv, calendar.toml) and, for the simulator, incidents.toml and scenario.toml
(docs/scenario.md). The simulator registers one tracker per box in a fresh gateway database
under --workdir, starts the gateway on the simulation's clock against the broker (embedded by
default), runs every tracker's firmware wake cycle on simulated hardware, injects the scripted
incidents, and prints the summary. Exit status 1 when an incident's alert was not raised or an
unscripted critical alert appeared: a rehearsal you can run in CI after editing the plan.
Uplink is the trackers' WiFi/MQTT path (segel/up/<device>).
\b
Simulated trackers use their own id range (f00101 and up), which provisioning never hands out.
A --broker that carries a real fleet (a gateway's status, trackers' uplinks, or access control)
is refused unless --topic-prefix gives the simulation topics of its own.""")
    @click.argument("scenario", type=click.Path(exists=True, file_okay=False, path_type=Path))
    @click.option("--boxes", type=click.IntRange(1), help="Only N boxes (every incident's box is kept).")
    @click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
                  help="Keep the gateway database, registry, fleet secret and recordings here (default: temporary).")
    @click.option("--broker", "broker_url", metavar="URL", help="MQTT broker URL (default: embedded amqtt).")
    @click.option("--influx", "influx_url", metavar="URL", help="InfluxDB 1.x: http://host:8086/<database>.")
    @click.option("--speed", type=click.FloatRange(min=1), metavar="X", help="At most X simulated seconds per second.")
    @click.option("--report-interval", "report_interval_s", type=click.IntRange(60, 86400), metavar="S",
                  help="The trackers' report interval in seconds (default: scenario.toml).")
    @click.option("--json", "json_out", is_flag=True, help="Print the summary as JSON.")
    @uplink_options
    @topic_prefix_option
    @click.option("--threads", is_flag=True, help="Run the fleet in threads of this process (no child process).")
    def simulate_cmd(scenario: Path, boxes: int | None, workdir: Path | None, broker_url: str | None,
                     influx_url: str | None, speed: float | None, report_interval_s: int | None, json_out: bool,
                     threads: bool, uplink: str, sf: int, fading: float, topic_prefix: str | None) -> None:
        """Run a scenario's virtual trackers through the real gateway and check its incidents."""
        from segel.sim.demo import DemoOptions

        rehearse(DemoOptions(str(scenario), boxes, broker_url, influx_url, speed, report_interval_s, workdir, json_out,
                             live=False, processes=not threads, uplink=uplink, lora=lora_settings(uplink, sf, fading),
                             topic_prefix=topic_prefix),
                 workdir, "use a new or empty folder")
