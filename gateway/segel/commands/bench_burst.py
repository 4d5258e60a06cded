"""`segel bench burst`: trackers leaving a dead zone at once with full queues."""

from __future__ import annotations

from pathlib import Path

import click

from segel.commands._common import subgroup


def register(group: click.Group) -> None:
    bench = subgroup(group, "bench", "Benchmarks: print figures measured on this machine.")

    @bench.command("burst", epilog="""\b
Examples:
  segel bench burst                                  # 700 trackers, 24 frames each (2 hours of 5-minute reports)
  segel bench burst --trackers 1402 --queue 48
  segel bench burst --jitter-ms 0                    # no spreading: every tracker sends at once

\b
The chosen Kutai Timur trackers flush their queues at the same moment as the firmware does (a
random wait before each frame, a receive window for its ack, a few frames per wake, the rest at
the next wake), against the gateway with the rules off and then on. Prints the time until every
tracker had all its acks, how many frames were sent again because an ack missed its window, the
ack latency the trackers saw, and what the gateway stored. Needs the mosquitto package unless
--broker is given.""")
    @click.option("--trackers", type=click.IntRange(1, 1402), default=700, show_default=True,
                  help="Trackers leaving the dead zone at once (of the 1,402).")
    @click.option("--queue", type=click.IntRange(1), default=24, show_default=True, help="Frames queued per tracker.")
    @click.option("--jitter-ms", type=click.IntRange(0), default=3000, show_default=True,
                  help="Random wait before each frame at most (the firmware's jitter_ms).")
    @click.option("--window-ms", type=click.IntRange(100), default=2500, show_default=True,
                  help="Receive window for each frame's ack (the firmware's ack_window_ms).")
    @click.option("--per-wake", type=click.IntRange(1), default=8, show_default=True, help="Frames per wake at most.")
    @click.option("--wake-gap", type=click.FloatRange(0), default=10.0, show_default=True,
                  help="Seconds until the next wake (the report interval, compressed).")
    @click.option("--broker", help="Broker URL (default: start a private Mosquitto).")
    @click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="Keep the databases here.")
    def burst_cmd(trackers: int, queue: int, jitter_ms: int, window_ms: int, per_wake: int, wake_gap: float,
                  broker: str | None, workdir: Path | None) -> None:
        """Measure the burst after a dead zone: time to all acks, resends."""
        from segel.bench import burst

        try:
            click.echo(burst.run(trackers, queue, jitter_ms, window_ms, per_wake, wake_gap, broker, workdir))
        except RuntimeError as e:
            raise click.ClickException(str(e)) from None
