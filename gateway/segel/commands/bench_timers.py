"""`segel bench timers`: the custody judge's timer tick as the fleet grows."""

from __future__ import annotations

import click

from segel.commands._common import subgroup


def register(group: click.Group) -> None:
    bench = subgroup(group, "bench", "Benchmarks: print figures measured on this machine.")

    @bench.command("timers", epilog="""\b
Examples:
  segel bench timers                                # 10,000, 100,000 and 1,000,000 trackers
  segel bench timers --devices 10000 --devices 50000 --due 500

\b
Each fleet: that many registered trackers, each paired to a box with a Kutai Timur plan and heard
once; their silence deadlines spread so that --due fall due per tick whatever the fleet size; the
ticks cross the close of a leg window. Prints per fleet the tick's median cost, the longest tick
(the longest pause in ingest: the gateway runs timers between batches), what they did, and the
process's resident memory per tracker.""")
    @click.option("--devices", "-d", "sizes", type=click.IntRange(1), multiple=True,
                  help="Fleet size (repeat; default 10,000, 100,000 and 1,000,000).")
    @click.option("--due", type=click.IntRange(1), default=100, show_default=True, help="Silences falling due per tick.")
    @click.option("--ticks", type=click.IntRange(1), default=40, show_default=True, help="Ticks (10 s apart) per fleet.")
    def timers_cmd(sizes: tuple[int, ...], due: int, ticks: int) -> None:
        """Measure the timers' tick cost, longest pause and memory per tracker."""
        from segel.bench import timers as benchmark

        rows = []
        for n in sizes or (10_000, 100_000, 1_000_000):
            rows.append(benchmark.run_one(n, due, ticks))
            click.echo(f"{n:,} trackers measured", err=True)
        click.echo(benchmark.report(rows))
