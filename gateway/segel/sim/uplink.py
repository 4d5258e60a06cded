"""The --uplink, --sf and --fading options shared by `segel simulate` and `segel demo`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


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
