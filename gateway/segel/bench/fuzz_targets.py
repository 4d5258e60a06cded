"""What the fuzzer feeds: one function per input surface, each mapping bytes to a counted outcome.

A target takes arbitrary bytes, drives the real code that reads that kind of input, and returns
the outcome as a short label ("accepted", "rejected:bad_mac", "bad_record", ...). A rejection is
clean when the code under test reports it the way it does in service: a `FrameError` with its
reason, a `PayloadError`, a `ConfigError` naming the key, a counter of the bridge going up. Any
other exception escaping a target is a crash: the code would have raised where the service
expects an answer. `segel bench fuzz` runs these under atheris (coverage-guided, libFuzzer) and
`tests/safety/test_fuzz_corpus.py` replays the kept corpora and crashers in CI.
"""

from __future__ import annotations

import base64
import collections
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KEY = bytes(range(32))  # a fixed device key: only the targets' own frames carry a valid MAC
DEVICE = 0x000101


@dataclass(frozen=True)
class Target:
    name: str
    what: str
    run: Callable[[bytes], str]


# ---- the frame decoder -----------------------------------------------------------------------


def _codec() -> Any:
    from segel import protocol
    from segel.ingest.codec import FrameCodec

    return FrameCodec(protocol.DeviceKeys.from_device_key(KEY)), protocol.DeviceKeys.from_device_key(KEY)


_CODEC: Any = None


def frame(data: bytes) -> str:
    """Byte 0 picks the mode: even = the bytes as a frame off the air (header, direction, MAC);
    odd = bytes 1.. as type and plaintext, encrypted and signed with the device key, so the body
    decoder sees arbitrary plaintext behind a valid MAC (what a stolen key could send)."""
    global _CODEC
    from segel import protocol
    from segel.protocol import FrameError

    if _CODEC is None:
        _CODEC = _codec()
    codec, keys = _CODEC
    if not data:
        return "empty"
    try:
        if data[0] % 2 == 0:
            raw = data[1:]
            hdr = protocol.parse_header(raw)
            fr = codec.verify_and_decode(raw, hdr)
        else:
            if len(data) < 7:
                return "short_input"
            types = sorted(protocol.BODY_LEN)
            ftype = types[data[1] % len(types)]
            counter, t = int.from_bytes(data[2:5], "big"), int.from_bytes(data[5:7], "big")
            plain = data[7:7 + protocol.BODY_LEN[ftype]].ljust(protocol.BODY_LEN[ftype], b"\0")
            raw = protocol.encode_frame(keys, int(ftype), DEVICE, counter, t, plain)
            fr = codec.verify_and_decode(raw)
            # the reference decoder must agree with the fast one on every frame it accepts
            ref = protocol.verify_and_decode(keys, raw)
            if ref != fr:
                raise AssertionError(f"fast and reference decoders disagree on {raw.hex()}")
    except FrameError as e:
        return f"rejected:{e.reason}"
    return f"accepted:{type(fr.body).__name__}"


# ---- the serial framing (COBS, CRC, the base station's records) ----------------------------------


class _Port:
    """What the serial link writes back (acks, hello requests) goes nowhere."""

    def write(self, data: bytes) -> int:
        return len(data)


