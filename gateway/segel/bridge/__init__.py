"""`segel bridge`: carries LoRa uplinks from a base station (USB serial) or 8-channel gateways
(Semtech UDP packet forwarder) to the broker, and downlinks back. docs/bridge.md."""

from segel.bridge.core import Bridge, list_ports

__all__ = ["Bridge", "list_ports"]
