"""The upward traffic of many regencies at once, for `segel bench national`: one process, one MQTT
connection per regency (its own account), QoS 1 messages of items as the uplink builds them.

Each regency sends every `flush_s` the items that came due (positions, custody changes, alerts,
summaries in the profile's mix, at its share of the national rate), numbered from 1 and stamped
with the send time as their commit time, so the national store's `stored - committed` is the lag
from a regency's commit to the nation. MQTT is spoken directly over sockets (segel.bench.loadgen's 3.1.1
packets: CONNECT with username and password, PUBLISH QoS 1, PUBACK; at most `window` unacknowledged per regency) to
keep the generator's own CPU small; paho's per-message cost would dominate on two cores.
"""

from __future__ import annotations

import json
import random
import selectors
import socket
import time
from dataclasses import dataclass, field

from segel.bench.loadgen import connect_packet, publish_packet
from segel.national import codes


@dataclass
class Regency:
    code: str
    topic: str
    sock: socket.socket
    boxes: int
    seq: int = 0
    pid: int = 0
    inflight: int = 0
    due: dict[str, float] = field(default_factory=dict)
    buf: bytes = b""
    connected: bool = False


@dataclass
class GenResult:
    messages: int = 0
    items: int = 0
    acked: int = 0
    blocked: int = 0  # flushes skipped because the regency's window was full (the tier fell behind)
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    window_items: int = 0  # items sent inside the measuring window
    window_messages: int = 0