class _Sink:
    """The bridge's durable buffer, in memory (the target counts what would be published)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bytes]] = []

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        self.items += items
        del self.items[:-100]


_SERIAL: Any = None


def serial(data: bytes) -> str:
    """Bytes from the base station's USB port through the real stream decoder and record handler;
    byte 0 odd also hands bytes 1.. to the record handler as one checked payload (past the CRC)."""
    global _SERIAL
    from segel.bridge.serial_link import SerialLink

    if _SERIAL is None:
        _SERIAL = SerialLink("loop://", "fuzz-bridge", _Sink())  # type: ignore[arg-type]
        _SERIAL._records(_Port(), [_hello()])  # a base station said hello: its uplinks are handled
    link = _SERIAL
    before = (link._dec.crc_errors, link._dec.framing_errors, link.bad_records, link.uplinks)
    if data and data[0] % 2:
        link._records(_Port(), [data[1:]])
    else:
        link._records(_Port(), link._dec.feed(data))
    after = (link._dec.crc_errors, link._dec.framing_errors, link.bad_records, link.uplinks)
    names = ("crc_error", "framing_error", "bad_record", "uplink")
    moved = [n for n, a, b in zip(names, before, after, strict=True) if b != a]
    return "+".join(moved) or "nothing"


def _hello() -> bytes:
    """A HELLO record (without COBS and CRC): boot 1, firmware 1.0, 923.2 MHz, SF10, base id."""
    from segel.bridge import wire

    return wire._HELLO.pack(wire.R_HELLO, 1, 0x10, 923200, 10, b"base01") + b"AS923-2"


# ---- the Semtech UDP packet forwarder ----------------------------------------------------------


class _Sock:
    def sendto(self, data: bytes, addr: Any) -> int:
        return len(data)


_UDP: Any = None
_EUI = bytes.fromhex("aa555a0000000001")


def udp(data: bytes) -> str:
    """A datagram from a packet forwarder; byte 0 picks: 0-63 raw datagram, 64-127 a PUSH_DATA
    with these bytes as its JSON, 128-191 a TX_ACK with them, 192-255 a downlink request from
    MQTT (parsed as the bridge parses it, then routed through this forwarder)."""
    global _UDP
    from segel.bridge.mqtt import parse_downlink
    from segel.bridge.udp import PacketForwarderServer

    if _UDP is None:
        _UDP = PacketForwarderServer("127.0.0.1", 0, "fuzz-udp", _Sink())  # type: ignore[arg-type]
        _UDP.sock.close()
        _UDP.sock = _Sock()
        # a gateway that pulls and heard device 000101: downlinks have a route
        _UDP.datagram(bytes((2, 0, 1, 2)) + _EUI, ("127.0.0.1", 1700))
        pk = {"rxpk": [{"stat": 1, "modu": "LORA", "datr": "SF10BW125", "tmst": 1, "freq": 923.2, "rssi": -80,
                        "lsnr": 5.0, "size": 4, "data": base64.b64encode(b"\x01\x00\x01\x01").decode()}]}
        _UDP.datagram(bytes((2, 0, 2, 0)) + _EUI + json.dumps(pk).encode(), ("127.0.0.1", 1700))
    srv = _UDP
    if not data:
        return "empty"
    before = collections.Counter(srv.counters)
    sel, rest = data[0], data[1:]
    if sel < 64:
        srv.datagram(rest, ("127.0.0.1", 1700))
    elif sel < 128:
        srv.datagram(bytes((2, 0, 3, 0)) + _EUI + rest, ("127.0.0.1", 1700))
    elif sel < 192:
        srv.datagram(bytes((2, 0, 4, 5)) + _EUI + rest, ("127.0.0.1", 1700))
    else:
        try:
            d = parse_downlink(rest)
        except ValueError:
            return "bad_downlink"
        return "down_" + srv.downlink(d)
    if 64 <= sel < 128 or data[-1] % 64 == 0:  # the bridge's status must stay valid JSON (what a PUSH_DATA's stat feeds)
        json.dumps(srv.base_status(), allow_nan=False)
    moved = sorted(k for k in srv.counters if srv.counters[k] != before.get(k, 0))
    if len(srv._heard) > 10_000:
        srv._heard.clear()
    return "+".join(moved) or "nothing"


# ---- the bridge JSON (and every MQTT message the gateway reads) ---------------------------------

_TOPICS = ("segel/bridge/ppk-1/up", "segel/bridge/ppk-1/status", "segel/up/000101", "segel/bridge/bad name/up")


def bridge_json(data: bytes) -> str:
    """An MQTT message as the gateway reads it (segel.edge.payloads): byte 0 picks a topic (or,
    from 128 on, bytes 1..32 are the topic), the rest is the payload."""
    from segel.edge import payloads

    if not data:
        return "empty"
    if data[0] < 128:
        topic, payload = _TOPICS[data[0] % len(_TOPICS)], data[1:]
    else:
        topic, payload = data[1:33].decode("utf-8", "replace"), data[33:]
    try:
        if payloads.is_bridge_status(topic):
            payloads.bridge_status(topic, payload)
            return "status"
        up = payloads.to_uplink(topic, payload, 1.7e9)
    except payloads.PayloadError as e:
        return f"rejected:{e.reason}"
    return "uplink:" + (up.source.kind if up.source else "none")


# ---- the places importers ------------------------------------------------------------------------


def places(data: bytes) -> str:
    """A places file as `segel places import` reads it: byte 0 even = CSV, odd = GeoJSON."""
    from segel.places.io import ImportErrors, parse_csv, parse_geojson

    if not data:
        return "empty"
    text = data[1:].decode("utf-8", "replace")
    try:
        found, _ = (parse_geojson if data[0] % 2 else parse_csv)(text, "fuzz")
    except ImportErrors as e:
        return f"rejected:{len(e.errors) if len(e.errors) < 3 else 'many'}"
    return f"places:{min(len(found), 3)}"


# ---- the config loaders -----------------------------------------------------------------------------


def config(data: bytes) -> str:
    """A configuration as TOML text: byte 0 picks the gateway's config (segel.toml), the election
    calendar (calendar.toml) or the fleet settings (fleet.toml)."""
    from segel.config import ConfigError, loads
    from segel.custody.plan import CalendarError, parse_calendar
    from segel.provision.settings import SettingsError, from_toml

    if not data:
        return "empty"
    text = data[1:].decode("utf-8", "replace")
    kind = data[0] % 3
    try:
        if kind == 0:
            loads(text, None, env={})
            return "gateway:ok"
        if kind == 1:
            parse_calendar(text, "fuzz")
            return "calendar:ok"
        from_toml(text, "fuzz")
        return "fleet:ok"
    except ConfigError:
        return "gateway:rejected"
    except CalendarError:
        return "calendar:rejected"
    except SettingsError:
        return "fleet:rejected"


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("frame", "the frame decoder (header, MAC, decryption, bodies; fast and reference codecs)", frame),
    Target("serial", "the serial framing: COBS, CRC-16 and the base station's records", serial),
    Target("udp", "Semtech UDP packet-forwarder datagrams and the bridge's downlink JSON", udp),
    Target("bridge_json", "MQTT messages the gateway reads: bridge uplink JSON, status, raw frames", bridge_json),
    Target("places", "the places importers: CSV and GeoJSON", places),
    Target("config", "the config loaders: segel.toml, calendar.toml, fleet.toml", config),
)}


# ---- seeds: one valid input of every kind each target reads ---------------------------------------


def _frame_seeds() -> list[bytes]:
    from segel import protocol

    keys = protocol.DeviceKeys.from_device_key(KEY)
    bodies: list[protocol.Body] = [
        protocol.Position(0.5123, 117.5412, int(protocol.Flag.FIX), 1.2, 34),
        protocol.Seal(int(protocol.SealEvent.LOOP_OPEN), 3, 0, 0.51, 117.54),
        protocol.Status(3900, "1.2", 4, 1, 0, 600),
        protocol.Ack((5, 6, 9)),
        protocol.Config(300, 60, 0, 10),
    ]
    out = []
    for i, b in enumerate(bodies):
        raw = protocol.encode(keys, DEVICE, 100 + i, 1_732_000_000, b)
        out.append(b"\x00" + raw)
        ftype, plain = protocol.encode_body(b)
        out.append(b"\x01" + bytes((sorted(protocol.BODY_LEN).index(ftype),)) + (100 + i).to_bytes(3, "big")
                   + b"\x01\x02" + plain)
    return out


def _serial_seeds() -> list[bytes]:
    from segel.bridge import wire

    up = wire._UPLINK.pack(wire.R_UPLINK, 1, 7, 1200, -97, 22, 923200, 10, 1) + bytes(range(24))
    health = wire._HEALTH.pack(wire.R_HEALTH, 1, 3600, 120, 3, 10, 0, 0, 2, 315, 923200, 10, b"base01")
    txdone = wire._TXDONE.pack(wire.R_TXDONE, 1, 5, 0)
    recs = [up, health, _hello(), txdone]
    return [b"\x00" + b"".join(wire.encode(r) for r in recs), b"\x00" + wire.encode(up)[:-3] + b"\x00",
            *(b"\x01" + r for r in recs)]


def _udp_seeds() -> list[bytes]:
    push = {"rxpk": [{"tmst": 3512348611, "time": "2024-11-27T02:00:00.000000Z", "chan": 2, "rfch": 0,
                      "freq": 923.2, "stat": 1, "modu": "LORA", "datr": "SF10BW125", "codr": "4/5", "rssi": -95,
                      "lsnr": 5.5, "size": 24, "data": base64.b64encode(bytes(range(24))).decode()}],
            "stat": {"time": "2024-11-27 02:00:00 GMT", "rxnb": 2, "rxok": 2, "rxfw": 2, "ackr": 100.0, "dwnb": 0,
                     "txnb": 0}}
    down = {"device": "000101", "frame": "18000101000005" + "00" * 11, "tx_at": None}
    return [b"\x00" + bytes((2, 0x12, 0x34, 0)) + _EUI + json.dumps(push).encode(),
            b"\x00" + bytes((2, 0x12, 0x35, 2)) + _EUI,
            b"\x40" + json.dumps(push).encode(),
            b"\x80" + json.dumps({"txpk_ack": {"error": "TOO_LATE"}}).encode(),
            b"\xc0" + json.dumps(down).encode()]


def _bridge_seeds() -> list[bytes]:
    up = {"frame": "11000101" + "00" * 20, "rssi": -97.0, "snr": 5.5, "base_id": "base01", "freq_khz": 923200,
          "sf": 10, "rx_time": 1732672800.0, "crc_ok": True, "bridge_id": "ppk-1"}
    status = {"bridge_id": "ppk-1", "online": True, "bases": {"base01": {"rx_packets": 10, "crc_errors": 0}}}
    return [b"\x00" + json.dumps(up).encode(), b"\x01" + json.dumps(status).encode(),
            b"\x02" + bytes(range(24)), b"\x80" + b"segel/bridge/x/up".ljust(32, b"/") + json.dumps(up).encode()]


def _places_seeds() -> list[bytes]:
    csv_text = ("code,kind,name,parent,lat,lon,radius_m,wkt,width_m,from,to\n"
                "KPU,warehouse,Gudang,,0.5,117.55,250,,,,\nPPK,ppk,PPK,KPU,0.505,117.546,150,,,,\n"
                "PPS,pps,PPS,PPK,0.51,117.54,100,,,,\nT1,tps,TPS 1,PPS,0.512,117.541,60,,,,\n"
                'D,zone,Depot,,,,,"POLYGON((117.50 0.50, 117.51 0.50, 117.51 0.51, 117.50 0.50))",,,\n'
                'R,corridor,Road,,,,,"LINESTRING(117.55 0.5, 117.546 0.505)",200,KPU,PPK\n')
    semi = "code;kind;name;parent;lat;lon;radius_m\r\nKPU;warehouse;Gudang;;0,5;117,55;250\r\n"
    geo = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": "R2", "kind": "corridor", "width_m": 300, "from": "KPU"},
         "geometry": {"type": "LineString", "coordinates": [[117.55, 0.5], [117.6, 0.6]]}},
        {"type": "Feature", "properties": {"code": "Z", "kind": "zone", "radius_m": 80},
         "geometry": {"type": "Point", "coordinates": [117.5, 0.5]}}]}
    return [b"\x00" + csv_text.encode(), b"\x00" + semi.encode(), b"\x01" + json.dumps(geo).encode()]


def _config_seeds() -> list[bytes]:
    from segel.config import EXAMPLE
    from segel.provision.settings import FleetSettings, to_toml

    calendar = ('name = "Pilkada"\ntimezone = "WITA"\nelection_day = 2024-11-27\n'
                '[legs.pps_to_tps]\ndepart = 2024-11-26T13:00:00\narrive_by = 2024-11-26T23:30:00\n'
                '[seal.tps]\nopen = 2024-11-27T06:00:00\nclose = 2024-11-28T02:00:00\n'
                '[ppk."64.08.04".pps_to_tps]\ndepart = 2024-11-25T13:00:00\narrive_by = 2024-11-25T23:30:00\n'
                '[rules]\nreport_interval_s = 300\n')
    return [b"\x00" + EXAMPLE.encode(), b"\x01" + calendar.encode(), b"\x02" + to_toml(FleetSettings()).encode()]


SEEDS: dict[str, Callable[[], list[bytes]]] = {
    "frame": _frame_seeds, "serial": _serial_seeds, "udp": _udp_seeds, "bridge_json": _bridge_seeds,
    "places": _places_seeds, "config": _config_seeds,
}


def seeds(target: str) -> list[bytes]:
    return SEEDS[target]()
