"""Project-wide checks: docs agree with code, every command teaches, CI runs the README command."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click
from click.testing import CliRunner
from segel.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_protocol_doc_holds_the_computed_airtime_table() -> None:
    table = _load_tool("airtime_table").table()
    assert table in (ROOT / "docs" / "protocol.md").read_text(), "regenerate with: python tools/airtime_table.py"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme
    assert "exec bash scripts/test.sh" in ci
    assert "bash scripts/demo.sh" in readme


def _walk(cmd: click.Command, path: tuple[str, ...] = ()):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _walk(sub, path + (name,))


def test_every_command_has_help() -> None:
    runner = CliRunner()
    missing = []
    for path, cmd in _walk(main):
        if not (cmd.help or "").strip():
            missing.append(" ".join(path) or "segel")
        res = runner.invoke(main, [*path, "--help"])
        assert res.exit_code == 0, (path, res.output)
        for p in cmd.params:
            if isinstance(p, click.Option) and not (p.help or "").strip() and p.name not in ("help", "version"):
                missing.append(f"{' '.join(path)} {p.opts[0]}")
    assert not missing, f"commands/options without help: {missing}"
