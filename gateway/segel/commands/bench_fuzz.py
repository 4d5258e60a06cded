"""`segel bench fuzz`: a million fuzzed inputs per input surface; crashes, hangs and outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import click


def register(group: click.Group) -> None:
    from segel.commands._common import subgroup

    grp = subgroup(group, "bench", "Benchmarks that print figures (never pass/fail).")

    @grp.command("fuzz", epilog="""\b
Examples:
  segel bench fuzz                                 every target, 1,000,000 inputs each
  segel bench fuzz --target frame --runs 100000
  segel bench fuzz --keep --json > fuzz.jsonl      keep new coverage in tests/safety/fuzz/corpus
\b
Coverage-guided fuzzing with atheris (libFuzzer) of every surface that reads outside input:
frame (decoder, MAC, bodies), serial (COBS, CRC, base-station records), udp (Semtech packet
forwarder, downlink JSON), bridge_json (every MQTT message the gateway reads), places (CSV,
GeoJSON importers), config (segel.toml, calendar.toml, fleet.toml). Each target runs in its own
process from the kept corpus; a crash (an exception no caller expects) or a hang (--timeout
seconds on one input) stops that target and is saved under tests/safety/fuzz/crashers/<target>
for a regression test. Prints inputs, inputs/s, crashes, hangs and how the inputs were
rejected. Needs atheris (installed by scripts/setup.sh --test). Exit status 1 on any crash or hang.""")
    @click.option("--target", "targets", multiple=True, help="Only this target (repeatable; default: all).")
    @click.option("--runs", type=click.IntRange(min=1), default=1_000_000, show_default=True, help="Inputs per target.")
    @click.option("--timeout", "timeout_s", type=click.IntRange(min=1), default=10, show_default=True,
                  help="Seconds one input may take before it counts as a hang.")
    @click.option("--max-len", type=click.IntRange(min=16), default=4096, show_default=True, help="Longest input, bytes.")
    @click.option("--seed", type=int, default=0, show_default=True, help="libFuzzer's random seed (0: from the clock).")
    @click.option("--keep", is_flag=True, help="Merge inputs that add coverage into the kept corpus.")
    @click.option("--json", "as_json", is_flag=True, help="One JSON object per target.")
    def fuzz_cmd(targets: tuple[str, ...], runs: int, timeout_s: int, max_len: int, seed: int, keep: bool,
                 as_json: bool) -> None:
        """Fuzz every input surface (atheris): inputs, crashes, hangs, rejections."""
        from segel.bench import fuzz
        from segel.bench.fuzz_targets import TARGETS

        try:
            import atheris  # noqa: F401
        except ImportError:
            raise click.ClickException("atheris is not installed: pip install atheris "
                                       "(scripts/setup.sh --test installs it)") from None
        names = list(targets) or list(TARGETS)
        for n in names:
            if n not in TARGETS:
                raise click.BadParameter(f"{n!r}; known: {', '.join(TARGETS)}", param_hint="--target")
        if not as_json:
            click.echo(f"{'target':<12} {'inputs':>10} {'seconds':>8} {'inputs/s':>9} {'crashes':>7} {'hangs':>5} "
                       f"{'rejected':>9} {'corpus':>11}  top outcomes")
        failed = False
        for n in names:
            r = fuzz.run_target(n, runs, timeout_s=timeout_s, max_len=max_len, keep=keep, seed=seed)
            failed |= bool(r.crashes or r.hangs or r.exit_code)
            if as_json:
                click.echo(json.dumps(r.as_dict()))
                continue
            top = ", ".join(f"{k} {v:,}" for k, v in sorted(r.outcomes.items(), key=lambda kv: -kv[1])[:4])
            click.echo(f"{n:<12} {r.inputs:>10,} {r.seconds:>8.0f} {r.per_s:>9,.0f} {len(r.crashes):>7} "
                       f"{len(r.hangs):>5} {r.rejected:>9,} {r.corpus_before:>5}->{r.corpus_after:<5}  {top}")
            for f in r.crashes + r.hangs:
                click.echo(f"  saved {Path(f)}: replay with tests/safety/test_fuzz_corpus.py", err=True)
            if r.exit_code and not (r.crashes or r.hangs):
                click.echo(f"  the worker failed (exit {r.exit_code}):\n{r.tail}", err=True)
        if failed:
            raise SystemExit(1)
