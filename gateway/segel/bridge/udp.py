"""The server side of the Semtech UDP packet-forwarder protocol (PROTOCOL.TXT of
Lora-net/packet_forwarder, versions 1 and 2), for 8-channel LoRaWAN gateways (SX1301/SX1302).

Upstream: PUSH_DATA (rxpk: received packets; stat: gateway statistics) -> each rxpk with a good
CRC becomes one uplink message, buffered durably, then PUSH_ACK. Downstream: the gateway's
PULL_DATA tells us its address (PULL_ACK back); a downlink from the broker goes out as PULL_RESP
with a txpk timed on the gateway's own microsecond counter (tmst) into the tracker's receive
window, through the gateway that heard the tracker best; the gateway answers TX_ACK.
"""

from __future__ import annotations

import base64
import binascii
import collections
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from segel.bridge.buffer import Buffer
from segel.edge import topics
from segel.radio.plan import time_on_air_us

log = logging.getLogger("segel.bridge.udp")

PUSH_DATA, PUSH_ACK, PULL_DATA, PULL_RESP, PULL_ACK, TX_ACK = 0, 1, 2, 3, 4, 5
VERSIONS = (1, 2)
MAX_GATEWAYS = 256  # packet forwarders one bridge serves; a bridge is one site (docs/bridge.md)
# TX_ACK error names (Semtech packet forwarder PROTOCOL.TXT, section 6)
TX_ERRORS = ("TOO_LATE", "TOO_EARLY", "COLLISION_PACKET", "COLLISION_BEACON", "TX_FREQ", "TX_POWER", "GPS_UNLOCKED")
TX_GAP_MS = 20  # between two downlinks into one receive window


@dataclass
class Reception:
    eui: str
    tmst: int
    host_time: float
    freq_mhz: float
    datr: str
    sf: int
    rssi: float
    snr: float
    frame: bytes


@dataclass
class GatewayState:
    eui: str
    version: int = 2
    pull_addr: tuple[str, int] | None = None
    last_seen: float = 0.0
    stat: dict[str, Any] = field(default_factory=dict)
    rx_ok: int = 0
    crc_errors: int = 0
    tx_ok: int = 0
    tx_errors: int = 0


