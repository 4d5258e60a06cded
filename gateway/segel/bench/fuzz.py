"""`segel bench fuzz`: coverage-guided fuzzing of every input surface under atheris (libFuzzer).

Each target (`segel.bench.fuzz_targets`) runs in its own process (atheris owns the process and
its coverage counters): `python -m segel.bench.fuzz TARGET ...` is that worker. The worker counts
every outcome (accepted, rejected by reason, a bridge counter that moved) and writes the counts
to a JSON file as it goes; libFuzzer stops at the first crash (an exception no caller expects)
or hang (`timeout_s` on one input) and writes the input as `crash-*` / `timeout-*` under the
artifacts folder. The driver starts from the kept corpus (`tests/safety/fuzz/corpus/<target>`
plus the targets' seeds), and with `keep` merges what the run found back into it (only inputs
that add coverage: libFuzzer's -merge=1), so CI replays them (`tests/safety/test_fuzz_corpus.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATS_EVERY = 20_000  # inputs between two writes of the outcome counts


# outcome labels (or parts of "a+b" labels) that mean the input was refused, each counted
REJECTIONS = ("empty", "short_input", "crc_error", "framing_error", "bad_record", "malformed", "bad_rxpk", "crc_fail",
              "no_crc", "unknown_gateway", "too_many_gateways", "bad_downlink", "tx_ack_unknown_token")


def is_rejection(label: str) -> bool:
    return label.startswith("rejected") or label.endswith(":rejected") or any(
        part in REJECTIONS for part in label.split("+"))


@dataclass
class FuzzResult:
    target: str
    inputs: int
    seconds: float
    crashes: list[str] = field(default_factory=list)  # artifact files (crash-*, oom-*, leak-*)
    hangs: list[str] = field(default_factory=list)  # timeout-* artifact files
    outcomes: dict[str, int] = field(default_factory=dict)
    corpus_before: int = 0
    corpus_after: int = 0
    exit_code: int = 0
    tail: str = ""  # the worker's last lines when it failed

    @property
    def per_s(self) -> float:
        return self.inputs / self.seconds if self.seconds > 0 else 0.0

    @property
    def rejected(self) -> int:
        """Inputs refused cleanly: a rejection reason, or a bridge's noise or error counter."""
        return sum(n for k, n in self.outcomes.items() if is_rejection(k))

    def as_dict(self) -> dict:
        return {"target": self.target, "inputs": self.inputs, "seconds": round(self.seconds, 1),
                "inputs_per_s": round(self.per_s), "crashes": len(self.crashes), "hangs": len(self.hangs),
                "crash_files": self.crashes + self.hangs, "outcomes": dict(sorted(self.outcomes.items())),
                "corpus_before": self.corpus_before, "corpus_after": self.corpus_after, "exit_code": self.exit_code}


def corpus_root() -> Path:
    """Where the kept corpora live in a checkout (tests/safety/fuzz)."""
    return Path(__file__).resolve().parents[3] / "tests" / "safety" / "fuzz"


