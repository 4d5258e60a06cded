"""`segel bench console`: the console under load beside the real gateway (docs/console.md, "Figures")."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands._common import subgroup


def register(group: click.Group) -> None:
    bench = subgroup(group, "bench", "Benchmarks: print figures measured on this machine.")

    @bench.command("console", epilog="""\b
Examples:
  segel bench console                         50 live clients, 1,000 frames/s for 20 s
  segel bench console --clients 10 --seconds 5 --frames 5000     a quick look
  segel bench console --no-browser            skip the map load in Chromium

\b
Starts a private Mosquitto, `segel gateway` and `segel console` (each its own process) on
Kutai Timur's 1,402 boxes and 1,729 places, then prints: the first full map load (HTTP, and
in Chromium when installed), the gateway's ingest rate without and with the live clients,
publish -> alert on every live client (p50, p99) under the paced load, and the console's memory
and CPU beside the gateway's. Needs the mosquitto package.""")
    @click.option("--clients", type=click.IntRange(1, 500), default=50, show_default=True, help="Live pages (event streams).")
    @click.option("--rate", type=click.FloatRange(1), default=1000.0, show_default=True, help="Paced load, frames/s.")
    @click.option("--seconds", type=click.FloatRange(1), default=20.0, show_default=True, help="Length of the paced phase.")
    @click.option("--frames", type=click.IntRange(1000), default=20_000, show_default=True,
                  help="Frames per ingest-rate phase (without and with clients).")
    @click.option("--alert-every", type=click.IntRange(2), default=25, show_default=True,
                  help="Every Nth frame of the paced load is forged (a new critical alert).")
    @click.option("--browser/--no-browser", default=True, show_default=True, help="Also time the map in Chromium.")
    @click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
                  help="Keep the databases and logs here (default: a temporary folder, removed).")
    def console_cmd(clients: int, rate: float, seconds: float, frames: int, alert_every: int, browser: bool,
                    workdir: Path | None) -> None:
        """Measure the console: map load, publish -> alert on live clients, ingest with and without clients."""
        from segel.bench import console as benchmark

        try:
            res = benchmark.run(clients, rate, seconds, frames, alert_every, workdir, browser)
        except RuntimeError as e:
            raise click.ClickException(str(e)) from None
        click.echo(res.report())
