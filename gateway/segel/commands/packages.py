"""`segel packages fetch|list`: the local micropython-lib package cache for offline image builds."""

from __future__ import annotations

import click

from segel.commands._common import subgroup
from segel.commands import _provisioning as shared

ALL_LORA = ("lora", "lora-sync", "lora-sx127x", "lora-sx126x")


@click.command("fetch")
@shared.fleet_options
@click.argument("names", nargs=-1, metavar="[PACKAGE...]")
@click.option("--index", default=None,
              help="Package index URL (default: [fleet] package_index in fleet.toml, micropython-lib's index).")
@click.option("--source", is_flag=True, help="Fetch .py sources (the index's 'py' tree) instead of .mpy.")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds per request.")
@shared.handles_errors
def fetch_cmd(fleet_dir: str | None, db: str | None, names: tuple[str, ...], index: str | None, source: bool,
              timeout: float) -> None:
    """Copy packages and their dependencies from the index into FLEET/packages (run while online).

    \b
    Examples:
      segel packages fetch                      # lora, lora-sync, lora-sx127x, lora-sx126x
      segel packages fetch lora-sx126x
      segel packages fetch --index http://10.0.0.2:8000/pi/v2   # a mirror

    The cache keeps the index's own layout (package/<mpy>/<name>/latest.json, file/<hh>/<hash>),
    every file checked against its hash; `segel image` then works offline."""
    from segel.provision import image, packages

    fleet = shared.fleet_of(fleet_dir)
    s = fleet.settings()
    mpy = None if source else image.mpy_version_for(s.micropython)[0]
    rep = packages.fetch(index or s.package_index, list(names or ALL_LORA), fleet.package_cache, mpy, timeout=timeout,
                         on_file=lambda f: click.echo(f"  {f}", err=True))
    click.echo(f"cached {', '.join(rep.packages)} (.mpy v{mpy if mpy is not None else 'py'}): "
               f"{rep.files_downloaded} files downloaded ({rep.bytes_downloaded:,} B), {rep.files_cached} already "
               f"cached, in {fleet.package_cache}")


@click.command("list")
@shared.fleet_options
@shared.handles_errors
def list_cmd(fleet_dir: str | None, db: str | None) -> None:
    """List the packages in the local cache.

    \b
    Example:
      segel packages list"""
    from segel.provision import packages

    fleet = shared.fleet_of(fleet_dir)
    rows = packages.cached(fleet.package_cache)
    if not rows:
        raise click.ClickException(f"the package cache {fleet.package_cache} is empty: run `segel packages fetch`")
    for mpy, name, version in rows:
        click.echo(f"{name:<16} {version:<8} .mpy v{mpy}")


def register(group: click.Group) -> None:
    g = subgroup(group, "packages", "The local micropython-lib package cache (offline image builds).")
    g.add_command(fetch_cmd)
    g.add_command(list_cmd)
