"""Stand-in for MicroPython's `network` (WLAN station only; CPython and MicroPython): only names
micropython-esp32-stubs declares. `_ap` names the access point in range and how long joining it
takes; a station asked to join any other SSID never connects (as on the ESP32: isconnected()
stays False until the caller gives up)."""

from __future__ import annotations

STA_IF = 0
AP_IF = 1

_ap: dict = {"ssid": None, "key": None, "join_ms": 2500}
_log: list = []  # ("active", bool) / ("connect", ssid) / ("disconnect",)


def _now() -> int:
    import time

    return time.ticks_ms()


class WLAN:
    def __init__(self, interface_id: int = STA_IF) -> None:
        self._if = interface_id

    def active(self, is_active=None):
        if is_active is None:
            return bool(_ap.get("_active"))
        _ap["_active"] = bool(is_active)
        _log.append(("active", bool(is_active)))
        if not is_active:
            _ap["_joined_at"] = None
        return None

    def connect(self, ssid=None, key=None, *, bssid=None, reconnects=None) -> None:
        _log.append(("connect", ssid))
        if ssid == _ap["ssid"] and key == _ap["key"]:
            _ap["_joined_at"] = _now() + _ap["join_ms"]
        else:
            _ap["_joined_at"] = None

    def disconnect(self) -> None:
        _log.append(("disconnect",))
        _ap["_joined_at"] = None

    def isconnected(self) -> bool:
        j = _ap.get("_joined_at")
        return bool(_ap.get("_active")) and j is not None and _now() >= j

    def status(self, param=None):
        return 1010 if self.isconnected() else 1001
