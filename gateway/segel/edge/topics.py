"""MQTT topic layout (documented in docs/mqtt.md). Every component builds topics here."""

from __future__ import annotations

import os
import re

# The first level of every topic: "segel", or the simulator's own (`segel simulate --topic-prefix
# segel-sim`), so that a rehearsal on a shared broker never touches the real fleet's topics. Read
# from SEGEL_TOPIC_PREFIX when the module loads (child processes inherit it); set_prefix() changes it.
DEFAULT_PREFIX = "segel"
_PREFIX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
PREFIX = os.environ.get("SEGEL_TOPIC_PREFIX") or DEFAULT_PREFIX
if not _PREFIX_RE.fullmatch(PREFIX):
    raise ValueError(f"SEGEL_TOPIC_PREFIX {PREFIX!r}: use letters, digits, '.', '_' and '-' (at most 32)")

# A tracker on a depot WiFi publishes its raw frame bytes; username = its device id (6 hex).
TRACKER_UP = PREFIX + "/up/{device}"
TRACKER_UP_SUB = PREFIX + "/up/+"
# The gateway answers a WiFi tracker with raw downlink frame bytes (ack, config).
TRACKER_DOWN = PREFIX + "/down/{device}"
# A LoRa bridge publishes JSON {frame, rssi, snr, base_id, freq_khz, sf, rx_time, ...}.
BRIDGE_UP = PREFIX + "/bridge/{bridge}/up"
BRIDGE_UP_SUB = PREFIX + "/bridge/+/up"
# Downlinks for trackers a bridge heard: JSON {device, frame, ...}.
BRIDGE_DOWN = PREFIX + "/bridge/{bridge}/down"
# Bridge and base-station health (JSON, retained) and the bridge's last will.
BRIDGE_STATUS = PREFIX + "/bridge/{bridge}/status"
BRIDGE_STATUS_SUB = PREFIX + "/bridge/+/status"
# Alerts as JSON, one topic per kind so consumers can subscribe to what they handle.
ALERT = PREFIX + "/alerts/{kind}"
ALERT_SUB = PREFIX + "/alerts/#"
# Each active alert's current state (JSON, retained while open or acknowledged; emptied when it
# is resolved or withdrawn), so a client that connects later sees what is open now.
ALERT_STATE = PREFIX + "/alert-state/{id}"
ALERT_STATE_SUB = PREFIX + "/alert-state/+"
# The gateway's own health (JSON, retained).
GATEWAY_STATUS = PREFIX + "/gateway/status"
# Signed ledger checkpoints (JSON, retained): the newest of each box (docs/custody.md).
CHECKPOINT = PREFIX + "/checkpoints/{box}"
CHECKPOINT_SUB = PREFIX + "/checkpoints/#"


def set_prefix(prefix: str) -> None:
    """Use `prefix` instead of "segel" as every topic's first level, in this process and the
    processes it starts (the environment carries it)."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"topic prefix {prefix!r}: use letters, digits, '.', '_' and '-' (at most 32)")
    os.environ["SEGEL_TOPIC_PREFIX"] = prefix
    g = globals()
    g["PREFIX"] = prefix
    for name, rest in _LAYOUT.items():
        g[name] = prefix + rest


def tracker_up(device: str) -> str:
    return TRACKER_UP.format(device=device)


def tracker_down(device: str) -> str:
    return TRACKER_DOWN.format(device=device)


def bridge_up(bridge: str) -> str:
    return BRIDGE_UP.format(bridge=bridge)


def bridge_down(bridge: str) -> str:
    return BRIDGE_DOWN.format(bridge=bridge)


def bridge_status(bridge: str) -> str:
    return BRIDGE_STATUS.format(bridge=bridge)


def alert(kind: str) -> str:
    return ALERT.format(kind=kind)


def checkpoint(box: str) -> str:
    return CHECKPOINT.format(box=box)


def alert_state(alert_id: str) -> str:
    return ALERT_STATE.format(id=alert_id)


_LAYOUT = {"TRACKER_UP": "/up/{device}", "TRACKER_UP_SUB": "/up/+", "TRACKER_DOWN": "/down/{device}",
           "BRIDGE_UP": "/bridge/{bridge}/up", "BRIDGE_UP_SUB": "/bridge/+/up", "BRIDGE_DOWN": "/bridge/{bridge}/down",
           "BRIDGE_STATUS": "/bridge/{bridge}/status", "BRIDGE_STATUS_SUB": "/bridge/+/status",
           "ALERT": "/alerts/{kind}", "ALERT_SUB": "/alerts/#", "ALERT_STATE": "/alert-state/{id}",
           "ALERT_STATE_SUB": "/alert-state/+", "GATEWAY_STATUS": "/gateway/status",
           "CHECKPOINT": "/checkpoints/{box}", "CHECKPOINT_SUB": "/checkpoints/#"}


def split(topic: str) -> tuple[str, str] | None:
    """('tracker', device) or ('bridge', bridge_id) for an uplink topic, else None."""
    parts = topic.split("/")
    if len(parts) == 3 and parts[0] == PREFIX and parts[1] == "up" and parts[2]:
        return "tracker", parts[2]
    if len(parts) == 4 and parts[0] == PREFIX and parts[1] == "bridge" and parts[3] == "up" and parts[2]:
        return "bridge", parts[2]
    return None
