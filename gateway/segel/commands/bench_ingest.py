"""`segel bench ingest`: gateway ingest throughput against a bare MQTT subscriber."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands._common import subgroup


def register(group: click.Group) -> None:
    bench = subgroup(group, "bench", "Benchmarks: print figures measured on this machine.")

    @bench.command("ingest", epilog="""\b
Examples:
  segel bench ingest                          # 20,000 frames, 500 trackers, private Mosquitto
  segel bench ingest --frames 100000 --devices 5000
  segel bench ingest --broker mqtt://127.0.0.1:1883   # an existing broker (set max_queued_messages 0)
  segel bench ingest --rate 500               # paced publisher: latency below saturation
  segel bench ingest --rules                  # Kutai Timur's rules on, against rules off and bare
  segel bench ingest --rules --frames 50000 --paced 1000

\b
Prints the bare paho subscriber's receive rate and the gateway's publish->committed rate
measured in the same run, their ratio, peak RSS and p50/p99 latency. Without --broker it starts
its own Mosquitto on a free loopback port (needs the mosquitto package).

\b
--rules: the Kutai Timur places, corridors, calendar and boxes are loaded and the trackers report
along their real routes (seal openings and re-arms too). In one run: the bare subscriber, the
gateway with the rules off, with the rules on (unpaced), and with the rules on paced at --paced
frames/s; for each the rate, its ratio to bare, publish->commit p50/p99, CPU per frame, and
with the rules on publish->alert latency as seen by an MQTT subscriber of segel/alerts/#.""")
    @click.option("--frames", "-n", type=click.IntRange(1), default=20_000, show_default=True, help="Frames per phase.")
    @click.option("--devices", "-d", type=click.IntRange(1), default=500, show_default=True, help="Simulated trackers.")
    @click.option("--broker", help="Broker URL (default: start a private Mosquitto).")
    @click.option("--batch-max", type=click.IntRange(1), default=1000, show_default=True,
                  help="Messages per SQLite commit at most (gateway.batch_max).")
    @click.option("--rate", type=click.FloatRange(0), default=0.0, show_default=True,
                  help="Pace the publisher at this many frames/s (0 = as fast as possible, measures throughput).")
    @click.option("--rules", is_flag=True, help="Load Kutai Timur's places, plans and boxes; frames along real routes.")
    @click.option("--paced", type=click.FloatRange(0), default=1000.0, show_default=True,
                  help="With --rules: the paced phase's rate in frames/s (0 = skip it).")
    @click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
                  help="Keep the database and recording here (default: a temporary folder, removed).")
    def ingest_cmd(frames: int, devices: int, broker: str | None, batch_max: int, rate: float, rules: bool,
                   paced: float, workdir: Path | None) -> None:
        """Measure ingest frames/s, publish to committed, against a bare subscriber."""
        from segel.bench import ingest as benchmark
        from segel.bench import rules as rules_bench

        try:
            if rules:
                click.echo(rules_bench.run(frames, broker, paced, batch_max, workdir).report())
                return
            res = benchmark.run(frames, devices, broker, batch_max, workdir, rate=rate)
        except RuntimeError as e:
            raise click.ClickException(str(e)) from None
        click.echo(res.report())