class Bodies:
    """Item bodies of realistic size for each kind."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.n = 0

    def make(self, kind: str, r: Regency, now: float) -> tuple[str, dict]:
        self.n += 1
        box = f"{r.code}.{self.rnd.randrange(r.boxes):06d}-GUB"
        if kind == "position":
            return box, {"t": round(now, 3), "lat": round(self.rnd.uniform(-8, 5), 6),
                         "lon": round(self.rnd.uniform(95, 140), 6), "device": f"{self.n % 0xFFFFFF:06x}"}
        if kind == "custody":
            f = self.rnd.choice(("enter", "arrived", "exit"))
            return box, {"finding": f, "place": f"{r.code}.01.2001", "place_kind": "pps", "t": round(now, 3),
                         "counter": self.n, "key": f"{f}|{r.code}.01.2001|{now:.0f}|{self.n}",
                         "device": f"{self.n % 0xFFFFFF:06x}", "withdrawn": False}
        if kind == "alert":
            aid = f"AL-{self.n:012x}"
            return box, {"event": "raised", "by": None, "note": None, "alert": {
                "id": aid, "kind": "arrived", "severity": "info", "subject": box, "box": box,
                "device": f"{self.n % 0xFFFFFF:06x}", "place": f"{r.code}.01.2001", "district": f"{r.code}.01",
                "state": "resolved", "device_time": round(now, 3), "last_device_time": round(now, 3),
                "raised_at": round(now, 3), "late": 0, "occurrences": 1, "message": "arrived at a custody point",
                "acked_by": None, "acked_at": None, "ack_note": None, "resolved_by": "system",
                "resolved_at": round(now, 3), "resolve_note": "informational", "detail": {"place_kind": "pps"}}}
        districts = {f"{r.code}.{d:02d}": {"name": f"Kecamatan {d}", "boxes": r.boxes // 14,
                                           "states": {"tps": r.boxes // 28, "in_transit": r.boxes // 28},
                                           "open_alerts": {"high": 1}, "silent": 0, "late": 0} for d in range(1, 15)}
        return "", {"regency": r.code, "name": r.code, "districts": districts}


def run(nodes: list[int], passwords: dict[str, str], regencies: list[str], rates: dict[str, float],
        seconds: float, window_from: float = 0.0, flush_s: float = 0.5, window: int = 64, boxes: int = 1_600_000,
        seed: int = 1) -> GenResult:
    """Play `rates` (items/s nationally, by kind) for `seconds` from every regency; the counts
    after `window_from` seconds make the measuring window."""
    sel = selectors.DefaultSelector()
    rnd = random.Random(seed)
    regs: list[Regency] = []
    per_reg = max(1, boxes // len(regencies))
    for i, code in enumerate(regencies):
        s = socket.create_connection(("127.0.0.1", nodes[i % len(nodes)]), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        user = codes.user(code)
        s.sendall(connect_packet(f"segel-uplink-{codes.token(code)}", user, passwords[user]))
        r = Regency(code, codes.up_topic(code), s, per_reg, due={k: rnd.random() for k in rates})
        regs.append(r)
    for r in regs:
        r.sock.settimeout(30)
        ack = r.sock.recv(4)
        if len(ack) < 4 or ack[0] != 0x20 or ack[3] != 0:
            raise ConnectionError(f"regency {r.code}: the national node refused the connection ({ack.hex()})")
        r.connected = True
        r.sock.setblocking(False)
        sel.register(r.sock, selectors.EVENT_READ, r)
    res = GenResult(by_kind={k: 0 for k in rates})
    bodies = Bodies(rnd)
    per_regency = {k: v / len(regs) for k, v in rates.items()}
    t0 = time.monotonic()
    next_flush = t0
    order = list(range(len(regs)))
    while True:
        now_m = time.monotonic()
        if now_m - t0 >= seconds:
            break
        timeout = max(0.0, next_flush - now_m)
        for key, _ in sel.select(timeout):
            _read_acks(key.data, res)
        if time.monotonic() < next_flush:
            continue
        next_flush += flush_s
        in_window = time.monotonic() - t0 >= window_from
        rnd.shuffle(order)  # no regency always first
        for i in order:
            r = regs[i]
            for k, v in per_regency.items():
                r.due[k] = r.due.get(k, 0.0) + v * flush_s
            n = {k: int(r.due[k]) for k in r.due}
            if not sum(n.values()):
                continue
            if r.inflight >= window:
                res.blocked += 1
                continue
            now = time.time()
            parts = []
            for k, c in n.items():
                r.due[k] -= c
                for _ in range(c):
                    r.seq += 1
                    subject, body = bodies.make(k, r, now)
                    parts.append(json.dumps({"seq": r.seq, "kind": k, "subject": subject or None, "at": round(now, 3),
                                             "committed": round(now, 3), "body": body}, separators=(",", ":")))
                res.by_kind[k] += c
            head = json.dumps({"v": 1, "regency": r.code, "name": r.code, "sent": round(now, 3)}, separators=(",", ":"))
            payload = (head[:-1] + ',"items":[' + ",".join(parts) + "]}").encode()
            r.pid = r.pid % 65535 + 1
            try:
                r.sock.sendall(publish_packet(r.topic, payload, r.pid))
            except BlockingIOError:
                r.sock.setblocking(True)
                r.sock.sendall(publish_packet(r.topic, payload, r.pid))
                r.sock.setblocking(False)
            r.inflight += 1
            res.messages += 1
            res.items += len(parts)
            if in_window:
                res.window_messages += 1
                res.window_items += len(parts)
    res.seconds = time.monotonic() - t0
    deadline = time.monotonic() + 30
    while any(r.inflight for r in regs) and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            _read_acks(key.data, res)
    for r in regs:
        try:
            r.sock.sendall(b"\xe0\x00")  # DISCONNECT
        except OSError:
            pass
        r.sock.close()
    return res


def _read_acks(r: Regency, res: GenResult) -> None:
    try:
        data = r.sock.recv(65536)
    except (BlockingIOError, InterruptedError):
        return
    if not data:
        raise ConnectionError(f"regency {r.code}: the national node closed the connection")
    r.buf += data
    n = len(r.buf) // 4
    for i in range(n):
        if r.buf[i * 4] != 0x40:
            raise ConnectionError(f"regency {r.code}: unexpected packet {r.buf[i * 4:i * 4 + 4].hex()}")
    r.buf = r.buf[n * 4:]
    r.inflight -= n
    res.acked += n
