# `socket` for the firmware's boot on the WebAssembly MicroPython with real TCP: the calls go to
# tools/mpy-node/run.mjs --net (globalThis.segelNet), which owns Node sockets in a worker thread.
# Blocking, non-blocking and timeouts behave as lwIP's sockets do on the ESP32: a read with
# nothing to read raises OSError(ETIMEDOUT) after the timeout, returns None when non-blocking.
import js

AF_INET = 2
SOCK_STREAM = 1
ETIMEDOUT = 116
EAGAIN = 11
FOREVER_MS = 3600 * 1000


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    return [(AF_INET, SOCK_STREAM, 0, "", (host, port))]


class socket:
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0):
        self._id = None
        self._timeout = None

    def settimeout(self, value):
        self._timeout = value

    def setblocking(self, flag):
        self._timeout = None if flag else 0

    def _ms(self):
        return FOREVER_MS if self._timeout is None else int(self._timeout * 1000)

    def connect(self, address):
        r = js.segelNet.connect(address[0], address[1], self._ms())
        if r < 0:
            raise OSError(-r)
        self._id = r

    def write(self, buf, n=None):
        data = bytes(buf if n is None else buf[:n])
        r = js.segelNet.send(self._id, data.hex())
        if r < 0:
            raise OSError(-r)
        return r

    def read(self, size=-1):
        want = 4096 if size < 0 else size
        out = b""
        while len(out) < want:
            r = js.segelNet.recv(self._id, want - len(out), self._ms() if not out else 2000)
            if isinstance(r, int):
                if r == -EAGAIN:
                    return out or None
                if out:
                    return out
                raise OSError(-r)
            if r == "":
                return out  # the peer closed
            out += bytes.fromhex(r)
            if size < 0:
                return out
        return out

    def close(self):
        if self._id is not None:
            js.segelNet.close(self._id)
            self._id = None
