"""docs/alerts.md lists every alert kind with its severity (and nothing else)."""

from __future__ import annotations

import re
from pathlib import Path

from segel.custody.alerts import KINDS

DOC = Path(__file__).resolve().parents[2] / "docs" / "alerts.md"


def test_alert_kinds_table_matches_the_code():
    text = DOC.read_text()
    table = text.split("## Kinds", 1)[1].split("## Lifecycle", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (critical|high|warning|info) \|", table, re.M)
    assert dict(rows) == {k.name: k.severity for k in KINDS.values()}
    assert len(rows) == len(KINDS)
