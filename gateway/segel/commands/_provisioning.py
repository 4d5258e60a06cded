"""Shared click pieces of the provisioning commands: --fleet/--db, device selection, errors as messages, progress bars."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import click

from segel.provision.settings import Fleet

F = TypeVar("F", bound=Callable[..., Any])


def fleet_options(f: F) -> F:
    f = click.option("--db", "db", metavar="PATH", default=None,
                     help="Registry database (default: [registry] path in fleet.toml, e.g. the gateway's).")(f)
    f = click.option("--fleet", "fleet_dir", metavar="DIR", envvar="SEGEL_FLEET", default=None,
                     help="Fleet folder (default: $SEGEL_FLEET, else ./fleet).")(f)
    return f


def fleet_of(fleet_dir: str | None) -> Fleet:
    return Fleet.locate(fleet_dir)


def _expected() -> tuple[type[BaseException], ...]:
    from segel.provision.check import CheckError
    from segel.provision.devconfig import ProvisionError
    from segel.provision.flash import FlashError
    from segel.provision.image import ImageError
    from segel.provision.keys import KeyError_
    from segel.provision.packages import PackageError
    from segel.provision.pairing import PairError
    from segel.provision.partitions import PartitionError
    from segel.provision.roles import RoleError
    from segel.provision.settings import SettingsError
    from segel.registry import RegistryError

    return (CheckError, ProvisionError, FlashError, ImageError, PackageError, PairError, PartitionError,
            RoleError, SettingsError, RegistryError, FileNotFoundError, KeyError_)


@contextlib.contextmanager
def explained() -> Iterator[None]:
    """Expected failures become one clear line and exit status 1 (no traceback)."""
    try:
        yield
    except _expected() as e:
        raise click.ClickException(str(e)) from e


def handles_errors(f: F) -> F:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with explained():
            return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def select_devices(fleet: Fleet, db: str | None, ids: tuple[str, ...], all_: bool,
                   role: str | None = None) -> list[Any]:
    """The devices named on the command line, or every registered one with --all."""
    from segel.provision import devconfig

    if ids and all_:
        raise click.UsageError("give DEVICE_IDs or --all, not both")
    if all_:
        devs = [d for d in fleet.open_registry(db).devices() if role is None or d.role == role]
        if not devs:
            raise click.ClickException(f"no devices registered in {fleet.registry_db(db)}: run segel provision")
        return devs
    if not ids:
        raise click.UsageError("give one or more DEVICE_IDs, or --all")
    return [devconfig.resolve(fleet, i, db) for i in ids]


def progress_bar(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A click progress bar on stderr driven by (current, total) callbacks, e.g. esptool's; a new
    bar starts whenever the total changes or the count goes back (esptool's next write)."""
    state: dict[str, Any] = {"bar": None, "total": None, "cur": 0}

    def update(cur: int, total: int) -> None:
        bar = state["bar"]
        if bar is None or state["total"] != total or cur < state["cur"]:
            if bar is not None:
                bar.render_finish()
            bar = click.progressbar(length=total, label=label, file=sys.stderr)
            bar.__enter__()
            state.update(bar=bar, total=total, cur=0)
        bar.update(cur - state["cur"])
        state["cur"] = cur

    def finish() -> None:
        if state["bar"] is not None:
            state["bar"].render_finish()

    return update, finish

