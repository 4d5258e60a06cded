"""Stand-in for micropython-lib's `umqtt.simple` (frozen into MicroPython's ESP32 firmware, not
installable here): its API as micropython-esp32-stubs declares it, over MQTT 3.1.1 (OASIS
standard, s3.1 CONNECT .. s3.14 DISCONNECT) on whatever `socket` module is importable, so the
firmware's socket wrapper and the network underneath are exercised as on the board.

`_VERSION` picks the connect() signature: (1, 4, 0) as frozen into MicroPython 1.24 (no timeout
argument), (1, 6, 0) as in 1.25 and later (connect(clean_session, timeout) -> sock.settimeout).
"""

from __future__ import annotations

import socket
import struct

_VERSION = (1, 6, 0)


class MQTTException(Exception):
    pass


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s) -> bytes:
    b = s if isinstance(s, (bytes, bytearray)) else str(s).encode()
    return struct.pack("!H", len(b)) + bytes(b)


class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0, ssl=None, ssl_params={}):
        self.client_id = client_id
        self.sock = None
        self.server = server
        self.port = port or 1883
        self.user = user
        self.pswd = password
        self.keepalive = keepalive
        self.cb = None
        self.pid = 0

    def set_callback(self, f) -> None:
        self.cb = f

    def _read(self, n: int) -> bytes:
        b = self.sock.read(n)
        if b is None:
            return None
        if len(b) < n:
            raise OSError(-1)  # the broker closed the connection
        return b

    def connect(self, clean_session=True, timeout=None, **kw):
        if _VERSION < (1, 5, 0) and (timeout is not None or kw):
            raise TypeError("unexpected keyword argument 'timeout'")
        if self.sock:
            self.sock.close()
        self.sock = socket.socket()
        if _VERSION >= (1, 5, 0):
            self.sock.settimeout(timeout)
        self.sock.connect(socket.getaddrinfo(self.server, self.port)[0][-1])
        flags = (0x02 if clean_session else 0) | ((0xC0) if self.user else 0)
        var = _str(b"MQTT") + bytes((4, flags)) + struct.pack("!H", self.keepalive)
        payload = _str(self.client_id) + ((_str(self.user) + _str(self.pswd)) if self.user else b"")
        body = var + payload
        self.sock.write(b"\x10" + _remaining_length(len(body)) + body)
        resp = self._read(4)
        if resp is None or resp[0] != 0x20 or resp[1] != 0x02:
            raise OSError(-1)
        if resp[3] != 0:
            raise MQTTException(resp[3])
        return resp[2] & 1

    def disconnect(self) -> None:
        self.sock.write(b"\xe0\x00")
        self.sock.close()

    def ping(self) -> None:
        self.sock.write(b"\xc0\x00")

    def publish(self, topic, msg, retain=False, qos=0) -> None:
        self.pid += 1
        pid = self.pid
        body = _str(topic) + (struct.pack("!H", pid) if qos else b"") + bytes(msg)
        self.sock.write(bytes((0x30 | qos << 1 | retain,)) + _remaining_length(len(body)) + body)
        if qos == 1:
            while True:
                op = self.wait_msg()
                if op == 0x40:
                    rest = self._read(3)
                    if rest[1] << 8 | rest[2] == pid:
                        return

    def subscribe(self, topic, qos=0) -> None:
        self.pid += 1
        pid = self.pid
        body = struct.pack("!H", pid) + _str(topic) + bytes((qos,))
        self.sock.write(b"\x82" + _remaining_length(len(body)) + body)
        while True:
            op = self.wait_msg()
            if op == 0x90:
                resp = self._read(4)
                if resp[3] == 0x80:
                    raise MQTTException(resp[3])
                return

    def wait_msg(self):
        res = self.sock.read(1)
        self.sock.setblocking(True)
        if res is None:
            return None
        if res == b"":
            raise OSError(-1)
        op = res[0]
        if op == 0xD0:
            self._read(1)
            return None
        if op & 0xF0 != 0x30:
            return op
        n = 0
        shift = 0
        while True:
            b = self._read(1)[0]
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
        tl = self._read(2)
        tl = tl[0] << 8 | tl[1]
        topic = self._read(tl)
        n -= tl + 2
        pid = 0
        if op & 6:
            p = self._read(2)
            pid = p[0] << 8 | p[1]
            n -= 2
        msg = self._read(n)
        self.cb(topic, msg)
        if op & 6 == 2:
            self.sock.write(b"\x40\x02" + struct.pack("!H", pid))
        return op

    def check_msg(self):
        self.sock.setblocking(False)
        return self.wait_msg()
