"""`segel bench national`: the national tier under the upward traffic of every regency."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands._common import subgroup


def register(group: click.Group) -> None:
    bench = subgroup(group, "bench", "Benchmarks: print figures measured on this machine.")

    @bench.command("national", epilog="""\b
Examples:
  segel bench national                      # election-day peak of 514 regencies, 1.6 million boxes, 60 s
  segel bench national --seconds 20         # a shorter run
  segel bench national --rate 1000          # a fixed rate (items/s) instead of the calendar's peak

\b
Starts a three-node NATS cluster, PostgreSQL and the national ingester on loopback ports (needs
Debian's nats-server and postgresql), then one MQTT connection per regency publishing the items
the Kutai Timur calendar makes at its busiest 15 minutes, in every regency's own time zone. Prints
the rate offered and sustained, the lag from a regency's commit to the national store (p50, p99),
peak memory and the sizing of the national tier derived from the figures.""")
    @click.option("--boxes", type=click.IntRange(1), default=1_600_000, show_default=True, help="Boxes nationally.")
    @click.option("--seconds", type=click.FloatRange(5), default=60.0, show_default=True, help="Measured seconds.")
    @click.option("--warmup", type=click.FloatRange(0), default=10.0, show_default=True, help="Seconds before measuring.")
    @click.option("--rate", type=click.FloatRange(1), help="Items/s to offer (default: the calendar's national peak).")
    @click.option("--flush", type=click.FloatRange(0.05), default=1.0, show_default=True,
                  help="Seconds between a regency's messages (its uplink's linger: more items per message).")
    @click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
                  help="Keep the NATS data here (default: a temporary folder).")
    def national_cmd(boxes: int, seconds: float, warmup: float, rate: float | None, flush: float,
                     workdir: Path | None) -> None:
        """Measure the national tier: items/s sustained, lag p50/p99, memory, sizing."""
        from segel.national import bench
        from segel.national.local import LocalError

        try:
            res, peak, mean, totals = bench.run(boxes, seconds, warmup, rate, flush_s=flush, workdir=workdir,
                                        say=lambda s: click.echo(s, err=True))
        except (LocalError, RuntimeError, ConnectionError) as e:
            raise click.ClickException(str(e)) from None
        click.echo(res.report(peak, mean, totals))
