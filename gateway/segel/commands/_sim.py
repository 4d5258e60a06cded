"""What `segel simulate` and `segel demo` share: the --uplink, --sf and --fading options and the run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def topic_prefix_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--topic-prefix", metavar="NAME",
                        help="Every topic under NAME/ instead of segel/ (e.g. segel-sim): needed with --broker on a "
                             "broker that carries a real fleet, which is refused otherwise.")(f)


def uplink_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--fading", type=click.FloatRange(0.0, 0.9), default=0.05, show_default=True, metavar="P",
                     help="--uplink lora: probability that each copy of a frame (at a base station, or an ack at a "
                          "tracker) is lost to fading.")(f)
    f = click.option("--sf", type=click.IntRange(7, 10), default=10, show_default=True,
                     help="--uplink lora: the spreading factor of trackers and base stations (SF7 to SF10 fit "
                          "AS923's 400 ms dwell limit; a lower SF is shorter on air but reaches less far).")(f)
    f = click.option("--uplink", type=click.Choice(["wifi", "lora"]), default="wifi", show_default=True,
                     help="How the trackers' frames reach the gateway: wifi (MQTT segel/up/<device>) or lora "
                          "(the firmware's LoRa link over a simulated channel to base stations at the KPU "
                          "warehouse, the PPK and some PPS offices, each with a real `segel bridge`; docs/demo.md).")(f)
    return f


def lora_settings(uplink: str, sf: int, fading: float) -> Any:
    if uplink != "lora":
        return None
    from segel.sim.lora import LoraOptions

    return LoraOptions(sf=sf, fading=fading)


def rehearse(opts: Any, folder: Path | None, empty_hint: str) -> None:
    """Run `segel.sim.demo.run_demo(opts)` for a command: `folder` must be new or empty; errors become
    click messages; exit status 1 when an incident did not raise its alert."""
    from segel.sim.demo import run_demo

    if folder is not None and folder.exists() and any(folder.iterdir()):
        raise click.ClickException(f"{folder} is not empty: {empty_hint}")
    try:
        summary = run_demo(opts)
    except (FileNotFoundError, ConnectionError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        raise click.Abort() from None
    if not summary.ok:
        raise SystemExit(1)
