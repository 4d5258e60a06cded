"""The SX1301/SX1302 concentrator settings an 8-channel LoRaWAN gateway needs to hear Segel trackers.

Segel is a private LoRa network: sync word 0x12 (`syncword` in the firmware config). A packet
forwarder's `global_conf.json` listens for LoRaWAN's public sync word 0x34 unless
`lorawan_public` is false, and then hears nothing from the trackers. This builds the
`SX130x_conf` (SX1302/SX1303, sx1302_hal) or `SX1301_conf` (lora_gateway) section for the region's
channels: two radios, each channel within +-300 kHz of its radio's centre (the concentrators'
IF range is +-400 kHz; Semtech packet_forwarder / sx1302_hal global_conf.json), multi-SF
channels on every channel of the region, the standard-LoRa and FSK channels off. Hardware-specific
fields (rssi_offset, tx_gain_lut, clksrc, board type) stay as the gateway vendor set them.
"""

from __future__ import annotations

from typing import Any

from segel import paths

CHIPS = {"sx1302": "SX130x_conf", "sx1301": "SX1301_conf"}
IF_MAX_KHZ = 300


def region_channels(region: str) -> tuple[list[int], tuple[int, int]]:
    """-> (channels in kHz, (band low, band high) in kHz) from the firmware's region table."""
    paths.import_firmware()
    from segelfw import airtime

    r = airtime.region(region)  # ValueError names the known regions (and why ID923 is gone)
    return list(r["channels_khz"]), tuple(r["band_khz"])  # type: ignore[return-value]


def sx130x_conf(region: str = "AS923-2", chip: str = "sx1302") -> dict[str, Any]:
    """The concentrator section (`{"SX130x_conf": {...}}`) for the region, with lorawan_public false."""
    if chip not in CHIPS:
        raise ValueError(f"chip {chip!r}: one of {', '.join(CHIPS)}")
    chans, (lo, hi) = region_channels(region)
    if len(chans) > 8:
        raise ValueError(f"{region} has {len(chans)} channels; a concentrator has 8 multi-SF channels")
    half = (len(chans) + 1) // 2
    groups = [chans[:half], chans[half:]]
    centres = [round((g[0] + g[-1]) / 2) for g in groups if g]
    for g, c in zip(groups, centres):
        for f in g:
            if abs(f - c) > IF_MAX_KHZ:
                raise ValueError(f"channel {f} kHz is {abs(f - c)} kHz from its radio's centre {c} kHz: too far")
    conf: dict[str, Any] = {"lorawan_public": False}
    for i, c in enumerate(centres):
        conf[f"radio_{i}"] = {"enable": True, "freq": c * 1000, "tx_enable": i == 0,
                              **({"tx_freq_min": lo * 1000, "tx_freq_max": hi * 1000} if i == 0 else {})}
    n = 0
    for i, (g, c) in enumerate(zip(groups, centres)):
        for f in g:
            conf[f"chan_multiSF_{n}"] = {"enable": True, "radio": i, "if": (f - c) * 1000}
            n += 1
    for k in range(n, 8):
        conf[f"chan_multiSF_{k}"] = {"enable": False}
    conf["chan_Lora_std"] = {"enable": False}
    conf["chan_FSK"] = {"enable": False}
    return {CHIPS[chip]: conf}
