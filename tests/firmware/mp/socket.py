# `socket` for the firmware's boot on the WebAssembly MicroPython (which has none): TCP to one
# scripted MQTT 3.1.1 broker (`_broker`), on the virtual clock. The broker can answer, refuse the
# login (a CONNACK return code), or accept the TCP connection and then never answer (a hung
# broker). A read with nothing to read waits on the virtual clock: up to the socket's timeout,
# then OSError(ETIMEDOUT) as lwIP raises it; without a timeout for ever, that is until the stand-in
# watchdog fires, as it would on the board.
import struct
import time

AF_INET = 2
SOCK_STREAM = 1
ETIMEDOUT = 116
ECONNREFUSED = 111

# what the broker does: "ok", "refuse" (CONNACK code `code`), "hang" (never a byte back),
# "down" (connection refused); `downlinks`: {counter: [frame bytes, ...]} published to the
# tracker's downlink topic after the PUBACK of the uplink with that frame counter
_broker = {"mode": "ok", "code": 5, "downlinks": {}, "published": [], "connects": [], "subscribed": []}


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    return [(AF_INET, SOCK_STREAM, 0, "", (host, port))]


def _enc_len(n):
    from umqtt.simple import _remaining_length  # the MQTT "remaining length" encoding (spec s2.2.3)

    return _remaining_length(n)


def _str(b):
    return struct.pack("!H", len(b)) + b


class socket:
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0):
        self._timeout = None  # None: blocking for ever; 0: non-blocking; > 0: seconds
        self._rx = bytearray()
        self._tx = bytearray()
        self._open = False
        self._down_topic = None

    def settimeout(self, value):
        self._timeout = value

    def setblocking(self, flag):
        self._timeout = None if flag else 0

    def connect(self, address):
        if _broker["mode"] == "down":
            raise OSError(ECONNREFUSED)
        self._open = True

    def close(self):
        self._open = False

    def write(self, buf, n=None):
        data = bytes(buf if n is None else buf[:n])
        self._tx.extend(data)
        self._serve()
        return len(data)

    def read(self, size=-1):
        if len(self._rx) < max(size, 1):
            if self._timeout == 0:
                return None
            # nothing (more) is coming: wait the socket's timeout on the virtual clock
            if self._timeout is None:
                while True:  # blocks for ever: only the watchdog ends this
                    time.sleep_ms(1000)
            time.sleep_ms(int(self._timeout * 1000))
            raise OSError(ETIMEDOUT)
        n = len(self._rx) if size < 0 else size
        out = bytes(self._rx[:n])
        self._rx = self._rx[n:]
        return out

    # --- the broker ---
    def _serve(self):
        while True:
            pkt = self._take()
            if pkt is None:
                return
            op, body = pkt
            if _broker["mode"] == "hang":
                continue
            kind = op & 0xF0
            if kind == 0x10:  # CONNECT: protocol name, level, flags, keepalive, client id, user, password
                i = 2 + 4 + 1 + 1 + 2
                cid_len = body[i] << 8 | body[i + 1]
                cid = bytes(body[i + 2:i + 2 + cid_len])
                i += 2 + cid_len
                user = pw = b""
                if body[7] & 0x80:
                    ul = body[i] << 8 | body[i + 1]
                    user = bytes(body[i + 2:i + 2 + ul])
                    i += 2 + ul
                    pl = body[i] << 8 | body[i + 1]
                    pw = bytes(body[i + 2:i + 2 + pl])
                _broker["connects"].append([cid.decode(), user.decode(), pw.decode()])
                code = _broker["code"] if _broker["mode"] == "refuse" else 0
                self._rx.extend(bytes((0x20, 2, 0, code)))
            elif kind == 0x80:  # SUBSCRIBE
                pid = body[0:2]
                tl = body[2] << 8 | body[3]
                self._down_topic = bytes(body[4:4 + tl])
                _broker["subscribed"].append(self._down_topic.decode())
                self._rx.extend(b"\x90\x03" + pid + bytes((body[4 + tl],)))
            elif kind == 0x30:  # PUBLISH, QoS 1: PUBACK, then the gateway's downlinks for it
                tl = body[0] << 8 | body[1]
                topic = bytes(body[2:2 + tl])
                i = 2 + tl
                pid = b""
                if op & 6:
                    pid = body[i:i + 2]
                    i += 2
                frame = bytes(body[i:])
                _broker["published"].append([topic.decode(), frame.hex()])
                if pid:
                    self._rx.extend(b"\x40\x02" + pid)
                counter = (frame[4] << 16 | frame[5] << 8 | frame[6]) if len(frame) > 6 else -1
                for down in _broker["downlinks"].get(str(counter), []):
                    d = bytes.fromhex(down)
                    b2 = _str(self._down_topic or b"") + d
                    self._rx.extend(b"\x30" + _enc_len(len(b2)) + b2)
            elif kind == 0xE0:  # DISCONNECT
                self._open = False

    def _take(self):
        b = self._tx
        if len(b) < 2:
            return None
        n = 0
        shift = 0
        i = 1
        while True:
            if i >= len(b):
                return None
            c = b[i]
            n |= (c & 0x7F) << shift
            i += 1
            if not c & 0x80:
                break
            shift += 7
        if len(b) < i + n:
            return None
        op = b[0]
        body = bytes(b[i:i + n])
        self._tx = b[i + n:]
        return op, body
