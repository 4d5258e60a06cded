"""Custody: calendar and plans, the rules judge, alerts and their lifecycle, notifiers, the ledger.

Entry point for a gateway, a replay or the demo: `build_judge(conn, places=..., boxes=...,
calendar=..., settings=...)` returns a `segel.messages.Judge` for `segel.ingest.pipeline.Pipeline(judges=[...])`.
Formats: docs/custody.md; alert kinds and JSON: docs/alerts.md.
"""

from segel.custody.judge import CustodyJudge, build_judge
from segel.custody.plan import make_plans
from segel.custody.plan import (
           DEFAULT_RULES,
           Calendar,
           Leg,
           Plan,
           SealPermit,
           Window,
           load_calendar,
           make_plan,
           parse_calendar,
)

__all__ = ["CustodyJudge", "build_judge", "make_plans", "DEFAULT_RULES", "Calendar", "Leg", "Plan", "SealPermit",
           "Window", "load_calendar", "make_plan", "parse_calendar"]