class PacketForwarderServer:
    def __init__(self, host: str, port: int, bridge_id: str, buffer: Buffer, gateways: set[str] | None = None,
                 window_ms: int = 2500, lead_ms: int = 100, tx_power_dbm: int = 14,
                 on_change: Callable[[], None] | None = None) -> None:
        self.bridge_id = bridge_id
        self.buffer = buffer
        self.allowed = {g.lower() for g in gateways} if gateways else None
        self.window_ms = window_ms
        self.lead_ms = lead_ms
        self._tx_busy: dict[tuple[str, int], float] = {}  # (gateway, uplink tmst) -> host time the last txpk ends
        self.tx_power_dbm = tx_power_dbm
        self.on_change = on_change or (lambda: None)
        self.gateways: dict[str, GatewayState] = {}
        self.counters: collections.Counter[str] = collections.Counter()
        self._heard: dict[str, list[Reception]] = {}
        self._pending: dict[int, tuple[str, str, float]] = {}  # token -> (device, eui, sent at)
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.address: tuple[str, int] = self.sock.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bridge-udp-{bridge_id}", daemon=True)

    def start(self) -> PacketForwarderServer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                raise
            try:
                self.datagram(data, addr)
            except Exception:  # noqa: BLE001 - one bad datagram must not stop the server
                self.counters["malformed"] += 1
                log.exception("datagram from %s", addr)

    # --- upstream ---
    def datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 4 or data[0] not in VERSIONS:
            self._malformed(addr, f"{len(data)} bytes, version {data[0] if data else None}")
            return
        ver, token, ident = data[0], data[1:3], data[3]
        if ident in (PUSH_DATA, PULL_DATA, TX_ACK):
            if len(data) < 12:
                self._malformed(addr, f"identifier {ident} without a gateway id")
                return
            eui = data[4:12].hex()
            if self.allowed is not None and eui not in self.allowed:
                self.counters["unknown_gateway"] += 1
                if self.counters["unknown_gateway"] in (1, 10, 100, 1000):
                    log.warning("datagram from unknown gateway %s at %s:%s ignored (not in --gateway list)", eui, *addr)
                return
            gw = self.gateways.get(eui)
            if gw is None:
                if len(self.gateways) >= MAX_GATEWAYS:  # anyone on the LAN can make up EUIs: bound what they cost
                    self.counters["too_many_gateways"] += 1
                    if self.counters["too_many_gateways"] in (1, 100, 10000):
                        log.warning("datagram from a new gateway %s at %s:%s ignored: already %d gateways (name yours "
                                    "with --gateway)", eui, addr[0], addr[1], MAX_GATEWAYS)
                    return
                gw = self.gateways[eui] = GatewayState(eui)
                log.info("gateway %s at %s:%s", eui, *addr)
            gw.version, gw.last_seen = ver, time.time()
            if ident == PUSH_DATA:
                self._push(gw, ver, token, data[12:], addr)
            elif ident == PULL_DATA:
                gw.pull_addr = addr
                self.sock.sendto(bytes((ver,)) + token + bytes((PULL_ACK,)), addr)
                self.counters["pull_data"] += 1
            else:
                self._tx_ack(gw, int.from_bytes(token, "big"), data[12:])
            return
        self._malformed(addr, f"unexpected identifier 0x{ident:02x}")

    def _malformed(self, addr: tuple[str, int], why: str) -> None:
        self.counters["malformed"] += 1
        log.warning("malformed datagram from %s:%s: %s", addr[0], addr[1], why)

    def _push(self, gw: GatewayState, ver: int, token: bytes, body: bytes, addr: tuple[str, int]) -> None:
        try:
            doc = json.loads(body)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError, RecursionError) as e:  # (arrays nested a thousand deep)
            self._malformed(addr, f"PUSH_DATA JSON: {e}")
            return  # not acknowledged: the gateway's ackr statistic shows the problem
        self.counters["push_data"] += 1
        msgs: list[tuple[str, bytes]] = []
        rxpk = doc.get("rxpk", [])
        for pk in rxpk if isinstance(rxpk, list) else []:
            rx = self._rxpk(gw, pk)
            if rx is None:
                continue
            t = _rx_time(pk.get("time"), rx.host_time)
            msgs.append((topics.bridge_up(self.bridge_id), json.dumps({
                "frame": rx.frame.hex(), "rssi": rx.rssi, "snr": rx.snr, "base_id": gw.eui, "freq_khz": round(rx.freq_mhz * 1000),
                "sf": rx.sf, "rx_time": t, "crc_ok": True, "bridge_id": self.bridge_id}).encode()))
            self._remember(rx)
        self.buffer.put_many(msgs)  # durable before PUSH_ACK
        self.sock.sendto(bytes((ver,)) + token + bytes((PUSH_ACK,)), addr)
        stat = doc.get("stat")
        if isinstance(stat, dict):
            gw.stat = stat
            self.on_change()

    def _rxpk(self, gw: GatewayState, pk: Any) -> Reception | None:
        try:
            if not isinstance(pk, dict):
                raise ValueError("rxpk entry is not an object")
            stat = pk.get("stat")
            if stat != 1:
                gw.crc_errors += 1
                self.counters["crc_fail" if stat == -1 else "no_crc"] += 1
                return None
            if pk.get("modu") != "LORA":
                raise ValueError(f"modulation {pk.get('modu')!r}")
            datr = str(pk["datr"])
            sf = int(datr[2 : datr.index("BW")]) if datr.startswith("SF") and "BW" in datr else 0
            if not 7 <= sf <= 12:
                raise ValueError(f"datr {datr!r}")
            frame = base64.b64decode(pk["data"] + "=" * (-len(pk["data"]) % 4), validate=True)
            if "size" in pk and int(pk["size"]) != len(frame):
                raise ValueError(f"size {pk['size']} but data holds {len(frame)} bytes")
            if not frame:
                raise ValueError("empty data")
            rx = Reception(gw.eui, int(pk["tmst"]) & 0xFFFFFFFF, time.time(), float(pk["freq"]), datr, sf,
                           float(pk.get("rssi", 0)), float(pk.get("lsnr", 0.0)), frame)
        except (KeyError, ValueError, TypeError, OverflowError, binascii.Error) as e:  # (int(1e999): Overflow)
            self.counters["bad_rxpk"] += 1
            log.warning("bad rxpk from gateway %s: %s", gw.eui, e)
            return None
        gw.rx_ok += 1
        self.counters["rxpk"] += 1
        return rx

    def _remember(self, rx: Reception) -> None:
        if len(rx.frame) < 4:
            return
        dev = rx.frame[1:4].hex()
        with self._lock:
            prev = self._heard.get(dev)
            if prev and prev[0].frame == rx.frame and rx.host_time - prev[0].host_time < 5:
                prev.append(rx)  # the same frame through another gateway
            else:
                self._heard[dev] = [rx]
            if len(self._heard) > 50000:
                self._heard.pop(next(iter(self._heard)))

    def _tx_ack(self, gw: GatewayState, token: int, body: bytes) -> None:
        err = "NONE"
        if body.strip(b"\x00 "):
            try:
                err = str(json.loads(body).get("txpk_ack", {}).get("error", "NONE"))[:40]
            except (ValueError, AttributeError, RecursionError):
                self.counters["malformed"] += 1
                return
        with self._lock:
            pend = self._pending.pop(token, None)
        if pend is None:
            self.counters["tx_ack_unknown_token"] += 1
        if err == "NONE":
            gw.tx_ok += 1
            self.counters["tx_ok"] += 1
        else:
            gw.tx_errors += 1
            # counted under the protocol's own names only: a forwarder's free text must not grow the counters
            self.counters[f"tx_{err.lower()}" if err in TX_ERRORS else "tx_other_error"] += 1
            log.info("gateway %s refused a downlink%s: %s", gw.eui, f" for {pend[0]}" if pend else "", err)

    # --- downstream ---
    def downlink(self, d: dict[str, Any]) -> str:
        """Send {"device", "frame", "tx_at"} through the gateway that heard the device best.
        -> "sent", "unknown_device", "no_route" or "late"."""
        dev, frame = d["device"].lower(), bytes.fromhex(d["frame"])
        with self._lock:
            heard = list(self._heard.get(dev, []))
        usable = [r for r in heard if (g := self.gateways.get(r.eui)) is not None and g.pull_addr is not None]
        result = "sent"
        if not heard:
            result = "unknown_device"
        elif not usable:
            result = "no_route"
        if result != "sent":
            self.counters[f"down_{result}"] += 1
            return result
        rx = max(usable, key=lambda r: (r.snr, r.rssi))
        gw = self.gateways[rx.eui]
        toa_ms = time_on_air_us(rx.sf, len(frame)) / 1000.0
        now = time.time()
        tx_at = d.get("tx_at")
        start = float(tx_at) if tx_at is not None else now + self.lead_ms / 1000.0
        # several downlinks for one reception (a device command and its ack) go one after the
        # other: the concentrator refuses a second txpk that overlaps the first (COLLISION_PACKET)
        busy = self._tx_busy.get((gw.eui, rx.tmst), 0.0)
        start = max(start, busy)
        offset_ms = (start - rx.host_time) * 1000.0
        if start < now + self.lead_ms / 1000.0 * 0.5 or offset_ms + toa_ms > self.window_ms:
            self.counters["down_late"] += 1
            return "late"
        self._tx_busy[(gw.eui, rx.tmst)] = start + (toa_ms + TX_GAP_MS) / 1000.0
        if len(self._tx_busy) > 1000:
            self._tx_busy.pop(next(iter(self._tx_busy)))
        txpk = {"imme": False, "tmst": (rx.tmst + int(offset_ms * 1000)) & 0xFFFFFFFF, "freq": rx.freq_mhz, "rfch": 0,
                "powe": self.tx_power_dbm, "modu": "LORA", "datr": rx.datr, "codr": "4/5", "ipol": False,
                "size": len(frame), "data": base64.b64encode(frame).decode()}
        token = int.from_bytes(os.urandom(2), "big")
        with self._lock:
            self._pending[token] = (dev, gw.eui, now)
            if len(self._pending) > 1000:
                self._pending.pop(next(iter(self._pending)))
        assert gw.pull_addr is not None
        self.sock.sendto(bytes((gw.version,)) + token.to_bytes(2, "big") + bytes((PULL_RESP,)) + json.dumps({"txpk": txpk}).encode(),
                         gw.pull_addr)
        self.counters["down_sent"] += 1
        return "sent"

    def base_status(self) -> dict[str, dict[str, Any]]:
        """Each gateway's health, in the shape of the `base_station` measurement."""
        out = {}
        for eui, g in self.gateways.items():
            s = g.stat
            rxnb = _int(s.get("rxnb"))
            rxok = _int(s.get("rxok"))
            out[eui] = {"rx_packets": rxnb if rxnb is not None else g.rx_ok + g.crc_errors,
                        "crc_errors": (rxnb - rxok) if rxnb is not None and rxok is not None else g.crc_errors,
                        "tx_packets": _int(s.get("txnb")) if "txnb" in s else g.tx_ok, "tx_errors": g.tx_errors,
                        "ackr": _finite(s.get("ackr")), "lat": _finite(s.get("lati")), "lon": _finite(s.get("long")),
                        "last_seen": round(g.last_seen, 3),
                        "downlink_route": g.pull_addr is not None}
        return out


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError, OverflowError):  # None, "abc", 1e999
        return None


def _finite(v: Any) -> float | None:
    """A number from the forwarder's JSON that can go on as JSON (not inf, not a string)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v) if abs(v) < 1e300 else float("inf")
    return f if math.isfinite(f) else None


def _rx_time(s: Any, fallback: float) -> float:
    """The gateway's 'time' (ISO 8601, GPS or system clock) when sane, else our receive time."""
    if isinstance(s, str):
        try:
            t = datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
            if abs(t - fallback) < 86400:
                return round(t, 6)
        except ValueError:
            pass
    return round(fallback, 3)
