"""A TCP proxy on loopback whose link can be cut and restored: a regency's WAN link in the tests.

`cut()` closes every connection through it and stops listening (new connections are refused);
`cut(silent=True)` is a link that just goes dark: bytes in both directions are dropped and nothing
is closed or refused, so each side notices only by its own timeouts (MQTT keepalive, CONNACK
wait). `restore()` forwards again (listening on the same port).
"""

from __future__ import annotations

import socket
import threading


class Proxy:
    def __init__(self, target_port: int, port: int = 0) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = port
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.connections = 0
        self.dark = False
        self.listen()

    def listen(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        self.port = ls.getsockname()[1]
        ls.listen(16)
        self._listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                a, _ = ls.accept()
            except OSError:
                return
            if self.dark:
                with self._lock:
                    self._socks.append(a)
                threading.Thread(target=self._sink, args=(a,), daemon=True).start()
                continue
            try:
                b = socket.create_connection(self.target, timeout=5)
            except OSError:
                a.close()
                continue
            with self._lock:
                self._socks += [a, b]
                self.connections += 1
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pipe, args=(x, y), daemon=True).start()

    def _sink(self, a: socket.socket) -> None:
        try:
            while a.recv(65536):
                pass
        except OSError:
            pass

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not self.dark:
                    dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self, silent: bool = False) -> None:
        if silent:
            self.dark = True
            return
        with self._lock:
            if self._listener is not None:
                try:
                    self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
                except OSError:
                    pass
                self._listener.close()
                self._listener = None
            self._close_all()

    def _close_all(self) -> None:
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self._socks = []

    def restore(self) -> None:
        if self.dark:
            # connections that went dark stay dead (their streams lost bytes): close them
            self.dark = False
            with self._lock:
                self._close_all()
        if self._listener is None:
            self.listen()

    def close(self) -> None:
        self.cut()
