"""The `segel` command: a thin layer over the library.

Each module in `segel.commands` defines `register(group)`, which adds its commands to the group;
the CLI only parses flags, calls the library and prints.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import click

from segel import __version__, commands

EPILOG = """\b
Typical flow:
  segel fleet init                  create the fleet secret and settings
  segel provision --count 100       register trackers, write their configs
  segel flash --port /dev/ttyUSB0 ID  put MicroPython, firmware and config on a board
  segel gateway --config segel.toml  run the gateway against your broker and InfluxDB
  segel demo                        the whole Kutai Timur rehearsal on embedded defaults

Every command has --help with examples. Docs: docs/ in the repository.
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}, epilog=EPILOG)
@click.version_option(__version__, prog_name="segel")
@click.option("-v", "--verbose", count=True, help="More log detail (-v info, -vv debug).")
@click.pass_context
def main(ctx: click.Context, verbose: int) -> None:
    """Segel: tracked, sealed ballot boxes from the KPU warehouse to every TPS and back."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    ctx.ensure_object(dict)


def _load_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # shared helpers, not commands
            continue
        mod = importlib.import_module(f"segel.commands.{info.name}")
        mod.register(main)


_load_commands()
