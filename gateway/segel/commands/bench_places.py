"""`segel bench places`: place lookups/s from 1k to 500k places, and the judge's cost per frame."""

from __future__ import annotations

import json

import click


def register(group: click.Group) -> None:
    from segel.commands._common import subgroup

    grp = subgroup(group, "bench", "Benchmarks that print figures (never pass/fail).")

    @grp.command("places", epilog="""\b
Examples:
  segel bench places                               1k, 10k, 100k, 500k places
  segel bench places --sizes 1000,10000 --lookups 5000
  segel bench places --json > bench-places.jsonl
\b
For each size: random TPS circles (30-120 m) over Indonesia; half the query points near a place,
half anywhere. Prints the index build time, lookups/s one at a time (what the judge does per
frame) and in bulk, the same for a brute-force baseline in the same run (numpy distance to every
place) with the ratio, and the custody judge's cost per position frame at that size (SQLite in
memory, place lookup, state machines, findings, ledger, outbox). 500k places need ~2 GB RAM.""")
    @click.option("--sizes", default="1000,10000,100000,500000", show_default=True, help="Comma-separated place counts.")
    @click.option("--lookups", default=20000, show_default=True, type=click.IntRange(min=10), help="Query points per size.")
    @click.option("--brute", default=200, show_default=True, type=click.IntRange(min=1), help="Baseline lookups per size.")
    @click.option("--frames", default=2000, show_default=True, type=click.IntRange(min=0),
                  help="Frames through the custody judge per size (0 = skip).")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per size.")
    def places_cmd(sizes: str, lookups: int, brute: int, frames: int, as_json: bool) -> None:
        """Place index lookups/s as places grow (1k..500k), vs brute force."""
        from segel.bench import places as bench

        try:
            ns = [int(s) for s in sizes.split(",") if s.strip()]
        except ValueError:
            raise click.BadParameter(f"{sizes!r} is not a comma-separated list of numbers", param_hint="--sizes") from None
        if not as_json:
            click.echo(f"{'places':>8} {'build s':>8} {'lookups/s':>10} {'bulk/s':>10} {'brute/s':>9} {'index/brute':>11} "
                       f"{'hits':>5} {'judge µs/frame':>14}")
        for n in ns:
            r = bench.run(n, lookups=lookups, brute_lookups=brute, judge_frames=frames)
            if as_json:
                click.echo(json.dumps(r.as_dict()))
            else:
                judge = f"{r.judge_us_per_frame:14.0f}" if r.judge_us_per_frame is not None else f"{'-':>14}"
                click.echo(f"{r.places:>8} {r.build_s:>8.2f} {r.lookups_per_s:>10,.0f} {r.bulk_lookups_per_s:>10,.0f} "
                           f"{r.brute_lookups_per_s:>9,.0f} {r.speedup:>10,.0f}x {r.hit_ratio:>5.2f} {judge}")