def _files(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def write_seeds(target: str, into: Path) -> int:
    """The target's built-in seeds as files named by their hash."""
    from segel.bench.fuzz_targets import seeds

    into.mkdir(parents=True, exist_ok=True)
    for s in seeds(target):
        (into / hashlib.sha1(s).hexdigest()).write_bytes(s)
    return len(_files(into))


def run_target(target: str, runs: int, corpus: Path | None = None, artifacts: Path | None = None,
               timeout_s: int = 10, max_len: int = 4096, keep: bool = False, seed: int = 0) -> FuzzResult:
    """Fuzz one target for `runs` inputs in a worker process; see the module docstring."""
    from segel.bench.fuzz_targets import TARGETS

    if target not in TARGETS:
        raise ValueError(f"no fuzz target {target!r} (known: {', '.join(TARGETS)})")
    corpus = corpus or corpus_root() / "corpus" / target
    artifacts = artifacts or corpus_root() / "crashers" / target
    artifacts.mkdir(parents=True, exist_ok=True)
    before_art = {p.name for p in _files(artifacts)}
    with tempfile.TemporaryDirectory(prefix=f"segel-fuzz-{target}-") as tmp:
        work = Path(tmp) / "corpus"
        work.mkdir()
        for p in _files(corpus):
            shutil.copy(p, work / p.name)
        write_seeds(target, work)
        n_before = len(_files(corpus))
        stats = Path(tmp) / "stats.json"
        cmd = [sys.executable, "-m", "segel.bench.fuzz", target, str(runs), str(stats), str(work),
               f"-runs={runs}", f"-timeout={timeout_s}", f"-max_len={max_len}", f"-seed={seed}",
               f"-artifact_prefix={artifacts}/", "-print_final_stats=1", "-rss_limit_mb=4096"]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        seconds = time.monotonic() - t0
        data: dict[str, Any] = json.loads(stats.read_text()) if stats.exists() else {"inputs": 0, "outcomes": {}}
        if keep and proc.returncode == 0:
            corpus.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "segel.bench.fuzz", target, "0", str(Path(tmp) / "merge.json"),
                            str(corpus), str(work), "-merge=1", f"-max_len={max_len}"], capture_output=True, text=True)
    new_art = [str(p) for p in _files(artifacts) if p.name not in before_art]
    return FuzzResult(target, int(data["inputs"]), seconds,
                      crashes=[a for a in new_art if not Path(a).name.startswith("timeout-")],
                      hangs=[a for a in new_art if Path(a).name.startswith("timeout-")],
                      outcomes=dict(data["outcomes"]), corpus_before=n_before, corpus_after=len(_files(corpus)),
                      exit_code=proc.returncode,
                      tail="\n".join((proc.stderr or "").splitlines()[-30:]) if proc.returncode else "")


def replay(target: str, inputs: list[bytes]) -> Counter[str]:
    """Run inputs through a target without atheris (CI): outcome counts; an exception propagates."""
    from segel.bench.fuzz_targets import TARGETS

    run = TARGETS[target].run
    return Counter(run(data) for data in inputs)


def _worker(argv: list[str]) -> None:
    """python -m segel.bench.fuzz TARGET RUNS STATS_FILE [libFuzzer args and corpus dirs]"""
    import logging

    import atheris  # the fuzz extra: pip install atheris (scripts/setup.sh --test installs it)

    logging.disable(logging.CRITICAL)  # the targets' warnings would be millions of log lines

    target, runs, stats_file, rest = argv[1], int(argv[2]), Path(argv[3]), argv[4:]
    with atheris.instrument_imports(include=["segel"]):
        from segel.bench import fuzz_targets  # noqa: F401  (and the modules its targets import)
        import segel.bridge.mqtt  # noqa: F401
        import segel.bridge.serial_link  # noqa: F401
        import segel.bridge.udp  # noqa: F401
        import segel.bridge.wire  # noqa: F401
        import segel.config  # noqa: F401
        import segel.custody.plan  # noqa: F401
        import segel.edge.payloads  # noqa: F401
        import segel.ingest.codec  # noqa: F401
        import segel.places.io  # noqa: F401
        import segel.protocol  # noqa: F401
        import segel.provision.settings  # noqa: F401
    run = fuzz_targets.TARGETS[target].run
    counts: Counter[str] = Counter()
    n = 0

    def dump() -> None:
        tmp = stats_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"inputs": n, "outcomes": counts}))
        os.replace(tmp, stats_file)

    def one(data: bytes) -> None:
        nonlocal n
        counts[run(data)] += 1
        n += 1
        if n % STATS_EVERY == 0 or n == runs:
            dump()

    dump()
    # libFuzzer re-runs argv[0] through the shell for -merge: name this worker as a command line
    argv0 = f"{sys.executable} -m segel.bench.fuzz {target} 0 {stats_file.with_suffix('.merge.json')}"
    atheris.Setup([argv0, *rest], one)
    atheris.Fuzz()


if __name__ == "__main__":
    _worker(sys.argv)
