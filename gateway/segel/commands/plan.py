"""`segel plan radio|channel|concentrator`: LoRa capacity, channel simulation, and an 8-channel gateway's settings."""

from __future__ import annotations

import json

import click

RADIO_HELP = """Time on air, dwell limit and trackers per channel for one radio setting.

\b
Uses the firmware's own time-on-air code and pure ALOHA for collisions: a channel carries
N = -ln(1-p) * interval / (2 * time on air) trackers at collision probability p.
\b
Examples:
  segel plan radio                                  SF10, 24-byte frames, every 5 minutes
  segel plan radio --sf 7 --trackers 80             how many base stations / gateways for 80 boxes
  segel plan radio --sf 9 --interval 600 --collision 0.05 --json
"""

CHANNEL_HELP = """Simulate a fleet on a shared LoRa channel and report the delivery ratio.

\b
Trackers report every --interval with random phase and jitter; overlapping frames on the same
channel and SF are lost (no capture); each copy is also lost with --loss. Receivers are
single-channel base stations (--channels 1) or 8-channel gateways (--channels 8).
\b
Examples:
  segel plan channel --trackers 100 --sf 10
  segel plan channel --trackers 1000 --sf 7 --channels 8 --receivers 2 --loss 0.1
  segel plan channel --table                        the 100/1,000 x SF7/SF10 figures
"""


def register(group: click.Group) -> None:
    from segel.commands._common import subgroup

    grp = subgroup(group, "plan", "Planning tools: radio capacity, channel simulation, concentrator settings.")

    @grp.command("concentrator", epilog="""\b
Segel trackers use the private LoRa sync word 0x12; a packet forwarder set to
"lorawan_public": true (the default) listens for 0x34 and hears nothing from them.
Merge this section into the gateway's global_conf.json, keeping the vendor's
hardware fields (rssi_offset, tx_gain_lut, clksrc, type), then point it at
`segel bridge --udp` (docs/bridge.md).
\b
Examples:
  segel plan concentrator                        SX1302/SX1303 (sx1302_hal) section
  segel plan concentrator --chip sx1301          SX1301 (lora_gateway / packet_forwarder)
  segel plan concentrator > segel-conf.json""")
    @click.option("--region", default="AS923-2", show_default=True, help="Region preset.")
    @click.option("--chip", default="sx1302", show_default=True, type=click.Choice(["sx1302", "sx1301"]),
                  help="The concentrator: SX1302/SX1303 (SX130x_conf) or SX1301 (SX1301_conf).")
    def concentrator(region: str, chip: str) -> None:
        """Print the concentrator section (lorawan_public false, the region's 8 channels) as JSON."""
        from segel.radio import concentrator as conc

        try:
            conf = conc.sx130x_conf(region, chip)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
        click.echo(json.dumps(conf, indent=2))

    @grp.command("radio", help=RADIO_HELP)
    @click.option("--region", default="AS923-2", show_default=True, help="Region preset (AS923-2, the only one: hardware/radio.md).")
    @click.option("--sf", default=10, show_default=True, type=click.IntRange(7, 12), help="Spreading factor.")
    @click.option("--payload", default=24, show_default=True, type=click.IntRange(1, 255), help="Frame bytes (24 = uplink).")
    @click.option("--interval", default=300.0, show_default=True, type=click.FloatRange(min=1), help="Report interval, s.")
    @click.option("--collision", default=0.01, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
                  help="Acceptable collision probability.")
    @click.option("--trackers", type=click.IntRange(min=1), help="Fleet size to serve.")
    @click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
    def radio(region: str, sf: int, payload: int, interval: float, collision: float, trackers: int | None, as_json: bool) -> None:
        from segel.radio import plan as radioplan

        try:
            p = radioplan.plan(region, sf, payload, interval, collision, trackers)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
        if as_json:
            click.echo(json.dumps(p.as_dict(), indent=2))
            return
        click.echo(f"{region} SF{sf}, {payload}-byte frame every {interval:g} s")
        click.echo(f"  time on air        {p.time_on_air_ms} ms  (dwell limit {p.dwell_limit_ms:g} ms: "
                   f"{'ok' if p.dwell_ok else 'OVER - the firmware refuses to send this'})")
        click.echo(f"  duty cycle         {p.duty_cycle_pct} % per tracker")
        click.echo(f"  at {collision:.1%} collisions:")
        click.echo(f"    single-channel base station   {p.single_channel_base} trackers")
        click.echo(f"    8-channel gateway             {p.gateway_8ch} trackers")
        if trackers is not None:
            click.echo(f"  for {trackers} trackers: {p.base_stations_needed} single-channel base stations (each its own channel/SF pair), "
                       f"or {p.gateways_needed} 8-channel gateway(s)")
            click.echo(f"    all on one channel: {p.collision_at_fleet_1ch:.1%} of frames collide; "
                       f"spread over 8: {p.collision_at_fleet_8ch:.1%}")

    @grp.command("channel", help=CHANNEL_HELP)
    @click.option("--trackers", default=100, show_default=True, type=click.IntRange(min=1), help="Trackers on the air.")
    @click.option("--sf", default=10, show_default=True, type=click.IntRange(7, 12), help="Spreading factor of all trackers.")
    @click.option("--interval", default=300.0, show_default=True, type=click.FloatRange(min=1), help="Report interval, s.")
    @click.option("--duration", default=3600.0, show_default=True, type=click.FloatRange(min=1), help="Simulated seconds.")
    @click.option("--receivers", default=2, show_default=True, type=click.IntRange(1, 16),
                  help="Base stations (or gateways) hearing the trackers.")
    @click.option("--channels", default=1, show_default=True, type=click.IntRange(1, 8),
                  help="1: single-channel base stations; 2-8: gateways, trackers spread over that many channels.")
    @click.option("--loss", default=0.0, show_default=True, type=click.FloatRange(0, 1), help="Per-copy loss besides collisions.")
    @click.option("--seed", default=1, show_default=True, help="Random seed (same seed, same result).")
    @click.option("--table", is_flag=True, help="Print 100 and 1,000 trackers at SF7 and SF10.")
    @click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
    def channel(trackers: int, sf: int, interval: float, duration: float, receivers: int, channels: int, loss: float, seed: int,
                table: bool, as_json: bool) -> None:
        from segel.radio import channel as air_channel

        runs = [(n, s) for n in (100, 1000) for s in (7, 10)] if table else [(trackers, sf)]
        results = [air_channel.simulate(n, s, interval, duration, receivers, channels, loss, seed=seed) for n, s in runs]
        if as_json:
            click.echo(json.dumps([r.as_dict() for r in results], indent=2))
            return
        click.echo(f"{'trackers':>8} {'SF':>3} {'ch':>3} {'rx':>3} {'sent':>7} {'delivered':>9} {'ratio':>7} "
                   f"{'ALOHA':>7} {'copies':>7} {'dupes':>7}")
        for r in results:
            click.echo(f"{r.trackers:>8} {r.sf:>3} {r.channels:>3} {r.receivers:>3} {r.sent:>7} {r.delivered:>9} "
                       f"{r.delivery_ratio:>7.1%} {r.aloha_expected:>7.1%} {r.receptions:>7} {r.duplicates:>7}")
