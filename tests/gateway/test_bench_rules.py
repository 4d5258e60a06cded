"""`segel bench ingest --rules` and `segel bench burst` run end to end on a few frames (real
Mosquitto, the real gateway and judge): every frame committed in every phase, every burst acked,
and the private broker and folder gone afterwards."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from segel.bench import burst, rules
from tests.servers import require


@pytest.fixture(autouse=True)
def _mosquitto() -> None:
    require("mosquitto")


@pytest.mark.slow
def test_bench_rules_commits_every_frame_in_every_phase(tmp_path: Path) -> None:
    res = rules.run(frames=300, paced_rate=300.0, workdir=tmp_path)
    assert [p.name for p in res.phases] == ["rules off", "rules on", "rules on"]
    assert all(p.frames > 0 and p.committed == p.frames for p in res.phases), res.report()
    assert all(p.frames_per_s > 0 for p in res.phases)
    assert "bare paho subscriber" in res.report()


@pytest.mark.slow
def test_bench_burst_acks_every_frame_with_and_without_rules(tmp_path: Path) -> None:
    out = burst.run(trackers=4, queue=3, jitter_ms=100, wake_gap_s=0.5, workdir=tmp_path)
    rows = [re.search(r"sent +([\d,]+) for +([\d,]+) frames .* accepted ([\d,]+)", line)
            for line in out.splitlines() if "all acked after" in line]
    assert len(rows) == 2 and all(rows), out
    for m in rows:
        sent, frames, accepted = (int(g.replace(",", "")) for g in m.groups())  # type: ignore[union-attr]
        assert frames > 0 and sent >= frames and accepted == frames, out
