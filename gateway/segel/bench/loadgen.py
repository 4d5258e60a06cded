"""A cheap MQTT QoS 1 publisher for benchmarks: pre-encoded PUBLISH packets over one socket.

Why not paho for the load: paho's `publish()` costs about 150 µs of CPU per QoS 1 message on
this kind of machine (message object, packet encoding, its in-flight bookkeeping), so a paho
publisher sharing two cores with the broker and the gateway measures mostly itself. Here every
PUBLISH packet (MQTT 3.1.1, QoS 1, distinct packet ids) is encoded before the clock starts and
written in chunks of `chunk`; a reader thread counts the broker's PUBACKs, and at most `window`
messages are unacknowledged at any time (the broker's in-flight limit). About 3 µs per message.

Only what a benchmark needs: CONNECT (optionally with username/password, optionally over TLS),
PUBLISH QoS 1, PUBACK, DISCONNECT. Anything unexpected from the broker raises LoadError.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Sequence


class LoadError(RuntimeError):
    pass


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def connect_packet(client_id: str, username: str | None = None, password: str | None = None,
                   keepalive_s: int = 60) -> bytes:
    flags = 0x02  # clean session: a load generator keeps no state
    payload = _utf8(client_id)
    if username:
        flags |= 0x80
        payload += _utf8(username)
        if password is not None:
            flags |= 0x40
            payload += _utf8(password)
    var = _utf8("MQTT") + bytes((4, flags)) + struct.pack(">H", keepalive_s)
    return b"\x10" + _remaining_length(len(var) + len(payload)) + var + payload


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    var = _utf8(topic) + struct.pack(">H", packet_id)
    return b"\x32" + _remaining_length(len(var) + len(payload)) + var + payload


class Publisher:
    """`Publisher(host, port).run(items)` -> the wall time each item was written to the socket."""

    def __init__(self, host: str, port: int, client_id: str = "segel-loadgen", *, username: str | None = None,
                 password: str | None = None, tls: bool = False, ca_file: str | None = None,
                 window: int = 1000, chunk: int = 100, timeout_s: float = 30.0) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.username, self.password, self.tls, self.ca_file = username, password, tls, ca_file
        self.window, self.chunk, self.timeout_s = window, chunk, timeout_s
        self.acked = 0
        self._cv = threading.Condition()
        self._error: str | None = None

    def _open(self) -> socket.socket:
        s = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            s = ctx.wrap_socket(s, server_hostname=self.host)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(connect_packet(self.client_id, self.username, self.password))
        ack = b""
        while len(ack) < 4:
            got = s.recv(4 - len(ack))
            if not got:
                raise LoadError(f"broker {self.host}:{self.port} closed the connection before CONNACK")
            ack += got
        if ack[0] != 0x20 or ack[3] != 0:
            raise LoadError(f"broker {self.host}:{self.port} refused the connection (CONNACK {ack.hex()})")
        s.settimeout(None)
        return s

    def _read_acks(self, s: socket.socket, total: int) -> None:
        buf = b""
        while self.acked < total:
            try:
                data = s.recv(65536)
            except OSError as e:
                self._fail(f"socket error: {e}")
                return
            if not data:
                self._fail("broker closed the connection")
                return
            buf += data
            n = 0
            while len(buf) - n * 4 >= 4:
                if buf[n * 4] != 0x40:  # anything but PUBACK: not expected from a publish-only session
                    self._fail(f"unexpected packet 0x{buf[n * 4]:02x} from the broker")
                    return
                n += 1
            buf = buf[n * 4:]
            with self._cv:
                self.acked += n
                self._cv.notify_all()

    def _fail(self, why: str) -> None:
        with self._cv:
            self._error = why
            self._cv.notify_all()

    def run(self, items: Sequence[tuple[str, bytes]], rate: float = 0.0) -> list[float]:
        """Publish every (topic, payload) at QoS 1; `rate` > 0 paces to that many per second.
        Returns when the broker has acknowledged them all."""
        packets = [publish_packet(t, p, i % 65535 + 1) for i, (t, p) in enumerate(items)]
        s = self._open()
        reader = threading.Thread(target=self._read_acks, args=(s, len(packets)), daemon=True)
        reader.start()
        times: list[float] = []
        step = 1 if rate > 0 else self.chunk
        window = min(self.window, 65000)  # packet ids must not wrap onto unacknowledged ones
        t0 = time.time()
        try:
            for i in range(0, len(packets), step):
                if rate > 0:
                    ahead = t0 + i / rate - time.time()
                    if ahead > 0:
                        time.sleep(ahead)
                with self._cv:
                    if not self._cv.wait_for(lambda: self._error or i - self.acked < window, self.timeout_s):
                        raise LoadError(f"no PUBACK from the broker for {self.timeout_s:.0f} s")
                    if self._error:
                        raise LoadError(self._error)
                part = packets[i:i + step]
                now = time.time()
                times.extend([now] * len(part))
                s.sendall(b"".join(part))
            with self._cv:
                if not self._cv.wait_for(lambda: self._error or self.acked >= len(packets), self.timeout_s):
                    raise LoadError(f"the broker acknowledged {self.acked} of {len(packets)}")
                if self._error:
                    raise LoadError(self._error)
            s.sendall(b"\xe0\x00")  # DISCONNECT
        finally:
            s.close()
            reader.join(5)
        return times
